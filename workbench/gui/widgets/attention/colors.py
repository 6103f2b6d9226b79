"""Colours of the attention views: colour maps as lookup tables, automatic levels, the mask grey,
and the axis and label styling the heatmap and the grid share."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtGui

from ... import theme

MASK_COLOR = theme.ATTENTION_MASK  # the causal triangle (workbench/palette.py: the report masks with it too)
FRAME_COLOR = "#c8c8c8"


def get_colormap(name: str) -> pg.ColorMap:
    return pg.colormap.get(name)


def lookup_table(name: str) -> np.ndarray:
    return get_colormap(name).getLookupTable(nPts=256, alpha=False)


def robust_max(values: np.ndarray, q: float = 99.0, sample: int = 200_000) -> float:
    """The q-th percentile of the finite values (a subsample of large arrays), for auto
    levels: the plain maximum is useless for causal attention, whose first row is always
    [1, 0, 0, ...]."""
    v = np.asarray(values, dtype=np.float32).ravel()
    if v.size > sample:
        v = v[:: v.size // sample + 1]
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 1.0
    hi = float(np.percentile(v, q))
    if not hi > 0:
        hi = float(v.max())
    return hi if hi > 0 else 1.0


def lookup_table_rgba(name: str) -> np.ndarray:
    """(258, 4) uint8: the map's 256 colours, transparent (for NaN: gaps), mask grey (-inf)."""
    lut = np.zeros((258, 4), dtype=np.uint8)
    lut[:256, :3] = lookup_table(name)[:, :3]
    lut[:256, 3] = 255
    mask = QtGui.QColor(MASK_COLOR)
    lut[257] = (mask.red(), mask.green(), mask.blue(), 255)
    return lut


def colorize(values: np.ndarray, levels: tuple[float, float], lut: np.ndarray) -> np.ndarray:
    """Map ``values`` through ``lut`` (see lookup_table_rgba) over ``levels``; NaN -> transparent,
    -inf -> the mask colour. Returns (H, W, 4) uint8."""
    lo, hi = levels
    scale = 255.999 / (hi - lo) if hi > lo else 1.0
    nan = np.isnan(values)
    masked = np.isneginf(values)
    q = values - np.float32(lo)
    q *= np.float32(scale)
    q[nan] = 0
    np.clip(q, 0, 255, out=q)
    idx = q.astype(np.uint16)
    idx[nan] = 256
    idx[masked] = 257
    # gather whole pixels (one uint32 each), not four separate bytes
    lut32 = np.ascontiguousarray(lut).view(np.uint32).ravel()
    return lut32[idx].view(np.uint8).reshape(values.shape + (4,))



def info_css(color: str, scale: float) -> str:
    return (f"QLabel {{ color: {color}; background: {theme.BACKGROUND};"
            f" padding: {int(4 * scale)}px {int(10 * scale)}px; }}")


def style_axis(ax: pg.AxisItem, scale: float, label: str | None = None) -> None:
    ax.setPen(pg.mkPen(theme.FAINT, width=1))
    ax.setTextPen(pg.mkPen(theme.FOREGROUND))
    ax.setTickPen(pg.mkPen(theme.FAINT, width=1))
    if label is not None:
        ax.setLabel(label, color=theme.MUTED, **{"font-size": f"{9.5 * scale:.1f}pt"})
    ax.setTickFont(theme.font(scale, size=9))
