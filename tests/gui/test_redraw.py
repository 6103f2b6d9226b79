"""The redraw budget (gui/window/redraw.py) with made-up CPU clocks: during a run the interval
stretches while the GUI thread takes more than its share and shortens while it takes less,
within its bounds; without a run it goes back to the idle rate. The curves take turns."""

import pytest
from PySide6 import QtCore

from workbench.gui.window import redraw


class Clocks:
    def __init__(self):
        self.process = 0.0
        self.thread = 0.0

    def spend(self, process: float, gui: float) -> None:
        self.process += process
        self.thread += gui


@pytest.fixture
def pacer(qapp, monkeypatch):
    clocks = Clocks()
    monkeypatch.setattr(redraw.time, "process_time", lambda: clocks.process)
    monkeypatch.setattr(redraw.time, "thread_time", lambda: clocks.thread)
    state = {"live": True, "drawn": []}
    owner = QtCore.QObject()
    p = redraw.RedrawPacer(owner, state["drawn"].append, lambda: state["live"])
    p.timer.stop()  # ticks are driven by the test
    yield p, clocks, state
    owner.deleteLater()


def test_the_interval_follows_the_gui_threads_share_of_the_cpu(pacer):
    p, clocks, state = pacer
    p._on_tick()  # the first tick of a run only sets the mark
    assert p.timer.interval() == redraw.REDRAW_IDLE_MS
    clocks.spend(1.0, 0.20)  # the GUI thread took 20%, four times its share: the interval doubles
    p._on_tick()
    assert p.timer.interval() == 2 * redraw.REDRAW_IDLE_MS
    for _ in range(10):
        clocks.spend(1.0, 0.50)
        p._on_tick()
    assert p.timer.interval() == redraw.REDRAW_MAX_MS
    for _ in range(20):  # the GUI thread took 1%: the interval halves, down to the minimum
        clocks.spend(1.0, 0.01)
        p._on_tick()
    assert p.timer.interval() == redraw.REDRAW_MIN_MS
    clocks.spend(0.1, 0.1)  # under 0.25 s of process CPU: too little to judge
    p._on_tick()
    assert p.timer.interval() == redraw.REDRAW_MIN_MS
    state["live"] = False
    p._on_tick()
    assert p.timer.interval() == redraw.REDRAW_IDLE_MS
    assert state["drawn"][-1] is False and all(state["drawn"][:-1])


def test_the_loss_plot_every_other_tick_and_the_others_in_turn(pacer):
    p, _, _ = pacer
    picks = [p.next_plot(4) for _ in range(12)]
    assert picks[0::2] == [0] * 6
    assert sorted(picks[1::2]) == [1, 1, 2, 2, 3, 3]
    assert [p.next_plot(1) for _ in range(3)] == [0, 0, 0]
