"""The page stack's pages: each panel sits in a PageHost (which keeps its relayouts from
climbing to the window) inside a PageScroll (which scrolls it where the window is smaller than
the panel)."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets


class PageHost(QtWidgets.QWidget):
    """Holds one panel in the page stack and stops its relayouts at the page's edge.

    A label whose text changes (the curves headline, the training panel's step and speed, several
    times a second during a run) relayouts its panel, and Qt then relayouts every ancestor up to
    the window, where the page stack asks every page, shown or not, for its size (word-wrapped
    labels lay out their text each time): about 10 ms of GUI thread per metrics batch, measured
    with `workbench bench gui`. This host has no layout: it gives the panel its whole area and
    passes a relayout upwards only when the panel's size hints have changed."""

    def __init__(self, panel: QtWidgets.QWidget):
        super().__init__()
        self.panel = panel
        self._hints = None
        self.setSizePolicy(panel.sizePolicy())
        panel.setParent(self)

    def sizeHint(self) -> QtCore.QSize:
        return self.panel.sizeHint()

    def minimumSizeHint(self) -> QtCore.QSize:
        hint = self.panel.minimumSizeHint()
        lay = self.panel.layout()
        if lay is not None and lay.hasHeightForWidth():  # word-wrapped text is taller when narrow
            width = max(hint.width(), self.width())
            hint.setHeight(max(hint.height(), lay.totalMinimumHeightForWidth(width)))
        return hint

    def _fit(self) -> None:
        hints = (self.panel.sizeHint(), self.minimumSizeHint())
        if hints != self._hints:
            self._hints = hints
            self.updateGeometry()
            page = self.parentWidget() and self.parentWidget().parentWidget()
            if isinstance(page, PageScroll):  # the scroll area re-reads the minimum size
                QtWidgets.QApplication.postEvent(page, QtCore.QEvent(QtCore.QEvent.Type.LayoutRequest))
        self.panel.setGeometry(self.rect())

    def event(self, e: QtCore.QEvent) -> bool:
        if e.type() == QtCore.QEvent.Type.LayoutRequest:  # the panel's layout changed
            self._fit()
            return True
        return super().event(e)

    def showEvent(self, e) -> None:
        self._fit()
        super().showEvent(e)

    def resizeEvent(self, e) -> None:
        self.panel.setGeometry(self.rect())
        super().resizeEvent(e)
        if e.size().width() != e.oldSize().width():
            self._fit()  # the height the panel needs depends on its width


class PageScroll(QtWidgets.QScrollArea):
    """A page of the stack: the panel (in its PageHost) fills the page and scrolls where the
    window is smaller than the panel's minimum size (a projector at 1024x768 in presentation
    mode), so that every control stays reachable instead of being squeezed over its neighbours.
    The stack itself asks for no more than a small minimum, so the window fits any screen."""

    def __init__(self, panel: QtWidgets.QWidget):
        super().__init__()
        self.host = PageHost(panel)
        self.setObjectName(f"page_{panel.objectName()}")
        self.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.setWidgetResizable(True)
        self.setWidget(self.host)

    def minimumSizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(200, 150)

    def sizeHint(self) -> QtCore.QSize:
        return self.host.sizeHint()

    def resizeEvent(self, e) -> None:
        # the room the page has without scroll bars: panels size their big views from it
        # (from the panel's own size they would grow it, and then themselves, without end)
        self.host.panel.set_page_size(self.maximumViewportSize())
        super().resizeEvent(e)
