"""The table of the Runs page: a row per run (``RunSummary``), sortable by each column's value
(numbers as numbers), a colour swatch beside the name of each selected run."""

from __future__ import annotations

import math

from PySide6 import QtCore, QtGui, QtWidgets

from .. import theme
from workbench.fmt import fmt_duration

COLUMNS = ("name", "started", "status", "steps", "model", "tokenizer", "tasks", "val loss", "metrics", "time")
SORT_ROLE = QtCore.Qt.ItemDataRole.UserRole + 1
PATH_ROLE = QtCore.Qt.ItemDataRole.UserRole
ROW_HEIGHT = 26
STATUS_TIPS = {"completed": "Trained every step it was set to.",
               "stopped": "Stopped before its last step; it can be resumed from its checkpoint.",
               "early stopped": "Early stopping ended it: the validation metric stopped improving.",
               "no metrics": "No step has finished yet (or the run is just starting).",
               "training": "A training run holds this folder now (its run.lock); Follow live shows it here.",
               "paused": "A training run holds this folder and is paused (its status.json); Follow live to resume it."}


class _Item(QtWidgets.QTableWidgetItem):
    """A cell that sorts by its SORT_ROLE value (numbers as numbers) and shows text."""

    def __lt__(self, other: QtWidgets.QTableWidgetItem) -> bool:
        a, b = self.data(SORT_ROLE), other.data(SORT_ROLE)
        if a is None or b is None:
            return super().__lt__(other)
        try:
            return a < b
        except TypeError:
            return str(a) < str(b)


def _cell(text: str, sort=None, tip: str = "") -> _Item:
    it = _Item(text)
    it.setData(SORT_ROLE, text.lower() if sort is None else sort)
    if tip:
        it.setToolTip(tip)
    return it


def _fmt_metric(v: float) -> str:
    return f"{v:.4f}" if abs(v) < 1000 else f"{v:,.0f}"


def _swatch(color: str, size: int = 12) -> QtGui.QIcon:
    pm = QtGui.QPixmap(size, size)
    pm.fill(QtCore.Qt.GlobalColor.transparent)
    p = QtGui.QPainter(pm)
    p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    p.setBrush(QtGui.QColor(color))
    p.setPen(QtCore.Qt.PenStyle.NoPen)
    p.drawRoundedRect(QtCore.QRectF(1, 1, size - 2, size - 2), 3, 3)
    p.end()
    return QtGui.QIcon(pm)


class RunsTable(QtWidgets.QTableWidget):
    """``fill(runs)`` keeps the selection (by folder); ``selected_paths()``, ``select_paths()``,
    ``row_path(row)``; ``set_swatches(color_of)`` marks each row with its run's curve colour."""

    def __init__(self, parent=None):
        super().__init__(0, len(COLUMNS), parent)
        self._sized = False
        self.setObjectName("runsTable")
        self.setHorizontalHeaderLabels([c.capitalize() if c != "val loss" else "Val loss" for c in COLUMNS])
        self.verticalHeader().hide()
        self.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setShowGrid(False)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.setSortingEnabled(True)
        self.sortByColumn(COLUMNS.index("started"), QtCore.Qt.SortOrder.DescendingOrder)
        self.setContextMenuPolicy(QtCore.Qt.ContextMenuPolicy.CustomContextMenu)
        h = self.horizontalHeader()
        h.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Interactive)
        h.setStretchLastSection(False)
        h.setHighlightSections(False)
        self.verticalHeader().setDefaultSectionSize(ROW_HEIGHT)
        # room for several runs before the splitter is dragged (it showed two and a half)
        self.setMinimumHeight(self.horizontalHeader().sizeHint().height() + 6 * ROW_HEIGHT + 4)

    def fill(self, runs: list) -> None:
        """A row per run; the runs selected before stay selected (no selection signal)."""
        selected = set(self.selected_paths())
        self.setSortingEnabled(False)
        with QtCore.QSignalBlocker(self):
            self.clearSelection()
            self.setRowCount(len(runs))
            for row, r in enumerate(runs):
                self._set_row(row, r)
        self.setSortingEnabled(True)
        h = self.horizontalHeader()
        if not self._sized and runs:
            self.resizeColumnsToContents()
            for col in range(len(COLUMNS)):
                h.resizeSection(col, min(h.sectionSize(col) + 12, 320))
            h.setSectionResizeMode(COLUMNS.index("metrics"), QtWidgets.QHeaderView.ResizeMode.Stretch)
            self._sized = True
        self._select(selected)

    def _set_row(self, row: int, r) -> None:
        from workbench.engine.runs import format_started

        first = r.tasks[0] if r.tasks else "lm"
        val = r.val.get(first)
        extra = [(k, v) for k, v in r.val.items() if k != first and isinstance(v, (int, float))]
        metrics = ", ".join(f"{k.replace('/', ' ') if '/' in k else k + ' loss'} {v:.4g}" for k, v in extra[:4])
        status_tip = r.error or STATUS_TIPS.get(r.status, "")
        cells = [
            _cell(r.path.name, tip=f"{r.path}\nexperiment name: {r.name}"),
            _cell(format_started(r.started), sort=r.started),
            _cell(r.status + (" · damaged" if r.damaged else ""),
                  tip="\n".join(["Damaged files (the rest of the run is shown):"] + r.damaged) if r.damaged
                  else status_tip),
            _cell(f"{r.steps:,} / {r.max_steps:,}", sort=r.steps),
            _cell(r.model, sort=r.model),
            _cell(r.tokenizer),
            _cell(", ".join(r.tasks), tip=", ".join(r.tasks)),
            _cell("" if val is None else _fmt_metric(val), sort=math.inf if val is None else val,
                  tip=f"last validation loss of task {first}" if val is not None else "no validation yet"),
            _cell(metrics, tip="\n".join(f"{k}: {v:.6g}" for k, v in r.val.items())),
            _cell(fmt_duration(r.seconds) if r.seconds else "", sort=r.seconds, tip="training time, pauses excluded"),
        ]
        color = {"completed": theme.OK_COLOR, "no metrics": theme.MUTED}.get(r.status)
        if r.status in ("unreadable config", "unreadable") or r.damaged:
            color = theme.ERROR_COLOR
        if color:
            cells[2].setForeground(QtGui.QColor(color))
        for col in (3, 7, 9):
            cells[col].setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
        for it in cells:
            it.setData(PATH_ROLE, str(r.path))
        for col, it in enumerate(cells):
            self.setItem(row, col, it)

    def row_path(self, row: int) -> str:
        it = self.item(row, 0)
        return it.data(PATH_ROLE) if it is not None else ""

    def selected_paths(self) -> list[str]:
        """Paths of the selected runs, in table order."""
        rows = sorted({i.row() for i in self.selectionModel().selectedRows()})
        return [self.row_path(r) for r in rows]

    def select_paths(self, paths: set[str]) -> None:
        """Select exactly the rows of these run folders (no selection signal)."""
        with QtCore.QSignalBlocker(self):
            self.clearSelection()
            self._select(paths)

    def _select(self, paths: set[str]) -> None:
        sel = self.selectionModel()
        with QtCore.QSignalBlocker(self):
            for row in range(self.rowCount()):
                if self.row_path(row) in paths:
                    sel.select(self.model().index(row, 0),
                               QtCore.QItemSelectionModel.SelectionFlag.Select
                               | QtCore.QItemSelectionModel.SelectionFlag.Rows)

    def set_swatches(self, color_of) -> None:
        """The swatch beside each name: ``color_of(path)``, or none (names stay aligned)."""
        for row in range(self.rowCount()):
            self.item(row, 0).setIcon(_swatch(color_of(self.row_path(row)) or "transparent"))
