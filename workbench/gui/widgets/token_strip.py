"""How a tokenizer cut a text: each token a rounded pastel box, whitespace made visible.

::

    strip = TokenStrip()
    strip.set_tokens(["Hello", ",", " world", "!\\n"], [15496, 11, 995, 0])

Boxes alternate through a few pastel colours so neighbours are always told apart (or, with
``set_color_mode("id")``, equal tokens share a colour). Spaces show as ``·``, newlines as
``↵`` (and the strip also breaks the line there), tabs as ``→``, in a lighter grey than the
text. Lines wrap at the widget's width (``heightForWidth``: put it in a QScrollArea with
``setWidgetResizable(True)`` for long texts). Hovering a token shows its position, id and exact
text; ``set_show_ids(True)`` writes ids under the boxes.

Signals: ``tokenHovered(int index)`` (-1 when leaving), ``tokenClicked(int index)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from PySide6 import QtCore, QtGui, QtWidgets

from .. import theme
from .export import save_png


@dataclass
class _Box:
    index: int
    rect: QtCore.QRectF
    runs: list[tuple[str, bool]]  # (display text, is a whitespace marker)
    breaks_line: bool


class TokenStrip(QtWidgets.QWidget):
    """A text shown as its tokens. ``set_tokens(token_texts, ids)``."""

    tokenHovered = QtCore.Signal(int)
    tokenClicked = QtCore.Signal(int)

    def __init__(self, parent: QtWidgets.QWidget | None = None, *,
                 presentation: float = 1.0, show_ids: bool = False,
                 color_mode: str = "alternate", break_on_newline: bool = True):
        super().__init__(parent)
        self._texts: list[str] = []
        self._ids: list[int] = []
        self._runs: list[list[tuple[str, bool]]] = []
        self._given_colors: list[QtGui.QColor] | None = None  # per token, instead of the pastels
        self._tooltips: list[str] | None = None
        self._widths: list[float] = []
        self._scale = max(0.5, float(presentation))
        self._show_ids = show_ids
        self._color_mode = color_mode
        self._break_on_newline = break_on_newline
        self._boxes: list[_Box] = []
        self._layout_width = -1
        self._height = 0
        self._hover = -1
        self._selected = -1
        self.setMouseTracking(True)
        policy = QtWidgets.QSizePolicy(QtWidgets.QSizePolicy.Policy.Preferred,
                                       QtWidgets.QSizePolicy.Policy.Preferred)
        # QScrollArea reads height-for-width from the policy (not from hasHeightForWidth()):
        # without it a long text is squeezed into the viewport and cannot be scrolled to
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        self.setAttribute(QtCore.Qt.WidgetAttribute.WA_OpaquePaintEvent, False)
        self._update_fonts()

    # -- API --------------------------------------------------------------------------------

    def set_tokens(self, token_texts: Sequence[str], ids: Sequence[int] | None = None, *,
                   colors: Sequence[str | QtGui.QColor] | None = None, tooltips: Sequence[str] | None = None,
                   keep_selection: bool = False) -> None:
        """Show these tokens (``ids`` optional, same length). ``colors`` and ``tooltips``, one per
        token, replace the pastel cycle and the default tooltip (e.g. colour by probability)."""
        texts = [str(t) for t in token_texts]
        if ids is None:
            ids = [-1] * len(texts)
        ids = [int(i) for i in ids]
        for name, values in (("ids", ids), ("colors", colors), ("tooltips", tooltips)):
            if values is not None and len(values) != len(texts):
                raise ValueError(f"{len(texts)} tokens but {len(values)} {name}")
        selected = self._selected if keep_selection and self._selected < len(texts) else -1
        self._texts, self._ids = texts, ids
        self._given_colors = [QtGui.QColor(c) for c in colors] if colors is not None else None
        self._tooltips = list(tooltips) if tooltips is not None else None
        self._runs = [theme.visible_runs(t) for t in texts]
        self._measure()
        self._hover = -1
        self._selected = selected
        self._relayout()

    def clear(self) -> None:
        self.set_tokens([], [])

    def token_count(self) -> int:
        return len(self._texts)

    def tokens(self) -> list[str]:
        return list(self._texts)

    def ids(self) -> list[int]:
        return list(self._ids)

    def display_texts(self) -> list[str]:
        """What each box shows (whitespace replaced by markers)."""
        return ["".join(r for r, _ in runs) for runs in self._runs]

    def box_rects(self) -> list[QtCore.QRectF]:
        """The box of each token in widget coordinates (for the current width)."""
        self._ensure_layout()
        return [QtCore.QRectF(b.rect) for b in self._boxes]

    def box_colors(self) -> list[QtGui.QColor]:
        return [self._color(i) for i in range(len(self._texts))]

    def token_at(self, pos: QtCore.QPointF | QtCore.QPoint) -> int:
        """Index of the token under ``pos`` (widget coordinates), or -1."""
        self._ensure_layout()
        p = QtCore.QPointF(pos)
        for b in self._boxes:
            if b.rect.contains(p):
                return b.index
        return -1

    def tooltip_text(self, index: int) -> str:
        if self._tooltips is not None and self._tooltips[index]:
            return self._tooltips[index]
        text = self._texts[index]
        shown = repr(text)
        tid = self._ids[index]
        id_part = f"id {tid}" if tid >= 0 else "no id"
        return (f"token {index + 1} of {len(self._texts)}\n{id_part}\ntext {shown} "
                f"({len(text)} character{'s' if len(text) != 1 else ''})")

    def set_selected(self, index: int) -> None:
        """Outline one token (-1: none), e.g. the query token of an attention view."""
        self._selected = index
        self.update()

    def set_show_ids(self, show: bool) -> None:
        self._show_ids = bool(show)
        self._update_fonts()
        self._measure()
        self._relayout()

    def set_color_mode(self, mode: str) -> None:
        """"alternate" (neighbours differ) or "id" (equal ids share a colour)."""
        if mode not in ("alternate", "id"):
            raise ValueError("color mode must be 'alternate' or 'id'")
        self._color_mode = mode
        self.update()

    def presentation(self) -> float:
        return self._scale

    def set_presentation(self, scale: float) -> None:
        self._scale = max(0.5, float(scale))
        self._update_fonts()
        self._measure()
        self._relayout()

    def export_png(self, path: str, scale: float = 2.0) -> None:
        """The strip as PNG at ``scale`` x its size."""
        save_png(self, path, scale)

    # -- geometry ---------------------------------------------------------------------------

    def _update_fonts(self) -> None:
        s = self._scale
        self._font = theme.font(s, size=11.5)
        self._id_font = theme.font(s, size=7.5)
        fm = QtGui.QFontMetricsF(self._font)
        self._fm = fm
        self._pad_x = 4.0 * s
        self._pad_y = 3.0 * s
        self._gap_x = 3.0 * s
        self._gap_y = 5.0 * s
        self._margin = 6.0 * s
        self._radius = 5.0 * s
        self._id_h = QtGui.QFontMetricsF(self._id_font).height() if self._show_ids else 0.0
        self._box_h = fm.height() + 2 * self._pad_y
        self._line_h = self._box_h + self._id_h + self._gap_y

    def _measure(self) -> None:
        fm = self._fm
        idfm = QtGui.QFontMetricsF(self._id_font)
        self._widths = []
        for runs, tid in zip(self._runs, self._ids):
            w = sum(fm.horizontalAdvance(r) for r, _ in runs) + 2 * self._pad_x
            if self._show_ids and tid >= 0:
                w = max(w, idfm.horizontalAdvance(str(tid)) + 2 * self._pad_x)
            self._widths.append(max(w, self._box_h * 0.6))

    def _ensure_layout(self) -> None:
        if self._layout_width != self.width():
            self._do_layout(self.width())

    def _do_layout(self, width: int) -> float:
        self._layout_width = width
        m = self._margin
        avail = max(40.0, width - 2 * m)
        x, y = m, m
        boxes = []
        for i, (runs, w) in enumerate(zip(self._runs, self._widths)):
            if x > m and x + w > m + avail:
                x, y = m, y + self._line_h
            rect = QtCore.QRectF(x, y, min(w, avail), self._box_h)
            brk = self._break_on_newline and "\n" in self._texts[i]
            boxes.append(_Box(i, rect, runs, brk))
            x += w + self._gap_x
            if brk:
                x, y = m, y + self._line_h
        self._boxes = boxes
        bottom = (boxes[-1].rect.bottom() + self._id_h if boxes else m) + m
        self._height = int(bottom + 0.999)
        return bottom

    def _relayout(self) -> None:
        self._layout_width = -1
        self._ensure_layout()
        self.updateGeometry()
        self.update()

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        saved = (self._layout_width, self._boxes, self._height)
        self._do_layout(width)
        h = self._height
        self._layout_width, self._boxes, self._height = saved
        return h

    def sizeHint(self) -> QtCore.QSize:
        w = max(200, self.width())
        return QtCore.QSize(w, self.heightForWidth(w))

    def minimumSizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(80, int(self._box_h + 2 * self._margin))

    def resizeEvent(self, event):
        old_h = self._height
        self._ensure_layout()
        if self._height != old_h:
            self.updateGeometry()
        super().resizeEvent(event)

    # -- painting ---------------------------------------------------------------------------

    def _color(self, i: int) -> QtGui.QColor:
        if self._given_colors is not None:
            return QtGui.QColor(self._given_colors[i])
        pastels = theme.TOKEN_PASTELS
        if self._color_mode == "id" and self._ids and self._ids[i] >= 0:
            k = (self._ids[i] * 2654435761) % len(pastels)
        else:
            k = i % len(pastels)
        return QtGui.QColor(pastels[k])

    def paintEvent(self, event):
        self._ensure_layout()
        p = QtGui.QPainter(self)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QtGui.QPainter.RenderHint.TextAntialiasing)
        p.fillRect(self.rect(), QtGui.QColor(theme.BACKGROUND))
        exposed = QtCore.QRectF(event.rect()).adjusted(-2, -2, 2, 2)
        fm = self._fm
        text_col = QtGui.QColor(theme.FOREGROUND)
        mark_col = QtGui.QColor(theme.MUTED)
        id_col = QtGui.QColor(theme.FAINT)
        border = QtGui.QPen(QtGui.QColor(0, 0, 0, 28), 1)
        hover_pen = QtGui.QPen(QtGui.QColor(theme.FOREGROUND), 1.5 * self._scale)
        select_pen = QtGui.QPen(QtGui.QColor(theme.HIGHLIGHT), 2.0 * self._scale)
        ascent = fm.ascent()
        for b in self._boxes:
            r = b.rect
            if not r.adjusted(0, 0, 0, self._id_h).intersects(exposed):
                continue
            fill = self._color(b.index)
            if b.index == self._hover:
                fill = fill.darker(112)
            if b.index == self._selected:
                p.setPen(select_pen)
            elif b.index == self._hover:
                p.setPen(hover_pen)
            else:
                p.setPen(border)
            p.setBrush(fill)
            p.drawRoundedRect(r.adjusted(0.5, 0.5, -0.5, -0.5), self._radius, self._radius)
            p.setFont(self._font)
            text_w = sum(fm.horizontalAdvance(t) for t, _ in b.runs)
            x = r.left() + max(self._pad_x, (r.width() - text_w) / 2)
            base = r.top() + self._pad_y + ascent
            p.save()
            p.setClipRect(r)
            for text, is_mark in b.runs:
                p.setPen(mark_col if is_mark else text_col)
                p.drawText(QtCore.QPointF(x, base), text)
                x += fm.horizontalAdvance(text)
            p.restore()
            if self._show_ids and self._ids[b.index] >= 0:
                p.setFont(self._id_font)
                p.setPen(id_col)
                p.drawText(QtCore.QRectF(r.left(), r.bottom(), r.width(), self._id_h),
                           int(QtCore.Qt.AlignmentFlag.AlignHCenter |
                               QtCore.Qt.AlignmentFlag.AlignTop), str(self._ids[b.index]))
        if not self._boxes:
            p.setPen(QtGui.QColor(theme.FAINT))
            p.setFont(theme.font(self._scale, size=10))
            p.drawText(self.rect().adjusted(int(self._margin), 0, 0, 0),
                       int(QtCore.Qt.AlignmentFlag.AlignVCenter), "No tokens")
        p.end()

    # -- mouse ------------------------------------------------------------------------------

    def _set_hover(self, index: int) -> None:
        if index != self._hover:
            self._hover = index
            self.update()
            self.tokenHovered.emit(index)

    def mouseMoveEvent(self, event):
        self._set_hover(self.token_at(event.position()))
        super().mouseMoveEvent(event)

    def leaveEvent(self, event):
        self._set_hover(-1)
        super().leaveEvent(event)

    def mousePressEvent(self, event):
        if event.button() == QtCore.Qt.MouseButton.LeftButton:
            i = self.token_at(event.position())
            if i >= 0:
                self.tokenClicked.emit(i)
        super().mousePressEvent(event)

    def event(self, ev):
        if ev.type() == QtCore.QEvent.Type.ToolTip:
            i = self.token_at(ev.pos())
            if i >= 0:
                QtWidgets.QToolTip.showText(ev.globalPos(), self.tooltip_text(i), self)
            else:
                QtWidgets.QToolTip.hideText()
                ev.ignore()
            return True
        return super().event(ev)
