"""The mouse wheel over a plot scrolls the page, as over any other part of it; Ctrl+wheel zooms
the plot. Pages scroll (a projector at 1024x768), and a person scrolling past a chart zoomed it
by accident (a loss plot ended at -6k..8k). Double-click fits the view again.

    wheel_scrolls_page(plot_widget, reset=plot.reset_view)

works for any pyqtgraph view (PlotWidget, GraphicsLayoutWidget).
"""

from __future__ import annotations

from typing import Callable

import pyqtgraph as pg
from PySide6 import QtCore, QtGui

ZOOM_HINT = "Wheel scrolls the page · Ctrl+wheel zooms · drag pans · double-click fits the view"
CTRL = QtCore.Qt.KeyboardModifier.ControlModifier


class _PageWheel(QtCore.QObject):
    """Event filter on a view's viewport: a wheel without Ctrl goes to the view's parents, up to
    the first that takes it (the page's scroll area); a double-click calls the view's reset."""

    def __init__(self, view: pg.GraphicsView, reset: Callable[[], None] | None):
        super().__init__(view)
        self._view = view
        self._reset = reset

    def eventFilter(self, obj, event) -> bool:
        t = event.type()
        if t == QtCore.QEvent.Type.Wheel and not event.modifiers() & CTRL:
            # Qt propagates only the wheel events it got from the system: walk up by hand
            w = self._view
            while not w.isWindow() and (w := w.parentWidget()) is not None:
                forwarded = QtGui.QWheelEvent(w.mapFromGlobal(event.globalPosition()), event.globalPosition(),
                                              event.pixelDelta(), event.angleDelta(), event.buttons(),
                                              event.modifiers(), event.phase(), event.inverted(), event.source())
                QtCore.QCoreApplication.sendEvent(w, forwarded)
                if forwarded.isAccepted():
                    break
            return True  # never a zoom
        if t == QtCore.QEvent.Type.MouseButtonDblClick and self._reset is not None:
            self._reset()
        return False


def wheel_scrolls_page(view: pg.GraphicsView, reset: Callable[[], None] | None = None,
                       hint: str = ZOOM_HINT) -> None:
    """Make the wheel over ``view`` scroll the page and Ctrl+wheel zoom it; ``reset`` (if given)
    runs on a double-click; ``hint`` becomes the view's tooltip ("" for none)."""
    guard = _PageWheel(view, reset)
    view.viewport().installEventFilter(guard)
    view._page_wheel = guard  # kept with the view
    if hint:
        view.setToolTip(hint)
