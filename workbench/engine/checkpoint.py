"""Run folders and checkpoints: safetensors for tensors, JSON for everything else, never pickle.

A run folder::

    config.toml          the exact experiment it trained with
    tokenizer.json       the tokenizer it used
    metrics.jsonl        one JSON object per line: step, split (train|val), task, loss, ...
    checkpoints/         step_000500.safetensors + step_000500.json (the JSON is written last,
                         so a checkpoint is complete exactly when its JSON exists)
    attention/           step_000100.safetensors: attention of the probe text, tokens in metadata

Every write goes to a temporary file in the same folder, is fsynced, then renamed over the target,
so a crash leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import base64
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

import numpy as np
from safetensors.numpy import load_file as load_numpy, save as save_numpy_bytes

from .errors import CheckpointError

if TYPE_CHECKING:
    import torch

# torch is imported inside the functions that need it, so that reading a run folder (listing runs,
# metrics, attention snapshots, reports) does not pay for loading torch.

FORMAT_VERSION = 1
_STEP_FILE = re.compile(r"step_(\d+)\.json$")


# -- atomic writes ---------------------------------------------------------------------------


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True))


# -- RNG states as JSON ----------------------------------------------------------------------


def tensor_to_b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.cpu().numpy().tobytes()).decode("ascii")


def b64_to_byte_tensor(s: str) -> torch.Tensor:
    import torch

    return torch.from_numpy(np.frombuffer(base64.b64decode(s), dtype=np.uint8).copy())


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
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def attention(self) -> Path:
        return self.path / "attention"

    @classmethod
    def new(cls, base: Path, name: str) -> "RunDir":
        """A fresh folder ``base/NAME-YYYYmmdd-HHMMSS`` (suffixed if that exists)."""
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "run"
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path(base) / f"{safe}-{stamp}"
        n = 1
        while path.exists():
            n += 1
            path = Path(base) / f"{safe}-{stamp}-{n}"
        return cls.create(path)

    @classmethod
    def create(cls, path: Path) -> "RunDir":
        path = Path(path)
        if path.exists() and any(path.iterdir()) and not (path / "config.toml").exists():
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
        if not self.metrics.exists():
            return
        kept = []
        for line in self.metrics.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    kept.append(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
        atomic_write_text(self.metrics, "".join(k + "\n" for k in kept))


def read_metrics(path: Path) -> list[dict]:
    """All records of a metrics.jsonl (a torn last line is skipped)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


class MetricsWriter:
    """Appends JSON lines; flushed at every write so a live reader (or a crash) sees whole lines."""

    def __init__(self, path: Path):
        self._f = open(path, "a", encoding="utf-8")

    def write(self, **record) -> None:
        self._f.write(json.dumps(record) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


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
