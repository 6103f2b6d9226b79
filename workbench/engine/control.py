"""How the outside (GUI thread, signal handler, test) steers a run that is going on elsewhere.

The trainer polls ``RunControl`` between steps, so stop and pause take effect within one step.
Pausing blocks the training thread in ``wait_while_paused`` with model, optimizer, RNG and data
position left as they are in memory; resuming carries on from exactly there.
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

    # -- called from outside ----------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # a paused run must wake up to see the stop

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def request(self, command: str, *args) -> None:
        """Queue a command (SNAPSHOT_ATTENTION, SAVE_CHECKPOINT, ...) for the next step boundary."""
        self._commands.put((command, args))

    # -- called by the trainer --------------------------------------------------------------

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_while_paused(self, poll: float = 0.1) -> None:
        while not self._running.wait(poll):
            pass

    def pending_commands(self) -> list[tuple[str, tuple]]:
        out = []
        while True:
            try:
                out.append(self._commands.get_nowait())
            except queue.Empty:
                return out
