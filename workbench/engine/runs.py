"""The runs on disk: a summary of each (settings and results), and the difference of two configs."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import checkpoint as ckpt
from .config import diff_experiments, load_experiment
from .errors import WorkbenchError


@dataclass
class RunSummary:
    path: Path
    name: str
    started: float                 # seconds since the epoch (config.toml's mtime)
    steps: int                     # last step with metrics
    max_steps: int
    status: str                    # completed | early stopped | stopped | no metrics
    model: str                     # "4x128, 4 heads, ctx 64"
    tokenizer: str                 # "char 65"
    tasks: list[str]
    val: dict[str, float] = field(default_factory=dict)   # last validation value per task/metric
    best: dict | None = None       # best.json of early stopping
    seconds: float = 0.0           # training time (pauses excluded)
    error: str = ""

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["path"] = str(self.path)
        return d


def summarize(path: Path) -> RunSummary:
    path = Path(path)
    run = ckpt.RunDir.open(path)
    try:
        exp = load_experiment(run.config)
    except WorkbenchError as e:
        return RunSummary(path, path.name, run.config.stat().st_mtime, 0, 0, "unreadable config", "", "", [],
                          error=str(e))
    m = exp.model
    s = RunSummary(
        path=path, name=exp.name, started=run.config.stat().st_mtime, steps=0, max_steps=exp.training.max_steps,
        status="no metrics", model=f"{m.n_layer}x{m.n_embd}, {m.n_head} heads, ctx {m.block_size}",
        tokenizer=f"{exp.tokenizer.kind} {exp.tokenizer.vocab_size}", tasks=[t.task_name for t in exp.tasks],
    )
    if run.metrics.exists():
        for rec in ckpt.read_metrics(run.metrics):
            s.steps = max(s.steps, rec.get("step", 0))
            if rec.get("time") is not None:
                s.seconds = max(s.seconds, rec["time"])
            if rec.get("split") == "val":
                task = rec.get("task", "?")
                s.val[task] = rec["loss"]
                for k, v in rec.items():
                    if k not in ("step", "split", "task", "loss", "tokens", "time") and isinstance(v, (int, float)):
                        s.val[f"{task}/{k}"] = v
        s.status = "completed" if s.steps >= s.max_steps else "stopped" if s.steps else "no metrics"
    best = path / "best.json"
    if best.exists():
        s.best = json.loads(best.read_text())
        if s.steps < s.max_steps:
            s.status = "early stopped"
    return s


def list_runs(base: Path) -> list[RunSummary]:
    """Every run folder directly under ``base``, newest first."""
    base = Path(base)
    if not base.is_dir():
        return []
    out = [summarize(p) for p in base.iterdir() if (p / "config.toml").is_file()]
    return sorted(out, key=lambda r: r.started, reverse=True)


def config_diff(a: Path, b: Path) -> list[tuple[str, object, object]]:
    """(setting, value in a, value in b) for every setting that differs between two runs."""
    return diff_experiments(load_experiment(ckpt.RunDir.open(Path(a)).config),
                            load_experiment(ckpt.RunDir.open(Path(b)).config))


def format_started(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))
