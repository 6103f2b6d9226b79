"""The toolbar's icons, drawn here: crisp at any size, and the same on every platform (the
platform's media icons vary a lot)."""

from __future__ import annotations

from PySide6 import QtCore, QtGui

from .. import theme


def make_icon(shape: str, color: str = theme.ICON_COLOR) -> QtGui.QIcon:
    """A 64-pixel icon: "play", "pause", "resume", "stop", "demo" (a sparkle) or "screen"."""
    size = 64
    pm = QtGui.QPixmap(size, size)
    pm.fill(QtCore.Qt.GlobalColor.transparent)
    p = QtGui.QPainter(pm)
    p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    p.setPen(QtCore.Qt.PenStyle.NoPen)
    p.setBrush(QtGui.QColor(color))
    P = QtCore.QPointF
    if shape == "play":
        p.drawPolygon(QtGui.QPolygonF([P(16, 8), P(56, 32), P(16, 56)]))
    elif shape == "pause":
        p.drawRoundedRect(QtCore.QRectF(12, 8, 14, 48), 3, 3)
        p.drawRoundedRect(QtCore.QRectF(38, 8, 14, 48), 3, 3)
    elif shape == "resume":
        p.drawRoundedRect(QtCore.QRectF(8, 8, 10, 48), 3, 3)
        p.drawPolygon(QtGui.QPolygonF([P(26, 8), P(60, 32), P(26, 56)]))
    elif shape == "stop":
        p.drawRoundedRect(QtCore.QRectF(10, 10, 44, 44), 6, 6)
    elif shape == "demo":  # a sparkle
        path = QtGui.QPainterPath()
        cx, cy, r, k = 28, 34, 26, 7
        path.moveTo(cx, cy - r)
        path.quadTo(cx + k / 2, cy - k / 2, cx + r, cy)
        path.quadTo(cx + k / 2, cy + k / 2, cx, cy + r)
        path.quadTo(cx - k / 2, cy + k / 2, cx - r, cy)
        path.quadTo(cx - k / 2, cy - k / 2, cx, cy - r)
        p.drawPath(path)
        p.drawEllipse(QtCore.QPointF(52, 10), 6, 6)
    elif shape == "screen":
        p.setBrush(QtCore.Qt.BrushStyle.NoBrush)
        p.setPen(QtGui.QPen(QtGui.QColor(color), 6))
        p.drawRoundedRect(QtCore.QRectF(6, 10, 52, 34), 4, 4)
        p.drawLine(P(32, 46), P(32, 56))
        p.drawLine(P(20, 57), P(44, 57))
    p.end()
    return QtGui.QIcon(pm)
