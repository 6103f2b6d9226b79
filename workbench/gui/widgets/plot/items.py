"""Graphics items of the curve plot: the min/max band, the legend swatch, the stamped thick line.

Qt strokes any antialiased line wider than 1 px as one self-intersecting outline (50-120 ms for
2000 noisy points), so a thick line is a 1-px line stamped at sub-pixel offsets
(``install_stamped_paint``); bands are filled without antialiasing (3x cheaper, and their edge
is noise anyway).
"""

from __future__ import annotations

import types

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui


class Band(pg.GraphicsObject):
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


class LegendSample(pg.ItemSample):
    """Legend swatch drawn with the series' true line width (on screen the line itself is a
    stamped 1-px pen, see Series.restyle)."""

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


def stamp_offsets(width: float) -> list[tuple[float, float]]:
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


def install_stamped_paint(curve: pg.PlotCurveItem) -> None:
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
