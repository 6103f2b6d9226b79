"""Run folders and checkpoints: safetensors for tensors, JSON for everything else, never pickle.

A run folder::

    config.toml          the exact experiment it trained with
    tokenizer.json       the tokenizer it used
    metrics.jsonl        one JSON object per line: step, split (train|val), task, then a column
                         per metric (loss, accuracy, ...); docs/RUN_FOLDERS.md has the schema
    balance.jsonl        multi-task runs: the tasks' weights and gradient conflict matrix
    checkpoints/         step_000500.safetensors + step_000500.json (the JSON is written last,
                         so a checkpoint is complete exactly when its JSON exists)
    attention/           step_000100.safetensors: attention of the probe text, tokens in metadata

Every write goes to a temporary file in the same folder, is fsynced, then renamed over the target,
so a crash leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import base64
import binascii
import errno
import json
import math
import os
import random
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

import numpy as np
from safetensors.numpy import load_file as load_numpy, save as save_numpy_bytes

from ..curves import normalize_records, task_rows
from ..fmt import human_bytes
from .errors import CheckpointError

if TYPE_CHECKING:
    import torch

# torch is imported inside the functions that need it, so that reading a run folder (listing runs,
# metrics, attention snapshots, reports) does not pay for loading torch.

FORMAT_VERSION = 1
_STEP_FILE = re.compile(r"step_(\d+)\.json$")


# -- atomic writes ---------------------------------------------------------------------------


class WriteError(CheckpointError):
    """A file could not be written (disk full, quota, read-only, permissions): names the file, the
    free space, and (set by whoever knows) which checkpoint is intact."""

    def __init__(self, message: str, path: Path, *, intact_noted: bool = False):
        super().__init__(message)
        self.path, self.intact_noted = Path(path), intact_noted


_WRITE_REASONS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
                  errno.EROFS: "the file system is read-only", errno.EFBIG: "the file is too large for the file system",
                  errno.EACCES: "permission denied", errno.EPERM: "permission denied"}


DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)


def free_bytes(folder: Path) -> int | None:
    """Bytes free for this user on the disk that holds ``folder`` (None when it cannot be told)."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def write_error(path: Path, e: OSError) -> WriteError:
    """A WriteError in words for an OSError met while writing ``path``."""
    free = free_bytes(Path(path).parent)
    reason = _WRITE_REASONS.get(e.errno, e.strerror or str(e))
    room = f"; {human_bytes(free)} free on its disk" if free is not None else ""
    return WriteError(f"{path}: could not be written: {reason}{room}.", path)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write through ``.NAME.<8 random chars>.tmp`` beside ``path`` (ownership.TEMP_FILE: the pattern leftovers
    are recognised by), fsync, rename. An OSError becomes a WriteError that names ``path``."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise write_error(path, e) from e
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True))


# -- training state: AdamW moments and RNG states ------------------------------------------------


def tensor_to_b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.cpu().numpy().tobytes()).decode("ascii")


def b64_to_byte_tensor(s: str) -> torch.Tensor:
    import torch

    return torch.from_numpy(np.frombuffer(base64.b64decode(s), dtype=np.uint8).copy())


def optimizer_tensors(optimizer: torch.optim.Optimizer, stash: dict, names: dict) -> tuple[dict, dict]:
    """AdamW's moments as tensors ``optim.NAME.exp_avg`` / ``optim.NAME.exp_avg_sq`` and its step
    counts as JSON ``{"steps": {NAME: n}}``, by parameter name (``names``: parameter -> name), for the
    optimizer's parameters and for ``stash`` (the state of parameters frozen for now)."""
    tensors, steps = {}, {}
    for p, st in list(optimizer.state.items()) + list(stash.items()):
        name = names[p]
        tensors[f"optim.{name}.exp_avg"] = st["exp_avg"]
        tensors[f"optim.{name}.exp_avg_sq"] = st["exp_avg_sq"]
        steps[name] = float(st["step"])
    return tensors, {"steps": steps}


def restore_optimizer(net: torch.nn.Module, optimizer: torch.optim.Optimizer, stash: dict,
                      tensors: dict, saved: dict) -> None:
    """Put the saved AdamW state back: into the optimizer for the parameters it trains, into
    ``stash`` for frozen ones. Every tensor goes to its parameter's device; AdamW keeps ``step`` on
    the CPU, except fused/capturable kernels, which read it on the device."""
    import torch

    in_optimizer = {p for g in optimizer.param_groups for p in g["params"]}
    on_device = bool(optimizer.defaults.get("fused") or optimizer.defaults.get("capturable"))
    for name, p in net.named_parameters():
        if f"optim.{name}.exp_avg" in tensors:
            target = optimizer.state if p in in_optimizer else stash
            target[p] = {
                "step": torch.tensor(saved["steps"][name], dtype=torch.float32,
                                     device=p.device if on_device else "cpu"),
                "exp_avg": tensors[f"optim.{name}.exp_avg"].to(p.device),
                "exp_avg_sq": tensors[f"optim.{name}.exp_avg_sq"].to(p.device),
            }


def rng_state(batch_gen: torch.Generator) -> dict:
    """The torch, CUDA, python and numpy RNG states and the batch generator's (the data position), as JSON."""
    import torch

    state = {
        "torch": tensor_to_b64(torch.get_rng_state()),
        "batches": tensor_to_b64(batch_gen.get_state()),
        "python": _py_state_to_json(random.getstate()),
        "numpy": _np_state_to_json(np.random.get_state()),
    }
    if torch.cuda.is_available():
        state["cuda"] = [tensor_to_b64(s) for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict, batch_gen: torch.Generator) -> None:
    import torch

    torch.set_rng_state(b64_to_byte_tensor(state["torch"]))
    batch_gen.set_state(b64_to_byte_tensor(state["batches"]))
    random.setstate(_py_state_from_json(state["python"]))
    np.random.set_state(_np_state_from_json(state["numpy"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([b64_to_byte_tensor(s) for s in state["cuda"]])


def training_checkpoint(s, experiment, *, rng: dict | None = None, watch: dict | None = None) -> tuple[dict, dict]:
    """The tensors and the JSON of a checkpoint of a run's state ``s`` (a trainer.RunState) after
    ``s.step`` steps: the weights ("model.*", "balance.*"; the tied output embedding stored once, as
    in GPT-2 files), AdamW's state, the grad scaler, the RNG states, the divergence watch, early
    stopping and the trainable groups. ``rng``, ``watch``: as they were after that step, when the
    checkpoint is written during the next one."""
    tensors = {k: v for k, v in s.net.state_dict().items() if k != "model.lm_head.weight"}
    optim, optim_meta = optimizer_tensors(s.optimizer, s.opt_stash, {p: n for n, p in s.net.named_parameters()})
    meta = {
        "step": s.step, "tokens": s.tokens_seen, "elapsed": s.elapsed,
        "experiment": experiment.to_dict(), "vocab_size": s.tokenizer.vocab_size,
        "optimizer": optim_meta, "scaler": s.scaler.state_dict() if s.scaler.is_enabled() else {},
        "last_val_loss": s.last_val_loss, "rng": rng or rng_state(s.batch_gen),
        "divergence": ({**watch, "good_checkpoint": s.watch.good_checkpoint} if watch is not None
                       else s.watch.state()),
        "skipped_in_row": s.skipped_in_row,
        "best": list(s.best) if s.best else None, "evals_since_best": s.evals_since_best,
        "trainable": sorted(s.trainable),
        "speed": s.speed.to_json(),  # what "auto" chose: a resume keeps it (exact)
    }
    return {**tensors, **optim}, meta


def restore_training_state(s, tensors: dict, meta: dict) -> None:
    """Put every state of a checkpoint (``training_checkpoint``) back into ``s``, a trainer.RunState
    built for the same experiment; a damaged or model-only checkpoint fails with its file named."""
    path = s.run_dir.checkpoint_path(meta["step"])
    if "rng" not in meta or "optimizer" not in meta:
        raise CheckpointError(f"{path}: holds a model but no training state (an imported model?), so it "
                              f"cannot be resumed; fine-tune from it with finetune.init instead.")
    try:  # the JSON's types were checked on reading; what is inside them is checked here
        missing, unexpected = s.net.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("optim.")},
                                                    strict=False)
        if [m for m in missing if m != "model.lm_head.weight"] or unexpected:
            raise CheckpointError(f"{s.run_dir.path}: checkpoint does not fit the model "
                                  f"(missing {missing[:3]}, unexpected {unexpected[:3]}).")
        restore_optimizer(s.net, s.optimizer, s.opt_stash, tensors, meta["optimizer"])
        if meta.get("scaler"):
            s.scaler.load_state_dict(meta["scaler"])
        s.step, s.tokens_seen, s.elapsed = meta["step"], meta["tokens"], meta["elapsed"]
        s.last_val_loss = meta.get("last_val_loss")
        s.best = tuple(meta["best"]) if meta.get("best") else None
        s.evals_since_best = meta.get("evals_since_best", 0)
        s.watch.load(meta.get("divergence"))
        skipped = meta.get("skipped_in_row", 0)
        s.skipped_in_row = skipped if isinstance(skipped, int) and not isinstance(skipped, bool) else 0
        s.verified_step = s.step  # only checkpoints whose loss was finite are written
        set_rng_state(meta["rng"], s.batch_gen)
    except (KeyError, TypeError, ValueError, RuntimeError, binascii.Error) as e:
        raise CheckpointError(f"{path}: damaged training state ({type(e).__name__}: {e}); resume from an "
                              f"earlier checkpoint.", exit_code=1) from None


def _py_state_to_json(st):
    version, internal, gauss = st
    return [version, list(internal), gauss]


def _py_state_from_json(st):
    version, internal, gauss = st
    return (version, tuple(internal), gauss)


def _np_state_to_json(st):
    name, keys, pos, has_gauss, gauss = st
    return [name, keys.tolist(), int(pos), int(has_gauss), float(gauss)]


def _np_state_from_json(st):
    name, keys, pos, has_gauss, gauss = st
    return (name, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss)


# -- run folders -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config.toml"

    @property
    def tokenizer(self) -> Path:
        return self.path / "tokenizer.json"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def balance(self) -> Path:
        return self.path / "balance.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def attention(self) -> Path:
        return self.path / "attention"

    @classmethod
    def new(cls, base: Path, name: str) -> "RunDir":
        """A fresh folder ``base/NAME-YYYYmmdd-HHMMSS`` (suffixed if that exists)."""
        return cls.create(cls.new_path(base, name))

    @staticmethod
    def new_path(base: Path, name: str) -> Path:
        """Make and return a new empty folder ``base/NAME-YYYYmmdd-HHMMSS[-N]``; mkdir, not a check
        for existence, decides, so two runs started in the same second get two folders."""
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "run"
        stamp = time.strftime("%Y%m%d-%H%M%S")
        Path(base).mkdir(parents=True, exist_ok=True)
        n = 1
        while True:
            path = Path(base) / (f"{safe}-{stamp}" + (f"-{n}" if n > 1 else ""))
            try:
                path.mkdir()
                return path
            except FileExistsError:
                n += 1

    @classmethod
    def create(cls, path: Path, *, checked: bool = False) -> "RunDir":
        """Make the run folder's parts; ``checked``: ownership.claim_run_folder has vetted the folder."""
        from .ownership import LOCK_NAME

        path = Path(path)
        if not checked and path.exists() and any(p.name != LOCK_NAME for p in path.iterdir()) and not (path / "config.toml").exists():
            raise CheckpointError(f"{path}: the folder exists and is not a run folder; choose an empty or new folder.")
        for sub in ("checkpoints", "attention"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        return cls(path)

    @classmethod
    def open(cls, path: Path) -> "RunDir":
        path = Path(path)
        if not (path / "config.toml").is_file():
            raise CheckpointError(f"{path}: not a run folder (no config.toml). Pass the folder a run was "
                                  f"written to, e.g. one listed by `workbench runs`.")
        return cls(path)

    def checkpoint_steps(self) -> list[int]:
        """Steps of the complete checkpoints, oldest first."""
        steps = []
        for p in self.checkpoints.glob("step_*.json"):
            m = _STEP_FILE.search(p.name)
            if m and p.with_suffix(".safetensors").exists():
                steps.append(int(m.group(1)))
        return sorted(steps)

    def checkpoint_path(self, step: int) -> Path:
        return self.checkpoints / f"step_{step:07d}.json"

    def intact_note(self) -> str:
        """Which checkpoint a failed write left intact, and how to go on from it."""
        steps = self.checkpoint_steps()
        if not steps:
            return "No checkpoint of this run had been saved yet."
        return (f"The latest complete checkpoint, step {steps[-1]} ({self.checkpoint_path(steps[-1])}), is intact: "
                f"free some space, then continue with `workbench train --resume {self.path}`.")

    def save_checkpoint(self, step: int, tensors: dict[str, "torch.Tensor"], meta: dict[str, Any], *,
                        keep: int, protect: set[int] = frozenset()) -> Path:
        """Write the checkpoint of ``step``, then keep the newest ``keep`` (and ``protect``).

        Room first: when the disk has less free space than the checkpoint needs (its tensor bytes, its
        JSON and a margin), the oldest checkpoints are pruned to ``keep - 1`` before writing (never
        below one complete checkpoint), so keeping N never needs room for N + 1. If that is still not
        enough, nothing is written and a WriteError says so, before trying."""
        tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
        need = sum(t.numel() * t.element_size() for t in tensors.values()) + len(json.dumps(meta)) + 64_000
        path = self.checkpoint_path(step)
        free = free_bytes(self.checkpoints)
        if free is not None and free < need:
            self.prune_checkpoints(max(1, keep - 1), protect)
            free = free_bytes(self.checkpoints)
            if free is not None and free < need:
                            raise WriteError(f"{path.with_suffix('.safetensors')}: not written: the checkpoint needs about "
                                 f"{human_bytes(need)} and its disk has {human_bytes(free)} free. " + self.intact_note(),
                                 path.with_suffix(".safetensors"), intact_noted=True)
        try:
            save_checkpoint(path, tensors, meta)
        except WriteError as e:
            raise WriteError(f"{e} {self.intact_note()}", e.path, intact_noted=True) from e
        self.prune_checkpoints(keep, protect)
        return path

    def checkpoint_to_resume(self, step: int | None) -> Path:
        """The checkpoint of ``step``, or the latest one when None (a resume's ``from_step``)."""
        if step is None:
            return self.latest_checkpoint()
        steps = self.checkpoint_steps()
        if step not in steps:
            raise CheckpointError(f"{self.checkpoints}: no checkpoint of step {step}; "
                                  f"the complete ones are at steps {', '.join(map(str, steps)) or '(none)'}.")
        return self.checkpoint_path(step)

    def read_resume(self, step: int | None, wanted) -> tuple[dict, dict]:
        """(tensors, meta) of the checkpoint a resume of this run with Experiment ``wanted``
        continues from (``step``: from_step, None = latest), once the settings may go on from it."""
        from .config import check_resumable, from_dict
        from .errors import ConfigError

        path = self.checkpoint_to_resume(step)
        tensors, meta = load_checkpoint(path)
        require_keys(meta, path, "experiment", "vocab_size")
        saved = from_dict(meta["experiment"], source=str(self.config), machine=False)
        check_resumable(saved, wanted, self.path)
        at, max_steps = meta.get("step", 0), wanted.training.max_steps
        if isinstance(at, int) and max_steps < at:  # would rewrite the run as shorter
            raise ConfigError(f"{self.path}: training.max_steps = {max_steps} is below "
                              f"the step the run continues from ({at}); set it to {at} or more.")
        return tensors, meta

    def latest_checkpoint(self) -> Path:
        steps = self.checkpoint_steps()
        if not steps:
            raise CheckpointError(f"{self.path}: no complete checkpoint in {self.checkpoints}; nothing to resume. "
                                  f"Start a new run instead.")
        return self.checkpoint_path(steps[-1])

    def prune_checkpoints(self, keep: int, protect: set[int] = frozenset()) -> None:
        """Keep the newest ``keep`` periodic checkpoints, and every step in ``protect`` (the best)."""
        for step in self.checkpoint_steps()[:-keep]:
            if step in protect:
                continue
            p = self.checkpoint_path(step)
            p.unlink(missing_ok=True)  # JSON first: the checkpoint stops counting before its tensors go
            p.with_suffix(".safetensors").unlink(missing_ok=True)

    def truncate_metrics_after(self, step: int) -> None:
        """On resume: drop metric lines a crashed run wrote after its last checkpoint."""
        truncate_jsonl_after(self.metrics, step)

    def append_balance(self, balance) -> None:
        """One line of balance.jsonl from an events.TaskBalance (the conflict matrix's pairs that were
        not measured are null: JSON has no NaN)."""
        conflict = [[None if isinstance(x, float) and math.isnan(x) else x for x in row]
                    for row in balance.conflict.round(5).tolist()]
        with open(self.balance, "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": balance.step, "tasks": balance.tasks, "weights": balance.weights,
                                "conflict": conflict}) + "\n")


def truncate_jsonl_after(path: Path, step: int) -> None:
    """Drop the lines of a JSON-lines log (metrics.jsonl, balance.jsonl) whose step is after ``step``."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                kept.append(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a crash
    atomic_write_text(path, "".join(k + "\n" for k in kept))


def _bad_record(rec) -> str:
    """Why a parsed metrics line is not a record the readers can use ('' when it is)."""
    if not isinstance(rec, dict):
        return f"a JSON {type(rec).__name__}, not an object"
    step = rec.get("step", 0)
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        return f"step {step!r} is not a whole number"
    for key in ("split", "task"):
        if key in rec and not isinstance(rec[key], str):
            return f"{key} {rec[key]!r} is not text"
    for key in ("loss", "time", "tokens"):
        v = rec.get(key)
        if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool)):
            return f"{key} {v!r} is not a number"
    return ""


def parse_metrics_line(raw: bytes) -> tuple[dict | None, str]:
    """One line of metrics.jsonl -> (record, "") or (None, why it is not a record)."""
    try:
        rec = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except json.JSONDecodeError:
        return None, "not JSON"
    why = _bad_record(rec)
    return (None, why) if why else (rec, "")


def read_metrics(path: Path, problems: list[str] | None = None) -> list[dict]:
    """The usable records of a metrics.jsonl. A torn last line (a crash while appending) is skipped
    quietly; any other line that is not a record is skipped and, when ``problems`` is given, named
    there ("metrics.jsonl line 12: not JSON"), so one damaged line never hides the rest. Rows of
    earlier versions come in the current form (``curves.normalize_records``): every reader of run
    folders reads through here."""
    out = []
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    last = len(lines) - 1 if lines and lines[-1] else len(lines) - 2  # the index of the last written line
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        rec, why = parse_metrics_line(raw)
        if why == "not JSON" and i == last and not raw.endswith(b"}"):
            continue  # cut short by a crash
        if why:
            if problems is not None:
                problems.append(f"{Path(path).name} line {i + 1}: {why}")
            continue
        out.append(rec)
    return normalize_records(out)


class MetricsWriter:
    """Appends JSON lines; flushed at every write so a live reader (or a crash) sees whole lines.
    ``tensorboard``: a ``tensorboard_log.TensorBoardLog`` that gets every row too (and the attention
    snapshots), when ``[logging] tensorboard`` is on."""

    def __init__(self, path: Path, tensorboard=None):
        self.path = Path(path)
        self.tensorboard = tensorboard
        try:
            self._f = open(path, "a", encoding="utf-8")
        except OSError as e:
            raise write_error(self.path, e) from e

    def write(self, **record) -> None:
        try:
            self._f.write(json.dumps(record) + "\n")
            self._f.flush()
        except OSError as e:
            raise write_error(self.path, e) from e
        if self.tensorboard is not None:
            self.tensorboard.row(record)

    def attention(self, step: int, attention: np.ndarray) -> None:
        """An attention snapshot (saved to attention/ by ``save_attention``): to TensorBoard, if on."""
        if self.tensorboard is not None:
            self.tensorboard.attention(step, attention)

    # The rows a run writes (the trainer calls these; readers: runs.py, report.py, the window).

    def train_step(self, step: int, tasks: list[str], loss: float, losses: dict[str, float], *, lr: float,
                   tokens: int, elapsed: float, tokens_per_s: float, grad_norm: float) -> None:
        """A training step: the loss (``task`` = the task's name, or "total" with one row per task
        after it, its metrics as columns); a grad_norm, or ``skipped`` where fp16's scaler skipped the update (JSON has no inf)."""
        common = dict(step=step, split="train", lr=lr, tokens=tokens, time=round(elapsed, 4),
                      tokens_per_s=round(tokens_per_s, 1))
        if math.isfinite(grad_norm):
            common["grad_norm"] = grad_norm
        else:
            common["skipped"] = True
        if len(tasks) == 1:
            self.write(task=tasks[0], loss=loss, **common)
            return
        self.write(task="total", loss=loss, **common)
        # one row per task with its metrics as columns: {"cls": 0.7, "cls/accuracy": 0.8} ->
        # {"task": "cls", "loss": 0.7, "accuracy": 0.8} (curves.task_rows)
        for task, columns in task_rows(losses).items():
            self.write(step=step, split="train", task=task, **columns)

    def validation(self, step: int, losses: dict[str, float], metrics: dict[str, float], *, tokens: int,
                   elapsed: float) -> None:
        """One row per task: its validation loss and its other metrics ("TASK/NAME" -> NAME)."""
        for name, loss in losses.items():
            extra = {k.split("/", 1)[1]: v for k, v in metrics.items() if k.startswith(name + "/")}
            self.write(step=step, split="val", task=name, loss=loss, tokens=tokens, time=round(elapsed, 4), **extra)

    def event(self, step: int, event: str, message: str) -> None:
        """Why a run ended (``diverged``): `workbench runs` shows it; readers of curves skip it."""
        self.write(step=step, split="event", event=event, message=message)

    def close(self) -> None:
        try:
            self._f.close()
        except OSError:
            pass  # the failed write was reported already
        if self.tensorboard is not None:
            self.tensorboard.close()
            self.tensorboard = None


# -- checkpoints -----------------------------------------------------------------------------


def save_checkpoint(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write ``path`` (.json) and its .safetensors twin; tensors first, JSON last."""
    from safetensors.torch import save as save_torch_bytes

    path = Path(path)
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write_bytes(path.with_suffix(".safetensors"), save_torch_bytes(tensors))
    atomic_write_json(path, {"format": FORMAT_VERSION, **meta})
    return path


# What a checkpoint's JSON holds: key -> the JSON types it may have. Every checkpoint has a format
# and a step; experiment and vocab_size rebuild the model (``require_keys``); the rest resume
# training (an imported GPT-2 has no RNG state).
_NUMBER = (int, float)
_META_REQUIRED = {"format": (int,), "step": (int,)}
_META_OPTIONAL = {"experiment": (dict,), "vocab_size": (int,), "tokens": _NUMBER, "elapsed": _NUMBER,
                  "optimizer": (dict,), "scaler": (dict,),
                  "last_val_loss": _NUMBER + (type(None),), "rng": (dict,), "best": (list, type(None)),
                  "evals_since_best": (int,), "trainable": (list,), "imported_from": (dict,)}
_JSON_TYPES = {int: "a whole number", float: "a number", dict: "an object", list: "a list", str: "text",
               type(None): "null"}


def read_checkpoint_meta(path: Path) -> dict[str, Any]:
    """A checkpoint's JSON, checked key by key, so a damaged or hand-edited one fails with the
    file and the key instead of somewhere deep in the loader."""
    path = Path(path)
    try:
        meta = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint.") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot be read ({e.strerror}).") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
        raise CheckpointError(f"{path}: damaged checkpoint metadata ({e}); use an earlier checkpoint.",
                              exit_code=1) from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: damaged checkpoint metadata (a JSON {type(meta).__name__}, not an "
                              f"object); use an earlier checkpoint.", exit_code=1)
    if meta.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {meta.get('format')!r}, this workbench reads "
                              f"{FORMAT_VERSION}.", exit_code=1)
    require_keys(meta, path, *_META_REQUIRED)
    for key, kinds in {**_META_REQUIRED, **_META_OPTIONAL}.items():
        if key not in meta:
            continue
        value = meta[key]
        if isinstance(value, bool) or not isinstance(value, kinds):
            want = " or ".join(_JSON_TYPES[k] for k in kinds)
            raise CheckpointError(f"{path}: damaged checkpoint metadata: {key!r} should be {want}, not "
                                  f"{json.dumps(value)[:60]}; use an earlier checkpoint.", exit_code=1)
    for key in ("step", "vocab_size", "tokens", "elapsed", "evals_since_best"):
        value = meta.get(key)
        if value is not None and value < (1 if key == "vocab_size" else 0):
            raise CheckpointError(f"{path}: damaged checkpoint metadata: {key!r} = {value} is out of range.",
                                  exit_code=1)
    return meta


def require_keys(meta: dict, path: Path, *keys: str) -> None:
    for key in keys:
        if key not in meta:
            raise CheckpointError(f"{path}: damaged checkpoint metadata: the key {key!r} is missing; "
                                  f"use an earlier checkpoint.", exit_code=1)


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors.torch import load_file as load_torch

    path = Path(path)
    if path.suffix == ".safetensors":
        path = path.with_suffix(".json")
    meta = read_checkpoint_meta(path)
    try:
        tensors = load_torch(str(path.with_suffix(".safetensors")))
    except Exception as e:  # safetensors raises its own types for truncated files
        raise CheckpointError(f"{path.with_suffix('.safetensors')}: cannot read tensors ({e}); "
                              f"use an earlier checkpoint.") from None
    return tensors, meta


# -- attention snapshots ---------------------------------------------------------------------


def save_attention(folder: Path, step: int, attention: np.ndarray, tokens: list[str], ids: list[int]) -> Path:
    """attention: (n_layer, n_head, T, T); stored as float16 (plenty for weights in 0..1)."""
    path = Path(folder) / f"step_{step:07d}.safetensors"
    meta = {"step": str(step), "tokens": json.dumps(tokens), "ids": json.dumps(ids)}
    atomic_write_bytes(path, save_numpy_bytes({"attention": attention.astype(np.float16)}, metadata=meta))
    return path


def load_attention(path: Path) -> tuple[int, np.ndarray, list[str], list[int]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata()
    arr = load_numpy(str(path))["attention"].astype(np.float32)
    return int(meta["step"]), arr, json.loads(meta["tokens"]), json.loads(meta["ids"])


def list_attention(folder: Path) -> list[Path]:
    return sorted(Path(folder).glob("step_*.safetensors"))
