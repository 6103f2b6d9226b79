"""What every lesson is made of, and the loop that runs one.

A lesson states one claim in plain words ("pretraining helps when labels are few") and shows it with
an experiment: each *condition* (an arm of the comparison: "pretrained", "scratch") runs once per
seed and returns one number (the lesson's metric). Seeds run in order and, within a seed, every
condition, so a comparison fills in evenly and a stopped lesson still has matched pairs. A lesson may
``prepare`` work its conditions share for a seed (pretraining a model once for three fine-tunings).

The runner reduces the per-seed values to a mean and a spread per condition and the headline
``effect`` (the mean of one condition minus the mean of another), says whether the seeds' ranges
overlap, and writes the closing sentence from those figures, so a lesson's words cannot claim more
than its numbers. Lessons import no Qt: the window's Lessons page and `workbench lesson` both call
`run_lesson` and listen to its events.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

Size = Literal["full", "small"]
SIZES: tuple[str, ...] = ("full", "small")


class LessonStopped(Exception):
    """Raised inside a run when the user asked the lesson to stop; the runner keeps what finished."""


@dataclass
class Outcome:
    """What one run of one condition returns: the metric, and anything else worth showing."""
    value: float
    extra: dict = field(default_factory=dict)  # JSON-able: a conflict matrix, the step a head formed


# --- events (the window and the CLI draw from these) ---------------------------------------------

@dataclass(frozen=True)
class Planned:
    lesson: str
    conditions: tuple[str, ...]
    seeds: tuple[int, ...]
    prepare_label: str          # "" when the lesson prepares nothing


@dataclass(frozen=True)
class Started:
    condition: str              # the prepare label while preparing
    seed: int


@dataclass(frozen=True)
class Point:
    """One point of a live curve: condition (or the prepare label), seed, x (step or seconds), y."""
    condition: str
    seed: int
    x: float
    y: float
    series: str = ""            # a second curve of the same run ("train", "validation"); "" for the main one


@dataclass(frozen=True)
class Mark:
    """A moment worth marking on a run's curve ("copy head forms")."""
    condition: str
    seed: int
    x: float
    text: str


@dataclass(frozen=True)
class RunDone:
    condition: str
    seed: int
    value: float
    seconds: float
    extra: dict


@dataclass(frozen=True)
class Finished:
    result: "LessonResult"


LessonEvent = Planned | Started | Point | Mark | RunDone | Finished


# --- what a run sees ------------------------------------------------------------------------------

@dataclass
class RunContext:
    lesson: str
    condition: str              # "" in prepare
    seed: int
    size: str                   # "full" or "small" (tests)
    workdir: Path               # a folder of this run's own, removed after the lesson unless kept
    shared: Any = None          # what prepare returned for this seed
    _emit: Callable[[LessonEvent], None] = lambda e: None
    _stop: Callable[[], bool] = lambda: False
    _label: str = ""            # the condition name events carry (the prepare label while preparing)

    @property
    def small(self) -> bool:
        return self.size == "small"

    def stop_requested(self) -> bool:
        return bool(self._stop())

    def check(self) -> None:
        """Raise LessonStopped when the user asked to stop (call between steps)."""
        if self._stop():
            raise LessonStopped()

    def point(self, x: float, y: float, series: str = "") -> None:
        self._emit(Point(self._label, self.seed, float(x), float(y), series))
        self.check()

    def mark(self, x: float, text: str) -> None:
        self._emit(Mark(self._label, self.seed, float(x), text))


@dataclass(frozen=True)
class Lesson:
    name: str                   # `workbench lesson NAME`
    title: str                  # the list's line: "Pretraining helps"
    claim: str                  # one or two sentences, plain words
    metric: str                 # what a run returns: "accuracy on 400 held-out sentences"
    conditions: tuple[str, ...]
    effect: tuple[str, str]     # the headline: mean(effect[0]) - mean(effect[1])
    run: Callable[[RunContext], Outcome | float]
    prepare: Callable[[RunContext], Any] | None = None
    prepare_label: str = ""     # what the curve of prepare is called ("pretraining")
    x_label: str = "step"       # what Point.x counts
    y_label: str = ""           # what Point.y is ("validation loss")
    higher_is_better: bool = True
    seeds: int = 3              # at full size
    small_seeds: int = 2        # at the reduced size tests use
    budget_s: float = 300.0     # full size on a 2-core laptop CPU
    how: str = ""               # what the experiment does, a short paragraph for the page and --help
    conclude: Callable[["LessonResult"], str] | None = None  # a lesson's own closing words

    def seed_list(self, size: str) -> tuple[int, ...]:
        return tuple(range(self.seeds if size == "full" else self.small_seeds))


# --- results --------------------------------------------------------------------------------------

@dataclass
class ConditionResult:
    name: str
    seeds: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    extras: list[dict] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values) if self.values else math.nan

    @property
    def std(self) -> float:
        """Sample standard deviation over seeds (0 with one seed)."""
        n = len(self.values)
        if n < 2:
            return 0.0 if n else math.nan
        m = self.mean
        return math.sqrt(sum((v - m) ** 2 for v in self.values) / (n - 1))

    def to_json(self) -> dict:
        return {"mean": _num(self.mean), "std": _num(self.std), "values": [_num(v) for v in self.values],
                "seeds": list(self.seeds), "seconds": [round(s, 2) for s in self.seconds],
                **({"extra": self.extras} if any(self.extras) else {})}


@dataclass
class LessonResult:
    lesson: Lesson
    size: str
    conditions: dict[str, ConditionResult]
    seconds: float
    stopped: bool = False
    prepared: dict[int, float] = field(default_factory=dict)   # seconds prepare took, per seed

    @property
    def effect_name(self) -> str:
        a, b = self.lesson.effect
        return f"{a} - {b}"

    @property
    def effect(self) -> float:
        a, b = self.lesson.effect
        return self.conditions[a].mean - self.conditions[b].mean

    @property
    def overlap(self) -> bool:
        """Whether the two headline conditions' per-seed ranges overlap (True when either is empty)."""
        a, b = (self.conditions[c].values for c in self.lesson.effect)
        if not a or not b:
            return True
        return not (min(a) > max(b) or max(a) < min(b))

    @property
    def complete(self) -> bool:
        return not self.stopped and all(len(c.values) == len(self.lesson.seed_list(self.size))
                                        for c in self.conditions.values())

    def verdict(self) -> str:
        if self.lesson.conclude is not None:
            return self.lesson.conclude(self)
        return default_verdict(self)

    def to_json(self) -> dict:
        les = self.lesson
        return {"lesson": les.name, "title": les.title, "claim": les.claim, "metric": les.metric,
                "size": self.size, "complete": self.complete,
                "conditions": {n: c.to_json() for n, c in self.conditions.items()},
                "effect": _num(self.effect), "effect_name": self.effect_name, "seeds_overlap": self.overlap,
                "verdict": self.verdict(), "seconds": round(self.seconds, 1),
                "budget_seconds": les.budget_s if self.size == "full" else None,
                **({"prepare_seconds": {str(k): round(v, 1) for k, v in self.prepared.items()}}
                   if self.prepared else {})}


def _num(v: float) -> float | None:
    return None if v is None or math.isnan(v) else round(float(v), 4)


def default_verdict(r: LessonResult) -> str:
    """The closing sentence from the figures: the effect, its spread, and whether the seeds agree."""
    a, b = (r.conditions[c] for c in r.lesson.effect)
    if not a.values or not b.values:
        return "Stopped before both conditions had a result: nothing to compare yet."
    n = min(len(a.values), len(b.values))
    better = r.effect > 0 if r.lesson.higher_is_better else r.effect < 0
    seeds = f"{n} seed{'s' if n != 1 else ''}"
    agree = ("every seed agrees (the ranges do not overlap)" if not r.overlap
             else "the seeds' ranges overlap, so the difference is not clear at this size")
    compared = ("the two are level" if r.effect == 0
                else f"{a.name} is {'better' if better else 'worse'} by {abs(r.effect):.3f}")
    return (f"{a.name} {a.mean:.3f} ± {a.std:.3f} against {b.name} {b.mean:.3f} ± {b.std:.3f} "
            f"over {seeds}: {compared}; {agree}.")


# --- the runner -----------------------------------------------------------------------------------

def run_lesson(lesson: Lesson, size: str = "full", *, seeds: tuple[int, ...] | None = None,
               on_event: Callable[[LessonEvent], None] | None = None,
               stop: Callable[[], bool] | None = None, workdir: Path | None = None) -> LessonResult:
    """Run every condition of ``lesson`` for each seed; return what finished (all of it unless stopped).

    ``workdir`` keeps the runs' folders there (otherwise a temporary folder, removed afterwards);
    ``stop`` is polled by the runs (through RunContext.check) and between them.
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, not {size!r}")
    emit = on_event or (lambda e: None)
    stop = stop or (lambda: False)
    seeds = tuple(seeds) if seeds is not None else lesson.seed_list(size)
    results = {c: ConditionResult(c) for c in lesson.conditions}
    emit(Planned(lesson.name, lesson.conditions, seeds, lesson.prepare_label if lesson.prepare else ""))
    t0 = time.perf_counter()
    root = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix=f"lesson-{lesson.name}-"))
    result = LessonResult(lesson, size, results, 0.0)
    try:
        for seed in seeds:
            shared = None
            if lesson.prepare is not None:
                emit(Started(lesson.prepare_label, seed))
                ctx = _context(lesson, "", lesson.prepare_label, seed, size, root, None, emit, stop)
                tp = time.perf_counter()
                shared = lesson.prepare(ctx)
                result.prepared[seed] = time.perf_counter() - tp
            for cond in lesson.conditions:
                if stop():
                    raise LessonStopped()
                emit(Started(cond, seed))
                ctx = _context(lesson, cond, cond, seed, size, root, shared, emit, stop)
                tr = time.perf_counter()
                out = lesson.run(ctx)
                out = out if isinstance(out, Outcome) else Outcome(float(out))
                secs = time.perf_counter() - tr
                r = results[cond]
                r.seeds.append(seed)
                r.values.append(float(out.value))
                r.seconds.append(secs)
                r.extras.append(dict(out.extra))
                emit(RunDone(cond, seed, float(out.value), secs, dict(out.extra)))
    except LessonStopped:
        result.stopped = True
    finally:
        if workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    result.seconds = time.perf_counter() - t0
    emit(Finished(result))
    return result


def _context(lesson, condition, label, seed, size, root, shared, emit, stop) -> RunContext:
    folder = root / f"seed{seed}" / (label or "prepare").replace(" ", "_").replace("/", "_")
    folder.mkdir(parents=True, exist_ok=True)
    return RunContext(lesson.name, condition, seed, size, folder, shared, emit, stop, label)
