"""The theme as the window shows it: the sidebar pane is painted in the sidebar's colour, and
the presentation scale enlarges the application font."""

import pytest
from PySide6 import QtGui, QtWidgets

from workbench.gui import theme
from workbench.gui.panels.curves_panel import CurvesPanel
from workbench.gui.window.sidebar import SidebarPane


@pytest.fixture
def styled(qapp):
    """The application's style sheet and font for one test (the suite runs without them)."""
    sheet, font = qapp.styleSheet(), QtGui.QFont(qapp.font())
    theme.apply_style(qapp)
    yield qapp
    qapp.setStyleSheet(sheet)
    qapp.setFont(font)


def test_the_sidebar_pane_is_painted_in_the_sidebar_colour(styled, qtbot):
    host = QtWidgets.QWidget()  # as in the window: a child (a window paints its background anyway)
    qtbot.addWidget(host)
    pane = SidebarPane(host)
    pane.add_step(CurvesPanel())
    pane.setGeometry(0, 0, 240, 400)
    host.resize(240, 400)
    host.show()
    image = host.grab().toImage()
    # beside the application's name (a label without a background of its own): the pane's colour
    assert image.pixelColor(2, 2).name() == theme.SIDEBAR_BG
    assert theme.SIDEBAR_BG != QtGui.QColor(theme.BACKGROUND).name()


def test_presentation_scale_enlarges_the_font(styled):
    theme.apply_style(styled, 1.5)
    assert styled.font().pointSizeF() == pytest.approx(theme.BASE_POINT_SIZE * 1.5)
    assert f"font-size: {theme.BASE_POINT_SIZE * 1.5:.1f}pt" in styled.styleSheet()
