"""Live training curves: many named series, smoothing, log scale, three x axes, overlays, export.

``LossPlot`` is the TensorBoard-style chart of the workbench. Feeding it is cheap and drawing is
separate, so a training run can send points at any rate::

    plot = LossPlot(title="Loss")
    plot.add_points("train/lm", step=[1, 2, 3], y=[4.1, 3.9, 3.7],
                    tokens=[4096, 8192, 12288], time=[0.1, 0.2, 0.3])
    plot.add_points("val/lm", step=[3], y=[3.8])        # "val/..." series are drawn with symbols
    timer.timeout.connect(plot.refresh)                   # the owner redraws ~10 times a second

Every point carries three x coordinates: ``step`` (always), ``tokens`` (tokens seen so far) and
``time`` (seconds since the run started). ``tokens`` and ``time`` may be left out; such points
are then missing from the plot while that x axis is chosen. ``set_x_axis("step"|"tokens"|"time")``
chooses which one is drawn.

Smoothing is the debiased exponential moving average of TensorBoard, applied to the display
only (``smoothed(series)``; exports are raw): the raw curve stays faint behind the smoothed one.
The weight goes up to 0.999, but a curve is never averaged over more than 1/16 of its points
(``ema_weight_for``), so a smoothed line ends where the data is, even on a short run.

Speed (measured on a 2-core machine; ``redraw_benchmark``): points live in growable numpy
buffers, ``add_points`` only copies. ``refresh`` smooths the new points incrementally and updates
a min/max pyramid per curve (``curves.Envelope``), then hands pyqtgraph at most a few hundred bins for
the visible range, each bin's true minimum and maximum (nothing is averaged away; outside the
view, coarse bins keep the extremes for autorange). Sparse data (up to ~1 point per pixel
column) is drawn as lines through every point; dense data as a band from minimum to maximum,
with the smoothed curve's midline on top. A redraw costs O(plot width), not O(points).

Why not pyqtgraph's ``setDownsampling(mode='peak')`` + ``setClipToView``: they rescan every
point on each ``setData`` (14 ms for two 10^6-point curves before painting) and the peak
zigzag they draw costs 20-700 ms to paint antialiased and wider than 1 px. Two more drawing
facts shaped this file: Qt strokes any antialiased line wider than 1 px as one
self-intersecting outline (50-120 ms for 2000 noisy points), so thick lines are a 1-px line
stamped at sub-pixel offsets (``_install_stamped_paint``), and bands are filled without
antialiasing (3x cheaper, and their edge is noise anyway).

``MetricPlot`` is the compact variant for learning rate, gradient norm or tokens/s, and
``PlotStack`` stacks several plots with linked x axes and shared controls.
"""

from __future__ import annotations

import csv
import math
import time as _time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pyqtgraph as pg
import shiboken6
from PySide6 import QtCore, QtGui, QtWidgets

from workbench.curves import SMOOTH_MAX, SMOOTH_SHARE, Buffer, Envelope, ema_smooth, ema_weight_for

from . import style
from .flow import FlowRow, together
from .export import save_png, save_svg
from .plot_input import ZOOM_HINT, wheel_scrolls_page

X_AXES = ("step", "tokens", "time")
X_AXIS_LABELS = {"step": "step", "tokens": "tokens seen", "time": "time"}

ArrayLike = np.ndarray | Sequence[float] | float | int


# =============================================================================================
# smoothing (the numbers are workbench.curves')


def format_smoothing(weight: float) -> str:
    """0.6 -> "0.6", 0.999 -> "0.999" (never "1.00": the weight is below 1)."""
    return f"{weight:.3f}".rstrip("0").rstrip(".") if weight > 0 else "0"


class _Band(pg.GraphicsObject):
    """A filled band between a lower and an upper polyline: how a curve with many points per
    pixel column looks (its per-column minimum and maximum), drawn as one polygon."""

    def __init__(self, antialias: bool = True):
        super().__init__()
        self._antialias = antialias
        self._data = None  # x_lo, y_lo, x_hi, y_hi (data coordinates)
        self._log_y = False
        self._path = QtGui.QPainterPath()
        self._bounds = QtCore.QRectF()
        self._brush = QtGui.QBrush(QtGui.QColor(0, 0, 0, 40))

    def setBrush(self, brush) -> None:
        self._brush = pg.mkBrush(brush)
        self.update()

    def set_band(self, x_lo, y_lo, x_hi, y_hi) -> None:
        self._data = (x_lo, y_lo, x_hi, y_hi)
        self._rebuild()

    def clear(self) -> None:
        self._data = None
        self._rebuild()

    def setLogMode(self, x_mode: bool, y_mode: bool) -> None:  # called by PlotItem
        self._log_y = bool(y_mode)
        self._rebuild()

    def _rebuild(self) -> None:
        self.prepareGeometryChange()
        if self._data is None or self._data[0].size == 0:
            self._path = QtGui.QPainterPath()
            self._bounds = QtCore.QRectF()
        else:
            x_lo, y_lo, x_hi, y_hi = self._data
            x = np.concatenate((x_hi, x_lo[::-1]))
            y = np.concatenate((y_hi, y_lo[::-1]))
            if self._log_y:
                with np.errstate(divide="ignore", invalid="ignore"):
                    y = np.log10(y)
            ok = np.isfinite(x) & np.isfinite(y)
            if not ok.all():
                x, y = x[ok], y[ok]
            if x.size < 3:
                self._path = QtGui.QPainterPath()
                self._bounds = QtCore.QRectF()
            else:
                self._path = pg.arrayToQPath(x, y, connect="all")
                self._path.closeSubpath()
                self._bounds = QtCore.QRectF(float(x.min()), float(y.min()),
                                             float(x.max() - x.min()), float(y.max() - y.min()))
        self.update()

    def dataBounds(self, ax, frac=1.0, orthoRange=None):
        if self._bounds.isNull() and self._path.isEmpty():
            return None, None
        r = self._bounds
        return (r.left(), r.right()) if ax == 0 else (r.top(), r.bottom())

    def boundingRect(self):
        return self._bounds

    def paint(self, p, *args):
        if self._path.isEmpty():
            return
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, self._antialias)
        p.setPen(QtCore.Qt.PenStyle.NoPen)
        p.setBrush(self._brush)
        p.drawPath(self._path)


class _LegendSample(pg.ItemSample):
    """Legend swatch drawn with the series' true line width (on screen the line itself is a
    stamped 1-px pen, see LossPlot._restyle)."""

    def paint(self, p, *args):
        item = self.item
        width = getattr(item, "_legend_width", None)
        if width is None or not item.isVisible():
            return super().paint(p, *args)
        from pyqtgraph.graphicsItems.ScatterPlotItem import drawSymbol

        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        pen = pg.mkPen(item.opts["pen"])
        pen.setWidthF(width)
        pen.setCapStyle(QtCore.Qt.PenCapStyle.RoundCap)
        p.setPen(pen)
        p.drawLine(QtCore.QPointF(2, 11), QtCore.QPointF(18, 11))
        symbol = item.opts.get("symbol")
        if symbol is not None:
            so = item.scatter.opts
            p.translate(10, 11)
            drawSymbol(p, symbol, so["size"], pg.mkPen(so["pen"]), pg.mkBrush(so["brush"]))


# =============================================================================================
# axis with readable numbers


def _compact(v: float) -> str:
    """1234 -> '1.2k', 2_500_000 -> '2.5M'."""
    av = abs(v)
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if av >= scale:
            s = f"{v / scale:.3g}"
            return s + unit
    if float(v).is_integer():
        return f"{int(v)}"
    return f"{v:.3g}"


def _clock(seconds: float, spacing: float) -> str:
    seconds = float(seconds)
    sign = "-" if seconds < 0 else ""
    s = abs(seconds)
    if spacing < 1:
        return f"{sign}{s:.3g}s"
    h, rem = divmod(int(round(s)), 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{sign}{h}:{m:02d}:{sec:02d}" if spacing < 60 else f"{sign}{h}:{m:02d}"
    return f"{sign}{m}:{sec:02d}"


_TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
               43200, 86400]


class _XAxis(pg.AxisItem):
    """Bottom axis that writes steps and tokens compactly (12k, 1.5M) and time as m:ss."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mode = "step"
        self.enableAutoSIPrefix(False)

    def tickSpacing(self, minVal, maxVal, size):
        if self.mode != "time" or maxVal - minVal < 2:
            return super().tickSpacing(minVal, maxVal, size)
        target = (maxVal - minVal) / max(2.0, size / 90.0)
        major = next((s for s in _TIME_STEPS if s >= target), None)
        if major is None:
            major = 86400 * math.ceil(target / 86400)
        minor = next((s for s in reversed(_TIME_STEPS) if s < major and major % s == 0
                      and major / s <= 6), major / 2)
        return [(major, 0), (minor, 0)]

    def tickStrings(self, values, scale, spacing):
        if self.logMode:
            return super().tickStrings(values, scale, spacing)
        if self.mode == "time":
            return [_clock(v, spacing) for v in values]
        return [_compact(v) for v in values]


class _YAxis(pg.AxisItem):
    """Left axis: compact numbers (12k), scientific notation for small ones (6e-4), and in
    log mode plain values at 1-2-5 steps (0.5, 1, 2, 5) instead of powers of ten."""

    def tickValues(self, minVal, maxVal, size):
        if not self.logMode:
            return super().tickValues(minVal, maxVal, size)
        lo, hi = sorted((minVal, maxVal))
        decades = hi - lo
        max_ticks = max(2, int(size / 26))
        for mantissas in ([1, 2, 3, 4, 5, 6, 8], [1, 1.5, 2, 3, 5, 7], [1, 2, 5], [1, 3], [1]):
            values = [math.log10(m) + k for k in range(int(math.floor(lo)) - 1,
                                                       int(math.ceil(hi)) + 1)
                      for m in mantissas]
            values = [v for v in values if lo <= v <= hi]
            if len(values) <= max_ticks:
                break
        if len(values) > max_ticks:  # many decades: every k-th one
            step = math.ceil(decades / max_ticks)
            values = [float(k) for k in range(int(math.ceil(lo)), int(math.floor(hi)) + 1)
                      if k % step == 0]
        return [(1.0, values)]

    def tickStrings(self, values, scale, spacing):
        if self.logMode:
            out = []
            for v in values:
                x = 10.0**v
                out.append(f"{x:.3g}" if 1e-3 <= abs(x) < 1e5 else _sci(x))
            return out
        big = max((abs(v) for v in values), default=0.0)
        if 0 < big < 1e-2:
            return ["0" if v == 0 else _sci(v) for v in values]
        if spacing >= 1000:
            return [_compact(v) for v in values]
        return super().tickStrings(values, scale, spacing)


def _sci(v: float) -> str:
    """6e-04 -> '6e-4', 1.5e-05 -> '1.5e-5'."""
    mant, exp = f"{v:.2g}".split("e") if "e" in f"{v:.2g}" else (f"{v:.2g}", None)
    if exp is None:
        mant, exp = f"{v:.1e}".split("e")
    mant = mant.rstrip("0").rstrip(".") if "." in mant else mant
    return f"{mant}e{int(exp)}"


# =============================================================================================
# series


@dataclass
class SeriesStyle:
    """How one series is drawn. ``smooth=False`` draws it raw even when smoothing is on."""

    color: str
    symbol: str | None = None
    smooth: bool = True
    width: float = 2.0
    dash: QtCore.Qt.PenStyle = QtCore.Qt.PenStyle.SolidLine
    alpha: float = 1.0


class _Series:
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
        self.raw_band: _Band | None = None  # raw data where dense: per-column min..max
        self.main_band: _Band | None = None

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


# =============================================================================================
# the control row


class CurveControls(FlowRow):
    """Smoothing slider, x-axis choice, log scale and an export menu, as one row (wrapping onto
    a second line where the page is narrow).

    Used by LossPlot (``show_controls=True``) and PlotStack; a panel may place its own.
    """

    smoothingChanged = QtCore.Signal(float)
    xAxisChanged = QtCore.Signal(str)
    logYChanged = QtCore.Signal(bool)
    exportRequested = QtCore.Signal(str)  # "png", "svg" or "csv"

    def __init__(self, parent: QtWidgets.QWidget | None = None, *,
                 exports: Sequence[str] = ("png", "svg", "csv")):
        super().__init__(parent)
        h = self.flow
        h.setContentsMargins(8, 4, 8, 2)
        h.setSpacing(8)
        self._labels = [QtWidgets.QLabel("Smoothing")]
        self.slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.slider.setRange(0, 999)
        self.slider.setMaximumWidth(170)
        self.slider.setMinimumWidth(110)  # squeezed, a slider shrinks to a dot
        self.slider.setToolTip("Exponential moving average of the curves (display only; the faint line behind "
                               f"is the raw data). A curve is averaged over at most 1/{SMOOTH_SHARE} of its "
                               "points, so the smoothed line keeps up with the data.")
        self.value_label = QtWidgets.QLabel("0")
        self.value_label.setMinimumWidth(self.value_label.fontMetrics().horizontalAdvance("0.999") + 4)
        self.slider.valueChanged.connect(self._on_slider)
        h.addWidget(together(self._labels[0], self.slider, self.value_label, spacing=8))  # wraps as one piece
        self._labels.append(QtWidgets.QLabel("x axis"))
        self.axis_combo = QtWidgets.QComboBox()
        for a in X_AXES:
            self.axis_combo.addItem(X_AXIS_LABELS[a], a)
        self.axis_combo.currentIndexChanged.connect(
            lambda i: self.xAxisChanged.emit(self.axis_combo.itemData(i)))
        h.addWidget(together(self._labels[-1], self.axis_combo, spacing=8))
        self.log_check = QtWidgets.QCheckBox("Log scale")
        self.log_check.setToolTip("Logarithmic y axis")
        self.log_check.toggled.connect(self.logYChanged)
        h.addWidget(self.log_check)
        h.addStretch()
        self.export_button = QtWidgets.QToolButton()
        self.export_button.setText("Export")
        self.export_button.setPopupMode(QtWidgets.QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QtWidgets.QMenu(self.export_button)
        names = {"png": "Image (PNG)…", "svg": "Vector image (SVG)…", "csv": "Data (CSV)…"}
        for kind in exports:
            menu.addAction(names[kind], lambda k=kind: self.exportRequested.emit(k))
        self.export_button.setMenu(menu)
        self.export_button.setVisible(bool(exports))
        h.addWidget(self.export_button)

    def _on_slider(self, v: int) -> None:
        self.value_label.setText(format_smoothing(v / 1000))
        self.smoothingChanged.emit(v / 1000.0)

    def set_state(self, smoothing: float, x_axis: str, log_y: bool) -> None:
        """Show these values without emitting signals."""
        blockers = [QtCore.QSignalBlocker(w) for w in (self.slider, self.axis_combo,
                                                        self.log_check)]
        self.slider.setValue(int(round(smoothing * 1000)))
        self.value_label.setText(format_smoothing(smoothing))
        self.axis_combo.setCurrentIndex(X_AXES.index(x_axis))
        self.log_check.setChecked(log_y)
        del blockers

    def set_presentation(self, scale: float) -> None:
        f = style.font(scale, size=9.5)
        for w in [self, *self.findChildren(QtWidgets.QWidget)]:
            w.setFont(f)
        self.slider.setMaximumWidth(int(170 * scale))
        self.value_label.setMinimumWidth(QtGui.QFontMetrics(f).horizontalAdvance("0.999") + 4)
        self.slider.setMinimumWidth(int(110 * scale))
        self.updateGeometry()


def _stamp_offsets(width: float) -> list[tuple[float, float]]:
    """Device-pixel offsets at which a 1-px line is drawn to look ``width`` pixels wide."""
    d = max(0.0, width - 1.0)
    if d <= 0:
        return [(0.0, 0.0)]
    steps = max(1, int(np.ceil(d)))
    out = []
    for i in range(steps + 1):
        for j in range(steps + 1):
            out.append((d * i / steps - d / 2, d * j / steps - d / 2))
    return out


def _install_stamped_paint(curve: pg.PlotCurveItem) -> None:
    """Make ``curve`` paint itself once per offset in ``curve._stamp_offsets`` (device pixels;
    None: once, normally). PySide calls a Python override of a virtual method found on the
    instance, so this needs no PlotDataItem subclass."""
    if getattr(curve, "_stamped", False):
        return
    base_paint = type(curve).paint

    def paint(self, p, opt, widget=None):
        offsets = getattr(self, "_stamp_offsets", None)
        if not offsets:
            return base_paint(self, p, opt, widget)
        t = p.worldTransform()
        try:
            for dx, dy in offsets:
                p.setWorldTransform(t * QtGui.QTransform.fromTranslate(dx, dy))
                base_paint(self, p, opt, widget)
        finally:
            p.setWorldTransform(t)

    curve.paint = types.MethodType(paint, curve)
    curve._stamped = True
    curve._stamp_offsets = None


def ask_export_path(parent: QtWidgets.QWidget, kind: str, stem: str) -> str:
    filters = {"png": "PNG image (*.png)", "svg": "SVG image (*.svg)",
               "csv": "CSV table (*.csv)"}
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem.lower()) or "curves"
    path, _ = QtWidgets.QFileDialog.getSaveFileName(parent, "Export", f"{stem}.{kind}",
                                                    filters[kind])
    return path


# =============================================================================================
# the widget


MIN_PLOT_WIDTH = 180  # pixels at scale 1 (presentation mode multiplies them)
MIN_PLOT_HEIGHT = 120
MIN_VIEW_HEIGHT = 60  # of the data area, below the title and above the x axis


class LossPlot(QtWidgets.QWidget):
    """Training curves with smoothing, log scale, x axis choice, overlays and export.

    Parameters: ``title`` and ``y_label`` (text), ``show_controls`` (a CurveControls row above
    the chart; panels with their own controls pass False), ``smoothing`` (initial EMA weight
    0..0.999; default 0.9: with one point per step the curves are dense, and TensorBoard's
    0.6 still leaves a wide band), ``presentation`` (scale for fonts and lines), ``legend``,
    ``color_offset`` (first palette colour, so stacked plots can differ).

    Mouse: the wheel scrolls the page, Ctrl+wheel zooms, drag pans, double-click (or the "A"
    button in the lower left corner, shown while zoomed) fits all data; hovering shows the
    values of every series at that x in a small box.

    Signals: ``smoothingChanged(float)``, ``xAxisChanged(str)``, ``logYChanged(bool)``.
    """

    smoothingChanged = QtCore.Signal(float)
    xAxisChanged = QtCore.Signal(str)
    logYChanged = QtCore.Signal(bool)

    def __init__(self, parent: QtWidgets.QWidget | None = None, *, title: str = "",
                 y_label: str = "loss", show_controls: bool = True, smoothing: float = 0.9,
                 presentation: float = 1.0, legend: bool = True, color_offset: int = 0):
        super().__init__(parent)
        self._scale = max(0.5, float(presentation))
        self._smoothing = float(np.clip(smoothing, 0.0, SMOOTH_MAX))
        self._x_axis = "step"
        self._log_y = False
        self._series: dict[str, _Series] = {}
        self._overlays: dict[str, dict[str, _Series]] = {}
        self._color_index: dict[str, int] = {}
        self._color_offset = int(color_offset)
        self._styles: dict[str, dict] = {}
        self._view_key = None
        self._updating = False
        self._title = title
        self._y_label = y_label

        self._x_axis_item = _XAxis(orientation="bottom")
        self._y_axis_item = _YAxis(orientation="left")
        self.plot_widget = pg.PlotWidget(
            background=style.BACKGROUND,
            axisItems={"bottom": self._x_axis_item, "left": self._y_axis_item})
        self.plot_widget.setAntialiasing(True)
        wheel_scrolls_page(self.plot_widget, reset=self.reset_view,
                           hint=ZOOM_HINT + " (or the A button, lower left)")
        self.plot_item: pg.PlotItem = self.plot_widget.getPlotItem()
        pi = self.plot_item
        pi.showGrid(x=True, y=True, alpha=style.GRID_ALPHA)
        pi.setMenuEnabled(False)  # pyqtgraph's "A" button stays: it shows (on hover) while zoomed
        pi.getAxis("top").setStyle(showValues=False)
        self.view_box: pg.ViewBox = pi.getViewBox()
        self.view_box.sigXRangeChanged.connect(self._on_view_changed)
        self.view_box.sigResized.connect(self._on_view_changed)
        self._legend = pg.LegendItem(offset=None, sampleType=_LegendSample) if legend else None
        if self._legend is not None:
            # in a band above the data (the top axis, without ticks), never over the curves;
            # placed by _fit_legend_band (pyqtgraph's anchoring outlived the legend on close)
            band = pi.getAxis("top")
            band.setPen(pg.mkPen(None))
            band.setStyle(tickLength=0)
            band.setGrid(False)  # the bottom axis draws the grid
            pi.showAxis("top")
            band.setHeight(0)
            self._legend.setParentItem(band)
            self._fitting_legend = False
            self._legend.geometryChanged.connect(self._fit_legend_band)
            band.geometryChanged.connect(self._fit_legend_band)
            self.view_box.sigResized.connect(self._fit_legend_band)

        self._cursor = pg.InfiniteLine(angle=90, movable=False,
                                       pen=pg.mkPen(style.FAINT, width=1,
                                                    style=QtCore.Qt.PenStyle.DashLine))
        self._cursor.setZValue(50)
        self._cursor.hide()
        pi.addItem(self._cursor, ignoreBounds=True)
        self._mouse_proxy = pg.SignalProxy(self.plot_widget.scene().sigMouseMoved,
                                           rateLimit=30, slot=self._on_mouse_moved)
        self.plot_widget.viewport().installEventFilter(self)

        # hover readout: a small box floating over the lower left corner of the chart
        self.readout = QtWidgets.QLabel(self.plot_widget)
        self.readout.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.readout.setAttribute(QtCore.Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.readout.hide()

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.controls: CurveControls | None = None
        if show_controls:
            self.controls = CurveControls()
            self.controls.smoothingChanged.connect(self.set_smoothing)
            self.controls.xAxisChanged.connect(self.set_x_axis)
            self.controls.logYChanged.connect(self.set_log_y)
            self.controls.exportRequested.connect(self._export_dialog)
            layout.addWidget(self.controls)
            self._sync_controls()
        layout.addWidget(self.plot_widget, 1)
        self._apply_style()
        self._fit_legend_band()

    # -- public API: data -----------------------------------------------------------------

    def add_points(self, series: str, step: ArrayLike, y: ArrayLike,
                   tokens: ArrayLike | None = None, time: ArrayLike | None = None) -> None:
        """Append points to ``series`` (created on first use). Cheap: nothing is redrawn.

        ``step`` and ``y`` are scalars or equal-length sequences; ``tokens`` (tokens seen) and
        ``time`` (seconds since the run started) are optional and, if given, of the same length.
        """
        y_arr = np.atleast_1d(np.asarray(y, dtype=np.float64)).ravel()
        k = y_arr.size
        cols = []
        for name, values in (("step", step), ("tokens", tokens), ("time", time)):
            if values is None:
                cols.append(None)
                continue
            arr = np.atleast_1d(np.asarray(values, dtype=np.float64)).ravel()
            if arr.size != k:
                raise ValueError(f"{name} has {arr.size} values but y has {k}")
            cols.append(arr)
        if cols[0] is None:
            raise ValueError("step is required")
        s = self._series.get(series)
        if s is None:
            s = self._create_series(series)
        s.append(cols[0], y_arr, cols[1], cols[2])

    def add_point(self, series: str, step: float, y: float, tokens: float | None = None,
                  time: float | None = None) -> None:
        """One point; same as ``add_points`` with scalars."""
        self.add_points(series, step, y, tokens, time)

    def series_names(self) -> list[str]:
        return list(self._series)

    def point_count(self, series: str) -> int:
        return self._series[series].n

    def series_data(self, series: str | None = None) -> dict:
        """Raw data as {name: {"step", "tokens", "time", "y": np.ndarray}} (copies).

        The result can be given to another plot's ``add_overlay`` to compare runs.
        """
        names = [series] if series is not None else list(self._series)
        out = {}
        for name in names:
            s = self._series[name]
            out[name] = {axis: s.x[axis].view().copy() for axis in X_AXES}
            out[name]["y"] = s.y.view().copy()
        return out

    def smoothed(self, series: str) -> np.ndarray:
        """The values of ``series`` as displayed: smoothed, or raw when not smoothed."""
        s = self._series[series]
        s.sync(self._smoothing)
        if self._is_smoothed(s):
            return s.smoothed.view().copy()
        return s.y.view().copy()

    def remove_series(self, series: str) -> None:
        s = self._series.pop(series, None)
        if s is not None:
            self._drop_items(s)

    def clear(self) -> None:
        """Remove every series and overlay."""
        for s in list(self._series.values()):
            self._drop_items(s)
        self._series.clear()
        self.clear_overlays()
        self._color_index.clear()
        self._view_key = None

    def set_series_visible(self, series: str, visible: bool) -> None:
        s = self._series[series]
        s.visible = bool(visible)
        self._update_display(s)

    def set_series_style(self, series: str, *, color: str | None = None,
                         symbol: str | None | bool = False, smooth: bool | None = None,
                         width: float | None = None) -> None:
        """Override the automatic style of ``series`` (before or after its first point).

        ``symbol``: a pyqtgraph symbol ('o', 's', 't', ...) or None for none; leave it out to
        keep the default ("val/..." series get 'o' and are not smoothed).
        """
        opts = self._styles.setdefault(series, {})
        if color is not None:
            opts["color"] = color
        if symbol is not False:
            opts["symbol"] = symbol
        if smooth is not None:
            opts["smooth"] = smooth
        if width is not None:
            opts["width"] = width
        s = self._series.get(series)
        if s is not None:
            for k, v in opts.items():
                setattr(s.style, k, v)
            s.resmooth()
            self._restyle(s)
            self._update_display(s)

    # -- overlays ---------------------------------------------------------------------------

    def add_overlay(self, name: str, series_dict: Mapping[str, object]) -> None:
        """Draw an earlier run, dashed and faded, labelled ``name`` (replaces an overlay of the
        same name). Overlays are smoothed like the live series.

        ``series_dict`` maps series names to either a dict with "step" and "y" (or "value") and
        optional "tokens" and "time", or a tuple ``(step, y)`` / ``(step, y, tokens, time)``.
        ``LossPlot.series_data()`` returns this format.
        """
        self.remove_overlay(name)
        dash_styles = [QtCore.Qt.PenStyle.DashLine, QtCore.Qt.PenStyle.DotLine,
                       QtCore.Qt.PenStyle.DashDotLine]
        dash = dash_styles[len(self._overlays) % len(dash_styles)]

        def col(v):
            return None if v is None else np.atleast_1d(np.asarray(v, np.float64)).ravel()

        group: dict[str, _Series] = {}
        for series, data in series_dict.items():
            if isinstance(data, Mapping):
                step = data["step"]
                y = data["y"] if "y" in data else data["value"]
                tokens, t = data.get("tokens"), data.get("time")
            else:
                seq = list(data)
                step, y = seq[0], seq[1]
                tokens = seq[2] if len(seq) > 2 else None
                t = seq[3] if len(seq) > 3 else None
            base = self._style_for(series)
            st = SeriesStyle(color=base.color, symbol=base.symbol, smooth=base.smooth,
                             width=max(1.0, base.width * 0.8), dash=dash, alpha=0.55)
            s = _Series(series, f"{name}: {series}", st)
            s.append(col(step), col(y), col(tokens), col(t))
            self._make_items(s, overlay=True)
            group[series] = s
        self._overlays[name] = group
        for s in group.values():
            self._update_display(s)

    def remove_overlay(self, name: str) -> None:
        for s in self._overlays.pop(name, {}).values():
            self._drop_items(s)

    def clear_overlays(self) -> None:
        for name in list(self._overlays):
            self.remove_overlay(name)

    def overlay_names(self) -> list[str]:
        return list(self._overlays)

    # -- public API: view -------------------------------------------------------------------

    def refresh(self, force: bool = False) -> None:
        """Draw what changed since the last call (connect to a ~10 Hz QTimer).

        ``force`` re-decimates and re-sends every curve even if nothing changed.
        """
        key = self._current_view_key()
        force = force or key != self._view_key
        self._view_key = key
        for s in self._all_series():
            changed = s.sync(self._smoothing)
            if changed or force:
                self._update_display(s)

    def smoothing(self) -> float:
        return self._smoothing

    def set_smoothing(self, weight: float) -> None:
        """EMA weight 0 (raw) .. 0.999 (very smooth); changes the display only."""
        weight = float(np.clip(weight, 0.0, SMOOTH_MAX))
        if weight == self._smoothing:
            return
        was_on = self._smoothing > 0
        self._smoothing = weight
        for s in self._all_series():
            if s.style.smooth:
                s.resmooth()
            if was_on != (weight > 0):
                self._restyle(s)
        self.refresh(force=True)
        self._sync_controls()
        self.smoothingChanged.emit(weight)

    def x_axis(self) -> str:
        return self._x_axis

    def set_x_axis(self, axis: str) -> None:
        """"step", "tokens" or "time" (seconds since the start, shown as m:ss)."""
        if axis not in X_AXES:
            raise ValueError(f"x axis must be one of {X_AXES}, not {axis!r}")
        if axis == self._x_axis:
            return
        self._x_axis = axis
        self._x_axis_item.mode = axis
        self._x_axis_item.picture = None
        self._apply_labels()
        self.view_box.enableAutoRange(axis=pg.ViewBox.XAxis)
        self.refresh(force=True)
        self._x_axis_item.update()
        self._sync_controls()
        self.xAxisChanged.emit(axis)

    def log_y(self) -> bool:
        return self._log_y

    def set_log_y(self, on: bool) -> None:
        """Logarithmic y axis (non-positive values are not drawn)."""
        on = bool(on)
        if on == self._log_y:
            return
        self._log_y = on
        self.plot_item.setLogMode(x=False, y=on)  # also tells the bands (setLogMode)
        self.view_box.enableAutoRange(axis=pg.ViewBox.YAxis)
        self._sync_controls()
        self.logYChanged.emit(on)

    def set_title(self, title: str) -> None:
        self._title = title
        self._apply_labels()

    def show_x_label(self, show: bool) -> None:
        """Show the x axis name under the ticks (PlotStack keeps it on the bottom plot only)."""
        self._x_label_shown = bool(show)
        self._apply_labels()

    def set_y_label(self, label: str) -> None:
        self._y_label = label
        self._apply_labels()

    def reset_view(self) -> None:
        """Fit all data (what double-click does)."""
        self.view_box.enableAutoRange()

    def presentation(self) -> float:
        return self._scale

    def set_presentation(self, scale: float) -> None:
        """Scale fonts, line widths and symbols (1.0 normal, 1.5-2 for a projector)."""
        self._scale = max(0.5, float(scale))
        self._apply_style()
        for s in self._all_series():
            self._restyle(s)

    def link_x(self, other: "LossPlot") -> None:
        """Share the x range with ``other`` (stacked plots pan and zoom together)."""
        self.plot_item.setXLink(other.plot_item)

    def curve_data(self, series: str, which: str = "main") -> tuple[np.ndarray, np.ndarray]:
        """The (x, y) arrays handed to pyqtgraph for ``series`` ("main" or the faint "raw"
        curve). Equal to the data unless the series has more points than ~2 per pixel, which
        are then reduced to each pixel column's extremes; in log mode y is log10."""
        s = self._series[series]
        item = s.main_curve if which == "main" else s.raw_curve
        x, y = item.getData()
        if x is None:
            return np.empty(0), np.empty(0)
        return np.asarray(x), np.asarray(y)

    def displayed_point_count(self) -> int:
        """Vertices handed to the painter: line points plus band outline points."""
        n = 0
        for s in self._all_series():
            for item in (s.main_curve, s.raw_curve):
                if item is not None and item.isVisible():
                    x, _ = item.getData()
                    n += 0 if x is None else len(x)
            for band in (s.main_band, s.raw_band):
                if band is not None and band.isVisible():
                    n += band._path.elementCount()
        return n

    # -- export -----------------------------------------------------------------------------

    def export_png(self, path: str | Path, scale: float = 2.0) -> None:
        """The chart (without the control row) as PNG at ``scale`` x its size on screen
        (default 2: sharp on slides)."""
        self.refresh()
        self._exporting(scale)
        try:
            save_png(self.plot_widget, path, scale)
        finally:
            self._exporting(0.0)

    def export_svg(self, path: str | Path) -> None:
        """The chart as SVG (vector; curves at screen resolution)."""
        self.refresh()
        self._exporting(1.0)
        try:
            save_svg(self.plot_widget, path, self._title or "curves")
        finally:
            self._exporting(0.0)

    def export_csv(self, path: str | Path, include_overlays: bool = False) -> None:
        """All series, raw values, one row per point: ``series,step,tokens,time,value``.

        Missing tokens/time are empty cells; floats are written in full precision. With
        ``include_overlays`` the overlay series follow, named "overlay: series".
        """
        groups = [("", s) for s in self._series.values()]
        if include_overlays:
            groups += [(f"{name}: ", s) for name, g in self._overlays.items()
                       for s in g.values()]

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

    # -- internals: series and items ----------------------------------------------------------

    def _all_series(self) -> Iterable[_Series]:
        for g in list(self._overlays.values()):
            yield from g.values()
        yield from list(self._series.values())

    def _is_smoothed(self, s: _Series) -> bool:
        return s.style.smooth and self._smoothing > 0

    def _style_for(self, series: str) -> SeriesStyle:
        key = style.color_key(series)
        if key not in self._color_index:
            self._color_index[key] = len(self._color_index)
        k = self._color_index[key] + self._color_offset
        color = style.SERIES_COLORS[k % len(style.SERIES_COLORS)]
        val = style.is_validation(series)
        st = SeriesStyle(color=color, symbol="o" if val else None, smooth=not val,
                         width=1.5 if val else 2.0)
        for k, v in self._styles.get(series, {}).items():
            setattr(st, k, v)
        return st

    def _create_series(self, name: str) -> _Series:
        s = _Series(name, name, self._style_for(name))
        self._make_items(s, overlay=False)
        self._series[name] = s
        return s

    def _make_items(self, s: _Series, overlay: bool) -> None:
        s.raw_curve = pg.PlotDataItem()
        s.main_curve = pg.PlotDataItem()
        # a band's edge is noise (a smooth curve makes a thin band, covered by its midline),
        # so bands are filled without antialiasing: ~3x cheaper (a jagged 1000-vertex band:
        # ~5 ms with, ~1.5 ms without)
        s.raw_band = _Band(antialias=False)
        s.main_band = _Band(antialias=False)
        base = -40 if overlay else 0
        s.raw_band.setZValue(base - 2)
        s.raw_curve.setZValue(base - 1)
        s.main_band.setZValue(base + 9)
        s.main_curve.setZValue(base + 10)
        for item in s.items():
            item.hide()
            self.plot_item.addItem(item)
        s.main_curve.show()
        if self._log_y:
            s.raw_band.setLogMode(False, True)
            s.main_band.setLogMode(False, True)
        # clicking the legend toggles the main curve: the rest of the series follows
        s.main_curve.visibleChanged.connect(lambda s=s: self._on_legend_toggle(s))
        self._restyle(s)
        if self._legend is not None:
            self._legend.addItem(s.main_curve, s.label)
            self._style_legend()

    def _on_legend_toggle(self, s: _Series) -> None:
        if s.main_curve is None or self._updating:
            return
        visible = s.main_curve.isVisible()
        if visible != s.visible:
            s.visible = visible
            self._update_display(s)

    def _drop_items(self, s: _Series) -> None:
        if s.main_curve is not None and self._legend is not None:
            self._legend.removeItem(s.main_curve)
        for item in s.items():
            self.plot_item.removeItem(item)
        s.raw_curve = s.main_curve = s.raw_band = s.main_band = None

    def _restyle(self, s: _Series) -> None:
        """Pens for the series' two curves.

        Drawing cost, measured (Qt raster engine, 2 cores): a 1-px antialiased polyline is
        nearly free (~1.5 ms for 2000 noisy points) but any wider one is stroked as a single
        self-intersecting outline, 50-120 ms for the same points (and still ~1 us per pixel
        of length when drawn as separate segments). So on screen a thick line is a 1-px line
        stamped a few times at sub-pixel offsets (``_stamp_offsets``), which looks the same
        and costs a few milliseconds whatever the data. Exports use true wide pens.
        """
        if s.main_curve is None:
            return
        sc = self._scale
        st = s.style
        color = style.qcolor(st.color, st.alpha)
        s.thick = st.alpha >= 1.0 and st.dash == QtCore.Qt.PenStyle.SolidLine and st.width > 1
        s.main_curve.opts["antialias"] = True
        _install_stamped_paint(s.main_curve.curve)
        self._fit_pen(s)
        if st.symbol:
            s.main_curve.setSymbol(st.symbol)
            s.main_curve.setSymbolSize(7 * sc)
            s.main_curve.setSymbolBrush(pg.mkBrush(color))
            s.main_curve.setSymbolPen(pg.mkPen(style.BACKGROUND, width=1.2 * sc))
        else:
            s.main_curve.setSymbol(None)
        s.raw_curve.setPen(pg.mkPen(style.qcolor(st.color, 0.28 * st.alpha), width=1.0))
        s.raw_curve.opts["antialias"] = True
        s.raw_band.setBrush(style.qcolor(st.color, 0.24 * st.alpha))
        s.main_band.setBrush(style.qcolor(st.color, st.alpha if s.thick else 0.35 * st.alpha))

    def _fit_pen(self, s: _Series, exporting: float = 0.0) -> None:
        """``exporting``: 0 on screen, else the export's pixel ratio (cosmetic pen widths are
        device pixels)."""
        st = s.style
        width = st.width * self._scale if s.thick else 1.0
        curve = s.main_curve.curve
        s.main_curve._legend_width = width * (exporting or 1.0) if s.thick else None
        if exporting or width <= 1.0:
            pen = pg.mkPen(style.qcolor(st.color, st.alpha), width=width * (exporting or 1.0),
                           style=st.dash)
            curve._stamp_offsets = None
        else:
            pen = pg.mkPen(style.qcolor(st.color, st.alpha), width=1.0, style=st.dash)
            curve._stamp_offsets = _stamp_offsets(width)
        pen.setCapStyle(QtCore.Qt.PenCapStyle.RoundCap)
        pen.setJoinStyle(QtCore.Qt.PenJoinStyle.RoundJoin)
        curve.setSegmentedLineMode("on" if (exporting and width > 1.0) else "off")
        s.main_curve.setPen(pen)

    def _exporting(self, ratio: float) -> None:
        """True wide pens for an export at pixel ratio ``ratio`` (painted once), stamped
        thin ones on screen (``ratio`` 0)."""
        for s in self._all_series():
            if s.main_curve is not None and s.thick:
                self._fit_pen(s, exporting=ratio)

    def _current_view_key(self):
        w = int(self.view_box.width()) // 16
        if self.view_box.state["autoRange"][0]:
            return ("full", self._x_axis, w)
        x0, x1 = self.view_box.viewRange()[0]
        return (x0, x1, self._x_axis, w)

    def _update_display(self, s: _Series) -> None:
        """Hand the series' visible part to pyqtgraph, at most ~2 points per pixel column.

        Sparse data (up to ~2 points per column) is drawn as lines through every point. Dense
        data is reduced per column to its minimum and maximum (exact: nothing is averaged
        away): the raw data becomes a faint filled band between them, the main (smoothed)
        curve an opaque band plus a line through the band's middle, which keeps it at least
        one line width thick where the band is thin.
        """
        if s.main_curve is None:
            return
        self._updating = True
        try:
            if not s.visible:
                for item in (s.raw_curve, s.raw_band, s.main_band):
                    item.hide()
                s.main_curve.setData([], [])
                s.main_curve.hide()
                return
            s.main_curve.show()
            s.sync(self._smoothing)
            n = s.n
            xs = s.x[self._x_axis].view()
            ys = s.y.view()
            # about one bin per two pixel columns: filling a jagged band costs ~8 us per
            # vertex (antialiased), so finer bins would blow the frame budget for no
            # visible gain
            bins = max(64, int(self.view_box.width()) // 2)
            if self.view_box.state["autoRange"][0] or n == 0:
                i0, i1 = 0, n
            else:
                x0, x1 = self.view_box.viewRange()[0]
                i0, i1 = s.index_range(self._x_axis, x0, x1)
            if self._is_smoothed(s):
                sm = s.smoothed.view()
                self._show(s.main_curve, s.main_band, xs, sm,
                           s.env_smooth.bins(sm, i0, i1, bins))
                self._show(s.raw_curve, s.raw_band, xs, ys, s.env_raw.bins(ys, i0, i1, bins),
                           midline=False)
            else:
                self._show(s.main_curve, s.main_band, xs, ys,
                           s.env_raw.bins(ys, i0, i1, bins))
                s.raw_curve.setData([], [])
                s.raw_curve.hide()
                s.raw_band.clear()
                s.raw_band.hide()
        finally:
            self._updating = False

    def _show(self, line: pg.PlotDataItem, band: _Band, xs: np.ndarray, ys: np.ndarray,
              pair, midline: bool = True) -> None:
        if pair is None:  # all points (copies: our buffers grow in place)
            band.clear()
            band.hide()
            self._set_line(line, xs.copy(), ys.copy())
            line.show()
            return
        imin, imax = pair
        band.set_band(xs[imin], ys[imin], xs[imax], ys[imax])
        band.show()
        if midline:
            mid = (imin + imax) // 2
            self._set_line(line, xs[mid], 0.5 * (ys[imin] + ys[imax]))
            line.show()
        else:
            line.setData([], [])
            line.hide()

    @staticmethod
    def _set_line(item: pg.PlotDataItem, x: np.ndarray, y: np.ndarray) -> None:
        if np.isfinite(x).all() and np.isfinite(y).all():
            item.setData(x, y, connect="all", skipFiniteCheck=True)
        else:
            item.setData(x, y, connect="finite", skipFiniteCheck=False)

    def _on_view_changed(self, *args) -> None:
        if self._updating:
            return
        key = self._current_view_key()
        if key == self._view_key:
            return
        self._view_key = key
        for s in self._all_series():
            self._update_display(s)

    # -- internals: look --------------------------------------------------------------------

    def _apply_labels(self) -> None:
        sc = self._scale
        css = {"color": style.MUTED, "font-size": f"{9.5 * sc:.1f}pt"}
        self.plot_item.setLabel("bottom", X_AXIS_LABELS[self._x_axis], **css)
        self.plot_item.showLabel("bottom", getattr(self, "_x_label_shown", True))
        if self._y_label:
            self.plot_item.setLabel("left", self._y_label, **css)
        else:
            self.plot_item.showLabel("left", False)
        if self._title:
            size = 10.5 if isinstance(self, MetricPlot) else 11.5
            self.plot_item.setTitle(self._title, color=style.FOREGROUND,
                                    size=f"{size * sc:.1f}pt", bold=True)
        else:
            self.plot_item.setTitle(None)

    def _apply_style(self) -> None:
        sc = self._scale
        # a chart squeezed below this shows no curve worth reading (nor its whole title): its page
        # reflows or scrolls instead
        width = MIN_PLOT_WIDTH * sc
        if self._title:
            size = 10.5 if isinstance(self, MetricPlot) else 11.5
            title_font = style.font(1.0, size=size * sc, bold=True)
            width = max(width, QtGui.QFontMetricsF(title_font).horizontalAdvance(self._title) * 1.1 + 48 * sc)
        tick_font = style.font(sc, size=9)
        # the title, the ticks and the axis name come on top of the data area (they ate all but
        # ~40 px of a 120 px plot)
        chrome = (QtGui.QFontMetricsF(tick_font).height() + 4 * sc          # tick labels
                  + QtGui.QFontMetricsF(style.font(1.0, size=9.5 * sc)).height() + 6 * sc  # axis name
                  + 18 * sc)                                                   # margins, spacing
        if self._title:
            chrome += QtGui.QFontMetricsF(title_font).height() + 8 * sc
        height = max(MIN_PLOT_HEIGHT * sc, MIN_VIEW_HEIGHT * sc + chrome)
        self.plot_widget.setMinimumSize(int(width), int(math.ceil(height)))
        for name in ("left", "bottom"):
            ax = self.plot_item.getAxis(name)
            ax.setPen(pg.mkPen(style.MUTED, width=1))
            ax.setTextPen(pg.mkPen(style.FOREGROUND))
            ax.setTickFont(tick_font)
            # major ticks only: minor grid lines cost ~5 ms a frame and add clutter
            ax.setStyle(tickTextOffset=int(round(4 * sc)), tickLength=int(round(-5 * sc)),
                        maxTickLevel=0)
        self.plot_item.getAxis("left").setWidth(int(round(62 * sc)))
        self.plot_item.layout.setContentsMargins(4 * sc, 4 * sc, 12 * sc, 4 * sc)
        self._apply_labels()
        self._style_legend()
        self.readout.setFont(style.font(sc, size=9))
        self.readout.setStyleSheet(
            "QLabel { background: rgba(255,255,255,230); border: 1px solid #dddddd;"
            f" border-radius: {int(4 * sc)}px; padding: {int(3 * sc)}px {int(6 * sc)}px;"
            f" color: {style.FOREGROUND}; }}")
        if self.controls is not None:
            self.controls.set_presentation(sc)

    def _style_legend(self) -> None:
        if self._legend is None:
            return
        lg = self._legend
        lg.setBrush(pg.mkBrush(255, 255, 255, 220))
        lg.setPen(pg.mkPen(221, 221, 221))
        lg.setLabelTextColor(style.FOREGROUND)
        lg.setLabelTextSize(f"{9 * self._scale:.1f}pt")

    def _fit_legend_band(self, *_args) -> None:
        """As many legend columns as the plot's width takes; the band above the data as tall as
        the legend (none while the legend is empty)."""
        lg = self._legend
        if lg is None or self._fitting_legend or not shiboken6.isValid(lg):  # (closing the window)
            return
        self._fitting_legend = True
        try:
            pi = self.plot_item
            pi.getAxis("top").setGrid(False)  # the bottom axis draws the grid
            lg.setVisible(bool(lg.items))  # an empty legend drew an empty box
            if not lg.items:
                pi.getAxis("top").setHeight(0)
                return
            room = self.view_box.width() - 4
            for n in range(len(lg.items), 0, -1):
                lg.setColumnCount(n)
                if lg.boundingRect().width() <= room:
                    break
            band = pi.getAxis("top")
            band.setHeight(int(math.ceil(lg.boundingRect().height() + 4)))
            lg.setPos(max(0.0, band.width() - lg.boundingRect().width() - 2), 2)
        finally:
            self._fitting_legend = False

    def _sync_controls(self) -> None:
        if self.controls is not None:
            self.controls.set_state(self._smoothing, self._x_axis, self._log_y)

    def _export_dialog(self, kind: str) -> None:
        path = ask_export_path(self, kind, self._title or "curves")
        if path:
            {"png": self.export_png, "svg": self.export_svg, "csv": self.export_csv}[kind](path)

    # -- internals: mouse -------------------------------------------------------------------

    def eventFilter(self, obj, event):
        if event.type() == QtCore.QEvent.Type.Leave:
            self._hide_readout()
        return super().eventFilter(obj, event)

    def _hide_readout(self) -> None:
        self._cursor.hide()
        self.readout.hide()

    def _on_mouse_moved(self, args) -> None:
        pos = args[0]
        if not self.view_box.sceneBoundingRect().contains(pos):
            self._hide_readout()
            return
        x = self.view_box.mapSceneToView(pos).x()
        text = self.describe_x(x)
        if not text:
            self._hide_readout()
            return
        self._cursor.setPos(x)
        self._cursor.show()
        self.readout.setText(text)
        self.readout.adjustSize()
        r = self.plot_widget.mapFromScene(self.view_box.sceneBoundingRect()).boundingRect()
        m = int(6 * self._scale)
        self.readout.move(r.left() + m, r.bottom() - self.readout.height() - m)
        self.readout.show()
        self.readout.raise_()

    def describe_x(self, x: float) -> str:
        """Rich-text readout of every visible series at its point nearest to ``x``."""
        rows = []
        nearest = None
        for s in self._series.values():
            if not s.visible or s.n == 0:
                continue
            xs = s.x[self._x_axis].view()
            if s.sorted[self._x_axis]:
                i = int(np.searchsorted(xs, x))
                i = min((j for j in (i - 1, i) if 0 <= j < s.n), key=lambda j: abs(xs[j] - x))
            else:
                with np.errstate(invalid="ignore"):
                    d = np.abs(xs - x)
                if np.all(np.isnan(d)):
                    continue
                i = int(np.nanargmin(d))
            if nearest is None or abs(xs[i] - x) < abs(nearest - x):
                nearest = float(xs[i])
            v = s.y.data[i]
            row = (f"<span style='color:{s.style.color}'>&#9679;</span>&nbsp;{s.name}"
                   f"&nbsp;&nbsp;<b>{v:.4g}</b>")
            if self._is_smoothed(s) and s.smoothed.n > i:
                row += (f"&nbsp;<span style='color:{style.FAINT}'>"
                        f"smoothed {s.smoothed.data[i]:.4g}</span>")
            rows.append(row)
        if nearest is None:
            return ""
        if self._x_axis == "time":
            head = _clock(nearest, 1)
        elif float(nearest).is_integer():
            head = f"{nearest:,.0f}"
        else:
            head = f"{nearest:.4g}"
        head = f"<span style='color:{style.MUTED}'>{X_AXIS_LABELS[self._x_axis]} {head}</span>"
        return "<br>".join([head] + rows)


class MetricPlot(LossPlot):
    """A compact LossPlot for metrics such as learning rate, gradient norm or tokens/s: no
    control row, no smoothing and no legend unless asked."""

    def __init__(self, parent: QtWidgets.QWidget | None = None, *, title: str = "",
                 y_label: str = "", smoothing: float = 0.0, presentation: float = 1.0,
                 legend: bool = False, color_offset: int = 0):
        super().__init__(parent, title=title, y_label=y_label, show_controls=False,
                         smoothing=smoothing, presentation=presentation, legend=legend,
                         color_offset=color_offset)


class PlotStack(QtWidgets.QWidget):
    """Plots stacked vertically with linked x axes and one control row.

    ::

        stack = PlotStack()
        stack.add_plot("loss", LossPlot(title="Loss", show_controls=False))
        stack.add_plot("lr", title="Learning rate")            # a MetricPlot
        stack.add_plot("gnorm", title="Gradient norm")
        stack.add_points("loss", "train/lm", step, y, tokens, time)
        timer.timeout.connect(stack.refresh)

    The x-axis choice applies to every plot; smoothing and log scale to the LossPlots (not the
    MetricPlots, which show their metric raw).
    """

    def __init__(self, parent: QtWidgets.QWidget | None = None, *,
                 show_controls: bool = True, presentation: float = 1.0):
        super().__init__(parent)
        self._plots: dict[str, LossPlot] = {}
        self._scale = presentation
        self._smoothing: float | None = None
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.controls: CurveControls | None = None
        if show_controls:
            self.controls = CurveControls(exports=("png",))
            self.controls.smoothingChanged.connect(self.set_smoothing)
            self.controls.xAxisChanged.connect(self.set_x_axis)
            self.controls.logYChanged.connect(self.set_log_y)
            self.controls.exportRequested.connect(self._export_dialog)
            self.controls.set_presentation(presentation)
            self.controls.set_state(0.6, "step", False)
            layout.addWidget(self.controls)
        self._splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        self._splitter.setChildrenCollapsible(False)
        self._splitter.setHandleWidth(4)
        layout.addWidget(self._splitter, 1)

    def add_plot(self, key: str, plot: LossPlot | None = None, *, title: str = "",
                 y_label: str = "", stretch: int | None = None) -> LossPlot:
        """Append ``plot`` (default: a new MetricPlot) under ``key``; its x axis follows the
        first plot's. ``stretch``: relative height (default 2 for a LossPlot, 1 otherwise)."""
        if plot is None:
            plot = MetricPlot(title=title, y_label=y_label, presentation=self._scale,
                              color_offset=len(self._plots))
        first = next(iter(self._plots.values()), None)
        previous = list(self._plots.values())
        self._plots[key] = plot
        self._splitter.addWidget(plot)
        index = self._splitter.indexOf(plot)
        if stretch is None:
            stretch = 1 if isinstance(plot, MetricPlot) else 2
        self._splitter.setStretchFactor(index, stretch)
        if first is not None:
            plot.link_x(first)
            plot.set_x_axis(first.x_axis())
        # only the bottom plot names the x axis
        for p in previous:
            p.show_x_label(False)
        plot.show_x_label(True)
        if self.controls is not None and not isinstance(plot, MetricPlot):
            self.controls.set_state(plot.smoothing(), plot.x_axis(), plot.log_y())
        return plot

    def plot(self, key: str) -> LossPlot:
        return self._plots[key]

    def plots(self) -> dict[str, LossPlot]:
        return dict(self._plots)

    def add_points(self, key: str, series: str, step, y, tokens=None, time=None) -> None:
        self._plots[key].add_points(series, step, y, tokens, time)

    def refresh(self) -> None:
        for p in self._plots.values():
            p.refresh()

    def set_x_axis(self, axis: str) -> None:
        for p in self._plots.values():
            p.set_x_axis(axis)

    def set_smoothing(self, weight: float) -> None:
        for p in self._plots.values():
            if not isinstance(p, MetricPlot):
                p.set_smoothing(weight)

    def set_log_y(self, on: bool) -> None:
        for p in self._plots.values():
            if not isinstance(p, MetricPlot):
                p.set_log_y(on)

    def set_presentation(self, scale: float) -> None:
        self._scale = scale
        for p in self._plots.values():
            p.set_presentation(scale)
        if self.controls is not None:
            self.controls.set_presentation(scale)

    def clear(self) -> None:
        for p in self._plots.values():
            p.clear()

    def export_png(self, path: str | Path) -> None:
        """All plots as one PNG at twice their size on screen."""
        self.refresh()
        for p in self._plots.values():
            p._exporting(2.0)
        try:
            save_png(self._splitter, path, 2.0)
        finally:
            for p in self._plots.values():
                p._exporting(0.0)

    def _export_dialog(self, kind: str) -> None:
        path = ask_export_path(self, kind, "curves")
        if path:
            self.export_png(path)


# =============================================================================================
# benchmark


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


if __name__ == "__main__":  # python -m workbench.gui.widgets.loss_plot
    print(redraw_benchmark())
