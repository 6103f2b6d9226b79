"""The numbers behind every curve of the workbench, shared by the window, the report and the CLI.

Imports neither Qt, pyqtgraph nor torch (numpy only), so the engine, the report and the widgets
all use this one copy:

- the metrics.jsonl schema: ``normalize_records`` reads rows of any version into the current form
  (docs/RUN_FOLDERS.md, "metrics.jsonl"), ``task_rows`` is the writer's rule for per-task rows;
- records into curves: ``metric_curves`` (and the names a person reads: ``curve_label``, ...);
- training steps into columns: ``MetricsBatch`` (what the window's bridge sends), ``step_columns``;
- smoothing: ``ema_smooth`` (incremental, TensorBoard's debiased EMA) and ``ema_weight_for``;
- min/max thinning: ``Envelope`` (an incremental pyramid for the live plot) and ``thin`` (once,
  for a report), the same rule: each bin keeps its minimum and its maximum, in order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

# =============================================================================================
# the metrics.jsonl schema

X_KEYS = ("step", "tokens", "time")
ROW_KEYS = ("step", "split", "task")                  # what a row is about; every other number is a metric
RUN_LEVEL = ("lr", "grad_norm", "tokens_per_s")      # one value per step for the whole run, not per task
METRIC_TITLES = {"loss": "Loss", "accuracy": "Accuracy", "ppl": "Perplexity", "lr": "Learning rate",
                 "grad_norm": "Gradient norm", "tokens_per_s": "Tokens per second"}


def task_rows(values: dict[str, float]) -> dict[str, dict[str, float]]:
    """A step's per-task numbers as one row each: {"cls": 0.7, "cls/accuracy": 0.8} ->
    {"cls": {"loss": 0.7, "accuracy": 0.8}} (a bare task name is its loss; "TASK/METRIC" is a
    column of TASK's row)."""
    rows: dict[str, dict[str, float]] = {}
    for name, value in values.items():
        task, sep, metric = name.partition("/")
        rows.setdefault(task, {})[metric if sep else "loss"] = value
    return rows


def normalize_records(records: Iterable[dict]) -> list[dict]:
    """metrics.jsonl records of any version in the current form: each row names what it holds.

    Before the schema, a multi-task run wrote each training metric of a task as a row of its own
    with a task named "TASK/METRIC" and the value in "loss" ({"task": "cls/accuracy", "loss": 0.8}).
    Such a row becomes the column METRIC of TASK's row at the same step and split (a new row where
    there is none, or where that row already has the column). Current rows pass unchanged (the same
    dict objects); the records given are never modified.
    """
    out: list[dict] = []
    where: dict[tuple, int] = {}  # (split, task) -> index in out of its row at the current step
    step = None
    for r in records:
        if r.get("step") != step:
            step, where = r.get("step"), {}
        split, task = r.get("split", "train"), r.get("task")
        if isinstance(task, str) and "/" in task and split != "event":
            task, _, metric = task.partition("/")
            i = where.get((split, task))
            if i is not None and metric not in out[i]:
                out[i] = {**out[i], metric: r.get("loss")}
                continue
            row = {k: v for k, v in r.items() if k != "loss"}
            row["task"], row[metric] = task, r.get("loss")
            r = row
        where[(split, r.get("task"))] = len(out)
        out.append(r)
    return out


# =============================================================================================
# records -> curves

Curves = dict[str, dict[str, dict[str, list[float]]]]


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def metric_curves(records: Sequence[dict]) -> Curves:
    """Current-form records (``normalize_records``) -> {metric: {series: {"step", "tokens", "time",
    "y"}}}, each a list of floats.

    Series are "SPLIT/TASK" ("train/lm", "val/cls"); the run-wide learning rate, gradient norm and
    speed are the series "train". ``tokens`` and ``time`` are NaN where a row has none (the
    per-task rows of a multi-task run).
    """
    out: Curves = {}
    nan = float("nan")
    for r in records:
        step = r.get("step")
        if step is None:
            continue
        split, task = str(r.get("split", "train")), str(r.get("task", "lm"))
        x = (float(step), float(r["tokens"]) if _number(r.get("tokens")) else nan,
             float(r["time"]) if _number(r.get("time")) else nan)
        for key, value in r.items():
            if key in X_KEYS or key in ROW_KEYS or not _number(value):
                continue
            series = split if key in RUN_LEVEL else f"{split}/{task}"
            c = out.setdefault(key, {}).setdefault(series, {"step": [], "tokens": [], "time": [], "y": []})
            c["step"].append(x[0])
            c["tokens"].append(x[1])
            c["time"].append(x[2])
            c["y"].append(float(value))
    return out


def curve_order(curves: Iterable[str]) -> list[str]:
    """Metrics in the order a reader wants them: loss, other results, then the run's mechanics."""
    rank = {"loss": 0, "lr": 90, "grad_norm": 91, "tokens_per_s": 92}
    return sorted(curves, key=lambda m: (rank.get(m, 10), m))


def metric_title(metric: str) -> str:
    return METRIC_TITLES.get(metric, metric.replace("_", " "))


def curve_label(metric: str, series: str) -> str:
    """("loss", "val/lm") -> "val loss · lm"; ("lr", "train") -> "learning rate"."""
    if metric in RUN_LEVEL:
        return metric_title(metric).lower()
    split, _, task = series.partition("/")
    return f"{split} {metric_title(metric).lower()} · {task}" if task else f"{split} {metric_title(metric).lower()}"


# =============================================================================================
# training steps -> columns


@dataclass(frozen=True)
class MetricsBatch:
    """Consecutive ``events.StepMetrics`` as columns (numpy arrays, one entry per step)."""

    step: np.ndarray
    tokens: np.ndarray
    elapsed: np.ndarray
    loss: np.ndarray
    lr: np.ndarray
    grad_norm: np.ndarray
    tokens_per_s: np.ndarray
    losses: dict[str, np.ndarray] = field(default_factory=dict)  # per task
    max_steps: int = 0
    group_grad_norms: dict[str, float] | None = None  # the newest per-group norms in the batch, if any

    def __len__(self) -> int:
        return len(self.step)

    @property
    def last_step(self) -> int:
        return int(self.step[-1])

    @classmethod
    def from_events(cls, items: Sequence) -> MetricsBatch:
        """``events.StepMetrics`` (one or more, in step order) -> one batch."""
        col = lambda name, dtype=np.float64: np.array([getattr(m, name) for m in items], dtype=dtype)  # noqa: E731
        tasks: list[str] = []
        for m in items:
            tasks += [t for t in m.losses if t not in tasks]
        losses = {t: np.array([m.losses.get(t, np.nan) for m in items], dtype=np.float64) for t in tasks}
        norms = next((dict(m.group_grad_norms) for m in reversed(items)
                      if getattr(m, "group_grad_norms", None)), None)
        return cls(step=col("step", np.int64), tokens=col("tokens", np.int64), elapsed=col("elapsed"),
                   loss=col("loss"), lr=col("lr"), grad_norm=col("grad_norm"),
                   tokens_per_s=col("tokens_per_s"), losses=losses, max_steps=int(items[-1].max_steps),
                   group_grad_norms=norms)


def step_columns(e) -> MetricsBatch:
    """One ``events.StepMetrics`` or a ``MetricsBatch`` -> a ``MetricsBatch`` (pages take either)."""
    return e if isinstance(e, MetricsBatch) else MetricsBatch.from_events([e])


# =============================================================================================
# smoothing


def _linear_recurrence(x: np.ndarray, a: float, s0: float = 0.0) -> np.ndarray:
    """Return s with s[k] = a * s[k-1] + x[k] and s[-1] = s0, vectorised (0 <= a < 1).

    Blocks of length B are solved in closed form, s[t] = a^t (s0 + sum_i x[i] a^-i), with B small
    enough that a^-B stays below 1e8 (no loss of precision); the block ends then form the same
    recurrence with factor a^B, solved the same way. Relative error ~1e-12.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    if n == 0:
        return np.empty(0)
    if a == 0.0:
        return x.copy()
    block = int(math.log(1e8) / -math.log(a)) if a < 1.0 else n
    if block < 4:
        # a < ~0.01: the influence of the past dies within a few terms, expand directly.
        s = x.copy()
        j, aj = 1, a
        while aj > 1e-18 and j < n + 1:
            if j < n:
                s[j:] += aj * x[:-j]
            s[j - 1] += aj * s0  # s0 contributes a^(k+1) to s[k]
            j += 1
            aj *= a
        return s
    block = min(block, n)
    m = -(-n // block)
    xp = np.zeros(m * block)
    xp[:n] = x
    xb = xp.reshape(m, block)
    p = a ** np.arange(block, dtype=np.float64)  # a^0 .. a^(B-1)
    local = p * np.cumsum(xb / p, axis=1)  # zero-start recurrence inside each block
    if m == 1:
        prev = np.array([s0])
    else:
        ends = _linear_recurrence(local[:, -1], a**block, s0)
        prev = np.concatenate(([s0], ends[:-1]))
    s = local + (p * a)[None, :] * prev[:, None]
    return s.ravel()[:n]


# An EMA lags a falling curve by about its time constant 1 / (1 - w) points: at w = 0.999 that is
# 1000 points, so on a run of a few hundred steps the "smoothed" line is the mean of everything and
# ends far above the data. A curve is therefore never averaged over more than 1/SMOOTH_SHARE of its
# points; the share is taken of its length rounded down to a power of two, so the weight used
# changes (and the curve is smoothed again) only log2(n) times in a run.
SMOOTH_SHARE = 16
SMOOTH_MAX = 0.999


def ema_weight_for(weight: float, n: int) -> float:
    """The EMA weight used on a curve of ``n`` points when the slider asks for ``weight``."""
    weight = min(float(weight), SMOOTH_MAX)
    if weight <= 0.0:
        return 0.0
    span = 1 << max(6, int(n).bit_length() - 1)  # n rounded down to a power of two, at least 64
    return min(weight, 1.0 - SMOOTH_SHARE / span)


def ema_smooth(y: np.ndarray, weight: float, state: tuple[float, int] = (0.0, 0)
               ) -> tuple[np.ndarray, tuple[float, int]]:
    """TensorBoard's debiased exponential moving average.

    For each finite value v: ``last = last * w + (1 - w) * v``, ``count += 1`` and the smoothed
    value is ``last / (1 - w ** count)``. Non-finite values are passed through unchanged and do
    not advance the average. ``state = (last, count)`` lets a long series be smoothed piece by
    piece; the new state is returned with the smoothed values.
    """
    y = np.asarray(y, dtype=np.float64)
    w = float(weight)
    last, count = state
    if y.size == 0:
        return np.empty(0), (last, count)
    if w <= 0.0:
        finite = np.isfinite(y)
        k = int(finite.sum())
        if k:
            last = float(y[finite][-1])
        return y.copy(), (last, count + k)
    finite = np.isfinite(y)
    all_finite = bool(finite.all())
    v = y if all_finite else y[finite]
    out = y.copy()
    if v.size:
        s = _linear_recurrence((1.0 - w) * v, w, last)
        counts = count + np.arange(1, v.size + 1, dtype=np.float64)
        debias = np.ones(v.size)
        # w ** count underflows past ~40 / -ln(w) steps; compute only where it matters.
        k = int(min(v.size, max(0.0, 45.0 / -math.log(w) - count + 1)))
        if k > 0:
            debias[:k] = 1.0 - np.exp(counts[:k] * math.log(w))
        sm = s / debias
        if all_finite:
            out = sm
        else:
            out[finite] = sm
        last, count = float(s[-1]), count + v.size
    return out, (last, count)


# =============================================================================================
# min/max thinning


class Buffer:
    """A growable 1-D numpy array (amortised O(1) append): the live plot keeps its points in them."""

    __slots__ = ("data", "n")

    def __init__(self, dtype=np.float64, capacity: int = 256):
        self.data = np.empty(capacity, dtype=dtype)
        self.n = 0

    def extend(self, values: np.ndarray) -> None:
        k = values.size
        need = self.n + k
        if need > self.data.size:
            grown = np.empty(max(need, 2 * self.data.size), dtype=self.data.dtype)
            grown[: self.n] = self.data[: self.n]
            self.data = grown
        self.data[self.n:need] = values
        self.n = need

    def truncate(self, n: int) -> None:
        self.n = min(self.n, max(0, n))

    def view(self) -> np.ndarray:
        return self.data[: self.n]

    def __len__(self) -> int:
        return self.n


class Envelope:
    """Min/max pyramid over a 1-D float array, for pixel-exact peak downsampling.

    Level k (k >= 1) holds, for each block of 4**k consecutive samples, the index of its minimum
    and of its maximum (NaN ignored). Appending n samples updates O(n + levels) entries.
    ``indices(i0, i1, bins)`` returns sorted sample indices whose polyline looks, at ``bins``
    pixel columns, exactly like the full data over [i0, i1), with coarse (but bound-preserving)
    data outside that range, so autorange and panning keep working.
    """

    FACTOR = 4
    OUTSIDE_BINS = 32

    def __init__(self):
        self.levels: list[tuple[Buffer, Buffer]] = []  # (argmin, argmax) per level 1..K
        self.n = 0

    def reset(self) -> None:
        self.levels.clear()
        self.n = 0

    def update(self, y: np.ndarray, start: int) -> None:
        """``y`` is the whole array; entries from ``start`` on are new or changed."""
        n = y.size
        start = max(0, min(start, self.n))
        f = self.FACTOR
        k, size = 1, f
        lo = start  # first changed index at the level below
        while size < n:
            if len(self.levels) < k:
                self.levels.append((Buffer(np.int64), Buffer(np.int64)))
            imin_buf, imax_buf = self.levels[k - 1]
            b0 = min(lo // f, imin_buf.n)  # first block to recompute (all of a new level)
            m_below = n if k == 1 else -(-n // (size // f))
            m = -(-m_below // f)
            c0, c1 = b0 * f, m_below
            pad = (-(c1 - c0)) % f
            if k == 1:
                vals = y[c0:c1]
                cmin = np.where(np.isnan(vals), np.inf, vals)
                cmax = np.where(np.isnan(vals), -np.inf, vals)
                base_min = base_max = np.arange(c0, c1, dtype=np.int64)
            else:
                pmin, pmax = self.levels[k - 2]
                base_min = pmin.data[c0:c1]
                base_max = pmax.data[c0:c1]
                cmin = y[base_min]
                cmax = y[base_max]
                cmin = np.where(np.isnan(cmin), np.inf, cmin)
                cmax = np.where(np.isnan(cmax), -np.inf, cmax)
            if pad:
                cmin = np.concatenate((cmin, np.full(pad, np.inf)))
                cmax = np.concatenate((cmax, np.full(pad, -np.inf)))
                base_min = np.concatenate((base_min, np.full(pad, base_min[-1])))
                base_max = np.concatenate((base_max, np.full(pad, base_max[-1])))
            amin = cmin.reshape(-1, f).argmin(axis=1)
            amax = cmax.reshape(-1, f).argmax(axis=1)
            rows = np.arange(amin.size) * f
            imin_buf.truncate(b0)
            imax_buf.truncate(b0)
            imin_buf.extend(base_min[rows + amin])
            imax_buf.extend(base_max[rows + amax])
            assert imin_buf.n == m
            lo = b0
            k += 1
            size *= f
        del self.levels[k - 1:]
        self.n = n

    # -- queries ----------------------------------------------------------------------------

    def _blocks(self, level: int, j0: int, j1: int) -> tuple[np.ndarray, np.ndarray]:
        """(argmin, argmax) of blocks j0..j1-1 at ``level`` (0: the samples themselves)."""
        if j1 <= j0:
            e = np.empty(0, dtype=np.int64)
            return e, e
        if level == 0:
            r = np.arange(j0, j1, dtype=np.int64)
            return r, r
        imin, imax = self.levels[level - 1]
        return imin.data[j0:j1], imax.data[j0:j1]

    @staticmethod
    def _span(y: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """(argmin, argmax) of y[lo:hi] as one bin (empty arrays for an empty range)."""
        if hi <= lo:
            e = np.empty(0, dtype=np.int64)
            return e, e
        seg = y[lo:hi]
        nan = np.isnan(seg)
        if nan.all():
            return np.array([lo]), np.array([lo])
        a = lo + int(np.argmin(np.where(nan, np.inf, seg)))
        b = lo + int(np.argmax(np.where(nan, -np.inf, seg)))
        return np.array([a]), np.array([b])

    def bins(self, y: np.ndarray, i0: int, i1: int, bins: int
             ) -> tuple[np.ndarray, np.ndarray] | None:
        """Per-bin (argmin, argmax) sample indices for drawing y[i0:i1] ``bins`` columns wide.

        Bins inside [i0, i1) (plus a margin) are about half a column wide, or finer; outside
        they are coarse (at most ~32 on each side) but keep the true extremes, so autorange
        and panning still see all the data. None means "few points: draw them all".
        """
        n = y.size
        bins = max(16, int(bins))
        if n <= 2 * bins:
            return None
        i0 = max(0, min(i0, n))
        i1 = max(i0, min(i1, n))
        f = self.FACTOR
        level = 0
        while level < len(self.levels) and (i1 - i0) / f ** (level + 1) >= bins / 2:
            level += 1
        size = f**level
        a = max(0, (i0 // size - 2) * size)
        b = min(n, (-(-i1 // size) + 2) * size)
        parts = []
        if a > 0:  # coarse data on the left
            lvl = level
            while lvl < len(self.levels) and a / f**lvl > self.OUTSIDE_BINS:
                lvl += 1
            bs = f**lvl
            full = a // bs
            parts.append(self._blocks(lvl, 0, full))
            parts.append(self._span(y, full * bs, a))
        parts.append(self._blocks(level, a // size, -(-b // size)))
        if b < n:  # coarse data on the right
            lvl = level
            while lvl < len(self.levels) and (n - b) / f**lvl > self.OUTSIDE_BINS:
                lvl += 1
            bs = f**lvl
            first = -(-b // bs)
            parts.append(self._span(y, b, min(n, first * bs)))
            m = self.levels[lvl - 1][0].n if lvl else n
            parts.append(self._blocks(lvl, first, m))
        imin = np.concatenate([p[0] for p in parts])
        imax = np.concatenate([p[1] for p in parts])
        return imin, imax

    def indices(self, y: np.ndarray, i0: int, i1: int, bins: int) -> np.ndarray | None:
        """Sorted sample indices whose polyline looks like the full data at ``bins`` columns
        (each bin's minimum and maximum in order), first and last sample included."""
        pair = self.bins(y, i0, i1, bins)
        if pair is None:
            return None
        imin, imax = pair
        idx = np.empty(2 * imin.size, dtype=np.int64)
        idx[0::2] = np.minimum(imin, imax)
        idx[1::2] = np.maximum(imin, imax)
        keep = np.ones(idx.size, dtype=bool)
        keep[1:] = idx[1:] != idx[:-1]
        idx = idx[keep]
        n = y.size
        if idx[0] != 0:
            idx = np.concatenate(([0], idx))
        if idx[-1] != n - 1:
            idx = np.concatenate((idx, [n - 1]))
        return idx


def thin(y: np.ndarray, bins: int) -> np.ndarray:
    """Indices of the points of ``y`` to draw ``bins`` columns wide: every point when there are few,
    else each bin's minimum and maximum in order, first and last point included (nothing averaged
    away). The live plot's ``Envelope`` rule over the whole curve, computed once (for a report)."""
    y = np.asarray(y, dtype=np.float64)
    env = Envelope()
    env.update(y, 0)
    idx = env.indices(y, 0, y.size, bins)
    return np.arange(y.size) if idx is None else idx
