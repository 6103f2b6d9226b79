"""The reflowing pieces pages are built from (widgets/flow.py)."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from workbench.gui.widgets.flow import Columns, ElidedLabel, FlowRow, ReflowSplitter


def _settle(qtbot):
    for _ in range(4):
        QtWidgets.QApplication.processEvents()
        qtbot.wait(5)


def test_a_flow_row_wraps_when_narrow_and_asks_for_the_height_of_its_lines(qtbot):
    top = QtWidgets.QWidget()
    qtbot.addWidget(top)
    lay = QtWidgets.QVBoxLayout(top)
    row = FlowRow()
    buttons = [QtWidgets.QPushButton(f"Button number {i}") for i in range(6)]
    row.add(*buttons)
    lay.addWidget(row)
    lay.addStretch(1)
    top.resize(1400, 300)
    top.show()
    _settle(qtbot)
    assert len({b.y() for b in buttons}) == 1  # one line
    one_line = row.height()
    top.resize(300, 600)
    _settle(qtbot)
    assert len({b.y() for b in buttons}) > 2  # wrapped onto several lines
    assert row.minimumSizeHint().height() > 2 * one_line
    assert row.height() >= row.minimumSizeHint().height()
    assert all(b.width() >= b.sizeHint().width() for b in buttons)  # nothing squeezed
    assert row.minimumSizeHint().width() < 300


def test_an_elided_label_shows_what_fits_and_tells_the_rest_in_its_tooltip(qtbot):
    row = FlowRow()
    qtbot.addWidget(row)
    label = ElidedLabel(mode=QtCore.Qt.TextElideMode.ElideMiddle)
    row.add(QtWidgets.QPushButton("Refresh"), label)
    row.resize(1200, 40)
    row.show()
    text = "12 runs in /home/someone/a/very/long/folder/name/that/goes/on/and/on/runs"
    label.setText(text)
    _settle(qtbot)
    assert label.shown_text() == text and label.width() > 0
    row.resize(220, 40)
    _settle(qtbot)
    assert "…" in label.shown_text() and label.shown_text() != text
    assert label.text() == text and label.toolTip() == text
    assert label.fontMetrics().horizontalAdvance(label.shown_text()) <= label.width()


def test_columns_and_reflow_splitters_stack_when_the_page_is_narrow(qtbot):
    cols = Columns()
    qtbot.addWidget(cols)
    a, b = QtWidgets.QWidget(), QtWidgets.QWidget()
    a.setMinimumWidth(300)
    b.setMinimumWidth(300)
    cols.add(a)
    cols.add(b)
    cols.resize(800, 300)
    cols.show()
    _settle(qtbot)
    assert cols.side_by_side() and a.y() == b.y()
    cols.resize(450, 300)
    _settle(qtbot)
    assert not cols.side_by_side() and b.y() > a.y() and a.width() >= 300
    assert cols.minimumSizeHint().width() == 300

    page = QtWidgets.QWidget()  # (a splitter that is a window of its own fixes its minimum size)
    qtbot.addWidget(page)
    split = ReflowSplitter()
    QtWidgets.QVBoxLayout(page).addWidget(split)
    area = QtWidgets.QScrollArea()
    area.setWidgetResizable(True)
    area.setMinimumWidth(300)  # as the settings columns of Fine-tune and Evaluate
    inner = QtWidgets.QWidget()
    inner.setMinimumSize(300, 500)
    area.setWidget(inner)
    other = QtWidgets.QWidget()
    other.setMinimumWidth(300)
    split.addWidget(area)
    split.addWidget(other)
    page.resize(800, 400)
    page.show()
    _settle(qtbot)
    assert split.orientation() == QtCore.Qt.Orientation.Horizontal
    page.resize(450, 400)
    _settle(qtbot)
    assert split.orientation() == QtCore.Qt.Orientation.Vertical
    assert area.minimumHeight() >= 500  # stacked, the settings column unfolds: the page scrolls once
    page.resize(800, 400)
    _settle(qtbot)
    assert split.orientation() == QtCore.Qt.Orientation.Horizontal and area.minimumHeight() < 500
