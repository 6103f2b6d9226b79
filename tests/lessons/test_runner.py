"""The lesson runner: seeds interleave conditions, the figures reduce to mean, spread and effect,
a stop keeps what finished, and the closing words follow the numbers."""

from __future__ import annotations

import json
import math

import pytest

from workbench import lessons
from workbench.lessons.base import (Finished, Lesson, Mark, Outcome, Planned, Point, RunDone,
                                    Started, run_lesson)


def _lesson(values: dict[str, list[float]], **kw) -> Lesson:
    """A lesson whose runs return fixed per-seed values and draw a two-point curve each."""
    def prepare(ctx):
        ctx.point(0, 9.0)
        return {"prepared_seed": ctx.seed}

    def run(ctx):
        assert ctx.shared == {"prepared_seed": ctx.seed}
        assert ctx.workdir.is_dir()
        ctx.point(1, 1.0)
        ctx.mark(1, "formed")
        ctx.point(2, 0.5)
        return Outcome(values[ctx.condition][ctx.seed], {"seed": ctx.seed})

    return Lesson(name="toy", title="Toy", claim="a beats b", metric="score", conditions=tuple(values),
                  effect=("a", "b"), run=run, prepare=prepare, prepare_label="pretraining",
                  seeds=len(next(iter(values.values()))), small_seeds=1, **kw)


def test_runs_every_condition_per_seed_in_order_and_reduces():
    events = []
    lesson = _lesson({"a": [0.9, 0.8, 0.85], "b": [0.5, 0.6, 0.55]})
    r = run_lesson(lesson, "full", on_event=events.append)
    kinds = [(type(e).__name__, getattr(e, "condition", None), getattr(e, "seed", None)) for e in events
             if isinstance(e, (Started, RunDone))]
    assert kinds == [(k, c, s) for s in range(3) for c, k in
                     [("pretraining", "Started"), ("a", "Started"), ("a", "RunDone"), ("b", "Started"),
                      ("b", "RunDone")]]
    assert isinstance(events[0], Planned) and events[0].seeds == (0, 1, 2)
    assert isinstance(events[-1], Finished) and events[-1].result is r
    assert any(isinstance(e, Point) and e.condition == "pretraining" and e.y == 9.0 for e in events)
    assert any(isinstance(e, Mark) and e.condition == "a" and e.text == "formed" for e in events)
    a, b = r.conditions["a"], r.conditions["b"]
    assert a.mean == pytest.approx(0.85) and a.std == pytest.approx(0.05)
    assert b.mean == pytest.approx(0.55) and r.effect == pytest.approx(0.30)
    assert not r.overlap and r.complete
    j = json.loads(json.dumps(r.to_json()))
    assert j["conditions"]["b"]["values"] == [0.5, 0.6, 0.55]
    assert j["effect"] == pytest.approx(0.3) and j["seeds_overlap"] is False
    assert j["conditions"]["a"]["extra"] == [{"seed": 0}, {"seed": 1}, {"seed": 2}]
    assert set(j["prepare_seconds"]) == {"0", "1", "2"}
    assert "better by 0.300" in j["verdict"] and "every seed agrees" in j["verdict"]


def test_overlapping_seeds_say_so_and_lower_is_better_flips_the_words():
    r = run_lesson(_lesson({"a": [0.6, 0.4], "b": [0.5, 0.45]}), "full")
    assert r.overlap and "overlap" in r.verdict()
    r = run_lesson(_lesson({"a": [2.0, 2.1], "b": [1.0, 1.1]}, higher_is_better=False), "full")
    assert r.effect == pytest.approx(1.0) and "a is worse by 1.000" in r.verdict()


def test_small_size_uses_fewer_seeds():
    r = run_lesson(_lesson({"a": [1.0, 2.0, 3.0], "b": [0.0, 0.0, 0.0]}), "small")
    assert r.conditions["a"].seeds == [0]
    with pytest.raises(ValueError, match="size"):
        run_lesson(_lesson({"a": [1.0], "b": [0.0]}), "huge")


def test_stop_keeps_what_finished_and_removes_the_temporary_folder():
    done = []

    def on_event(e):
        if isinstance(e, RunDone):
            done.append(e)

    lesson = _lesson({"a": [1.0, 2.0, 3.0], "b": [0.0, 0.0, 0.0]})
    r = run_lesson(lesson, "full", on_event=on_event, stop=lambda: len(done) >= 3)
    assert r.stopped and not r.complete
    assert r.conditions["a"].values == [1.0, 2.0] and r.conditions["b"].values == [0.0]
    assert not math.isnan(r.effect)


def test_a_run_that_raises_stopped_mid_curve_ends_the_lesson(tmp_path):
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 4

    r = run_lesson(_lesson({"a": [1.0, 1.0], "b": [0.0, 0.0]}), "full", stop=stop, workdir=tmp_path)
    assert r.stopped
    assert (tmp_path / "seed0" / "pretraining").is_dir()   # a kept workdir stays
    # stop polled by prepare's point, before a, by a's two points, then before b: a finished, b never ran
    assert r.conditions["a"].values == [1.0] and r.conditions["b"].values == []
    assert "nothing to compare" in r.verdict() and r.to_json()["effect"] is None


def test_unknown_lesson_names_the_lessons():
    with pytest.raises(lessons.UnknownLesson) as e:
        lessons.get("no-such-lesson")
    assert "no-such-lesson" in str(e.value)

