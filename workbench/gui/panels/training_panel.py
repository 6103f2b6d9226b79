"""Training panel: device, precision and hyperparameters; start, pause, resume, stop; progress.

The Start/Pause/Resume/Stop buttons show the main window's actions (one action, shown in the
toolbar and here). "Copy command" puts the equivalent ``workbench train ... --set ...`` line on
the clipboard, so a run made by clicking can be replayed headless.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import replace
from pathlib import Path

import tomli_w
from PySide6 import QtCore, QtGui, QtWidgets

from workbench.engine.config import ALL_GPUS, Experiment, LoggingConfig, TrainingConfig, diff_experiments

from ..widgets.flow import Columns, WrapLabel, flow_columns
from workbench.fmt import fmt_duration

from . import Panel, SciSpinBox, card, error_label, field_help, field_limits, human_count, muted_label, show_error

# (field, label, kind) shown in the hyperparameter grid, in reading order
HYPER = [
    ("max_steps", "Steps", "int"),
    ("batch_size", "Batch size", "int"),
    ("learning_rate", "Learning rate", "sci"),
    ("min_lr", "Final learning rate", "sci"),
    ("warmup_steps", "Warmup steps", "int"),
    ("weight_decay", "Weight decay", "float"),
    ("grad_clip", "Gradient clipping", "float"),
    ("seed", "Random seed", "int"),
    ("eval_every", "Evaluate every", "int"),
    ("attention_every", "Attention snapshot every", "int"),
    ("checkpoint_every", "Checkpoint every", "int"),
    ("divergence_factor", "Stop when loss grows ×", "float"),
]
PRECISIONS = [("auto", "Automatic"), ("fp32", "fp32 (full)"), ("bf16", "bf16"), ("fp16", "fp16 (loss scaling)")]
COMPILES = [("auto", "Automatic (measured)"), ("on", "On"), ("off", "Off")]
ATTENTIONS = [("auto", "Automatic (measured)"), ("sdpa", "Fused kernel (SDPA)"), ("explicit", "Written out")]


def toml_value(value) -> str:
    return tomli_w.dumps({"v": value}).strip()[len("v = "):]


def command_line(base_label: str, base: Experiment, exp: Experiment, resume: str | None = None,
                 from_step: int | None = None, nproc: int = 1) -> str:
    """``workbench train BASE --set k=v ...`` reproducing ``exp`` from ``base`` (a preset name or a
    TOML path whose contents are ``base``); with ``resume``, the resume form; ``nproc`` > 1 (all
    GPUs chosen) adds ``--nproc N``. Raises ValueError
    when a difference cannot be written as --set (an entry of a list of tables such as tasks)."""
    changed = diff_experiments(base, exp)
    odd = [k for k, _a, _b in changed if "[" in k]
    if odd:
        raise ValueError(f"{', '.join(odd)} cannot be given as --set; save the experiment and train that file.")
    parts = ["workbench", "train"]
    if resume:
        parts += ["--resume", shlex.quote(str(resume))]
        if from_step is not None:
            parts += ["--from-step", str(from_step)]
    else:
        parts.append(shlex.quote(base_label))
    if nproc > 1:
        parts += ["--nproc", str(nproc)]
    for key, _old, new in changed:
        parts += ["--set", shlex.quote(f"{key}={toml_value(new)}")]
    return " ".join(parts)


class TrainingPanel(Panel):
    title = "Training"
    subtitle = ("How to train: where (CPU or GPU), how long and how fast to learn. Start, pause and stop "
                "at any time; a stopped run saves a checkpoint you can resume from.")

    configChanged = QtCore.Signal()
    saveRequested = QtCore.Signal()
    copyCommandRequested = QtCore.Signal()
    resumeChosen = QtCore.Signal(str)    # a run folder ("" when cleared)

    def __init__(self, parent=None):
        super().__init__(parent, scroll=True)
        self._base = TrainingConfig()
        self._devices: list[tuple[str, str]] = []
        self._resume = ""
        self._tokens_per_step = 0
        self._max_steps = 0
        self._start_step = 0
        self._val = None
        self._last_metrics_time = 0.0

        top = Columns()  # side by side, or one above the other on a narrow page
        self.body.addWidget(top)

        # where and what
        box, form = card("Run", QtWidgets.QFormLayout())
        form.setLabelAlignment(QtCore.Qt.AlignmentFlag.AlignRight)
        self.name_edit = QtWidgets.QLineEdit("experiment")
        self.name_edit.setToolTip("A short name; run folders start with it.")
        self.device_combo = QtWidgets.QComboBox()
        self.device_combo.setToolTip(field_help(TrainingConfig, "device"))
        self.set_devices([])
        self.precision_combo = QtWidgets.QComboBox()
        for key, label in PRECISIONS:
            self.precision_combo.addItem(label, key)
        self.precision_combo.setToolTip(field_help(TrainingConfig, "precision"))
        self.compile_combo = QtWidgets.QComboBox()
        for key, label in COMPILES:
            self.compile_combo.addItem(label, key)
        self.compile_combo.setToolTip(field_help(TrainingConfig, "compile"))
        self.attention_combo = QtWidgets.QComboBox()
        for key, label in ATTENTIONS:
            self.attention_combo.addItem(label, key)
        self.attention_combo.setToolTip(field_help(TrainingConfig, "attention"))
        # what the engine chose for the run and why ("compiled fp32: 1.40x eager fp32, measured ...")
        self.speed_label = muted_label("chosen when a run starts")
        self.speed_label.setWordWrap(True)
        self.speed_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow("Name", self.name_edit)
        form.addRow("Device", self.device_combo)
        form.addRow("Precision", self.precision_combo)
        form.addRow("Compile", self.compile_combo)
        form.addRow("Attention", self.attention_combo)
        form.addRow("Speed", self.speed_label)
        self.tensorboard_check = QtWidgets.QCheckBox("also write TensorBoard event files")
        self.tensorboard_check.setToolTip(field_help(LoggingConfig, "tensorboard"))
        self.tensorboard_check.toggled.connect(self._tensorboard_toggled)
        form.addRow("Logging", self.tensorboard_check)
        resume_row = QtWidgets.QHBoxLayout()
        self.resume_label = muted_label("a new run")
        self.resume_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.resume_button = QtWidgets.QPushButton("Resume a run…")
        self.resume_button.setToolTip("Continue a run from its latest checkpoint (choose its folder).")
        self.resume_clear = QtWidgets.QPushButton("New run")
        self.resume_clear.hide()
        self.from_step_combo = QtWidgets.QComboBox()
        self.from_step_combo.setToolTip(
            "Which checkpoint to continue from. An earlier one (say, the good one a divergence message "
            "names) moves the later checkpoints and the old metrics to the run's superseded/ folder.")
        self.from_step_combo.hide()
        self.resume_button.clicked.connect(self._choose_resume)
        self.resume_clear.clicked.connect(lambda: self.set_resume(""))
        resume_row.addWidget(self.resume_label, 1)
        resume_row.addWidget(self.from_step_combo)
        resume_row.addWidget(self.resume_button)
        resume_row.addWidget(self.resume_clear)
        form.addRow("Continue", resume_row)
        top.add(box, 1)

        # controls
        box, lay = card("Control")
        row = QtWidgets.QHBoxLayout()
        row.setSpacing(6)
        self.control_buttons: dict[str, QtWidgets.QToolButton] = {}
        for key in ("start", "pause", "resume", "stop"):
            b = QtWidgets.QToolButton()
            b.setObjectName(f"{key}Button")
            b.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            b.setMinimumHeight(34)
            b.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)
            row.addWidget(b)
            self.control_buttons[key] = b
        lay.addLayout(row)
        # under the buttons they steer: "following RUN (another process)", while the window follows one
        self.follow_label = WrapLabel("")
        self.follow_label.setObjectName("followNote")
        self.follow_label.hide()
        lay.addWidget(self.follow_label)
        row2 = QtWidgets.QHBoxLayout()
        self.save_button = QtWidgets.QPushButton("Save experiment…")
        self.save_button.setToolTip("Save all settings as a TOML file (File > Save experiment).")
        self.copy_button = QtWidgets.QPushButton("Copy command")
        self.copy_button.setToolTip("Copy the equivalent `workbench train` command line to the clipboard.")
        self.save_button.clicked.connect(self.saveRequested)
        self.copy_button.clicked.connect(self.copyCommandRequested)
        row2.addWidget(self.save_button)
        row2.addWidget(self.copy_button)
        row2.addStretch(1)
        lay.addLayout(row2)
        self.command_label = muted_label()
        self.command_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.command_label)
        self.error = error_label()
        lay.addWidget(self.error)
        lay.addStretch(1)
        top.add(box, 1)

        # hyperparameters
        # three columns of fields that wrap under each other on a narrow page
        box, box_lay = card("Hyperparameters")
        columns, forms = flow_columns(3, QtWidgets.QFormLayout, spacing=18)
        for form in forms:
            form.setLabelAlignment(QtCore.Qt.AlignmentFlag.AlignRight)
            form.setVerticalSpacing(6)
        box_lay.addWidget(columns)
        self.fields: dict[str, QtWidgets.QAbstractSpinBox] = {}
        per_col = (len(HYPER) + 2) // 3
        for i, (name, label, kind) in enumerate(HYPER):
            lo, hi = field_limits(TrainingConfig, name)
            if kind == "int":
                w = QtWidgets.QSpinBox()
                w.setRange(int(lo or 0), min(int(hi or 1_000_000_000), 2**31 - 1))  # a spin box holds 32 bits
                w.setGroupSeparatorShown(True)
                if name in ("eval_every", "attention_every", "checkpoint_every"):
                    w.setSpecialValueText("never" if name == "attention_every" else "only at the end")
                    w.setSuffix(" steps")
                w.valueChanged.connect(self._changed)
            elif kind == "sci":
                w = SciSpinBox(minimum=float(lo or 0.0), maximum=float(hi or 10.0))
                w.valueChanged.connect(self._changed)
            else:
                w = QtWidgets.QDoubleSpinBox()
                w.setDecimals(3)
                w.setRange(float(lo or 0.0), float(hi if hi is not None else 100.0))
                w.setSingleStep(0.01 if name == "weight_decay" else 0.1)
                if name == "grad_clip":
                    w.setSpecialValueText("off")
                if name == "divergence_factor":  # see workbench settings: a smoothed loss, for N steps
                    w.setSpecialValueText("never")
                    w.setSingleStep(0.5)
                w.valueChanged.connect(self._changed)
            w.setToolTip(field_help(TrainingConfig, name))
            w.setMinimumWidth(120)
            lab = QtWidgets.QLabel(label)
            lab.setToolTip(w.toolTip())
            lab.setBuddy(w)
            forms[i // per_col].addRow(lab, w)
            self.fields[name] = w
        self.body.addWidget(box)

        # progress
        box, lay = card("Progress")
        self.progress = QtWidgets.QProgressBar()
        self.progress.setObjectName("runProgress")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("not started")
        self.progress.setMinimumHeight(26)
        lay.addWidget(self.progress)
        # three columns of figures that wrap under each other on a narrow page (a run's figures
        # are wider than the dashes before it)
        stats, stat_grids = flow_columns(3, QtWidgets.QGridLayout, spacing=24)
        for grid in stat_grids:
            grid.setHorizontalSpacing(18)
        self.progress_labels: dict[str, QtWidgets.QLabel] = {}

        def stat(key: str, text: str, val: QtWidgets.QLabel) -> QtWidgets.QLabel:
            name = QtWidgets.QLabel(text)
            name.setObjectName("statName")
            val.setObjectName("statValue")
            val.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
            self.progress_labels[key] = val
            return name

        for i, (key, text) in enumerate((("step", "Step"), ("eta", "Time left"), ("speed", "Speed"),
                                         ("loss", "Training loss"), ("val", "Validation loss"),
                                         ("elapsed", "Training time"), ("device", "Device"),
                                         ("params", "Parameters"))):
            val = QtWidgets.QLabel("—")
            stat_grids[i // 3].addWidget(stat(key, text, val), i % 3, 0)
            stat_grids[i // 3].addWidget(val, i % 3, 1)
        lay.addWidget(stats)
        # the run folder on a row of its own, the card's width: a long path wraps only where it must
        run_row = QtWidgets.QHBoxLayout()
        run_row.setSpacing(18)
        val = WrapLabel("—")
        run_row.addWidget(stat("run", "Run folder", val))
        run_row.addWidget(val, 1)
        lay.addLayout(run_row)
        self.status_label = muted_label()
        lay.addWidget(self.status_label)
        self.log = QtWidgets.QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setObjectName("eventLog")
        self.log.setMaximumBlockCount(500)
        self.log.setMinimumHeight(90)
        lay.addWidget(self.log, 1)
        self.body.addWidget(box, 1)

        self.name_edit.textChanged.connect(self._changed)
        self.device_combo.currentIndexChanged.connect(self._changed)
        self.precision_combo.currentIndexChanged.connect(self._changed)
        self.compile_combo.currentIndexChanged.connect(self._changed)
        self.attention_combo.currentIndexChanged.connect(self._changed)
        self.set_config(TrainingConfig())

    # -- wiring from the window --------------------------------------------------------------

    def set_actions(self, actions: dict[str, QtGui.QAction]) -> None:
        for key, b in self.control_buttons.items():
            if key in actions:
                b.setDefaultAction(actions[key])

    def set_devices(self, devices: list[tuple[str, str]]) -> None:
        """(id, label) pairs from engine.device.detect_devices()."""
        current = self.device_combo.currentData() or "auto"
        self._devices = devices
        with QtCore.QSignalBlocker(self.device_combo):
            self.device_combo.clear()
            best = devices[0][1] if devices else "detecting…"
            self.device_combo.addItem(f"Automatic — {best}", "auto")
            for dev_id, label in devices:
                self.device_combo.addItem(label, dev_id)
            if not devices:
                self.device_combo.addItem("CPU", "cpu")
            self._select_device(current)

    def gpu_processes(self) -> int:
        """With "all N GPUs" chosen, N (the window starts one torchrun process per GPU); else 1."""
        if self.device_combo.currentData() != ALL_GPUS:
            return 1
        return sum(1 for dev_id, _ in self._devices if dev_id.startswith("cuda:") and dev_id[5:].isdigit())

    def _select_device(self, dev: str) -> None:
        if dev == "cuda" and self.device_combo.currentData() == ALL_GPUS:
            return  # "all GPUs" saves as device "cuda": loading that back keeps the choice
        i = self.device_combo.findData(dev)
        if i < 0:
            self.device_combo.addItem(f"{dev} (not found on this machine)", dev)
            i = self.device_combo.count() - 1
        self.device_combo.setCurrentIndex(i)

    # -- config ------------------------------------------------------------------------------

    def name(self) -> str:
        return self.name_edit.text().strip() or "experiment"

    def set_name(self, name: str) -> None:
        self.name_edit.setText(name)

    def config(self) -> TrainingConfig:
        values = {}
        for name, _label, kind in HYPER:
            v = self.fields[name].value()
            values[name] = int(v) if kind == "int" else float(v)
        values["device"] = self.device_combo.currentData() or "auto"
        if values["device"] == ALL_GPUS:  # each torchrun process trains on its own cuda:LOCAL_RANK
            values["device"] = "cuda"
        values["precision"] = self.precision_combo.currentData() or "auto"
        values["compile"] = self.compile_combo.currentData() or "auto"
        values["attention"] = self.attention_combo.currentData() or "auto"
        return replace(self._base, **values)

    def set_config(self, cfg: TrainingConfig) -> None:
        self._base = cfg
        widgets = list(self.fields.values()) + [self.device_combo, self.precision_combo, self.compile_combo,
                                                self.attention_combo]
        for w in widgets:
            w.blockSignals(True)
        for name, _label, _kind in HYPER:
            self.fields[name].setValue(getattr(cfg, name))
        self._select_device(cfg.device)
        self.precision_combo.setCurrentIndex(max(0, self.precision_combo.findData(cfg.precision)))
        self.compile_combo.setCurrentIndex(max(0, self.compile_combo.findData(cfg.compile)))
        self.attention_combo.setCurrentIndex(max(0, self.attention_combo.findData(cfg.attention)))
        for w in widgets:
            w.blockSignals(False)
        self._changed()

    def logging_config(self) -> LoggingConfig:
        return LoggingConfig(tensorboard=self.tensorboard_check.isChecked())

    def set_logging_config(self, cfg: LoggingConfig) -> None:
        with QtCore.QSignalBlocker(self.tensorboard_check):
            self.tensorboard_check.setChecked(cfg.tensorboard)

    def _tensorboard_toggled(self, on: bool) -> None:
        from workbench.engine.tensorboard_log import installed, missing_message

        show_error(self.error, missing_message() if on and not installed() else "")
        self._changed()

    def resume_dir(self) -> str:
        return self._resume

    def set_resume(self, folder: str) -> None:
        """Continue ``folder``'s run at the next Start ("" for a new run); an old error goes."""
        self._resume = folder
        show_error(self.error, "")
        self.resume_label.setText(f"<b>resume</b> {folder}" if folder else "a new run")
        self.resume_label.setToolTip(folder)
        self.resume_clear.setVisible(bool(folder))
        self._fill_steps(folder)
        self.resumeChosen.emit(folder)

    def from_step(self) -> int | None:
        """The checkpoint step to continue from; None for the latest."""
        return self.from_step_combo.currentData() if self._resume else None

    def _fill_steps(self, folder: str) -> None:
        from workbench.engine.checkpoint import RunDir

        self.from_step_combo.clear()
        steps = RunDir(Path(folder)).checkpoint_steps() if folder else []
        for i, step in enumerate(reversed(steps)):
            self.from_step_combo.addItem(f"latest: step {step:,}" if i == 0 else f"step {step:,}",
                                         None if i == 0 else step)
        self.from_step_combo.setVisible(len(steps) > 1)

    def _choose_resume(self) -> None:
        from workbench import paths

        start = str(paths.runs_dir()) if paths.runs_dir().exists() else ""
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Choose a run folder to resume", start)
        if folder:
            if not (Path(folder) / "config.toml").is_file():
                show_error(self.error, f"{folder} is not a run folder (it has no config.toml). Choose a folder "
                                       f"that a training run wrote.")
                return
            show_error(self.error, "")
            self.set_resume(folder)

    def _changed(self, *_a) -> None:
        cfg = self.config()
        self.set_summary(f"{cfg.max_steps:,} steps · lr {cfg.learning_rate:.3g}")
        self.configChanged.emit()

    def set_editable(self, editable: bool) -> None:
        """Settings are fixed while a run is going."""
        for w in list(self.fields.values()) + [self.name_edit, self.device_combo, self.precision_combo, self.compile_combo,
                                               self.attention_combo, self.tensorboard_check, self.resume_button, self.resume_clear,
                                               self.from_step_combo]:
            w.setEnabled(editable)

    def show_message(self, text: str) -> None:
        show_error(self.error, text)

    def show_command(self, text: str) -> None:
        self.command_label.setText(f"Copied: <code>{text}</code>" if text else "")

    # -- a run's progress --------------------------------------------------------------------

    def log_line(self, text: str) -> None:
        self.log.appendPlainText(f"{time.strftime('%H:%M:%S')}  {text}")

    def on_preparing(self, resume: str | None, *, log: bool = True) -> None:
        self._val = None
        self.progress.setRange(0, 0)
        self.progress.setFormat("preparing…")
        for k in ("step", "eta", "speed", "loss", "val", "elapsed"):
            self.progress_labels[k].setText("—")
        if log:
            self.log_line(f"Preparing a run{' (resuming ' + resume + ')' if resume else ''}")
        show_error(self.error, "")

    def set_following(self, folder: str | None) -> None:
        """The window follows a run another process trains (``None``: it stopped following)."""
        if folder:
            self.on_preparing(None, log=False)
            self.log_line(f"Following {folder} (another process trains it)")
            self.progress_labels["run"].setText(folder)
            self.progress.setFormat("waiting for the run…")
            self.follow_label.setText(
                f"Following {folder} (another process). Pause, Resume and Stop ask that run through its "
                f"control.json; the settings on these pages are this window's, the run's are in its "
                f"config.toml. File > Stop following returns the window to its own runs.")
        else:
            self.log_line("Stopped following; the window shows its own runs again")
        self.follow_label.setVisible(bool(folder))

    def on_status(self, message: str, fraction: float) -> None:
        self.status_label.setText(message)
        self.progress.setFormat(message[:80])
        if fraction >= 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(fraction * 1000))

    def on_started(self, e) -> None:
        self._tokens_per_step = e.tokens_per_step
        self._max_steps = e.max_steps
        self._start_step = e.start_step
        self.progress.setRange(0, max(1, e.max_steps))
        self.progress.setValue(e.start_step)
        self.progress.setFormat(f"step {e.start_step:,} / {e.max_steps:,}")
        self.status_label.setText("")
        L = self.progress_labels
        L["device"].setText(f"{e.device}, {e.precision}")
        L["params"].setText(f"{human_count(e.params)} (vocabulary {e.vocab_size:,})")
        L["run"].setText(e.run_dir)
        self.log_line(f"Started on {e.device} ({e.precision}), {e.params:,} parameters, "
                      f"{e.tokens_per_step:,} tokens per step" + (f", from step {e.start_step}" if e.start_step else ""))
        self.log_line(f"Run folder: {e.run_dir}")
        if e.speed:
            self.speed_label.setText(e.speed)
            self.log_line(f"Speed: {e.speed}")
        for note in e.notes:
            self.log_line(note[0].upper() + note[1:])

    def on_metrics(self, batch) -> None:
        step = batch.last_step
        self._max_steps = batch.max_steps or self._max_steps
        self.progress.setRange(0, max(1, self._max_steps))
        self.progress.setValue(step)
        pct = 100 * step / max(1, self._max_steps)
        self.progress.setFormat(f"step {step:,} / {self._max_steps:,}   ({pct:.0f}%)")
        tps = float(batch.tokens_per_s[-1])
        L = self.progress_labels
        L["step"].setText(f"{step:,} / {self._max_steps:,}")
        L["speed"].setText(f"{tps:,.0f} tokens/s")
        L["loss"].setText(f"{float(batch.loss[-1]):.4f}")
        L["elapsed"].setText(fmt_duration(float(batch.elapsed[-1])))
        if tps > 0 and self._tokens_per_step:
            eta = (self._max_steps - step) * self._tokens_per_step / tps
            L["eta"].setText(fmt_duration(eta))

    def on_eval(self, e) -> None:
        val = next(iter(e.losses.values()), None)
        if val is not None:
            best = val if self._val is None else min(val, self._val)
            self._val = best
            self.progress_labels["val"].setText(f"{val:.4f}  (best {best:.4f})")
        extra = ", ".join(f"{k} {v:.3g}" for k, v in e.metrics.items())
        self.log_line(f"Step {e.step}: validation " + ", ".join(f"{k} {v:.4f}" for k, v in e.losses.items())
                      + (f" ({extra})" if extra else ""))

    def on_checkpoint(self, step: int, path: str) -> None:
        self.log_line(f"Checkpoint saved at step {step}")

    def on_paused(self, step: int) -> None:
        self.progress.setFormat(f"paused at step {step:,} / {self._max_steps:,}")
        self.log_line(f"Paused at step {step}")

    def on_resumed(self, step: int) -> None:
        self.log_line(f"Resumed at step {step}")

    def on_finished(self, e) -> None:
        if e.reason == "completed":
            self.progress.setValue(self.progress.maximum())
            self.progress.setFormat(f"done: {e.step:,} steps")
        elif e.reason == "early_stopped":
            self.progress.setFormat(f"stopped early at step {e.step:,}: validation stopped improving")
        else:
            if self.progress.maximum() == 0:
                self.progress.setRange(0, 1)
            self.progress.setFormat(f"stopped at step {e.step:,}")
        summary = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v:,}" for k, v in e.summary.items())
        word = {"completed": "Finished", "early_stopped": "Stopped early"}.get(e.reason, "Stopped")
        self.log_line(f"{word} at step {e.step}"
                      + (f": {summary}" if summary else ""))
        self.status_label.setText("")

    def on_failed(self, e) -> None:
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        diverged = e.message.startswith("Training diverged")
        self.progress.setFormat("diverged: see the message below" if diverged else "failed")
        self.status_label.setText("")
        self.log_line(f"{'Diverged' if diverged else 'Failed'}: {e.message}")
        show_error(self.error, e.message)
