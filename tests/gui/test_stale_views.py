"""Views that tell the truth during a run: the attention timeline, the task balance headline, the
Fine-tune page (its summary, its plan's marker), the sidebar, smoothing, the Runs page, Generate."""

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets
from PySide6.QtTest import QTest

from workbench.engine import events as ev
from workbench.gui.panels.attention_panel import AttentionPanel


def shown(qtbot, widget, w=1300, h=850):
    qtbot.addWidget(widget)
    widget.resize(w, h)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def snapshot(step: int, T: int = 5) -> ev.AttentionSnapshot:
    rng = np.random.default_rng(step)
    a = np.tril(rng.random((2, 2, T, T))).astype(np.float32) + np.eye(T, dtype=np.float32)
    a /= a.sum(-1, keepdims=True)
    return ev.AttentionSnapshot(step=step, tokens=list("abcde")[:T], ids=list(range(T)), attention=a)


def click(widget: QtWidgets.QWidget, pos: QtCore.QPoint | None = None) -> None:
    QTest.mouseClick(widget, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier,
                     pos if pos is not None else widget.rect().center())


# ---------------------------------------------------------------------------------------------
# attention timeline


def _handle_center(slider: QtWidgets.QSlider) -> QtCore.QPoint:
    opt = QtWidgets.QStyleOptionSlider()
    slider.initStyleOption(opt)
    return slider.style().subControlRect(QtWidgets.QStyle.ComplexControl.CC_Slider, opt,
                                         QtWidgets.QStyle.SubControl.SC_SliderHandle, slider).center()


@pytest.mark.parametrize("how", ["keys", "drag"])
def test_scrubbing_the_timeline_stops_following_and_ticking_jumps_to_the_newest(qtbot, how):
    panel = shown(qtbot, AttentionPanel())
    for step in (0, 10, 20, 30):
        panel.add_snapshot(snapshot(step))
    assert panel.follow_check.isChecked() and panel.current().step == 30
    slider = panel.timeline
    if how == "keys":
        slider.setFocus()
        QTest.keyClick(slider, QtCore.Qt.Key.Key_Left)
        QTest.keyClick(slider, QtCore.Qt.Key.Key_Left)
        assert panel.current().step == 10
    else:
        start = _handle_center(slider)
        QTest.mousePress(slider, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier, start)
        for x in np.linspace(start.x(), 2, 12):
            QTest.mouseMove(slider, QtCore.QPoint(int(x), start.y()))
        QTest.mouseRelease(slider, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier,
                           QtCore.QPoint(2, start.y()))
        assert panel.current().step == 0
    assert not panel.follow_check.isChecked()
    held = panel.current().step
    # the next snapshot of the run does not pull the view away from what the person chose
    panel.add_snapshot(snapshot(40))
    assert panel.current().step == held and slider.maximum() == 4
    assert f"of {len(panel.entries)}" in panel.step_label.text()
    # ticking Follow live again jumps to the newest, and the next one is followed
    click(panel.follow_check, QtCore.QPoint(8, panel.follow_check.height() // 2))
    assert panel.follow_check.isChecked() and panel.current().step == 40
    panel.add_snapshot(snapshot(50))
    assert panel.current().step == 50 and slider.value() == 5


# ---------------------------------------------------------------------------------------------
# smoothing


def test_smoothing_at_maximum_keeps_up_with_the_data_and_says_its_value(qtbot):
    from workbench.gui.widgets.loss_plot import LossPlot

    plot = shown(qtbot, LossPlot(title="loss", show_controls=True, smoothing=0.6), 900, 500)
    slider = plot.controls.slider
    slider.setFocus()
    QTest.keyClick(slider, QtCore.Qt.Key.Key_End)  # the slider as far as it goes
    assert plot.smoothing() == pytest.approx(0.999)
    assert plot.controls.value_label.text() == "0.999"
    rng = np.random.default_rng(0)
    n = 2000
    t = np.arange(1, n + 1)
    y = 0.6 + 4 * np.exp(-t / 150) + rng.normal(0, 0.1, n)
    done = 0
    for upto in (100, 300, 600, 2000):  # as a run sends them, the curve is checked as it grows
        plot.add_points("train/lm", t[done:upto], y[done:upto])
        done = upto
        plot.refresh(force=True)
        sm = plot.smoothed("train/lm")
        assert sm.size == upto
        assert sm[0] == pytest.approx(y[0])  # debiased: the line starts at the data
        tail = y[upto - upto // 10:upto]
        assert tail.min() <= sm[-1] <= tail.max(), (upto, sm[-1], tail.min(), tail.max())
