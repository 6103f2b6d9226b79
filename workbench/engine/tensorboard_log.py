"""TensorBoard event files beside metrics.jsonl (``[logging] tensorboard = true``): RUN/tensorboard/.

A run on a cluster is often watched in TensorBoard. The rows the run writes to metrics.jsonl go
here too, as scalars (``checkpoint.MetricsWriter`` hands every row over: one place decides what a
row holds), and each attention snapshot as one image per layer (its heads side by side). The
writer is PyTorch's ``torch.utils.tensorboard.SummaryWriter``, which needs the ``tensorboard``
package: the optional extra ``pip install "gpt-workbench[tensorboard]"``. ``check_available`` says
so, naming the setting, before a run starts.

Tags: ``METRIC/SPLIT/TASK`` (``loss/train/lm``, ``loss/val/lm``, ``accuracy/val/cls``; a multi-task
run's weighted sum is ``loss/train/total``), and the run-wide ``lr``, ``grad_norm``,
``tokens_per_s``. TensorBoard groups cards by the first part, so a metric's splits and tasks sit
together.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ConfigError

INSTALL = 'pip install "gpt-workbench[tensorboard]"'
RUN_WIDE = ("lr", "grad_norm", "tokens_per_s")   # columns of a training step's first row
NOT_SCALARS = ("step", "tokens", "time")          # the x axes, not curves


def installed() -> bool:
    """Whether the tensorboard package can be imported (looked up, not imported: cheap)."""
    import importlib.util

    try:
        return importlib.util.find_spec("tensorboard") is not None
    except (ImportError, ValueError):  # ValueError: sys.modules holds None for it
        return False


def missing_message(detail: str = "") -> str:
    return (f"logging.tensorboard = true needs the TensorBoard package, which is not installed"
            f"{f' ({detail})' if detail else ''}. Install it with: {INSTALL}; or set logging.tensorboard = false.")


def check_available() -> None:
    """Raise a ConfigError naming the setting and the install command when TensorBoard is missing."""
    try:
        import tensorboard  # noqa: F401  (torch.utils.tensorboard needs it)
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError as e:
        raise ConfigError(missing_message(str(e))) from None


def row_scalars(row: dict) -> dict[str, float]:
    """One metrics.jsonl row -> {tag: value} (nothing for an event row)."""
    split, task = row.get("split"), row.get("task", "")
    if split not in ("train", "val"):
        return {}
    out = {}
    for key, value in row.items():
        if key in NOT_SCALARS or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        out[key if key in RUN_WIDE else f"{key}/{split}/{task}"] = float(value)
    return out


def attention_image(attention: np.ndarray, layer: int, min_size: int = 128) -> np.ndarray:
    """One layer's heads side by side, a 1-pixel gap between them, as a (1, H, W) image in 0..1,
    enlarged by a whole factor so that a short probe stays visible."""
    heads = np.asarray(attention[layer], dtype=np.float32)  # (n_head, T, T)
    n, T, _ = heads.shape
    img = np.ones((T, n * (T + 1) - 1), dtype=np.float32)
    for h in range(n):
        img[:, h * (T + 1):h * (T + 1) + T] = heads[h]
    k = max(1, min_size // max(T, 1))
    return np.kron(img, np.ones((k, k), dtype=np.float32))[None].clip(0.0, 1.0)


class TensorBoardLog:
    """Event files in ``folder``. ``purge_step``: a resumed run drops what an earlier run of the
    folder wrote from that step on, as metrics.jsonl does."""

    def __init__(self, folder: str | Path, purge_step: int | None = None):
        from torch.utils.tensorboard import SummaryWriter

        self.folder = Path(folder)
        self._w = SummaryWriter(log_dir=str(self.folder), purge_step=purge_step, flush_secs=10)

    def row(self, row: dict) -> None:
        step = int(row.get("step", 0))
        for tag, value in row_scalars(row).items():
            self._w.add_scalar(tag, value, step)

    def attention(self, step: int, attention: np.ndarray) -> None:
        for layer in range(attention.shape[0]):
            self._w.add_image(f"attention/layer_{layer}", attention_image(attention, layer), step,
                              dataformats="CHW")

    def close(self) -> None:
        self._w.close()


def tensorboard_for(exp, run_dir: Path, step: int, resumed: bool) -> "TensorBoardLog | None":
    """RUN/tensorboard/'s writer when ``[logging] tensorboard`` is on, else None; a resumed run drops
    the events after its checkpoint's step."""
    if not exp.logging.tensorboard:
        return None
    return TensorBoardLog(Path(run_dir) / "tensorboard", purge_step=step + 1 if resumed else None)
