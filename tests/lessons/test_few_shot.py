"""The "few-shot" lesson at its reduced size. Sixty steps are far too few for the look-up to form (the
full size measures that, docs/EXPERIMENTS.md), so this checks what surrounds it on a real trained
model: every k is asked with exactly k shots that fit the context, the curves and the look-back head
come from the model, and the figures are the engine's in-context evaluation of it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from workbench import lessons
from workbench.engine.evaluate import builtin_icl_task, evaluate_in_context
from workbench.lessons import few_shot
from workbench.lessons.base import Mark, Point, run_lesson


def test_small_lesson_asks_every_k_and_names_a_look_back_head():
    events, models = [], []
    lesson = lessons.get("few-shot")
    original = lesson.prepare

    def prepare(ctx):  # keep each seed's model to check the figures against the engine's evaluation
        shared = original(ctx)
        models.append(shared)
        return shared

    r = run_lesson(replace(lesson, prepare=prepare), "small", on_event=events.append)
    assert r.complete and list(r.conditions) == ["k=0", "k=1", "k=2", "k=4", "k=8"]
    size = few_shot.SIZES["small"]
    for name, c in r.conditions.items():
        k = int(name[2:])
        assert c.seeds == [0, 1]
        for value, extra in zip(c.values, c.extras):
            assert 0.0 <= value <= 1.0
            assert extra["demos_used"] == k  # every prompt kept all its shots: k = 8 fits the context
            assert len(extra["draws"]) == size.draws * size.mappings and extra["chance"] == pytest.approx(0.25)
            assert extra["mappings"] == size.mappings
            assert value == pytest.approx(sum(extra["draws"]) / len(extra["draws"]))
    # the values are the engine's evaluation of the seed's model on that seed's unseen mappings
    for seed, shared in enumerate(models):
        accs = [evaluate_in_context(shared["model"], shared["tokenizer"],
                                    builtin_icl_task(n=size.queries // size.mappings, seed=seed + 10_000 * m),
                                    ks=(4,), draws=size.draws).results[0].accuracy for m in range(size.mappings)]
        assert r.conditions["k=4"].values[seed] == pytest.approx(sum(accs) / len(accs))
    for extra in r.conditions["k=8"].extras:
        layer, head = extra["induction_head"]
        assert 0 <= layer < 2 and 0 <= head < 4  # the icl_keyvalue preset: 2 layers of 4 heads
        assert 0.0 <= extra["induction_score"] <= 1.0 and 0.0 <= extra["k=8_without_induction_head"] <= 1.0
    assert "induction_head" not in r.conditions["k=0"].extras[0]
    # while training, both curves per evaluation; after it no curve points
    curve = [e for e in events if isinstance(e, Point) and e.seed == 0]
    assert {p.condition for p in curve} == {"training"}
    assert sorted({p.x for p in curve}) == list(range(size.eval_every, size.steps + 1, size.eval_every))
    assert {p.series for p in curve} == {"", few_shot.ZERO_SHOT}
    assert all(isinstance(m, Mark) and m.text == "the look-up forms" for m in events if isinstance(m, Mark))
    assert "look-back (induction) head" in r.verdict() and "seed 1: layer" in r.verdict()
