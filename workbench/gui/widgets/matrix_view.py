"""A small labelled matrix: coloured cells with their values written in them.

For matrices a person reads cell by cell: the gradient-conflict matrix of a multi-task run
(cosine similarities, -1..1, a diverging colour map: red = the tasks pull apart, blue = they agree)
and the confusion matrix of a classifier (counts, a sequential colour map). Rows and columns carry
names (tasks, classes) written in full; a colour bar on the right gives the scale; hovering a cell
reads it out in words below the grid.

``AttentionHeatmap`` is the view for large token-by-token maps (zoom, thinned labels, 0..1); this
one is for small named matrices (up to ~20 x 20) where every value should be legible.

::

    view = MatrixView(colormap="diverging", levels=(-1, 1), value_format="{:+.2f}")
    view.set_matrix(conflict, ["lm", "mlm", "continuity"])

Takes plain numpy arrays; nothing here knows about torch or the engine.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from .. import theme
from .export import save_png

# Colour maps as stops (position 0..1, colour). Diverging: ColorBrewer RdBu (reversed so that
# negative = red = conflict and positive = blue = agreement), white at the middle.
COLORMAPS: dict[str, list[tuple[float, str]]] = {
    "diverging": [(0.0, "#b2182b"), (0.25, "#ef8a62"), (0.5, "#f7f7f7"), (0.75, "#67a9cf"), (1.0, "#2166ac")],
    "sequential": [(0.0, "#f7fbff"), (0.35, "#c6dbef"), (0.7, "#6baed6"), (1.0, "#2c5f8e")],
}


def make_lut(name: str, n: int = 256) -> np.ndarray:
    """(n, 3) uint8 colours interpolated between the stops of colour map ``name``."""
    stops = COLORMAPS[name]
    pos = np.array([p for p, _ in stops])
    rgb = np.array([QtGui.QColor(c).getRgb()[:3] for _, c in stops], dtype=np.float64)
    t = np.linspace(0.0, 1.0, n)
    return np.stack([np.interp(t, pos, rgb[:, k]) for k in range(3)], axis=1).round().astype(np.uint8)


class MatrixView(QtWidgets.QWidget):
    """A named matrix as coloured cells with values. ``set_matrix(m, row_labels, col_labels)``.

    Parameters: ``colormap`` ("diverging" or "sequential"), ``levels`` (value range of the colours;
    None: 0..max), ``value_format`` (how a value is written in its cell), ``row_title`` and
    ``col_title`` (axis names such as "true class" / "predicted"), ``describe`` (hover text of a
    cell: ``fn(i, j, value) -> str``), ``empty_text`` (shown while there is no matrix).

    Signals: ``hovered(int row, int column, float value)`` (-1, -1, nan when the mouse leaves),
    ``cellClicked(int row, int column)``. ``set_marked(cells)`` draws a cross over chosen cells
    (e.g. heads switched off).
    """

    hovered = QtCore.Signal(int, int, float)
    cellClicked = QtCore.Signal(int, int)

    def __init__(self, parent: QtWidgets.QWidget | None = None, *, colormap: str = "diverging",
                 levels: tuple[float, float] | None = (-1.0, 1.0), value_format: str = "{:.2f}",
                 row_title: str = "", col_title: str = "", colorbar_title: str = "",
                 describe: Callable[[int, int, float], str] | None = None, empty_text: str = "No data yet",
                 presentation: float = 1.0, max_cell: float = 96.0):
        super().__init__(parent)
        self._scale = max(0.5, float(presentation))
        self._cmap = colormap
        self._lut = make_lut(colormap)
        self._fixed_levels = levels
        self._levels = levels or (0.0, 1.0)
        self._fmt = value_format
        self._row_title, self._col_title, self._bar_title = row_title, col_title, colorbar_title
        self._describe = describe
        self._empty = empty_text
        self._max_cell = max_cell
        self._m = np.zeros((0, 0))
        self._colour_values: np.ndarray | None = None
        self._rows: list[str] = []
        self._cols: list[str] = []
        self._hover: tuple[int, int] | None = None
        self._marked: set[tuple[int, int]] = set()
        self._geom = None
        self.setMouseTracking(True)
        self.setMinimumSize(180, 150)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Expanding)

    # -- API --------------------------------------------------------------------------------

    def set_matrix(self, matrix, row_labels: Sequence[str], col_labels: Sequence[str] | None = None, *,
                   colour_values=None) -> None:
        """Show ``matrix`` (rows x columns). ``colour_values`` (same shape) colours the cells by
        other numbers than those written (e.g. row shares of a confusion matrix's counts)."""
        m = np.asarray(matrix, dtype=np.float64)
        if m.ndim != 2:
            raise ValueError(f"matrix must be 2-D, got shape {m.shape}")
        rows = [str(r) for r in row_labels]
        cols = [str(c) for c in col_labels] if col_labels is not None else rows
        if len(rows) != m.shape[0] or len(cols) != m.shape[1]:
            raise ValueError(f"matrix {m.shape} does not match {len(rows)} row and {len(cols)} column labels")
        self._m = m.copy()
        self._rows, self._cols = rows, cols
        self._colour_values = None if colour_values is None else np.asarray(colour_values, dtype=np.float64)
        if self._fixed_levels is None:
            v = self._values_for_colour()
            hi = float(np.nanmax(v)) if v.size and np.isfinite(v).any() else 1.0
            self._levels = (0.0, hi if hi > 0 else 1.0)
        self._geom = None
        self.update()

    def clear(self) -> None:
        self._m = np.zeros((0, 0))
        self._rows, self._cols = [], []
        self._colour_values = None
        self._geom = None
        self.update()

    def matrix(self) -> np.ndarray:
        return self._m.copy()

    def labels(self) -> tuple[list[str], list[str]]:
        return list(self._rows), list(self._cols)

    def levels(self) -> tuple[float, float]:
        return self._levels

    def set_levels(self, levels: tuple[float, float] | None) -> None:
        self._fixed_levels = levels
        self._levels = levels or self._levels
        self.update()

    def set_marked(self, cells) -> None:
        self._marked = {(int(i), int(j)) for i, j in cells}
        self.update()

    def marked(self) -> set[tuple[int, int]]:
        return set(self._marked)

    def set_empty_text(self, text: str) -> None:
        self._empty = text
        self.update()

    def color_for(self, value: float) -> QtGui.QColor:
        """The colour of a cell holding ``value`` (colour values, when given, decide instead)."""
        lo, hi = self._levels
        if not math.isfinite(value):
            return QtGui.QColor("#eeeeee")
        t = 0.5 if hi == lo else (value - lo) / (hi - lo)
        k = int(round(min(1.0, max(0.0, t)) * (len(self._lut) - 1)))
        r, g, b = (int(x) for x in self._lut[k])
        return QtGui.QColor(r, g, b)

    def cell_color(self, i: int, j: int) -> QtGui.QColor:
        return self.color_for(float(self._values_for_colour()[i, j]))

    def cell_text(self, i: int, j: int) -> str:
        v = float(self._m[i, j])
        return "–" if not math.isfinite(v) else self._fmt.format(v)

    def cell_rect(self, i: int, j: int) -> QtCore.QRectF:
        """Where cell (row i, column j) is drawn, in widget coordinates."""
        g = self._layout()
        return QtCore.QRectF(g["x0"] + j * g["cw"], g["y0"] + i * g["ch"], g["cw"], g["ch"])

    def cell_at(self, pos) -> tuple[int, int] | None:
        if self._m.size == 0:
            return None
        g = self._layout()
        p = QtCore.QPointF(pos)
        j = math.floor((p.x() - g["x0"]) / g["cw"])
        i = math.floor((p.y() - g["y0"]) / g["ch"])
        if 0 <= i < self._m.shape[0] and 0 <= j < self._m.shape[1]:
            return i, j
        return None

    def describe_cell(self, i: int, j: int) -> str:
        v = float(self._m[i, j])
        if self._describe is not None:
            return self._describe(i, j, v)
        return f"{self._rows[i]} × {self._cols[j]}: {self.cell_text(i, j)}"

    def set_presentation(self, scale: float) -> None:
        self._scale = max(0.5, float(scale))
        self._geom = None
        self.update()

    def export_png(self, path: str | Path, scale: float = 2.0) -> None:
        save_png(self, path, scale)

    # -- geometry ---------------------------------------------------------------------------

    def _values_for_colour(self) -> np.ndarray:
        return self._colour_values if self._colour_values is not None else self._m

    def _fonts(self):
        s = self._scale
        return theme.font(s, size=9.5), theme.font(s, size=9.0, bold=True), theme.font(s, size=8.5)

    def _layout(self) -> dict:
        if self._geom is not None and self._geom["size"] == (self.width(), self.height()):
            return self._geom
        label_font, cell_font, small = self._fonts()
        fm = QtGui.QFontMetricsF(label_font)
        sfm = QtGui.QFontMetricsF(small)
        s = self._scale
        n_r, n_c = self._m.shape if self._m.size else (1, 1)
        row_w = max((fm.horizontalAdvance(theme.short_label(r, 16)) for r in self._rows), default=0.0) + 8 * s
        if self._row_title:
            row_w += fm.height() + 4 * s
        col_h = fm.height() + 6 * s + (fm.height() + 2 * s if self._col_title else 0.0)
        bar_w = 14 * s + sfm.horizontalAdvance("-0.00") + 16 * s + (sfm.height() if self._bar_title else 0)
        margin = 8 * s
        avail_w = self.width() - row_w - bar_w - 2 * margin
        avail_h = self.height() - col_h - 2 * margin - fm.height() * 1.6  # room for the hover line
        ch = max(8.0, min(avail_w / n_c, avail_h / n_r, self._max_cell * s))
        # cells may be wider than tall, so that column names fit above them
        widest = max((fm.horizontalAdvance(theme.short_label(c, 16)) for c in self._cols), default=0.0) + 10 * s
        cw = max(8.0, min(avail_w / n_c, max(ch, min(widest, 1.8 * ch))))
        grid_w, grid_h = cw * n_c, ch * n_r
        total_w = row_w + grid_w + bar_w
        x0 = max(margin, (self.width() - total_w) / 2) + row_w
        y0 = margin + col_h
        self._geom = {"size": (self.width(), self.height()), "cw": cw, "ch": ch, "x0": x0, "y0": y0,
                      "grid_w": grid_w, "grid_h": grid_h, "row_w": row_w, "bar_x": x0 + grid_w + 14 * s}
        return self._geom

    def resizeEvent(self, event):
        self._geom = None
        super().resizeEvent(event)

    def sizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(360, 300)

    # -- painting ---------------------------------------------------------------------------

    def paintEvent(self, _event):
        p = QtGui.QPainter(self)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QtGui.QPainter.RenderHint.TextAntialiasing)
        p.fillRect(self.rect(), QtGui.QColor(theme.BACKGROUND))
        label_font, cell_font, small = self._fonts()
        s = self._scale
        if self._m.size == 0:
            p.setPen(QtGui.QColor(theme.FAINT))
            p.setFont(theme.font(s, size=10))
            p.drawText(self.rect().adjusted(12, 12, -12, -12),
                       int(QtCore.Qt.AlignmentFlag.AlignCenter | QtCore.Qt.TextFlag.TextWordWrap), self._empty)
            p.end()
            return
        g = self._layout()
        cw, ch, x0, y0 = g["cw"], g["ch"], g["x0"], g["y0"]
        n_r, n_c = self._m.shape
        fm = QtGui.QFontMetricsF(label_font)
        # cells
        p.setPen(QtCore.Qt.PenStyle.NoPen)
        gap = 1.0 * s
        cfm = QtGui.QFontMetricsF(cell_font)
        for i in range(n_r):
            for j in range(n_c):
                r = QtCore.QRectF(x0 + j * cw, y0 + i * ch, cw, ch).adjusted(gap, gap, -gap, -gap)
                col = self.cell_color(i, j)
                p.setPen(QtCore.Qt.PenStyle.NoPen)
                p.setBrush(col)
                p.drawRoundedRect(r, 3 * s, 3 * s)
                text = self.cell_text(i, j)
                if cfm.horizontalAdvance(text) < r.width() - 2 and cfm.height() < r.height():
                    light = (0.299 * col.red() + 0.587 * col.green() + 0.114 * col.blue()) < 140
                    p.setPen(QtGui.QColor("#ffffff" if light else theme.FOREGROUND))
                    p.setFont(cell_font)
                    p.drawText(r, int(QtCore.Qt.AlignmentFlag.AlignCenter), text)
        p.setPen(QtGui.QPen(QtGui.QColor(theme.FOREGROUND), 2.5 * s))
        for i, j in self._marked:
            if i < n_r and j < n_c:
                r = QtCore.QRectF(x0 + j * cw, y0 + i * ch, cw, ch).adjusted(5 * s, 5 * s, -5 * s, -5 * s)
                p.drawLine(r.topLeft(), r.bottomRight())
                p.drawLine(r.topRight(), r.bottomLeft())
        if self._hover is not None:
            i, j = self._hover
            pen = QtGui.QPen(QtGui.QColor(theme.FOREGROUND), 2 * s)
            p.setPen(pen)
            p.setBrush(QtCore.Qt.BrushStyle.NoBrush)
            p.drawRoundedRect(QtCore.QRectF(x0 + j * cw, y0 + i * ch, cw, ch).adjusted(1, 1, -1, -1),
                              3 * s, 3 * s)
        # labels
        p.setFont(label_font)
        p.setPen(QtGui.QColor(theme.FOREGROUND))
        for i, name in enumerate(self._rows):
            r = QtCore.QRectF(x0 - g["row_w"], y0 + i * ch, g["row_w"] - 6 * s, ch)
            p.drawText(r, int(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter),
                       theme.short_label(name, 16))
        for j, name in enumerate(self._cols):
            text = theme.short_label(name, 16)
            if fm.horizontalAdvance(text) > cw:
                text = fm.elidedText(text, QtCore.Qt.TextElideMode.ElideRight, int(cw))
            r = QtCore.QRectF(x0 + j * cw, y0 - fm.height() - 4 * s, cw, fm.height())
            p.drawText(r, int(QtCore.Qt.AlignmentFlag.AlignCenter), text)
        p.setPen(QtGui.QColor(theme.MUTED))
        if self._col_title:
            r = QtCore.QRectF(x0, y0 - 2 * fm.height() - 8 * s, g["grid_w"], fm.height())
            p.drawText(r, int(QtCore.Qt.AlignmentFlag.AlignCenter), self._col_title)
        if self._row_title:
            p.save()
            cx, cy = x0 - g["row_w"] + fm.height() * 0.5, y0 + g["grid_h"] / 2
            p.translate(cx, cy)
            p.rotate(-90)
            p.drawText(QtCore.QRectF(-g["grid_h"] / 2, -fm.height() / 2, g["grid_h"], fm.height()),
                       int(QtCore.Qt.AlignmentFlag.AlignCenter), self._row_title)
            p.restore()
        self._paint_colorbar(p, g, small)
        # hover read-out
        p.setFont(label_font)
        line = QtCore.QRectF(8 * s, y0 + g["grid_h"] + 6 * s, self.width() - 16 * s, fm.height() * 1.4)
        if self._hover is not None:
            p.setPen(QtGui.QColor(theme.FOREGROUND))
            text = fm.elidedText(self.describe_cell(*self._hover), QtCore.Qt.TextElideMode.ElideRight,
                                 int(line.width()))  # a long description on a narrow view: cut at its end
            p.drawText(line, int(QtCore.Qt.AlignmentFlag.AlignCenter), text)
        p.end()

    def _paint_colorbar(self, p: QtGui.QPainter, g: dict, font: QtGui.QFont) -> None:
        s = self._scale
        x, y, h, w = g["bar_x"], g["y0"], g["grid_h"], 12 * s
        grad = QtGui.QLinearGradient(0, y + h, 0, y)
        for k in range(0, len(self._lut), 16):
            r, gg, b = (int(v) for v in self._lut[k])
            grad.setColorAt(k / (len(self._lut) - 1), QtGui.QColor(r, gg, b))
        r, gg, b = (int(v) for v in self._lut[-1])
        grad.setColorAt(1.0, QtGui.QColor(r, gg, b))
        p.setPen(QtGui.QPen(QtGui.QColor("#d0d4da"), 1))
        p.setBrush(QtGui.QBrush(grad))
        p.drawRect(QtCore.QRectF(x, y, w, h))
        lo, hi = self._levels
        fm = QtGui.QFontMetricsF(font)
        p.setFont(font)
        p.setPen(QtGui.QColor(theme.MUTED))
        ticks = [lo, (lo + hi) / 2, hi]
        for v in ticks:
            ty = y + h - (v - lo) / (hi - lo or 1) * h
            p.drawLine(QtCore.QPointF(x + w, ty), QtCore.QPointF(x + w + 3 * s, ty))
            text = _tick(v, lo, hi)
            p.drawText(QtCore.QPointF(x + w + 5 * s, ty + fm.ascent() / 2 - 1), text)
        if self._bar_title:
            p.save()
            p.translate(x + w + 5 * s + fm.horizontalAdvance("-0.00") + 4 * s + fm.height() / 2, y + h / 2)
            p.rotate(90)
            title = fm.elidedText(self._bar_title, QtCore.Qt.TextElideMode.ElideRight, h)  # a short grid
            p.drawText(QtCore.QRectF(-h / 2, -fm.height() / 2, h, fm.height()),
                       int(QtCore.Qt.AlignmentFlag.AlignCenter), title)
            p.restore()

    # -- mouse ------------------------------------------------------------------------------

    def mouseMoveEvent(self, event):
        cell = self.cell_at(event.position())
        if cell != self._hover:
            self._hover = cell
            self.update()
            if cell is None:
                self.hovered.emit(-1, -1, float("nan"))
            else:
                self.hovered.emit(cell[0], cell[1], float(self._m[cell]))
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event):
        cell = self.cell_at(event.position())
        if cell is not None and event.button() == QtCore.Qt.MouseButton.LeftButton:
            self.cellClicked.emit(*cell)
        super().mouseReleaseEvent(event)

    def leaveEvent(self, event):
        if self._hover is not None:
            self._hover = None
            self.update()
            self.hovered.emit(-1, -1, float("nan"))
        super().leaveEvent(event)


def _tick(v: float, lo: float, hi: float) -> str:
    if abs(hi - lo) >= 10 and float(v).is_integer():
        return f"{int(v)}"
    if abs(hi - lo) >= 10:
        return f"{v:.0f}"
    if v == 0:
        return "0"
    return f"{v:+.1f}" if lo < 0 else f"{v:.2g}"
