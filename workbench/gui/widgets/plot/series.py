"""One curve of the plot: its points on three x axes, its smoothing and envelopes, its items.

A ``Series`` keeps the data (growable buffers), brings the smoothed values and min/max
pyramids up to date (``sync``) and hands the visible part to its pyqtgraph items (``draw``),
at most ~2 points per pixel column. ``LossPlot`` owns the series and says what is visible.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore

from ... import theme
from .axes import clock_label
from .items import Band, install_stamped_paint, stamp_offsets
from workbench.curves import Buffer, Envelope, ema_smooth, ema_weight_for

X_AXES = ("step", "tokens", "time")
X_AXIS_LABELS = {"step": "step", "tokens": "tokens seen", "time": "time"}


@dataclass
class SeriesStyle:
    """How one series is drawn. ``smooth=False`` draws it raw even when smoothing is on."""

    color: str
    symbol: str | None = None
    smooth: bool = True
    width: float = 2.0
    dash: QtCore.Qt.PenStyle = QtCore.Qt.PenStyle.SolidLine
    alpha: float = 1.0


class Series:
    def __init__(self, name: str, label: str, style_: SeriesStyle):
        self.name = name
        self.label = label  # text in the legend
        self.style = style_
        self.x = {axis: Buffer() for axis in X_AXES}
        self.y = Buffer()
        self.smoothed = Buffer()
        self.ema_state: tuple[float, int] = (0.0, 0)
        self.ema_weight = 0.0  # the weight the smoothed values were computed with (ema_weight_for)
        self.env_raw = Envelope()
        self.env_smooth = Envelope()
        self.raw_synced = 0  # points already in env_raw
        self.smooth_synced = 0  # points already smoothed and in env_smooth
        self.sorted = {axis: True for axis in X_AXES}
        self.visible = True
        self.thick = True  # main line drawn wider than 1 px
        self.raw_curve: pg.PlotDataItem | None = None
        self.main_curve: pg.PlotDataItem | None = None
        self.raw_band: Band | None = None  # raw data where dense: per-column min..max
        self.main_band: Band | None = None

    def items(self) -> list:
        return [i for i in (self.raw_band, self.raw_curve, self.main_band, self.main_curve)
                if i is not None]

    @property
    def n(self) -> int:
        return self.y.n

    def append(self, step, y, tokens, time) -> None:
        k = y.size
        for axis, values in (("step", step), ("tokens", tokens), ("time", time)):
            buf = self.x[axis]
            if values is None:
                values = np.full(k, np.nan)
            if self.sorted[axis] and k:
                ok = bool(np.all(values[1:] >= values[:-1])) if k > 1 else not np.isnan(values[0])
                if ok and buf.n:
                    ok = bool(values[0] >= buf.data[buf.n - 1])
                self.sorted[axis] = ok
            buf.extend(values)
        self.y.extend(y)

    def sync(self, weight: float) -> bool:
        """Bring smoothing and envelopes up to date; True when anything changed."""
        n = self.n
        changed = False
        y = self.y.view()
        if self.raw_synced < n:
            self.env_raw.update(y, self.raw_synced)
            self.raw_synced = n
            changed = True
        w = ema_weight_for(weight, n)
        if self.style.smooth and w > 0 and w != self.ema_weight:
            self.resmooth()
            self.ema_weight = w
        if self.style.smooth and w > 0 and self.smooth_synced < n:
            start = self.smooth_synced
            sm, self.ema_state = ema_smooth(y[start:], w, self.ema_state)
            self.smoothed.truncate(start)
            self.smoothed.extend(sm)
            self.env_smooth.update(self.smoothed.view(), start)
            self.smooth_synced = n
            changed = True
        return changed

    def resmooth(self) -> None:
        """Forget the smoothed values (weight changed): the next sync recomputes them."""
        self.smoothed.truncate(0)
        self.ema_state = (0.0, 0)
        self.ema_weight = 0.0
        self.env_smooth.reset()
        self.smooth_synced = 0

    def index_range(self, axis: str, x0: float, x1: float) -> tuple[int, int]:
        n = self.n
        if not self.sorted[axis]:
            return 0, n
        xs = self.x[axis].view()
        return int(np.searchsorted(xs, x0, "left")), int(np.searchsorted(xs, x1, "right"))

    def nearest(self, axis: str, x: float) -> int | None:
        """Index of the point nearest to ``x`` on ``axis`` (None: no point has that x)."""
        xs = self.x[axis].view()
        if self.sorted[axis]:
            i = int(np.searchsorted(xs, x))
            return min((j for j in (i - 1, i) if 0 <= j < self.n), key=lambda j: abs(xs[j] - x))
        with np.errstate(invalid="ignore"):
            d = np.abs(xs - x)
        if np.all(np.isnan(d)):
            return None
        return int(np.nanargmin(d))

    # -- drawing ----------------------------------------------------------------------------

    def make_items(self, overlay: bool) -> None:
        """The series' pyqtgraph items (hidden, not yet in a plot), stacked so that overlays lie
        under the live series and each series' main curve over its raw data."""
        self.raw_curve = pg.PlotDataItem()
        self.main_curve = pg.PlotDataItem()
        # a band's edge is noise (a smooth curve makes a thin band, covered by its midline),
        # so bands are filled without antialiasing: ~3x cheaper (a jagged 1000-vertex band:
        # ~5 ms with, ~1.5 ms without)
        self.raw_band = Band(antialias=False)
        self.main_band = Band(antialias=False)
        base = -40 if overlay else 0
        self.raw_band.setZValue(base - 2)
        self.raw_curve.setZValue(base - 1)
        self.main_band.setZValue(base + 9)
        self.main_curve.setZValue(base + 10)

    def restyle(self, scale: float) -> None:
        """Pens for the series' two curves.

        Drawing cost, measured (Qt raster engine, 2 cores): a 1-px antialiased polyline is
        nearly free (~1.5 ms for 2000 noisy points) but any wider one is stroked as a single
        self-intersecting outline, 50-120 ms for the same points (and still ~1 us per pixel
        of length when drawn as separate segments). So on screen a thick line is a 1-px line
        stamped a few times at sub-pixel offsets (``stamp_offsets``), which looks the same
        and costs a few milliseconds whatever the data. Exports use true wide pens.
        """
        if self.main_curve is None:
            return
        sc = scale
        st = self.style
        color = theme.qcolor(st.color, st.alpha)
        self.thick = st.alpha >= 1.0 and st.dash == QtCore.Qt.PenStyle.SolidLine and st.width > 1
        self.main_curve.opts["antialias"] = True
        install_stamped_paint(self.main_curve.curve)
        self.fit_pen(scale)
        if st.symbol:
            self.main_curve.setSymbol(st.symbol)
            self.main_curve.setSymbolSize(7 * sc)
            self.main_curve.setSymbolBrush(pg.mkBrush(color))
            self.main_curve.setSymbolPen(pg.mkPen(theme.BACKGROUND, width=1.2 * sc))
        else:
            self.main_curve.setSymbol(None)
        self.raw_curve.setPen(pg.mkPen(theme.qcolor(st.color, 0.28 * st.alpha), width=1.0))
        self.raw_curve.opts["antialias"] = True
        self.raw_band.setBrush(theme.qcolor(st.color, 0.24 * st.alpha))
        self.main_band.setBrush(theme.qcolor(st.color, st.alpha if self.thick else 0.35 * st.alpha))

    def fit_pen(self, scale: float, exporting: float = 0.0) -> None:
        """``exporting``: 0 on screen, else the export's pixel ratio (cosmetic pen widths are
        device pixels)."""
        st = self.style
        width = st.width * scale if self.thick else 1.0
        curve = self.main_curve.curve
        self.main_curve._legend_width = width * (exporting or 1.0) if self.thick else None
        if exporting or width <= 1.0:
            pen = pg.mkPen(theme.qcolor(st.color, st.alpha), width=width * (exporting or 1.0),
                           style=st.dash)
            curve._stamp_offsets = None
        else:
            pen = pg.mkPen(theme.qcolor(st.color, st.alpha), width=1.0, style=st.dash)
            curve._stamp_offsets = stamp_offsets(width)
        pen.setCapStyle(QtCore.Qt.PenCapStyle.RoundCap)
        pen.setJoinStyle(QtCore.Qt.PenJoinStyle.RoundJoin)
        curve.setSegmentedLineMode("on" if (exporting and width > 1.0) else "off")
        self.main_curve.setPen(pen)

    def draw(self, axis: str, smoothed: bool, i0: int, i1: int, bins: int) -> None:
        """Hand points [i0, i1) on x ``axis`` to the items, ``bins`` columns wide (data outside
        that range coarsely, for autorange and panning).

        Sparse data (up to ~2 points per column) is drawn as lines through every point. Dense
        data is reduced per column to its minimum and maximum (exact: nothing is averaged
        away): the raw data becomes a faint filled band between them, the main (smoothed)
        curve an opaque band plus a line through the band's middle, which keeps it at least
        one line width thick where the band is thin.
        """
        xs = self.x[axis].view()
        ys = self.y.view()
        if smoothed:
            sm = self.smoothed.view()
            _show(self.main_curve, self.main_band, xs, sm, self.env_smooth.bins(sm, i0, i1, bins))
            _show(self.raw_curve, self.raw_band, xs, ys, self.env_raw.bins(ys, i0, i1, bins),
                  midline=False)
        else:
            _show(self.main_curve, self.main_band, xs, ys, self.env_raw.bins(ys, i0, i1, bins))
            self.raw_curve.setData([], [])
            self.raw_curve.hide()
            self.raw_band.clear()
            self.raw_band.hide()


def _show(line: pg.PlotDataItem, band: Band, xs: np.ndarray, ys: np.ndarray,
          pair, midline: bool = True) -> None:
    if pair is None:  # all points (copies: our buffers grow in place)
        band.clear()
        band.hide()
        _set_line(line, xs.copy(), ys.copy())
        line.show()
        return
    imin, imax = pair
    band.set_band(xs[imin], ys[imin], xs[imax], ys[imax])
    band.show()
    if midline:
        mid = (imin + imax) // 2
        _set_line(line, xs[mid], 0.5 * (ys[imin] + ys[imax]))
        line.show()
    else:
        line.setData([], [])
        line.hide()


def _set_line(item: pg.PlotDataItem, x: np.ndarray, y: np.ndarray) -> None:
    if np.isfinite(x).all() and np.isfinite(y).all():
        item.setData(x, y, connect="all", skipFiniteCheck=True)
    else:
        item.setData(x, y, connect="finite", skipFiniteCheck=False)


def write_csv(path: str | Path, groups: Sequence[tuple[str, Series]]) -> None:
    """Raw values, one row per point: ``series,step,tokens,time,value`` (series named
    prefix + name). Missing tokens/time are empty cells; floats are written in full precision."""

    def cells(values: np.ndarray, integral: bool) -> list:
        out = values.tolist()
        if integral and np.all(np.isfinite(values) & (values == np.round(values))):
            return [int(v) for v in out]
        return ["" if v != v else (int(v) if integral and float(v).is_integer() else v)
                for v in out]

    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["series", "step", "tokens", "time", "value"])
        for prefix, s in groups:
            cols = [cells(s.x["step"].view(), True), cells(s.x["tokens"].view(), True),
                    cells(s.x["time"].view(), False), cells(s.y.view(), False)]
            w.writerows(zip([prefix + s.name] * s.n, *cols))


def overlay_columns(data) -> tuple:
    """One series of an overlay, a dict with "step" and "y" (or "value") and optional "tokens"
    and "time", or a tuple ``(step, y)`` / ``(step, y, tokens, time)``, as float arrays
    (step, y, tokens, time); tokens and time are None when absent."""
    if isinstance(data, Mapping):
        step = data["step"]
        y = data["y"] if "y" in data else data["value"]
        tokens, t = data.get("tokens"), data.get("time")
    else:
        seq = list(data)
        step, y = seq[0], seq[1]
        tokens = seq[2] if len(seq) > 2 else None
        t = seq[3] if len(seq) > 3 else None

    def col(v):
        return None if v is None else np.atleast_1d(np.asarray(v, np.float64)).ravel()

    return col(step), col(y), col(tokens), col(t)


def readout_html(series: Iterable[Series], axis: str, x: float,
                 is_smoothed: Callable[[Series], bool]) -> str:
    """Rich text: the x nearest to ``x`` on ``axis``, then every visible series' value at its
    point nearest to ``x`` (and the smoothed value where ``is_smoothed``)."""
    rows = []
    nearest = None
    for s in series:
        if not s.visible or s.n == 0:
            continue
        i = s.nearest(axis, x)
        if i is None:
            continue
        xs = s.x[axis].view()
        if nearest is None or abs(xs[i] - x) < abs(nearest - x):
            nearest = float(xs[i])
        v = s.y.data[i]
        row = (f"<span style='color:{s.style.color}'>&#9679;</span>&nbsp;{s.name}"
               f"&nbsp;&nbsp;<b>{v:.4g}</b>")
        if is_smoothed(s) and s.smoothed.n > i:
            row += (f"&nbsp;<span style='color:{theme.FAINT}'>"
                    f"smoothed {s.smoothed.data[i]:.4g}</span>")
        rows.append(row)
    if nearest is None:
        return ""
    if axis == "time":
        head = clock_label(nearest, 1)
    elif float(nearest).is_integer():
        head = f"{nearest:,.0f}"
    else:
        head = f"{nearest:.4g}"
    head = f"<span style='color:{theme.MUTED}'>{X_AXIS_LABELS[axis]} {head}</span>"
    return "<br>".join([head] + rows)
