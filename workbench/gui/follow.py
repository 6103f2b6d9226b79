"""Following a run folder that another process writes (a headless `workbench train`, a run on a
shared disk): the window shows it live on the pages it uses for its own runs.

``FollowSession`` has the signals of ``bridge.TrainingSession`` that carry a run's events, so the
window connects the same handlers to both. A timer polls the engine's ``RunFollower`` (Qt-free,
engine/follow.py: file lines -> engine events) in a background job (catching up with a long run
parses its whole metrics.jsonl once), and hands each event to a ``bridge.SignalReporter``,
the same object that turns the window's own run's events into signals: a followed run reaches the
pages as ``MetricsBatch`` objects and events exactly like a run of the window.

Pause, Resume and Stop write the run folder's control.json (engine/control.py); the state shown is
the one the trainer writes back in status.json, so the window never claims a pause the run has not
made.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path

from PySide6 import QtCore

from workbench.curves import MetricsBatch
from workbench.engine import events as ev

from .bridge import JobSlot, Mailbox, SignalReporter
from .jobs.follow import poll_run

POLL_MS = 250  # as often as the window's own runs send metrics (bridge.METRICS_INTERVAL)
DRAIN_SLICE = 0.04  # seconds of handing events to the pages per pass of the event loop


class FollowSession(QtCore.QObject):
    """States: ``idle`` (not following) -> ``waiting`` (no run in the folder yet) / ``preparing`` ->
    ``running`` <-> ``paused`` -> how it ended (``completed``, ``stopped``, ``early_stopped``,
    ``diverged``, ``failed``, ``ended``: its process died). ``pausing`` / ``resuming`` / ``stopping``
    while a request written to control.json waits for the run's answer."""

    status = QtCore.Signal(str, float)
    started = QtCore.Signal(object)
    metrics = QtCore.Signal(object)
    evaluated = QtCore.Signal(object)
    attentionReady = QtCore.Signal()
    checkpointSaved = QtCore.Signal(int, str)
    paused = QtCore.Signal(int)
    resumed = QtCore.Signal(int)
    finished = QtCore.Signal(object)
    failed = QtCore.Signal(object)
    taskBalance = QtCore.Signal(object)
    freezeChanged = QtCore.Signal(object)
    restarted = QtCore.Signal()        # the run's metrics were rewritten (a resume): clear the pages
    stateChanged = QtCore.Signal(str)

    def __init__(self, parent: QtCore.QObject | None = None, poll_ms: int = POLL_MS):
        super().__init__(parent)
        self.mailbox = Mailbox()
        self.follower = None
        self.run_dir: str | None = None
        self._state = "idle"
        self._request: tuple[str, str] | None = None  # (id, action) written, not acknowledged yet
        self._reporter = SignalReporter(self, self.mailbox)  # the other events, as the bridge sends them
        self._queue: deque = deque()  # events read, not yet sent to the pages
        self._poller = JobSlot(self, "follow a run", on_done=self._polled, on_failed=self._poll_failed)
        self.timer = QtCore.QTimer(self, interval=poll_ms)
        self.timer.timeout.connect(self.poll)

    # -- state -------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        return self._state

    def is_following(self) -> bool:
        return self.follower is not None

    def is_live(self) -> bool:
        """The followed run trains (or prepares, or is asked something): the pages redraw as for a run."""
        return self.follower is not None and self._state in ("preparing", "running", "pausing", "resuming",
                                                              "stopping")

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self.stateChanged.emit(state)

    # -- following ---------------------------------------------------------------------------

    def start(self, run_dir: str | Path) -> None:
        from workbench.engine.follow import RunFollower

        self.stop_following()
        self.run_dir = str(run_dir)
        self.follower = RunFollower(run_dir)
        self._request = None
        self.mailbox.take()
        self._set_state("waiting")
        self.poll()
        self.timer.start()

    def stop_following(self) -> None:
        """Leave the run alone (it goes on training) and return the window to its own runs."""
        self.timer.stop()
        self._poller.cancel()  # a poll under way is dropped
        self._queue.clear()
        self.follower = None
        self.run_dir = None
        self._request = None
        self._set_state("idle")

    def poll(self) -> None:
        """Read what the run wrote since the last poll (in a job; a tick while one runs, or while the
        pages still take the last poll's events, is skipped)."""
        if self.follower is not None and not self._poller.is_running() and not self._queue:
            self._poller.start(poll_run, self.follower)

    def wait_for_poll(self, msecs: int = 30000) -> bool:
        """Tests: wait until the poll under way has been handled."""
        return self._poller.wait(msecs)

    def _poll_failed(self, message: str, _details: str) -> None:
        self.status.emit(f"Could not read the followed run: {message}", -1.0)

    def _polled(self, events: list) -> None:
        self._queue.extend(events)
        self._drain()

    def _drain(self) -> None:
        """Send the events on as the window's own runs do, for at most DRAIN_SLICE seconds per pass of
        the event loop: catching up with a long run (1,000 evaluations: as many curve updates and
        log lines) leaves the window responsive."""
        f = self.follower
        if f is None:
            self._queue.clear()
            return
        from workbench.engine.follow import Restarted

        deadline = time.monotonic() + DRAIN_SLICE
        steps: list[ev.StepMetrics] = []
        while self._queue or steps:
            event = self._queue.popleft() if self._queue else None
            if isinstance(event, ev.StepMetrics):
                steps.append(event)  # consecutive steps go out as one MetricsBatch, as the bridge sends them
                continue
            if steps:
                self.metrics.emit(MetricsBatch.from_events(steps))
                steps = []
            if isinstance(event, Restarted):
                self.restarted.emit()
            elif event is not None:
                self._reporter.report(event)
            if self.follower is not f:  # a handler stopped following
                return
            if self._queue and time.monotonic() > deadline:
                QtCore.QTimer.singleShot(0, self._drain)  # the rest after the window has drawn
                return
        if self._request is not None and f.ack == self._request[0]:
            self._request = None
        if self._request is None or f.ended:
            self._request = None
            self._set_state(f.state)

    def is_caught_up(self) -> bool:
        """Every event read so far has reached the pages (tests)."""
        return not self._queue and not self._poller.is_running()

    def take_attention(self) -> ev.AttentionSnapshot | None:
        return self.mailbox.take()

    # -- steering the run (control.json) -----------------------------------------------------

    def _ask(self, action: str, state: str) -> None:
        from workbench.engine.control import request_action

        if self.follower is None or self.follower.ended:
            return
        try:
            rid = request_action(self.run_dir, action)
        except Exception as e:  # a read-only shared disk: say so where the run's messages go
            self.status.emit(f"Could not ask the run to {action}: {e}", -1.0)
            return
        self._request = (rid, action)
        self._set_state(state)

    def pause(self) -> None:
        self._ask("pause", "pausing")

    def resume(self) -> None:
        self._ask("resume", "resuming")

    def stop(self) -> None:
        self._ask("stop", "stopping")
