"""Tasks panel: what the model learns from, and how several objectives share one model.

A list of tasks (each a ``[[tasks]]`` entry of the experiment): next-token prediction, masked
tokens, "does B follow A?", and labelled tasks read from a dataset (edited in a compact dialog
that reuses the Fine-tune page's dataset form). Each task has a name, a weight and, for masked
tokens, the share of positions to hide. Below, how the tasks are combined (the ``[multitask]``
table): which tasks a step trains (sampling), how their losses are weighted, and how often the
run measures the conflict between their gradients (shown on the Task balance page).

On the right a drawing of the set-up (``tasks_mix.TaskMixDiagram``): one shared trunk, a head per
task, and what one training step does with them. Every change is checked by the engine's own
validation (``engine.config.from_dict``); the message appears under the form as the engine words it.
"""

from __future__ import annotations

import dataclasses
import html

from PySide6 import QtCore, QtWidgets

from workbench.engine.config import (
    LABELLED_KINDS,
    PRETRAINING_KINDS,
    ConfigError,
    MultitaskConfig,
    TaskConfig,
    from_dict,
    setting_warnings,
)
from workbench.engine.errors import WorkbenchError

from .. import theme
from ..widgets.flow import Columns, FlowRow, WrapLabel, labelled
from . import Panel, card, error_label, field_help, muted_label, plain, show_error, spin_value
from .dataset_form import KIND_LOOK, DatasetForm, DatasetPreview
from .tasks_mix import SAMPLING_LOOK, WEIGHTING_LOOK, TaskMixDiagram

PRETRAIN_LOOK = {
    "causal_lm": ("Next-token prediction", "predict each next token (GPT)"),
    "masked_lm": ("Masked tokens", "fill in hidden tokens, both sides seen (BERT)"),
    "continuity": ("Does B follow A?", "a true continuation or a random one?"),
}


def kind_title(kind: str) -> tuple[str, str]:
    return PRETRAIN_LOOK.get(kind) or KIND_LOOK.get(kind) or (kind, "")


# =============================================================================================
# one row per task


class TaskRow(QtWidgets.QFrame):
    """A task: its kind (title and what it does), name, weight, mask share; edit and remove."""

    changed = QtCore.Signal()
    removeRequested = QtCore.Signal(object)
    editRequested = QtCore.Signal(object)

    def __init__(self, cfg: TaskConfig, color: str, parent=None):
        super().__init__(parent)
        self.setObjectName("taskRow")
        self._cfg = cfg
        self._color = color
        self.setStyleSheet("QFrame#taskRow { background: #ffffff; border: 1px solid #e1e4e8; border-radius: 6px; }"
                           "QFrame#taskRow QLabel { border: none; background: transparent; }")
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(10, 6, 8, 6)
        lay.setSpacing(8)
        self.dot = QtWidgets.QLabel()
        self.dot.setFixedSize(12, 12)
        lay.addWidget(self.dot, 0, QtCore.Qt.AlignmentFlag.AlignVCenter)
        text = QtWidgets.QVBoxLayout()
        text.setSpacing(0)
        self.title = QtWidgets.QLabel()
        f = self.title.font()
        f.setBold(True)
        self.title.setFont(f)
        self.detail = WrapLabel()
        self.detail.setObjectName("mutedLabel")
        self.detail.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail.setWordWrap(True)
        self.detail.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        # the task's name stays whole: the controls beside it wrap instead
        self.title.setSizePolicy(QtWidgets.QSizePolicy.Policy.Preferred, QtWidgets.QSizePolicy.Policy.Preferred)
        text.addWidget(self.title)
        text.addWidget(self.detail)
        lay.addLayout(text, 1)

        self.name_edit = QtWidgets.QLineEdit(cfg.name)
        self.name_edit.setFixedWidth(100)
        self.name_edit.setPlaceholderText(cfg.task_name if not cfg.name else "")
        self.name_edit.setToolTip(field_help(TaskConfig, "name"))
        self.weight = QtWidgets.QDoubleSpinBox()
        self.weight.setRange(0.0, 100.0)
        self.weight.setDecimals(2)
        self.weight.setSingleStep(0.1)
        self.weight.setValue(cfg.weight)
        self.weight.setToolTip(field_help(TaskConfig, "weight"))
        self.mask_prob = QtWidgets.QDoubleSpinBox()
        self.mask_prob.setRange(0.01, 0.9)
        self.mask_prob.setDecimals(2)
        self.mask_prob.setSingleStep(0.05)
        self.mask_prob.setValue(cfg.mask_prob)
        self.mask_prob.setToolTip(field_help(TaskConfig, "mask_prob"))
        self.mask_label = QtWidgets.QLabel("masked")
        self.mask_label.setToolTip(self.mask_prob.toolTip())
        self.edit_button = QtWidgets.QPushButton("Data…")
        self.edit_button.setToolTip("The dataset and its columns")
        self.remove_button = QtWidgets.QToolButton()
        self.remove_button.setText("✕")
        self.remove_button.setToolTip("Remove this task")
        controls = FlowRow()  # wrap under each other in a narrow column
        for lab, w in (("name", self.name_edit), ("weight", self.weight)):
            pair = labelled(lab, w)
            caption = pair.findChild(QtWidgets.QLabel)
            caption.setObjectName("mutedLabel")
            caption.setToolTip(w.toolTip())
            controls.add(pair)
        mask = QtWidgets.QWidget()
        ml = QtWidgets.QHBoxLayout(mask)
        ml.setContentsMargins(0, 0, 0, 0)
        ml.addWidget(self.mask_label)
        ml.addWidget(self.mask_prob)
        controls.add(mask, self.edit_button, self.remove_button)
        lay.addWidget(controls)

        self.name_edit.textChanged.connect(self._changed)
        self.weight.valueChanged.connect(self._changed)
        self.mask_prob.valueChanged.connect(self._changed)
        self.remove_button.clicked.connect(lambda: self.removeRequested.emit(self))
        self.edit_button.clicked.connect(lambda: self.editRequested.emit(self))
        self._refresh()

    def task_config(self) -> TaskConfig:
        return dataclasses.replace(self._cfg, name=self.name_edit.text().strip(),
                                   weight=spin_value(self.weight, self._cfg.weight),
                                   mask_prob=spin_value(self.mask_prob, self._cfg.mask_prob))

    def set_task_config(self, cfg: TaskConfig) -> None:
        self._cfg = cfg
        for w, v in ((self.name_edit, cfg.name), (self.weight, cfg.weight), (self.mask_prob, cfg.mask_prob)):
            with QtCore.QSignalBlocker(w):
                w.setText(v) if isinstance(w, QtWidgets.QLineEdit) else w.setValue(v)
        self._refresh()
        self.changed.emit()

    def set_color(self, color: str) -> None:
        self._color = color
        self._refresh()

    def _changed(self, *_a) -> None:
        self._cfg = self.task_config()
        self._refresh()
        self.changed.emit()

    def _refresh(self) -> None:
        cfg = self._cfg
        self.dot.setStyleSheet(f"background: {self._color}; border-radius: 6px;")
        title, what = kind_title(cfg.kind)
        self.title.setText(title)
        labelled = cfg.kind in LABELLED_KINDS
        if labelled:
            from pathlib import Path

            what = (f"{what} · {Path(cfg.train).name}" if cfg.train else f"{what} · no data file chosen yet")
        self.detail.setText(f"{cfg.kind} · {what}")
        self.name_edit.setPlaceholderText(TaskConfig(kind=cfg.kind).task_name)
        self.mask_prob.setVisible(cfg.kind == "masked_lm")
        self.mask_label.setVisible(cfg.kind == "masked_lm")
        self.edit_button.setVisible(labelled)


# =============================================================================================
# the compact labelled-task dialog


class LabelledTaskDialog(QtWidgets.QDialog):
    """A labelled task for a multi-task mixture: the Fine-tune page's dataset form, lambda, and a
    preview of the file."""

    def __init__(self, cfg: TaskConfig, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Labelled task")
        self.resize(760, 620)
        self._cfg = cfg
        self.form = DatasetForm()
        self.form.set_task_config(cfg)
        self.lm_weight = QtWidgets.QDoubleSpinBox()
        self.lm_weight.setRange(0.0, 10.0)
        self.lm_weight.setDecimals(2)
        self.lm_weight.setSingleStep(0.1)
        self.lm_weight.setValue(cfg.lm_weight)
        self.lm_weight.setToolTip(field_help(TaskConfig, "lm_weight"))
        self.form.form.addRow("Auxiliary LM weight λ", self.lm_weight)
        self.preview = DatasetPreview()
        self.preview.setMinimumHeight(150)
        self.error = error_label()
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Ok
                                             | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(muted_label("A labelled task trained from scratch alongside the others. To adapt a "
                                  "pretrained model to it, use the Fine-tune page instead."))
        lay.addWidget(self.form)
        lay.addWidget(self.preview, 1)
        lay.addWidget(self.error)
        lay.addWidget(buttons)
        self.form.previewChanged.connect(self._preview)
        self.form.changed.connect(self._validate)
        self._preview()
        self._validate()

    def task_config(self) -> TaskConfig:
        return dataclasses.replace(self.form.task_config(self._cfg),
                                   lm_weight=spin_value(self.lm_weight, self._cfg.lm_weight))

    def _preview(self) -> None:
        self.preview.set_rows(self.form.columns(), self.form.rows())

    def _validate(self) -> None:
        try:
            from_dict({"tasks": [plain(self.task_config())]}, source="this task")
            show_error(self.error, self.form.preview_error())
        except ConfigError as e:
            show_error(self.error, str(e).replace("this task: ", ""))


# =============================================================================================
# the panel


class TasksPanel(Panel):
    title = "Tasks"
    subtitle = ("What the model learns from. Several tasks share one transformer, each with its own head and loss; "
                "choose how a step mixes them and how their losses are weighted.")

    changed = QtCore.Signal()
    finetuneRequested = QtCore.Signal()  # "Fine-tune a pretrained model…" chosen: show the Fine-tune page

    def __init__(self, parent=None):
        super().__init__(parent)
        self.colors = theme.TaskColors()
        self._rows: list[TaskRow] = []
        self._base_multitask = MultitaskConfig()

        self.finetune_note = WrapLabel()
        self.finetune_note.setWordWrap(True)
        self.finetune_note.setStyleSheet("background: #fff4e0; border: 1px solid #f0c987; border-radius: 6px; "
                                         "padding: 6px 10px; color: #5a4310;")
        self.finetune_note.hide()
        self.body.addWidget(self.finetune_note)

        left = QtWidgets.QVBoxLayout()
        left.setSpacing(10)
        box, lay = card("Tasks")
        self.rows_layout = QtWidgets.QVBoxLayout()
        self.rows_layout.setSpacing(6)
        lay.addLayout(self.rows_layout)
        self.add_button = QtWidgets.QToolButton()
        self.add_button.setText("+  Add task")
        self.add_button.setPopupMode(QtWidgets.QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QtWidgets.QMenu(self.add_button)
        for kind in PRETRAINING_KINDS:
            title, what = PRETRAIN_LOOK[kind]
            menu.addAction(f"{title}  —  {what}", lambda k=kind: self.add_task(TaskConfig(kind=k)))
        menu.addSeparator()
        sub = menu.addMenu("Labelled task from a dataset (from scratch)")
        for kind in LABELLED_KINDS:
            title, what = KIND_LOOK[kind]
            sub.addAction(f"{title}  —  {what}", lambda k=kind: self._add_labelled(k))
        menu.addAction("Fine-tune a pretrained model on a labelled task…", self.finetuneRequested.emit)
        self.add_button.setMenu(menu)
        self.add_menu = menu
        brow = QtWidgets.QHBoxLayout()
        brow.addWidget(self.add_button)
        brow.addStretch(1)
        # a removed task (its dataset, columns, weights) can be taken back
        self.undo_label = muted_label()
        self.undo_button = QtWidgets.QPushButton("Undo")
        self.undo_button.clicked.connect(self.undo_remove)
        self._removed: tuple[int, TaskConfig] | None = None
        brow.addWidget(self.undo_label)
        brow.addWidget(self.undo_button)
        self.undo_label.hide()
        self.undo_button.hide()
        lay.addLayout(brow)
        left.addWidget(box)

        box, form = card("Combining the tasks", QtWidgets.QFormLayout())
        self.sampling = QtWidgets.QComboBox()
        for key, text in SAMPLING_LOOK:
            self.sampling.addItem(text, key)
        self.sampling.setMinimumContentsLength(12)
        self.sampling.setToolTip(field_help(MultitaskConfig, "sampling"))
        form.addRow("Each step trains", self.sampling)
        self.temperature = QtWidgets.QDoubleSpinBox()
        self.temperature.setRange(0.01, 100.0)
        self.temperature.setDecimals(2)
        self.temperature.setSingleStep(0.5)
        self.temperature.setToolTip(field_help(MultitaskConfig, "temperature"))
        self.temperature_label = QtWidgets.QLabel("Temperature T")
        form.addRow(self.temperature_label, self.temperature)
        self.weighting = QtWidgets.QComboBox()
        for key, text in WEIGHTING_LOOK:
            self.weighting.addItem(text, key)
        self.weighting.setToolTip(field_help(MultitaskConfig, "weighting"))
        form.addRow("Loss weighting", self.weighting)
        self.gradnorm_alpha = QtWidgets.QDoubleSpinBox()
        self.gradnorm_alpha.setRange(0.0, 10.0)
        self.gradnorm_alpha.setSingleStep(0.25)
        self.gradnorm_alpha.setToolTip(field_help(MultitaskConfig, "gradnorm_alpha"))
        self.gradnorm_lr = QtWidgets.QDoubleSpinBox()
        self.gradnorm_lr.setRange(0.0, 1.0)
        self.gradnorm_lr.setDecimals(4)
        self.gradnorm_lr.setSingleStep(0.005)
        self.gradnorm_lr.setToolTip(field_help(MultitaskConfig, "gradnorm_lr"))
        grow = QtWidgets.QHBoxLayout()
        grow.addWidget(QtWidgets.QLabel("α"))
        grow.addWidget(self.gradnorm_alpha)
        grow.addWidget(QtWidgets.QLabel("weight learning rate"))
        grow.addWidget(self.gradnorm_lr)
        grow.addStretch(1)
        self.gradnorm_row = QtWidgets.QWidget()
        self.gradnorm_row.setLayout(grow)
        grow.setContentsMargins(0, 0, 0, 0)
        self.gradnorm_label = QtWidgets.QLabel("GradNorm")
        form.addRow(self.gradnorm_label, self.gradnorm_row)
        self.conflict_every = QtWidgets.QSpinBox()
        self.conflict_every.setRange(0, 1_000_000)
        self.conflict_every.setSingleStep(10)
        self.conflict_every.setSpecialValueText("never")
        self.conflict_every.setSuffix(" steps")
        self.conflict_every.setToolTip(field_help(MultitaskConfig, "conflict_every"))
        form.addRow("Measure conflicts every", self.conflict_every)
        self.explain = muted_label()
        form.addRow(self.explain)
        left.addWidget(box)
        self.error = error_label()
        left.addWidget(self.error)
        left.addStretch(1)

        self.diagram = TaskMixDiagram()
        dbox, dlay = card("One shared model, a head per task")
        dlay.addWidget(self.diagram)

        # the page scrolls (window.page_host.PageScroll): no scroll area of its own, which cut the
        # task rows at the right on a narrow page
        row = Columns(spacing=14)  # side by side, or one above the other on a narrow page
        lw = QtWidgets.QWidget()
        lw.setLayout(left)
        left.setContentsMargins(0, 0, 0, 0)
        row.add(lw, 3)
        row.add(dbox, 2)
        self.body.addWidget(row, 1)
        self.editor = lw

        for w in (self.sampling, self.weighting):
            w.currentIndexChanged.connect(self._changed)
        for w in (self.temperature, self.gradnorm_alpha, self.gradnorm_lr):
            w.valueChanged.connect(self._changed)
        self.conflict_every.valueChanged.connect(self._changed)
        for combo in (self.sampling, self.weighting):  # long item texts must not widen the page
            combo.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(12)
        self.set_config((TaskConfig(),), MultitaskConfig())

    # -- API --------------------------------------------------------------------------------

    def to_config(self) -> tuple[tuple[TaskConfig, ...], MultitaskConfig]:
        tasks = tuple(r.task_config() for r in self._rows)
        base = self._base_multitask
        mt = dataclasses.replace(
            base, sampling=self.sampling.currentData(), temperature=spin_value(self.temperature, base.temperature),
            weighting=self.weighting.currentData(),
            gradnorm_alpha=spin_value(self.gradnorm_alpha, base.gradnorm_alpha),
            gradnorm_lr=spin_value(self.gradnorm_lr, base.gradnorm_lr), conflict_every=self.conflict_every.value())
        return tasks, mt

    def set_config(self, tasks, multitask: MultitaskConfig) -> None:
        for r in list(self._rows):
            self._remove_row(r, emit=False)
        self._offer_undo(None)
        self.colors.clear()
        for t in tasks:
            self._add_row(t)
        self._base_multitask = multitask
        widgets = (self.sampling, self.weighting, self.temperature, self.gradnorm_alpha, self.gradnorm_lr,
                   self.conflict_every)
        blockers = [QtCore.QSignalBlocker(w) for w in widgets]
        self.sampling.setCurrentIndex(max(0, self.sampling.findData(multitask.sampling)))
        self.weighting.setCurrentIndex(max(0, self.weighting.findData(multitask.weighting)))
        self.temperature.setValue(multitask.temperature)
        self.gradnorm_alpha.setValue(multitask.gradnorm_alpha)
        self.gradnorm_lr.setValue(multitask.gradnorm_lr)
        self.conflict_every.setValue(multitask.conflict_every)
        del blockers
        self._changed()

    def add_task(self, cfg: TaskConfig) -> TaskRow:
        """Append a task (renamed when its default name is taken)."""
        names = {r.task_config().task_name for r in self._rows}
        if cfg.task_name in names and not cfg.name:
            k = 2
            while f"{cfg.task_name}{k}" in names:
                k += 1
            cfg = dataclasses.replace(cfg, name=f"{cfg.task_name}{k}")
        row = self._add_row(cfg)
        self._changed()
        return row

    def remove_task(self, index: int) -> None:
        self._remove_row(self._rows[index])

    def rows(self) -> list[TaskRow]:
        return list(self._rows)

    def validate(self) -> str:
        """The engine's message for what is wrong with the tasks and their combination, or ""."""
        tasks, mt = self.to_config()
        try:
            from_dict({"tasks": [plain(t) for t in tasks], "multitask": plain(mt)}, source="tasks")
        except (ConfigError, WorkbenchError) as e:
            return str(e).replace("tasks: ", "", 1)
        return ""

    def error_text(self) -> str:
        """The message shown under the form ("" when the settings are valid)."""
        return self.error.text() if not self.error.isHidden() else ""

    def set_finetune_note(self, on: bool) -> None:
        """Fine-tuning is on (Fine-tune page): say that these tasks are not what the run trains."""
        self.finetune_note.setText(
            "<b>Fine-tuning is on</b> (Fine-tune page): the run trains that page's labelled task from its "
            "checkpoint. These tasks are used when fine-tuning is switched off.")
        self.finetune_note.setVisible(on)
        self.editor.setEnabled(not on)

    def set_editable(self, editable: bool) -> None:
        self.editor.setEnabled(editable and not self.finetune_note.isVisible())

    # -- internals --------------------------------------------------------------------------

    def _add_row(self, cfg: TaskConfig, index: int | None = None) -> TaskRow:
        row = TaskRow(cfg, self.colors(f"#{len(self._rows)}"))
        row.changed.connect(self._changed)
        row.removeRequested.connect(self._remove_row)
        row.editRequested.connect(self._edit_row)
        index = len(self._rows) if index is None else min(index, len(self._rows))
        self._rows.insert(index, row)
        self.rows_layout.insertWidget(index, row)
        return row

    def _offer_undo(self, removed: tuple[int, TaskConfig] | None) -> None:
        self._removed = removed
        if removed is not None:
            self.undo_label.setText(f"Removed {removed[1].task_name}.")
        self.undo_label.setVisible(removed is not None)
        self.undo_button.setVisible(removed is not None)

    def undo_remove(self) -> None:
        """Put the task removed last back where it was."""
        if self._removed is not None:
            index, cfg = self._removed
            self._offer_undo(None)
            self._add_row(cfg, index)
            self._recolor()
            self._changed()

    def _remove_row(self, row: TaskRow, emit: bool = True) -> None:
        if row in self._rows:
            if emit:  # removed by the person: offer it back
                self._offer_undo((self._rows.index(row), row.task_config()))
            self._rows.remove(row)
            self.rows_layout.removeWidget(row)
            row.setParent(None)
            row.deleteLater()
        if emit:
            self._recolor()
            self._changed()

    def _recolor(self) -> None:
        self.colors.clear()
        for i, r in enumerate(self._rows):
            r.set_color(self.colors(f"#{i}"))

    def _add_labelled(self, kind: str) -> None:
        regression = kind == "regression"
        cfg = TaskConfig(kind=kind, label="" if regression else "label", score="score" if regression else "")
        dlg = LabelledTaskDialog(cfg, self)
        if dlg.exec() == QtWidgets.QDialog.DialogCode.Accepted:
            self.add_task(dlg.task_config())

    def _edit_row(self, row: TaskRow) -> None:
        dlg = LabelledTaskDialog(row.task_config(), self)
        if dlg.exec() == QtWidgets.QDialog.DialogCode.Accepted:
            row.set_task_config(dlg.task_config())

    def _changed(self, *_a) -> None:
        sampling, weighting = self.sampling.currentData(), self.weighting.currentData()
        self.temperature.setVisible(sampling == "temperature")
        self.temperature_label.setVisible(sampling == "temperature")
        self.gradnorm_row.setVisible(weighting == "gradnorm")
        self.gradnorm_label.setVisible(weighting == "gradnorm")
        for r in self._rows:
            r.remove_button.setEnabled(len(self._rows) > 1)
        tasks, mt = self.to_config()
        self.explain.setText(_explain(tasks, mt))
        show_error(self.error, self.validate())
        self.diagram.set_mix(list(tasks), mt, [self.colors(f"#{i}") for i in range(len(tasks))])
        n = len(tasks)
        self.set_summary(", ".join(t.task_name for t in tasks) if n <= 3 else f"{n} tasks")
        self.changed.emit()


def _explain(tasks, mt: MultitaskConfig) -> str:
    n = len(tasks)
    if n == 1:
        return "One task: sampling and weighting only matter once there are two or more."
    parts = {
        "fixed": "Each loss is multiplied by its task's weight.",
        "average": "Every task counts the same, whatever its weight.",
        "uncertainty": "Each task learns how noisy it is; noisier tasks get smaller weights as training goes.",
        "gradnorm": "Weights are learned so that every task's gradient has a similar size, pushing slower tasks.",
        "pcgrad": "Each loss is multiplied by its task's weight; where two tasks' gradients point against each "
                  "other, the conflicting part is removed.",
    }
    text = parts.get(mt.weighting, "")
    if mt.sampling != "all" and mt.weighting in ("fixed", "average"):
        text = "The weights decide how often each task is drawn; a drawn task's loss counts fully."
    if mt.conflict_every:
        text += f" Every {mt.conflict_every:,} steps the run compares the tasks' gradients (Task balance page)."
        if mt.sampling != "all":
            text += " With one task per step only that task has a gradient, so pairs show as not measured."
    for warning in setting_warnings(tasks, mt):
        text += f" <b>Note:</b> {html.escape(warning[0].upper() + warning[1:])}"
    return text
