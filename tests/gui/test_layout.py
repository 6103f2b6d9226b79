"""Every page of the window at 1024x768 (a projector) and 1440x900, in normal and presentation
mode: nothing squeezed below the size it needs, every button's text fits, the attention heatmap
keeps a useful share of the page, plots stay readable; and the window itself fits its screen.

One window per window size (module fixture); each test walks the 12 pages and reports every
problem it finds at once.
"""

from __future__ import annotations

import types

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from workbench.gui.window import geometry, main_window as mw
from workbench.gui.window.main_window import MainWindow
from workbench.gui.panels.attention_panel import HEATMAP_SHARE
from workbench.gui.widgets.attention.grid import AttentionGrid
from workbench.gui.widgets.attention.heatmap import AttentionHeatmap
from workbench.gui.widgets.plot.loss_plot import MIN_PLOT_HEIGHT, MIN_VIEW_HEIGHT

SIZES = [(1024, 768), (1440, 900)]
PROBE = "cfhkam>cfhkam bjdpge<egpdjb ([{(|)}])"


def _causal_attention(layers: int, heads: int, t: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    a = rng.random((layers, heads, t, t)).astype(np.float32) * np.tril(np.ones((t, t), np.float32))
    return a / a.sum(-1, keepdims=True)


@pytest.fixture(scope="module")
def windows(qapp, tmp_path_factory):
    """One window per size, with an attention snapshot to show (made once: building the 12
    panels is the slow part)."""
    root = tmp_path_factory.mktemp("layout")
    made = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_DATA_DIR", str(root / "data"))
        mp.setenv("WORKBENCH_CACHE_DIR", str(root / "cache"))
        for size in SIZES:
            settings = QtCore.QSettings(str(root / f"{size[0]}.ini"), QtCore.QSettings.Format.IniFormat)
            w = MainWindow(settings=settings)
            w.confirm_close = False
            w.show()
            # one torch warm-up at a time (two at once in threads crashed a starved machine)
            deadline = QtCore.QDeadlineTimer(60000)
            while not w.engine_ready() and not deadline.hasExpired():
                QtWidgets.QApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
            w.setMinimumSize(200, 200)
            w.resize(*size)
            tokens = list(PROBE)
            w.attention.add_snapshot(types.SimpleNamespace(step=100, attention=_causal_attention(2, 4, len(tokens)),
                                                           tokens=tokens))
            # the figures of a run going on are wider than the dashes before it
            for key, text in {"step": "1,234 / 2,000", "eta": "12:34", "speed": "17,850 tokens/s",
                              "loss": "2.241", "val": "2.237 (step 400)", "elapsed": "1:02:03",
                              "device": "cpu · float32 · 2 threads", "params": "106,304",
                              "run": "/home/someone/.local/share/gpt-workbench/runs/demo-toy-20261206-163906"}.items():
                w.training.progress_labels[key].setText(text)
            made[size] = w
        yield made
        for w in made.values():
            w.set_presentation(False)
            w.shutdown(10000)
            w.close()
            w.deleteLater()
        QtWidgets.QApplication.processEvents()


def _settle(qtbot) -> None:
    for _ in range(4):  # flow rows and reflowing splitters settle in a couple of passes
        QtWidgets.QApplication.processEvents()
        qtbot.wait(5)


def _smart_min(w: QtWidgets.QWidget) -> QtCore.QSize:
    """The size a layout will not go below (Qt's qSmartMinSize, without the size-hint part)."""
    hint, explicit, pol = w.minimumSizeHint(), w.minimumSize(), w.sizePolicy()
    ignored = QtWidgets.QSizePolicy.Policy.Ignored
    width = explicit.width() if explicit.width() > 0 else (0 if pol.horizontalPolicy() == ignored else hint.width())
    height = explicit.height() if explicit.height() > 0 else (0 if pol.verticalPolicy() == ignored else hint.height())
    most = w.maximumSize()  # a deliberately thin progress bar is not squeezed
    return QtCore.QSize(max(0, min(width, most.width())), max(0, min(height, most.height())))


def _laid_out(w: QtWidgets.QWidget) -> bool:
    """Placed by a layout or a splitter (not a floating readout or a scroll area's innards)."""
    parent = w.parentWidget()
    if parent is None or isinstance(w, (QtWidgets.QScrollBar, QtWidgets.QSplitterHandle)):
        return False
    if isinstance(parent, QtWidgets.QSplitter):
        return True
    if isinstance(parent, QtWidgets.QAbstractSpinBox) or isinstance(parent, QtWidgets.QComboBox):
        return False
    return parent.layout() is not None and not w.isWindow()


def _button_text_room(b: QtWidgets.QAbstractButton) -> tuple[float, float] | None:
    """(text width, room for it) of a push button, check box or radio button."""
    text = b.text().replace("&&", "\0").replace("&", "").replace("\0", "&")
    if not text:
        return None
    style = b.style()
    if isinstance(b, QtWidgets.QPushButton):
        opt = QtWidgets.QStyleOptionButton()
        b.initStyleOption(opt)
        room = style.subElementRect(QtWidgets.QStyle.SubElement.SE_PushButtonContents, opt, b).width()
        if not b.icon().isNull():
            room -= b.iconSize().width() + 4
    elif isinstance(b, (QtWidgets.QCheckBox, QtWidgets.QRadioButton)):
        opt = QtWidgets.QStyleOptionButton()
        b.initStyleOption(opt)
        element = (QtWidgets.QStyle.SubElement.SE_CheckBoxContents if isinstance(b, QtWidgets.QCheckBox)
                   else QtWidgets.QStyle.SubElement.SE_RadioButtonContents)
        room = style.subElementRect(element, opt, b).width()
    else:
        return None
    return QtGui.QFontMetricsF(b.font()).horizontalAdvance(text), room


def page_problems(w: MainWindow, key: str) -> list[str]:
    panel = w.panels[key]
    page = w.stack.currentWidget()
    problems = []
    widgets = [panel] + [c for c in panel.findChildren(QtWidgets.QWidget) if c.isVisible()]
    for c in widgets:
        name = f"{key}: {type(c).__name__} {c.objectName() or ''} {getattr(c, 'text', lambda: '')() if callable(getattr(c, 'text', None)) else ''}".strip()
        if c is panel or _laid_out(c):
            need = _smart_min(c)
            if c.width() + 1 < need.width() or c.height() + 1 < need.height():
                problems.append(f"{name} is {c.width()}x{c.height()}, needs {need.width()}x{need.height()}")
        if isinstance(c, QtWidgets.QAbstractButton):
            fit = _button_text_room(c)
            if fit is not None and fit[0] > fit[1] + 1:
                problems.append(f"{name}: text needs {fit[0]:.0f} px, has {fit[1]} px")
        if isinstance(c, QtWidgets.QScrollArea) and c.widget() is not None and \
                c.horizontalScrollBarPolicy() == QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff and \
                c.widget().width() > c.viewport().width() + 1:
            problems.append(f"{name}: its content is {c.widget().width()} px wide, cut to {c.viewport().width()} px")
        if isinstance(c, QtWidgets.QGroupBox) and c.title():
            opt = QtWidgets.QStyleOptionGroupBox()
            c.initStyleOption(opt)
            title = c.style().subControlRect(QtWidgets.QStyle.ComplexControl.CC_GroupBox, opt,
                                             QtWidgets.QStyle.SubControl.SC_GroupBoxLabel, c)
            tops = [k.y() for k in c.findChildren(QtWidgets.QWidget, options=QtCore.Qt.FindChildOption.FindDirectChildrenOnly)
                    if k.isVisible()]
            if tops and title.bottom() >= min(tops):
                problems.append(f"{name}: its title (bottom {title.bottom()}) overlaps its contents (top {min(tops)})")
        if isinstance(c, pg.GraphicsView) and not hasattr(c, "_page_wheel"):
            problems.append(f"{name}: a plot that the wheel zooms instead of scrolling the page "
                            "(plot_input.wheel_scrolls_page)")
        if isinstance(c, pg.GraphicsView) and not isinstance(c.parentWidget(), (AttentionHeatmap, AttentionGrid)):
            if c.height() < MIN_PLOT_HEIGHT:
                problems.append(f"{name}: a plot {c.height()} px high (< {MIN_PLOT_HEIGHT})")
            # the data area, not the widget: a title and axes ate 80 of a small plot's 120 px
            if isinstance(c, pg.PlotWidget) and c.getPlotItem().getViewBox().height() < MIN_VIEW_HEIGHT:
                problems.append(f"{name}: a plot whose data area is "
                                f"{c.getPlotItem().getViewBox().height():.0f} px high (< {MIN_VIEW_HEIGHT})")
        if isinstance(c, QtWidgets.QTableView) and c.isVisible() and c.model() and c.model().columnCount():
            h = c.horizontalHeader()
            if h.sectionResizeMode(0) == QtWidgets.QHeaderView.ResizeMode.Stretch:
                need = c.fontMetrics().horizontalAdvance("x" * 10)
                if h.sectionSize(0) < need:
                    problems.append(f"{name}: its first column, which names the row, is {h.sectionSize(0)} px "
                                    f"wide (< 10 characters, {need} px)")
    if page.horizontalScrollBar().maximum() > 0:
        problems.append(f"{key}: the page is {panel.width()} px wide, wider than the window's "
                        f"{page.viewport().width()} px (it should reflow, not scroll sideways)")
    if key == "attention":
        heat = w.attention.heatmap
        side = min(page.viewport().width(), page.viewport().height())
        if not heat.isVisible() or min(heat.width(), heat.height()) < HEATMAP_SHARE * side:
            problems.append(f"attention heatmap {heat.width()}x{heat.height()} < {HEATMAP_SHARE} of the page's "
                            f"smaller side {side}")
        if heat.colorbar is None or not heat.colorbar.isVisible() or heat.colorbar.boundingRect().width() < 10:
            problems.append("attention heatmap without its colour bar")
    return problems


@pytest.mark.parametrize("presentation", [False, True], ids=["normal", "presentation"])
@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_every_page_fits(windows, qtbot, size, presentation):
    w = windows[size]
    w.set_presentation(presentation)
    w.resize(*size)
    problems = []
    for key in w.panels:
        w.show_panel(key)
        _settle(qtbot)
        problems += page_problems(w, key)
    # the sidebar reaches its last page
    last = w.sidebar.item(w.sidebar.count() - 1)
    w.sidebar.scrollToItem(last)
    _settle(qtbot)
    if not w.sidebar.viewport().rect().contains(w.sidebar.visualItemRect(last)):
        problems.append("the sidebar's last item cannot be scrolled into view")
    w.sidebar.scrollToTop()
    assert w.statusBar().isVisible() and w.statusBar().geometry().bottom() < w.height()
    assert not problems, "\n".join(problems)


def test_presentation_mode_scales_fonts_and_pages_scroll_instead_of_squeezing(windows, qtbot):
    w = windows[(1024, 768)]
    w.set_presentation(False)
    w.show_panel("curves")
    _settle(qtbot)
    normal_font = w.curves.title_label.fontInfo().pixelSize()
    w.set_presentation(True)
    _settle(qtbot)
    try:
        assert w.curves.title_label.fontInfo().pixelSize() > normal_font * 1.3
        page = w.stack.currentWidget()
        # the curves need more height than a 1024x768 window has: the page scrolls to them
        assert page.verticalScrollBar().maximum() > 0
        plots = [p.plot_widget for p in w.curves.plots.values()]
        assert min(p.height() for p in plots) >= MIN_PLOT_HEIGHT * mw.PRESENTATION_SCALE - 1
    finally:
        w.set_presentation(False)


def test_heatmap_labels_every_probe_token(windows, qtbot):
    w = windows[(1440, 900)]
    w.set_presentation(False)
    w.show_panel("attention")
    _settle(qtbot)
    w.attention.heatmap.plot_widget.grab()  # paint once: labels are chosen while painting
    left = w.attention.heatmap.left_axis
    assert left.stride == 1 and left.drawn == list(range(len(PROBE)))
    # read top to bottom, the labels spell the probe text (spaces shown as ·)
    assert "".join(left.labels[i] for i in left.drawn) == PROBE.replace(" ", "·")


@pytest.mark.parametrize("screen", [(1024, 768), (1366, 768), (1440, 900)])
def test_first_window_fits_the_screen(qapp, qtbot, tmp_path, monkeypatch, screen):
    area = QtCore.QRect(0, 0, *screen)
    monkeypatch.setattr(MainWindow, "_screen_area", lambda self: area)
    settings = QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    w = MainWindow(settings=settings)
    qtbot.addWidget(w)
    w.show()
    _settle(qtbot)
    try:
        frame = w.frameGeometry()
        assert w.width() + geometry.FRAME_ALLOWANCE.width() <= screen[0]
        assert w.height() + geometry.FRAME_ALLOWANCE.height() <= screen[1]
        assert area.contains(frame)
        assert w.statusBar().isVisible() and w.statusBar().geometry().bottom() < w.height()
    finally:
        w.confirm_close = False
        w.shutdown(10000)
        w.close()


def test_saved_geometry_from_a_bigger_screen_is_clamped(qapp, qtbot, tmp_path, monkeypatch):
    settings = QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    big = QtCore.QRect(0, 0, 2560, 1440)
    monkeypatch.setattr(MainWindow, "_screen_area", lambda self: big)
    w = MainWindow(settings=settings)
    qtbot.addWidget(w)
    w.setGeometry(300, 200, 2200, 1300)
    w.save_settings()
    w.confirm_close = False
    w.shutdown(10000)
    w.close()

    small = QtCore.QRect(0, 0, 1024, 768)
    monkeypatch.setattr(MainWindow, "_screen_area", lambda self: small)
    w2 = MainWindow(settings=settings)
    qtbot.addWidget(w2)
    try:
        assert w2.width() <= 1024 - geometry.FRAME_ALLOWANCE.width()
        assert w2.height() <= 768 - geometry.FRAME_ALLOWANCE.height()
        assert small.contains(w2.frameGeometry())
    finally:
        w2.confirm_close = False
        w2.shutdown(10000)
        w2.close()

    # and on the big screen the saved size comes back
    monkeypatch.setattr(MainWindow, "_screen_area", lambda self: big)
    w.save_settings()  # (w still holds the big geometry)
    w3 = MainWindow(settings=settings)
    qtbot.addWidget(w3)
    try:
        assert (w3.width(), w3.height()) == (2200, 1300)
    finally:
        w3.confirm_close = False
        w3.shutdown(10000)
        w3.close()


def test_heatmap_says_when_tokens_are_too_many_to_label(qapp, qtbot):
    heat = AttentionHeatmap()
    qtbot.addWidget(heat)
    heat.resize(420, 420)
    heat.show()
    tokens = [f"t{i}" for i in range(300)]
    heat.set_attention(_causal_attention(1, 1, 300)[0, 0], tokens)
    _settle(qtbot)
    heat.plot_widget.grab()
    assert heat.left_axis.stride > 1
    assert "tokens labelled" in heat.info.text() and "zoom" in heat.info.text()
    # zoomed in on the first 20 tokens, every one of them is labelled again
    heat.view_box.setRange(xRange=(0, 20), yRange=(0, 20), padding=0)
    _settle(qtbot)
    heat.plot_widget.grab()
    assert heat.left_axis.stride == 1
    assert heat.left_axis.drawn[:20] == list(range(20))
    assert "labelled" not in heat.info.text()


def test_head_labels_of_a_narrow_grid_do_not_run_together(qapp, qtbot):
    grid = AttentionGrid()
    qtbot.addWidget(grid)
    grid.set_snapshot(_causal_attention(2, 12, 16), [f"t{i}" for i in range(16)])
    grid.resize(1400, 300)
    grid.show()
    _settle(qtbot)
    top = grid.plot_item.getAxis("top")
    labels = [text for _pos, text in top._tickLevels[0]]
    assert labels[3] == "head 3"
    grid.resize(330, 300)
    _settle(qtbot)
    labels = [text for _pos, text in top._tickLevels[0]]
    assert labels[3] == "3"
    fm = QtGui.QFontMetricsF(top.style["tickFont"] or QtGui.QFont())
    pitch_px = grid.view_box.width() / 12
    assert fm.horizontalAdvance("11") < pitch_px  # the short labels fit their columns


def _grid_label_overlaps(grid: AttentionGrid) -> list[str]:
    """Pairs of neighbouring head (top) or layer (left) labels of the all-heads grid whose text
    would overlap on screen, where they are drawn now."""
    problems = []
    vb = grid.view_box
    for name, horizontal in (("top", True), ("left", False)):
        ax = grid.plot_item.getAxis(name)
        fm = QtGui.QFontMetricsF(ax.style["tickFont"] or QtGui.QFont())
        spans = []
        for pos, text in ax._tickLevels[0]:
            p = vb.mapViewToScene(QtCore.QPointF(pos, 0) if horizontal else QtCore.QPointF(0, pos))
            centre, size = (p.x(), fm.horizontalAdvance(text)) if horizontal else (p.y(), fm.height())
            spans.append((centre - size / 2, centre + size / 2, text))
        spans.sort()
        for (_a0, a1, ta), (b0, _b1, tb) in zip(spans, spans[1:]):
            if a1 + 1 > b0:
                problems.append(f"{name} labels '{ta}' and '{tb}' overlap by {a1 + 1 - b0:.0f} px")
    return problems


def test_all_heads_grid_labels_never_overlap_in_presentation_mode(windows, qtbot):
    """At 1024x768 in presentation mode the grid's cells were ~25 px: "headhead0 1 2 3" and
    "layer 0" over "layer 1". The grid keeps cells its labels fit; the page scrolls instead."""
    w = windows[(1024, 768)]
    w.set_presentation(True)
    try:
        w.resize(1024, 768)
        w.show_panel("attention")
        _settle(qtbot)
        qtbot.wait(20)
        _settle(qtbot)
        grid = w.attention.grid
        grid.plot_widget.grab()
        assert grid.isVisible() and grid.plot_item.getAxis("top")._tickLevels
        assert not _grid_label_overlaps(grid)
        assert not page_problems(w, "attention")
    finally:
        w.set_presentation(False)
