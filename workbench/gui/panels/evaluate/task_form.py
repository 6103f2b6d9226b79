"""The Task card of the Evaluate page: the built-in key -> value task, or a labelled CSV / TSV /
JSONL file with its columns (a preview of the rows), the word each label is scored as, a
description and the prompt template. It gathers settings into the engine's ``ICLTaskSpec``; the
page reads the task in the background and hands back what it found (``show_task``,
``show_failure``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from workbench.engine.icl_task import ICLTaskSpec, builtin_data

from .. import error_label, muted_label, show_error
from ..dataset_form import DatasetPreview, guess_columns, preview_rows

ROLES = ("text", "text_pair", "label")
ROLE_TITLES = {"text": "Text column", "text_pair": "Second text (optional)", "label": "Label column"}
NONE = "(none)"


def escape_field(text: str) -> str:
    """A template as typed in a one-line field: line breaks and tabs as \\n and \\t."""
    return text.replace("\n", "\\n").replace("\t", "\\t")


def unescape_field(text: str) -> str:
    return text.replace("\\n", "\n").replace("\\t", "\t")


def shown_template(text: str) -> str:
    """A template part in a placeholder: escapes visible, a lone space named."""
    return "(a space)" if text == " " else escape_field(text)


class ColumnCombo(QtWidgets.QComboBox):
    """A column of the data file: picked from the file's columns, or typed (dotted JSON paths)."""

    def __init__(self, optional: bool = False, parent=None):
        super().__init__(parent)
        self.setEditable(True)
        self.setInsertPolicy(QtWidgets.QComboBox.InsertPolicy.NoInsert)
        self.optional = optional
        self.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(10)

    def value(self) -> str:
        t = self.currentText().strip()
        return "" if t == NONE else t

    def set_value(self, name: str) -> None:
        self.setCurrentText(name or (NONE if self.optional else ""))

    def set_columns(self, columns: list[str]) -> None:
        current = self.currentText()
        with QtCore.QSignalBlocker(self):
            self.clear()
            if self.optional:
                self.addItem(NONE)
            self.addItems(columns)
            self.setCurrentText(current)


class TaskCard(QtWidgets.QGroupBox):
    """The Task card. ``changed`` fires on every edit that changes the task."""

    changed = QtCore.Signal()

    def __init__(self, parent=None):
        super().__init__("Task", parent)
        self.setObjectName("card")  # as panels.card() makes it
        self._file_template: dict[str, str] = {}
        self._verbalizer: dict[str, str] = {}
        self._columns: list[str] = []
        self._rows: list[dict] = []
        self._info: dict | None = None

        form = QtWidgets.QFormLayout()
        self.setLayout(form)
        form.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.source_combo = QtWidgets.QComboBox()
        self.source_combo.addItem("Built-in: key → value lookup", "builtin")
        self.source_combo.addItem("Labelled data file", "file")
        self.source_combo.setToolTip("The built-in task goes with the icl_keyvalue preset: every prompt uses one "
                                     "fresh key → value mapping, so only the demonstrations can teach it. A "
                                     "labelled file: CSV, TSV or JSONL with a text and a label column.")
        form.addRow("Task", self.source_combo)
        self.keys_spin = QtWidgets.QSpinBox()
        self.keys_spin.setRange(1, 10)
        self.keys_spin.setValue(4)
        self.keys_spin.setToolTip("Keys in the mapping (and values to choose from: chance is 1 / keys)")
        self.keys_label = QtWidgets.QLabel("Keys")
        form.addRow(self.keys_label, self.keys_spin)

        self.file_edit, file_row = self._file_row("Choose labelled data")
        self.file_label = QtWidgets.QLabel("Data file")
        form.addRow(self.file_label, file_row)
        self.demos_edit, demos_row = self._file_row("Choose the demonstrations' file")
        self.demos_edit.setPlaceholderText("none: a fifth of the data file")
        self.demos_edit.setToolTip("Demonstrations are drawn from this file (same columns), e.g. a training "
                                   "split; without it a fifth of the data file is held out for them.")
        self.demos_label = QtWidgets.QLabel("Demonstrations")
        form.addRow(self.demos_label, demos_row)
        self.columns: dict[str, ColumnCombo] = {}
        self.column_labels: dict[str, QtWidgets.QLabel] = {}
        for role in ROLES:
            combo = ColumnCombo(optional=role == "text_pair")
            combo.set_value({"text": "text", "label": "label"}.get(role, ""))
            combo.currentTextChanged.connect(self._column_changed)
            lab = QtWidgets.QLabel(ROLE_TITLES[role])
            form.addRow(lab, combo)
            self.columns[role], self.column_labels[role] = combo, lab
        self.preview = DatasetPreview()
        self.preview.setFixedHeight(120)
        form.addRow(self.preview)
        self.data_status = muted_label()
        form.addRow(self.data_status)
        self.task_error = error_label()
        form.addRow(self.task_error)
        for lab in (self.data_status, self.task_error):  # file names and labels are not markup
            lab.setTextFormat(QtCore.Qt.TextFormat.PlainText)

        self.verbalizer_table = QtWidgets.QTableWidget(0, 3)
        self.verbalizer_table.setHorizontalHeaderLabels(["Label", "Shown as (verbalizer)", "Test examples"])
        self.verbalizer_table.verticalHeader().hide()
        self.verbalizer_table.verticalHeader().setDefaultSectionSize(22)
        h = self.verbalizer_table.horizontalHeader()
        h.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        h.setSectionResizeMode(1, QtWidgets.QHeaderView.ResizeMode.Stretch)
        h.setSectionResizeMode(2, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        self.verbalizer_table.setFixedHeight(110)
        self.verbalizer_table.setToolTip("The word each label is scored as. Double-click a word to change it.")
        self.verbalizer_table.itemChanged.connect(self._verbalizer_edited)
        form.addRow(self.verbalizer_table)

        self.template_fields: dict[str, QtWidgets.QLineEdit] = {}
        for key, title, tip in (
                ("description", "Description", "A task description put before the demonstrations (optional)"),
                ("input", "Input template", "How an example is shown: {text} and {text_pair}; \\n for a line break"),
                ("answer", "Answer template", "How its answer follows: {answer} is the label's word"),
                ("separator", "Separator", "Between description, demonstrations and query; \\n for a line break")):
            edit = QtWidgets.QLineEdit()
            edit.setToolTip(tip)
            edit.textChanged.connect(self.changed)
            form.addRow(title, edit)
            self.template_fields[key] = edit

        self.source_combo.currentIndexChanged.connect(self._source_changed)
        self.keys_spin.valueChanged.connect(self.changed)
        self._source_changed()

    def _file_row(self, title: str):
        edit = QtWidgets.QLineEdit()
        button = QtWidgets.QPushButton("Browse…")

        def browse():
            start = edit.text() or self.file_edit.text() or str(Path.home())
            path, _ = QtWidgets.QFileDialog.getOpenFileName(
                self, title, start, "Labelled data (*.csv *.tsv *.jsonl *.json *.txt);;All files (*)")
            if path:
                edit.setText(path)
                edit.editingFinished.emit()

        button.clicked.connect(browse)
        edit.editingFinished.connect(self._file_changed)
        row = QtWidgets.QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(edit, 1)
        row.addWidget(button)
        w = QtWidgets.QWidget()
        w.setLayout(row)
        return edit, w

    # ---- settings ---------------------------------------------------------------------------

    def use_builtin_task(self, n_keys: int = 4) -> None:
        self.source_combo.setCurrentIndex(self.source_combo.findData("builtin"))
        self.keys_spin.setValue(n_keys)

    def set_data_file(self, path: str | Path, demos: str | Path | None = None) -> None:
        """Use a labelled file (and optionally a file of demonstrations)."""
        self.source_combo.setCurrentIndex(self.source_combo.findData("file"))
        self.file_edit.setText(str(path))
        if demos is not None:
            self.demos_edit.setText(str(demos))
        self._file_changed()

    def set_column(self, role: str, name: str) -> None:
        """role: text | text_pair | label."""
        self.columns[role].set_value(name)

    def set_verbalizer(self, label: str, word: str) -> None:
        self._verbalizer[str(label)] = word
        self._fill_verbalizer()
        self.changed.emit()

    def set_template(self, *, description: str | None = None, input: str | None = None,
                     answer: str | None = None, separator: str | None = None) -> None:
        """Template fields as the engine takes them (real line breaks; None: leave as it is)."""
        for key, value in (("description", description), ("input", input), ("answer", answer),
                           ("separator", separator)):
            if value is not None:
                self.template_fields[key].setText(escape_field(value))

    def is_file(self) -> bool:
        return self.source_combo.currentData() == "file"

    def spec(self, limit: int, seed: int) -> ICLTaskSpec:
        """The task as set here, with the first ``limit`` test examples (0: all) and ``seed``;
        an empty template field means the default template's part."""
        f = {k: unescape_field(e.text()) for k, e in self.template_fields.items()}
        return ICLTaskSpec(
            data=self.file_edit.text().strip() if self.is_file() else builtin_data(self.keys_spin.value()),
            demos=self.demos_edit.text().strip(), text=self.columns["text"].value(),
            text_pair=self.columns["text_pair"].value(), label=self.columns["label"].value(),
            verbalizer=tuple(sorted((k, v) for k, v in self._verbalizer.items() if v)),
            description=f["description"], input=f["input"] or None, answer_template=f["answer"] or None,
            separator=f["separator"] or None, limit=limit, seed=seed)

    def message(self) -> str:
        """The error that stops the task from being read ("" when it reads)."""
        return self.task_error.text() if not self.task_error.isHidden() else ""

    # ---- what the page found ----------------------------------------------------------------

    def show_task(self, spec: ICLTaskSpec, info: dict) -> None:
        """The task read: its size, labels, the template's defaults."""
        self._info = info
        show_error(self.task_error, "")
        labels = info["labels"]
        what = (f"labels: {', '.join(labels[:10])}{' …' if len(labels) > 10 else ''}") if labels else ""
        self.data_status.setText(f"{info['n_test']:,} test examples · {info['n_pool']:,} to draw demonstrations "
                                 f"from · {what}")
        d = info["default"]
        if not spec.builtin:
            for key in ("input", "answer", "separator"):
                self.template_fields[key].setPlaceholderText(f"default: {shown_template(d[key])}")
            self.template_fields["description"].setPlaceholderText("none")
        else:
            t = dataclasses.asdict(info["task"].template)
            for key, e in self.template_fields.items():
                with QtCore.QSignalBlocker(e):
                    e.setPlaceholderText(shown_template(t[key]) if t[key] else "none")
        self._fill_verbalizer()

    def show_failure(self, message: str) -> None:
        self._info = None
        self.data_status.setText("")
        show_error(self.task_error, message)
        self._fill_verbalizer()

    def reading(self) -> None:
        self.data_status.setText("Reading the task…")

    # ---- edits ------------------------------------------------------------------------------

    def _source_changed(self) -> None:
        file = self.is_file()
        for w in (self.keys_spin, self.keys_label):
            w.setVisible(not file)
        for w in (self.file_label, self.file_edit.parentWidget(), self.demos_label, self.demos_edit.parentWidget(),
                  self.preview, *self.columns.values(), *self.column_labels.values()):
            w.setVisible(file)
        for key, e in self.template_fields.items():  # the built-in task has its own template
            with QtCore.QSignalBlocker(e):
                if not file and e.isEnabled():
                    self._file_template[key] = e.text()
                    e.setText("")
                elif file and not e.isEnabled():
                    e.setText(self._file_template.get(key, ""))
            e.setEnabled(file)
        self.verbalizer_table.setEnabled(file)
        self.preview.setVisible(file and bool(self._columns))
        self.changed.emit()

    def _file_changed(self) -> None:
        path = self.file_edit.text().strip()
        self._columns, self._rows = [], []
        message = ""
        if path:
            try:
                self._columns, self._rows = preview_rows(path)
            except Exception as e:  # the engine's message (no such file, bad JSON...), shown inline
                message = str(e)
        for combo in self.columns.values():
            combo.set_columns(self._columns)
        if self._columns:
            guess = guess_columns(self._columns, self._rows)
            for role in ROLES:
                combo = self.columns[role]
                if combo.value() not in self._columns:
                    with QtCore.QSignalBlocker(combo):
                        combo.set_value(guess.get(role, ""))
        self._update_preview()
        if message:
            show_error(self.task_error, message)
        self.changed.emit()

    def _update_preview(self) -> None:
        used = {self.columns[r].value(): r.replace("_", " ") for r in ROLES if self.columns[r].value()}
        self.preview.set_rows(self._columns, self._rows[:20], used)
        self.preview.setVisible(self.is_file() and bool(self._columns))

    def _column_changed(self, *_a) -> None:
        self._update_preview()
        self.changed.emit()

    def _verbalizer_edited(self, item: QtWidgets.QTableWidgetItem) -> None:
        if item.column() != 1:
            return
        label = self.verbalizer_table.item(item.row(), 0).data(QtCore.Qt.ItemDataRole.UserRole)
        word = item.text()
        if word and word != label:
            self._verbalizer[label] = word
        else:
            self._verbalizer.pop(label, None)
            if not word:
                with QtCore.QSignalBlocker(self.verbalizer_table):
                    item.setText(label)
        self.changed.emit()

    def _fill_verbalizer(self) -> None:
        info = self._info
        labels = info["labels"] if info else []
        counts = info["counts"] if info else []
        t = self.verbalizer_table
        with QtCore.QSignalBlocker(t):
            t.setRowCount(len(labels))
            for i, label in enumerate(labels):
                a = QtWidgets.QTableWidgetItem(label)
                a.setData(QtCore.Qt.ItemDataRole.UserRole, label)
                a.setFlags(a.flags() & ~QtCore.Qt.ItemFlag.ItemIsEditable)
                b = QtWidgets.QTableWidgetItem(self._verbalizer.get(label) or label)
                b.setToolTip(f"the word scored for label {label!r} (empty: the label itself)")
                c = QtWidgets.QTableWidgetItem(f"{counts[i]:,}" if i < len(counts) else "")
                c.setFlags(c.flags() & ~QtCore.Qt.ItemFlag.ItemIsEditable)
                c.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
                for j, it in enumerate((a, b, c)):
                    t.setItem(i, j, it)
