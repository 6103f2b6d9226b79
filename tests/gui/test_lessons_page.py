"""The Lessons page shows what the runner sent: points become curves (one per seed, the prepare curve
on its own plot), marks become lines, each RunDone a dot, Finished the effect and the verdict; Stop
keeps what finished; a failure says where; the page is reachable from the sidebar and shares the CPU
with training in turns."""

from __future__ import annotations

import threading

import pytest
from PySide6 import QtGui

from workbench import lessons
from workbench.gui.jobs import lessons as jobs
from workbench.gui.panels.lessons.page import LessonsPanel
from workbench.lessons import Finished, Point, RunDone, run_lesson

from ..lessons.toy import VALUES, toy_lesson
from .windows import shown_window


@pytest.fixture
def registered(monkeypatch):
    def register(*items):
        monkeypatch.setattr(lessons, "all_lessons", lambda: {les.name: les for les in items})
    return register


@pytest.fixture
def page(qtbot, registered):
    def make(*items):
        registered(*items)
        p = LessonsPanel()
        qtbot.addWidget(p)
        p.resize(1200, 900)
        p.show()
        qtbot.waitUntil(lambda: p.list.count() == len(items), timeout=10000)
        return p
    yield make


def _wait_done(qtbot, p):
    qtbot.waitUntil(lambda: not p.is_running(), timeout=20000)


def test_the_list_and_the_claim_of_the_selected_lesson(page):
    p = page(toy_lesson("toy"), toy_lesson("other", title="Another", claim="Another claim.", budget_s=300))
    assert [p.list.item(i).text().splitlines()[0] for i in range(2)] == ["Toy lesson", "Another"]
    assert "about 5 min" in p.list.item(1).text()
    assert p.claim.text() == "Pretrained beats scratch."
    p.select("other")
    assert p.claim.text() == "Another claim." and "pretrained minus scratch" in p.plan.text()
    assert p.summary() == "2 lessons"


def test_points_become_curves_run_done_dots_and_finished_the_verdict(page, qtbot):
    gate = threading.Event()
    p = page(toy_lesson(gate=gate))
    p.set_size("small")
    assert p.run()
    # mid-run: the prepare curve and the first run's first point are on the plots
    qtbot.waitUntil(lambda: p.live.curve("pretrained", 0)[0] == [1.0], timeout=10000)
    assert p.live.curve("pretraining", 0) == ([0.0, 10.0], [3.0, 1.5])
    assert p.live.prepare_plot.isVisible() and "pretraining" not in " ".join(p.live.runs_plot.series_names())
    assert p.results.chart.values("pretrained") == [] and not p.run_button.isEnabled()
    assert "0 of 4 runs" in p.status.text()
    gate.set()
    _wait_done(qtbot, p)
    p.live.refresh()
    # every run's curve, one line per seed, in its condition's colour; the second series too
    for cond, values in VALUES.items():
        for seed in (0, 1):
            assert p.live.curve(cond, seed) == ([1.0, 2.0], [pytest.approx(values[seed] / 2), values[seed]])
            assert p.live.curve(cond, seed, "train")[1] == [pytest.approx(values[seed] * 0.9)]
    assert ("scratch", 1, 1.0, "halfway") in p.live.marks() and len(p.live.marks()) == 4
    # each RunDone a dot; Finished: the effect and the runner's own verdict
    assert p.results.chart.values("pretrained") == [0.9, 0.8]
    assert p.results.chart.values("scratch") == [0.5, 0.6]
    assert p.results.chart.label_text("pretrained") == "0.850 ± 0.071"
    assert "seeds: 0.900, 0.800 &nbsp; seed: 0, 1" in p.results.figures.text()   # the runs' numeric extras
    expected = run_lesson(toy_lesson(), "small")
    assert p.verdict.text.text() == expected.verdict()
    assert p.verdict.effect.text() == "Effect (pretrained − scratch): +0.300"
    assert "Quick size" in p.verdict.note.text()
    assert p.run_button.isEnabled() and not p.stop_button.isEnabled()
    assert p.summary() == "effect +0.300"
    # how it works gave its room to the figures; one click brings it back
    assert p.how.isHidden() and p.plan.isHidden()
    p.how_button.click()
    assert p.how.text() == "Two conditions, fixed numbers." and p.how.isVisible() and p.plan.isVisible()


def test_stop_keeps_what_finished(page, qtbot):
    p = page(toy_lesson(hold_at=("pretrained", 1)))
    p.set_size("full")
    p.run()
    qtbot.waitUntil(lambda: p.live.curve("pretrained", 1)[0] == [1.0], timeout=10000)
    assert p.stop_button.isEnabled()
    p.stop()
    _wait_done(qtbot, p)
    assert p.results.chart.values("pretrained") == [0.9] and p.results.chart.values("scratch") == [0.5]
    assert "Stopped: 2 runs had finished" in p.verdict.note.text()
    assert p.status.text() == "Stopped" and p.run_button.isEnabled()


def test_a_failing_lesson_says_where_and_keeps_the_dots(page, qtbot):
    p = page(toy_lesson(fail_at=("scratch", 1)))
    p.set_size("small")
    p.run()
    _wait_done(qtbot, p)
    assert "The lesson failed in scratch, seed 1: RuntimeError: the toy broke on purpose" in p.error.text()
    assert p.results.chart.values("pretrained") == [0.9, 0.8] and p.results.chart.values("scratch") == [0.5]
    assert p.status.text() == "Failed" and p.run_button.isEnabled()


def test_a_lesson_shown_again_shows_its_last_run(page, qtbot):
    p = page(toy_lesson("toy"), toy_lesson("other"))
    p.set_size("small")
    p.run()
    _wait_done(qtbot, p)
    p.select("other")
    assert p.results.chart.values("pretrained") == [] and p.verdict.text.isHidden()
    p.select("toy")
    assert p.results.chart.values("pretrained") == [0.9, 0.8] and "better by 0.300" in p.verdict.text.text()
    assert p.live.curve("scratch", 1)[1] == [pytest.approx(0.3), 0.6]


def test_presentation_makes_the_claim_and_the_verdict_bigger(page, qtbot, qapp):
    from workbench.gui import theme

    p = page(toy_lesson())
    p.set_size("small")
    p.run()
    _wait_done(qtbot, p)
    sizes = {}
    for scale in (1.0, 1.45):
        theme.apply_style(qapp, scale)
        p.set_presentation(scale)
        qtbot.wait(10)
        sizes[scale] = [QtGui.QFontInfo(w.font()).pixelSize() for w in (p.claim, p.verdict.effect, p.verdict.text)]
    theme.apply_style(qapp, 1.0)
    body = QtGui.QFontInfo(p.plan.font()).pixelSize()
    assert all(s > body * 1.3 for s in sizes[1.0])                # larger than the page's text
    assert all(b > a * 1.3 for a, b in zip(sizes[1.0], sizes[1.45]))
    assert sizes[1.45][0] >= 30                                    # the claim at a projector's size


def test_the_job_batches_points_and_sends_the_rest_at_once():
    class State:
        def __init__(self):
            self.batches = []

        def progress(self, batch):
            self.batches.append(batch)

        def should_stop(self):
            return False

    state = State()
    clock = iter(range(0, 10_000, 1)).__next__    # one "second" per call: every point is due
    result = jobs.run(state, toy_lesson(), "small", interval=1e9, clock=lambda: 0.0)
    events = [e for b in state.batches for e in b]
    assert isinstance(events[-1], Finished) and events[-1].result.effect == result.effect
    assert [e.value for e in events if isinstance(e, RunDone)] == [0.9, 0.5, 0.8, 0.6]
    # with a long interval the points wait for the next event that is no point
    assert all(not all(isinstance(e, Point) for e in b) for b in state.batches)
    state = State()
    jobs.run(state, toy_lesson(), "small", interval=0.5, clock=clock)
    assert any(all(isinstance(e, Point) for e in b) for b in state.batches)  # points on their own when due


def test_the_page_is_reachable_from_the_sidebar_and_takes_turns_with_training(qtbot, tmp_path, registered):
    registered(toy_lesson(hold_at=("pretrained", 0)))
    with shown_window(qtbot, tmp_path) as w:
        row = next(i for i in range(w.sidebar.count()) if w.sidebar.item(i).text() == "Lessons")
        w.sidebar.setCurrentRow(row)
        assert w.current_panel() == "lessons" and w.lessons.isVisible()
        qtbot.waitUntil(lambda: w.lessons.list.count() == 1, timeout=10000)
        # a training run of this window: Run waits, and the page says why
        w.session.is_active = lambda: True
        w._update_actions()
        assert not w.lessons.run_button.isEnabled() and "training run is using" in w.lessons.cpu_note.text()
        assert not w.lessons.run()
        del w.session.is_active
        w._update_actions()
        assert w.lessons.run_button.isEnabled() and w.lessons.cpu_note.isHidden()
        # a lesson running: Start and Demo wait
        assert w.lessons.run()
        qtbot.waitUntil(lambda: w.lessons.live.curve("pretrained", 0)[0] == [1.0], timeout=10000)
        assert not w.start_action.isEnabled() and not w.demo_action.isEnabled()
        assert "lesson is running" in w.start_action.toolTip()
        w.lessons.stop()
        qtbot.waitUntil(lambda: not w.lessons.is_running(), timeout=20000)
        assert w.start_action.isEnabled() == w.model.is_valid() and w.demo_action.isEnabled()


def test_a_finished_lesson_fits_every_size_and_its_verdict_scrolls_into_view(qtbot, tmp_path, registered):
    from .test_layout import _settle, page_problems

    registered(toy_lesson())
    with shown_window(qtbot, tmp_path, size=(1024, 768)) as w:
        w.set_presentation(True)
        w.show_panel("lessons")
        qtbot.waitUntil(lambda: w.lessons.list.count() == 1, timeout=10000)
        w.lessons.set_size("small")
        w.lessons.run()
        qtbot.waitUntil(lambda: not w.lessons.is_running(), timeout=20000)
        _settle(qtbot)
        page = w.stack.currentWidget()
        box = w.lessons.verdict_box
        top = box.mapTo(page.viewport(), box.rect().topLeft()).y()
        assert page.verticalScrollBar().value() > 0 and 0 <= top < page.viewport().height() // 2
        problems = []
        for size in ((1024, 768), (1440, 900)):
            for presentation in (False, True):
                w.set_presentation(presentation)
                w.resize(*size)
                _settle(qtbot)
                problems += [f"{size} {presentation}: {p}" for p in page_problems(w, "lessons")]
        assert problems == []


def test_closing_the_window_during_a_lesson_asks_first_then_stops_it(qtbot, tmp_path, registered, monkeypatch):
    from PySide6 import QtWidgets

    registered(toy_lesson(hold_at=("scratch", 0)))
    answers = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "question",
                        lambda *a, **k: answers.pop(0) if answers else QtWidgets.QMessageBox.StandardButton.No)
    with shown_window(qtbot, tmp_path, size=(1024, 768)) as w:
        w.show_panel("lessons")
        qtbot.waitUntil(lambda: w.lessons.list.count() == 1, timeout=10000)
        assert w.lessons.run()
        qtbot.waitUntil(lambda: w.lessons.progress()[0] >= 1, timeout=20000)   # held in (scratch, 0)
        w.confirm_close = True
        answers.append(QtWidgets.QMessageBox.StandardButton.No)
        w.close()
        assert w.isVisible() and w.lessons.is_running() and not answers   # asked; No keeps both
        answers.append(QtWidgets.QMessageBox.StandardButton.Yes)
        w.close()
        assert not answers and not w.lessons.is_running() and not w.isVisible()
