"""The redraw budget: how often the window redraws its plots, and how much of the CPU the GUI
thread may take while a run trains.

Live redraw while a run trains (measured with `workbench bench gui`): redrawing the four curves
costs ~30 ms of GUI-thread CPU, and every GUI-thread millisecond is taken from the training
worker (on 2 cores they share the CPU time the process gets, and always the GIL). So during a
run the curves are redrawn one plot per tick (the loss plot every other tick), which keeps each
frame short, and the tick interval adapts so that the GUI thread uses at most GUI_CPU_SHARE of
the CPU time of the whole process. Sidebar summaries ("loss 2.345") change when their page's
header does, in the same event-loop pass (one repaint of the sidebar per metrics batch, at most
1000 / bridge.METRICS_INTERVAL a second): a summary that lags its page reads as a different number.
"""

from __future__ import annotations

import os
import time
from typing import Callable

from PySide6 import QtCore

# Qt's raster engine hands any fill of 96 spans or more (a long grid line, a tall bar) to a thread
# pool and waits for it: on 2 cores those helper threads take the CPU from the training worker
# while the GUI thread waits on them (measured with the curves redrawing 10 times a second: -14%
# process CPU, p99 event-loop lateness 45 -> 27 ms). Qt reads this at its first such fill, so it
# is set here, before the window paints anything.
os.environ.setdefault("QT_NO_GUI_THREADPOOL", "1")

REDRAW_IDLE_MS = 100
REDRAW_MIN_MS = 25
REDRAW_MAX_MS = 1000
GUI_CPU_SHARE = 0.05


class RedrawPacer(QtCore.QObject):
    """The redraw timer (``timer``): ``redraw(live)`` is called on every tick, ~10 times a second
    when no run is going; during a run (``is_live()``) the interval stretches or shortens so that
    the GUI thread's share of this process's CPU time stays near GUI_CPU_SHARE."""

    def __init__(self, parent: QtCore.QObject, redraw: Callable[[bool], None], is_live: Callable[[], bool]):
        super().__init__(parent)
        self._redraw = redraw
        self._is_live = is_live
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(REDRAW_IDLE_MS)
        self._mark: tuple[float, float] | None = None  # (process CPU, GUI thread CPU) seconds
        self._tick = 0
        self.timer.timeout.connect(self._on_tick)
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def next_plot(self, n: int) -> int:
        """Which of ``n`` plots to redraw on this tick during a run: the first (the loss) every
        other tick, the others in turn between."""
        self._tick += 1
        return 0 if self._tick % 2 or n == 1 else 1 + (self._tick // 2) % (n - 1)

    def _on_tick(self) -> None:
        live = self._is_live()
        if live:
            self._pace()
        elif self._mark is not None:
            self._mark = None
            self.timer.setInterval(REDRAW_IDLE_MS)
        self._redraw(live)

    def _pace(self) -> None:
        """Stretch or shorten the interval (judged over at least 0.25 s of process CPU time)."""
        cpu, gui = time.process_time(), time.thread_time()
        if self._mark is None:
            self._mark = (cpu, gui)
            return
        d_cpu, d_gui = cpu - self._mark[0], gui - self._mark[1]
        if d_cpu < 0.25:
            return
        self._mark = (cpu, gui)
        factor = min(2.0, max(0.5, (d_gui / d_cpu) / GUI_CPU_SHARE))
        interval = int(min(REDRAW_MAX_MS, max(REDRAW_MIN_MS, self.timer.interval() * factor)))
        self.timer.setInterval(interval)
