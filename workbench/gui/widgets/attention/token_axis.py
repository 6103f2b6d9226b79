"""An axis labelled with tokens: every token at its cell's centre, shrunk or thinned to fit."""

from __future__ import annotations

import math
from typing import Sequence

import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from ....fmt import label_stride
from ... import theme

MIN_LABEL_POINTS = 6.0  # token labels shrink to this before they are thinned


class TokenAxis(pg.AxisItem):
    """Axis whose ticks are tokens at cell centres (i + 0.5).

    Every token is labelled, so that a row of labels reads as the text: where the cells are
    small the labels shrink (down to MIN_LABEL_POINTS); only below that are they thinned to every
    k-th token, recomputed on every zoom, so zooming in reveals all of them (``on_stride`` hears
    of k, for a note that says so). ``rotate=True`` draws labels vertically (for a bottom axis
    with many tokens).
    """

    def __init__(self, orientation: str, rotate: bool = False, max_chars: int = 12):
        super().__init__(orientation)
        self.rotate = rotate and orientation in ("top", "bottom")
        self.max_chars = max_chars
        self.tokens: list[str] = []
        self.labels: list[str] = []
        self.stride = 1
        self.drawn: list[int] = []  # token indices labelled in the last paint
        self.label_font: QtGui.QFont | None = None  # the font of the last paint (maybe shrunk)
        self.on_stride = None  # called with the new stride when it changes
        self.setStyle(tickLength=4, tickTextOffset=3, autoExpandTextSpace=False)

    def set_tokens(self, tokens: Sequence[str]) -> None:
        self.tokens = list(tokens)
        self.labels = [theme.short_label(t, self.max_chars) for t in self.tokens]
        self._fit_size()
        self.picture = None
        self.update()

    def setTickFont(self, font):
        super().setTickFont(font)
        self._fit_size()

    def _fit_size(self) -> None:
        if not hasattr(self, "labels"):  # called from AxisItem.__init__
            return
        fm = QtGui.QFontMetricsF(self.style["tickFont"] or QtGui.QFont())
        widest = max((fm.horizontalAdvance(s) for s in self.labels), default=0.0)
        label_h = self.label.boundingRect().height() * 0.8 if self.label.isVisible() else 0.0
        extra = self.style["tickLength"] + self.style["tickTextOffset"][0] + 4
        if self.orientation in ("top", "bottom"):
            text = widest if self.rotate else fm.height()
            self.setHeight(int(math.ceil(text + extra + label_h)))
        else:
            self.setWidth(int(math.ceil(widest + extra + label_h)))

    def showLabel(self, show=True):
        super().showLabel(show)
        self._fit_size()

    def _fitted_font(self, px_per_token: float, vertical: bool) -> QtGui.QFont:
        """The tick font, shrunk until one label fits each cell (not below MIN_LABEL_POINTS)."""
        font = QtGui.QFont(self.style["tickFont"] or QtGui.QFont())
        if not (vertical or self.rotate):  # side by side: thinning reads better than tiny text
            return font
        size = font.pointSizeF() if font.pointSizeF() > 0 else 9.0
        while size > MIN_LABEL_POINTS and QtGui.QFontMetricsF(font).height() > px_per_token:
            size = max(MIN_LABEL_POINTS, size - 0.5)
            font.setPointSizeF(size)
        return font

    def generateDrawSpecs(self, p):
        font = self.style["tickFont"] or QtGui.QFont()
        fm = QtGui.QFontMetricsF(font)
        bounds = self.mapRectFromParent(self.geometry())
        r0, r1 = self.range
        dif = r1 - r0
        vertical = self.orientation in ("left", "right")
        if dif == 0 or not self.tokens:
            return (self.pen(), QtCore.QPointF(), QtCore.QPointF()), [], []
        if vertical:
            scale = -bounds.height() / dif
            offset = r0 * scale - bounds.height()
            length = bounds.height()
        else:
            scale = bounds.width() / dif
            offset = r0 * scale
            length = bounds.width()
        px_per_token = abs(scale)
        font = self._fitted_font(px_per_token, vertical)
        self.label_font = font
        p.setFont(font)
        fm = QtGui.QFontMetricsF(font)
        need = fm.height() if (vertical or self.rotate) else \
            max((fm.horizontalAdvance(s) for s in self.labels), default=10) + 6
        stride = label_stride(need, px_per_token)
        if stride != self.stride and self.on_stride is not None:
            self.stride = stride
            self.on_stride(stride)
        self.stride = stride
        lo, hi = sorted((r0, r1))
        first = max(0, int(math.floor(lo)))
        last = min(len(self.tokens) - 1, int(math.ceil(hi)))
        tick_len = self.style["tickLength"]
        text_off = self.style["tickTextOffset"][0 if vertical else 1]
        if self.orientation == "left":
            edge, direction = bounds.right(), -1
        elif self.orientation == "right":
            edge, direction = bounds.left(), 1
        elif self.orientation == "top":
            edge, direction = bounds.bottom(), -1
        else:
            edge, direction = bounds.top(), 1
        tick_specs, text_specs = [], []
        drawn = []
        pen = self.tickPen()
        for i in range(first - first % stride, last + 1, stride):
            if i < first:
                continue
            pos = (i + 0.5) * scale - offset
            if pos < -0.5 or pos > length + 0.5:
                continue
            drawn.append(i)
            if vertical:
                p1 = QtCore.QPointF(edge, pos)
                p2 = QtCore.QPointF(edge + direction * tick_len, pos)
            else:
                p1 = QtCore.QPointF(pos, edge)
                p2 = QtCore.QPointF(pos, edge + direction * tick_len)
            tick_specs.append((pen, p1, p2))
            text_specs.append((pos, edge + direction * (tick_len + text_off), self.labels[i]))
        self.drawn = drawn
        if vertical:
            axis_spec = (self.pen(), QtCore.QPointF(edge, 0), QtCore.QPointF(edge, length))
        else:
            axis_spec = (self.pen(), QtCore.QPointF(0, edge), QtCore.QPointF(length, edge))
        return axis_spec, tick_specs, text_specs

    def drawPicture(self, p, axisSpec, tickSpecs, textSpecs):
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, False)
        p.setRenderHint(QtGui.QPainter.RenderHint.TextAntialiasing, True)
        for pen, p1, p2 in tickSpecs:
            p.setPen(pen)
            p.drawLine(p1, p2)
        font = self.label_font or self.style["tickFont"] or QtGui.QFont()
        p.setFont(font)
        p.setPen(self.textPen())
        fm = QtGui.QFontMetricsF(font)
        h = fm.height()
        big = 2000.0
        A = QtCore.Qt.AlignmentFlag
        for pos, base, text in textSpecs:
            if self.orientation == "left":
                p.drawText(QtCore.QRectF(base - big, pos - h / 2, big, h),
                           int(A.AlignRight | A.AlignVCenter), text)
            elif self.orientation == "right":
                p.drawText(QtCore.QRectF(base, pos - h / 2, big, h),
                           int(A.AlignLeft | A.AlignVCenter), text)
            elif self.rotate:
                p.save()
                p.translate(pos, base)
                if self.orientation == "bottom":  # reads upwards, ends at the axis
                    p.rotate(-90)
                    p.drawText(QtCore.QRectF(-big, -h / 2, big, h),
                               int(A.AlignRight | A.AlignVCenter), text)
                else:
                    p.rotate(-90)
                    p.drawText(QtCore.QRectF(0, -h / 2, big, h),
                               int(A.AlignLeft | A.AlignVCenter), text)
                p.restore()
            elif self.orientation == "bottom":
                p.drawText(QtCore.QRectF(pos - big / 2, base, big, h),
                           int(A.AlignHCenter | A.AlignTop), text)
            else:
                p.drawText(QtCore.QRectF(pos - big / 2, base - h, big, h),
                           int(A.AlignHCenter | A.AlignBottom), text)
