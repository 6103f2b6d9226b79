"""JobSlot: one job of a kind at a time; only the latest job's signals reach the page; progress is
throttled to the newest value; a job that fails says so."""

import threading

from PySide6 import QtCore

from workbench.gui.bridge import JobSlot


def _wait_for(event: threading.Event):
    def fn(state, value):
        while not event.wait(0.01):
            state.check()
        return value
    return fn


def test_starting_a_job_cancels_the_one_before_and_drops_its_result(qtbot):
    got, failed, cancelled = [], [], []
    owner = QtCore.QObject()
    slot = JobSlot(owner, "read", on_done=got.append, on_failed=lambda m, d: failed.append(m),
                   on_cancelled=lambda: cancelled.append(1))
    first_may_end = threading.Event()
    first = slot.start(_wait_for(first_may_end), "old")
    second = slot.start(lambda state, v: v, "new")
    assert first.state.should_stop()          # the earlier job was asked to stop
    first_may_end.set()
    assert first.wait(5000) and second.wait(5000)
    qtbot.waitUntil(lambda: bool(got), timeout=5000)
    QtCore.QCoreApplication.processEvents()
    assert got == ["new"] and failed == [] and cancelled == []   # nothing from the first job


def test_a_result_already_on_its_way_is_dropped_when_a_new_job_starts(qtbot):
    got = []
    slot = JobSlot(None, "read", on_done=got.append, on_failed=lambda m, d: None)
    first = slot.start(lambda state: "stale")
    first._thread.wait()                       # finished; its done signal waits in the event queue
    slot.start(lambda state: "fresh")
    qtbot.waitUntil(lambda: bool(got), timeout=5000)
    assert slot.wait(5000)
    QtCore.QCoreApplication.processEvents()
    assert got == ["fresh"]


def test_failure_reaches_the_page_and_per_job_handlers_override(qtbot):
    failed, done = [], []
    slot = JobSlot(None, "check", on_failed=lambda m, d: failed.append(m), on_done=done.append)

    def boom(state):
        raise ValueError("line 3 of data.csv has no label")

    slot.start(boom)
    qtbot.waitUntil(lambda: bool(failed), timeout=5000)
    assert failed == ["ValueError: line 3 of data.csv has no label"]
    other = []
    slot.start(lambda state: 7, on_done=other.append)
    qtbot.waitUntil(lambda: bool(other), timeout=5000)
    assert other == [7] and done == []


def test_progress_is_throttled_to_the_newest_value_and_the_last_arrives_before_done(qtbot):
    seen, events = [], []
    slot = JobSlot(None, "count", on_failed=lambda m, d: None, progress_ms=200,
                   on_progress=lambda v: (seen.append(v), events.append("progress")),
                   on_done=lambda v: events.append("done"))

    def count(state):
        for i in range(1, 2001):
            state.progress(i)
        return "ok"

    slot.start(count)
    qtbot.waitUntil(lambda: bool("done" in events), timeout=10000)
    assert seen[-1] == 2000                   # the newest value is never lost
    assert len(seen) < 50                     # ...but the values in between are not all delivered
    assert seen == sorted(seen)
    assert events[-1] == "done" and events[-2] == "progress"


def test_cancel_stops_and_silences_the_running_job(qtbot):
    got, cancelled = [], []
    slot = JobSlot(None, "wait", on_done=got.append, on_failed=lambda m, d: got.append(m),
                   on_cancelled=lambda: cancelled.append(1))
    never = threading.Event()
    job = slot.start(_wait_for(never), "x")
    assert slot.is_running()
    slot.cancel()
    assert job.wait(5000)
    QtCore.QCoreApplication.processEvents()
    assert not slot.is_running() and got == [] and cancelled == []
