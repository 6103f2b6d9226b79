"""The Lessons page: pick a lesson, read its claim, run the experiment that shows it, watch every
run's curve, and read the effect and the verdict when the runs have finished.

The lesson runs in a background job (``jobs.lessons.run``), which sends the runner's events in
batches; the page hands them to its views (``live.LiveCurves``, ``results.ResultsView``,
``results.Verdict``). Stop asks the runner to stop at the next point of a curve: what finished stays.
While a training run of this window is going, Run waits (both would share the same cores and the
lesson's times would not be its own); while a lesson runs, the window's Start waits likewise.
"""

from __future__ import annotations

import time

from PySide6 import QtCore, QtWidgets

from workbench.fmt import fmt_about, fmt_duration
from workbench.lessons import Finished, Planned, RunDone, Started

from ...bridge import JobSlot
from ...jobs import lessons as jobs
from ...widgets.flow import Columns, FlowRow, WrapLabel
from .. import Panel, card, error_label, muted_label, show_error
from .live import LiveCurves
from .results import ResultsView, Verdict

SIZES = (("full", "Full size"), ("small", "Quick"))
REFRESH_MS = 250   # the curves redraw at most 4 times a second while a lesson runs
TITLE_ROLE = QtCore.Qt.ItemDataRole.UserRole
LIST_WIDTH, LIST_HEIGHT = 175, 140   # the lesson list's minimum at scale 1 (presentation mode scales it)
CLAIM_WIDTH = 380   # narrower, the claim goes under the list instead of into a tall thin column


class LessonsPanel(Panel):
    title = "Lessons"
    subtitle = ("Each lesson states one idea about GPT pretraining and fine-tuning in plain words and runs "
                "the experiment that shows it, several seeds side by side, on this computer.")

    runningChanged = QtCore.Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._lessons: dict = {}
        self._history: dict[str, list] = {}   # lesson name -> its last run's events (shown again on return)
        self._running: str | None = None      # the lesson being run
        self._where = ""                      # "condition, seed N" of the run going on
        self._done = 0
        self._total = 0
        self._started_at = 0.0
        self._training = False
        self._following = False
        self._listed = False
        self._list_job = JobSlot(self, "list lessons", on_done=self._listed_lessons, on_failed=self._list_failed)
        self._run_job = JobSlot(self, "run a lesson", on_progress=self._on_events, on_failed=self._run_failed,
                                on_ended=self._run_ended)

        top = Columns(spacing=12)
        box, bl = card("Lessons")
        self.list = QtWidgets.QListWidget()
        self.list.setObjectName("lessonList")
        self.list.setWordWrap(True)
        self.list.setResizeMode(QtWidgets.QListView.ResizeMode.Adjust)   # wrapped titles re-wrap
        self.list.setTextElideMode(QtCore.Qt.TextElideMode.ElideNone)
        self.list.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setVerticalScrollMode(QtWidgets.QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.list.currentRowChanged.connect(self._selected)
        bl.addWidget(self.list)
        top.add(box, 1)

        box, cl = card("The claim")
        self.claim = WrapLabel("Loading the lessons…")
        self.claim.setObjectName("lessonClaim")
        self.how_button = QtWidgets.QToolButton()
        self.how_button.setObjectName("howButton")
        self.how_button.setText("How the experiment works")
        self.how_button.setCheckable(True)
        self.how_button.setChecked(True)
        self.how_button.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.how_button.toggled.connect(self._show_how)
        self.how = muted_label()
        self.plan = muted_label()
        cl.addWidget(self.claim)
        cl.addWidget(self.how_button)
        cl.addWidget(self.how)
        cl.addWidget(self.plan)
        row = FlowRow()
        self.size_combo = QtWidgets.QComboBox()
        for value, text in SIZES:
            self.size_combo.addItem(text, value)
        self.size_combo.setToolTip("Full size: the lesson as designed, within its time budget on a 2-core CPU. "
                                   "Quick: fewer seeds and smaller runs, to try the page; its figures are not "
                                   "the lesson's.")
        self.run_button = QtWidgets.QPushButton("Run")
        self.run_button.setObjectName("primaryButton")
        self.run_button.clicked.connect(self.run)
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.stop_button.setToolTip("Stop at the next point of the curve; the runs that finished stay")
        self.stop_button.clicked.connect(self.stop)
        self.status = QtWidgets.QLabel()
        row.add(QtWidgets.QLabel("Size"), self.size_combo, self.run_button, self.stop_button, self.status)
        cl.addWidget(row)
        self.cpu_note = muted_label()
        self.cpu_note.setObjectName("lessonCpuNote")
        self.cpu_note.hide()
        cl.addWidget(self.cpu_note)
        self.error = error_label()
        cl.addWidget(self.error)
        top.add(box, 4)
        self.body.addWidget(top)

        # what it showed comes before the curves: one line while running, the verdict at the end
        box, vl = card("What it showed")
        self.verdict_box = box
        self.verdict = Verdict()
        vl.addWidget(self.verdict)
        self.body.addWidget(box)

        middle = Columns(spacing=12)
        box, ll = card("As it trains")
        self.live = LiveCurves()
        ll.addWidget(self.live)
        middle.add(box, 3)
        box, rl = card("Results")
        self.results = ResultsView()
        rl.addWidget(self.results)
        middle.add(box, 2)
        self.body.addWidget(middle, 1)

        self.set_presentation(1.0)
        self._timer = QtCore.QTimer(self, interval=REFRESH_MS)
        self._timer.timeout.connect(self.live.refresh)
        self._update_controls()

    # -- the list --------------------------------------------------------------------------

    def showEvent(self, e) -> None:
        super().showEvent(e)
        if not self._listed:
            self.load_lessons()

    def load_lessons(self) -> None:
        """Read the lessons in the background (their modules import torch)."""
        self._listed = True
        self._list_job.start(jobs.list_lessons)

    def _listed_lessons(self, lessons: list) -> None:
        self._lessons = {les.name: les for les in lessons}
        self.list.clear()
        for les in lessons:
            item = QtWidgets.QListWidgetItem(f"{les.title}\n{fmt_about(les.budget_s)}")
            item.setData(TITLE_ROLE, les.name)
            item.setToolTip(les.claim)
            self.list.addItem(item)
        if lessons:
            self.list.setCurrentRow(0)
        else:
            self.claim.setText("No lessons are installed.")
        self.set_summary(f"{len(lessons)} lesson{'s' if len(lessons) != 1 else ''}")
        self._update_controls()

    def _list_failed(self, message: str, _details: str) -> None:
        self.claim.setText("The lessons could not be read.")
        show_error(self.error, f"Reading the lessons failed: {message}")

    def lesson_names(self) -> list[str]:
        return list(self._lessons)

    def select(self, name: str) -> None:
        self.list.setCurrentRow(list(self._lessons).index(name))

    def selected(self):
        item = self.list.currentItem()
        return self._lessons.get(item.data(TITLE_ROLE)) if item is not None else None

    def _selected(self, _row: int) -> None:
        les = self.selected()
        if les is None:
            return
        self.claim.setText(les.claim)
        self.how.setText(les.how)
        prep = f", after {les.prepare_label} once per seed (shared by its conditions)" if les.prepare else ""
        self.plan.setText(f"Conditions: {', '.join(les.conditions)}, each run once per seed ({les.seeds} seeds at "
                          f"full size){prep}. Each run gives {les.metric}. The effect is {les.effect[0]} "
                          f"minus {les.effect[1]}. Full size takes {fmt_about(les.budget_s)} on a 2-core CPU.")
        show_error(self.error, "")
        self._show(les, self._history.get(les.name, []))

    def _show(self, les, events: list) -> None:
        """The views for ``les``, filled with the events of its last run (if any)."""
        self.live.begin(les)
        self.results.begin(les)
        self.verdict.waiting()
        self._dispatch(events)
        self.live.refresh()
        # how it works and the plan give their room to the curves once there are some (the verdict
        # card says what runs; the button brings them back)
        self.how_button.setChecked(not events and self._running != les.name)
        self._show_how(self.how_button.isChecked())

    def _show_how(self, shown: bool) -> None:
        self.how_button.setArrowType(QtCore.Qt.ArrowType.DownArrow if shown else QtCore.Qt.ArrowType.RightArrow)
        les = self.selected()
        self.how.setVisible(shown and les is not None and bool(les.how))
        self.plan.setVisible(shown)

    # -- running -----------------------------------------------------------------------------

    def size(self) -> str:
        return self.size_combo.currentData()

    def set_size(self, size: str) -> None:
        self.size_combo.setCurrentIndex(self.size_combo.findData(size))

    def progress(self) -> tuple[int, int]:
        """(runs finished, runs planned) of the lesson running or last run."""
        return self._done, self._total

    def is_running(self) -> bool:
        return self._running is not None

    def run(self) -> bool:
        les = self.selected()
        if les is None or self.is_running() or self._training:
            return False
        self._running = les.name
        self._history[les.name] = []
        self._done, self._total, self._where = 0, 0, ""
        self._started_at = time.monotonic()
        show_error(self.error, "")
        self._show(les, [])
        self.status.setText("Starting…")
        self._run_job.start(jobs.run, les, self.size())
        self._timer.start()
        self._reveal(self.verdict_box)
        self._update_controls()
        self.runningChanged.emit(True)
        return True

    def stop(self) -> None:
        job = self._run_job.job
        if self.is_running() and job is not None:
            job.cancel()   # the runner stops at the next point; Finished still comes, with what finished
            self.status.setText("Stopping at the next point…")
            self.stop_button.setEnabled(False)

    def wait(self, msecs: int = 30000) -> bool:
        return self._run_job.wait(msecs)

    def _on_events(self, events: list) -> None:
        if self._running is None:
            return
        self._history[self._running].extend(events)
        shown = self.selected()
        if shown is not None and shown.name == self._running:
            self._dispatch(events)
        for e in events:
            if isinstance(e, Planned):
                self._total = len(e.conditions) * len(e.seeds)
            elif isinstance(e, Started):
                self._where = f"{e.condition}, seed {e.seed}"
            elif isinstance(e, RunDone):
                self._done += 1
        if self._running is not None and self._total:
            les = self._lessons[self._running]
            budget = f" of {fmt_about(les.budget_s)}" if self.size() == "full" else ""
            self.status.setText(f"{self._where} · {self._done} of {self._total} runs done · "
                                f"{fmt_duration(time.monotonic() - self._started_at)}{budget}")
            self.set_summary(f"{self._running}: {self._done} of {self._total} runs")

    def _dispatch(self, events: list) -> None:
        """Events to the views (live, or replayed when a lesson is shown again)."""
        les = self._lessons.get(self._running) if self._running else self.selected()
        self.live.add(events)
        self.results.add(events)
        for e in events:
            if isinstance(e, Planned):
                self.verdict.planned(les, e)
            elif isinstance(e, Finished):
                self.verdict.finished(e)
                QtCore.QTimer.singleShot(0, lambda: self._reveal(self.verdict_box))

    def _run_failed(self, message: str, _details: str) -> None:
        where = self._where
        show_error(self.error, f"The lesson failed{' in ' + where if where else ''}: {message}")
        self.verdict.failed(message, where)

    def _run_ended(self) -> None:
        name, self._running = self._running, None
        self._timer.stop()
        self.live.refresh()
        finished = next((e for e in reversed(self._history.get(name, [])) if isinstance(e, Finished)), None)
        if finished is not None:
            r = finished.result
            self.status.setText("Stopped" if r.stopped else f"Done in {fmt_duration(r.seconds)}")
            a, b = r.lesson.effect
            if r.conditions[a].values and r.conditions[b].values:
                self.set_summary(f"effect {r.effect:+.3f}")
        else:
            self.status.setText("Failed")
        self._update_controls()
        self.runningChanged.emit(False)

    def reveal_verdict(self) -> None:
        self._reveal(self.verdict_box)

    def _reveal(self, widget: QtWidgets.QWidget) -> None:
        """Scroll the page (where it scrolls: a small screen, presentation mode) to show ``widget``."""
        area = self.parentWidget()
        while area is not None and not isinstance(area, QtWidgets.QScrollArea):
            area = area.parentWidget()
        if area is not None and self.isVisible():
            area.ensureWidgetVisible(widget, 0, 0)

    # -- the rest of the window ----------------------------------------------------------------

    def set_training_active(self, training: bool, following: bool = False) -> None:
        """The window's own training run (Run waits for it) or a followed run of another process."""
        self._training, self._following = bool(training), bool(following)
        if training:
            self.cpu_note.setText("A training run is using this computer's cores: a lesson waits until it ends "
                                  "(both would run at half speed and the lesson's times would not be its own). "
                                  "Stop it on the Training page, or let it finish.")
        elif following:
            self.cpu_note.setText("The window follows a run another process trains: if it trains on this "
                                  "computer, a lesson shares the cores with it and takes longer than its budget.")
        self.cpu_note.setVisible(training or following)
        self._update_controls()

    def _update_controls(self) -> None:
        running = self.is_running()
        self.run_button.setEnabled(not running and not self._training and self.selected() is not None)
        self.stop_button.setEnabled(running)
        self.size_combo.setEnabled(not running)
        self.list.setEnabled(not running)

    def set_presentation(self, scale: float) -> None:
        self.list.setMinimumSize(int(LIST_WIDTH * scale), int(LIST_HEIGHT * scale))
        self.claim.setMinimumWidth(int(CLAIM_WIDTH * scale))
        self.live.set_presentation(scale)
        self.results.set_presentation(scale)

