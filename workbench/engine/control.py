"""How the outside (GUI thread, signal handler, test) steers a run that is going on elsewhere.

The trainer polls ``RunControl`` between steps, so stop and pause take effect within one step.
Pausing blocks the training thread in ``wait_while_paused`` with model, optimizer, RNG and data
position left as they are in memory; resuming carries on from exactly there. Commands that arrive
while paused (a new probe text, a snapshot) are carried out at once, in the training thread, while
it holds ``model_lock``: whoever else uses the paused model (the GUI's generation playground)
holds the same lock, so the two never touch the model at the same time.
"""

from __future__ import annotations

import queue
import threading

# Commands the trainer understands between steps.
SNAPSHOT_ATTENTION = "snapshot_attention"
SAVE_CHECKPOINT = "save_checkpoint"
SET_PROBE_TEXT = "set_probe_text"  # args: (text,) -> re-encode, crop to the context, snapshot now


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
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_while_paused(self, handle=None, poll: float = 0.5) -> None:
        """Block while paused. ``handle(commands)`` carries out the commands that arrive meanwhile,
        as they arrive, holding ``model_lock``."""
        while not self._running.is_set():
            self._wake.wait(poll)
            self._wake.clear()
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
