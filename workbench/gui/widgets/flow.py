"""Layout pieces that let a page reflow instead of clipping on a small or scaled-up screen.

``FlowRow``: a row of controls that wraps onto more lines when the page is narrow (a 1024x768
projector in presentation mode) instead of forcing the page wider than the window. Its minimum
height follows its width, so the page around it (a scroll area) sees the real height it needs.

``ElidedLabel``: one line of text that shortens itself with "…" to the space it gets and shows
the whole text as a tooltip, so a long file name or headline never widens the page.
"""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets


class FlowLayout(QtWidgets.QLayout):
    """Places items left to right and starts a new line where the next item would not fit."""

    def __init__(self, parent=None, *, spacing: int = 8, top: bool = False):
        super().__init__(parent)
        self._top = top  # items sit at the top of their line (columns of a form), else centred
        self._items: list[QtWidgets.QLayoutItem] = []
        self._stretch_after: set[int] = set()  # indexes after which the rest of a line goes right
        self.setSpacing(spacing)
        self.setContentsMargins(0, 0, 0, 0)

    def addItem(self, item: QtWidgets.QLayoutItem) -> None:
        self._items.append(item)

    def addStretch(self) -> None:
        """Items added after this go to the right end of their line (when they share it)."""
        self._stretch_after.add(len(self._items))

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int):
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int):
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self):
        return QtCore.Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:
        # not advertised: box layouts would then treat the row's *preferred* height as its
        # minimum and squeeze its neighbours; FlowRow keeps its minimum height current instead
        return False

    def heightForWidth(self, width: int) -> int:
        return self._place(QtCore.QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect: QtCore.QRect) -> None:
        super().setGeometry(rect)
        self._place(rect, move=True)

    def sizeHint(self) -> QtCore.QSize:
        m = self.contentsMargins()
        visible = [it for it in self._items if not it.isEmpty()]
        w = sum(it.sizeHint().width() for it in visible) + self.spacing() * max(0, len(visible) - 1)
        h = max((it.sizeHint().height() for it in visible), default=0)
        return QtCore.QSize(w + m.left() + m.right(), h + m.top() + m.bottom())

    def minimumSize(self) -> QtCore.QSize:
        m = self.contentsMargins()
        size = QtCore.QSize()
        for it in self._items:
            if not it.isEmpty():
                size = size.expandedTo(it.minimumSize())
        return QtCore.QSize(size.width() + m.left() + m.right(), size.height() + m.top() + m.bottom())

    def _lines(self, width: int) -> list[list[int]]:
        lines: list[list[int]] = [[]]
        x = 0
        for i, it in enumerate(self._items):
            if it.isEmpty():
                continue
            w = it.sizeHint().width()
            if lines[-1] and x + self.spacing() + w > width:
                lines.append([])
                x = 0
            x += (self.spacing() if lines[-1] else 0) + w
            lines[-1].append(i)
        return lines

    def _place(self, rect: QtCore.QRect, *, move: bool) -> int:
        m = self.contentsMargins()
        area = rect.adjusted(m.left(), m.top(), -m.right(), -m.bottom())
        y = area.y()
        for line in self._lines(area.width()):
            if not line:
                continue
            widths = [min(area.width(), self._items[i].sizeHint().width()) for i in line]
            height = max(self._items[i].sizeHint().height() for i in line)
            used = sum(widths) + self.spacing() * (len(line) - 1)
            x = area.x()
            for i, w in zip(line, widths):
                if move and i in self._stretch_after and i != line[0]:
                    x += max(0, area.width() - used)
                    used = area.width()
                if move:
                    h = self._items[i].sizeHint().height()
                    self._items[i].setGeometry(QtCore.QRect(x, y if self._top else y + (height - h) // 2, w, h))
                x += w + self.spacing()
            y += height + self.spacing()
        return y - self.spacing() - area.y() + m.top() + m.bottom() if y > area.y() else m.top() + m.bottom()


class FlowRow(QtWidgets.QWidget):
    """A widget holding a FlowLayout; ``add`` widgets, ``add_stretch`` to push the rest right.
    Its minimum height is the height its lines need at its current width (kept up to date on
    resize), so box layouts and scroll areas give it room for every line."""

    def __init__(self, parent=None, *, spacing: int = 8, top: bool = False):
        super().__init__(parent)
        self.flow = FlowLayout(self, spacing=spacing, top=top)
        policy = QtWidgets.QSizePolicy(QtWidgets.QSizePolicy.Policy.Preferred, QtWidgets.QSizePolicy.Policy.Minimum)
        self.setSizePolicy(policy)

    def add(self, *widgets: QtWidgets.QWidget) -> None:
        for w in widgets:
            self.flow.addWidget(w)

    def add_stretch(self) -> None:
        self.flow.addStretch()

    def minimumSizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(self.flow.minimumSize().width(), self._needed(self.width()))

    def sizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(self.flow.sizeHint().width(), self._needed(self.width()))

    def _needed(self, width: int) -> int:
        return self.flow.heightForWidth(max(width, self.flow.minimumSize().width()))

    def event(self, e: QtCore.QEvent) -> bool:
        if e.type() == QtCore.QEvent.Type.LayoutRequest:  # an item's size hint changed
            self.updateGeometry()
        return super().event(e)

    def resizeEvent(self, e: QtGui.QResizeEvent) -> None:
        super().resizeEvent(e)
        if e.size().width() != e.oldSize().width():
            self.updateGeometry()  # the number of lines may have changed: the parent re-reads it


class ElidedLabel(QtWidgets.QLabel):
    """A one-line label that elides its text to its width; the full text is its tooltip."""

    def __init__(self, text: str = "", parent=None, *, mode=QtCore.Qt.TextElideMode.ElideRight):
        super().__init__(parent)
        self._full = ""
        self._mode = mode
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Preferred, QtWidgets.QSizePolicy.Policy.Preferred)
        self.setText(text)

    def full_text(self) -> str:
        return self._full

    def text(self) -> str:  # the whole text, as set (what is painted may be shortened)
        return self._full

    def shown_text(self) -> str:
        return super().text()

    def setText(self, text: str) -> None:
        self._full = text or ""
        self.setToolTip(self._full if self._full else "")
        self._elide()
        self.updateGeometry()

    def minimumSizeHint(self) -> QtCore.QSize:
        fm = self.fontMetrics()
        return QtCore.QSize(fm.horizontalAdvance("…") * 4, super().minimumSizeHint().height())

    def sizeHint(self) -> QtCore.QSize:
        fm = self.fontMetrics()
        m = self.contentsMargins()
        return QtCore.QSize(fm.horizontalAdvance(self._full) + m.left() + m.right() + 4,
                            super().sizeHint().height())

    def resizeEvent(self, e) -> None:
        super().resizeEvent(e)
        self._elide()

    def changeEvent(self, e) -> None:
        super().changeEvent(e)
        if e.type() in (QtCore.QEvent.Type.FontChange, QtCore.QEvent.Type.StyleChange):
            self._elide()

    def _elide(self) -> None:
        m = self.contentsMargins()
        width = max(0, self.width() - m.left() - m.right())
        shown = self.fontMetrics().elidedText(self._full, self._mode, width) if self._full else ""
        super().setText(shown)


def together(*widgets: QtWidgets.QWidget, spacing: int = 6) -> QtWidgets.QWidget:
    """Widgets in one row that a FlowRow moves as one piece (it never wraps between them)."""
    piece = QtWidgets.QWidget()
    h = QtWidgets.QHBoxLayout(piece)
    h.setContentsMargins(0, 0, 0, 0)
    h.setSpacing(spacing)
    for w in widgets:
        h.addWidget(w)
    return piece


def labelled(text: str, widget: QtWidgets.QWidget, *, spacing: int = 6) -> QtWidgets.QWidget:
    """A label and its control as one piece, so that a FlowRow never wraps between them."""
    label = QtWidgets.QLabel(text)
    label.setBuddy(widget)
    return together(label, widget, spacing=spacing)


def flow_columns(n: int, make_layout, *, spacing: int) -> tuple["FlowRow", list]:
    """``n`` columns side by side that wrap under each other on a narrow page: (the row, the
    columns' layouts, each made by ``make_layout(column_widget)`` with no margins)."""
    row = FlowRow(spacing=spacing, top=True)
    layouts = []
    for _ in range(n):
        column = QtWidgets.QWidget()
        lay = make_layout(column)
        lay.setContentsMargins(0, 0, 0, 0)
        row.add(column)
        layouts.append(lay)
    return row, layouts


def _side_by_side_width(widgets: list[QtWidgets.QWidget], spacing: int) -> int:
    shown = [w for w in widgets if not w.isHidden()]
    return sum(max(w.minimumSizeHint().width(), w.minimumWidth()) for w in shown) + spacing * max(0, len(shown) - 1)


def _stacked_width(widgets: list[QtWidgets.QWidget]) -> int:
    return max((max(w.minimumSizeHint().width(), w.minimumWidth()) for w in widgets if not w.isHidden()), default=0)


class Columns(QtWidgets.QWidget):
    """Cards side by side where the page is wide enough for all of them, else one above the
    other (the page scrolls). ``add(widget, stretch)`` in left-to-right order."""

    def __init__(self, parent=None, *, spacing: int = 12):
        super().__init__(parent)
        self.box = QtWidgets.QBoxLayout(QtWidgets.QBoxLayout.Direction.LeftToRight, self)
        self.box.setContentsMargins(0, 0, 0, 0)
        self.box.setSpacing(spacing)
        self.box.setSizeConstraint(QtWidgets.QLayout.SizeConstraint.SetNoConstraint)
        self._widgets: list[QtWidgets.QWidget] = []

    def add(self, widget: QtWidgets.QWidget, stretch: int = 1) -> None:
        self._widgets.append(widget)
        self.box.addWidget(widget, stretch)

    def side_by_side(self) -> bool:
        return self.box.direction() == QtWidgets.QBoxLayout.Direction.LeftToRight

    def _wide(self) -> bool:
        return self.width() >= _side_by_side_width(self._widgets, self.box.spacing())

    def minimumSizeHint(self) -> QtCore.QSize:
        # from the width (not the current direction, which follows it only on the next resize)
        heights = [max(w.minimumSizeHint().height(), w.minimumHeight()) for w in self._widgets if not w.isHidden()]
        if self._wide():
            height = max(heights, default=0)
        else:
            height = sum(heights) + self.box.spacing() * max(0, len(heights) - 1)
        return QtCore.QSize(_stacked_width(self._widgets), height)

    def resizeEvent(self, e) -> None:
        super().resizeEvent(e)
        self._reflow()

    def event(self, e: QtCore.QEvent) -> bool:
        if e.type() == QtCore.QEvent.Type.LayoutRequest:  # a card's minimum changed (fonts, texts)
            self._reflow()
        return super().event(e)

    def _reflow(self) -> None:
        direction = (QtWidgets.QBoxLayout.Direction.LeftToRight if self._wide()
                     else QtWidgets.QBoxLayout.Direction.TopToBottom)
        if direction != self.box.direction():
            self.box.setDirection(direction)
        hint = self.minimumSizeHint()
        if hint != getattr(self, "_last_hint", None):  # tell the page only when it changed
            self._last_hint = hint
            self.updateGeometry()


class ReflowSplitter(QtWidgets.QSplitter):
    """A horizontal splitter that turns vertical where the page is narrower than its panes'
    minimum widths side by side (a 1024x768 projector in presentation mode): the panes keep
    their useful size and the page scrolls, instead of the panes being squeezed."""

    def __init__(self, parent=None):
        super().__init__(QtCore.Qt.Orientation.Horizontal, parent)
        self.setChildrenCollapsible(False)

    def _panes(self) -> list[QtWidgets.QWidget]:
        return [self.widget(i) for i in range(self.count())]

    def minimumSizeHint(self) -> QtCore.QSize:
        panes = [p for p in self._panes() if not p.isHidden()]
        heights = [max(p.minimumSizeHint().height(), p.minimumHeight()) for p in panes]
        if self.width() >= _side_by_side_width(panes, self.handleWidth()):
            height = max(heights, default=0)
        else:
            height = sum(heights) + self.handleWidth() * max(0, len(heights) - 1)
        return QtCore.QSize(_stacked_width(panes), height)

    def resizeEvent(self, e) -> None:
        self._reflow()
        super().resizeEvent(e)

    def event(self, e: QtCore.QEvent) -> bool:
        if e.type() == QtCore.QEvent.Type.LayoutRequest:  # a pane's minimum changed (fonts, texts)
            self._reflow()
        return super().event(e)

    def _reflow(self) -> None:
        wide = self.width() >= _side_by_side_width(self._panes(), self.handleWidth())
        orientation = QtCore.Qt.Orientation.Horizontal if wide else QtCore.Qt.Orientation.Vertical
        if orientation != self.orientation():
            self.setOrientation(orientation)
            self._unfold_scroll_panes(not wide)
            self.updateGeometry()

    def _unfold_scroll_panes(self, stacked: bool) -> None:
        """Stacked, a pane that is a scroll area (a settings column) shows all of its content, so
        that the page scrolls once instead of a small box scrolling inside a scrolling page."""
        for pane in self._panes():
            if isinstance(pane, QtWidgets.QScrollArea) and pane.widget() is not None:
                if stacked:
                    pane.setProperty("_flow_min_height", pane.minimumHeight())
                    inner = pane.widget()
                    need = max(inner.minimumSizeHint().height(), inner.minimumHeight())
                    pane.setMinimumHeight(need + 2 * pane.frameWidth())
                elif pane.property("_flow_min_height") is not None:
                    pane.setMinimumHeight(int(pane.property("_flow_min_height")))


class WrapLabel(QtWidgets.QLabel):
    """A word-wrapped label whose minimum height is the height its text needs at its current
    width. A plain word-wrapped QLabel reports height-for-width instead, which box layouts turn
    into a rigid preferred height for its whole card (squeezing the card's neighbours), while its
    minimum size hint is too short for a narrow page (squeezing the card's own plots)."""

    def __init__(self, text: str = "", parent=None):
        super().__init__(text, parent)
        self.setWordWrap(True)

    def hasHeightForWidth(self) -> bool:
        return False

    def _needed(self) -> int:
        if not self.text() or not self.wordWrap():
            return super().minimumSizeHint().height()
        width = max(self.width(), super().minimumSizeHint().width())
        return max(super().minimumSizeHint().height(), self.heightForWidth(width))

    def minimumSizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(super().minimumSizeHint().width(), self._needed())

    def sizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(super().sizeHint().width(), self._needed())

    def resizeEvent(self, e) -> None:
        super().resizeEvent(e)
        if e.size().width() != e.oldSize().width():
            self.updateGeometry()


class ColumnScroll(QtWidgets.QScrollArea):
    """A column of settings that scrolls up and down only: it is never narrower than its content
    (plus the scroll bar), so nothing is cut at the right, also when presentation mode enlarges
    the fonts. ``setWidget`` as usual."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def setWidget(self, widget: QtWidgets.QWidget) -> None:
        super().setWidget(widget)
        widget.installEventFilter(self)

    def minimumSizeHint(self) -> QtCore.QSize:
        hint = super().minimumSizeHint()
        inner = self.widget()
        if inner is None:
            return hint
        bar = self.style().pixelMetric(QtWidgets.QStyle.PixelMetric.PM_ScrollBarExtent, None, self)
        width = max(inner.minimumSizeHint().width(), inner.minimumWidth()) + bar + 2 * self.frameWidth() + 2
        return QtCore.QSize(max(hint.width(), width), hint.height())

    def eventFilter(self, obj, e) -> bool:
        if obj is self.widget() and e.type() == QtCore.QEvent.Type.LayoutRequest:
            self.updateGeometry()  # the content's minimum may have changed (fonts, rows)
        return super().eventFilter(obj, e)
