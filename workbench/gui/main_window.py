"""The main window: a sidebar that walks the path corpus -> tokenizer -> model -> training ->
curves -> attention, one page per step, a toolbar with Start/Pause/Resume/Stop and Demo, and a
status bar.

The window owns the experiment: on Start it copies every form into one frozen ``Experiment`` on
the GUI thread and gives it to the ``TrainingSession`` (bridge.py), which runs the trainer in its
worker thread. Events come back as signals and are handed to the panels. Geometry, splitter
positions and recent experiments persist in QSettings; the whole setup in the forms (saved or not)
is written to ``last.toml`` on closing and reopened at the next launch (the demo the first time).

Nothing a person made is dropped without a question: replacing a setup that is saved nowhere (no
file of the person's, no run this window trained or opened; a run folder reopened at launch is no
save of theirs) asks Save / Discard / Cancel first. The probe text belongs to the corpus it was
written for: picking another corpus clears it, with a note and an Undo. An automatic name follows
the corpus unless the person typed one.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from workbench import paths
from workbench.engine import control as control_mod
from workbench.engine.config import (ConfigError, Experiment, from_dict, load_experiment, preset_dir,
                                     preset_names, resolve_experiment)

from . import theme
from .bridge import Job, TrainingSession, import_engine
from .panels.attention_panel import AttentionPanel
from .panels.balance_panel import BalancePanel
from .panels.finetune_panel import FinetunePanel, experiment_sections, load_experiment_into
from .panels.tasks_panel import TasksPanel
from .panels.corpus_panel import CorpusPanel
from .panels.curves_panel import CurvesPanel
from .panels.evaluate_panel import EvaluatePanel
from .panels.generate_panel import GeneratePanel
from .panels.inside_panel import InsidePanel
from .panels.model_panel import ModelPanel
from .panels.runs_panel import RunsPanel
from .panels.tokenizer_panel import TokenizerPanel
from .panels.training_panel import TrainingPanel, command_line

# Qt's raster engine hands any fill of 96 spans or more (a long grid line, a tall bar) to a thread
# pool and waits for it: on 2 cores those helper threads take the CPU from the training worker
# while the GUI thread waits on them (measured with the curves redrawing 10 times a second: -14%
# process CPU, p99 event-loop lateness 45 -> 27 ms). Qt reads this at its first such fill, so it
# is set here, before the window paints anything.
os.environ.setdefault("QT_NO_GUI_THREADPOOL", "1")

DEMO_PRESET = "demo_toy"
LAST_EXPERIMENT = "last.toml"  # the forms at the last close, beside the settings
MAX_RECENT = 8
PRESENTATION_SCALE = 1.45
# The first window: this size where the screen has room, else the screen's free area. The minimum
# is small because every page scrolls (see _PageScroll): a window never has to outgrow its screen.
PREFERRED_WINDOW = QtCore.QSize(1440, 900)
MIN_WINDOW = QtCore.QSize(760, 520)
FRAME_ALLOWANCE = QtCore.QSize(16, 48)  # title bar and borders of a typical window manager
# Live redraw while a run trains (measured with `workbench bench gui`): redrawing the four curves
# costs ~30 ms of GUI-thread CPU, and every GUI-thread millisecond is taken from the training
# worker (on 2 cores they share the CPU time the process gets, and always the GIL). So during a
# run the curves are redrawn one plot per tick (the loss plot every other tick), which keeps each
# frame short, and the tick interval adapts so that the GUI thread uses at most GUI_CPU_SHARE of
# the CPU time of the whole process. Sidebar summaries ("loss 2.345") change when their page's
# header does, in the same event-loop pass (one repaint of the sidebar per metrics batch, at most
# 1000 / bridge.METRICS_INTERVAL a second): a summary that lags its page reads as a different number.
REDRAW_IDLE_MS = 100
REDRAW_MIN_MS = 25
REDRAW_MAX_MS = 1000
GUI_CPU_SHARE = 0.05
STATE_LOOK = {  # state -> (chip text, colour)
    "idle": ("Ready", theme.NEUTRAL),
    "preparing": ("Preparing", theme.WAITING),
    "running": ("Training", theme.START_GREEN),
    "paused": ("Paused", theme.WAITING),
    "stopping": ("Stopping", theme.ERROR_COLOR),
}

TITLE_ROLE = QtCore.Qt.ItemDataRole.DisplayRole
SUBTITLE_ROLE = QtCore.Qt.ItemDataRole.UserRole + 1
NUMBER_ROLE = QtCore.Qt.ItemDataRole.UserRole + 2


def make_icon(shape: str, color: str = theme.ICON_COLOR) -> QtGui.QIcon:
    """Simple, crisp toolbar icons drawn here (the platform's media icons vary a lot)."""
    size = 64
    pm = QtGui.QPixmap(size, size)
    pm.fill(QtCore.Qt.GlobalColor.transparent)
    p = QtGui.QPainter(pm)
    p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    p.setPen(QtCore.Qt.PenStyle.NoPen)
    p.setBrush(QtGui.QColor(color))
    P = QtCore.QPointF
    if shape == "play":
        p.drawPolygon(QtGui.QPolygonF([P(16, 8), P(56, 32), P(16, 56)]))
    elif shape == "pause":
        p.drawRoundedRect(QtCore.QRectF(12, 8, 14, 48), 3, 3)
        p.drawRoundedRect(QtCore.QRectF(38, 8, 14, 48), 3, 3)
    elif shape == "resume":
        p.drawRoundedRect(QtCore.QRectF(8, 8, 10, 48), 3, 3)
        p.drawPolygon(QtGui.QPolygonF([P(26, 8), P(60, 32), P(26, 56)]))
    elif shape == "stop":
        p.drawRoundedRect(QtCore.QRectF(10, 10, 44, 44), 6, 6)
    elif shape == "demo":  # a sparkle
        path = QtGui.QPainterPath()
        cx, cy, r, k = 28, 34, 26, 7
        path.moveTo(cx, cy - r)
        path.quadTo(cx + k / 2, cy - k / 2, cx + r, cy)
        path.quadTo(cx + k / 2, cy + k / 2, cx, cy + r)
        path.quadTo(cx - k / 2, cy + k / 2, cx - r, cy)
        path.quadTo(cx - k / 2, cy - k / 2, cx, cy - r)
        p.drawPath(path)
        p.drawEllipse(QtCore.QPointF(52, 10), 6, 6)
    elif shape == "screen":
        p.setBrush(QtCore.Qt.BrushStyle.NoBrush)
        p.setPen(QtGui.QPen(QtGui.QColor(color), 6))
        p.drawRoundedRect(QtCore.QRectF(6, 10, 52, 34), 4, 4)
        p.drawLine(P(32, 46), P(32, 56))
        p.drawLine(P(20, 57), P(44, 57))
    p.end()
    return QtGui.QIcon(pm)


def corpus_name(sources) -> str:
    """A run name for a corpus: "shakespeare", "notes" (notes.txt), "notes-mix" for several."""
    first = str(sources[0]) if sources else ""
    stem = first.split(":", 1)[1] if first.startswith("builtin:") else (Path(first).stem or Path(first).name)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-")[:40] or "experiment"
    return f"{name}-mix" if len(sources) > 1 else name


class SidebarDelegate(QtWidgets.QStyledItemDelegate):
    """Draws a step of the path: a numbered circle on a connecting line, the name, and a one-line
    summary of that step's current state."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.scale = 1.0

    def sizeHint(self, option, index) -> QtCore.QSize:
        fm = QtGui.QFontMetrics(option.font)
        return QtCore.QSize(200, int(fm.height() * 2.2 + 22 * self.scale))

    def paint(self, p: QtGui.QPainter, option, index) -> None:
        p.save()
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        r = QtCore.QRectF(option.rect)
        selected = bool(option.state & QtWidgets.QStyle.StateFlag.State_Selected)
        hover = bool(option.state & QtWidgets.QStyle.StateFlag.State_MouseOver)
        if selected or hover:
            bg = QtGui.QColor(theme.SIDEBAR_SELECTED_BG if selected else theme.SIDEBAR_HOVER_BG)
            p.setPen(QtCore.Qt.PenStyle.NoPen)
            p.setBrush(bg)
            p.drawRoundedRect(r.adjusted(8, 2, -8, -2), 7, 7)
            if selected:
                p.setBrush(QtGui.QColor(theme.SIDEBAR_MARK))
                p.drawRoundedRect(QtCore.QRectF(r.left() + 8, r.top() + 10, 3, r.height() - 20), 1.5, 1.5)
        number = index.data(NUMBER_ROLE)
        model = index.model()
        rad = 13 * self.scale
        cx, cy = r.left() + 34 * self.scale, r.center().y()
        line = QtGui.QPen(QtGui.QColor(theme.SIDEBAR_LINE), 2)
        p.setPen(line)
        if index.row() > 0:
            p.drawLine(QtCore.QPointF(cx, r.top()), QtCore.QPointF(cx, cy - rad))
        if index.row() < model.rowCount() - 1:
            p.drawLine(QtCore.QPointF(cx, cy + rad), QtCore.QPointF(cx, r.bottom() + 1))
        p.setPen(QtGui.QPen(QtGui.QColor(theme.SIDEBAR_MARK if selected else theme.SIDEBAR_RING), 2))
        p.setBrush(QtGui.QColor(theme.UI_ACCENT if selected else theme.SIDEBAR_BG))
        p.drawEllipse(QtCore.QPointF(cx, cy), rad, rad)
        f = QtGui.QFont(option.font)
        f.setBold(True)
        p.setFont(f)
        p.setPen(QtGui.QColor(theme.SIDEBAR_SELECTED_TEXT if selected else theme.SIDEBAR_NUMBER))
        p.drawText(QtCore.QRectF(cx - rad, cy - rad, 2 * rad, 2 * rad), QtCore.Qt.AlignmentFlag.AlignCenter, str(number))
        tx = cx + rad + 12 * self.scale
        fm = QtGui.QFontMetrics(f)
        title_rect = QtCore.QRectF(tx, cy - fm.height() - 1, r.right() - tx - 10, fm.height())
        p.setPen(QtGui.QColor(theme.SIDEBAR_SELECTED_TEXT if selected else theme.SIDEBAR_TITLE))
        p.drawText(title_rect, QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter,
                   index.data(TITLE_ROLE))
        small = QtGui.QFont(option.font)
        small.setPointSizeF(option.font.pointSizeF() * 0.88)
        p.setFont(small)
        sfm = QtGui.QFontMetrics(small)
        sub = index.data(SUBTITLE_ROLE) or ""
        sub_rect = QtCore.QRectF(tx, cy + 2, r.right() - tx - 10, sfm.height())
        p.setPen(QtGui.QColor(theme.SIDEBAR_SELECTED_SUMMARY if selected else theme.SIDEBAR_SUMMARY))
        p.drawText(sub_rect, QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter,
                   sfm.elidedText(sub, QtCore.Qt.TextElideMode.ElideRight, int(sub_rect.width())))
        p.restore()


class _PageHost(QtWidgets.QWidget):
    """Holds one panel in the page stack and stops its relayouts at the page's edge.

    A label whose text changes (the curves headline, the training panel's step and speed, several
    times a second during a run) relayouts its panel, and Qt then relayouts every ancestor up to
    the window, where the page stack asks every page, shown or not, for its size (word-wrapped
    labels lay out their text each time): about 10 ms of GUI thread per metrics batch, measured
    with `workbench bench gui`. This host has no layout: it gives the panel its whole area and
    passes a relayout upwards only when the panel's size hints have changed."""

    def __init__(self, panel: QtWidgets.QWidget):
        super().__init__()
        self.panel = panel
        self._hints = None
        self.setSizePolicy(panel.sizePolicy())
        panel.setParent(self)

    def sizeHint(self) -> QtCore.QSize:
        return self.panel.sizeHint()

    def minimumSizeHint(self) -> QtCore.QSize:
        hint = self.panel.minimumSizeHint()
        lay = self.panel.layout()
        if lay is not None and lay.hasHeightForWidth():  # word-wrapped text is taller when narrow
            width = max(hint.width(), self.width())
            hint.setHeight(max(hint.height(), lay.totalMinimumHeightForWidth(width)))
        return hint

    def _fit(self) -> None:
        hints = (self.panel.sizeHint(), self.minimumSizeHint())
        if hints != self._hints:
            self._hints = hints
            self.updateGeometry()
            page = self.parentWidget() and self.parentWidget().parentWidget()
            if isinstance(page, _PageScroll):  # the scroll area re-reads the minimum size
                QtWidgets.QApplication.postEvent(page, QtCore.QEvent(QtCore.QEvent.Type.LayoutRequest))
        self.panel.setGeometry(self.rect())

    def event(self, e: QtCore.QEvent) -> bool:
        if e.type() == QtCore.QEvent.Type.LayoutRequest:  # the panel's layout changed
            self._fit()
            return True
        return super().event(e)

    def showEvent(self, e) -> None:
        self._fit()
        super().showEvent(e)

    def resizeEvent(self, e) -> None:
        self.panel.setGeometry(self.rect())
        super().resizeEvent(e)
        if e.size().width() != e.oldSize().width():
            self._fit()  # the height the panel needs depends on its width


class _PageScroll(QtWidgets.QScrollArea):
    """A page of the stack: the panel (in its _PageHost) fills the page and scrolls where the
    window is smaller than the panel's minimum size (a projector at 1024x768 in presentation
    mode), so that every control stays reachable instead of being squeezed over its neighbours.
    The stack itself asks for no more than a small minimum, so the window fits any screen."""

    def __init__(self, panel: QtWidgets.QWidget):
        super().__init__()
        self.host = _PageHost(panel)
        self.setObjectName(f"page_{panel.objectName()}")
        self.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.setWidgetResizable(True)
        self.setWidget(self.host)

    def minimumSizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(200, 150)

    def sizeHint(self) -> QtCore.QSize:
        return self.host.sizeHint()

    def resizeEvent(self, e) -> None:
        # the room the page has without scroll bars: panels size their big views from it
        # (from the panel's own size they would grow it, and then themselves, without end)
        self.host.panel.set_page_size(self.maximumViewportSize())
        super().resizeEvent(e)


class MainWindow(QtWidgets.QMainWindow):
    """See the module docstring. ``settings``: a QSettings to use (tests pass a temporary one in INI
    format; the last experiment is then kept beside its file, else in the config dir)."""

    def __init__(self, settings: QtCore.QSettings | None = None, parent=None):
        super().__init__(parent)
        self.settings = settings or QtCore.QSettings(theme.ORGANIZATION, theme.APPLICATION)
        self.last_path: Path | None = (paths.config_dir() / LAST_EXPERIMENT if settings is None else
                                       Path(settings.fileName()).with_name(LAST_EXPERIMENT)
                                       if settings.format() == QtCore.QSettings.Format.IniFormat else None)
        self.session = TrainingSession(self)
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
        self.panels = {"corpus": self.corpus, "tokenizer": self.tokenizer, "model": self.model,
                       "tasks": self.tasks, "finetune": self.finetune, "training": self.training,
                       "curves": self.curves, "balance": self.balance, "attention": self.attention,
                       "evaluate": self.evaluate, "generate": self.generate, "inside": self.inside,
                       "runs": self.runs}

        self._build_actions()
        self._build_layout()
        self._build_menus()
        self._build_status_bar()
        self._connect()

        self.plot_timer = QtCore.QTimer(self)
        self.plot_timer.setInterval(REDRAW_IDLE_MS)  # curves redraw ~10 times a second (paced in a run)
        self._pace_mark: tuple[float, float] | None = None  # (process CPU, GUI thread CPU) seconds
        self._redraw_tick = 0
        self.plot_timer.timeout.connect(self._redraw)
        self.plot_timer.start()

        self._restore_settings()
        self._reopen_last()
        self._update_actions()
        QtCore.QTimer.singleShot(0, self._warm_up)

    # -- construction ------------------------------------------------------------------------

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
        self.quit_action = self._action("Quit", self.close, QtGui.QKeySequence.StandardKey.Quit)
        self.presentation_action = self._action("Presentation mode", self.toggle_presentation, "F11",
                                                make_icon("screen"), tip="Larger fonts and plots for a projector (F11)")
        self.presentation_action.setCheckable(True)
        self.fullscreen_action = self._action("Full screen", self.toggle_fullscreen, "Ctrl+Shift+F")
        self.fullscreen_action.setCheckable(True)
        self.copy_command_action = self._action("Copy command line", self.copy_command, "Ctrl+Shift+C",
                                                tip="Copy the equivalent `workbench train` command")

    def _build_layout(self) -> None:
        side = QtWidgets.QWidget()
        side.setObjectName("sidebarPane")
        sl = QtWidgets.QVBoxLayout(side)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.setSpacing(0)
        t = QtWidgets.QLabel("GPT Workbench")
        t.setObjectName("appTitle")
        st = QtWidgets.QLabel("train and look inside small GPTs")
        st.setObjectName("appSubtitle")
        sl.addWidget(t)
        sl.addWidget(st)
        self._sidebar_titles = (t, st)
        self.sidebar = QtWidgets.QListWidget()
        self.sidebar.setObjectName("sidebar")
        self.sidebar_delegate = SidebarDelegate(self.sidebar)
        self.sidebar.setItemDelegate(self.sidebar_delegate)
        self.sidebar.setMouseTracking(True)
        self.sidebar.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.sidebar.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.sidebar.setVerticalScrollMode(QtWidgets.QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.stack = QtWidgets.QStackedWidget()
        for i, (key, panel) in enumerate(self.panels.items(), start=1):
            item = QtWidgets.QListWidgetItem(panel.title)
            item.setData(NUMBER_ROLE, i)
            item.setData(SUBTITLE_ROLE, panel.summary())
            item.setToolTip(panel.subtitle)
            self.sidebar.addItem(item)
            self.stack.addWidget(_PageScroll(panel))
            panel.summaryChanged.connect(lambda text, it=item: self._set_summary(it, text))
        sl.addWidget(self.sidebar, 1)
        self.sidebar_foot = QtWidgets.QLabel("F11 presentation mode")
        self.sidebar_foot.setObjectName("sidebarFoot")
        sl.addWidget(self.sidebar_foot)
        self.sidebar.currentRowChanged.connect(self.stack.setCurrentIndex)
        # during a run the curves redraw one plot per tick (see GUI_CPU_SHARE): all of them at once
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
        self.splitter.setSizes([230, 1200])
        side.setMinimumWidth(215)
        self.sidebar_pane = side
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
        sb.addPermanentWidget(self.status_text)
        sb.addPermanentWidget(self.status_progress)
        sb.addPermanentWidget(self.state_chip)
        self._show_state("idle")

    def _connect(self) -> None:
        s = self.session
        s.stateChanged.connect(self._on_state)
        s.status.connect(self._on_status)
        s.started.connect(self._on_started)
        s.metrics.connect(self._on_metrics)
        s.evaluated.connect(self._on_eval)
        s.attentionReady.connect(self._pull_attention)
        s.checkpointSaved.connect(self.training.on_checkpoint)
        s.paused.connect(self.training.on_paused)
        s.resumed.connect(self.training.on_resumed)
        s.finished.connect(self._on_finished)
        s.failed.connect(self._on_failed)
        s.threadDone.connect(self._on_thread_done)
        s.freezeChanged.connect(lambda e: self.training.log_line(
            f"Step {e.step}: now training {e.description} ({e.n_trainable:,} parameters)"))

        s.taskBalance.connect(self.balance.on_balance)
        s.freezeChanged.connect(self.finetune.on_freeze)
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

    # -- start-up ------------------------------------------------------------------------------

    def _warm_up(self) -> None:
        """Load torch in the background; then fill the device list and the model's numbers."""
        job = Job(import_engine, name="import torch")
        job.done.connect(self._engine_loaded)
        job.failed.connect(self._engine_failed)
        self._warm_job = job.start()

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

    # -- the experiment ----------------------------------------------------------------------

    def experiment(self) -> Experiment:
        """Every form as one validated, frozen Experiment (raises ConfigError)."""
        return from_dict(self._forms().to_dict(), source="the forms")

    def _forms(self) -> Experiment:
        """Every form as one Experiment, not yet validated."""
        training = dataclasses.replace(self.training.config(), probe_text=self.attention.probe_text())
        return self._base_exp.replace(name=self.training.name(), corpus=self.corpus.config(),
                                      tokenizer=self.tokenizer.config(), model=self.model.config(), training=training,
                                      **experiment_sections(self.tasks, self.finetune))

    def set_experiment(self, exp: Experiment, *, base_label: str | None = None, path: str | None = None,
                       base: Experiment | None = None, run: bool = False) -> None:
        """Fill every form from ``exp``. ``base``: what it was made from, when that is not ``exp``
        itself (a reopened setup with unsaved edits): the file or preset that ``base_label`` names.
        ``run``: the base is a run folder's config.toml (a record of the run, not the person's save)."""
        self._base_exp = base or exp
        self._base_is_run = run
        self._loading = True
        try:
            self.training.set_name(exp.name)
            self.corpus.set_config(exp.corpus)
            self.tokenizer.set_config(exp.tokenizer)
            self.model.set_config(exp.model)
            self.training.set_config(exp.training)
            load_experiment_into(exp, self.tasks, self.finetune)
            self.attention.set_probe_text(exp.training.probe_text)
        finally:
            self._loading = False
        self._base_label = base_label or path or self._base_label
        self._experiment_path = path
        self._probe_auto = self._base_exp.training.probe_text
        self._probe_corpus = tuple(exp.corpus.paths)
        self._probe_undo = ""
        self.attention.show_probe_note(None)
        from_preset = path is None and self._base_label in preset_names()
        self._name_auto = self._base_exp.name if from_preset else None
        self._corpus_paths = tuple(self.corpus.config().paths)
        self._update_title()
        self._corpus_changed()
        self._training_changed()

    def is_modified(self) -> bool:
        """True when the forms hold a setup that is saved nowhere: it differs from the file or
        preset it came from and from every run this window trained or opened (the person knows
        those runs). A run folder the setup came from in an earlier session is no save: the
        person may not know it, and the Runs page can delete it."""
        try:
            exp = self.experiment()
        except ConfigError:
            return True
        if exp in self._trained:
            return False
        return self._base_is_run or exp != self._base_exp

    def _confirm_replace(self, what: str) -> bool:
        """Before something replaces the forms: a setup saved nowhere is not lost without a
        question (Save / Discard / Cancel). True: go ahead."""
        if not self.is_modified():
            return True
        B = QtWidgets.QMessageBox.StandardButton
        box = QtWidgets.QMessageBox(self)
        box.setIcon(QtWidgets.QMessageBox.Icon.Question)
        box.setWindowTitle("Unsaved changes")
        box.setText(f"The current setup has changes that are not saved. Save them before {what}?")
        box.setInformativeText("Discard drops them; Cancel keeps everything as it is.")
        box.setStandardButtons(B.Save | B.Discard | B.Cancel)
        box.setDefaultButton(B.Save)
        self.last_message_box = box
        box.exec()
        clicked = box.standardButton(box.clickedButton()) if box.clickedButton() else B.Cancel
        if clicked == B.Save:
            return self.save_experiment()
        return clicked == B.Discard

    # -- the last experiment, reopened at launch -----------------------------------------------

    def _reopen_last(self) -> None:
        """The setup of the last session (saved or not), else the demo."""
        demo = resolve_experiment(DEMO_PRESET)
        if self.last_path is None or not self.last_path.is_file():
            self.set_experiment(demo, base_label=DEMO_PRESET)
            return
        try:
            exp = load_experiment(self.last_path)
        except ConfigError as e:  # keep the file for the person (the next close writes last.toml)
            kept = self.last_path.with_name("last-unreadable.toml")
            try:
                os.replace(self.last_path, kept)
            except OSError:
                kept = self.last_path
            self.set_experiment(demo, base_label=DEMO_PRESET)
            self.statusBar().showMessage(f"The last setup could not be reopened ({e}); it is kept in {kept}.")
            return
        path = self.settings.value("experiment/path") or None
        label = path or self.settings.value("experiment/base") or DEMO_PRESET
        run = not path and self.settings.value("experiment/base_is_run") in (True, "true")
        try:
            base = resolve_experiment(label)
        except ConfigError:  # its file is gone: unsaved then, compared with the demo
            label, path, base, run = DEMO_PRESET, None, demo, False
        self.set_experiment(exp, base_label=label, path=path, base=base, run=run)
        self.statusBar().showMessage("Reopened the setup of the last session", 6000)

    def save_last_experiment(self) -> None:
        """The forms as they are (valid or not) to last.toml, and where they came from to QSettings."""
        if self.last_path is None:
            return
        try:
            self.last_path.parent.mkdir(parents=True, exist_ok=True)
            self._forms().save(self.last_path)
        except (OSError, TypeError, ValueError) as e:  # closing goes on; say why on the console
            print(f"GPT Workbench: could not keep the setup in {self.last_path}: {e}")
            return
        self.settings.setValue("experiment/base", self._base_label)
        self.settings.setValue("experiment/path", self._experiment_path or "")
        self.settings.setValue("experiment/base_is_run", self._base_is_run)

    def _update_title(self) -> None:
        """The experiment first, the app name last, once: the X11/Wayland platforms append the
        application display name to a title that does not already end with it."""
        where = f" — {Path(self._experiment_path).name}" if self._experiment_path else ""
        self.setWindowTitle(f"{self.training.name()}{where} — {theme.APPLICATION}")

    def _corpus_changed(self) -> None:
        cfg = self.corpus.config()
        self.tokenizer.set_corpus(cfg, ok=not self.corpus.has_errors())
        sample = self.corpus.preview_sample()
        if sample and self.tokenizer.sample_edit.toPlainText() == "":
            self.tokenizer.set_sample_text(sample[:300])
        if not self._loading and tuple(cfg.paths) != self._corpus_paths:
            self._corpus_paths = tuple(cfg.paths)
            self._follow_corpus(cfg.paths)

    def _follow_corpus(self, sources) -> None:
        """The probe text belongs to the corpus it was written for (typed, applied or the
        experiment's): another corpus clears it, so a run records the start of its own validation
        text, with a note and an Undo; going back to the experiment's corpus brings the
        experiment's probe back. An automatic name follows the corpus; a typed one stays."""
        base = self._base_exp
        sources = tuple(sources)
        same = sources == tuple(base.corpus.paths)
        probe = self.attention.probe_text()
        untouched = probe in (self._probe_auto, "")
        if self._probe_undo and untouched and sources == self._probe_undo_corpus:
            self._undo_probe_clear()  # back to the corpus the cleared probe was written for
            self._probe_auto = self.attention.probe_text() if same else ""
        elif probe == self._probe_auto or sources != self._probe_corpus:
            new = base.training.probe_text if same and untouched else ""
            written_for = self._probe_corpus
            self._probe_auto, self._probe_corpus = new, sources
            if new != probe:
                self.attention.set_probe_text(new)
            if probe and not new:
                self._probe_undo, self._probe_undo_corpus = probe, written_for
                shown = probe if len(probe) <= 40 else probe[:39] + "…"
                note = (f"The probe text “{shown}” was written for the earlier corpus, so it was cleared: "
                        f"the next run records the start of its own validation text.")
                self.attention.show_probe_note(note)
                self.statusBar().showMessage(note + " Undo on the Attention page.", 10000)
            elif new:
                self.attention.show_probe_note(None)
        if self._name_auto is not None and self.training.name() == self._name_auto:
            self._name_auto = base.name if same else corpus_name(sources)
            self.training.set_name(self._name_auto)

    def _probe_typed(self, _text: str) -> None:
        """A probe the person types is written for the corpus in the list now."""
        self._probe_corpus = tuple(self.corpus.config().paths)
        self._probe_undo = ""
        self.attention.show_probe_note(None)

    def _undo_probe_clear(self) -> None:
        """The person keeps the cleared probe text for the corpus now in the list."""
        if self._probe_undo:
            self.attention.set_probe_text(self._probe_undo)
            self._probe_corpus = tuple(self.corpus.config().paths)
            self._probe_undo = ""
        self.attention.show_probe_note(None)

    def _training_changed(self) -> None:
        t = self.training.config()
        tokens = t.max_steps * t.batch_size * t.grad_accum_steps * self.model.config().block_size
        self.model.set_training(t.batch_size, tokens)
        self.finetune.set_run_shape(max_steps=t.max_steps, n_layer=self.model.config().n_layer,
                                    learning_rate=t.learning_rate)
        self._update_title()

    def open_experiment(self, name_or_path: str) -> bool:
        """A TOML file or a preset name; errors are shown, not raised."""
        try:
            exp = resolve_experiment(name_or_path)
        except ConfigError as e:
            self.show_error("Cannot open the experiment", str(e))
            return False
        if not self._confirm_replace(f"opening {Path(name_or_path).name}"):
            return False
        is_file = Path(name_or_path).exists()
        self.training.set_resume("")
        self.set_experiment(exp, base_label=name_or_path, path=str(Path(name_or_path).resolve()) if is_file else None)
        if is_file:
            self._add_recent(str(Path(name_or_path).resolve()))
        self.statusBar().showMessage(f"Opened {name_or_path}", 4000)
        return True

    def open_experiment_dialog(self) -> None:
        start = str(Path(self._experiment_path).parent) if self._experiment_path else str(preset_dir())
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open experiment", start, "Experiment (*.toml)")
        if path:
            self.open_experiment(path)

    def save_experiment(self) -> bool:
        if not self._experiment_path:
            return self.save_experiment_as()
        return self.save_experiment_to(self._experiment_path)

    def save_experiment_as(self) -> bool:
        default = self._experiment_path or str(Path.home() / f"{self.training.name()}.toml")
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save experiment", default, "Experiment (*.toml)")
        if not path:
            return False
        if not path.endswith(".toml"):
            path += ".toml"
        return self.save_experiment_to(path)

    def save_experiment_to(self, path: str) -> bool:
        from workbench.engine.errors import WorkbenchError
        from workbench.engine.ownership import check_output

        try:
            exp = self.experiment()
            # a run folder's config.toml is its run's; the file dialog has asked about any other file
            check_output(Path(path), "experiment", own_file=lambda _p: True)
            exp.save(path)
        except (WorkbenchError, OSError) as e:
            self.show_error("Cannot save the experiment", str(e))
            return False
        self._experiment_path = str(Path(path).resolve())
        self._base_label, self._base_exp, self._base_is_run = self._experiment_path, exp, False
        self._name_auto = None  # a saved name is the person's
        self._add_recent(self._experiment_path)
        self._update_title()
        self.statusBar().showMessage(f"Saved {path}", 4000)
        return True

    def copy_command(self) -> str:
        try:
            exp = self.experiment()
        except ConfigError as e:
            self.training.show_message(str(e))
            return ""
        resume = self.training.resume_dir() or None
        base = self._resume_exp if resume and self._resume_exp is not None else self._base_exp
        try:
            cmd = command_line(self._base_label, base, exp, resume, self.training.from_step() if resume else None)
        except ValueError as e:
            self.training.show_message(str(e))
            return ""
        QtWidgets.QApplication.clipboard().setText(cmd)
        self.training.show_command(cmd)
        self.statusBar().showMessage("Command line copied to the clipboard", 4000)
        return cmd

    def _resume_chosen(self, folder: str) -> None:
        """Resuming trains the run's own experiment: show it in the forms."""
        self._resume_exp = None
        if not folder:
            return
        try:
            exp = load_experiment(Path(folder) / "config.toml")
        except ConfigError as e:
            self.training.show_message(str(e))
            return
        if not self._confirm_replace(f"showing the settings of {Path(folder).name}"):
            self.training.set_resume("")
            return
        self.set_experiment(exp, base_label=str(Path(folder) / "config.toml"), run=True)
        self._trained.append(exp)  # the person just picked this run: it is where they know
        self._resume_exp = exp
        self.curves.load_run(folder)
        self.attention.load_run(folder)

    # -- recent experiments ------------------------------------------------------------------

    def recent_experiments(self) -> list[str]:
        value = self.settings.value("recent", [])
        if isinstance(value, str):
            value = [value]
        return [v for v in (value or []) if v]

    def _add_recent(self, path: str) -> None:
        items = [path] + [p for p in self.recent_experiments() if p != path]
        self.settings.setValue("recent", items[:MAX_RECENT])
        self._update_recent_menu()

    def _update_recent_menu(self) -> None:
        self.recent_menu.clear()
        items = self.recent_experiments()
        for p in items:
            self.recent_menu.addAction(p, lambda p=p: self.open_experiment(p))
        self.recent_menu.setEnabled(bool(items))

    # -- runs --------------------------------------------------------------------------------

    def start(self) -> bool:
        if self.session.is_active():
            return False
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

    def _can_continue(self, folder: str, exp: Experiment) -> bool:
        """A run that has trained its steps goes on only when Steps was raised: say so in words."""
        from workbench.engine.checkpoint import RunDir
        from workbench.engine.errors import WorkbenchError

        try:
            steps = RunDir.open(Path(folder)).checkpoint_steps()
        except WorkbenchError as e:
            self.training.show_message(str(e))
            return False
        start = self.training.from_step() or (steps[-1] if steps else 0)  # an earlier checkpoint, if chosen
        if steps and start >= exp.training.max_steps:
            self.training.show_message(
                f"The run in {folder} has already trained {start:,} steps. To continue it, raise Steps "
                f"above {start:,}; to train a new run with these settings, press New run.")
            return False
        return True

    def pause(self) -> None:
        self.session.pause()
        self._update_actions()

    def resume(self) -> None:
        self.session.resume()
        self._update_actions()

    def stop(self) -> None:
        self.session.stop()

    def run_demo(self) -> bool:
        """Load the bundled demo preset and start it, showing the curves."""
        if self.session.is_active() or not self._confirm_replace("loading the demo"):
            return False
        self.training.set_resume("")
        self.set_experiment(resolve_experiment(DEMO_PRESET), base_label=DEMO_PRESET)
        ok = self.start()
        if ok:
            self.show_panel("curves")
        return ok

    def request_snapshot(self) -> None:
        """Record the attention now (a paused run does it at once, a running one at its next step)."""
        if self.session.is_active():
            self._snapshot_wanted = True
            self.session.request(control_mod.SNAPSHOT_ATTENTION)
            self.statusBar().showMessage("Recording the attention…", 3000)

    def _apply_probe_text(self, text: str) -> None:
        """The probe text is part of the experiment (the next run records it). A run switches to it
        and snapshots at once when paused, at its next step when running, and keeps it in its
        run folder, so a resumed run goes on with it. It is written for the corpus in the list."""
        self._probe_corpus = tuple(self.corpus.config().paths)
        self._probe_undo = ""
        self.attention.show_probe_note(None)
        if self.session.is_active():
            self._snapshot_wanted = True
            self.session.request(control_mod.SET_PROBE_TEXT, text)
            self.attention.caption.setText("Recording this text now…" if self.session.state == "paused"
                                           else "The run records this text from its next step on.")
        else:
            self.attention.caption.setText("The next run records this text.")

    # -- events from the run -----------------------------------------------------------------

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
        self.start_action.setEnabled(not active and self.model.is_valid())
        self.start_action.setToolTip("Train with the current settings" if self.model.is_valid()
                                     else "Fix the model settings first (see the Model page)")
        self.pause_action.setEnabled(st in ("preparing", "running") and not self.session.control.paused)
        self.resume_action.setEnabled(st in ("paused", "preparing", "running") and self.session.control.paused)
        self.stop_action.setEnabled(active and st != "stopping")
        self.demo_action.setEnabled(not active)
        self.snapshot_action.setEnabled(st in ("running", "paused"))
        for a in (self.open_action, self.open_run_action):
            a.setEnabled(not active)
        self.recent_menu.setEnabled(not active and bool(self.recent_experiments()))
        self.presets_menu.setEnabled(not active)
        editable = not active
        for panel in (self.corpus, self.tokenizer, self.model, self.tasks, self.finetune, self.training):
            panel.set_editable(editable)
        self.attention.set_run_active(active)

    def _on_status(self, message: str, fraction: float) -> None:
        self.training.on_status(message, fraction)
        self.status_text.setText(message)

    def _on_started(self, e) -> None:
        self.training.on_started(e)
        self.model.set_vocab_size(e.vocab_size, True)
        self.status_progress.setRange(0, max(1, e.max_steps))
        self.status_progress.setValue(e.start_step)
        self.status_text.setText(f"{e.device} · {e.params:,} parameters")
        self.statusBar().showMessage(f"Training in {e.run_dir}", 5000)

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
        snap = self.session.take_attention()
        if snap is not None:
            wanted, self._snapshot_wanted = self._snapshot_wanted, False
            self.attention.add_snapshot(snap, show=wanted)
            if wanted:
                self.statusBar().showMessage(f"Attention recorded at step {snap.step:,}", 5000)

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

    def _redraw(self) -> None:
        live = self.session.is_active()
        if live:
            self._pace_redraw()
        elif self._pace_mark is not None:
            self._pace_mark = None
            self.plot_timer.setInterval(REDRAW_IDLE_MS)
        if self.curves.isVisible():
            if live:  # one plot per tick (see GUI_CPU_SHARE): the loss plot every other tick
                plots = list(self.curves.plots.values())
                self._redraw_tick += 1
                k = 0 if self._redraw_tick % 2 or len(plots) == 1 else 1 + (self._redraw_tick // 2) % (len(plots) - 1)
                plots[k].refresh()
            else:
                self.curves.refresh()
        for panel in (self.balance, self.finetune):
            if panel.isVisible():
                panel.refresh()

    def _pace_redraw(self) -> None:
        """Stretch or shorten the redraw interval so that the GUI thread's share of this process's
        CPU time stays near GUI_CPU_SHARE (judged over at least 0.25 s of process CPU time)."""
        cpu, gui = time.process_time(), time.thread_time()
        if self._pace_mark is None:
            self._pace_mark = (cpu, gui)
            return
        d_cpu, d_gui = cpu - self._pace_mark[0], gui - self._pace_mark[1]
        if d_cpu < 0.25:
            return
        self._pace_mark = (cpu, gui)
        factor = min(2.0, max(0.5, (d_gui / d_cpu) / GUI_CPU_SHARE))
        interval = int(min(REDRAW_MAX_MS, max(REDRAW_MIN_MS, self.plot_timer.interval() * factor)))
        self.plot_timer.setInterval(interval)

    def _set_summary(self, item: QtWidgets.QListWidgetItem, text: str) -> None:
        """A panel's one-line summary under its name in the sidebar, at once (see GUI_CPU_SHARE)."""
        item.setData(SUBTITLE_ROLE, text)

    # -- messages ------------------------------------------------------------------------------

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

    # -- navigation and view -------------------------------------------------------------------

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
        self.sidebar_delegate.scale = scale
        side_scale = 1 + (scale - 1) * 0.6  # the page needs the room more than the sidebar
        titles = max(label.sizeHint().width() for label in self._sidebar_titles)
        self.sidebar_pane.setMinimumWidth(max(int(215 * side_scale), titles))
        self.sidebar.doItemsLayout()
        self.toolbar.setIconSize(QtCore.QSize(int(18 * scale), int(18 * scale)))
        for panel in self.panels.values():
            panel.set_presentation(scale)
        if not on and was and self._normal_split is not None:
            self.splitter.restoreState(self._normal_split)
        else:
            self.splitter.setSizes([int(230 * side_scale), max(400, self.width() - int(230 * side_scale))])

    def toggle_fullscreen(self, on: bool) -> None:
        self.showFullScreen() if on else self.showNormal()

    def open_run_dialog(self) -> None:
        from workbench import paths

        start = str(paths.runs_dir()) if paths.runs_dir().exists() else ""
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Open a run folder", start)
        if folder:
            self.open_run(folder)

    def open_run(self, folder: str) -> bool:
        """Show a finished run: its settings, curves and attention snapshots."""
        try:
            exp = load_experiment(Path(folder) / "config.toml")
        except ConfigError as e:
            self.show_error("Not a run folder", str(e))
            return False
        if not self._confirm_replace(f"showing the run {Path(folder).name}"):
            return False
        self.set_experiment(exp, base_label=str(Path(folder) / "config.toml"), run=True)
        self._trained.append(exp)  # the person just opened this run: it is where they know
        self.curves.load_run(folder)
        self.attention.load_run(folder)
        self.show_panel("curves")
        self.statusBar().showMessage(f"Showing the run in {folder}", 6000)
        return True

    # -- settings and closing ------------------------------------------------------------------

    def _restore_settings(self) -> None:
        s = self.settings
        rect = s.value("window/rect")  # the normal (not maximized) geometry, clamped to the screen below
        if isinstance(rect, QtCore.QRect) and rect.isValid():
            self.setGeometry(rect)
            self._start_maximized = s.value("window/maximized") in (True, "true")
        else:
            area = self._screen_area()
            self.resize(PREFERRED_WINDOW.boundedTo(area.size() - FRAME_ALLOWANCE))
            self.move(area.center() - QtCore.QPoint(self.width() // 2, self.height() // 2 + FRAME_ALLOWANCE.height() // 2))
        self.fit_to_screen()
        state = s.value("window/state")
        if state is not None:
            self.restoreState(state)
        for key, splitter in (("window/splitter", self.splitter), ("curves/splitter", self.curves.splitter),
                              ("curves/bottom", self.curves.bottom_splitter),
                              ("attention/splitter", self.attention.splitter)):
            v = s.value(key)
            if v is not None:
                splitter.restoreState(v)
        page = s.value("window/page")
        if page is not None:
            try:
                self.show_panel(int(page))
            except (TypeError, ValueError):
                pass

    def _screen_area(self) -> QtCore.QRect:
        """The free area (without panels and docks) of the screen the window is on."""
        screen = self.screen() or QtGui.QGuiApplication.primaryScreen()
        return screen.availableGeometry() if screen is not None else QtCore.QRect(0, 0, 1440, 900)

    def fit_to_screen(self) -> None:
        """Keep the whole window, frame and status bar included, on its screen's free area: a
        saved size from a bigger monitor or the preferred size on a 1024x768 projector shrinks to
        fit, and a window left off screen comes back. Before the first show the frame is not known
        yet, so a typical title bar and border are allowed for."""
        area = self._screen_area()
        frame = self.frameGeometry()
        if self.isVisible() and frame.height() > self.height():
            extra = QtCore.QSize(frame.width() - self.width(), frame.height() - self.height())
        else:
            extra = QtCore.QSize(FRAME_ALLOWANCE.width(), FRAME_ALLOWANCE.height())
        room = QtCore.QSize(max(1, area.width() - extra.width()), max(1, area.height() - extra.height()))
        self.setMinimumSize(MIN_WINDOW.boundedTo(room))
        size = self.size().boundedTo(room)
        if size != self.size():
            self.resize(size)
        full = QtCore.QSize(size.width() + extra.width(), size.height() + extra.height())
        x = min(max(frame.x(), area.left()), area.right() + 1 - full.width())
        y = min(max(frame.y(), area.top()), area.bottom() + 1 - full.height())
        if (x, y) != (frame.x(), frame.y()):
            self.move(x, y)

    def showEvent(self, e) -> None:
        super().showEvent(e)
        if not getattr(self, "_fitted_once", False):  # the frame is known once the window is up
            self._fitted_once = True
            QtCore.QTimer.singleShot(0, self.fit_to_screen)
            if getattr(self, "_start_maximized", False):
                QtCore.QTimer.singleShot(0, self.showMaximized)

    def save_settings(self) -> None:
        s = self.settings
        s.setValue("window/rect", self.normalGeometry())
        s.setValue("window/maximized", self.isMaximized())
        s.setValue("window/state", self.saveState())
        s.setValue("window/splitter", self._normal_split if self.presentation and self._normal_split is not None
                   else self.splitter.saveState())  # the next launch opens in normal mode
        s.setValue("curves/splitter", self.curves.splitter.saveState())
        s.setValue("curves/bottom", self.curves.bottom_splitter.saveState())
        s.setValue("attention/splitter", self.attention.splitter.saveState())
        s.setValue("window/page", self.stack.currentIndex())
        s.sync()

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        if self.session.is_active():
            if self._close_after_stop:  # already stopping; wait for it
                event.ignore()
                return
            if self.confirm_close:
                answer = QtWidgets.QMessageBox.question(
                    self, "Stop training?",
                    "A training run is going on. Stop it (a checkpoint is saved first) and close?",
                    QtWidgets.QMessageBox.StandardButton.Yes | QtWidgets.QMessageBox.StandardButton.No,
                    QtWidgets.QMessageBox.StandardButton.No)
                if answer != QtWidgets.QMessageBox.StandardButton.Yes:
                    event.ignore()
                    return
            # stop, let the worker save its checkpoint while the window stays responsive, then close
            self._close_after_stop = True
            self.session.stop()
            self.statusBar().showMessage("Stopping: saving a checkpoint, then closing…")
            event.ignore()
            return
        self.save_last_experiment()
        self.save_settings()
        for panel in (self.corpus, self.tokenizer):
            panel.shutdown()
        self.plot_timer.stop()
        Job.shutdown_all(5000)
        super().closeEvent(event)

    def shutdown(self, msecs: int = 60000) -> None:
        """Stop a run and wait for its thread (for quitting without a close event)."""
        if self.session.is_active():
            self.session.stop()
            self.session.wait(msecs)
        Job.shutdown_all(15000)
