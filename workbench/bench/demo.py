"""``workbench bench demo``: seconds from pressing Demo to a fallen loss and a visible attention
pattern, trained headless as the window's Demo button trains (its settings, its thread count, a
cold token cache included)."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time

from workbench.engine.config import Experiment
from workbench.engine.events import StepMetrics


DEMO_LOSS_LEVEL = 2.0      # nats: the demo's loss starts near ln(vocabulary) ~ 3.3 and levels off ~1.0
DEMO_PATTERN_LEVEL = 0.5   # half of a head's attention on the keys its task needs (patterns.py)


class _DemoWatch:
    """Timestamps of the first step whose loss (mean of the last 10 steps) is below the level, and
    of the first attention snapshot with a head whose pattern score passes its level."""

    def __init__(self, control, links, loss_level: float, pattern_level: float):
        self.control, self.links = control, links
        self.loss_level, self.pattern_level = loss_level, pattern_level
        self.t0 = time.perf_counter()
        self.losses: list[float] = []
        self.loss_at: tuple[float, int] | None = None       # (seconds, step)
        self.pattern_at: tuple[float, int, tuple] | None = None
        self.best = None
        self.started_at: float | None = None                # first step: preparation is over

    def report(self, e) -> None:
        from workbench.engine.events import AttentionSnapshot
        from workbench.engine.patterns import pattern_scores

        now = time.perf_counter() - self.t0
        if isinstance(e, StepMetrics):
            if self.started_at is None:
                self.started_at = now
            self.losses.append(e.loss)
            recent = self.losses[-10:]
            if self.loss_at is None and len(recent) == 10 and sum(recent) / 10 < self.loss_level:
                self.loss_at = (now, e.step)
        elif isinstance(e, AttentionSnapshot) and self.links:
            best = pattern_scores(e.attention, self.links).best()
            self.best = (e.step, best)
            if self.pattern_at is None and best is not None and best[3] >= self.pattern_level:
                self.pattern_at = (now, e.step, best)
        if self.loss_at is not None and self.pattern_at is not None:
            self.control.stop()


def bench_demo(exp: Experiment, limit_s: float = 300.0, *, loss_level: float = DEMO_LOSS_LEVEL,
               pattern_level: float = DEMO_PATTERN_LEVEL, threads: int | None = None) -> dict:
    """Train the demo as the window's Demo button does (its own settings, from a cold token cache
    included) and time (a) a loss below ``loss_level`` and (b) a head whose pattern score on the
    probe text passes ``pattern_level``. Stops when both are reached or after ``limit_s``."""
    import threading

    from workbench.engine.control import RunControl
    from workbench.engine.patterns import probe_links
    from workbench.engine.trainer import Trainer

    cores = os.cpu_count() or 1
    tc = dataclasses.replace(exp.training, threads=threads or max(1, cores - 1))  # as the window's worker
    exp = exp.replace(training=tc)
    control = RunControl()
    timer = threading.Timer(limit_s, control.stop)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(exp, run_dir=os.path.join(tmp, "run"))
        # the links need the tokenizer: compute them when the run has started
        watch = _DemoWatch(control, {}, loss_level, pattern_level)

        class _Reporter:
            def report(self, e) -> None:
                from workbench.engine.events import RunStarted

                if isinstance(e, RunStarted):
                    watch.links = probe_links(trainer.state.tokenizer, exp.training.probe_text)
                watch.report(e)

        timer.start()
        try:
            result = trainer.run(control, _Reporter())
        finally:
            timer.cancel()
    if result.status == "failed":
        raise RuntimeError(result.message)
    best = watch.pattern_at[2] if watch.pattern_at else (watch.best[1] if watch.best else None)
    return {
        "bench": "demo",
        "experiment": exp.name,
        "loss_level": loss_level,
        "pattern_level": pattern_level,
        "loss_seconds": round(watch.loss_at[0], 1) if watch.loss_at else None,
        "loss_step": watch.loss_at[1] if watch.loss_at else None,
        "pattern_seconds": round(watch.pattern_at[0], 1) if watch.pattern_at else None,
        "pattern_step": watch.pattern_at[1] if watch.pattern_at else None,
        "pattern_head": ({"task": best[0], "layer": best[1], "head": best[2], "score": round(best[3], 3)}
                         if best else None),
        "preparation_seconds": round(watch.started_at, 1) if watch.started_at is not None else None,
        "steps": result.step,
        "limit_s": limit_s,
        "threads": tc.threads,
        "load_average": [round(x, 2) for x in load_before],
        "cpu": _cpu_model(),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()
