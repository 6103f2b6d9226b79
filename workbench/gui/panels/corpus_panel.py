"""Corpus panel: what the model learns from.

Sources are files, folders and built-in corpora. Each one's statistics are computed in a
background job (a big file must not freeze the window), one source at a time, so a source that
cannot be read shows its error in red on its own row while the others keep their numbers. A
preview shows the first ~2000 characters of the selected source.
"""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from workbench.engine.config import CorpusConfig
from workbench.engine.corpus import BUILTIN_PREFIX, builtin_names, describe_builtin

from .. import theme
from ..bridge import JobSlot
from ..jobs.corpus import PREVIEW_CHARS, preview_text, source_stats
from ..widgets.flow import FlowRow, labelled
from . import Panel, card, field_help, human_bytes, human_count, muted_label

COLUMNS = ("Source", "Kind", "Files", "Size", "Characters", "Lines", "Documents")
# On a narrow table (1024 px in presentation mode) these columns give way, in this order, so the
# source's name keeps room to be read; the summary line above the table still gives the totals.
YIELDING_COLUMNS = (5, 2, 4, 6)
MIN_SOURCE_CHARS = 16
FILE_FILTER = "Text and data (*.txt *.md *.rst *.py *.jsonl *.csv *.tsv);;All files (*)"


def short_error(message: str, spec: str) -> str:
    """The message without the source's own path in front (the row already names it)."""
    for prefix in (str(Path(spec).expanduser()), spec):
        if prefix and message.startswith(prefix):
            rest = message[len(prefix):]
            rest = rest.lstrip("/\\") if rest[:1] in ("/", "\\") else rest.lstrip(":, ")
            if rest:
                return rest[0].upper() + rest[1:]
    return message


def _display_name(spec: str) -> str:
    return spec[len(BUILTIN_PREFIX):] if spec.startswith(BUILTIN_PREFIX) else (Path(spec).name or spec)


def _count(items: list, noun: str) -> str:
    """One source by its name, several by their number."""
    return _display_name(items[0]) if len(items) == 1 else f"{len(items)} {noun}s"


class SourcesTable(QtWidgets.QTableWidget):
    filesDropped = QtCore.Signal(list)

    def __init__(self, parent=None):
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(COLUMNS)
        self.verticalHeader().hide()
        self.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setWordWrap(True)
        self.setShowGrid(False)
        self.setAlternatingRowColors(True)
        h = self.horizontalHeader()
        h.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Stretch)
        for i in range(1, len(COLUMNS)):
            h.setSectionResizeMode(i, QtWidgets.QHeaderView.ResizeMode.Fixed)
        h.setDefaultAlignment(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter)
        self.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.fit_columns()
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.setDragDropMode(QtWidgets.QAbstractItemView.DragDropMode.DropOnly)

    def fit_columns(self) -> None:
        """Numbers get fixed widths for their largest likely values, the source name the rest."""
        fm = self.fontMetrics()
        samples = {1: "builtin", 2: "100,000", 3: "100.0 MB", 4: "100,000,000", 5: "10,000,000", 6: "1,000,000"}
        for i, sample in samples.items():
            self.setColumnWidth(i, max(fm.horizontalAdvance(sample), fm.horizontalAdvance(COLUMNS[i])) + 30)
        self.fit_to_width()

    def fit_to_width(self) -> None:
        """Hide the yielding columns, least useful first, until the source name has room."""
        room = self.viewport().width() - self.fontMetrics().horizontalAdvance("x" * MIN_SOURCE_CHARS)
        hidden = set()
        for col in YIELDING_COLUMNS:
            shown = sum(self.columnWidth(i) for i in range(1, len(COLUMNS)) if i not in hidden)
            if shown <= room:
                break
            hidden.add(col)
        for col in YIELDING_COLUMNS:
            self.setColumnHidden(col, col in hidden)
        self.fit_error_rows()

    def resizeEvent(self, e) -> None:
        super().resizeEvent(e)
        self.fit_to_width()

    def error_width(self) -> int:
        return sum(self.columnWidth(i) for i in range(1, len(COLUMNS)) if not self.isColumnHidden(i))

    def fit_error_rows(self) -> None:
        base = self.fontMetrics().height() + 12
        for row in range(self.rowCount()):
            label = self.cellWidget(row, 1)
            if isinstance(label, QtWidgets.QLabel):
                self.setRowHeight(row, max(base, label.heightForWidth(self.error_width()) + 4))

    def changeEvent(self, e) -> None:
        super().changeEvent(e)
        if e.type() in (QtCore.QEvent.Type.FontChange, QtCore.QEvent.Type.StyleChange):
            self.fit_columns()

    # drag and drop of files and folders from the desktop
    def dragEnterEvent(self, e: QtGui.QDragEnterEvent) -> None:
        if e.mimeData().hasUrls():
            e.acceptProposedAction()
        else:
            super().dragEnterEvent(e)

    def dragMoveEvent(self, e) -> None:
        if e.mimeData().hasUrls():
            e.acceptProposedAction()
        else:
            super().dragMoveEvent(e)

    def dropEvent(self, e: QtGui.QDropEvent) -> None:
        paths = [u.toLocalFile() for u in e.mimeData().urls() if u.isLocalFile()]
        if paths:
            e.acceptProposedAction()
            self.filesDropped.emit(paths)
        else:
            super().dropEvent(e)


class CorpusPanel(Panel):
    title = "Corpus"
    subtitle = ("The text the model learns from. Pick a built-in corpus, or add your own files and folders "
                "(.txt .md .py .jsonl .csv .tsv): drag them here or use the buttons.")

    configChanged = QtCore.Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._sources: list[str] = []
        self._stats: dict[tuple, tuple] = {}      # (spec, glob, field, errors) -> (stats, error)
        self._fields: dict[str, list[str]] = {}
        self._counter = JobSlot(self, "corpus stats", on_progress=self._counted, on_failed=self._stats_failed,
                                on_ended=self._stats_ended)
        self._counting: tuple | None = None   # (sources, options) being counted, until the job's end
        self._previewer = JobSlot(self, "corpus preview", on_done=lambda text: self._show_preview(text, None),
                                  on_failed=lambda msg, _d: self._show_preview("", msg))
        self._val_fraction = 0.1
        self.setAcceptDrops(True)

        # built-in corpora
        box, lay = card("Built-in corpora")
        row = FlowRow()  # the buttons wrap on a narrow page, the note goes below them
        self.builtin_buttons: dict[str, QtWidgets.QPushButton] = {}
        for name in builtin_names():
            b = QtWidgets.QPushButton(name)
            b.setObjectName("builtinButton")
            b.setCheckable(True)
            b.setToolTip(describe_builtin(name) + "\n\nClick to use it as the corpus.")
            b.clicked.connect(lambda _=False, n=name: self.use_builtin(n))
            row.add(b)
            self.builtin_buttons[name] = b
        lay.addWidget(row)
        self.builtin_note = muted_label()
        lay.addWidget(self.builtin_note)
        self.body.addWidget(box)

        # sources
        box, lay = card("Sources")
        buttons = FlowRow()
        self.add_files_button = QtWidgets.QPushButton("Add files…")
        self.add_folder_button = QtWidgets.QPushButton("Add folder…")
        self.remove_button = QtWidgets.QPushButton("Remove")
        self.add_files_button.clicked.connect(self._add_files_dialog)
        self.add_folder_button.clicked.connect(self._add_folder_dialog)
        self.remove_button.clicked.connect(self.remove_selected)
        for b in (self.add_files_button, self.add_folder_button, self.remove_button):
            buttons.add(b)
        buttons.add_stretch()
        self.total_label = QtWidgets.QLabel()
        self.total_label.setObjectName("statValue")
        buttons.add(self.total_label)
        lay.addWidget(buttons)
        # after a change that dropped sources: what happened, and a button that takes it back
        self.undo_bar = QtWidgets.QWidget()
        self.undo_bar.setObjectName("undoBar")
        ub = QtWidgets.QHBoxLayout(self.undo_bar)
        ub.setContentsMargins(0, 0, 0, 0)
        self.undo_label = muted_label()
        self.undo_button = QtWidgets.QPushButton("Undo")
        self.undo_button.clicked.connect(self.undo)
        ub.addWidget(self.undo_label, 1)
        ub.addWidget(self.undo_button)
        self.undo_bar.hide()
        self._undo_sources: list[str] | None = None
        lay.addWidget(self.undo_bar)
        self.table = SourcesTable()
        self.table.filesDropped.connect(self.add_paths)
        self.table.itemSelectionChanged.connect(self._update_preview)
        self.table.setMinimumHeight(120)
        QtGui.QShortcut(QtGui.QKeySequence.StandardKey.Delete, self.table, self.remove_selected)
        lay.addWidget(self.table, 1)

        opts = FlowRow(spacing=14)
        self.glob_edit = QtWidgets.QLineEdit("**/*")
        self.glob_edit.setToolTip(field_help(CorpusConfig, "glob"))
        self.glob_edit.setMaximumWidth(140)
        self.field_combo = QtWidgets.QComboBox()
        self.field_combo.setEditable(True)
        self.field_combo.addItem("text")
        self.field_combo.setToolTip(field_help(CorpusConfig, "text_field"))
        self.field_combo.setMinimumWidth(120)
        self.errors_combo = QtWidgets.QComboBox()
        self.errors_combo.addItem("stop with an error", "strict")
        self.errors_combo.addItem("replace with �", "replace")
        self.errors_combo.setToolTip(field_help(CorpusConfig, "encoding_errors"))
        self.val_spin = QtWidgets.QDoubleSpinBox()
        self.val_spin.setRange(0.0, 0.5)
        self.val_spin.setSingleStep(0.01)
        self.val_spin.setDecimals(2)
        self.val_spin.setToolTip(field_help(CorpusConfig, "val_fraction"))
        for text, w in (("Folder files", self.glob_edit), ("JSONL field / CSV column", self.field_combo),
                        ("Invalid UTF-8", self.errors_combo), ("Validation share", self.val_spin)):
            opts.add(labelled(text, w))
        lay.addWidget(opts)
        self.glob_edit.editingFinished.connect(self._options_changed)
        self.field_combo.currentTextChanged.connect(self._field_changed)
        self.errors_combo.currentIndexChanged.connect(self._options_changed)
        self.val_spin.valueChanged.connect(lambda _v: self.configChanged.emit())
        self.body.addWidget(box, 3)

        # preview
        box, lay = card("Preview")
        self.preview_title = muted_label()
        lay.addWidget(self.preview_title)
        self.preview = QtWidgets.QPlainTextEdit()
        self.preview.setReadOnly(True)
        self.preview.setObjectName("preview")
        self.preview.setLineWrapMode(QtWidgets.QPlainTextEdit.LineWrapMode.WidgetWidth)
        f = QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont)
        self.preview.setFont(f)
        lay.addWidget(self.preview, 1)
        self.body.addWidget(box, 2)

        self._field_timer = QtCore.QTimer(self, singleShot=True, interval=500)
        self._field_timer.timeout.connect(self._options_changed)

    # -- config ------------------------------------------------------------------------------

    def config(self) -> CorpusConfig:
        return CorpusConfig(paths=tuple(self._sources) or ("builtin:toy",), glob=self.glob_edit.text().strip() or "**/*",
                            text_field=self.field_combo.currentText().strip() or "text",
                            encoding_errors=self.errors_combo.currentData(), val_fraction=round(self.val_spin.value(), 4))

    def set_config(self, cfg: CorpusConfig) -> None:
        for w in (self.glob_edit, self.field_combo, self.errors_combo, self.val_spin):
            w.blockSignals(True)
        self.glob_edit.setText(cfg.glob)
        self.field_combo.setCurrentText(cfg.text_field)
        self.errors_combo.setCurrentIndex(max(0, self.errors_combo.findData(cfg.encoding_errors)))
        self.val_spin.setValue(cfg.val_fraction)
        for w in (self.glob_edit, self.field_combo, self.errors_combo, self.val_spin):
            w.blockSignals(False)
        self._sources = list(dict.fromkeys(cfg.paths))
        self._offer_undo(None)
        self._rebuild()

    def sources(self) -> list[str]:
        return list(self._sources)

    def source_error(self, spec: str) -> str | None:
        got = self._stats.get(self._key(spec))
        return None if got is None else got[1]

    def source_stats(self, spec: str):
        got = self._stats.get(self._key(spec))
        return None if got is None else got[0]

    def has_errors(self) -> bool:
        return any(self.source_error(s) for s in self._sources)

    # -- editing the list --------------------------------------------------------------------

    def use_builtin(self, name: str) -> None:
        before = list(self._sources)
        self._sources = [f"{BUILTIN_PREFIX}{name}"]
        own = [s for s in before if not s.startswith(BUILTIN_PREFIX)]
        self._offer_undo(f"The built-in corpus {name} replaced your {_count(own, 'source')}." if own
                         else None, "Undo", before)
        self._rebuild()

    def add_paths(self, paths: list[str]) -> None:
        """Add files or folders. Built-in corpora are samples: when the list holds only those, the
        person's own files replace them (with a button to keep both) instead of mixing with them."""
        if not getattr(self, "_editable", True):
            return
        new = [str(Path(p)) for p in paths if p and str(Path(p)) not in self._sources]
        if not new:
            return
        before = list(self._sources)
        if before and all(s.startswith(BUILTIN_PREFIX) for s in before):
            names = ", ".join(s[len(BUILTIN_PREFIX):] for s in before)
            self._sources = new
            self._offer_undo(f"Your {'file' if len(new) == 1 else 'files'} replaced the built-in corpus "
                             f"{names}, so the model learns from your text alone.", f"Keep {names} too", before + new)
        else:
            self._sources += new
            self._offer_undo(None)
        self._rebuild(select=new[0])

    def remove_selected(self) -> None:
        rows = sorted({i.row() for i in self.table.selectedIndexes()}, reverse=True)
        before = list(self._sources)
        removed = [self._sources.pop(r) for r in rows if 0 <= r < len(self._sources)]
        if not removed:
            return
        self._offer_undo(f"Removed {_count(removed, 'source')}.", "Undo", before)
        self._rebuild()

    def _offer_undo(self, message: str | None, button: str = "Undo", sources: list[str] | None = None) -> None:
        """Show what a change dropped and a button that restores ``sources``; None hides it (the
        undo is for the latest change only)."""
        self._undo_sources = list(sources) if message and sources is not None else None
        self.undo_label.setText(message or "")
        self.undo_button.setText(button)
        self.undo_bar.setVisible(self._undo_sources is not None)

    def undo(self) -> None:
        if self._undo_sources is not None:
            self._sources = list(dict.fromkeys(self._undo_sources))
            self._offer_undo(None)
            self._rebuild()

    def _add_files_dialog(self) -> None:
        files, _ = QtWidgets.QFileDialog.getOpenFileNames(self, "Add text or data files", "", FILE_FILTER)
        self.add_paths(files)

    def _add_folder_dialog(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Add a folder of text files")
        if folder:
            self.add_paths([folder])

    def dragEnterEvent(self, e) -> None:
        if e.mimeData().hasUrls():
            e.acceptProposedAction()

    def dropEvent(self, e) -> None:
        self.add_paths([u.toLocalFile() for u in e.mimeData().urls() if u.isLocalFile()])
        e.acceptProposedAction()

    def _field_changed(self, _text: str) -> None:
        self._field_timer.start()

    def _options_changed(self, *_a) -> None:
        self._rebuild()

    # -- the table and its background statistics ------------------------------------------

    def _key(self, spec: str) -> tuple:
        cfg = self.config()
        return (spec, cfg.glob, cfg.text_field, cfg.encoding_errors)

    def _rebuild(self, select: str | None = None) -> None:
        current = select or self._selected_source()
        self.table.setRowCount(len(self._sources))
        self.table.clearSpans()
        for row, spec in enumerate(self._sources):
            self._fill_row(row, spec)
        for name, b in self.builtin_buttons.items():
            b.setChecked(self._sources == [f"{BUILTIN_PREFIX}{name}"])
        builtins = [s for s in self._sources if s.startswith(BUILTIN_PREFIX)]
        self.builtin_note.setText(describe_builtin(builtins[0]) if len(builtins) == 1 else "")
        if self._sources:
            row = self._sources.index(current) if current in self._sources else 0
            self.table.selectRow(row)
        self._start_stats()
        self._update_total()
        self._update_preview()
        self.configChanged.emit()

    def _fill_row(self, row: int, spec: str) -> None:
        got = self._stats.get(self._key(spec))
        name = spec
        if not spec.startswith(BUILTIN_PREFIX):
            p = Path(spec)
            name = f"{p.name}   —   {p.parent}" if p.name else spec
        item = QtWidgets.QTableWidgetItem(name)
        item.setToolTip(spec)
        item.setData(QtCore.Qt.ItemDataRole.UserRole, spec)
        self.table.setItem(row, 0, item)
        self.table.removeCellWidget(row, 1)
        if self.table.columnSpan(row, 1) > 1:
            self.table.setSpan(row, 1, 1, 1)
        if got is None:
            cells = ["counting…", "", "", "", "", ""]
        elif got[1] is not None:  # the problem in words, in red, on the source's own row
            for col in range(1, len(COLUMNS)):
                self.table.setItem(row, col, QtWidgets.QTableWidgetItem(""))
            self.table.setSpan(row, 1, 1, len(COLUMNS) - 1)
            label = QtWidgets.QLabel("⚠ " + short_error(got[1], spec))
            label.setObjectName("sourceError")
            label.setWordWrap(True)
            label.setToolTip(got[1])
            label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setStyleSheet(f"color: {theme.ERROR_COLOR}; background: transparent; padding: 2px 6px;")
            self.table.setCellWidget(row, 1, label)
            self.table.fit_error_rows()
            return
        else:
            s = got[0]
            cells = [s.kind, f"{s.files:,}" if s.files else "—", human_bytes(s.bytes), f"{s.chars:,}",
                     f"{s.lines:,}", f"{s.documents:,}"]
        for col, text in enumerate(cells, start=1):
            it = QtWidgets.QTableWidgetItem(text)
            if col >= 2:
                it.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
            if got is None:
                it.setForeground(QtGui.QColor("#9a9a9a"))
            self.table.setItem(row, col, it)
        self.table.setRowHeight(row, self.table.fontMetrics().height() + 12)

    def _start_stats(self) -> None:
        self._counter.cancel()
        self._counting = None
        todo = [s for s in self._sources if self._key(s) not in self._stats]
        if not todo:
            return
        cfg = self.config()
        opts = (cfg.glob, cfg.text_field, cfg.encoding_errors)
        self._counting = (todo, opts)
        self._counter.start(source_stats, todo, *opts)

    def _counted(self, item) -> None:
        if self._counting is not None:
            self._on_stats(item, self._counting[1])

    def _stats_failed(self, message: str, _details: str) -> None:
        """The counting job itself failed: the rows it did not reach say so (not "counting…" forever)."""
        specs, opts = self._counting or ([], ())
        for spec in specs:
            if (spec, *opts) not in self._stats:
                self._on_stats((spec, None, f"could not be counted: {message}", []), opts)

    def _stats_ended(self) -> None:
        self._counting = None

    def _on_stats(self, item, opts: tuple) -> None:
        spec, stats, error, fields = item
        self._stats[(spec, *opts)] = (stats, error)
        if fields:
            self._fields[spec] = fields
            self._update_field_choices()
        if spec in self._sources:
            self._fill_row(self._sources.index(spec), spec)
        self._update_total()
        self.configChanged.emit()

    def is_counting(self) -> bool:
        return self._counting is not None

    def _update_field_choices(self) -> None:
        current = self.field_combo.currentText()
        names = list(dict.fromkeys(n for s in self._sources for n in self._fields.get(s, [])))
        with QtCore.QSignalBlocker(self.field_combo):
            self.field_combo.clear()
            self.field_combo.addItems(names or ["text"])
            self.field_combo.setCurrentText(current)

    def _update_total(self) -> None:
        got = [self._stats.get(self._key(s)) for s in self._sources]
        ok = [g[0] for g in got if g is not None and g[0] is not None]
        errors = sum(1 for g in got if g is not None and g[1] is not None)
        counting = sum(1 for g in got if g is None)
        parts = []
        if ok:
            docs = sum(s.documents for s in ok)
            parts.append(f"{human_bytes(sum(s.bytes for s in ok))} · {human_count(sum(s.chars for s in ok))} characters · "
                         f"{docs:,} document{'' if docs == 1 else 's'}")
        if counting:
            parts.append(f"counting {counting}…")
        if errors:
            parts.append(f"<span style='color:{theme.ERROR_COLOR}'>{errors} with errors</span>")
        self.total_label.setText("  ·  ".join(parts))
        if not self._sources:
            self.set_summary("no sources")
        elif errors:
            self.set_summary(f"{errors} source{'s' if errors > 1 else ''} with errors")
        else:
            head = self._sources[0] if len(self._sources) == 1 else f"{len(self._sources)} sources"
            if not head.startswith(BUILTIN_PREFIX) and len(self._sources) == 1:
                head = Path(head).name
            size = f" · {human_bytes(sum(s.bytes for s in ok))}" if ok and not counting else ""
            self.set_summary(head + size)

    # -- preview -----------------------------------------------------------------------------

    def _selected_source(self) -> str | None:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        if rows and rows[0] < len(self._sources):
            return self._sources[rows[0]]
        return None

    def _update_preview(self) -> None:
        spec = self._selected_source() or (self._sources[0] if self._sources else None)
        self._previewer.cancel()
        if spec is None:
            self.preview.setPlainText("")
            self.preview_title.setText("Add a source to see its text here.")
            return
        self.preview_title.setText(f"First {PREVIEW_CHARS:,} characters of {spec}")
        cfg = self.config()
        self._previewer.start(preview_text, spec, cfg.glob, cfg.text_field, cfg.encoding_errors)

    def _show_preview(self, text: str, error: str | None) -> None:
        if error:
            self.preview.setPlainText("")
            self.preview_title.setText(f"<span style='color:{theme.ERROR_COLOR}'>⚠ {error}</span>")
        else:
            self.preview.setPlainText(text)

    def set_editable(self, editable: bool) -> None:
        self._editable = editable
        for w in [*self.builtin_buttons.values(), self.add_files_button, self.add_folder_button,
                  self.remove_button, self.undo_button, self.glob_edit, self.field_combo, self.errors_combo,
                  self.val_spin]:
            w.setEnabled(editable)
        self.table.setAcceptDrops(editable)
        self.table.viewport().setAcceptDrops(editable)
        self.setAcceptDrops(editable)

    def preview_sample(self) -> str:
        """The preview text (the tokenizer panel uses it as a sample)."""
        return self.preview.toPlainText()

    def shutdown(self) -> None:
        for slot in (self._counter, self._previewer):
            slot.cancel()
