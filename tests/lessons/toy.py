"""Lessons for tests of the views (the CLI, the Lessons page): runs that draw a short curve, mark a
moment and return fixed per-seed values, so a test can check that a view shows what the runner sent."""

from __future__ import annotations

import threading
import time

from workbench.lessons.base import Lesson, Outcome

VALUES = {"pretrained": [0.9, 0.8, 0.85], "scratch": [0.5, 0.6, 0.55]}


def toy_lesson(name: str = "toy", values: dict | None = None, *, fail_at: tuple[str, int] | None = None,
               on_run=None, gate: threading.Event | None = None,
               hold_at: tuple[str, int] | None = None, **kw) -> Lesson:
    """Conditions ``values``' keys; each run draws the points (1, v/2) and (2, v) (and (2, 0.9 v) on a
    "train" curve), marks x=1 "halfway", and returns v = values[condition][seed]. ``fail_at``
    (condition, seed) raises there; ``on_run(ctx)`` is called at the start of every run; with ``gate``
    each run waits for it after its first point; the run ``hold_at`` (condition, seed) waits there until
    the lesson is stopped (a test holds a lesson mid-run)."""
    values = values or VALUES

    def prepare(ctx):
        ctx.point(0, 3.0)
        ctx.point(10, 1.5)
        return ctx.seed

    def run(ctx):
        if on_run is not None:
            on_run(ctx)
        if fail_at == (ctx.condition, ctx.seed):
            raise RuntimeError("the toy broke on purpose")
        v = values[ctx.condition][ctx.seed]
        ctx.point(1, v / 2)
        if gate is not None:
            while not gate.wait(0.01):
                ctx.check()
        while hold_at == (ctx.condition, ctx.seed):
            ctx.check()
            time.sleep(0.01)
        ctx.mark(1, "halfway")
        ctx.point(2, v)
        ctx.point(2, v * 0.9, series="train")
        return Outcome(v, {"seed": ctx.seed})

    args = dict(name=name, title="Toy lesson", claim="Pretrained beats scratch.", metric="toy accuracy",
                conditions=tuple(values), effect=tuple(values)[:2], run=run, prepare=prepare,
                prepare_label="pretraining", y_label="accuracy", seeds=3, small_seeds=2, budget_s=60.0,
                how="Two conditions, fixed numbers.")
    args.update(kw)
    return Lesson(**args)
