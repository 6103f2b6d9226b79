"""`workbench lesson`: list the lessons, or run one headless and print its figures.

A run prints the claim, one line per finished run (condition, seed, value, seconds), then a table
per condition (mean ± std and each seed's value), the effect and the verdict; with --json the
same figures as one JSON object on stdout (`LessonResult.to_json`) and the run lines on stderr.
Ctrl-C stops the lesson at the next point of its curve and prints what finished (exit 130); a
second Ctrl-C aborts.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import textwrap
import time
import traceback
from pathlib import Path

from workbench.fmt import fmt_about, fmt_duration

from .args import number_type

STOPPED_EXIT = 130  # the shell's code for "interrupted": the figures are incomplete


def add_parsers(sub) -> None:
    p = sub.add_parser("lesson", help="list the lessons, or run one: a claim shown by an experiment with seeds",
                       description="Each lesson states one claim in plain words and runs the experiment that "
                                   "shows it: every condition once per seed, then each condition's mean and "
                                   "spread, the effect (one condition's mean minus another's) and whether the "
                                   "seeds agree. Without NAME: the list of lessons. Exit codes: 0 done, 1 the "
                                   "lesson failed, 2 a bad name or option, 130 stopped with Ctrl-C (what "
                                   "finished is printed).")
    p.add_argument("name", nargs="?", metavar="NAME", help="the lesson to run (leave out to list them; with --json "
                   "the list as JSON)")
    p.add_argument("--size", choices=("full", "small"), default="full",
                   help="full: the lesson as designed, within its budget on a 2-core CPU (default); small: a "
                        "reduced quick version (fewer seeds, smaller runs) whose figures are not the lesson's")
    p.add_argument("--seeds", type=number_type(int, 1, 100), metavar="N",
                   help="run N seeds (0 .. N-1) instead of the lesson's own number for --size")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object on stdout: "
                   "conditions (mean, std, per-seed values), effect, verdict, seconds")
    p.add_argument("--keep", metavar="DIR", help="keep every run's folder (models, metrics) under DIR, a new or "
                   "empty folder (default: a temporary folder, removed at the end)")


def cmd_lesson(args) -> int:
    from workbench import lessons
    from workbench.engine.errors import ConfigError

    if args.name is None:
        return _list(lessons.all_lessons(), args.json)
    try:
        lesson = lessons.get(args.name)
    except lessons.UnknownLesson as e:
        raise ConfigError(f"{e}; run `workbench lesson` for their claims.") from None
    workdir = _keep_folder(args.keep) if args.keep else None
    seeds = tuple(range(args.seeds)) if args.seeds else None
    out = sys.stderr if args.json else sys.stdout
    printer = _RunPrinter(lesson, out)
    if not args.json:
        printer.header(args.size, seeds or lesson.seed_list(args.size))

    stop = {"asked": False}

    def on_sigint(signum, frame):
        if stop["asked"]:
            raise KeyboardInterrupt
        stop["asked"] = True
        print("\nstopping the lesson at the next point (Ctrl-C again to abort)...", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        result = lessons.run_lesson(lesson, args.size, seeds=seeds, on_event=printer.event,
                                    stop=lambda: stop["asked"], workdir=workdir)
    except (KeyboardInterrupt, ConfigError):
        raise
    except Exception as e:  # the lesson's own failure: say where, keep the traceback for a developer
        where = f" in {printer.current}" if printer.current else ""
        print(f"error: lesson {lesson.name!r} failed{where}: {type(e).__name__}: {e}", file=sys.stderr)
        if printer.finished:
            print(f"({printer.finished} run{'s' if printer.finished != 1 else ''} had finished; "
                  f"their figures are above)", file=sys.stderr)
        print("details (for a bug report):\n" + traceback.format_exc(), file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, previous)
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        _summary(result, out)
    if workdir is not None:
        print(f"the runs' folders are in {workdir}", file=sys.stderr)
    return STOPPED_EXIT if result.stopped else 0


def _list(all_lessons: dict, as_json: bool) -> int:
    if as_json:
        print(json.dumps([{"name": les.name, "title": les.title, "claim": les.claim, "metric": les.metric,
                           "conditions": list(les.conditions), "seeds": les.seeds, "budget_seconds": les.budget_s}
                          for les in all_lessons.values()]))
        return 0
    if not all_lessons:
        print("no lessons are installed")
        return 0
    width = max(len(n) for n in all_lessons)
    columns = min(100, shutil.get_terminal_size((100, 24)).columns)
    for les in all_lessons.values():
        print(f"{les.name:<{width}}  {les.title} ({fmt_about(les.budget_s)} on a 2-core CPU)")
        print(textwrap.fill(les.claim, columns, initial_indent=" " * (width + 2),
                            subsequent_indent=" " * (width + 2)))
    print("\nrun one: workbench lesson NAME  (--size small: a quick reduced version; --json: the figures)")
    return 0


def _keep_folder(path: str) -> Path:
    from workbench.engine.errors import ConfigError

    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"--keep {path}: is a file; give a new or empty folder for the runs' folders.")
    if p.is_dir() and any(p.iterdir()):
        raise ConfigError(f"--keep {path}: the folder is not empty; give a new or empty folder (the lesson "
                          f"writes seed0/, seed1/, ... there).")
    p.mkdir(parents=True, exist_ok=True)
    return p


class _RunPrinter:
    """The lesson's events as lines: one per finished run (and per finished prepare)."""

    def __init__(self, lesson, out):
        self.lesson, self.out = lesson, out
        self.current = ""      # "condition, seed N" of the run going on (named if it fails)
        self.finished = 0
        self._prepare_started: float | None = None
        self.width = max([len(c) for c in lesson.conditions] + [len(lesson.prepare_label or "")])

    def header(self, size: str, seeds) -> None:
        les, n = self.lesson, len(seeds)
        print(f"{les.title} ({les.name}{', small size: not the lesson’s figures' if size == 'small' else ''})",
              file=self.out)
        print(f"claim: {les.claim}", file=self.out)
        prep = f", after {les.prepare_label} once per seed" if les.prepare is not None else ""
        print(f"{', '.join(les.conditions)} × {n} seed{'s' if n != 1 else ''}{prep}; each run gives "
              f"{les.metric}" + (f"; budget {fmt_duration(les.budget_s)}" if size == "full" else ""), file=self.out)
        if les.how:
            print(les.how, file=self.out)
        print(file=self.out, flush=True)

    def event(self, e) -> None:
        from workbench.lessons import RunDone, Started

        if isinstance(e, Started):
            if self._prepare_started is not None:  # the seed's prepare ended when its first run starts
                print(f"  {self.lesson.prepare_label:<{self.width}}  seed {self.current_seed}  {'(prepared)':>9}  "
                      f"{time.perf_counter() - self._prepare_started:>7.1f} s", file=self.out, flush=True)
                self._prepare_started = None
            if self.lesson.prepare is not None and e.condition == self.lesson.prepare_label:
                self._prepare_started = time.perf_counter()
            self.current, self.current_seed = f"{e.condition}, seed {e.seed}", e.seed
        elif isinstance(e, RunDone):
            self.finished += 1
            extras = "".join(f"  {k.replace('_', ' ')} {v:.4g}" for k, v in e.extra.items()
                             if isinstance(v, (int, float)) and not isinstance(v, bool))
            print(f"  {e.condition:<{self.width}}  seed {e.seed}  {e.value:>9.4f}  {e.seconds:>7.1f} s{extras}",
                  file=self.out, flush=True)
            self.current = ""


def _summary(result, out) -> None:
    les = result.lesson
    if result.stopped:
        total = sum(len(c.values) for c in result.conditions.values())
        print(f"\nstopped: {total} run{'s' if total != 1 else ''} had finished", file=out)
    width = max([len(c) for c in les.conditions] + [len("condition")])
    print(f"\n{'condition':<{width}}  {'mean ± std':>17}  values per seed", file=out)
    for c in result.conditions.values():
        if c.values:
            per_seed = "  ".join(f"{v:.4f}" for v in c.values)
            print(f"{c.name:<{width}}  {c.mean:>8.4f} ± {c.std:<6.4f}  {per_seed}", file=out)
        else:
            print(f"{c.name:<{width}}  {'(no run finished)':>17}", file=out)
    if all(result.conditions[c].values for c in les.effect):
        print(f"\neffect ({result.effect_name}): {result.effect:+.4f}", file=out)
    print(result.verdict(), file=out)
    budget = f" (budget {fmt_duration(les.budget_s)})" if result.size == "full" else ""
    over = ", over its budget on this machine" if result.size == "full" and result.seconds > les.budget_s else ""
    print(f"took {fmt_duration(result.seconds)}{budget}{over}", file=out, flush=True)
