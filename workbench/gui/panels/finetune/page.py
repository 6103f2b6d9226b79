"""The Fine-tune page: adapt a pretrained model to a labelled task, choosing what stays frozen.

The settings (left) are the ``[[tasks]]`` entry of the labelled task and the ``[finetune]`` table
of the experiment: a checkpoint to start from, a labelled dataset and which of its columns hold the
text, second text, label, score or answers, the task kind (GPT-1's input transformations), the
auxiliary LM weight lambda, augmentation, and the freezing strategy.

The views (right) show what those settings mean and what the run does with them:

- the freezing plan as lanes (``lanes.FreezeLaneView``), one per layer group across the steps of
  the run: the engine's own ``FreezePlan``, so the picture is the plan that runs. While training, a
  line marks the current step and triangles mark where the trainer actually changed what trains
  (``FreezeChanged``);
- during training (``live.TrainingViews``): the loss (task loss and auxiliary LM loss), the
  validation metrics, the gradient norm of every layer group and the confusion matrix;
- the inspector (``inspector.InputInspector``): the exact token sequence(s) the task builds for a
  chosen validation example, built by the engine from the checkpoint's tokenizer in a background
  job (``jobs.finetune.check_labelled``: it reads the whole dataset, as the run will);
- a preview of the dataset's first rows.

The form for the labelled dataset is ``dataset_form.DatasetForm`` (shared with the Tasks and
Evaluate pages). This module also holds ``experiment_sections`` / ``load_experiment_into``: how
the Tasks and Fine-tune pages together make an experiment.
"""

from __future__ import annotations

import dataclasses
import html
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from workbench.engine.config import (
    LABELLED_KINDS,
    ConfigError,
    FinetuneConfig,
    TaskConfig,
    TrainingConfig,
    from_dict,
)
from workbench.engine.errors import WorkbenchError
from workbench.engine.freezing import layer_groups

from ... import theme
from ...bridge import JobSlot
from ...jobs.finetune import check_labelled, list_checkpoints
from ...widgets.flow import ColumnScroll, FlowRow, ReflowSplitter
from .. import Panel, card, error_label, field_help, muted_label, plain, show_error, spin_value
from workbench.curves import step_columns
from ..dataset_form import COLUMN_ROLES, DatasetForm, DatasetPreview
from .inspector import InputInspector
from .lanes import FreezeLaneView
from .live import TrainingViews
from .stages import StagesEditor, default_stages

FREEZE_LOOK = [
    ("none", "Everything trains"),
    ("head_only", "Head only (linear probe)"),
    ("bottom_n", "Freeze the bottom N blocks"),
    ("gradual", "Gradual unfreezing (ULMFiT)"),
    ("stages", "A plan of stages"),
]


class FinetunePanel(Panel):
    title = "Fine-tune"
    subtitle = ("Adapt a pretrained model to a labelled task: choose the model, the data and what stays frozen. "
                "The lanes show which layers train at every step of the run.")

    changed = QtCore.Signal()
    enabledChanged = QtCore.Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._max_steps = TrainingConfig().max_steps
        self._n_layer = 4
        self._base_lr = TrainingConfig().learning_rate
        self._ckpt_n_layer: int | None = None
        self._base_task = TaskConfig(kind="classification", label="label")
        self._base_ft = FinetuneConfig()
        self._runs: dict = {}
        self._following = True  # the run under way fine-tunes: its events belong on this page
        self._listed = False
        self._check_key = None  # (task, checkpoint) of the latest check: an unchanged setting is not read again
        # one background job of each kind; a newer one replaces the one before, whose result is dropped
        self._check = JobSlot(self, "check labelled data", on_done=self._check_done, on_failed=self._check_failed)
        self._list = JobSlot(self, "list runs", on_done=self._fill_checkpoints, on_failed=self._list_failed)
        self._seen_step = False  # the first step of a run brings the Training tab forward

        self.enable_box = QtWidgets.QCheckBox("Fine-tune a model on a labelled task")
        self.enable_box.setObjectName("enableFinetune")
        enable_row = FlowRow()  # the note goes under the box on a narrow page
        enable_row.add(self.enable_box, muted_label("(off: the run pretrains with the tasks of the Tasks page)"))
        self.body.addWidget(enable_row)

        # ---- left: settings ---------------------------------------------------------------
        settings = QtWidgets.QWidget()
        left = QtWidgets.QVBoxLayout(settings)
        left.setContentsMargins(0, 0, 6, 0)
        left.setSpacing(8)

        box, lay = card("Start from")
        row = QtWidgets.QHBoxLayout()
        self.checkpoint_combo = QtWidgets.QComboBox()
        self.checkpoint_combo.setToolTip(field_help(FinetuneConfig, "init"))
        self.checkpoint_combo.setSizeAdjustPolicy(
            QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.checkpoint_combo.setMinimumContentsLength(20)
        self.refresh_button = QtWidgets.QToolButton()
        self.refresh_button.setText("↻")
        self.refresh_button.setToolTip("Look for new runs")
        self.browse_button = QtWidgets.QPushButton("Browse…")
        self.browse_button.setToolTip("A run folder (its latest checkpoint) or a checkpoint .json")
        row.addWidget(self.checkpoint_combo, 1)
        row.addWidget(self.refresh_button)
        row.addWidget(self.browse_button)
        lay.addLayout(row)
        self.checkpoint_info = muted_label()
        lay.addWidget(self.checkpoint_info)
        left.addWidget(box)

        box, lay = card("Labelled data")
        self.dataset = DatasetForm()
        lay.addWidget(self.dataset)
        left.addWidget(box)

        box, grid = card("Objective", QtWidgets.QGridLayout())
        self.lm_weight = QtWidgets.QDoubleSpinBox()
        self.lm_weight.setRange(0.0, 10.0)
        self.lm_weight.setSingleStep(0.1)
        self.lm_weight.setDecimals(2)
        self.lm_weight.setToolTip(field_help(TaskConfig, "lm_weight"))
        lab = QtWidgets.QLabel("Auxiliary LM weight λ")
        lab.setToolTip(self.lm_weight.toolTip())
        grid.addWidget(lab, 0, 0)
        grid.addWidget(self.lm_weight, 0, 1)
        grid.addWidget(muted_label("L = L_task + λ·L_LM (GPT-1: 0.5; 0: off)"), 0, 2, 1, 2)
        self.aug: dict[str, QtWidgets.QDoubleSpinBox] = {}
        for k, (name, text) in enumerate((("aug_token_dropout", "Token dropout"), ("aug_delete", "Delete a token"),
                                          ("aug_swap", "Swap neighbours"), ("aug_mask", "Mask a token"))):
            w = QtWidgets.QDoubleSpinBox()
            w.setRange(0.0, 0.5)
            w.setSingleStep(0.02)
            w.setDecimals(2)
            w.setToolTip(field_help(TaskConfig, name))
            lab = QtWidgets.QLabel(text)
            lab.setToolTip(w.toolTip())
            grid.addWidget(lab, 1 + k // 2, 2 * (k % 2))
            grid.addWidget(w, 1 + k // 2, 2 * (k % 2) + 1)
            self.aug[name] = w
        aug_note = muted_label("Augmentation applies to training batches only; each number is a chance per token.")
        grid.addWidget(aug_note, 3, 0, 1, 4)
        left.addWidget(box)

        box, form = card("What trains", QtWidgets.QFormLayout())
        self.freeze_combo = QtWidgets.QComboBox()
        for key, text in FREEZE_LOOK:
            self.freeze_combo.addItem(text, key)
        self.freeze_combo.setToolTip(field_help(FinetuneConfig, "freeze"))
        form.addRow("Strategy", self.freeze_combo)
        self.freeze_n = QtWidgets.QSpinBox()
        self.freeze_n.setRange(0, 96)
        self.freeze_n.setToolTip(field_help(FinetuneConfig, "freeze_n"))
        self.freeze_n_label = QtWidgets.QLabel("Frozen blocks")
        form.addRow(self.freeze_n_label, self.freeze_n)
        self.unfreeze_every = QtWidgets.QSpinBox()
        self.unfreeze_every.setRange(1, 10_000_000)
        self.unfreeze_every.setSingleStep(10)
        self.unfreeze_every.setToolTip(field_help(FinetuneConfig, "unfreeze_every"))
        self.unfreeze_label = QtWidgets.QLabel("Thaw a block every")
        form.addRow(self.unfreeze_label, self.unfreeze_every)
        drow = QtWidgets.QHBoxLayout()
        self.discriminative = QtWidgets.QCheckBox("Discriminative learning rates, factor")
        self.discriminative.setToolTip(field_help(FinetuneConfig, "discriminative"))
        self.lr_factor = QtWidgets.QDoubleSpinBox()
        self.lr_factor.setRange(0.01, 1.0)
        self.lr_factor.setDecimals(3)
        self.lr_factor.setSingleStep(0.05)
        self.lr_factor.setToolTip(field_help(FinetuneConfig, "lr_factor"))
        drow.addWidget(self.discriminative)
        drow.addWidget(self.lr_factor)
        drow.addStretch(1)
        form.addRow(drow)
        self.stages_editor = StagesEditor()
        form.addRow(self.stages_editor)
        left.addWidget(box)
        self.error = error_label()
        left.addWidget(self.error)
        left.addStretch(1)

        self.settings_scroll = ColumnScroll()  # as wide as its content: nothing cut at the right
        self.settings_scroll.setWidget(settings)
        for combo in settings.findChildren(QtWidgets.QComboBox):
            combo.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
        self.settings_scroll.setMinimumHeight(280)  # when it stands above the views (ReflowSplitter)
        self.settings = settings

        # ---- right: views -----------------------------------------------------------------
        plan_box, plan_lay = card("Freezing plan")
        self.lanes = FreezeLaneView()
        self.plan_caption = muted_label()
        plan_lay.addWidget(self.lanes, 1)
        plan_lay.addWidget(self.plan_caption)

        self.tabs = QtWidgets.QTabWidget()
        self.training_tab = TrainingViews()
        self.inspector = InputInspector()
        self.preview = DatasetPreview()
        self.tabs.addTab(self.inspector, "Inspector")
        self.tabs.addTab(self.training_tab, "Training")
        self.tabs.addTab(self.preview, "Data preview")

        right = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        right.setChildrenCollapsible(False)
        right.addWidget(plan_box)
        right.addWidget(self.tabs)
        right.setStretchFactor(0, 2)
        right.setStretchFactor(1, 3)
        right.setSizes([300, 460])
        self.right_splitter = right

        split = ReflowSplitter()  # settings above the views on a narrow page
        split.addWidget(self.settings_scroll)
        split.addWidget(right)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setSizes([460, 900])
        self.splitter = split
        self.body.addWidget(split, 1)

        # ---- wiring ----------------------------------------------------------------------
        self._check_timer = QtCore.QTimer(self)
        self._check_timer.setSingleShot(True)
        self._check_timer.setInterval(400)
        self._check_timer.timeout.connect(self._start_check)
        self.enable_box.toggled.connect(self._enabled_toggled)
        self.checkpoint_combo.currentIndexChanged.connect(self._checkpoint_changed)
        self.refresh_button.clicked.connect(self.refresh_checkpoints)
        self.browse_button.clicked.connect(self._browse_checkpoint)
        self.dataset.changed.connect(self._settings_changed)
        self.dataset.previewChanged.connect(self._update_preview)
        self.lm_weight.valueChanged.connect(self._settings_changed)
        for w in self.aug.values():
            w.valueChanged.connect(self._settings_changed)
        self.freeze_combo.currentIndexChanged.connect(self._freeze_changed)
        for w in (self.freeze_n, self.unfreeze_every):
            w.valueChanged.connect(self._settings_changed)
        self.discriminative.toggled.connect(self._settings_changed)
        self.lr_factor.valueChanged.connect(self._settings_changed)
        self.stages_editor.changed.connect(self._settings_changed)

        self.checkpoint_combo.addItem("Random weights (train from scratch)", "")
        self.set_config(self._base_task, self._base_ft, enabled=False)
        self._update_headline()

    # -- configuration ---------------------------------------------------------------------

    def is_enabled(self) -> bool:
        return self.enable_box.isChecked()

    def set_enabled(self, on: bool) -> None:
        self.enable_box.setChecked(bool(on))

    def to_config(self) -> tuple[TaskConfig, FinetuneConfig]:
        """(the labelled task's ``[[tasks]]`` entry, the ``[finetune]`` table)."""
        task = self.dataset.task_config(self._base_task)
        task = dataclasses.replace(task, lm_weight=spin_value(self.lm_weight, self._base_task.lm_weight),
                                   **{k: spin_value(w, getattr(self._base_task, k)) for k, w in self.aug.items()})
        freeze = self.freeze_combo.currentData()
        ft = dataclasses.replace(
            self._base_ft, init=self.checkpoint(), freeze=freeze, freeze_n=self.freeze_n.value(),
            unfreeze_every=self.unfreeze_every.value(), discriminative=self.discriminative.isChecked(),
            lr_factor=spin_value(self.lr_factor, self._base_ft.lr_factor),
            stages=self.stages_editor.stages() if freeze == "stages" else self._base_ft.stages)
        return task, ft

    def set_config(self, task: TaskConfig | None, finetune: FinetuneConfig, *, enabled: bool | None = None) -> None:
        """Fill the form. ``task`` None keeps the current dataset settings; ``enabled`` None leaves
        the on/off switch as it is."""
        if task is not None:
            self._base_task = task
            self.dataset.set_task_config(task)
            with QtCore.QSignalBlocker(self.lm_weight):
                self.lm_weight.setValue(task.lm_weight)
            for k, w in self.aug.items():
                with QtCore.QSignalBlocker(w):
                    w.setValue(getattr(task, k))
        self._base_ft = finetune
        self.set_checkpoint(finetune.init)
        widgets = (self.freeze_combo, self.freeze_n, self.unfreeze_every, self.discriminative, self.lr_factor)
        blockers = [QtCore.QSignalBlocker(w) for w in widgets]
        self.freeze_combo.setCurrentIndex(max(0, self.freeze_combo.findData(finetune.freeze)))
        self.freeze_n.setValue(finetune.freeze_n)
        self.unfreeze_every.setValue(finetune.unfreeze_every)
        self.discriminative.setChecked(finetune.discriminative)
        self.lr_factor.setValue(finetune.lr_factor)
        del blockers
        with QtCore.QSignalBlocker(self.stages_editor):
            self.stages_editor.set_stages(finetune.stages)
        if enabled is not None:
            with QtCore.QSignalBlocker(self.enable_box):
                self.enable_box.setChecked(enabled)
            self._apply_enabled()
        self._settings_changed()

    def set_run_shape(self, *, max_steps: int | None = None, n_layer: int | None = None,
                      learning_rate: float | None = None) -> None:
        """The run's length, the model's depth and learning rate (from the Training and Model pages);
        a chosen checkpoint decides the depth itself."""
        if max_steps is not None:
            self._max_steps = int(max_steps)
        if n_layer is not None:
            self._n_layer = int(n_layer)
        if learning_rate is not None:
            self._base_lr = float(learning_rate)
        self._update_plan()

    def n_layer(self) -> int:
        return self._ckpt_n_layer or self._n_layer

    def checkpoint(self) -> str:
        return self.checkpoint_combo.currentData() or ""

    def set_checkpoint(self, path: str) -> None:
        path = str(path or "")
        i = self.checkpoint_combo.findData(path)
        if i < 0:
            self._add_checkpoint_item(path, Path(path).name)
            i = self.checkpoint_combo.findData(path)
        self.checkpoint_combo.setCurrentIndex(i)

    def validate(self) -> str:
        """The engine's message for what is wrong with these settings, or ""."""
        task, ft = self.to_config()
        try:
            from_dict({"tasks": [plain(task)], "finetune": plain(ft)}, source="the Fine-tune page")
        except ConfigError as e:
            return str(e).replace("the Fine-tune page: ", "")
        return ""

    def set_editable(self, editable: bool) -> None:
        self.settings.setEnabled(editable and self.is_enabled())
        self.enable_box.setEnabled(editable)

    # -- checkpoints -------------------------------------------------------------------------

    def refresh_checkpoints(self) -> None:
        """List the runs with a checkpoint (in the background: reading them imports torch)."""
        from workbench import paths

        self._list.start(list_checkpoints, paths.runs_dir())

    def _list_failed(self, message: str, _details: str) -> None:
        """The list keeps what it had; the line under it says why no runs are listed."""
        from workbench import paths

        self.checkpoint_info.setText(f"<span style='color:{theme.ERROR_COLOR}'>Could not list the runs in "
                                     f"{html.escape(str(paths.runs_dir()))}: {html.escape(message)}</span>")

    def wait_for_runs(self, msecs: int = 30000) -> bool:
        """Tests and scripts: wait until the run list is filled in."""
        return self._list.wait(msecs)

    def _fill_checkpoints(self, runs: list) -> None:
        from workbench.engine.runs import format_started

        current = self.checkpoint()
        with QtCore.QSignalBlocker(self.checkpoint_combo):
            self.checkpoint_combo.clear()
            self.checkpoint_combo.addItem("Random weights (train from scratch)", "")
            self._runs = {}
            for r in runs:
                text = f"{r.name} · {r.model} · {r.steps:,} steps · {format_started(r.started)}"
                self._runs[str(r.path)] = r
                self.checkpoint_combo.addItem(text, str(r.path))
            if current and self.checkpoint_combo.findData(current) < 0:
                self.checkpoint_combo.addItem(Path(current).name, current)
            self.checkpoint_combo.setCurrentIndex(max(0, self.checkpoint_combo.findData(current)))
        self._checkpoint_changed()

    def showEvent(self, event):
        if not self._listed:
            self._listed = True
            self.refresh_checkpoints()
        super().showEvent(event)

    def _add_checkpoint_item(self, path: str, text: str) -> None:
        with QtCore.QSignalBlocker(self.checkpoint_combo):
            self.checkpoint_combo.addItem(text or path, path)

    def _browse_checkpoint(self) -> None:
        from workbench import paths

        start = str(paths.runs_dir()) if paths.runs_dir().exists() else str(Path.home())
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Choose a run folder to start from", start)
        if folder:
            self.set_checkpoint(folder)

    def _checkpoint_changed(self, *_a) -> None:
        path = self.checkpoint()
        self._ckpt_n_layer = None
        if not path:
            self.checkpoint_info.setText("The model starts from random weights with the Model and Tokenizer "
                                         "pages' settings: the baseline that shows what pretraining adds.")
        else:
            try:
                from workbench.engine.config import load_experiment

                p = Path(path)
                run = p if p.is_dir() else p.parent.parent  # a checkpoint .json sits in RUN/checkpoints/
                exp = load_experiment(run / "config.toml")
                m = exp.model
                self._ckpt_n_layer = m.n_layer
                r = self._runs.get(path)
                first = exp.tasks[0].task_name if exp.tasks else ""
                extra = f" · validation loss {r.val[first]:.3f}" if r and first in r.val else ""
                self.checkpoint_info.setText(
                    f"{m.n_layer} blocks × {m.n_embd} wide, {m.n_head} heads, context {m.block_size} · "
                    f"{exp.tokenizer.kind} tokenizer{extra}. Its tokenizer and shape are used.")
            except (WorkbenchError, OSError) as e:
                self.checkpoint_info.setText(f"<span style='color:{theme.ERROR_COLOR}'>{e}</span>")
        self._settings_changed()

    # -- reacting to edits --------------------------------------------------------------------

    def _enabled_toggled(self, on: bool) -> None:
        self._apply_enabled()
        self.enabledChanged.emit(on)
        self._settings_changed()

    def _apply_enabled(self) -> None:
        self.settings.setEnabled(self.is_enabled())

    def _freeze_changed(self) -> None:
        if self.freeze_combo.currentData() == "stages" and not self.stages_editor.stages():
            with QtCore.QSignalBlocker(self.stages_editor):
                self.stages_editor.set_stages(default_stages(self._max_steps))
        self._settings_changed()

    def _settings_changed(self, *_a) -> None:
        freeze = self.freeze_combo.currentData()
        self.freeze_n.setVisible(freeze == "bottom_n")
        self.freeze_n_label.setVisible(freeze == "bottom_n")
        self.unfreeze_every.setVisible(freeze == "gradual")
        self.unfreeze_label.setVisible(freeze == "gradual")
        self.stages_editor.setVisible(freeze == "stages")
        self.lr_factor.setEnabled(self.discriminative.isChecked())
        self.freeze_n.setMaximum(max(0, self.n_layer()))
        show_error(self.error, self.validate() if self.is_enabled() else "")
        self._update_plan()
        self._update_data_status()
        self._check_timer.start()
        if not self.training_tab.metrics() or not self._following:
            self._update_headline()  # the summary describes the setup until a run has numbers
        self.changed.emit()

    def _update_plan(self) -> None:
        _task, ft = self.to_config()
        if ft.freeze == "stages" and not ft.stages:
            ft = dataclasses.replace(ft, stages=default_stages(self._max_steps))
        n = self.n_layer()
        self.lanes.set_plan(ft, n, self._max_steps, self._base_lr)
        self.training_tab.grad_strip.set_groups(layer_groups(n))
        shape = "from the checkpoint" if self._ckpt_n_layer else "from the Model page"
        self.plan_caption.setText(f"{self.lanes.description()}  ({n} blocks {shape}, "
                                  f"{self._max_steps:,} steps from the Training page.)")

    def _update_preview(self) -> None:
        task = self.dataset.task_config()
        used = {}
        for role in COLUMN_ROLES:
            v = getattr(task, role)
            for c in (v if isinstance(v, tuple) else (v,)):
                if c:
                    used.setdefault(c, role.replace("_", " "))
        self.preview.set_rows(self.dataset.columns(), self.dataset.rows(), used)

    def _update_data_status(self) -> None:
        err = self.dataset.preview_error()
        if err:
            self.dataset.status.setText(f"<span style='color:{theme.ERROR_COLOR}'>{err}</span>")

    # -- background check / inspector ---------------------------------------------------------

    def _start_check(self) -> None:
        task, ft = self.to_config()
        if not task.train:
            self._check.cancel()
            self._check_key = None
            self.inspector.set_task(None, None)
            self.inspector.set_message("Choose a labelled dataset (and a pretrained model) to see the exact "
                                       "tokens the model reads.")
            return
        key = (plain(task), ft.init)
        if key == self._check_key:
            return
        self._check_key = key
        self.dataset.status.setText("Reading the data…")
        self.inspector.set_message("Building the inputs…")
        self._check.start(check_labelled, task, ft.init)

    def wait_for_check(self, msecs: int = 30000) -> bool:
        """Tests: finish a pending check now."""
        if self._check_timer.isActive():
            self._check_timer.stop()
            self._start_check()
        return self._check.wait(msecs)

    def _check_done(self, r: dict) -> None:
        what = "labels: " + ", ".join(r["labels"][:12]) if r["labels"] else (
            "a number to predict" if r["regression"] else "")
        self.dataset.status.setText(f"{r['n_train']:,} training · {r['n_val']:,} validation examples"
                                    + (f" · {what}" if what else ""))
        self.dataset.status.setStyleSheet("")
        if r["task"] is not None:
            self.inspector.set_task(r["task"], r["tokenizer"])
        else:
            self.inspector.set_task(None, None)
            self.inspector.set_message("From scratch there is no tokenizer yet (the run trains one): choose a "
                                       "pretrained model to see the exact tokens.")

    def _check_failed(self, message: str, _details: str) -> None:
        message = message.split(": ", 1)[1] if message.split(": ", 1)[0].endswith("Error") else message
        self.dataset.status.setText(f"<span style='color:{theme.ERROR_COLOR}'>{message}</span>")
        self.inspector.set_task(None, None)
        self.inspector.set_message(message, error=True)

    # -- training events ----------------------------------------------------------------------

    def end_run(self) -> None:
        """The run ended: a pretraining run left nothing here, so the page shows its setup again."""
        if not self._following:
            self._following = True
            self._update_headline()

    def begin_run(self, finetuning: bool, *, resume: bool = False) -> None:
        """A run starts (the window calls this). Only a run that fine-tunes (this page switched on)
        is shown here; a pretraining run's losses and metrics belong to the Curves page."""
        if not resume:
            self.reset()
        self._following = bool(finetuning)
        self._update_headline()

    def reset(self) -> None:
        self.training_tab.reset()
        self.lanes.clear_run()
        self._seen_step = False
        self._update_headline()
        self.refresh(force=True)

    def on_step(self, e) -> None:
        """``events.StepMetrics`` or a ``bridge.MetricsBatch``."""
        if not self._following:
            return
        c = step_columns(e)
        self.training_tab.add_steps(c)
        self.lanes.set_current_step(int(c.step[-1]))
        if not self._seen_step:
            self._seen_step = True
            self.tabs.setCurrentWidget(self.training_tab)

    def on_eval(self, e) -> None:
        """``events.EvalResult``: validation loss, metrics and confusion matrix."""
        if not self._following:
            return
        self.training_tab.add_eval(e)
        self._update_headline(e.step)

    def on_freeze(self, e) -> None:
        """``events.FreezeChanged``: the trainer changed what trains."""
        if not self._following:
            return
        self.lanes.add_change(e.step, e.description)
        self.plan_caption.setText(f"Step {e.step:,}: now training {e.description} "
                                  f"({e.n_trainable:,} parameters).")

    def refresh(self, force: bool = False) -> None:
        self.training_tab.refresh(force)

    def set_presentation(self, scale: float) -> None:
        self.training_tab.set_presentation(scale)
        self.lanes.set_presentation(scale)

    def _update_headline(self, step: int | None = None) -> None:
        headline, metrics = self.training_tab.headline, self.training_tab.metrics()
        if not self._following:
            headline.setText("The run under way pretrains (fine-tuning is off): its curves are on the Curves "
                                  "page. Switch fine-tuning on here to adapt a trained model to a labelled task.")
            self.set_summary("off" if not self.is_enabled() else "on, next run")
            return
        if not metrics:
            headline.setText("Start a run: the task's loss, its validation metrics, the gradient of every "
                                  "layer group and the confusion matrix appear here.")
            self.set_summary(self._setup_summary())
            return
        parts = [f"{k.split('/', 1)[1]} <b>{v:.3f}</b>" for k, v in metrics.items()]
        text = f"Step {step:,}: " + " · ".join(parts) if step is not None else " · ".join(parts)
        if self.training_tab.best() is not None:
            name, v, s = self.training_tab.best()
            text += f"   (best {name.split('/', 1)[1]} {v:.3f} at step {s:,})"
        headline.setText(text)
        k, v = next(iter(metrics.items()))
        self.set_summary(f"{k.split('/', 1)[1]} {v:.3f}")

    def _setup_summary(self) -> str:
        """The sidebar line before a fine-tuning run has numbers: what the page is set to."""
        if not self.is_enabled():
            return "off"
        path = self.checkpoint()
        return f"from {Path(path).name}" if path else "from random weights"


# =============================================================================================
# how the Tasks and Fine-tune pages make one experiment


def experiment_sections(tasks_panel, finetune_panel) -> dict:
    """``Experiment.replace(**experiment_sections(...))``: the tasks, multitask and finetune sections.

    Fine-tuning on: the run trains the Fine-tune page's labelled task from its checkpoint, with its
    freezing plan. Off: the run trains the Tasks page's tasks, from random weights.
    """
    tasks, multitask = tasks_panel.to_config()
    if finetune_panel is not None and finetune_panel.is_enabled():
        task, ft = finetune_panel.to_config()
        return {"tasks": (task,), "multitask": multitask, "finetune": ft}
    return {"tasks": tasks, "multitask": multitask, "finetune": FinetuneConfig()}


def load_experiment_into(exp, tasks_panel, finetune_panel) -> None:
    """Fill both pages from an experiment. Fine-tuning is switched on for an experiment that starts
    from a checkpoint or trains a single labelled task."""
    tasks_panel.set_config(exp.tasks, exp.multitask)
    labelled = [t for t in exp.tasks if t.kind in LABELLED_KINDS]
    on = bool(labelled) and (bool(exp.finetune.init) or len(exp.tasks) == 1)
    finetune_panel.set_config(labelled[0] if labelled else None, exp.finetune, enabled=on)
    finetune_panel.set_run_shape(max_steps=exp.training.max_steps, n_layer=exp.model.n_layer,
                                 learning_rate=exp.training.learning_rate)
    if hasattr(tasks_panel, "set_finetune_note"):
        tasks_panel.set_finetune_note(finetune_panel.is_enabled())

