"""The runs on disk: a summary of each (settings and results), and the difference of two configs.

Listing runs reads only TOML and JSON and does not import torch (checkpoint.py imports it inside
the functions that handle tensors); tests/engine/test_report.py checks it in a fresh process.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import checkpoint as ckpt
from .config import diff_experiments, load_experiment
from .errors import CheckpointError, WorkbenchError
from .control import read_status
from .ownership import training_now


@dataclass
class RunSummary:
    path: Path
    name: str
    started: float                 # seconds since the epoch (config.toml's mtime)
    steps: int                     # last step with metrics
    max_steps: int
    status: str                    # completed | early stopped | stopped | diverged | no metrics | training (locked) | paused
    model: str                     # "4x128, 4 heads, ctx 64"
    tokenizer: str                 # "char 65"
    tasks: list[str]
    val: dict[str, float] = field(default_factory=dict)   # last validation value per task/metric
    best: dict | None = None       # best.json of early stopping
    seconds: float = 0.0           # training time (pauses excluded)
    error: str = ""
    damaged: list[str] = field(default_factory=list)  # "FILE: why" for each damaged file, listed anyway

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["path"] = str(self.path)
        return d


def summarize(path: Path) -> RunSummary:
    """What a run folder says about its run. A damaged file (config.toml, a metrics line, best.json,
    the latest checkpoint's JSON) never raises: the run is listed with the reason in ``damaged``."""
    path = Path(path)
    run = ckpt.RunDir.open(path)
    try:
        started = run.config.stat().st_mtime
    except OSError:
        started = 0.0
    try:
        exp = load_experiment(run.config)
    except (WorkbenchError, OSError, ValueError) as e:
        return RunSummary(path, path.name, started, 0, 0, "unreadable config", "", "", [], error=str(e),
                          damaged=[f"config.toml: {e}"])
    m = exp.model
    s = RunSummary(
        path=path, name=exp.name, started=started, steps=0, max_steps=exp.training.max_steps,
        status="no metrics", model=f"{m.n_layer}x{m.n_embd}, {m.n_head} heads, ctx {m.block_size}",
        tokenizer=f"{exp.tokenizer.kind} {exp.tokenizer.vocab_size}", tasks=[t.task_name for t in exp.tasks],
    )
    if run.metrics.exists():
        diverged = False
        problems: list[str] = []
        try:
            records = ckpt.read_metrics(run.metrics, problems)
        except OSError as e:
            records, problems = [], [f"metrics.jsonl: cannot be read ({e.strerror or e})"]
        if problems:
            s.damaged.append(problems[0] + (f" (and {len(problems) - 1} more damaged lines)" if len(problems) > 1
                                            else "") + "; the line is left out")
        for rec in records:
            if rec.get("split") == "event":  # why the run ended, written by the trainer
                diverged = diverged or rec.get("event") == "diverged"
                continue
            s.steps = max(s.steps, rec.get("step", 0))
            if rec.get("time") is not None:
                s.seconds = max(s.seconds, rec["time"])
            if rec.get("split") == "val" and rec.get("loss") is not None:
                task = rec.get("task", "?")
                s.val[task] = rec["loss"]
                for k, v in rec.items():
                    if k not in ("step", "split", "task", "loss", "tokens", "time") and isinstance(v, (int, float)) \
                            and not isinstance(v, bool):
                        s.val[f"{task}/{k}"] = v
        s.status = "completed" if s.steps >= s.max_steps else "stopped" if s.steps else "no metrics"
        if diverged:
            s.status = "diverged"
    best = path / "best.json"
    if best.exists():
        try:
            b = json.loads(best.read_text(encoding="utf-8"))
            if not (isinstance(b, dict) and isinstance(b.get("step"), int)):
                raise ValueError("not an object with a step")
            s.best = b
            if s.steps < s.max_steps:
                s.status = "early stopped"
        except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            s.damaged.append(f"best.json: {e}")
    steps = run.checkpoint_steps()
    if steps:
        latest = run.checkpoint_path(steps[-1])
        try:
            meta = json.loads(latest.read_text(encoding="utf-8"))
            if not (isinstance(meta, dict) and meta.get("step") == steps[-1]):
                raise ValueError("not a checkpoint of this step")
        except (OSError, ValueError) as e:
            s.damaged.append(f"checkpoints/{latest.name}: {e}; resume, generate and export need an intact "
                             f"checkpoint")
    if training_now(path) is not None:
        status = read_status(path)  # control.py: a run paused through its control.json says so
        s.status = "paused" if status is not None and status["state"] == "paused" else "training"
    if s.damaged and not s.error:
        s.error = "damaged: " + "; ".join(s.damaged)
    return s


@dataclass
class TaskScore:
    """One validation metric of a run's task, as its metrics.jsonl recorded it."""

    run: Path
    task: str
    metric: str
    value: float
    step: int
    which: str                     # "best" (the highest value) | "last"


def task_score(path: Path, *, metric: str = "accuracy", which: str = "best", task: str | None = None,
               data: str | Path | None = None) -> TaskScore:
    """The best (highest) or last validation ``metric`` of one task of a run, e.g. the accuracy a
    fine-tuned run reached, to compare an in-context evaluation of the same task with.

    The task: the one named ``task``; else the one trained on the file ``data`` (same path, or at
    least the same file name); else the first task with that metric. Raises CheckpointError, in words,
    when the run recorded no such metric. ``path``: a run folder or one of its checkpoints.
    """
    if which not in ("best", "last"):
        raise ValueError(f"which = {which!r}: best or last")
    path = Path(path)
    if path.is_file():  # RUN/checkpoints/step_N.json
        path = path.parent.parent
    run = ckpt.RunDir.open(path)
    have: dict[str, list[tuple[int, float]]] = {}
    if run.metrics.exists():
        for rec in ckpt.read_metrics(run.metrics):
            v = rec.get(metric)
            if rec.get("split") == "val" and isinstance(v, (int, float)) and not isinstance(v, bool):
                have.setdefault(str(rec.get("task", "?")), []).append((int(rec.get("step", 0)), float(v)))
    if not have:
        raise CheckpointError(f"{path}: no validation {metric} in metrics.jsonl; it is recorded for labelled "
                              f"tasks (classification, entailment, ...) when the run validates. Type the value "
                              f"instead.")
    name = task
    if name is None and data:
        try:
            trained = {t.task_name: t.train for t in load_experiment(run.config).tasks}
        except WorkbenchError:
            trained = {}
        want = Path(data)
        for match in (lambda f: Path(f).resolve() == want.resolve(), lambda f: Path(f).name == want.name):
            name = next((n for n, f in trained.items() if f and n in have and match(f)), None)
            if name:
                break
    name = name or next(iter(have))
    if name not in have:
        raise CheckpointError(f"{path}: no validation {metric} of task {name!r}; the run has it for "
                              f"{', '.join(have)}.")
    points = have[name]
    step, value = max(points, key=lambda sv: (sv[1], -sv[0])) if which == "best" else points[-1]
    return TaskScore(path, name, metric, value, step, which)


def list_runs(base: Path) -> list[RunSummary]:
    """Every run folder directly under ``base``, newest first."""
    base = Path(base)
    if not base.is_dir():
        return []
    out = [summarize_listed(p) for p in base.iterdir() if _written_by_training(p)]
    return sorted(out, key=lambda r: r.started, reverse=True)


def _written_by_training(path: Path) -> bool:
    """config.toml beside what only training (or import) writes; a report folder also holds a
    config.toml, but no tokenizer, metrics.jsonl or checkpoints/."""
    return (path / "config.toml").is_file() and any(
        (path / name).exists() for name in ("tokenizer.json", "metrics.jsonl", "checkpoints"))


def summarize_listed(path: Path) -> RunSummary:
    """summarize(), and for anything it did not foresee (a folder unreadable for permissions, a file
    vanishing while read) a row marked damaged with the reason: one run never hides the others."""
    try:
        return summarize(path)
    except Exception as e:  # noqa: BLE001 - the reason is shown in the row
        why = f"{type(e).__name__}: {e}"
        return RunSummary(Path(path), Path(path).name, 0.0, 0, 0, "unreadable", "", "", [], error=why, damaged=[why])


def config_diff(a: Path, b: Path) -> list[tuple[str, object, object]]:
    """(setting, value in a, value in b) for every setting that differs between two runs."""
    return diff_experiments(load_experiment(ckpt.RunDir.open(Path(a)).config),
                            load_experiment(ckpt.RunDir.open(Path(b)).config))


def format_started(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))
