"""``workbench bench demo``: seconds from pressing Demo to a fallen loss and a visible attention
pattern, trained headless as the window's Demo button trains (its settings, its thread count, a
cold token cache included).

Seconds on a shared machine say more about the other work than about the demo, so each level also
gets its step and the CPU seconds this process spent until then (one training thread: about the
wall time the same run would take on a quiet machine)."""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
import tempfile
import time

from workbench.engine.builtin_corpora import LETTERS
from workbench.engine.config import Experiment
from workbench.engine.events import StepMetrics
from workbench.engine.patterns import CLEAR

# The demo's lines (builtin:demo) are 16 letters, ">" and the newline: guessing uniformly among those 18
# characters costs ln 18 = 2.89 nats a character. A model that has learned all but the copy still guesses
# each answer letter among 16 (about 2.2 nats a character over a window: the plateau some runs sit on);
# copying leaves only the new letters of each line to guess (about 1.0). So 60% of the uniform loss,
# 1.73 nats, is reached only by a model that looks back at the letters it copies: a loss that has
# clearly fallen, for a reason the Attention page shows.
UNIFORM_LOSS = math.log(len(LETTERS) + 2)
DEMO_LOSS_FRACTION = 0.6
DEMO_LOSS_LEVEL = round(DEMO_LOSS_FRACTION * UNIFORM_LOSS, 3)
DEMO_PATTERN_LEVEL = CLEAR  # half of a head's attention on the keys its task needs (patterns.py)


class _DemoWatch:
    """Timestamps of the first step whose loss (mean of the last 10 steps) is below the level, and
    of the first attention snapshot with a head whose pattern score passes its level."""

    def __init__(self, control, links, loss_level: float, pattern_level: float):
        self.control, self.links = control, links
        self.loss_level, self.pattern_level = loss_level, pattern_level
        self.t0, self.cpu0 = time.perf_counter(), time.process_time()
        self.losses: list[float] = []
        self.loss_at: tuple[float, int, float] | None = None       # (seconds, step, CPU seconds)
        self.pattern_at: tuple[float, int, tuple, float] | None = None
        self.best = None
        self.started_at: float | None = None                # first step: preparation is over
        self.step_times: list[float] = []                   # wall time of each step

    def report(self, e) -> None:
        from workbench.engine.events import AttentionSnapshot
        from workbench.engine.patterns import pattern_scores

        now, cpu = time.perf_counter() - self.t0, time.process_time() - self.cpu0
        if isinstance(e, StepMetrics):
            if self.started_at is None:
                self.started_at = now
            else:
                self.step_times.append(now - self._last)
            self._last = now
            self.losses.append(e.loss)
            recent = self.losses[-10:]
            if self.loss_at is None and len(recent) == 10 and sum(recent) / 10 < self.loss_level:
                self.loss_at = (now, e.step, cpu)
        elif isinstance(e, AttentionSnapshot) and self.links:
            best = pattern_scores(e.attention, self.links).best()
            self.best = (e.step, best)
            if self.pattern_at is None and best is not None and best[3] >= self.pattern_level:
                self.pattern_at = (now, e.step, best, cpu)
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
    loss_at, pattern_at = watch.loss_at or (None,) * 3, watch.pattern_at or (None,) * 4
    return {
        "bench": "demo",
        "experiment": exp.name,
        "seed": tc.seed,
        "loss_level": loss_level,
        "pattern_level": pattern_level,
        "loss_seconds": _round(loss_at[0]),
        "loss_step": loss_at[1],
        "loss_cpu_seconds": _round(loss_at[2]),
        "pattern_seconds": _round(pattern_at[0]),
        "pattern_step": pattern_at[1],
        "pattern_cpu_seconds": _round(pattern_at[3]),
        "pattern_head": ({"task": best[0], "layer": best[1], "head": best[2], "score": round(best[3], 3)}
                         if best else None),
        "preparation_seconds": _round(watch.started_at),
        "step_ms": round(1000 * statistics.median(watch.step_times), 1) if watch.step_times else None,
        "steps": result.step,
        "limit_s": limit_s,
        "threads": tc.threads,
        "load_average": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpu": _cpu_model(),
    }


def bench_demo_seeds(exp: Experiment, seeds: list[int], limit_s: float = 300.0, **levels) -> dict:
    """The demo over several seeds (weights and batches): each run's figures and the spread of the
    steps to each level (a run that never reaches one within ``limit_s`` counts as not reached)."""
    runs = [bench_demo(exp.replace(training=dataclasses.replace(exp.training, seed=s)), limit_s, **levels)
            for s in seeds]
    out = {"bench": "demo", "experiment": exp.name, "seeds": seeds}
    for key in ("loss_step", "pattern_step", "loss_seconds", "pattern_seconds", "pattern_cpu_seconds"):
        got = sorted(r[key] for r in runs if r[key] is not None)
        out[key] = {"reached": f"{len(got)} of {len(runs)}", "median": statistics.median(got) if got else None,
                    "min": got[0] if got else None, "max": got[-1] if got else None}
    out.update(loss_level=runs[0]["loss_level"], pattern_level=runs[0]["pattern_level"],
               load_average=runs[0]["load_average"], load_average_after=runs[-1]["load_average_after"],
               cpu=runs[0]["cpu"], runs=runs)
    return out


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


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
