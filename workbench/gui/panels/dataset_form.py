"""The form for a labelled dataset: file, task kind and which columns hold what, with a preview.

The Fine-tune page uses it for its task, the Tasks page for its compact "labelled task" dialog and
the Evaluate page for its data file (the preview and the column guesses). The rows are read by the
engine (``labelled.preview``), so the column names offered are the ones a run will look for.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from workbench.engine.config import LABELLED_KINDS, TaskConfig
from workbench.engine.errors import WorkbenchError

from . import field_help, muted_label, spin_value

KIND_LOOK = {
    "classification": ("Classification", "one text → a class (sentiment, topic)"),
    "entailment": ("Entailment", "premise + hypothesis → entails / contradicts / neutral"),
    "similarity": ("Similarity", "two texts, read in both orders → same or not, or a score"),
    "multiple_choice": ("Multiple choice", "a context and several answers → the right answer"),
    "regression": ("Regression", "one text → a number"),
}

# (role: the TaskConfig field, what it holds per kind)
COLUMN_ROLES = ("text", "text_pair", "label", "score", "choices", "answer")
ROLE_LABELS = {
    "classification": {"text": "Text column", "label": "Label column"},
    "entailment": {"text": "Premise column", "text_pair": "Hypothesis column", "label": "Label column"},
    "similarity": {"text": "First text column", "text_pair": "Second text column",
                   "label": "Label column (or)", "score": "Score column"},
    "multiple_choice": {"text": "Context column", "choices": "Answer columns", "answer": "Correct answer column"},
    "regression": {"text": "Text column", "score": "Score column"},
}
OPTIONAL_ROLES = {"similarity": {"label", "score"}}

# Column names seen in common datasets, most likely first (GLUE, SNLI, COPA, ARC, SWAG, ...).
GUESSES = {
    "text": ["sentence", "text", "sentence1", "premise", "question1", "question.stem", "question", "context",
             "review", "ctx", "sent1", "goal", "startphrase"],
    "text_pair": ["sentence2", "hypothesis", "question2", "sent2", "text_b", "text_pair"],
    "label": ["label", "gold_label", "labels", "class", "category", "sentiment"],
    "score": ["score", "similarity", "relatedness_score", "target", "value", "rating"],
    "answer": ["answer", "answerKey", "label", "correct", "gold", "answer_idx"],
    "choices": ["question.choices", "choices", "endings", "options", "answers"],
}

PREVIEW_ROWS = 50


# =============================================================================================
# reading a dataset's first rows (for the preview and the column pickers)


def cell_text(value: Any) -> str:
    if isinstance(value, list):
        items = [str(x.get("text", x)) if isinstance(x, dict) else str(x) for x in value]
        return " | ".join(items)
    return "" if value is None else str(value)


def preview_rows(path: str | Path, n: int = PREVIEW_ROWS) -> tuple[list[str], list[dict[str, Any]]]:
    """(column names, the first ``n`` rows): the engine's reading of the file (``labelled.preview``)."""
    from workbench.engine.labelled import preview

    return preview(path, n)


def guess_columns(columns: list[str], rows: list[dict]) -> dict[str, Any]:
    """Likely column of each role, from the names in common datasets."""
    out: dict[str, Any] = {}
    lower = {c.lower(): c for c in columns}
    for role in ("text", "text_pair", "label", "score", "answer"):
        for name in GUESSES[role]:
            if name.lower() in lower and lower[name.lower()] not in out.values():
                out[role] = lower[name.lower()]
                break
    numbered = [c for c in columns if c.lower().rstrip("0123456789") in ("choice", "option", "ending", "answer")
                and c.lower() != c.lower().rstrip("0123456789")]
    if len(numbered) >= 2:
        out["choices"] = tuple(numbered)
    else:
        for name in GUESSES["choices"]:
            if name in columns and rows and isinstance(rows[0].get(name), list):
                out["choices"] = (name,)
                break
    if out.get("answer") == out.get("label") and "choices" not in out:
        out.pop("answer", None)
    return out


def guess_kind(guess: dict[str, Any]) -> str:
    if guess.get("choices"):
        return "multiple_choice"
    if guess.get("text_pair"):
        return "entailment" if guess.get("label") else "similarity"
    if guess.get("score") and not guess.get("label"):
        return "regression"
    return "classification"


# =============================================================================================
# the dataset form (shared with the Tasks page's labelled-task dialog)


class ChoicesPicker(QtWidgets.QToolButton):
    """Pick one or more columns (multiple choice: the answer columns, or one column with a list)."""

    changed = QtCore.Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setPopupMode(QtWidgets.QToolButton.ToolButtonPopupMode.InstantPopup)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)
        self._menu = QtWidgets.QMenu(self)
        self.setMenu(self._menu)
        self._columns: list[str] = []
        self._chosen: list[str] = []
        self._update_text()

    def set_columns(self, columns: list[str]) -> None:
        self._columns = list(columns) + [c for c in self._chosen if c not in columns]
        self._rebuild()

    def chosen(self) -> tuple[str, ...]:
        return tuple(c for c in self._columns if c in self._chosen)

    def set_chosen(self, names) -> None:
        self._chosen = list(names)
        self._columns += [c for c in self._chosen if c not in self._columns]
        self._rebuild()

    def _rebuild(self) -> None:
        self._menu.clear()
        for c in self._columns:
            a = self._menu.addAction(c)
            a.setCheckable(True)
            a.setChecked(c in self._chosen)
            a.toggled.connect(lambda on, c=c: self._toggle(c, on))
        if not self._columns:
            a = self._menu.addAction("Choose a data file first")
            a.setEnabled(False)
        self._update_text()

    def _toggle(self, column: str, on: bool) -> None:
        if on and column not in self._chosen:
            self._chosen.append(column)
        elif not on and column in self._chosen:
            self._chosen.remove(column)
        self._update_text()
        self.changed.emit()

    def _update_text(self) -> None:
        chosen = self.chosen()
        self.setText(", ".join(chosen) if chosen else "(choose columns)")


class DatasetForm(QtWidgets.QWidget):
    """The labelled-data part of a ``TaskConfig``: kind, name, files and the column mapping.

    ``task_config(base)`` returns ``base`` with these fields replaced (fields the form does not
    show, such as lm_weight or augmentation, stay as in ``base``); ``set_task_config`` fills the
    form. Choosing a file fills its columns into the pickers and guesses the mapping (and the kind,
    while the kind was not chosen by hand). Signals: ``changed`` (any edit), ``previewChanged``
    (the file's columns or first rows changed: ``columns()``, ``rows()``).
    """

    changed = QtCore.Signal()
    previewChanged = QtCore.Signal()

    def __init__(self, parent=None, *, show_kind: bool = True):
        super().__init__(parent)
        self._columns: list[str] = []
        self._rows: list[dict] = []
        self._preview_error = ""
        self._kind_touched = False
        self._loading = False
        form = QtWidgets.QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.form = form

        self.kind_combo = QtWidgets.QComboBox()
        for kind in LABELLED_KINDS:
            title, what = KIND_LOOK[kind]
            self.kind_combo.addItem(f"{title}  —  {what}", kind)
        self.kind_combo.setToolTip(field_help(TaskConfig, "kind"))
        self.kind_label = QtWidgets.QLabel("Task")
        form.addRow(self.kind_label, self.kind_combo)
        if not show_kind:
            self.kind_label.hide()
            self.kind_combo.hide()

        self.name_edit = QtWidgets.QLineEdit()
        self.name_edit.setToolTip(field_help(TaskConfig, "name"))
        form.addRow("Name", self.name_edit)

        self.train_edit, train_row = self._file_row("train")
        form.addRow("Training file", train_row)
        self.val_edit, val_row = self._file_row("val")
        self.val_edit.setPlaceholderText("none: hold out part of the training file")
        form.addRow("Validation file", val_row)
        self.val_fraction = QtWidgets.QDoubleSpinBox()
        self.val_fraction.setRange(0.0, 0.5)
        self.val_fraction.setSingleStep(0.05)
        self.val_fraction.setDecimals(2)
        self.val_fraction.setToolTip(field_help(TaskConfig, "val_fraction"))
        self.val_fraction_label = QtWidgets.QLabel("Held out")
        form.addRow(self.val_fraction_label, self.val_fraction)

        self.pickers: dict[str, QtWidgets.QWidget] = {}
        self.picker_labels: dict[str, QtWidgets.QLabel] = {}
        for role in COLUMN_ROLES:
            if role == "choices":
                w = ChoicesPicker()
                w.changed.connect(self._changed)
            else:
                w = QtWidgets.QComboBox()
                w.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
                w.setMinimumContentsLength(10)
                w.currentIndexChanged.connect(self._changed)
            w.setToolTip(field_help(TaskConfig, role))
            lab = QtWidgets.QLabel(role)
            lab.setToolTip(w.toolTip())
            form.addRow(lab, w)
            self.pickers[role], self.picker_labels[role] = w, lab
        self.answer_base = QtWidgets.QSpinBox()
        self.answer_base.setRange(0, 10)
        self.answer_base.setToolTip(field_help(TaskConfig, "answer_base"))
        self.answer_base_label = QtWidgets.QLabel("Answers count from")
        form.addRow(self.answer_base_label, self.answer_base)
        self.max_examples = QtWidgets.QSpinBox()
        self.max_examples.setRange(0, 10_000_000)
        self.max_examples.setSpecialValueText("all")
        self.max_examples.setSingleStep(100)
        self.max_examples.setToolTip(field_help(TaskConfig, "max_examples"))
        form.addRow("Training examples", self.max_examples)

        self.status = muted_label()
        form.addRow(self.status)

        self.name_edit.textChanged.connect(self._changed)
        self.val_fraction.valueChanged.connect(self._changed)
        self.answer_base.valueChanged.connect(self._changed)
        self.max_examples.valueChanged.connect(self._changed)
        self.kind_combo.currentIndexChanged.connect(self._kind_changed)
        self._base = TaskConfig(kind="classification", label="label")
        self.set_task_config(self._base)

    def _file_row(self, which: str):
        edit = QtWidgets.QLineEdit()
        edit.setToolTip(field_help(TaskConfig, which))
        button = QtWidgets.QPushButton("Browse…")
        button.clicked.connect(lambda: self._browse(edit))
        edit.editingFinished.connect(lambda: self._file_changed(edit))
        row = QtWidgets.QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(edit, 1)
        row.addWidget(button)
        w = QtWidgets.QWidget()
        w.setLayout(row)
        return edit, w

    # -- API --------------------------------------------------------------------------------

    def kind(self) -> str:
        return self.kind_combo.currentData()

    def columns(self) -> list[str]:
        return list(self._columns)

    def rows(self) -> list[dict]:
        return list(self._rows)

    def preview_error(self) -> str:
        return self._preview_error

    def set_train_file(self, path: str) -> None:
        self.train_edit.setText(str(path))
        self._file_changed(self.train_edit)

    def set_val_file(self, path: str) -> None:
        self.val_edit.setText(str(path))
        self._file_changed(self.val_edit)

    def set_kind(self, kind: str) -> None:
        self.kind_combo.setCurrentIndex(max(0, self.kind_combo.findData(kind)))
        self._kind_touched = True

    def column(self, role: str):
        w = self.pickers[role]
        if role == "choices":
            return w.chosen()
        return w.currentData() or ""

    def set_column(self, role: str, value) -> None:
        w = self.pickers[role]
        if role == "choices":
            w.set_chosen(tuple(value or ()))
            return
        value = value or ""
        i = w.findData(value)
        if i < 0:
            w.addItem(value, value)
            i = w.findData(value)
        w.setCurrentIndex(i)

    def task_config(self, base: TaskConfig | None = None) -> TaskConfig:
        base = base or self._base
        kind = self.kind()
        roles = ROLE_LABELS[kind]
        values = {role: (self.column(role) if role in roles else ("" if role != "choices" else ()))
                  for role in COLUMN_ROLES}
        return dataclasses.replace(
            base, kind=kind, name=self.name_edit.text().strip(), train=self.train_edit.text().strip(),
            val=self.val_edit.text().strip(), val_fraction=spin_value(self.val_fraction, base.val_fraction),
            answer_base=self.answer_base.value() if kind == "multiple_choice" else base.answer_base,
            max_examples=self.max_examples.value(), **values)

    def set_task_config(self, cfg: TaskConfig) -> None:
        self._loading = True
        try:
            self._base = cfg
            kind = cfg.kind if cfg.kind in LABELLED_KINDS else "classification"
            with QtCore.QSignalBlocker(self.kind_combo):
                self.kind_combo.setCurrentIndex(max(0, self.kind_combo.findData(kind)))
            self._kind_touched = cfg.kind in LABELLED_KINDS and bool(cfg.train)
            self.name_edit.setText(cfg.name)
            self.train_edit.setText(cfg.train)
            self.val_edit.setText(cfg.val)
            self.val_fraction.setValue(cfg.val_fraction)
            self.answer_base.setValue(cfg.answer_base)
            self.max_examples.setValue(cfg.max_examples)
            self._read_preview(guess=False)
            for role in COLUMN_ROLES:
                self.set_column(role, getattr(cfg, role))
        finally:
            self._loading = False
        self._update_visibility()
        self.changed.emit()

    # -- internals --------------------------------------------------------------------------

    def _browse(self, edit: QtWidgets.QLineEdit) -> None:
        start = edit.text() or self.train_edit.text() or str(Path.home())
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Choose labelled data", start, "Labelled data (*.csv *.tsv *.jsonl *.json *.txt);;All files (*)")
        if path:
            edit.setText(path)
            self._file_changed(edit)

    def _file_changed(self, edit: QtWidgets.QLineEdit) -> None:
        if edit is self.train_edit:
            self._read_preview(guess=True)
        self._update_visibility()
        self._changed()

    def _read_preview(self, guess: bool) -> None:
        path = self.train_edit.text().strip()
        self._columns, self._rows, self._preview_error = [], [], ""
        if path:
            try:
                self._columns, self._rows = preview_rows(path)
            except (WorkbenchError, OSError) as e:
                self._preview_error = str(e)
        chosen = {role: self.column(role) for role in COLUMN_ROLES}
        for role in COLUMN_ROLES:
            w = self.pickers[role]
            if role == "choices":
                w.set_columns(self._columns)
                continue
            with QtCore.QSignalBlocker(w):
                w.clear()
                w.addItem("(none)", "")
                for c in self._columns:
                    w.addItem(c, c)
                current = chosen[role]
                if current and w.findData(current) < 0:
                    w.addItem(current, current)
                w.setCurrentIndex(max(0, w.findData(current)))
        if guess and self._columns:
            g = guess_columns(self._columns, self._rows)
            if not self._kind_touched:
                with QtCore.QSignalBlocker(self.kind_combo):
                    self.kind_combo.setCurrentIndex(max(0, self.kind_combo.findData(guess_kind(g))))
            for role, value in g.items():
                if not self.column(role) or self.column(role) not in self._columns:
                    with QtCore.QSignalBlocker(self.pickers[role]):
                        self.set_column(role, value)
        self.previewChanged.emit()

    def _kind_changed(self) -> None:
        if not self._loading:
            self._kind_touched = True
        self._update_visibility()
        self._changed()

    def _update_visibility(self) -> None:
        kind = self.kind()
        labels = ROLE_LABELS[kind]
        for role in COLUMN_ROLES:
            shown = role in labels
            self.pickers[role].setVisible(shown)
            self.picker_labels[role].setVisible(shown)
            if shown:
                self.picker_labels[role].setText(labels[role])
        mc = kind == "multiple_choice"
        self.answer_base.setVisible(mc)
        self.answer_base_label.setVisible(mc)
        held_out = not self.val_edit.text().strip()
        self.val_fraction.setEnabled(held_out)
        self.name_edit.setPlaceholderText(kind)

    def _changed(self, *_args) -> None:
        if not self._loading:
            self.changed.emit()


class DatasetPreview(QtWidgets.QTableWidget):
    """The first rows of a labelled file, the columns the task uses highlighted."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.verticalHeader().setDefaultSectionSize(24)
        self.horizontalHeader().setStretchLastSection(True)

    def set_rows(self, columns: list[str], rows: list[dict], used: dict[str, str] | None = None) -> None:
        """``used``: column -> the role it plays ("text", "label"...), shown in the header."""
        used = used or {}
        self.clear()
        self.setColumnCount(len(columns))
        self.setRowCount(len(rows))
        headers = [f"{c}\n↳ {used[c]}" if c in used else c for c in columns]
        self.setHorizontalHeaderLabels(headers)
        tint = QtGui.QColor("#eef4fb")
        for i, r in enumerate(rows):
            for j, c in enumerate(columns):
                text = cell_text(r.get(c))
                item = QtWidgets.QTableWidgetItem(text if len(text) < 200 else text[:199] + "…")
                item.setToolTip(text[:2000])
                if c in used:
                    item.setBackground(tint)
                self.setItem(i, j, item)
        for j in range(len(columns)):
            self.setColumnWidth(j, 110)
        self.resizeColumnsToContents()
        for j in range(len(columns)):
            self.setColumnWidth(j, min(max(self.columnWidth(j), 70), 360))
