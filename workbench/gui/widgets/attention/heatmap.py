"""One attention head as a labelled heatmap with a colour bar and a hover readout."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

QWIDGETSIZE_MAX = (1 << 24) - 1  # Qt's "no maximum"

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from ... import theme
from ..export import save_png
from ..flow import ElidedLabel
from ..plot_input import wheel_scrolls_page
from .colors import MASK_COLOR, get_colormap, info_css, lookup_table, robust_max, style_axis
from .token_axis import TokenAxis


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
                 colormap: str = theme.ATTENTION_COLORMAP, presentation: float = 1.0,
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
        self.plot_widget.setBackground(theme.BACKGROUND)
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
            self.colorbar = pg.ColorBarItem(values=(0, 1), colorMap=get_colormap(colormap),
                                            interactive=False, width=14, rounding=0.001)
            self.colorbar.setImageItem(self.image_item, insert_in=pi)
        self.image_item.setLookupTable(lookup_table(colormap))
        self.image_item.setLevels((0.0, 1.0))

        self.plot_widget.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.plot_widget.viewport().installEventFilter(self)
        wheel_scrolls_page(self.plot_widget, reset=self.reset_view)
        self.view_box.sigRangeChangedManually.connect(self._keep_on_matrix)
        # square cells in a wide widget left the matrix centred far from its row labels: the plot
        # narrows to the matrix instead (see _fit_width), re-fitted whenever the widget resizes
        self._fit_timer = QtCore.QTimer(self, singleShot=True, interval=0)
        self._fit_timer.timeout.connect(self._fit_width)
        self.view_box.sigResized.connect(lambda *_a: self._fit_timer.start())

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
            self.plot_item.setTitle(title, color=theme.FOREGROUND,
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
        self.image_item.setLookupTable(lookup_table(name))
        if self.colorbar is not None:
            self.colorbar.setColorMap(get_colormap(name))

    def reset_view(self) -> None:
        m = self._matrix
        self.view_box.setRange(xRange=(0, m.shape[1]), yRange=(0, m.shape[0]), padding=0)
        self._fit_timer.start()

    def resizeEvent(self, e) -> None:
        # let the plot take the whole width again; _fit_width narrows it once the layout settled
        self.plot_widget.setMaximumWidth(QWIDGETSIZE_MAX)
        super().resizeEvent(e)
        self._fit_timer.start()

    def _fit_width(self) -> None:
        """Narrow the plot to what the square-celled matrix needs, so the row labels sit beside it."""
        m = self._matrix
        if not m.size:
            return
        vb = self.view_box.geometry()
        spare = vb.width() - vb.height() * m.shape[1] / m.shape[0]
        if spare > 2:
            self.plot_widget.setMaximumWidth(max(60, int(self.plot_widget.width() - spare)))

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
        q = theme.visible_whitespace(self._q_tokens[i])
        k = theme.visible_whitespace(self._k_tokens[j])
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
        save_png(self.plot_widget, path, scale)

    # -- internals --------------------------------------------------------------------------

    def _update_levels(self) -> None:
        if self._auto_levels and self._matrix.size:
            m = self._matrix
            values = m[np.tril_indices(m.shape[0], 0, m.shape[1])] if self._masked else m
            levels = (0.0, robust_max(values))
        else:
            levels = (0.0, 1.0)
        self.image_item.setLevels(levels)
        if self.colorbar is not None and tuple(self.colorbar.levels()) != levels:
            self.colorbar.setLevels(levels)  # (re-lays out its axis: only when they change)

    def _apply_style(self) -> None:
        sc = self._scale
        style_axis(self.left_axis, sc, "query (attending token)")
        style_axis(self.bottom_axis, sc, "key (token attended to)")
        self.left_axis._fit_size()
        self.bottom_axis._fit_size()
        if self.colorbar is not None:
            ax = self.colorbar.axis
            ax.setPen(pg.mkPen(theme.FAINT))
            ax.setTextPen(pg.mkPen(theme.FOREGROUND))
            ax.setTickFont(theme.font(sc, size=8.5))
        self.set_title(self._title)
        self.info.setFont(theme.font(sc, size=9.5))
        self.info.setStyleSheet(info_css(theme.FOREGROUND, sc))

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
        self.info.setStyleSheet(info_css(theme.MUTED, self._scale))

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
        self.info.setStyleSheet(info_css(theme.FOREGROUND, self._scale))
        self.info.setText(self.describe_cell(i, j))
        self.hovered.emit(i, j, float(self._matrix[i, j]))
