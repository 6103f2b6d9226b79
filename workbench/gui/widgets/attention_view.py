"""Attention maps: one head as a labelled heatmap, or every head of a model as a grid.

``AttentionHeatmap`` shows one (T, T) attention matrix: rows are query tokens (the token that
looks), columns are key tokens (the token looked at), weights 0..1 in a perceptually uniform
colour map (viridis) with a colour bar. Token strings label both axes (rotated on the bottom
axis; thinned out when they do not fit); hovering a cell reads "query 'x' (i) → key 'y' (j):
0.123" below the map. When every weight above the diagonal is exactly 0 (a causal model), that
region is drawn as light grey "masked" rather than as zero weight.

``AttentionGrid`` shows all heads of one layer, or all layers x heads, as small heatmaps in a
single image (fast: one texture, however many heads); clicking one emits
``headSelected(layer, head)``.

Both take plain numpy arrays; nothing here knows about torch or the engine.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from . import style
from .export import save_png
from .flow import ElidedLabel
from .plot_input import wheel_scrolls_page

MASK_COLOR = "#eeeeee"
FRAME_COLOR = "#c8c8c8"
MIN_LABEL_POINTS = 6.0  # token labels shrink to this before they are thinned


def _colormap(name: str) -> pg.ColorMap:
    return pg.colormap.get(name)


def _lut(name: str) -> np.ndarray:
    return _colormap(name).getLookupTable(nPts=256, alpha=False)


def _is_causal(m: np.ndarray) -> bool:
    """True when ``m`` is square and every entry above the diagonal is exactly 0."""
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 2:
        return False
    return not np.any(np.triu(m, k=1))


def _staircase(t: int) -> QtGui.QPainterPath:
    """Path covering the cells (i, j) with j > i of a t x t matrix (row i spans y in [i, i+1])."""
    pts = [QtCore.QPointF(1, 0), QtCore.QPointF(t, 0)]
    for i in range(t - 1, 0, -1):
        pts.append(QtCore.QPointF(i + 1, i))
        pts.append(QtCore.QPointF(i, i))
    path = QtGui.QPainterPath()
    path.addPolygon(QtGui.QPolygonF(pts))
    path.closeSubpath()
    return path


# =============================================================================================
# an axis labelled with tokens


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
        self.labels = [style.short_label(t, self.max_chars) for t in self.tokens]
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
        stride = max(1, math.ceil(need / max(px_per_token, 1e-9)))
        nice = [1, 2, 3, 4, 5, 8, 10, 16, 20, 25, 32, 50, 64, 100, 128, 200, 256, 500, 1000]
        stride = next((s for s in nice if s >= stride), stride)
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


def _info_css(color: str, scale: float) -> str:
    return (f"QLabel {{ color: {color}; background: {style.BACKGROUND};"
            f" padding: {int(4 * scale)}px {int(10 * scale)}px; }}")


def _style_axis(ax: pg.AxisItem, scale: float, label: str | None = None) -> None:
    ax.setPen(pg.mkPen(style.FAINT, width=1))
    ax.setTextPen(pg.mkPen(style.FOREGROUND))
    ax.setTickPen(pg.mkPen(style.FAINT, width=1))
    if label is not None:
        ax.setLabel(label, color=style.MUTED, **{"font-size": f"{9.5 * scale:.1f}pt"})
    ax.setTickFont(style.font(scale, size=9))


# =============================================================================================
# one head


class AttentionHeatmap(QtWidgets.QWidget):
    """One attention matrix with token labels, a colour bar and a hover readout.

    ``set_attention(matrix, tokens)``: matrix (T_q, T_k) with weights in 0..1 (row i: how
    query token i spreads its attention over the key tokens); ``tokens`` the T strings (for a
    non-square matrix pass ``key_tokens`` too). Levels are fixed to (0, 1) unless
    ``set_auto_levels(True)`` stretches the colours to (0, max).

    Signals: ``hovered(int query, int key, float weight)`` (-1, -1, nan when the mouse leaves).
    """

    hovered = QtCore.Signal(int, int, float)

    def __init__(self, parent: QtWidgets.QWidget | None = None, *,
                 colormap: str = style.ATTENTION_COLORMAP, presentation: float = 1.0,
                 show_colorbar: bool = True, title: str = ""):
        super().__init__(parent)
        self._scale = max(0.5, float(presentation))
        self._cmap_name = colormap
        self._auto_levels = False
        self._matrix = np.zeros((0, 0))
        self._q_tokens: list[str] = []
        self._k_tokens: list[str] = []
        self._masked = False
        self._title = title

        self.plot_widget = pg.GraphicsLayoutWidget()
        self.plot_widget.setBackground(style.BACKGROUND)
        self.plot_widget.ci.layout.setContentsMargins(6, 10, 6, 4)
        self.left_axis = TokenAxis("left")
        self.bottom_axis = TokenAxis("bottom", rotate=True)
        self.left_axis.on_stride = self.bottom_axis.on_stride = lambda _k: self._show_hint()
        self.plot_item: pg.PlotItem = self.plot_widget.addPlot(
            axisItems={"left": self.left_axis, "bottom": self.bottom_axis})
        pi = self.plot_item
        pi.setMenuEnabled(False)
        pi.hideButtons()
        self.view_box: pg.ViewBox = pi.getViewBox()
        self.view_box.invertY(True)
        self.view_box.setAspectLocked(True)
        self.view_box.setDefaultPadding(0.0)
        self.view_box.setBackgroundColor(None)

        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.image_item.setAutoDownsample(False)
        pi.addItem(self.image_item)
        self._mask_item = QtWidgets.QGraphicsPathItem()
        self._mask_item.setPen(QtGui.QPen(QtCore.Qt.PenStyle.NoPen))
        self._mask_item.setBrush(QtGui.QColor(MASK_COLOR))
        self._mask_item.setZValue(5)
        self._mask_item.hide()
        pi.addItem(self._mask_item, ignoreBounds=True)
        self._hover_rect = QtWidgets.QGraphicsRectItem(0, 0, 1, 1)
        hp = QtGui.QPen(QtGui.QColor("#ffffff"), 2)
        hp.setCosmetic(True)
        self._hover_rect.setPen(hp)
        self._hover_rect.setZValue(20)
        self._hover_rect.hide()
        pi.addItem(self._hover_rect, ignoreBounds=True)

        self.colorbar: pg.ColorBarItem | None = None
        if show_colorbar:
            self.colorbar = pg.ColorBarItem(values=(0, 1), colorMap=_colormap(colormap),
                                            interactive=False, width=14, rounding=0.001)
            self.colorbar.setImageItem(self.image_item, insert_in=pi)
        self.image_item.setLookupTable(_lut(colormap))
        self.image_item.setLevels((0.0, 1.0))

        self.plot_widget.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.plot_widget.viewport().installEventFilter(self)
        wheel_scrolls_page(self.plot_widget, reset=self.reset_view)
        self.view_box.sigRangeChangedManually.connect(self._keep_on_matrix)

        self.info = ElidedLabel()  # a narrow heatmap shortens the hint (whole in the tooltip)
        self.info.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.info.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored,
                                QtWidgets.QSizePolicy.Policy.Fixed)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.plot_widget, 1)
        layout.addWidget(self.info)
        self._apply_style()
        self._show_hint()

    # -- API --------------------------------------------------------------------------------

    def set_attention(self, matrix: np.ndarray, tokens: Sequence[str],
                      key_tokens: Sequence[str] | None = None, title: str | None = None) -> None:
        """Show ``matrix`` (T_q, T_k) labelled with ``tokens`` (queries; also keys unless
        ``key_tokens`` is given)."""
        m = np.asarray(matrix, dtype=np.float32)
        if m.ndim != 2:
            raise ValueError(f"attention matrix must be 2-D, got shape {m.shape}")
        q_tokens = [str(t) for t in tokens]
        k_tokens = [str(t) for t in key_tokens] if key_tokens is not None else q_tokens
        if len(q_tokens) != m.shape[0] or len(k_tokens) != m.shape[1]:
            raise ValueError(f"matrix {m.shape} does not match {len(q_tokens)} query and "
                             f"{len(k_tokens)} key tokens")
        shape_changed = m.shape != self._matrix.shape
        self._matrix = m
        self.image_item.setImage(m, autoLevels=False)
        self.image_item.setRect(QtCore.QRectF(0, 0, m.shape[1], m.shape[0]))
        self._update_levels()
        masked = _is_causal(m)
        if masked != self._masked or (masked and shape_changed):
            if masked:
                self._mask_item.setPath(_staircase(m.shape[0]))
            self._mask_item.setVisible(masked)
            self._masked = masked
        if q_tokens != self._q_tokens:
            self._q_tokens = q_tokens
            self.left_axis.set_tokens(q_tokens)
        if k_tokens != self._k_tokens:
            self._k_tokens = k_tokens
            self.bottom_axis.set_tokens(k_tokens)
        if shape_changed:
            # no hard x/y limits: with the aspect locked (square cells) they would fight the
            # widget's shape and crop the first and last rows
            vb = self.view_box
            big = 3 * max(m.shape)
            vb.setLimits(xMin=-big, xMax=big, yMin=-big, yMax=big,
                         minXRange=min(4, m.shape[1]), minYRange=min(4, m.shape[0]),
                         maxXRange=big, maxYRange=big)
            self.reset_view()
        if title is not None:
            self.set_title(title)

    def matrix(self) -> np.ndarray:
        return self._matrix

    def tokens(self) -> tuple[list[str], list[str]]:
        """(query tokens, key tokens) as sent."""
        return list(self._q_tokens), list(self._k_tokens)

    def axis_labels(self) -> tuple[list[str], list[str]]:
        """(left axis labels, bottom axis labels): the tokens with whitespace made visible."""
        return list(self.left_axis.labels), list(self.bottom_axis.labels)

    def set_title(self, title: str) -> None:
        self._title = title
        if title:
            self.plot_item.setTitle(title, color=style.FOREGROUND,
                                    size=f"{11 * self._scale:.1f}pt", bold=True)
        else:
            self.plot_item.setTitle(None)

    def set_auto_levels(self, auto: bool) -> None:
        """False: colours span 0..1 (comparable across heads). True: 0 .. the 99th percentile
        of this matrix's (unmasked) weights, to see the structure of diffuse heads."""
        self._auto_levels = bool(auto)
        self._update_levels()

    def auto_levels(self) -> bool:
        return self._auto_levels

    def levels(self) -> tuple[float, float]:
        lo, hi = self.image_item.getLevels()
        return float(lo), float(hi)

    def set_colormap(self, name: str) -> None:
        self._cmap_name = name
        self.image_item.setLookupTable(_lut(name))
        if self.colorbar is not None:
            self.colorbar.setColorMap(_colormap(name))

    def reset_view(self) -> None:
        m = self._matrix
        self.view_box.setRange(xRange=(0, m.shape[1]), yRange=(0, m.shape[0]), padding=0)

    def _keep_on_matrix(self, *_mask) -> None:
        """After a zoom or drag: the view's centre stays on the matrix, and zooming out stops at
        the whole matrix. With the aspect locked, zooming out ran into the range limits on one
        axis while the other kept moving, and the next zoom in landed beside the matrix: the
        heatmap looked blank (only labels) for every head and snapshot after it."""
        m = self._matrix
        if not m.size:
            return
        (x0, x1), (y0, y1) = self.view_box.viewRange()
        rows, cols = m.shape
        if x1 - x0 > cols and y1 - y0 > rows:
            self.reset_view()
            return
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        dx, dy = min(max(cx, 0.0), cols) - cx, min(max(cy, 0.0), rows) - cy
        if dx or dy:
            self.view_box.translateBy(x=dx, y=dy)

    def describe_cell(self, i: int, j: int) -> str:
        """"query 'x' (i) → key 'y' (j): 0.123" for the cell in row i, column j."""
        q = style.visible_whitespace(self._q_tokens[i])
        k = style.visible_whitespace(self._k_tokens[j])
        if self._masked and j > i:
            return f"query '{q}' ({i}) → key '{k}' ({j}): masked (a later token)"
        return f"query '{q}' ({i}) → key '{k}' ({j}): {float(self._matrix[i, j]):.3f}"

    def cell_at(self, scene_pos: QtCore.QPointF) -> tuple[int, int] | None:
        """(row, column) of the cell under a scene position, or None."""
        if self._matrix.size == 0 or not self.view_box.sceneBoundingRect().contains(scene_pos):
            return None
        p = self.view_box.mapSceneToView(scene_pos)
        i, j = int(math.floor(p.y())), int(math.floor(p.x()))
        if 0 <= i < self._matrix.shape[0] and 0 <= j < self._matrix.shape[1]:
            return i, j
        return None

    def cell_center(self, i: int, j: int) -> QtCore.QPoint:
        """Widget (viewport) coordinates of the centre of cell (i, j); handy for tests."""
        scene = self.view_box.mapViewToScene(QtCore.QPointF(j + 0.5, i + 0.5))
        return self.plot_widget.mapFromScene(scene)

    def presentation(self) -> float:
        return self._scale

    def set_presentation(self, scale: float) -> None:
        self._scale = max(0.5, float(scale))
        self._apply_style()

    def export_png(self, path: str | Path, scale: float = 2.0) -> None:
        """The heatmap with its labels and colour bar as PNG (``scale`` x screen pixels)."""
        _export_widget_png(self.plot_widget, path, scale)

    # -- internals --------------------------------------------------------------------------

    def _update_levels(self) -> None:
        if self._auto_levels and self._matrix.size:
            m = self._matrix
            values = m[np.tril_indices(m.shape[0], 0, m.shape[1])] if self._masked else m
            levels = (0.0, _robust_max(values))
        else:
            levels = (0.0, 1.0)
        self.image_item.setLevels(levels)
        if self.colorbar is not None and tuple(self.colorbar.levels()) != levels:
            self.colorbar.setLevels(levels)  # (re-lays out its axis: only when they change)

    def _apply_style(self) -> None:
        sc = self._scale
        _style_axis(self.left_axis, sc, "query (attending token)")
        _style_axis(self.bottom_axis, sc, "key (token attended to)")
        self.left_axis._fit_size()
        self.bottom_axis._fit_size()
        if self.colorbar is not None:
            ax = self.colorbar.axis
            ax.setPen(pg.mkPen(style.FAINT))
            ax.setTextPen(pg.mkPen(style.FOREGROUND))
            ax.setTickFont(style.font(sc, size=8.5))
        self.set_title(self._title)
        self.info.setFont(style.font(sc, size=9.5))
        self.info.setStyleSheet(_info_css(style.FOREGROUND, sc))

    def label_note(self) -> str:
        """Says so when there are too many tokens to label each one at this zoom."""
        k = max(self.left_axis.stride, self.bottom_axis.stride)
        if k <= 1 or not self._q_tokens:
            return ""
        nth = {2: "2nd", 3: "3rd"}.get(k, f"{k}th")
        return f"Every {nth} of {len(self._q_tokens)} tokens labelled: Ctrl+wheel zooms in"

    def _show_hint(self) -> None:
        if self._hover_rect.isVisible():  # the hovered cell's readout stays
            return
        note = self.label_note()
        self.info.setText(note if note else "Hover a cell to read its weight · Ctrl+wheel zooms · double-click fits")
        self.info.setStyleSheet(_info_css(style.MUTED, self._scale))

    def eventFilter(self, obj, event):
        if event.type() == QtCore.QEvent.Type.Leave:
            self._clear_hover()
        return super().eventFilter(obj, event)

    def _clear_hover(self) -> None:
        if self._hover_rect.isVisible():
            self._hover_rect.hide()
            self._show_hint()
            self.hovered.emit(-1, -1, float("nan"))

    def _on_mouse_moved(self, pos) -> None:
        cell = self.cell_at(pos)
        if cell is None:
            self._clear_hover()
            return
        i, j = cell
        self._hover_rect.setRect(j, i, 1, 1)
        self._hover_rect.show()
        self.info.setStyleSheet(_info_css(style.FOREGROUND, self._scale))
        self.info.setText(self.describe_cell(i, j))
        self.hovered.emit(i, j, float(self._matrix[i, j]))



# =============================================================================================
# all heads


class AttentionGrid(QtWidgets.QWidget):
    """All heads of one layer, or all layers x heads, as small heatmaps; click to pick one.

    ``set_snapshot(attn, tokens, layer=None)``: attn (L, H, T, T). With ``layer=None`` the grid
    has a row per layer and a column per head; with a layer index it shows that layer's heads
    in a compact block. Clicking a head emits ``headSelected(layer, head)`` and outlines it.
    """

    headSelected = QtCore.Signal(int, int)

    def __init__(self, parent: QtWidgets.QWidget | None = None, *,
                 colormap: str = style.ATTENTION_COLORMAP, presentation: float = 1.0):
        super().__init__(parent)
        self._scale = max(0.5, float(presentation))
        self._cmap_name = colormap
        self._auto_levels = False
        self._attn = np.zeros((0, 0, 0, 0), dtype=np.float32)
        self._tokens: list[str] = []
        self._layer: int | None = None
        self._cells: dict[tuple[int, int], tuple[int, int]] = {}  # (layer, head) -> (row, col)
        self._rowcol: dict[tuple[int, int], tuple[int, int]] = {}  # (row, col) -> (layer, head)
        self._pitch = 1.0  # distance between cells, in tokens
        self._t = 0  # tokens per cell side
        self._cell = 0  # cell side in view units (T rounded up to the pooling factor)
        self._k = 1  # tokens per image pixel
        self._causal = False
        self._selected: tuple[int, int] | None = None
        self._layout_key = None
        self._titles: list[pg.TextItem] = []

        self.plot_widget = pg.GraphicsLayoutWidget()
        self.plot_widget.setBackground(style.BACKGROUND)
        self.plot_widget.ci.layout.setContentsMargins(4, 4, 8, 4)
        self.plot_item: pg.PlotItem = self.plot_widget.addPlot()
        pi = self.plot_item
        pi.setMenuEnabled(False)
        pi.hideButtons()
        pi.showAxis("top")
        pi.hideAxis("bottom")
        self.view_box: pg.ViewBox = pi.getViewBox()
        self.view_box.invertY(True)
        self.view_box.setAspectLocked(True)
        self.view_box.setMouseEnabled(x=False, y=False)
        wheel_scrolls_page(self.plot_widget, hint="")
        self.view_box.setDefaultPadding(0.01)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self._lut = _lut_rgba(colormap)
        self._levels = (0.0, 1.0)
        self._mosaic: np.ndarray | None = None
        pi.addItem(self.image_item)
        self._frames = QtWidgets.QGraphicsPathItem()
        fp = QtGui.QPen(QtGui.QColor(FRAME_COLOR), 1)
        fp.setCosmetic(True)
        self._frames.setPen(fp)
        self._frames.setZValue(5)
        pi.addItem(self._frames, ignoreBounds=True)
        self._select_rect = QtWidgets.QGraphicsRectItem()
        sp = QtGui.QPen(QtGui.QColor(style.ACCENT), 2.5)
        sp.setCosmetic(True)
        sp.setJoinStyle(QtCore.Qt.PenJoinStyle.MiterJoin)
        self._select_rect.setPen(sp)
        self._select_rect.setZValue(20)
        self._select_rect.hide()
        pi.addItem(self._select_rect, ignoreBounds=True)
        self._hover_rect = QtWidgets.QGraphicsRectItem()
        hp = QtGui.QPen(QtGui.QColor(style.MUTED), 1.5)
        hp.setCosmetic(True)
        self._hover_rect.setPen(hp)
        self._hover_rect.setZValue(15)
        self._hover_rect.hide()
        pi.addItem(self._hover_rect, ignoreBounds=True)

        self.plot_widget.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.plot_widget.scene().sigMouseClicked.connect(self._on_mouse_clicked)
        self.plot_widget.viewport().installEventFilter(self)
        self.plot_widget.setCursor(QtCore.Qt.CursorShape.PointingHandCursor)

        self.info = ElidedLabel()
        self.info.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored,
                                QtWidgets.QSizePolicy.Policy.Fixed)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.plot_widget, 1)
        layout.addWidget(self.info)
        self._apply_style()
        self._show_hint()

    # -- API --------------------------------------------------------------------------------

    def set_snapshot(self, attn: np.ndarray, tokens: Sequence[str],
                     layer: int | None = None) -> None:
        """Show attention weights ``attn`` (L, H, T, T): every layer (``layer=None``) or the
        heads of one layer."""
        a = np.asarray(attn, dtype=np.float32)
        if a.ndim != 4 or a.shape[2] != a.shape[3]:
            raise ValueError(f"attention snapshot must have shape (L, H, T, T), got {a.shape}")
        if len(tokens) != a.shape[2]:
            raise ValueError(f"{len(tokens)} tokens for T = {a.shape[2]}")
        if layer is not None and not 0 <= layer < a.shape[0]:
            raise ValueError(f"layer {layer} out of range 0..{a.shape[0] - 1}")
        self._attn = a
        self._tokens = [str(t) for t in tokens]
        self._layer = layer
        L, H, T, _ = a.shape
        if layer is None:
            rows, cols = L, H
            heads = a.reshape(L * H, T, T)
            cells = [(lay, h) for lay in range(L) for h in range(H)]
            gap_frac = 0.12
        else:
            cols = H if H <= 4 else math.ceil(H / max(1, int(math.floor(math.sqrt(H)))))
            rows = math.ceil(H / cols)
            heads = a[layer]
            cells = [(layer, h) for h in range(H)]
            gap_frac = 0.28
        # A cell shows k x k tokens per image pixel when it is smaller on screen than T pixels
        # (max pooling, so a sharp attention peak stays visible): an 8 x 8 grid at T = 256
        # would otherwise push 4 million pixels through the colour map on every update.
        k = self._pool_factor(T, rows, cols, gap_frac)
        tp = -(-T // k)  # cell size in image pixels
        gp = max(1, int(round(tp * gap_frac)))
        pooled = _pool_max(heads, k) if k > 1 else heads.astype(np.float32, copy=True)
        causal = _all_causal(heads, pooled, k)
        if causal:  # masked (future) cells: -inf, painted light grey like in the heatmap
            pooled[:, np.triu(np.ones((tp, tp), dtype=bool), k=1)] = -np.inf
        pitch_px = tp + gp
        self._k, self._t, self._cell, self._pitch = k, T, tp * k, pitch_px * k
        self._causal = causal
        self._cells = {lh: (n // cols, n % cols) for n, lh in enumerate(cells)}
        self._rowcol = {rc: lh for lh, rc in self._cells.items()}
        grid = np.full((rows * cols, pitch_px, pitch_px), np.nan, dtype=np.float32)
        grid[: len(cells), :tp, :tp] = pooled
        mosaic = (grid.reshape(rows, cols, pitch_px, pitch_px).transpose(0, 2, 1, 3)
                  .reshape(rows * pitch_px, cols * pitch_px)[: rows * pitch_px - gp,
                                                             : cols * pitch_px - gp])
        self._mosaic = np.ascontiguousarray(mosaic)
        self._paint_mosaic()
        self.image_item.setRect(QtCore.QRectF(0, 0, mosaic.shape[1] * k, mosaic.shape[0] * k))
        key = (L, H, T, layer, k)
        if key != self._layout_key:
            self._layout_key = key
            self._relayout(rows, cols)
        if self._selected is not None and self._selected in self._cells:
            self._show_selection()
        else:
            self._select_rect.hide()

    def _pool_factor(self, t: int, rows: int, cols: int, gap_frac: float) -> int:
        w = max(64.0, float(self.view_box.width()))
        h = max(64.0, float(self.view_box.height()))
        ratio = self.devicePixelRatioF() or 1.0
        cell_px = min(w / cols, h / rows) / (1 + gap_frac) * ratio
        k = max(1, math.ceil(t / max(cell_px, 24.0) - 0.05))
        # a divisor of T avoids padding a copy of every head (T = 256: 4, not 3)
        return next((d for d in range(k, 2 * k + 1) if t % d == 0), k)

    def resizeEvent(self, event):
        super().resizeEvent(event)
        if self._attn.size and self._layout_key is not None and self._layout_key[3] is None:
            QtCore.QTimer.singleShot(0, self, self._refresh_head_ticks)  # once the view has its size
        if self._attn.size and self._layout_key is not None:
            L, H, T, layer, k = self._layout_key
            rows, cols = (L, H) if layer is None else (
                max(r for r, _ in self._rowcol) + 1, max(c for _, c in self._rowcol) + 1)
            gap_frac = 0.12 if layer is None else 0.28
            if self._pool_factor(T, rows, cols, gap_frac) != k:
                QtCore.QTimer.singleShot(0, lambda: self.set_snapshot(
                    self._attn, self._tokens, self._layer))

    def snapshot(self) -> np.ndarray:
        return self._attn

    def layer(self) -> int | None:
        return self._layer

    def set_selected(self, layer: int, head: int) -> None:
        """Outline head (layer, head) without emitting headSelected."""
        self._selected = (int(layer), int(head))
        self._show_selection()

    def selected(self) -> tuple[int, int] | None:
        return self._selected

    def set_auto_levels(self, auto: bool) -> None:
        """False: colours span 0..1. True: 0 .. the 99th percentile over the heads shown."""
        self._auto_levels = bool(auto)
        self._update_levels()

    def levels(self) -> tuple[float, float]:
        return self._levels

    def set_colormap(self, name: str) -> None:
        self._cmap_name = name
        self._lut = _lut_rgba(name)
        self._update_levels()

    def cell_rect(self, layer: int, head: int) -> QtCore.QRectF:
        """The cell of head (layer, head) in view (image pixel) coordinates."""
        r, c = self._cells[(layer, head)]
        return QtCore.QRectF(c * self._pitch, r * self._pitch, self._t, self._t)

    def cell_center(self, layer: int, head: int) -> QtCore.QPoint:
        """Viewport coordinates of the centre of head (layer, head); handy for tests."""
        scene = self.view_box.mapViewToScene(self.cell_rect(layer, head).center())
        return self.plot_widget.mapFromScene(scene)

    def head_at(self, scene_pos: QtCore.QPointF) -> tuple[int, int, int, int] | None:
        """(layer, head, query, key) under a scene position, or None (gaps, outside)."""
        if not self._cells or not self.view_box.sceneBoundingRect().contains(scene_pos):
            return None
        p = self.view_box.mapSceneToView(scene_pos)
        x, y = p.x(), p.y()
        if x < 0 or y < 0:
            return None
        c, r = int(x // self._pitch), int(y // self._pitch)
        j, i = int(x - c * self._pitch), int(y - r * self._pitch)
        lh = self._rowcol.get((r, c))
        if lh is None or i >= self._t or j >= self._t:
            return None
        return lh[0], lh[1], i, j

    def presentation(self) -> float:
        return self._scale

    def set_presentation(self, scale: float) -> None:
        self._scale = max(0.5, float(scale))
        self._apply_style()
        if self._layout_key is not None:  # titles are re-made at the new size
            self._layout_key = None
            self.set_snapshot(self._attn, self._tokens, self._layer)

    def export_png(self, path: str | Path, scale: float = 2.0) -> None:
        """The grid with its labels as PNG (``scale`` x screen pixels)."""
        _export_widget_png(self.plot_widget, path, scale)

    # -- internals --------------------------------------------------------------------------

    def _relayout(self, rows: int, cols: int) -> None:
        pitch, T = self._pitch, self._cell
        path = QtGui.QPainterPath()
        for (r, c) in self._rowcol:
            path.addRect(QtCore.QRectF(c * pitch, r * pitch, T, T))
        self._frames.setPath(path)
        for item in self._titles:
            self.plot_item.removeItem(item)
        self._titles = []
        left, top = self.plot_item.getAxis("left"), self.plot_item.getAxis("top")
        if self._layer is None:
            left.setTicks([[(r * pitch + T / 2, f"layer {r}") for r in range(rows)]])
            self._head_ticks(cols)
            # sized now, not after a first paint with clipped labels
            fm = QtGui.QFontMetricsF(left.style["tickFont"] or QtGui.QFont())
            pad = left.style["tickTextOffset"][0] + 6
            left_w, top_h = int(math.ceil(fm.horizontalAdvance(f"layer {rows - 1}") + pad)), int(math.ceil(fm.height() + pad))
            left.setWidth(left_w)
            top.setHeight(top_h)
            self.plot_item.showAxis("left")
            self.plot_item.showAxis("top")
            # cells no smaller than their labels ("layer 1" under "layer 0", "11" beside "10"):
            # a smaller grid drew them over each other; the page scrolls instead
            cell_px = max(fm.height() + 4, fm.horizontalAdvance(str(cols - 1)) + 8)
            px_per_unit = cell_px / pitch
            ml, mt, mr, mb = self.plot_widget.ci.layout.getContentsMargins()
            self.plot_widget.setMinimumSize(
                int(math.ceil(left_w + 1.03 * px_per_unit * ((cols - 1) * pitch + T) + ml + mr + 4)),
                int(math.ceil(top_h + 1.03 * px_per_unit * ((rows - 1) * pitch + T) + mt + mb + 4)))
        else:
            self.plot_widget.setMinimumSize(0, 0)
            self.plot_item.hideAxis("left")
            self.plot_item.hideAxis("top")
            f = style.font(self._scale, size=9)
            for (lay, h), (r, c) in self._cells.items():
                t = pg.TextItem(f"head {h}", color=style.FOREGROUND, anchor=(0, 1))
                t.setFont(f)
                t.setPos(c * pitch, r * pitch - 0.02 * T)
                self.plot_item.addItem(t, ignoreBounds=True)
                self._titles.append(t)
        width = (cols - 1) * pitch + T
        height = (rows - 1) * pitch + T
        top_margin = 0 if self._layer is None else 0.3 * T
        self.view_box.setRange(xRange=(0, width), yRange=(-top_margin, height), padding=0.01)

    def _refresh_head_ticks(self) -> None:
        if self._layout_key is not None and self._layout_key[3] is None:
            self._head_ticks(self._layout_key[1])

    def _head_ticks(self, cols: int) -> None:
        """"head 3" over each column where it fits the column, else "3" (labels ran together as
        "headhead 2" in a narrow grid)."""
        pitch, T = self._pitch, self._cell
        top = self.plot_item.getAxis("top")
        fm = QtGui.QFontMetricsF(top.style["tickFont"] or QtGui.QFont())
        # from the view's scale, not its width: with square cells a short wide grid has less
        px_size = self.view_box.viewPixelSize()[0] if self.view_box.width() > 0 else 0.0
        px_per_col = pitch / px_size if px_size > 0 else 0.0
        long = px_per_col == 0.0 or fm.horizontalAdvance(f"head {cols - 1}") + 6 <= px_per_col
        top.setTicks([[(c * pitch + T / 2, f"head {c}" if long else str(c)) for c in range(cols)]])
        self.head_labels_short = not long

    def _show_selection(self) -> None:
        if self._selected is None or self._selected not in self._cells:
            self._select_rect.hide()
            return
        self._select_rect.setRect(self.cell_rect(*self._selected))
        self._select_rect.show()

    def _grid_levels(self) -> tuple[float, float]:
        if self._auto_levels and self._mosaic is not None:
            return (0.0, _robust_max(self._mosaic))
        return (0.0, 1.0)

    def _update_levels(self) -> None:
        if self._mosaic is not None:
            self._paint_mosaic()

    def _paint_mosaic(self) -> None:
        # coloured here rather than by pyqtgraph: its NaN bookkeeping (for the transparent
        # gaps) scans the whole image on every update
        self._levels = self._grid_levels()
        rgba = _colorize(self._mosaic, self._levels, self._lut)
        self.image_item.setImage(rgba, autoLevels=False, levels=None)

    def _apply_style(self) -> None:
        sc = self._scale
        for name in ("left", "top"):
            ax = self.plot_item.getAxis(name)
            _style_axis(ax, sc)
            ax.setStyle(tickLength=0, tickTextOffset=int(4 * sc))
            ax.setPen(pg.mkPen(None))
            ax.setStyle(tickAlpha=0)  # labels only, no tick marks
        self.info.setFont(style.font(sc, size=9.5))

    def _show_hint(self) -> None:
        self.info.setText("Click a head to open it")
        self.info.setStyleSheet(_info_css(style.MUTED, self._scale))

    def eventFilter(self, obj, event):
        if event.type() == QtCore.QEvent.Type.Leave:
            self._hover_rect.hide()
            self._show_hint()
        return super().eventFilter(obj, event)

    def _on_mouse_moved(self, pos) -> None:
        hit = self.head_at(pos)
        if hit is None:
            self._hover_rect.hide()
            self._show_hint()
            return
        lay, h, i, j = hit
        self._hover_rect.setRect(self.cell_rect(lay, h))
        self._hover_rect.show()
        q = style.visible_whitespace(self._tokens[i])
        k = style.visible_whitespace(self._tokens[j])
        w = self._attn[lay, h, i, j]
        value = "masked" if (j > i and self._causal) else f"{w:.3f}"
        self.info.setStyleSheet(_info_css(style.FOREGROUND, self._scale))
        self.info.setText(f"layer {lay} · head {h} — query '{q}' ({i}) → key '{k}' ({j}): "
                          f"{value}")

    def _on_mouse_clicked(self, ev) -> None:
        if ev.button() != QtCore.Qt.MouseButton.LeftButton:
            return
        hit = self.head_at(ev.scenePos())
        if hit is None:
            return
        lay, h = hit[0], hit[1]
        self._selected = (lay, h)
        self._show_selection()
        self.headSelected.emit(lay, h)


# =============================================================================================
# helpers


def _all_causal(heads: np.ndarray, pooled: np.ndarray, k: int) -> bool:
    """True when every head (n, T, T) is exactly 0 above the diagonal. ``pooled`` is its
    k x k block maximum: blocks right of the diagonal block must be 0, and inside the diagonal
    blocks the entries above the diagonal are checked one by one."""
    t = heads.shape[-1]
    if t < 2:
        return False
    tp = pooled.shape[-1]
    if k > 1:
        ib, jb = np.triu_indices(tp, 1)
        if np.any(pooled[:, ib, jb]):
            return False
        d = np.arange(t)
        i, j = np.meshgrid(d, d, indexing="ij")
        sel = (j > i) & (i // k == j // k)
        return not np.any(heads[:, i[sel], j[sel]])
    i, j = np.triu_indices(t, 1)
    return not np.any(heads[:, i, j])


def _robust_max(values: np.ndarray, q: float = 99.0, sample: int = 200_000) -> float:
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


def _lut_rgba(name: str) -> np.ndarray:
    """(258, 4) uint8: the map's 256 colours, transparent (for NaN: gaps), mask grey (-inf)."""
    lut = np.zeros((258, 4), dtype=np.uint8)
    lut[:256, :3] = _lut(name)[:, :3]
    lut[:256, 3] = 255
    mask = QtGui.QColor(MASK_COLOR)
    lut[257] = (mask.red(), mask.green(), mask.blue(), 255)
    return lut


def _colorize(values: np.ndarray, levels: tuple[float, float], lut: np.ndarray) -> np.ndarray:
    """Map ``values`` through ``lut`` (see _lut_rgba) over ``levels``; NaN -> transparent,
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


def _pool_max(a: np.ndarray, k: int) -> np.ndarray:
    """Max over k x k blocks of the last two axes (T, T) -> (ceil(T/k), ceil(T/k)).

    Done as k element-wise maxima of strided slices: ~8 ms for 64 heads at T = 256, where
    ``reshape(...).max(axis=(3, 5))`` takes ~85 ms.
    """
    lead = a.shape[:-2]
    t = a.shape[-1]
    tp = -(-t // k)
    if tp * k != t:
        padded = np.zeros(lead + (tp * k, tp * k), dtype=np.float32)
        padded[..., :t, :t] = a
        a = padded
    y = a.reshape(lead + (tp, k, tp * k))
    r = y[..., 0, :].copy()
    for q in range(1, k):
        np.maximum(r, y[..., q, :], out=r)
    r = r.reshape(lead + (tp, tp, k))
    out = r[..., 0].copy()
    for q in range(1, k):
        np.maximum(out, r[..., q], out=out)
    return out.astype(np.float32, copy=False)


def _export_widget_png(widget: QtWidgets.QWidget, path: str | Path, scale: float) -> None:
    save_png(widget, path, scale)
