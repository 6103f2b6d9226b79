"""The Lessons page's jobs: read the list of lessons, run one (no Qt; tests call these directly).

A lesson's events reach the page through ``state.progress`` as lists, in order: the points of its
curves at most every ``interval`` seconds (a run may send hundreds a second, and every signal costs
the GUI thread, which shares the CPU with the lesson), and when due also while a run polls for
Stop between its steps; everything else (a run starting or ending, the end) at once. Stop is ``state.should_stop``: the runner keeps what finished and still sends
``Finished`` with it, so the page shows a stopped lesson's figures from the events alone.
"""

from __future__ import annotations

import time
from typing import Callable

POINT_INTERVAL = 0.25  # seconds between two batches of curve points (as bridge.METRICS_INTERVAL)


def list_lessons(state) -> list:
    """Every lesson, in teaching order (importing their modules loads torch: not on the GUI thread)."""
    from workbench import lessons

    return list(lessons.all_lessons().values())


def run(state, lesson, size: str, interval: float = POINT_INTERVAL, clock: Callable[[], float] = time.monotonic):
    """Run ``lesson`` at ``size`` ("full" or "small"); returns its LessonResult."""
    from workbench.lessons import Mark, Point, run_lesson

    pending: list = []
    last = [clock()]

    def flush() -> None:
        if pending:
            batch = list(pending)
            pending.clear()
            state.progress(batch)
        last[0] = clock()

    def on_event(e) -> None:
        pending.append(e)
        if not isinstance(e, (Point, Mark)) or clock() - last[0] >= interval:
            flush()

    def stop() -> bool:
        # polled between a run's steps (RunContext.check): the points of a slow step go out meanwhile
        if pending and clock() - last[0] >= interval:
            flush()
        return state.should_stop()

    try:
        return run_lesson(lesson, size, on_event=on_event, stop=stop)
    finally:
        flush()  # the points before a failure, too
