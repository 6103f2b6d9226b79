"""The curve plot: ``LossPlot`` (training curves) and its compact variant ``MetricPlot``.

Feeding (``add_points``) only copies; ``refresh`` draws what changed (series.py, items.py, curves.py)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pyqtgraph as pg
import shiboken6
from PySide6 import QtCore, QtGui, QtWidgets

from ... import theme
from ..export import save_png, save_svg
from ..plot_input import ZOOM_HINT, wheel_scrolls_page
from .axes import XAxis, YAxis
from .controls import CurveControls, ask_export_path
from .items import LegendSample
from .series import X_AXES, X_AXIS_LABELS, SeriesStyle, Series, overlay_columns, readout_html, write_csv
from workbench.curves import SMOOTH_MAX

ArrayLike = np.ndarray | Sequence[float] | float | int

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

    TITLE_POINTS = 11.5  # the title's font size at scale 1

    def __init__(self, parent: QtWidgets.QWidget | None = None, *, title: str = "",
                 y_label: str = "loss", show_controls: bool = True, smoothing: float = 0.9,
                 presentation: float = 1.0, legend: bool = True, color_offset: int = 0):
        super().__init__(parent)
        self._scale = max(0.5, float(presentation))
        self._smoothing = float(np.clip(smoothing, 0.0, SMOOTH_MAX))
        self._x_axis = "step"
        self._log_y = False
        self._series: dict[str, Series] = {}
        self._overlays: dict[str, dict[str, Series]] = {}
        self._color_index: dict[str, int] = {}
        self._color_offset = int(color_offset)
        self._styles: dict[str, dict] = {}
        self._view_key = None
        self._updating = False
        self._title = title
        self._y_label = y_label

        self._x_axis_item = XAxis(orientation="bottom")
        self._y_axis_item = YAxis(orientation="left")
        self.plot_widget = pg.PlotWidget(
            background=theme.BACKGROUND,
            axisItems={"bottom": self._x_axis_item, "left": self._y_axis_item})
        self.plot_widget.setAntialiasing(True)
        wheel_scrolls_page(self.plot_widget, reset=self.reset_view,
                           hint=ZOOM_HINT + " (or the A button, lower left)")
        self.plot_item: pg.PlotItem = self.plot_widget.getPlotItem()
        pi = self.plot_item
        pi.showGrid(x=True, y=True, alpha=theme.GRID_ALPHA)
        pi.setMenuEnabled(False)  # pyqtgraph's "A" button stays: it shows (on hover) while zoomed
        pi.getAxis("top").setStyle(showValues=False)
        self.view_box: pg.ViewBox = pi.getViewBox()
        self.view_box.sigXRangeChanged.connect(self._on_view_changed)
        self.view_box.sigResized.connect(self._on_view_changed)
        self._legend = pg.LegendItem(offset=None, sampleType=LegendSample) if legend else None
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
                                       pen=pg.mkPen(theme.FAINT, width=1,
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
            s.restyle(self._scale)
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

        group: dict[str, Series] = {}
        for series, data in series_dict.items():
            base = self._style_for(series)
            st = SeriesStyle(color=base.color, symbol=base.symbol, smooth=base.smooth,
                             width=max(1.0, base.width * 0.8), dash=dash, alpha=0.55)
            s = Series(series, f"{name}: {series}", st)
            s.append(*overlay_columns(data))
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
                s.restyle(self._scale)
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
        self._apply_style()  # the minimum height leaves the data area room under the title

    def show_x_label(self, show: bool) -> None:
        """Show the x axis name under the ticks (PlotStack keeps it on the bottom plot only)."""
        self._x_label_shown = bool(show)
        self._apply_labels()

    def set_y_label(self, label: str) -> None:
        self._y_label = label
        self._apply_labels()

    def set_x_label(self, label: str) -> None:
        """Name the x axis (the step of something else, seconds); "" gives back the axis' own name."""
        self._x_label = label
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
            s.restyle(self._scale)

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
        write_csv(path, groups)

    # -- internals: series and items ----------------------------------------------------------

    def _all_series(self) -> Iterable[Series]:
        for g in list(self._overlays.values()):
            yield from g.values()
        yield from list(self._series.values())

    def _is_smoothed(self, s: Series) -> bool:
        return s.style.smooth and self._smoothing > 0

    def _style_for(self, series: str) -> SeriesStyle:
        key = theme.color_key(series)
        if key not in self._color_index:
            self._color_index[key] = len(self._color_index)
        k = self._color_index[key] + self._color_offset
        color = theme.SERIES_COLORS[k % len(theme.SERIES_COLORS)]
        val = theme.is_validation(series)
        st = SeriesStyle(color=color, symbol="o" if val else None, smooth=not val,
                         width=1.5 if val else 2.0)
        for k, v in self._styles.get(series, {}).items():
            setattr(st, k, v)
        return st

    def _create_series(self, name: str) -> Series:
        s = Series(name, name, self._style_for(name))
        self._make_items(s, overlay=False)
        self._series[name] = s
        return s

    def _make_items(self, s: Series, overlay: bool) -> None:
        s.make_items(overlay)
        for item in s.items():
            item.hide()
            self.plot_item.addItem(item)
        s.main_curve.show()
        if self._log_y:
            s.raw_band.setLogMode(False, True)
            s.main_band.setLogMode(False, True)
        # clicking the legend toggles the main curve: the rest of the series follows
        s.main_curve.visibleChanged.connect(lambda s=s: self._on_legend_toggle(s))
        s.restyle(self._scale)
        if self._legend is not None:
            self._legend.addItem(s.main_curve, s.label)
            self._style_legend()

    def _on_legend_toggle(self, s: Series) -> None:
        if s.main_curve is None or self._updating:
            return
        visible = s.main_curve.isVisible()
        if visible != s.visible:
            s.visible = visible
            self._update_display(s)

    def _drop_items(self, s: Series) -> None:
        if s.main_curve is not None and self._legend is not None:
            self._legend.removeItem(s.main_curve)
        for item in s.items():
            self.plot_item.removeItem(item)
        s.raw_curve = s.main_curve = s.raw_band = s.main_band = None

    def _exporting(self, ratio: float) -> None:
        """True wide pens for an export at pixel ratio ``ratio`` (painted once), stamped
        thin ones on screen (``ratio`` 0)."""
        for s in self._all_series():
            if s.main_curve is not None and s.thick:
                s.fit_pen(self._scale, exporting=ratio)

    def _current_view_key(self):
        w = int(self.view_box.width()) // 16
        if self.view_box.state["autoRange"][0]:
            return ("full", self._x_axis, w)
        x0, x1 = self.view_box.viewRange()[0]
        return (x0, x1, self._x_axis, w)

    def _update_display(self, s: Series) -> None:
        """Hand the series' visible part to pyqtgraph, at most ~2 points per pixel column
        (``Series.draw``)."""
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
            # about one bin per two pixel columns: filling a jagged band costs ~8 us per
            # vertex (antialiased), so finer bins would blow the frame budget for no
            # visible gain
            bins = max(64, int(self.view_box.width()) // 2)
            if self.view_box.state["autoRange"][0] or n == 0:
                i0, i1 = 0, n
            else:
                x0, x1 = self.view_box.viewRange()[0]
                i0, i1 = s.index_range(self._x_axis, x0, x1)
            s.draw(self._x_axis, self._is_smoothed(s), i0, i1, bins)
        finally:
            self._updating = False

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
        css = {"color": theme.MUTED, "font-size": f"{9.5 * sc:.1f}pt"}
        self.plot_item.setLabel("bottom", getattr(self, "_x_label", "") or X_AXIS_LABELS[self._x_axis], **css)
        self.plot_item.showLabel("bottom", getattr(self, "_x_label_shown", True))
        if self._y_label:
            self.plot_item.setLabel("left", self._y_label, **css)
        else:
            self.plot_item.showLabel("left", False)
        if self._title:
            size = self.TITLE_POINTS
            self.plot_item.setTitle(self._title, color=theme.FOREGROUND,
                                    size=f"{size * sc:.1f}pt", bold=True)
        else:
            self.plot_item.setTitle(None)

    def _apply_style(self) -> None:
        sc = self._scale
        # a chart squeezed below this shows no curve worth reading (nor its whole title): its page
        # reflows or scrolls instead
        width = MIN_PLOT_WIDTH * sc
        if self._title:
            size = self.TITLE_POINTS
            title_font = theme.font(1.0, size=size * sc, bold=True)
            width = max(width, QtGui.QFontMetricsF(title_font).horizontalAdvance(self._title) * 1.1 + 48 * sc)
        tick_font = theme.font(sc, size=9)
        # the title, the ticks and the axis name come on top of the data area (they ate all but
        # ~40 px of a 120 px plot)
        chrome = (QtGui.QFontMetricsF(tick_font).height() + 4 * sc          # tick labels
                  + QtGui.QFontMetricsF(theme.font(1.0, size=9.5 * sc)).height() + 6 * sc  # axis name
                  + 18 * sc)                                                   # margins, spacing
        if self._title:
            chrome += QtGui.QFontMetricsF(title_font).height() + 8 * sc
        height = max(MIN_PLOT_HEIGHT * sc, MIN_VIEW_HEIGHT * sc + chrome)
        self.plot_widget.setMinimumSize(int(width), int(math.ceil(height)))
        for name in ("left", "bottom"):
            ax = self.plot_item.getAxis(name)
            ax.setPen(pg.mkPen(theme.MUTED, width=1))
            ax.setTextPen(pg.mkPen(theme.FOREGROUND))
            ax.setTickFont(tick_font)
            # major ticks only: minor grid lines cost ~5 ms a frame and add clutter
            ax.setStyle(tickTextOffset=int(round(4 * sc)), tickLength=int(round(-5 * sc)),
                        maxTickLevel=0)
        self.plot_item.getAxis("left").setWidth(int(round(62 * sc)))
        self.plot_item.layout.setContentsMargins(4 * sc, 4 * sc, 12 * sc, 4 * sc)
        self._apply_labels()
        self._style_legend()
        self.readout.setFont(theme.font(sc, size=9))
        self.readout.setStyleSheet(
            "QLabel { background: rgba(255,255,255,230); border: 1px solid #dddddd;"
            f" border-radius: {int(4 * sc)}px; padding: {int(3 * sc)}px {int(6 * sc)}px;"
            f" color: {theme.FOREGROUND}; }}")
        if self.controls is not None:
            self.controls.set_presentation(sc)

    def _style_legend(self) -> None:
        if self._legend is None:
            return
        lg = self._legend
        lg.setBrush(pg.mkBrush(255, 255, 255, 220))
        lg.setPen(pg.mkPen(221, 221, 221))
        lg.setLabelTextColor(theme.FOREGROUND)
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
        return readout_html(self._series.values(), self._x_axis, x, self._is_smoothed)


class MetricPlot(LossPlot):
    """A compact LossPlot for metrics such as learning rate, gradient norm or tokens/s: no
    control row, no smoothing and no legend unless asked."""

    TITLE_POINTS = 10.5  # smaller than a LossPlot's: it sits under one

    def __init__(self, parent: QtWidgets.QWidget | None = None, *, title: str = "",
                 y_label: str = "", smoothing: float = 0.0, presentation: float = 1.0,
                 legend: bool = False, color_offset: int = 0):
        super().__init__(parent, title=title, y_label=y_label, show_controls=False,
                         smoothing=smoothing, presentation=presentation, legend=legend,
                         color_offset=color_offset)
