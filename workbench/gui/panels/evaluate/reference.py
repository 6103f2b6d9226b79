"""The fine-tuned reference above the accuracy plot: an accuracy typed in, or the best / last
validation accuracy of the same task read from a fine-tuned run's metrics.jsonl (in the
background: ``jobs.evaluate.read_reference``), drawn as a line on the plot."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Callable

from PySide6 import QtCore, QtWidgets

from ... import theme
from ...bridge import JobSlot
from ...jobs.evaluate import read_reference
from .. import muted_label
from .plot import AccuracyPlot


class ReferenceRow(QtWidgets.QWidget):
    """``data()`` gives the task's data file ("" for the built-in task): the run's task must match it."""

    def __init__(self, plot: AccuracyPlot, data: Callable[[], str], parent=None):
        super().__init__(parent)
        self._plot, self._data = plot, data
        self._run = ""
        self._label = "typed"
        self.box = QtWidgets.QCheckBox("Fine-tuned reference")
        self.box.setToolTip("The accuracy a model fine-tuned on the same task reached: type it, or read "
                            "it from a fine-tuned run")
        self.spin = QtWidgets.QDoubleSpinBox()
        self.spin.setRange(0.0, 1.0)
        self.spin.setDecimals(3)
        self.spin.setSingleStep(0.01)
        self.button = QtWidgets.QPushButton("From a run…")
        self.button.setToolTip("Read the validation accuracy of the same task from a fine-tuned run's "
                               "metrics.jsonl")
        self.which = QtWidgets.QComboBox()
        self.which.addItem("best", "best")
        self.which.addItem("last", "last")
        self.which.setToolTip("The run's best validation accuracy, or its last one")
        self.info = muted_label()
        row = QtWidgets.QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.box)
        row.addWidget(self.spin)
        row.addWidget(self.button)
        row.addWidget(self.which)
        row.addWidget(self.info, 1)

        self.slot = JobSlot(self, "read fine-tuned accuracy", on_done=self._read_done, on_failed=self._read_failed)
        self.box.toggled.connect(self._edited)
        self.spin.valueChanged.connect(self._typed)
        self.button.clicked.connect(self._browse)
        self.which.currentIndexChanged.connect(self._reread)

    def set_value(self, value: float | None, label: str = "typed") -> None:
        """A fine-tuned accuracy to draw as a line (None: no line)."""
        with QtCore.QSignalBlocker(self.box), QtCore.QSignalBlocker(self.spin):
            self.box.setChecked(value is not None)
            if value is not None:
                self.spin.setValue(float(value))
        self._label = label
        self._plot.set_reference(value, label if label != "typed" else "")

    def load(self, run: str | Path) -> None:
        """Read the fine-tuned accuracy of the matching task from a run's metrics.jsonl."""
        self._run = str(run)
        self.info.setText("Reading the run's metrics…")
        self.slot.start(read_reference, str(run), self._data(), self.which.currentData())

    def _read_done(self, score) -> None:
        name = Path(score.run).name
        self.set_value(score.value, f"{score.which}, {name}")
        self.info.setText(f"{score.which} validation accuracy of task {score.task!r} in {name}, "
                          f"step {score.step:,}")
        self.info.setToolTip(str(score.run))

    def _read_failed(self, message: str, _details: str) -> None:
        self.info.setText(f"<span style='color:{theme.ERROR_COLOR}'>{html.escape(message)}</span>")

    def _browse(self) -> None:
        from workbench import paths

        start = self._run or (str(paths.runs_dir()) if paths.runs_dir().exists() else str(Path.home()))
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Choose a fine-tuned run", start)
        if path:
            self.load(path)

    def _reread(self) -> None:
        if self._run:
            self.load(self._run)

    def _edited(self, on: bool) -> None:
        label = self._label if self._label != "typed" else ""
        self._plot.set_reference(self.spin.value() if on else None, label)

    def _typed(self, value: float) -> None:
        self._label = "typed"
        self.info.setText("typed in")
        with QtCore.QSignalBlocker(self.box):
            self.box.setChecked(True)
        self._plot.set_reference(value, "")
