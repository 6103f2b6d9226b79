"""Following a run that another process writes: its folder's files turned back into engine events.

The window trains its own runs in a thread and hears of them through the reporter's events. A run
it did not start (a headless `workbench train`, a run on a shared disk) is known only by its folder,
so ``RunFollower.poll()`` reads what was added since the last poll and returns the same events the
trainer reports (``StepMetrics``, ``EvalResult``, ``AttentionSnapshot``, ``TaskBalance``,
``RunStarted``, ``Paused``, ``Resumed``, ``Finished``, ``Failed``): whoever shows a run's events
shows a followed run without a change. The caller decides how often to poll (the window: a timer).

- metrics.jsonl and balance.jsonl are read from where the last poll stopped (``JsonLines``: a file
  offset; a last line without its newline is kept back and read once it is complete). A file that
  shrinks or is replaced (a resume rewrites metrics.jsonl) is read again from its start, after a
  ``Restarted`` event;
- the rows of one step come as one event: a multi-task step is a "total" row and a row per task,
  so a step is handed on when the next one begins, or when a poll finds nothing new (the trainer
  writes a step's rows at once);
- checkpoints/: a ``CheckpointSaved`` for each new checkpoint;
- attention/: the newest snapshot not seen yet (one file a poll, as the window's own runs hand on
  only the newest: the attention page lists the rest from the folder);
- status.json (control.py) says whether the run trains, is paused or has ended and how; a run whose
  status says it trains but whose process is gone (run.lock, ``ownership.training_now``) died.
  Without status.json (a run by an older workbench) the end comes from run.lock and the metrics'
  event rows.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..curves import normalize_records
from .checkpoint import list_attention, load_attention, parse_metrics_line
from .control import END_STATES, read_status
from .events import (AttentionSnapshot, CheckpointSaved, EvalResult, Failed, Finished, Paused, Resumed, RunStarted,
                     StepMetrics, TaskBalance)
from .ownership import training_now

_STEP_FILE = re.compile(r"step_(\d+)\.safetensors$")
_CHECKPOINT = re.compile(r"step_(\d+)\.json$")  # complete once its JSON exists (checkpoint.py)
_ROW_KEYS = {"step", "split", "task", "tokens", "time", "lr", "tokens_per_s", "grad_norm", "skipped"}


@dataclass(frozen=True)
class Restarted:
    """The run's metrics were rewritten (a resume cut them after its checkpoint): forget what was
    shown; the events that follow replay the file from its start."""
    run_dir: str


class JsonLines:
    """The whole lines appended to a file since the last ``read()``, read from a kept offset."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.offset = 0
        self.line_no = 0          # lines handed out so far (for messages naming a line)
        self._tail = b""          # the start of a line whose newline has not been written yet
        self._inode: int | None = None

    def read(self) -> tuple[list[bytes], bool]:
        """(new complete lines, True when the file was replaced or shrank and is read from its start)."""
        try:
            st = os.stat(self.path)
        except OSError:  # not written yet (or gone): nothing new
            return [], False
        restarted = False
        if (self._inode is not None and st.st_ino != self._inode) or st.st_size < self.offset:
            self.offset, self._tail, self.line_no, restarted = 0, b"", 0, True
        self._inode = st.st_ino
        if st.st_size == self.offset:
            return [], restarted
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return [], restarted
        self.offset += len(data)
        lines = (self._tail + data).split(b"\n")
        self._tail = lines.pop()  # b"" after a final newline, else a line still being written
        return lines, restarted


class RunFollower:
    """``poll()`` -> the events of ``run_dir`` since the last poll (see the module docstring)."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.metrics = JsonLines(self.run_dir / "metrics.jsonl")
        self.balance = JsonLines(self.run_dir / "balance.jsonl")
        self.problems: list[str] = []   # lines that are not records: "metrics.jsonl line 12: not JSON"
        self.state = "waiting"          # waiting | preparing | running | paused | an END_STATES word | ended
        self.step = 0
        self.max_steps = 0
        self.ack: str | None = None     # the last control.json request the run carried out
        self._started = False
        self._pending: list[dict] = []  # the rows of the step being read
        self._attention_seen: set[int] = set()
        self._checkpoints_seen: set[int] = set()
        self._diverged: str | None = None  # the message of a "diverged" event row

    @property
    def ended(self) -> bool:
        return self.state in END_STATES or self.state == "ended"

    def poll(self) -> list:
        # status first: a run writes its last metrics before its final status, so an end read now
        # comes after every row it wrote
        status = read_status(self.run_dir)
        alive = training_now(self.run_dir) is not None
        out: list = []
        lines, restarted = self.metrics.read()
        if restarted:
            self._pending, self._attention_seen, self._started = [], set(), False
            out.append(Restarted(str(self.run_dir)))
        if status is not None and not self._started and status.get("state") != "waiting":
            out += self._run_started(status)
        new_rows = self._rows(lines)
        if new_rows and not self._started:  # a run that writes no status.json (an older workbench)
            out += self._run_started(None)
        out += self._steps(new_rows, flush=not lines)
        out += self._balance()
        snap = self._attention()
        if snap is not None:
            out.append(snap)
        out += self._checkpoints()
        changes = self._state(status, alive)
        if self.ended:  # the run wrote its last rows before its end: they come first
            out += self._steps([], flush=True)
        return out + changes

    # -- what the files say ------------------------------------------------------------------

    def _config_max_steps(self) -> int:
        try:
            import tomllib

            data = tomllib.loads((self.run_dir / "config.toml").read_text(encoding="utf-8"))
            return int(data.get("training", {}).get("max_steps", 0))
        except (OSError, ValueError, TypeError, AttributeError):
            return 0

    def _run_started(self, status: dict | None) -> list:
        info = (status or {}).get("started") or {}
        num = lambda key, default=0: info.get(key) if isinstance(info.get(key), int) else default  # noqa: E731
        self.max_steps = num("max_steps") or self._config_max_steps()
        self._started = True
        return [RunStarted(run_dir=str(self.run_dir), device=str(info.get("device", "unknown")),
                           precision=str(info.get("precision", "?")), params=num("params"),
                           start_step=num("start_step"), max_steps=self.max_steps,
                           tokens_per_step=num("tokens_per_step"), vocab_size=num("vocab_size"),
                           notes=("followed: another process trains this run",))]

    def _rows(self, lines: list[bytes]) -> list[dict]:
        rows = []
        for raw in lines:
            self.metrics.line_no += 1
            if not raw.strip():
                continue
            rec, why = parse_metrics_line(raw)
            if why:
                self.problems.append(f"metrics.jsonl line {self.metrics.line_no}: {why}")
                continue
            rows.append(rec)
        return rows

    def _steps(self, rows: list[dict], flush: bool) -> list:
        """Rows -> one event per step and split; the last group waits unless ``flush``."""
        out = []
        for r in rows:
            if r.get("split") == "event":
                if r.get("event") == "diverged":
                    self._diverged = str(r.get("message", ""))
                continue
            if self._pending and not self._same_group(self._pending, r):
                out += self._group_events(self._pending)
                self._pending = []
            self._pending.append(r)
        if flush and self._pending:
            out += self._group_events(self._pending)
            self._pending = []
        return out

    @staticmethod
    def _same_group(group: list[dict], r: dict) -> bool:
        first = group[0]
        if r.get("step") != first.get("step") or r.get("split") != first.get("split"):
            return False
        return not (r.get("split") == "train" and "lr" in r)  # a training step's first row has the lr

    def _group_events(self, rows: list[dict]) -> list:
        rows = normalize_records(rows)
        head, step = rows[0], int(rows[0].get("step", 0))
        self.step = max(self.step, step)
        extra = lambda r: {k: v for k, v in r.items() if k not in _ROW_KEYS and k != "loss"  # noqa: E731
                           and isinstance(v, (int, float)) and not isinstance(v, bool)}
        if head.get("split") == "val":
            losses = {r["task"]: float(r["loss"]) for r in rows if "task" in r and "loss" in r}
            metrics = {f"{r['task']}/{k}": float(v) for r in rows if "task" in r for k, v in extra(r).items()}
            return [EvalResult(step, int(head.get("tokens", 0)), float(head.get("time", 0.0)), losses, metrics)]
        if head.get("split") != "train" or "loss" not in head:
            return []
        if head.get("task") == "total":
            losses = {}
            for r in rows[1:]:
                if "task" in r and "loss" in r:
                    losses[r["task"]] = float(r["loss"])
                    # the trainer's StepMetrics leave accuracy out (it is validation's to show)
                    losses.update({f"{r['task']}/{k}": float(v) for k, v in extra(r).items() if k != "accuracy"})
        else:
            losses = {str(head.get("task", "lm")): float(head["loss"])}
        grad_norm = head.get("grad_norm")
        return [StepMetrics(step=step, max_steps=max(self.max_steps, step), tokens=int(head.get("tokens", 0)),
                            elapsed=float(head.get("time", 0.0)), loss=float(head["loss"]), losses=losses,
                            lr=float(head.get("lr", 0.0)),
                            grad_norm=float(grad_norm) if isinstance(grad_norm, (int, float)) else math.nan,
                            tokens_per_s=float(head.get("tokens_per_s", 0.0)))]

    def _balance(self) -> list:
        import json

        lines, _ = self.balance.read()
        out = []
        for raw in lines:
            try:
                b = json.loads(raw.decode("utf-8"))
                conflict = np.array([[math.nan if x is None else float(x) for x in row] for row in b["conflict"]],
                                    dtype=np.float64)
                out.append(TaskBalance(int(b["step"]), [str(t) for t in b["tasks"]],
                                       [float(w) for w in b["weights"]], conflict))
            except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                self.problems.append(f"balance.jsonl line {self.balance.line_no + 1}: not a balance record")
            self.balance.line_no += 1
        return out

    def _checkpoints(self) -> list:
        """A CheckpointSaved for each checkpoint not seen yet (its JSON is written last)."""
        folder = self.run_dir / "checkpoints"
        try:
            names = os.listdir(folder)
        except OSError:
            return []
        new = sorted(int(m.group(1)) for m in map(_CHECKPOINT.match, names)
                     if m and int(m.group(1)) not in self._checkpoints_seen)
        self._checkpoints_seen.update(new)
        return [CheckpointSaved(step, str(folder / f"step_{step:07d}.json")) for step in new]

    def _attention(self) -> AttentionSnapshot | None:
        new = []
        for path in list_attention(self.run_dir / "attention"):
            m = _STEP_FILE.search(path.name)
            if m and int(m.group(1)) not in self._attention_seen:
                new.append((int(m.group(1)), path))
        if not new:
            return None
        self._attention_seen.update(step for step, _ in new)
        step, path = max(new)
        try:
            step, arr, tokens, ids = load_attention(path)
        except Exception:  # moved aside (a resume from an earlier step) or not a snapshot: skip it
            return None
        return AttentionSnapshot(step, tokens, ids, arr)

    def _state(self, status: dict | None, alive: bool) -> list:
        """Paused / Resumed / Finished / Failed when the run's state changed."""
        before = self.state
        if status is not None:
            self.ack = status.get("ack")
            state = str(status.get("state"))
            step = status.get("step") if isinstance(status.get("step"), int) else self.step
            if state in ("running", "paused") and not alive:
                state = "ended"  # its process is gone without a word: killed, or its machine went down
        else:  # not started yet, or a run by a workbench that wrote no status.json
            step = self.step
            if not self._started:
                state = "preparing" if alive else "waiting"
            elif alive:
                state = "running"
            else:
                state = ("diverged" if self._diverged else
                         "completed" if self.max_steps and self.step >= self.max_steps else "ended")
        self.state = state
        if state == before:
            return []
        if state == "paused":
            return [Paused(step)]
        if state == "running":
            return [Resumed(step)] if before == "paused" else []
        if state in ("completed", "stopped", "early_stopped"):
            return [Finished(step, state, str(self.run_dir), {})]
        if state in ("diverged", "failed"):
            message = (status or {}).get("message") or self._diverged or f"The run {state} at step {step}."
            return [Failed(step, str(message), "", str(self.run_dir))]
        if state == "ended":
            return [Failed(step, f"The process training {self.run_dir} ended at step {step} without finishing "
                                 f"(it was killed, or its machine went down). Continue it with `workbench train "
                                 f"--resume {self.run_dir}`.", "", str(self.run_dir))]
        return []
