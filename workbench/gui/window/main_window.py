"""The main window: a sidebar that walks the path corpus -> tokenizer -> model -> training ->
curves -> attention, one page per step, a toolbar with Start/Pause/Resume/Stop and Demo, and a
status bar.

The window owns the experiment: on Start it copies every form into one frozen ``Experiment`` on
the GUI thread and gives it to the ``TrainingSession`` (bridge.py), which runs the trainer in its
worker thread. Events come back as signals and are handed to the panels. Geometry, splitter
positions and recent experiments persist in QSettings.

The rest of the window lives beside this module, one job each: sidebar.py, page_host.py (the
page stack's scrolling pages), redraw.py (the redraw budget), geometry.py, experiment_state.py
(the forms and the rules that keep a person's setup), experiment_io.py (experiment files, the
last session's setup, run folders), other_process.py (runs another process trains), closing.py
(settings kept between launches, and closing: asking before it stops a run or a lesson) and icons.py.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from workbench import paths
from workbench.engine import control as control_mod
from workbench.engine.config import ConfigError, Experiment, preset_dir, resolve_experiment

from .. import theme
from ..bridge import JobSlot, TrainingSession
from ..follow import FollowSession
from ..jobs.startup import import_engine
from ..panels.attention_panel import AttentionPanel
from ..panels.balance_panel import BalancePanel
from ..panels.finetune.page import FinetunePanel
from ..panels.tasks_panel import TasksPanel
from ..panels.corpus_panel import CorpusPanel
from ..panels.curves_panel import CurvesPanel
from ..panels.evaluate.page import EvaluatePanel
from ..panels.generate.page import GeneratePanel
from ..panels.inside_panel import InsidePanel
from ..panels.lessons.page import LessonsPanel
from ..panels.model_panel import ModelPanel
from ..panels.runs_panel import RunsPanel
from ..panels.tokenizer_panel import TokenizerPanel
from ..panels.training_panel import TrainingPanel
from . import sidebar as sidebar_mod
from .experiment_io import DEMO_PRESET, LAST_EXPERIMENT, ExperimentFiles
from .experiment_state import ExperimentState
from .closing import SettingsAndClosing
from .geometry import MIN_WINDOW, WindowGeometry
from .gpu_run import GpuRun
from .icons import make_icon
from .other_process import OtherProcessRuns
from .page_host import PageScroll
from .redraw import RedrawPacer

PRESENTATION_SCALE = 1.45
STATE_LOOK = {  # state -> (chip text, colour)
    "idle": ("Ready", theme.NEUTRAL),
    "preparing": ("Preparing", theme.WAITING),
    "running": ("Training", theme.START_GREEN),
    "paused": ("Paused", theme.WAITING),
    "stopping": ("Stopping", theme.ERROR_COLOR),
    # a run the window follows (another process trains it): follow.FollowSession's states
    "waiting": ("Waiting for the run", theme.WAITING),
    "pausing": ("Pausing…", theme.WAITING),
    "resuming": ("Resuming…", theme.WAITING),
    "completed": ("Finished", theme.NEUTRAL),
    "early_stopped": ("Stopped early", theme.NEUTRAL),
    "stopped": ("Stopped", theme.NEUTRAL),
    "diverged": ("Diverged", theme.ERROR_COLOR),
    "failed": ("Failed", theme.ERROR_COLOR),
    "ended": ("Ended", theme.ERROR_COLOR),
}


def window_settings() -> QtCore.QSettings:
    """Where the window keeps its geometry, page and recent files: the platform's place, unless
    WORKBENCH_CONFIG_DIR names a folder for everything the workbench keeps (then settings.ini there,
    so a session with its own folders never opens on another session's page or recent files)."""
    if os.environ.get("WORKBENCH_CONFIG_DIR"):
        return QtCore.QSettings(str(paths.config_dir() / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    return QtCore.QSettings(theme.ORGANIZATION, theme.APPLICATION)


class MainWindow(ExperimentState, ExperimentFiles, WindowGeometry, OtherProcessRuns, SettingsAndClosing,
                 QtWidgets.QMainWindow):
    """See the module docstring. ``settings``: a QSettings to use (tests pass a temporary one in INI
    format; the last experiment is then kept beside its file, else in the config dir)."""

    def __init__(self, settings: QtCore.QSettings | None = None, parent=None):
        super().__init__(parent)
        self.settings = settings or window_settings()
        self.last_path: Path | None = (paths.config_dir() / LAST_EXPERIMENT if settings is None else
                                       Path(settings.fileName()).with_name(LAST_EXPERIMENT)
                                       if settings.format() == QtCore.QSettings.Format.IniFormat else None)
        self.session = TrainingSession(self)
        self.follow = FollowSession(self)     # a run another process trains, shown on the same pages
        self.gpu_run: GpuRun | None = None    # a run on all GPUs: a torchrun child this window started and follows
        self._gpu_timer = QtCore.QTimer(self, interval=500)  # watches that child (an early death, closing)
        self._gpu_timer.timeout.connect(self._check_gpu_run)
        self.presentation = False
        self._normal_split: QtCore.QByteArray | None = None  # the sidebar width in normal mode
        self.confirm_close = True          # ask before closing during a run
        self._close_after_stop = False
        self._experiment_path: str | None = None
        self._base_label = DEMO_PRESET
        self._base_exp = Experiment()
        self._engine_ready = False
        self._resume_exp: Experiment | None = None
        self._window_runs: set[Path] = set()  # run folders trained in this window
        self._trained: list[Experiment] = []  # setups this window trained: saved in their run folders
        self._loading = False                 # set_experiment is filling the forms
        self._probe_auto = ""                 # a probe text the corpus set (not the person's)
        self._probe_corpus: tuple[str, ...] = ()  # the corpus the probe text was written for
        self._probe_undo = ""                 # the probe text a corpus change cleared
        self._probe_undo_corpus: tuple[str, ...] = ()  # and the corpus it was written for
        self._base_is_run = False             # the base is a run folder's record, not a save
        self._name_auto: str | None = None    # a name that follows the corpus (a preset's, or derived)
        self._corpus_paths: tuple[str, ...] = ()
        self._snapshot_wanted = False         # the person asked for a snapshot: show it when it comes
        self._demo_tour = False               # a Demo run on the Curves page: go to Attention once a task head forms
        self.setWindowTitle(theme.APPLICATION)
        self.setMinimumSize(MIN_WINDOW)

        # panels, in the order of the path
        self.corpus = CorpusPanel()
        self.tokenizer = TokenizerPanel()
        self.model = ModelPanel()
        self.tasks = TasksPanel()
        self.finetune = FinetunePanel()
        self.training = TrainingPanel()
        self.curves = CurvesPanel()
        self.balance = BalancePanel()
        self.attention = AttentionPanel()
        self.evaluate = EvaluatePanel()
        self.generate = GeneratePanel()
        self.inside = InsidePanel()
        self.runs = RunsPanel()
        self.lessons = LessonsPanel()
        self.panels = {"corpus": self.corpus, "tokenizer": self.tokenizer, "model": self.model,
                       "tasks": self.tasks, "finetune": self.finetune, "training": self.training,
                       "curves": self.curves, "balance": self.balance, "attention": self.attention,
                       "evaluate": self.evaluate, "generate": self.generate, "inside": self.inside,
                       "runs": self.runs, "lessons": self.lessons}

        self._build_actions()
        self._build_layout()
        self._build_menus()
        self._build_status_bar()
        self._connect()

        self.pacer = RedrawPacer(self, self._redraw, self.session.is_active)
        self.plot_timer = self.pacer.timer  # curves redraw ~10 times a second (paced in a run)

        self._restore_settings()
        self._reopen_last()
        self._update_actions()
        QtCore.QTimer.singleShot(0, self._warm_up)

    # -- construction ----------------------------------------------------------------------

    def _action(self, text: str, slot, shortcut=None, icon=None, tip: str = "") -> QtGui.QAction:
        a = QtGui.QAction(text, self)
        if isinstance(icon, QtGui.QIcon):
            a.setIcon(icon)
        if shortcut:
            a.setShortcut(QtGui.QKeySequence(shortcut))
        if tip:
            a.setToolTip(tip)
            a.setStatusTip(tip)
        a.triggered.connect(slot)
        return a

    def _build_actions(self) -> None:
        self.start_action = self._action("Start", self.start, "Ctrl+Return", make_icon("play", "#ffffff"),
                                         "Train a model with the current settings")
        self.pause_action = self._action("Pause", self.pause, "Ctrl+P", make_icon("pause"),
                                         "Pause after this step; everything stays in memory")
        self.resume_action = self._action("Resume", self.resume, "Ctrl+R", make_icon("resume"),
                                          "Carry on from where it paused")
        self.stop_action = self._action("Stop", self.stop, "Ctrl+.", make_icon("stop", theme.ERROR_COLOR),
                                        "Stop after this step and save a checkpoint")
        self.demo_action = self._action("Demo", self.run_demo, "Ctrl+D", make_icon("demo", "#ffffff"),
                                        "Load the demo (a tiny GPT learns to copy, reverse and close brackets) and start it")
        self.snapshot_action = self._action("Snapshot attention now", self.request_snapshot, "Ctrl+Shift+A",
                                            tip="Record the attention maps at the next step")
        self.open_action = self._action("Open experiment…", self.open_experiment_dialog, QtGui.QKeySequence.StandardKey.Open)
        self.save_action = self._action("Save experiment", self.save_experiment, QtGui.QKeySequence.StandardKey.Save)
        self.save_as_action = self._action("Save experiment as…", self.save_experiment_as,
                                           QtGui.QKeySequence.StandardKey.SaveAs)
        self.open_run_action = self._action("Open run folder…", self.open_run_dialog, "Ctrl+Shift+O",
                                            tip="Show the curves and attention of a run that trained earlier")
        self.follow_action = self._action("Follow a run folder…", self.follow_run_dialog, "Ctrl+Shift+L",
                                          tip="Watch a run another process trains (a headless `workbench train`, "
                                              "a run on a shared disk) live, and pause or stop it from here")
        self.stop_follow_action = self._action("Stop following", self.stop_following,
                                               tip="Leave the followed run to itself; the window shows its own runs")
        self.quit_action = self._action("Quit", self.close, QtGui.QKeySequence.StandardKey.Quit)
        self.presentation_action = self._action("Presentation mode", self.toggle_presentation, "F11",
                                                make_icon("screen"), tip="Larger fonts and plots for a projector (F11)")
        self.presentation_action.setCheckable(True)
        self.fullscreen_action = self._action("Full screen", self.toggle_fullscreen, "Ctrl+Shift+F")
        self.fullscreen_action.setCheckable(True)
        self.copy_command_action = self._action("Copy command line", self.copy_command, "Ctrl+Shift+C",
                                                tip="Copy the equivalent `workbench train` command")

    def _build_layout(self) -> None:
        side = sidebar_mod.SidebarPane()
        self.sidebar_pane = side
        self.sidebar = side.steps
        self.stack = QtWidgets.QStackedWidget()
        for panel in self.panels.values():
            side.add_step(panel)
            self.stack.addWidget(PageScroll(panel))
        self.sidebar.currentRowChanged.connect(self.stack.setCurrentIndex)
        # during a run the curves redraw one plot per tick (see redraw.py): all of them at once
        # when the page comes into view, so that none shows old points
        self.stack.currentChanged.connect(lambda _i: self.current_panel() == "curves" and self.curves.refresh())
        self.sidebar.setCurrentRow(0)

        self.splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        self.splitter.setObjectName("mainSplitter")
        self.splitter.addWidget(side)
        self.splitter.addWidget(self.stack)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([sidebar_mod.WIDTH, 1200])
        side.setMinimumWidth(sidebar_mod.MIN_WIDTH)
        self.setCentralWidget(self.splitter)

        tb = QtWidgets.QToolBar("Training")
        tb.setObjectName("mainToolbar")
        tb.setMovable(False)
        tb.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tb.setIconSize(QtCore.QSize(18, 18))
        for a in (self.start_action, self.pause_action, self.resume_action, self.stop_action):
            tb.addAction(a)
        tb.addSeparator()
        tb.addAction(self.demo_action)
        spacer = QtWidgets.QWidget()
        spacer.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Preferred)
        tb.addWidget(spacer)
        tb.addAction(self.presentation_action)
        self.addToolBar(tb)
        self.toolbar = tb
        for action, name in ((self.start_action, "startTool"), (self.demo_action, "demoTool")):
            w = tb.widgetForAction(action)
            w.setObjectName(name)
            w.style().unpolish(w)
            w.style().polish(w)
        self.training.set_actions({"start": self.start_action, "pause": self.pause_action,
                                   "resume": self.resume_action, "stop": self.stop_action})

    def _build_menus(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        m.addAction(self.open_action)
        self.recent_menu = m.addMenu("Recent experiments")
        self.presets_menu = m.addMenu("Presets")
        for p in sorted(preset_dir().glob("*.toml")):
            self.presets_menu.addAction(p.stem, lambda name=p.stem: self.open_experiment(name))
        m.addSeparator()
        m.addAction(self.save_action)
        m.addAction(self.save_as_action)
        m.addAction(self.copy_command_action)
        m.addSeparator()
        m.addAction(self.open_run_action)
        m.addAction(self.follow_action)
        m.addAction(self.stop_follow_action)
        m.addSeparator()
        m.addAction(self.quit_action)
        m = mb.addMenu("&Run")
        for a in (self.start_action, self.pause_action, self.resume_action, self.stop_action):
            m.addAction(a)
        m.addSeparator()
        m.addAction(self.snapshot_action)
        m.addAction(self.demo_action)
        m = mb.addMenu("&View")
        for i, panel in enumerate(self.panels.values()):
            # Ctrl+1 .. Ctrl+9, then Ctrl+0, -, = for the pages that study trained models
            action = m.addAction(f"{i + 1}  {panel.title}", lambda i=i: self.show_panel(i))
            if i < 12:
                action.setShortcut(QtGui.QKeySequence(f"Ctrl+{'1234567890-='[i]}"))
        m.addSeparator()
        m.addAction(self.presentation_action)
        m.addAction(self.fullscreen_action)
        m = mb.addMenu("&Help")
        m.addAction("About GPT Workbench", self._about)
        self._update_recent_menu()

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.state_chip = QtWidgets.QLabel()
        self.state_chip.setObjectName("stateChip")
        self.status_progress = QtWidgets.QProgressBar()
        self.status_progress.setMaximumWidth(160)
        self.status_progress.setMaximumHeight(14)
        self.status_progress.setTextVisible(False)
        self.status_progress.hide()
        self.status_text = QtWidgets.QLabel()
        self.follow_label = QtWidgets.QLabel()  # "following RUN (another process)"
        self.follow_label.setObjectName("followLabel")
        self.follow_label.hide()
        sb.addPermanentWidget(self.follow_label)
        sb.addPermanentWidget(self.status_text)
        sb.addPermanentWidget(self.status_progress)
        sb.addPermanentWidget(self.state_chip)
        self._show_state("idle")

    def _connect(self) -> None:
        s = self.session
        for run in (s, self.follow):  # a run of this window, or one it follows: the same pages
            run.status.connect(self._on_status)
            run.started.connect(self._on_started)
            run.metrics.connect(self._on_metrics)
            run.evaluated.connect(self._on_eval)
            run.attentionReady.connect(self._pull_attention)
            run.checkpointSaved.connect(self.training.on_checkpoint)
            run.paused.connect(self.training.on_paused)
            run.resumed.connect(self.training.on_resumed)
            run.freezeChanged.connect(lambda e: self.training.log_line(
                f"Step {e.step}: now training {e.description} ({e.n_trainable:,} parameters)"))
            run.taskBalance.connect(self.balance.on_balance)
            run.freezeChanged.connect(self.finetune.on_freeze)
        s.stateChanged.connect(self._on_state)
        s.finished.connect(self._on_finished)
        s.failed.connect(self._on_failed)
        s.threadDone.connect(self._on_thread_done)
        self.follow.stateChanged.connect(self._on_follow_state)
        self.follow.finished.connect(self._on_follow_finished)
        self.follow.failed.connect(self._on_follow_failed)
        self.follow.restarted.connect(self._on_follow_restarted)
        self.finetune.enabledChanged.connect(self.tasks.set_finetune_note)
        self.tasks.finetuneRequested.connect(lambda: (self.finetune.set_enabled(True), self.show_panel("finetune")))
        self.corpus.configChanged.connect(self._corpus_changed)
        self.tokenizer.vocabChanged.connect(self.model.set_vocab_size)
        self.model.validityChanged.connect(lambda _ok: self._update_actions())
        self.model.configChanged.connect(self._training_changed)  # n_layer redraws the freezing lanes
        self.training.configChanged.connect(self._training_changed)
        self.training.saveRequested.connect(self.save_experiment_as)
        self.training.copyCommandRequested.connect(self.copy_command)
        self.training.resumeChosen.connect(self._resume_chosen)
        self.attention.snapshotRequested.connect(self.request_snapshot)
        self.attention.probeTextApplied.connect(self._apply_probe_text)
        self.attention.probe_edit.textEdited.connect(self._probe_typed)
        self.attention.probe_undo_button.clicked.connect(self._undo_probe_clear)
        self.generate.set_session(s)  # generation from the live model of a paused run
        self.inside.set_session(s)    # knock-out and logit lens on it too
        self.runs.openRunRequested.connect(self.open_run)
        self.runs.followRunRequested.connect(self.follow_run)
        self.lessons.runningChanged.connect(lambda _on: self._update_actions())  # one of them uses the CPU

    # -- start-up --------------------------------------------------------------------------

    def _warm_up(self) -> None:
        """Load torch in the background; then fill the device list and the model's numbers."""
        self._warm = JobSlot(self, "import torch", on_done=self._engine_loaded, on_failed=self._engine_failed)
        self._warm.start(import_engine)

    def _engine_failed(self, message: str, _details: str) -> None:
        """Without torch nothing trains: said on the Training page (where Start is) and in the status bar."""
        text = (f"PyTorch could not be loaded: {message}. Training, Generate and Evaluate need it: reinstall "
                f"torch in this Python environment (see the README), then restart the workbench.")
        self.statusBar().showMessage(text)
        self.training.show_message(text)

    def _engine_loaded(self, info: dict) -> None:
        self._engine_ready = True
        self.training.set_devices(info["devices"])
        self.model.enable_stats()

    def engine_ready(self) -> bool:
        return self._engine_ready

    # -- runs ------------------------------------------------------------------------------

    def start(self) -> bool:
        if self.session.is_active():
            return False
        self._demo_tour = False
        if not self.model.is_valid():
            self.show_panel("model")
            return False
        try:
            exp = self.experiment()
        except ConfigError as e:
            self.training.show_message(str(e))
            self.statusBar().showMessage(str(e), 8000)
            return False
        resume = self.training.resume_dir() or None
        if self.training.gpu_processes() > 1:
            return self._start_on_all_gpus(exp, self.training.gpu_processes(), resume)
        if resume and not self._can_continue(resume, exp):
            self.show_panel("training")
            return False
        if resume:
            self.curves.load_run(resume)
        else:
            self.curves.reset()
            self.attention.reset()
            self.balance.reset()
        # the pages that follow one kind of run learn which run this is before its first event
        self.attention.follow_live()  # the last run's scrubbed timeline does not hold the new one back
        self.finetune.begin_run(self.finetune.is_enabled(), resume=bool(resume))
        self.balance.begin_run(exp)
        self.training.on_preparing(resume)
        self.session.start(exp, resume=resume, from_step=self.training.from_step() if resume else None,
                           default_threads=max(1, (os.cpu_count() or 2) - 1))
        self._trained.append(exp)
        return True

    def pause(self) -> None:
        self.follow.pause() if self.follow.is_following() else self.session.pause()
        self._update_actions()

    def resume(self) -> None:
        self.follow.resume() if self.follow.is_following() else self.session.resume()
        self._update_actions()

    def stop(self) -> None:
        self.follow.stop() if self.follow.is_following() else self.session.stop()

    def run_demo(self) -> bool:
        """Load the bundled demo preset and start it, showing the curves."""
        if self.session.is_active() or not self._confirm_replace("loading the demo"):
            return False
        self.training.set_resume("")
        self.set_experiment(resolve_experiment(DEMO_PRESET), base_label=DEMO_PRESET)
        ok = self.start()
        if ok:
            self.show_panel("curves")
            self._demo_tour = True
        return ok

    def request_snapshot(self) -> None:
        """Record the attention now (a paused run does it at once, a running one at its next step)."""
        if self.session.is_active():
            self._snapshot_wanted = True
            self.session.request(control_mod.SNAPSHOT_ATTENTION)
            self.statusBar().showMessage("Recording the attention…", 3000)

    # -- events from the run ---------------------------------------------------------------

    def _on_state(self, state: str) -> None:
        self._show_state(state)
        self._update_actions()

    def _show_state(self, state: str) -> None:
        text, color = STATE_LOOK.get(state, (state, theme.NEUTRAL))
        self.state_chip.setText(text)
        self.state_chip.setStyleSheet(f"background: {color};")
        self.status_progress.setVisible(state != "idle")

    def _update_actions(self) -> None:
        st = self.session.state
        active = self.session.is_active()
        following = self.follow.is_following()
        lesson = self.lessons.is_running()
        self.start_action.setEnabled(not active and not following and not lesson and self.model.is_valid())
        self.start_action.setToolTip("Stop following the other run first (File > Stop following)" if following
                                     else "A lesson is running (Lessons page): stop it first" if lesson
                                     else "Train with the current settings" if self.model.is_valid()
                                     else "Fix the model settings first (see the Model page)")
        if following:  # the buttons ask the followed run (control.json); its answer sets the state
            fst = self.follow.state
            self.pause_action.setEnabled(fst in ("preparing", "running"))
            self.pause_action.setToolTip("Pause the run after its current step (every process waits)")
            self.resume_action.setEnabled(fst == "paused")
            self.stop_action.setEnabled(fst in ("preparing", "running", "paused", "pausing", "resuming"))
        else:
            self.pause_action.setEnabled(st in ("preparing", "running") and not self.session.control.paused)
            self.resume_action.setEnabled(st in ("paused", "preparing", "running") and self.session.control.paused)
            self.stop_action.setEnabled(active and st != "stopping")
        self.demo_action.setEnabled(not active and not following and not lesson)
        self.lessons.set_training_active(active, following)
        self.snapshot_action.setEnabled(st in ("running", "paused"))
        for a in (self.open_action, self.open_run_action):
            a.setEnabled(not active)
        self.open_run_action.setEnabled(not active and not following)
        self.follow_action.setEnabled(not active)
        self.stop_follow_action.setEnabled(following)
        self.recent_menu.setEnabled(not active and bool(self.recent_experiments()))
        self.presets_menu.setEnabled(not active)
        editable = not active
        for panel in (self.corpus, self.tokenizer, self.model, self.tasks, self.finetune, self.training):
            panel.set_editable(editable)
        self.attention.set_run_active(active)
        if following:  # the page shows the followed run's snapshots; another run's would mix in
            self.attention.load_button.setEnabled(False)

    def _on_status(self, message: str, fraction: float) -> None:
        self.training.on_status(message, fraction)
        self.status_text.setText(message)

    def _on_started(self, e) -> None:
        self.training.on_started(e)
        if e.vocab_size:  # a followed run by an older workbench does not say
            self.model.set_vocab_size(e.vocab_size, True)
        self.status_progress.setRange(0, max(1, e.max_steps))
        self.status_progress.setValue(e.start_step)
        self.status_text.setText(f"{e.device} · {e.params:,} parameters")
        following = self.follow.is_following()
        self.statusBar().showMessage(f"{'Following the run' if following else 'Training'} in {e.run_dir}", 5000)

    def _on_metrics(self, batch) -> None:
        self.curves.add_metrics(batch)
        self.training.on_metrics(batch)
        self.balance.on_step(batch)
        self.finetune.on_step(batch)
        step = batch.last_step
        self.status_progress.setRange(0, max(1, batch.max_steps))
        self.status_progress.setValue(step)
        self.status_text.setText(f"step {step:,} / {batch.max_steps:,} · loss {float(batch.loss[-1]):.3f} · "
                                 f"{float(batch.tokens_per_s[-1]):,.0f} tokens/s")

    def _on_eval(self, e) -> None:
        self.curves.add_eval(e)
        self.training.on_eval(e)
        self.balance.on_eval(e)
        self.finetune.on_eval(e)

    def _pull_attention(self) -> None:
        snap = self.session.take_attention() or self.follow.take_attention()
        if snap is not None and self.follow.is_following():
            self.attention.set_run_dir(self.follow.run_dir)  # the snapshots between two polls, from the folder
        if snap is not None:
            wanted, self._snapshot_wanted = self._snapshot_wanted, False
            self.attention.add_snapshot(snap, show=wanted)
            self._demo_shows_attention()
            if wanted:
                self.statusBar().showMessage(f"Attention recorded at step {snap.step:,}", 5000)

    def _demo_shows_attention(self) -> None:
        """The Demo's second act: once a head does a task of the probe (a copy), the loss has fallen
        with it; show that head, unless the person left the Curves page meanwhile."""
        from workbench.engine.patterns import TASKS

        t = self.attention.telling
        if self._demo_tour and t is not None and t.clear and t.task in TASKS:
            self._demo_tour = False
            if self.current_panel() == "curves":
                self.show_panel("attention")
                self.statusBar().showMessage(f"The model learned to {t.task}: layer {t.layer} head {t.head} does it", 15000)

    def _on_finished(self, e) -> None:
        self.training.on_finished(e)
        if self.training.resume_dir() and e.reason != "stopped":
            self.training.set_resume("")  # it trained its steps: the next Start is a new run
        self.finetune.refresh_checkpoints()
        if e.run_dir:
            self.attention.set_run_dir(e.run_dir)
            self.runs.add_run(e.run_dir)
            self._offer_trained_run(e.run_dir)
        word = {"completed": "Finished", "early_stopped": "Stopped early"}.get(e.reason, "Stopped")
        self.statusBar().showMessage(f"{word} at step {e.step:,}. Run folder: {e.run_dir}", 15000)

    def _offer_trained_run(self, run_dir: str) -> None:
        """The pages that study a trained model (Generate, Evaluate, Inside) load the run just made,
        unless the person chose a model of another run there."""
        self._window_runs.add(Path(run_dir).resolve())
        for panel in (self.generate, self.evaluate, self.inside):
            t = panel.trained()
            if t is None or Path(t.path).resolve().parent.parent in self._window_runs:
                panel.set_run(run_dir)

    def _on_failed(self, e) -> None:
        self.training.on_failed(e)
        self.statusBar().showMessage(f"Training failed: {e.message}", 15000)
        self.show_error("Training failed", e.message, e.details)

    def _on_thread_done(self) -> None:
        self._update_actions()
        self.finetune.end_run()
        self.status_text.setText("")
        if self._close_after_stop:
            self._close_after_stop = False
            self.confirm_close = False
            self.close()

    def _redraw(self, live: bool) -> None:
        """A tick of the redraw timer (redraw.py): the plots of the page in view."""
        if self.curves.isVisible():
            if live:  # one plot per tick (see redraw.py): the loss plot every other tick
                plots = list(self.curves.plots.values())
                plots[self.pacer.next_plot(len(plots))].refresh()
            else:
                self.curves.refresh()
        for panel in (self.balance, self.finetune):
            if panel.isVisible():
                panel.refresh()

    # -- messages --------------------------------------------------------------------------

    def show_error(self, title: str, message: str, details: str = "") -> None:
        """A message box with the message in words and the details (traceback) behind
        "Show Details…". Tests replace ``QMessageBox.exec``."""
        box = QtWidgets.QMessageBox(self)
        box.setIcon(QtWidgets.QMessageBox.Icon.Critical)
        box.setWindowTitle(title)
        box.setText(message)
        if details:
            box.setDetailedText(details)
        box.setStandardButtons(QtWidgets.QMessageBox.StandardButton.Ok)
        self.last_message_box = box
        box.exec()

    def _about(self) -> None:
        QtWidgets.QMessageBox.about(
            self, "About GPT Workbench",
            "<b>GPT Workbench</b><br>Train and study small GPT language models by pointing and clicking."
            "<br><br>Every experiment can be saved as TOML and replayed with <code>workbench train</code>.")

    # -- navigation and view ---------------------------------------------------------------

    def show_panel(self, which) -> None:
        index = list(self.panels).index(which) if isinstance(which, str) else int(which)
        self.sidebar.setCurrentRow(index)

    def current_panel(self) -> str:
        return list(self.panels)[self.stack.currentIndex()]

    def toggle_presentation(self, checked: bool | None = None) -> None:
        self.set_presentation(not self.presentation if checked is None else bool(checked))

    def set_presentation(self, on: bool) -> None:
        """Bigger fonts and a wider sidebar; leaving gives back the normal sidebar width, which is
        the one kept for the next launch (that opens in normal mode)."""
        if on and not self.presentation:
            self._normal_split = self.splitter.saveState()
        was = self.presentation
        self.presentation = on
        scale = PRESENTATION_SCALE if on else 1.0
        with QtCore.QSignalBlocker(self.presentation_action):
            self.presentation_action.setChecked(on)
        app = QtWidgets.QApplication.instance()
        theme.apply_style(app, scale)
        self.sidebar_pane.set_scale(scale)
        self.toolbar.setIconSize(QtCore.QSize(int(18 * scale), int(18 * scale)))
        for panel in self.panels.values():
            panel.set_presentation(scale)
        if not on and was and self._normal_split is not None:
            self.splitter.restoreState(self._normal_split)
        else:
            side = int(sidebar_mod.WIDTH * sidebar_mod.width_scale(scale))
            self.splitter.setSizes([side, max(400, self.width() - side)])

    def toggle_fullscreen(self, on: bool) -> None:
        self.showFullScreen() if on else self.showNormal()
