"""Benchmarks of single widgets, without a window or a training run around them:

- ``redraw_benchmark``: a LossPlot with 10^6 points (redraw, append, log scale, resmoothing).
- ``paint_benchmark``: an AttentionHeatmap and an AttentionGrid from new matrices to pixels.

``workbench bench gui`` runs both (bench/gui.py); each also runs alone::

    python -m workbench.bench.widgets
"""

from __future__ import annotations

import time as _time
from typing import Sequence

import numpy as np
from PySide6 import QtWidgets

from workbench.gui.widgets.attention.grid import AttentionGrid
from workbench.gui.widgets.attention.heatmap import AttentionHeatmap
from workbench.gui.widgets.plot.loss_plot import LossPlot


def _ensure_app() -> QtWidgets.QApplication:
    app = QtWidgets.QApplication.instance()
    if app is None:
        app = QtWidgets.QApplication([])
    return app


def redraw_benchmark(n: int = 1_000_000, repeats: int = 9, width: int = 900,
                     height: int = 500) -> dict:
    """Time redraws of a LossPlot holding ``n`` points of "train/lm" (smoothed, with the raw
    curve behind) plus n/100 points of "val/lm". Milliseconds, median of ``repeats`` (and,
    for the first two, the minimum: the uncontended cost on a busy machine):

    - ``full_refresh_ms``: everything re-decimated for the view, handed to pyqtgraph and
      painted (``refresh(force=True)`` + ``grab()``): the cost of any redraw.
    - ``append_refresh_ms``: 100 new points appended, then refresh + paint (live training).
    - ``log_y_refresh_ms``: full refresh + paint with a log y axis.
    - ``resmooth_ms``: smoothing weight changed: EMA of all n points and the min/max pyramid
      recomputed, then painted (a one-off when the user moves the slider).
    - ``ingest_ms``: first refresh after adding the n points in one call (smoothing + pyramid
      built from scratch) + paint.
    """
    app = _ensure_app()
    rng = np.random.default_rng(0)
    steps = np.arange(n, dtype=np.float64)
    y = 1.5 + 2.5 * np.exp(-steps / (n / 6)) + 0.15 * rng.standard_normal(n)
    plot = LossPlot(title="benchmark", smoothing=0.6)
    plot.resize(width, height)
    plot.show()
    app.processEvents()

    cpu: dict[str, list[float]] = {}

    def timed(fn, key: str = "") -> float:
        t, c = _time.perf_counter(), _time.process_time()
        fn()
        plot.plot_widget.grab()
        if key:
            cpu.setdefault(key, []).append((_time.process_time() - c) * 1e3)
        return (_time.perf_counter() - t) * 1e3

    plot.add_points("train/lm", steps, y, tokens=steps * 4096, time=steps * 0.05)
    nv = max(1, n // 100)
    vs = steps[:: n // nv][:nv]
    plot.add_points("val/lm", vs, y[vs.astype(int)] + 0.1, tokens=vs * 4096, time=vs * 0.05)
    ingest = timed(plot.refresh)
    for _ in range(2):
        timed(lambda: plot.refresh(force=True))
    full = [timed(lambda: plot.refresh(force=True), "full") for _ in range(repeats)]
    points = plot.displayed_point_count()
    k = [n]

    def append():
        s = np.arange(k[0], k[0] + 100, dtype=np.float64)
        plot.add_points("train/lm", s, 1.5 + 0.15 * rng.standard_normal(100),
                        tokens=s * 4096, time=s * 0.05)
        k[0] += 100
        plot.refresh()

    append_t = [timed(append, "append") for _ in range(repeats)]
    weights = [0.5, 0.7, 0.8, 0.9, 0.95, 0.6, 0.75, 0.85, 0.99]
    resmooth = [timed(lambda w=w: plot.set_smoothing(w)) for w in weights[:repeats]]
    plot.set_log_y(True)
    timed(lambda: plot.refresh(force=True))
    log_t = [timed(lambda: plot.refresh(force=True), "log") for _ in range(repeats)]
    plot.close()
    plot.deleteLater()
    return {
        "points": int(n),
        "displayed_points": int(points),
        "full_refresh_ms": float(np.median(full)),
        "full_refresh_min_ms": float(np.min(full)),
        "full_refresh_cpu_ms": float(np.median(cpu["full"])),
        "append_refresh_ms": float(np.median(append_t)),
        "append_refresh_min_ms": float(np.min(append_t)),
        "append_refresh_cpu_ms": float(np.median(cpu["append"])),
        "log_y_refresh_ms": float(np.median(log_t)),
        "log_y_refresh_cpu_ms": float(np.median(cpu["log"])),
        "resmooth_ms": float(np.median(resmooth)),
        "ingest_ms": float(ingest),
    }


def _causal_softmax(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    t = shape[-1]
    logits = rng.standard_normal(shape).astype(np.float32) * 2.0
    mask = np.triu(np.ones((t, t), dtype=bool), k=1)
    logits[..., mask] = -np.inf
    logits -= logits.max(axis=-1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=-1, keepdims=True)


def paint_benchmark(sizes: Sequence[int] = (64, 256), repeats: int = 15,
                    grid_shape: tuple[int, int] = (8, 8)) -> dict:
    """Milliseconds from ``set_attention`` to pixels painted (``set`` + ``grab()``, which
    renders the whole widget), median of ``repeats`` new matrices, for each T in ``sizes``;
    also ``set_snapshot`` + paint of an AttentionGrid with ``grid_shape`` (layers, heads).
    Tokens stay the same between updates (as during training). ``*_min_ms``: the fastest
    run; ``*_cpu_ms``: median CPU time of this process; both nearer the uncontended cost
    when other programs share the cores."""
    app = _ensure_app()
    rng = np.random.default_rng(0)
    out: dict[str, float] = {}
    for t in sizes:
        view = AttentionHeatmap()
        view.resize(640, 600)
        view.show()
        tokens = [f"tok{i}" for i in range(t)]
        mats = [_causal_softmax(rng, (t, t)) for _ in range(repeats + 2)]
        view.set_attention(mats[0], tokens)
        app.processEvents()
        view.grab()
        times, cpu = [], []
        for m in mats[1:]:
            t0, c0 = _time.perf_counter(), _time.process_time()
            view.set_attention(m, tokens)
            view.grab()
            times.append((_time.perf_counter() - t0) * 1e3)
            cpu.append((_time.process_time() - c0) * 1e3)
        out[f"heatmap_T{t}_ms"] = float(np.median(times[1:]))
        out[f"heatmap_T{t}_cpu_ms"] = float(np.median(cpu))
        out[f"heatmap_T{t}_min_ms"] = float(np.min(times))
        view.close()
        view.deleteLater()
    L, H = grid_shape
    for t in sizes:
        grid = AttentionGrid()
        grid.resize(640, 640)
        grid.show()
        tokens = [f"tok{i}" for i in range(t)]
        snaps = [_causal_softmax(rng, (L, H, t, t)) for _ in range(4)]
        grid.set_snapshot(snaps[0], tokens)
        app.processEvents()
        grid.grab()
        times, cpu = [], []
        for k in range(repeats):
            t0, c0 = _time.perf_counter(), _time.process_time()
            grid.set_snapshot(snaps[k % 4], tokens)
            grid.grab()
            times.append((_time.perf_counter() - t0) * 1e3)
            cpu.append((_time.process_time() - c0) * 1e3)
        out[f"grid_{L}x{H}_T{t}_ms"] = float(np.median(times))
        out[f"grid_{L}x{H}_T{t}_cpu_ms"] = float(np.median(cpu))
        out[f"grid_{L}x{H}_T{t}_min_ms"] = float(np.min(times))
        grid.close()
        grid.deleteLater()
    app.processEvents()
    return out


if __name__ == "__main__":  # python -m workbench.bench.widgets
    print(redraw_benchmark())
    print(paint_benchmark())
