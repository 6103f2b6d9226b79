"""How the outside (GUI thread, signal handler, test) steers a run that is going on elsewhere.

The trainer polls ``RunControl`` between steps, so stop and pause take effect within one step.
Pausing blocks the training thread in ``wait_while_paused`` with model, optimizer, RNG and data
position left as they are in memory; resuming carries on from exactly there. Commands that arrive
while paused (a new probe text, a snapshot) are carried out at once, in the training thread, while
it holds ``model_lock``: whoever else uses the paused model (the GUI's generation playground)
holds the same lock, so the two never touch the model at the same time.

A run can also be steered from another process (a window following a headless run, a person on a
shared disk): ``RUN/control.json`` holds the newest request (pause, resume or stop, with an id), and
the trainer answers in ``RUN/status.json`` (its state, the step, and the id of the last request it
carried out). ``RunControl.watch_file`` makes the control poll that file between steps, at most
``FILE_POLL_INTERVAL`` apart (one ``stat`` per poll; the file is read only when it changed).
docs/RUN_FOLDERS.md describes both files.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import threading
import time
import uuid
from pathlib import Path

# Commands the trainer understands between steps.
SNAPSHOT_ATTENTION = "snapshot_attention"
SAVE_CHECKPOINT = "save_checkpoint"
SET_PROBE_TEXT = "set_probe_text"  # args: (text,) -> re-encode, crop to the context, snapshot now

# Another process steers a run through two small JSON files in its folder.
CONTROL_FILE = "control.json"   # written by whoever asks (the window): {"id", "action", "time", "by"}
STATUS_FILE = "status.json"     # written by the trainer: {"state", "step", "ack", "pid", "host", "time", ...}
ACTIONS = ("pause", "resume", "stop")
FILE_POLL_INTERVAL = 0.25       # seconds between two looks at control.json (a stat each)
# What status.json's "state" can say: a run that goes on, and how one ended (RunResult.status).
LIVE_STATES = ("running", "paused")
END_STATES = ("completed", "stopped", "early_stopped", "diverged", "failed")


def _read_json(path: Path) -> dict | None:
    """A small JSON object written atomically, or None (missing, unreadable, or not an object)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def request_action(run_dir: str | Path, action: str) -> str:
    """Ask the run training in ``run_dir`` (in any process) to pause, resume or stop: writes
    control.json atomically and returns the request's id, which status.json's "ack" names once the
    trainer has carried it out."""
    from .checkpoint import atomic_write_json  # the one atomic writer (imports numpy: not at module load)

    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    rid = uuid.uuid4().hex[:12]
    atomic_write_json(Path(run_dir) / CONTROL_FILE, {"id": rid, "action": action, "time": time.time(),
                                                     "by": f"process {os.getpid()} on {socket.gethostname()}"})
    return rid


def read_status(run_dir: str | Path) -> dict | None:
    """status.json of a run folder (None when the run has written none: not started yet, or older)."""
    status = _read_json(Path(run_dir) / STATUS_FILE)
    return status if status is not None and isinstance(status.get("state"), str) else None


def write_status(run_dir: str | Path, state: str, step: int, ack: str | None, **extra) -> None:
    """The trainer's answer: its state now, the step, the last control request it carried out."""
    from .checkpoint import atomic_write_json

    atomic_write_json(Path(run_dir) / STATUS_FILE, {
        "state": state, "step": int(step), "ack": ack, "pid": os.getpid(), "host": socket.gethostname(),
        "time": time.time(), **extra})


class ControlFile:
    """The trainer's side of control.json: ``poll()`` returns a request not seen before, looking at
    the file at most every ``interval`` seconds. A request already in the file when the run starts
    was meant for an earlier run of the folder and is ignored."""

    def __init__(self, path: str | Path, interval: float = FILE_POLL_INTERVAL, clock=time.monotonic):
        self.path, self.interval, self.clock = Path(path), interval, clock
        self._next = 0.0
        self._stamp = self._stat()
        old = _read_json(self.path) if self._stamp else None
        self._seen = old.get("id") if old else None

    def _stat(self):
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def poll(self) -> tuple[str, str] | None:
        """(id, action) of a new request, or None."""
        now = self.clock()
        if now < self._next:
            return None
        self._next = now + self.interval
        stamp = self._stat()
        if stamp is None or stamp == self._stamp:
            return None
        self._stamp = stamp
        req = _read_json(self.path)
        if not req or req.get("id") == self._seen or req.get("action") not in ACTIONS:
            return None
        self._seen = str(req.get("id"))
        return self._seen, req["action"]


class RunControl:
    def __init__(self):
        self._stop = threading.Event()
        self._running = threading.Event()  # set = not paused
        self._running.set()
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._wake = threading.Event()  # set by a command, resume or stop: a paused run looks up
        # Held by the trainer while it works during a pause, and by anyone borrowing the paused
        # model from another thread. Reentrant: the trainer reports events while holding it.
        self.model_lock = threading.RLock()
        self._file: ControlFile | None = None  # control.json of the run folder, once watched
        self._file_lock = threading.Lock()
        self.acknowledged: str | None = None   # id of the last control.json request carried out

    def watch_file(self, path: str | Path, interval: float = FILE_POLL_INTERVAL) -> None:
        """Also take pause / resume / stop from ``path`` (a run folder's control.json)."""
        with self._file_lock:
            self._file = ControlFile(path, interval)

    def _poll_file(self) -> None:
        if self._file is None:
            return
        with self._file_lock:  # the GUI thread may ask ``paused`` while the trainer does
            req = self._file.poll() if self._file is not None else None
        if req is None:
            return
        rid, action = req
        {"pause": self.pause, "resume": self.resume, "stop": self.stop}[action]()
        self.acknowledged = rid

    # -- called from outside ----------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # a paused run must wake up to see the stop
        self._wake.set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()
        self._wake.set()

    def request(self, command: str, *args) -> None:
        """Queue a command (SNAPSHOT_ATTENTION, SAVE_CHECKPOINT, ...) for the next step boundary,
        or, while paused, for at once."""
        self._commands.put((command, args))
        self._wake.set()

    # -- called by the trainer --------------------------------------------------------------

    @property
    def stop_requested(self) -> bool:
        self._poll_file()
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        self._poll_file()
        return not self._running.is_set()

    def wait_while_paused(self, handle=None, poll: float = 0.5) -> None:
        """Block while paused. ``handle(commands)`` carries out the commands that arrive meanwhile,
        as they arrive, holding ``model_lock``."""
        if self._file is not None:
            poll = min(poll, self._file.interval)
        while not self._running.is_set():
            self._wake.wait(poll)
            self._wake.clear()
            self._poll_file()
            if handle is not None and not self._running.is_set():
                commands = self.pending_commands()
                if commands:
                    with self.model_lock:
                        handle(commands)

    def pending_commands(self) -> list[tuple[str, tuple]]:
        out = []
        while True:
            try:
                out.append(self._commands.get_nowait())
            except queue.Empty:
                return out
