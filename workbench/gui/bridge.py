"""The only place where the engine meets Qt threads.

Two kinds of background work run here, and nowhere else:

- ``TrainingSession``: one training run. The GUI hands it a frozen ``Experiment``; it starts ONE
  ``QThread`` whose ``run()`` calls ``Trainer(...).run(control, reporter)``. The reporter lives in
  that worker thread and turns engine events into Qt signals that carry plain Python numbers and
  numpy arrays (never torch tensors, never widgets):

  * ``StepMetrics`` are accumulated and sent as one ``MetricsBatch`` at most 4 times a second
    (``METRICS_INTERVAL``);
  * attention snapshots go through a one-slot ``Mailbox`` (the newest wins) and a payload-free
    ``attentionReady`` signal; the GUI pulls the snapshot when it gets round to it;
  * everything else (status, eval, checkpoint, paused, resumed, finished, failed, task balance,
    freezing changes) is forwarded as
    it comes, after any pending metrics, so the GUI sees events in the order they happened.

  The GUI steers the worker only through the engine's ``RunControl`` (stop, pause, resume,
  request).

- ``Job``: a short piece of engine work (corpus statistics, tokenizer training, importing torch)
  run in its own ``QThread``. The function receives a ``JobState`` (``should_stop()``,
  ``progress(value)``) and knows nothing of Qt, as in Orange3's ``concurrent`` helpers; its result
  or error comes back as a signal. A page runs its jobs through a ``JobSlot`` per kind of job:
  starting one cancels the one before, and only the latest job's signals reach the page.

Signals emitted from a worker thread reach slots of GUI objects as queued calls: no widget is
ever touched from a worker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from PySide6 import QtCore

from workbench.curves import MetricsBatch
from workbench.engine import events as ev
from workbench.engine.control import RunControl
from workbench.engine.errors import Cancelled, WorkbenchError

log = logging.getLogger("workbench.gui")

# -- what crosses the thread boundary (and ``curves.MetricsBatch``, the training steps) ----------


class Mailbox:
    """One slot shared by two threads: ``put`` replaces what is there, ``take`` empties it."""

    def __init__(self):
        self._lock = threading.Lock()
        self._item = None

    def put(self, item) -> None:
        with self._lock:
            self._item = item

    def take(self):
        with self._lock:
            item, self._item = self._item, None
            return item


# Seconds between two metrics batches. Each batch costs the GUI thread a few ms (labels, progress,
# headline), and on a 2-core machine every GUI-thread millisecond is taken from the worker (they
# share the process's CPU time and the GIL; `workbench bench gui`): 4 a second still looks live.
METRICS_INTERVAL = 0.25


class SignalReporter:
    """The engine's reporter inside the worker thread: engine events in, Qt signals out.

    ``session`` is the GUI-side ``TrainingSession`` whose signals are emitted (queued to the GUI
    thread by Qt). ``clock`` and ``interval`` are there for tests.
    """

    def __init__(self, session: "TrainingSession", mailbox: Mailbox, *, interval: float = METRICS_INTERVAL,
                 clock: Callable[[], float] = time.monotonic):
        self.session = session
        self.mailbox = mailbox
        self.interval = interval
        self.clock = clock
        self._pending: list[ev.StepMetrics] = []
        self._last_flush = -1e9

    def report(self, event) -> None:
        s = self.session
        if isinstance(event, ev.StepMetrics):
            self._pending.append(event)
            if self.clock() - self._last_flush >= self.interval or event.step >= event.max_steps:
                self.flush()
            return
        self.flush()  # keep the order: metrics of earlier steps before what follows them
        if isinstance(event, ev.AttentionSnapshot):
            self.mailbox.put(event)
            s.attentionReady.emit()
        elif isinstance(event, ev.Status):
            s.status.emit(event.message, -1.0 if event.fraction is None else float(event.fraction))
        elif isinstance(event, ev.RunStarted):
            s.started.emit(event)
        elif isinstance(event, ev.EvalResult):
            s.evaluated.emit(event)
        elif isinstance(event, ev.CheckpointSaved):
            s.checkpointSaved.emit(int(event.step), str(event.path))
        elif isinstance(event, ev.Paused):
            s.paused.emit(int(event.step))
        elif isinstance(event, ev.Resumed):
            s.resumed.emit(int(event.step))
        elif isinstance(event, ev.Finished):
            s.finished.emit(event)
        elif isinstance(event, ev.Failed):
            s.failed.emit(event)
        elif isinstance(event, ev.TaskBalance):
            s.taskBalance.emit(event)
        elif isinstance(event, ev.FreezeChanged):
            s.freezeChanged.emit(event)

    def flush(self) -> None:
        self._last_flush = self.clock()
        if self._pending:
            batch = MetricsBatch.from_events(self._pending)
            self._pending = []
            self.session.metrics.emit(batch)


# -- borrowing the model of a paused run -----------------------------------------------------------


class _LiveGate:
    """Lets the GUI use the model of a paused run (the generation playground) without racing the
    trainer. It sits between the trainer and the ``SignalReporter`` in the worker thread:

    * on ``Paused`` it marks the worker as blocked (the trainer reports Paused and then waits in
      ``RunControl.wait_while_paused`` with nothing in between), *before* the GUI hears of it;
    * on the first event after a resume or stop (``Resumed`` first of all, reported before the next
      step) it unmarks it and takes ``lock`` once, so a borrower that holds the lock (one generated
      token at a time) finishes its forward pass before the worker trains again.

    ``lock`` is the RunControl's ``model_lock``: commands carried out during the pause (a new probe
    text, a snapshot) run under it too, so they never race a borrower, and the events they report
    (snapshots, checkpoints) leave the worker marked as blocked.
    """

    def __init__(self, control: RunControl):
        self.control = control
        self.lock = control.model_lock
        self.blocked = threading.Event()
        self.trainer = None  # set by the worker thread once the Trainer exists

    def wrap(self, reporter):
        gate = self

        class _Reporter:
            def report(self, event) -> None:
                if isinstance(event, ev.Paused):
                    gate.blocked.set()
                elif gate.blocked.is_set() and (isinstance(event, ev.Resumed) or not gate.control.paused
                                                or gate.control.stop_requested):
                    gate.blocked.clear()
                    with gate.lock:  # wait for a borrower's current token
                        pass
                reporter.report(event)

        return _Reporter()


# -- a training run ------------------------------------------------------------------------------


class _TrainingThread(QtCore.QThread):
    def __init__(self, session: "TrainingSession", experiment, run_dir, resume, default_threads: int,
                 from_step: int | None = None):
        super().__init__()
        self.session = session
        self.experiment = experiment
        self.run_dir = run_dir
        self.resume = resume
        self.from_step = from_step
        self.default_threads = default_threads
        self.result = None
        self.live = _LiveGate(session.control)

    def run(self) -> None:  # the worker thread
        reporter = SignalReporter(self.session, self.session.mailbox)
        try:
            from workbench.engine.trainer import Trainer  # torch loads here, not on the GUI thread

            trainer = Trainer(self.experiment, run_dir=self.run_dir, resume=self.resume,
                              from_step=self.from_step, default_threads=self.default_threads)
            self.live.trainer = trainer
            self.result = trainer.run(self.session.control, self.live.wrap(reporter))
        except BaseException as e:  # the trainer catches its own; this is for imports and set-up
            reporter.flush()
            message = str(e) if isinstance(e, WorkbenchError) else f"Training could not start: {type(e).__name__}: {e}"
            self.session.failed.emit(ev.Failed(0, message, traceback.format_exc()))
        finally:
            reporter.flush()


class TrainingSession(QtCore.QObject):
    """The GUI's handle on one training run at a time (reusable for the next run).

    States: ``idle`` -> ``preparing`` (corpus, tokenizer, encoding) -> ``running`` <-> ``paused``;
    ``stopping`` after stop(); back to ``idle`` when the worker thread has ended (``threadDone``).
    """

    status = QtCore.Signal(str, float)          # message, fraction 0..1 (-1: unknown)
    started = QtCore.Signal(object)             # events.RunStarted
    metrics = QtCore.Signal(object)             # MetricsBatch
    evaluated = QtCore.Signal(object)           # events.EvalResult
    attentionReady = QtCore.Signal()            # pull with take_attention()
    checkpointSaved = QtCore.Signal(int, str)   # step, path
    paused = QtCore.Signal(int)
    resumed = QtCore.Signal(int)
    finished = QtCore.Signal(object)            # events.Finished
    failed = QtCore.Signal(object)              # events.Failed
    taskBalance = QtCore.Signal(object)         # events.TaskBalance (multi-task runs)
    freezeChanged = QtCore.Signal(object)       # events.FreezeChanged (fine-tuning plans)
    stateChanged = QtCore.Signal(str)
    threadDone = QtCore.Signal()

    def __init__(self, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self.control = RunControl()
        self.mailbox = Mailbox()
        self._thread: _TrainingThread | None = None
        self._state = "idle"
        self.run_dir: str | None = None
        self.last_result = None
        # bound methods of this QObject: Qt queues these calls to the GUI thread
        self.started.connect(self._on_started)
        self.paused.connect(self._on_paused)
        self.resumed.connect(self._on_resumed)

    # -- state -------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        return self._state

    def is_active(self) -> bool:
        """A worker thread exists and has not ended."""
        return self._thread is not None

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self.stateChanged.emit(state)

    def _on_paused(self, _step: int) -> None:
        if self._state != "stopping":
            self._set_state("paused")

    def _on_resumed(self, _step: int) -> None:
        self._set_state("stopping" if self.control.stop_requested else "running")

    def _on_started(self, e: ev.RunStarted) -> None:
        self.run_dir = e.run_dir
        if self._state == "preparing":
            self._set_state("paused" if self.control.paused else "running")

    # -- commands from the GUI -----------------------------------------------------------------

    def start(self, experiment, *, run_dir: str | Path | None = None, resume: str | Path | None = None,
              from_step: int | None = None, default_threads: int | None = None) -> None:
        if self._thread is not None:
            raise RuntimeError("a run is already going; stop it first")
        self.control = RunControl()
        self.mailbox.take()
        self.run_dir = str(resume) if resume else None
        self.last_result = None
        threads = default_threads or max(1, (os.cpu_count() or 2) - 1)
        thread = _TrainingThread(self, experiment, run_dir, resume, threads, from_step)
        thread.finished.connect(self._on_thread_finished)
        self._thread = thread
        self._set_state("preparing")
        thread.start()

    def pause(self) -> None:
        if self._thread is not None and not self.control.stop_requested:
            self.control.pause()

    def resume(self) -> None:
        if self._thread is not None:
            self.control.resume()

    def stop(self) -> None:
        """Ask the run to stop after the current step; it saves a checkpoint first."""
        if self._thread is not None:
            self.control.stop()
            self._set_state("stopping")

    def request(self, command: str, *args) -> None:
        if self._thread is not None:
            self.control.request(command, *args)

    def take_attention(self) -> ev.AttentionSnapshot | None:
        return self.mailbox.take()

    # -- the live model of a paused run (generation playground) --------------------------------

    def live_model(self):
        """``(model, tokenizer, step)`` of the run while it is paused (the worker blocked between two
        steps), else None. Safe to call from any thread. To *use* the model, do it inside
        ``hold_live_model()``: a resume then waits until the borrower lets go."""
        thread = self._thread
        gate = getattr(thread, "live", None)
        trainer = getattr(gate, "trainer", None)
        if (gate is None or trainer is None or self._state != "paused" or not gate.blocked.is_set()
                or not self.control.paused or self.control.stop_requested or trainer.state is None):
            return None
        return trainer.state.model, trainer.state.tokenizer, int(trainer.state.step)

    @contextlib.contextmanager
    def hold_live_model(self):
        """Borrow the paused run's model for a short while (one generated token, say): yields
        ``live_model()`` (None when the run is not paused any more). While held, a resume is
        answered at once on the GUI side but the worker waits before its next step."""
        gate = getattr(self._thread, "live", None)
        if gate is None:
            yield None
            return
        with gate.lock:
            yield self.live_model()

    def wait(self, msecs: int | None = None) -> bool:
        """Block until the worker thread has ended (True) or msecs passed (False)."""
        thread = self._thread
        if thread is None:
            return True
        done = thread.wait() if msecs is None else thread.wait(QtCore.QDeadlineTimer(msecs))
        if done:
            self._on_thread_finished()
        return done

    def _on_thread_finished(self) -> None:
        thread = self._thread
        if thread is None or not thread.isFinished():  # a late signal from an earlier run's thread
            return
        self.last_result = thread.result
        self._thread = None
        thread.deleteLater()
        self._set_state("idle")
        self.threadDone.emit()


# -- short background jobs -----------------------------------------------------------------------


LIVE_MODEL_NOT_PAUSED = "The live model can be used only while a training run is paused: pause it first."


def model_to_use(session: "TrainingSession | None", trained, *, live: bool, loading: bool, none_message: str):
    """``(hold, (model, tokenizer, step))`` for the model a page works on, or the message why there is none.

    ``live``: the paused run's model, used inside ``hold()`` (``session.hold_live_model``) so a resume
    waits for the borrower; otherwise ``trained``, a loaded checkpoint (``engine.loading.TrainedModel``),
    whose ``hold()`` holds nothing. ``loading`` says a checkpoint is on its way.
    """
    if live:
        lent = session.live_model() if session is not None else None
        if lent is None:
            return LIVE_MODEL_NOT_PAUSED
        return session.hold_live_model, lent
    if trained is None:
        return "The checkpoint is still loading." if loading else none_message
    lent = (trained.model, trained.tokenizer, trained.step)
    return (lambda: contextlib.nullcontext(lent)), lent


class JobState:
    """What a job's function sees: a stop flag to poll and a way to report progress."""

    def __init__(self, job: "Job"):
        self._job = job
        self._stop = threading.Event()

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def progress(self, value: Any) -> None:
        self._job.progress.emit(value)

    def check(self) -> None:
        """Raise Cancelled if a stop was asked for."""
        if self._stop.is_set():
            raise Cancelled("cancelled")


class _JobThread(QtCore.QThread):
    def __init__(self, job: "Job"):
        super().__init__()
        self.job = job

    def run(self) -> None:
        job = self.job
        try:
            result = job.fn(job.state, *job.args)
        except Cancelled:
            job._outcome = ("cancelled", None)
        except WorkbenchError as e:
            job._outcome = ("failed", (str(e), ""))
        except BaseException as e:
            job._outcome = ("failed", (f"{type(e).__name__}: {e}", traceback.format_exc()))
        else:
            job._outcome = ("cancelled", None) if job.state.should_stop() else ("done", result)


class Job(QtCore.QObject):
    """``fn(state, *args)`` in a QThread. Signals arrive on the GUI thread; exactly one of
    ``done``/``failed``/``cancelled`` comes, then ``ended``.

    Whoever starts a job shows its ``failed`` message on the page that asked for it (a test checks
    that every job in gui/ has a failure handler); the traceback also goes to the log."""

    progress = QtCore.Signal(object)
    done = QtCore.Signal(object)
    failed = QtCore.Signal(str, str)   # message for a person, details (traceback) for a developer
    cancelled = QtCore.Signal()
    ended = QtCore.Signal()

    _alive: set["Job"] = set()  # keeps running jobs (and their threads) from being collected

    def __init__(self, fn: Callable[..., Any], *args, name: str = "", parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self.fn, self.args, self.name = fn, args, name or getattr(fn, "__name__", "job")
        self.state = JobState(self)
        self._thread: _JobThread | None = None
        self._outcome: tuple[str, Any] | None = None

    def start(self) -> "Job":
        self._thread = _JobThread(self)
        self._thread.finished.connect(self._on_finished)
        Job._alive.add(self)
        self._thread.start()
        return self

    def cancel(self) -> None:
        self.state._stop.set()

    def is_running(self) -> bool:
        return self._thread is not None and self._thread.isRunning()

    def wait(self, msecs: int = 30000) -> bool:
        if self._thread is None:
            return True
        ok = self._thread.wait(QtCore.QDeadlineTimer(msecs))
        if ok:
            self._on_finished()
        return ok

    def _on_finished(self) -> None:
        thread = self._thread
        if thread is None or self not in Job._alive:
            return
        Job._alive.discard(self)
        kind, value = self._outcome or ("cancelled", None)
        if kind == "done":
            self.done.emit(value)
        elif kind == "failed":
            # Every failure leaves a trace for a developer (the page shows the message to the person).
            message, details = value
            if details:
                log.error("background job %r failed: %s\n%s", self.name, message, details)
            else:
                log.warning("background job %r failed: %s", self.name, message)
            self.failed.emit(*value)
        else:
            self.cancelled.emit()
        self.ended.emit()

    @classmethod
    def running(cls) -> bool:
        return any(job.is_running() for job in cls._alive)

    @classmethod
    def shutdown_all(cls, msecs: int = 10000) -> None:
        """Cancel every running job and wait for it (on quit)."""
        for job in list(cls._alive):
            job.cancel()
        deadline = time.monotonic() + msecs / 1000
        for job in list(cls._alive):
            job.wait(max(0, int((deadline - time.monotonic()) * 1000)))


class JobSlot(QtCore.QObject):
    """One kind of background job on one page ("load the model", "check the task"): at most one runs.

    Starting a job cancels the one before and disconnects it, so only the latest job's progress,
    result or failure reach the page: a stale result (the user changed the file while it was read)
    is dropped here, in one place, instead of with a counter in every page. Progress is throttled:
    with ``progress_ms`` > 0 the page gets at most one call per interval, carrying the newest value
    (the values in between are dropped, so use it for "how far", not for a stream of items).

    The page gives its handlers once; ``start`` may override them for one job. ``on_failed`` is
    required: a job that fails says so on the page that asked for it.
    """

    def __init__(self, parent: QtCore.QObject | None, name: str, *, on_failed: Callable[[str, str], Any],
                 on_done: Callable[[Any], Any] | None = None, on_progress: Callable[[Any], Any] | None = None,
                 on_cancelled: Callable[[], Any] | None = None, on_ended: Callable[[], Any] | None = None,
                 progress_ms: int = 0):
        super().__init__(parent)
        self.name = name
        self._handlers = {"done": on_done, "failed": on_failed, "progress": on_progress,
                          "cancelled": on_cancelled, "ended": on_ended}
        self._job: Job | None = None
        self._connections: list[QtCore.QMetaObject.Connection] = []
        self._progress_ms = progress_ms
        self._pending: tuple[Job, Any] | None = None   # newest progress value not yet delivered
        self._on_progress: Callable[[Any], Any] = lambda _value: None
        self._timer = QtCore.QTimer(self, singleShot=True, interval=max(progress_ms, 0))
        self._timer.timeout.connect(self._deliver_progress)

    @property
    def job(self) -> "Job | None":
        """The latest job started, running or not."""
        return self._job

    def is_running(self) -> bool:
        return self._job is not None and self._job.is_running()

    def start(self, fn: Callable[..., Any], *args, name: str = "", **handlers) -> "Job":
        """Cancel the job before (its signals no longer reach the page) and start ``fn(state, *args)``."""
        unknown = set(handlers) - {f"on_{k}" for k in self._handlers}
        if unknown:
            raise TypeError(f"JobSlot.start: unknown handlers {sorted(unknown)}")
        self.cancel()
        job = Job(fn, *args, parent=self, name=name or self.name)
        chosen = {k: handlers.get(f"on_{k}", h) for k, h in self._handlers.items()}
        self._job = job
        # Each connection checks that the job is still the latest: a queued signal that was already
        # on its way when the next job started is dropped too.
        self._connections = [
            job.done.connect(lambda value, j=job: self._if_latest(j, chosen["done"], value)),
            job.failed.connect(lambda msg, details, j=job: self._if_latest(j, chosen["failed"], msg, details)),
            job.cancelled.connect(lambda j=job: self._if_latest(j, chosen["cancelled"])),
            job.ended.connect(lambda j=job: self._if_latest(j, chosen["ended"]))]
        if chosen["progress"] is not None:
            self._on_progress = chosen["progress"]
            self._connections.append(job.progress.connect(lambda value, j=job: self._progress(j, value)))
        return job.start()

    def cancel(self) -> None:
        """Ask the running job to stop and forget it: nothing more from it reaches the page."""
        job, self._job = self._job, None
        self._pending = None
        self._timer.stop()
        if job is None:
            return
        job.cancel()
        for connection in self._connections:
            QtCore.QObject.disconnect(connection)
        self._connections = []

    def wait(self, msecs: int = 30000) -> bool:
        """Block until the latest job ends (tests, quitting); True if it did."""
        return self._job is None or self._job.wait(msecs)

    def _if_latest(self, job: "Job", handler, *args) -> None:
        if job is not self._job:
            return
        if self._pending is not None:     # the last progress value comes before the result
            self._timer.stop()
            self._deliver_progress()
        if handler is not None:
            handler(*args)

    def _progress(self, job: "Job", value: Any) -> None:
        if job is not self._job:
            return
        if self._progress_ms > 0 and self._timer.isActive():
            self._pending = (job, value)     # too soon after the last call: keep only the newest
            return
        self._on_progress(value)
        if self._progress_ms > 0:
            self._timer.start()

    def _deliver_progress(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None and pending[0] is self._job:
            self._on_progress(pending[1])
            if self._progress_ms > 0 and self._job is not None and self._job.is_running():
                self._timer.start()
