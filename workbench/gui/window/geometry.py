"""Where the window sits and how big it is: the first size, the size kept from the last session,
and keeping the whole window on its screen's free area (a 1024x768 projector included)."""

from __future__ import annotations

from PySide6 import QtCore, QtGui

# The first window: this size where the screen has room, else the screen's free area. The minimum
# is small because every page scrolls (see page_host.PageScroll): a window never has to outgrow its screen.
PREFERRED_WINDOW = QtCore.QSize(1440, 900)
MIN_WINDOW = QtCore.QSize(760, 520)
FRAME_ALLOWANCE = QtCore.QSize(16, 48)  # title bar and borders of a typical window manager


class WindowGeometry:
    """Methods of MainWindow (a QMainWindow) that place and size it."""

    def _restore_geometry(self, s: QtCore.QSettings) -> None:
        rect = s.value("window/rect")  # the normal (not maximized) geometry, clamped to the screen below
        if isinstance(rect, QtCore.QRect) and rect.isValid():
            self.setGeometry(rect)
            self._start_maximized = s.value("window/maximized") in (True, "true")
        else:
            area = self._screen_area()
            self.resize(PREFERRED_WINDOW.boundedTo(area.size() - FRAME_ALLOWANCE))
            self.move(area.center() - QtCore.QPoint(self.width() // 2, self.height() // 2 + FRAME_ALLOWANCE.height() // 2))
        self.fit_to_screen()
        state = s.value("window/state")
        if state is not None:
            self.restoreState(state)

    def _save_geometry(self, s: QtCore.QSettings) -> None:
        s.setValue("window/rect", self.normalGeometry())
        s.setValue("window/maximized", self.isMaximized())
        s.setValue("window/state", self.saveState())

    def _screen_area(self) -> QtCore.QRect:
        """The free area (without panels and docks) of the screen the window is on."""
        screen = self.screen() or QtGui.QGuiApplication.primaryScreen()
        return screen.availableGeometry() if screen is not None else QtCore.QRect(0, 0, 1440, 900)

    def fit_to_screen(self) -> None:
        """Keep the whole window, frame and status bar included, on its screen's free area: a
        saved size from a bigger monitor or the preferred size on a 1024x768 projector shrinks to
        fit, and a window left off screen comes back. Before the first show the frame is not known
        yet, so a typical title bar and border are allowed for."""
        area = self._screen_area()
        frame = self.frameGeometry()
        if self.isVisible() and frame.height() > self.height():
            extra = QtCore.QSize(frame.width() - self.width(), frame.height() - self.height())
        else:
            extra = QtCore.QSize(FRAME_ALLOWANCE.width(), FRAME_ALLOWANCE.height())
        room = QtCore.QSize(max(1, area.width() - extra.width()), max(1, area.height() - extra.height()))
        self.setMinimumSize(MIN_WINDOW.boundedTo(room))
        size = self.size().boundedTo(room)
        if size != self.size():
            self.resize(size)
        full = QtCore.QSize(size.width() + extra.width(), size.height() + extra.height())
        x = min(max(frame.x(), area.left()), area.right() + 1 - full.width())
        y = min(max(frame.y(), area.top()), area.bottom() + 1 - full.height())
        if (x, y) != (frame.x(), frame.y()):
            self.move(x, y)

    def showEvent(self, e) -> None:
        super().showEvent(e)
        if not getattr(self, "_fitted_once", False):  # the frame is known once the window is up
            self._fitted_once = True
            QtCore.QTimer.singleShot(0, self.fit_to_screen)
            if getattr(self, "_start_maximized", False):
                QtCore.QTimer.singleShot(0, self.showMaximized)
