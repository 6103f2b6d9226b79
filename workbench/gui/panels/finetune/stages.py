"""The stages editor of a staged freezing plan, and the plan it proposes."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from workbench.engine.config import FinetuneConfig, StageConfig

from .. import SciSpinBox, field_help


STAGE_PRESETS = ["heads", "heads, ln_f", "heads, ln_f, top:1", "heads, ln_f, top:2", "heads, ln_f, blocks", "all",
                 "blocks", "embeddings"]


class StagesEditor(QtWidgets.QWidget):
    """A small table of stages: steps, what trains, learning rate (0: the run's)."""

    changed = QtCore.Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.table = QtWidgets.QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Steps", "What trains", "Learning rate"])
        self.table.verticalHeader().setDefaultSectionSize(30)
        self.table.horizontalHeader().setSectionResizeMode(1, QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.table.setColumnWidth(0, 80)
        self.table.setColumnWidth(2, 100)
        self.table.setToolTip(field_help(FinetuneConfig, "stages"))
        self.table.setMinimumHeight(130)
        self.add_button = QtWidgets.QPushButton("Add stage")
        self.remove_button = QtWidgets.QPushButton("Remove last")
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.table)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.add_button)
        row.addWidget(self.remove_button)
        row.addStretch(1)
        lay.addLayout(row)
        self.add_button.clicked.connect(lambda: self.add_stage(StageConfig(steps=100, trainable=("all",))))
        self.remove_button.clicked.connect(self.remove_last)

    def stages(self) -> tuple[StageConfig, ...]:
        out = []
        for i in range(self.table.rowCount()):
            steps = self.table.cellWidget(i, 0).value()
            text = self.table.cellWidget(i, 1).currentText()
            trainable = tuple(t.strip() for t in text.replace(";", ",").split(",") if t.strip())
            lr = self.table.cellWidget(i, 2).value()
            out.append(StageConfig(steps=steps, trainable=trainable or ("all",), learning_rate=lr))
        return tuple(out)

    def set_stages(self, stages) -> None:
        with QtCore.QSignalBlocker(self):
            self.table.setRowCount(0)
            for st in stages:
                self.add_stage(st, emit=False)
        self.changed.emit()

    def add_stage(self, st: StageConfig, emit: bool = True) -> None:
        i = self.table.rowCount()
        self.table.insertRow(i)
        steps = QtWidgets.QSpinBox()
        steps.setRange(1, 10_000_000)
        steps.setSingleStep(50)
        steps.setValue(st.steps)
        steps.setToolTip(field_help(StageConfig, "steps"))
        what = QtWidgets.QComboBox()
        what.setEditable(True)
        what.addItems(STAGE_PRESETS)
        what.setCurrentText(", ".join(st.trainable))
        what.setToolTip(field_help(StageConfig, "trainable"))
        lr = SciSpinBox(minimum=0.0, maximum=10.0)
        lr.setValue(st.learning_rate)
        lr.setSpecialValueText("run's")
        lr.setToolTip(field_help(StageConfig, "learning_rate"))
        for w in (steps, lr):
            w.valueChanged.connect(lambda *_: self.changed.emit())
        what.currentTextChanged.connect(lambda *_: self.changed.emit())
        self.table.setCellWidget(i, 0, steps)
        self.table.setCellWidget(i, 1, what)
        self.table.setCellWidget(i, 2, lr)
        if emit:
            self.changed.emit()

    def remove_last(self) -> None:
        if self.table.rowCount():
            self.table.removeRow(self.table.rowCount() - 1)
            self.changed.emit()


def default_stages(max_steps: int) -> tuple[StageConfig, ...]:
    """A ULMFiT-like three-stage plan sized to the run: head, then the top blocks, then all."""
    a = max(1, max_steps // 5)
    return (StageConfig(steps=a, trainable=("heads",)),
            StageConfig(steps=a, trainable=("heads", "ln_f", "top:2")),
            StageConfig(steps=max(1, max_steps - 2 * a), trainable=("all",)))
