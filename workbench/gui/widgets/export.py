"""Writing views to image files: PNG at a chosen scale, SVG as vectors."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from .. import theme


def save_png(widget: QtWidgets.QWidget, path: str | Path, scale: float = 2.0) -> None:
    """Render ``widget`` (a pyqtgraph view or any widget) to PNG at ``scale`` x its size."""
    size = widget.size()
    img = QtGui.QImage(max(1, int(size.width() * scale)), max(1, int(size.height() * scale)),
                       QtGui.QImage.Format.Format_ARGB32)
    img.setDevicePixelRatio(scale)
    img.fill(QtGui.QColor(theme.BACKGROUND))
    painter = QtGui.QPainter(img)
    try:
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QtGui.QPainter.RenderHint.TextAntialiasing)
        # QWidget.render scales a QGraphicsView's scene twice on a high-ratio image, so the
        # views (pyqtgraph plots) are painted on their own, in place, over the rest
        views = [widget] if isinstance(widget, QtWidgets.QGraphicsView) else [
            v for v in widget.findChildren(QtWidgets.QGraphicsView) if v.isVisible()]
        if not isinstance(widget, QtWidgets.QGraphicsView):
            widget.render(painter, QtCore.QPoint(0, 0))
        for view in views:
            origin = view.mapTo(widget, QtCore.QPoint(0, 0)) if view is not widget \
                else QtCore.QPoint(0, 0)
            target = QtCore.QRectF(origin.x(), origin.y(), view.width(), view.height())
            painter.fillRect(target, QtGui.QColor(theme.BACKGROUND))
            view.render(painter, target, view.viewport().rect())
    finally:
        painter.end()
    if not img.save(str(path), "PNG"):
        raise OSError(f"could not write {path}")


def save_svg(widget: QtWidgets.QWidget, path: str | Path, title: str) -> None:
    """Paint ``widget`` into an SVG file (Qt's SVG generator: curves stay vectors, text stays
    text). pyqtgraph's SVGExporter fails on some items in 0.14, this path does not."""
    from PySide6.QtSvg import QSvgGenerator

    gen = QSvgGenerator()
    gen.setFileName(str(path))
    size = widget.size()
    gen.setSize(size)
    gen.setViewBox(QtCore.QRect(0, 0, size.width(), size.height()))
    gen.setTitle(title)
    # pyqtgraph's axes are recorded as QPictures, which replay scaled by the ratio of the
    # two devices' resolutions: give the SVG the screen's, or the axes drift off the data
    gen.setResolution(widget.logicalDpiX())
    gen.setDescription("GPT Workbench")
    painter = QtGui.QPainter(gen)
    try:
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        if isinstance(widget, QtWidgets.QGraphicsView):
            widget.render(painter)
        else:
            widget.render(painter, QtCore.QPoint(0, 0))
    finally:
        painter.end()
