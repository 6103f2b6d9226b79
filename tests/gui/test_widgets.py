"""The reusable views show what they were sent: curves, attention maps, token strips."""

import csv
import math

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from workbench.gui.widgets import (
    AttentionGrid,
    AttentionHeatmap,
    LossPlot,
    MetricPlot,
    PlotStack,
    TokenStrip,
)
from workbench.curves import Envelope, ema_smooth
from workbench.gui import theme
from workbench.gui.widgets.attention.grid import _pool_max

# ---------------------------------------------------------------------------------------------
# helpers


def tb_ema(values, weight):
    """TensorBoard's smoothing, written out as a plain loop."""
    last, count, out = 0.0, 0, []
    for v in values:
        if not math.isfinite(v):
            out.append(v)
            continue
        last = last * weight + (1 - weight) * v
        count += 1
        out.append(last / (1 - weight**count))
    return np.array(out)


def causal(t, rng):
    logits = rng.standard_normal((t, t))
    logits[np.triu_indices(t, 1)] = -np.inf
    e = np.exp(logits - logits.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).astype(np.float32)


@pytest.fixture
def plot(qtbot):
    p = LossPlot(title="loss", smoothing=0.0)
    qtbot.addWidget(p)
    p.resize(640, 400)
    p.show()
    qtbot.waitExposed(p)
    return p


# ---------------------------------------------------------------------------------------------
# smoothing and storage


@pytest.mark.parametrize("weight", [0.005, 0.3, 0.6, 0.9, 0.99, 0.999])
def test_ema_matches_tensorboard_formula(weight):
    rng = np.random.default_rng(0)
    y = 3 + rng.standard_normal(3000)
    y[[5, 700]] = np.nan
    y[900] = np.inf
    want = tb_ema(y, weight)
    got, _ = ema_smooth(y, weight)
    np.testing.assert_allclose(got, want, rtol=1e-9, equal_nan=True)
    # piece by piece, carrying the state, gives the same values
    state, parts = (0.0, 0), []
    for chunk in np.array_split(y, 7):
        part, state = ema_smooth(chunk, weight, state)
        parts.append(part)
    np.testing.assert_allclose(np.concatenate(parts), want, rtol=1e-9, equal_nan=True)


def test_envelope_keeps_every_extreme_and_updates_incrementally():
    rng = np.random.default_rng(1)
    n = 50_001
    y = rng.standard_normal(n)
    y[10:14] = np.nan
    whole = Envelope()
    whole.update(y, 0)
    pieces = Envelope()
    done = 0
    for end in (7, 1000, 1001, 30_000, n):
        pieces.update(y[:end], done)
        done = end
    for (a, b), (c, d) in zip(whole.levels, pieces.levels):
        assert np.array_equal(a.view(), c.view()) and np.array_equal(b.view(), d.view())
    for k, (imin, imax) in enumerate(whole.levels, start=1):
        size = 4**k
        m = -(-n // size)
        blocks = np.full(m * size, np.nan)
        blocks[:n] = y
        blocks = blocks.reshape(m, size)
        np.testing.assert_array_equal(y[imin.view()], np.nanmin(blocks, axis=1))
        np.testing.assert_array_equal(y[imax.view()], np.nanmax(blocks, axis=1))
    for i0, i1 in [(0, n), (n // 3, n // 2), (n - 10, n)]:
        idx = whole.indices(y, i0, i1, 800)
        assert np.all(np.diff(idx) > 0)
        assert idx.size < 4 * 800 + 200
        assert np.nanmax(y[idx]) == np.nanmax(y) and np.nanmin(y[idx]) == np.nanmin(y)


# ---------------------------------------------------------------------------------------------
# LossPlot


def test_curve_shows_the_points_added(plot):
    plot.add_points("train/lm", [1, 2, 3], [4.0, 3.5, 3.2])
    plot.add_point("train/lm", 4, 3.0)
    plot.add_points("train/lm", np.arange(5, 11), np.linspace(2.9, 2.0, 6))
    plot.refresh()
    x, y = plot.curve_data("train/lm")
    np.testing.assert_array_equal(x, np.arange(1, 11))
    np.testing.assert_array_equal(y, [4.0, 3.5, 3.2, 3.0, *np.linspace(2.9, 2.0, 6)])
    assert plot.point_count("train/lm") == 10
    assert plot.series_names() == ["train/lm"]


def test_axes_name_what_they_show_without_a_prefix_of_their_own(plot, qtbot):
    """An accuracy between 0.6 and 0.8 reads 0.6 .. 0.8, not 600 .. 800 "(x0.001)"; the x axis can be
    named after what the points count."""
    plot.set_y_label("accuracy")
    plot.set_x_label("seconds")
    plot.add_points("acc", [1, 2, 3], [0.6, 0.7, 0.8])
    plot.refresh()
    qtbot.wait(10)
    left, bottom = plot.plot_item.getAxis("left"), plot.plot_item.getAxis("bottom")
    assert left.autoSIPrefixScale == 1.0 and "x0.001" not in left.labelString() and "accuracy" in left.labelString()
    assert "seconds" in bottom.labelString()
    plot.set_x_label("")
    assert "step" in bottom.labelString()


def test_smoothed_curve_follows_the_ema_and_raw_stays_behind(plot):
    rng = np.random.default_rng(2)
    y = 3 + 0.3 * rng.standard_normal(300)
    plot.set_smoothing(0.8)
    plot.add_points("train/lm", np.arange(100), y[:100])
    plot.refresh()
    plot.add_points("train/lm", np.arange(100, 300), y[100:])  # appended after a redraw
    plot.refresh()
    want = tb_ema(y, 0.8)
    _, main = plot.curve_data("train/lm")
    _, raw = plot.curve_data("train/lm", "raw")
    np.testing.assert_allclose(main, want, rtol=1e-9)
    np.testing.assert_array_equal(raw, y)
    np.testing.assert_allclose(plot.smoothed("train/lm"), want, rtol=1e-9)
    # a new weight redoes the whole curve
    plot.set_smoothing(0.5)
    plot.refresh()
    np.testing.assert_allclose(plot.curve_data("train/lm")[1], tb_ema(y, 0.5), rtol=1e-9)
    assert plot.smoothing() == 0.5


def test_validation_series_have_symbols_and_share_the_colour(plot):
    plot.set_smoothing(0.9)
    plot.add_points("train/lm", np.arange(50), np.linspace(4, 2, 50))
    plot.add_points("val/lm", [10, 20, 30], [3.5, 3.0, 2.7])
    plot.refresh()
    train = plot._series["train/lm"]
    val = plot._series["val/lm"]
    assert val.main_curve.opts["symbol"] == "o"
    assert train.main_curve.opts["symbol"] is None
    assert val.style.color == train.style.color
    np.testing.assert_array_equal(plot.curve_data("val/lm")[1], [3.5, 3.0, 2.7])  # raw


def test_log_mode(plot):
    plot.add_points("train/lm", [1, 2, 3], [4.0, 2.0, 1.0])
    plot.set_log_y(True)
    plot.refresh()
    assert plot.log_y()
    assert plot.plot_item.getAxis("left").logMode
    np.testing.assert_allclose(plot.curve_data("train/lm")[1], np.log10([4.0, 2.0, 1.0]))
    plot.set_log_y(False)
    assert not plot.plot_item.getAxis("left").logMode


def test_x_axis_choice_changes_the_plotted_x(plot):
    steps = np.arange(1, 6)
    plot.add_points("train/lm", steps, [5, 4, 3, 2, 1], tokens=steps * 1024,
                    time=steps * 0.5)
    plot.refresh()
    np.testing.assert_array_equal(plot.curve_data("train/lm")[0], steps)
    with QtCore.QSignalBlocker(plot):
        plot.set_x_axis("tokens")
    np.testing.assert_array_equal(plot.curve_data("train/lm")[0], steps * 1024)
    plot.set_x_axis("time")
    np.testing.assert_array_equal(plot.curve_data("train/lm")[0], steps * 0.5)
    assert plot.x_axis() == "time"
    assert plot.plot_item.getAxis("bottom").labelText == "time"
    with pytest.raises(ValueError):
        plot.set_x_axis("epochs")


def test_controls_drive_the_plot(plot, qtbot):
    p = LossPlot(show_controls=True, smoothing=0.6)
    qtbot.addWidget(p)
    p.controls.slider.setValue(950)
    assert p.smoothing() == pytest.approx(0.95)
    p.controls.log_check.setChecked(True)
    assert p.log_y()
    p.controls.axis_combo.setCurrentIndex(1)
    assert p.x_axis() == "tokens"
    p.set_smoothing(0.3)  # and the plot updates the controls
    assert p.controls.slider.value() == 300


def test_many_points_are_drawn_reduced_but_exact_at_the_extremes(plot):
    n = 200_000
    rng = np.random.default_rng(3)
    y = 2 + rng.standard_normal(n)
    plot.set_smoothing(0.9)
    plot.add_points("train/lm", np.arange(n), y)
    plot.refresh()
    assert plot.displayed_point_count() < 20_000
    s = plot._series["train/lm"]
    band = s.raw_band.dataBounds(1)
    assert band == (pytest.approx(y.min()), pytest.approx(y.max()))
    sm = plot.smoothed("train/lm")
    assert s.main_band.dataBounds(1) == (pytest.approx(sm.min()), pytest.approx(sm.max()))


def test_csv_export_holds_the_raw_rows(plot, tmp_path):
    plot.set_smoothing(0.9)
    plot.add_points("train/lm", [1, 2, 3], [4.0, 3.25, 3.1], tokens=[512, 1024, 1536],
                    time=[0.5, 1.0, 1.5])
    plot.add_points("val/lm", [3], [3.3])
    plot.refresh()
    path = tmp_path / "curves.csv"
    plot.export_csv(path)
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["series", "step", "tokens", "time", "value"]
    assert rows[1:] == [
        ["train/lm", "1", "512", "0.5", "4.0"],
        ["train/lm", "2", "1024", "1.0", "3.25"],
        ["train/lm", "3", "1536", "1.5", "3.1"],
        ["val/lm", "3", "", "", "3.3"],
    ]


def test_png_and_svg_exports_write_files(plot, tmp_path):
    plot.add_points("train/lm", np.arange(100), np.linspace(4, 2, 100))
    plot.refresh()
    png, svg = tmp_path / "c.png", tmp_path / "c.svg"
    plot.export_png(png)
    plot.export_svg(svg)
    image = QtGui.QImage(str(png))
    assert not image.isNull() and image.width() > 100
    assert svg.stat().st_size > 500 and b"<svg" in svg.read_bytes()[:2000]


def test_overlays_are_dashed_faded_and_removable(plot):
    plot.add_points("train/lm", np.arange(10), np.linspace(4, 2, 10))
    other = LossPlot()
    other.add_points("train/lm", np.arange(20), np.linspace(5, 2.5, 20))
    items_before = len(plot.plot_item.items)
    plot.add_overlay("run 1", other.series_data())
    plot.add_overlay("run 2", {"train/lm": (np.arange(5), np.ones(5))})
    plot.refresh()
    assert plot.overlay_names() == ["run 1", "run 2"]
    s = plot._overlays["run 1"]["train/lm"]
    assert s.main_curve in plot.plot_item.items
    assert s.main_curve.opts["pen"].style() == QtCore.Qt.PenStyle.DashLine
    assert s.main_curve.opts["pen"].color().alphaF() < 1
    np.testing.assert_array_equal(s.x["step"].view(), np.arange(20))
    plot.remove_overlay("run 1")
    assert s.main_curve is None and plot.overlay_names() == ["run 2"]
    plot.clear_overlays()
    assert len(plot.plot_item.items) == items_before


def test_legend_lists_the_series(plot):
    plot.add_points("train/lm", [1], [2.0])
    plot.add_points("val/lm", [1], [2.5])
    names = [label.text for _, label in plot._legend.items]
    assert names == ["train/lm", "val/lm"]


def test_hover_readout_reports_values_at_x(plot):
    plot.add_points("train/lm", [10, 20, 30], [4.0, 3.0, 2.0])
    plot.refresh()
    text = plot.describe_x(19)
    assert "step 20" in text and "train/lm" in text and "<b>3</b>" in text


def test_plot_stack_links_x_and_shares_the_axis_choice(qtbot):
    stack = PlotStack()
    qtbot.addWidget(stack)
    loss = stack.add_plot("loss", LossPlot(show_controls=False))
    lr = stack.add_plot("lr", title="learning rate")
    assert isinstance(lr, MetricPlot)
    assert lr.view_box.linkedView(pg.ViewBox.XAxis) is loss.view_box
    stack.add_points("lr", "lr", [1, 2], [1e-4, 2e-4], tokens=[10, 20])
    stack.set_x_axis("tokens")
    stack.refresh()
    assert loss.x_axis() == lr.x_axis() == "tokens"
    np.testing.assert_array_equal(lr.curve_data("lr")[0], [10, 20])
    stack.controls.slider.setValue(500)
    assert loss.smoothing() == 0.5 and lr.smoothing() == 0.0


def test_presentation_scale_grows_fonts(plot):
    before = plot.plot_item.getAxis("left").style["tickFont"].pointSizeF()
    plot.set_presentation(2.0)
    assert plot.plot_item.getAxis("left").style["tickFont"].pointSizeF() == pytest.approx(
        2 * before)


def test_title_size_is_a_class_setting_that_any_subclass_may_change(qtbot):
    class WallPlot(LossPlot):  # neither LossPlot nor MetricPlot: its own title size
        TITLE_POINTS = 14.0

    sizes = {}
    for cls in (LossPlot, MetricPlot, WallPlot):
        p = cls(title="Loss", presentation=2.0)
        qtbot.addWidget(p)
        sizes[cls.__name__] = p.plot_item.titleLabel.opts["size"]
    assert sizes == {"LossPlot": "23.0pt", "MetricPlot": "21.0pt", "WallPlot": "28.0pt"}


# ---------------------------------------------------------------------------------------------
# AttentionHeatmap


@pytest.fixture
def heatmap(qtbot):
    view = AttentionHeatmap()
    qtbot.addWidget(view)
    view.resize(560, 520)
    view.show()
    qtbot.waitExposed(view)
    return view


TOKENS = ["The", " cat", " sat", " on", " the", " mat", ".", "\n"]


def test_heatmap_image_and_labels_equal_what_was_sent(heatmap):
    m = causal(len(TOKENS), np.random.default_rng(4))
    heatmap.set_attention(m, TOKENS)
    np.testing.assert_array_equal(heatmap.image_item.image, m)
    assert heatmap.tokens() == (TOKENS, TOKENS)
    visible = ["The", "·cat", "·sat", "·on", "·the", "·mat", ".", "↵"]
    assert heatmap.axis_labels() == (visible, visible)
    heatmap.grab()  # paints: every label fits, so all are drawn
    assert heatmap.left_axis.drawn == list(range(len(TOKENS)))
    assert heatmap.bottom_axis.drawn == list(range(len(TOKENS)))
    assert heatmap.levels() == (0.0, 1.0)
    assert heatmap._mask_item.isVisible()  # causal: future cells drawn as masked


def test_heatmap_thins_labels_when_they_do_not_fit(heatmap):
    t = 256
    heatmap.set_attention(causal(t, np.random.default_rng(5)), [f"w{i}" for i in range(t)])
    heatmap.grab()
    drawn = heatmap.left_axis.drawn
    assert 2 < len(drawn) < t
    assert heatmap.left_axis.stride > 1 and all(i % heatmap.left_axis.stride == 0 for i in drawn)


def test_heatmap_hover_reports_the_pair_and_its_weight(heatmap, qtbot):
    m = causal(len(TOKENS), np.random.default_rng(6))
    heatmap.set_attention(m, TOKENS)
    heatmap.grab()
    seen = []
    heatmap.hovered.connect(lambda i, j, w: seen.append((i, j, w)))
    i, j = 5, 2
    qtbot.mouseMove(heatmap.plot_widget.viewport(), heatmap.cell_center(i, j))
    qtbot.waitUntil(lambda: bool(seen), timeout=2000)
    assert seen[-1][:2] == (i, j) and seen[-1][2] == pytest.approx(float(m[i, j]))
    assert heatmap.info.text() == f"query '·mat' (5) → key '·sat' (2): {m[i, j]:.3f}"
    assert heatmap.describe_cell(1, 4).endswith("masked (a later token)")


def test_heatmap_auto_levels_and_errors(heatmap):
    m = np.full((3, 3), 0.2, dtype=np.float32)
    m[0, 0] = 0.5
    heatmap.set_attention(m, ["a", "b", "c"])
    assert not heatmap._mask_item.isVisible()
    heatmap.set_auto_levels(True)
    assert heatmap.levels()[1] == pytest.approx(np.percentile(m, 99))
    heatmap.set_auto_levels(False)
    assert heatmap.levels() == (0.0, 1.0)
    with pytest.raises(ValueError):
        heatmap.set_attention(np.zeros((3, 3)), ["a", "b"])


def test_heatmap_export_png(heatmap, tmp_path):
    heatmap.set_attention(causal(4, np.random.default_rng(7)), ["a", "b", "c", "d"])
    heatmap.export_png(tmp_path / "h.png")
    assert not QtGui.QImage(str(tmp_path / "h.png")).isNull()


# ---------------------------------------------------------------------------------------------
# AttentionGrid


@pytest.fixture
def snapshot():
    rng = np.random.default_rng(8)
    return np.stack([np.stack([causal(6, rng) for _ in range(4)]) for _ in range(3)])


def test_grid_click_emits_head_selected(qtbot, snapshot):
    grid = AttentionGrid()
    qtbot.addWidget(grid)
    grid.resize(600, 480)
    grid.show()
    qtbot.waitExposed(grid)
    grid.set_snapshot(snapshot, list("abcdef"))
    grid.grab()
    with qtbot.waitSignal(grid.headSelected, timeout=2000) as sig:
        qtbot.mouseClick(grid.plot_widget.viewport(), QtCore.Qt.MouseButton.LeftButton,
                         pos=grid.cell_center(2, 1))
    assert sig.args == [2, 1]
    assert grid.selected() == (2, 1) and grid._select_rect.isVisible()
    # one layer: its heads in a block, clicks still name the layer
    grid.set_snapshot(snapshot, list("abcdef"), layer=1)
    grid.grab()
    with qtbot.waitSignal(grid.headSelected, timeout=2000) as sig:
        qtbot.mouseClick(grid.plot_widget.viewport(), QtCore.Qt.MouseButton.LeftButton,
                         pos=grid.cell_center(1, 3))
    assert sig.args == [1, 3]


def test_grid_cells_show_the_heads(qtbot, snapshot):
    grid = AttentionGrid()
    qtbot.addWidget(grid)
    grid.set_snapshot(snapshot, list("abcdef"))
    assert grid._k == 1  # small T: one token per pixel
    r, c = grid._cells[(1, 2)]
    p = grid._pitch
    cell = grid._mosaic[r * p:r * p + 6, c * p:c * p + 6]
    lower = np.tril(np.ones((6, 6), dtype=bool))
    np.testing.assert_array_equal(cell[lower], snapshot[1, 2][lower])
    assert np.all(np.isneginf(cell[~lower]))  # masked
    assert grid.head_at(grid.view_box.mapViewToScene(QtCore.QPointF(c * p + 3.5,
                                                                     r * p + 4.5))) == (1, 2,
                                                                                       4, 3)
    with pytest.raises(ValueError):
        grid.set_snapshot(snapshot[0], list("abcdef"))


def test_grid_pools_large_heads_by_max():
    rng = np.random.default_rng(9)
    a = rng.random((2, 3, 10, 10)).astype(np.float32)
    pooled = _pool_max(a, 4)
    assert pooled.shape == (2, 3, 3, 3)
    padded = np.zeros((2, 3, 12, 12), dtype=np.float32)
    padded[..., :10, :10] = a
    want = padded.reshape(2, 3, 3, 4, 3, 4).max(axis=(3, 5))
    np.testing.assert_array_equal(pooled, want)


def test_grid_export_png(qtbot, snapshot, tmp_path):
    grid = AttentionGrid()
    qtbot.addWidget(grid)
    grid.set_snapshot(snapshot, list("abcdef"), layer=0)
    grid.export_png(tmp_path / "g.png")
    assert not QtGui.QImage(str(tmp_path / "g.png")).isNull()


# ---------------------------------------------------------------------------------------------
# TokenStrip


def test_token_strip_one_box_per_token_with_visible_whitespace(qtbot):
    strip = TokenStrip()
    qtbot.addWidget(strip)
    tokens = ["Hello", ",", " world", "\n", "\tdef", " ", "x"]
    strip.set_tokens(tokens, [10, 11, 12, 13, 14, 15, 16])
    strip.resize(600, 200)
    strip.show()
    qtbot.waitExposed(strip)
    assert strip.token_count() == 7
    assert len(strip.box_rects()) == 7
    assert strip.display_texts() == ["Hello", ",", "·world", "↵", "→def", "·", "x"]
    rects = strip.box_rects()
    # the box after a newline starts a new line
    assert rects[4].top() > rects[3].top() and rects[4].left() == rects[0].left()
    # neighbours differ in colour
    colors = strip.box_colors()
    assert all(colors[i] != colors[i + 1] for i in range(len(colors) - 1))
    tip = strip.tooltip_text(2)
    assert "id 12" in tip and "' world'" in tip
    assert not strip.grab().isNull()


def test_token_strip_wraps_to_the_width(qtbot):
    strip = TokenStrip()
    qtbot.addWidget(strip)
    strip.set_tokens([" token"] * 60, list(range(60)))
    strip.resize(300, strip.heightForWidth(300))
    rects = strip.box_rects()
    assert len({round(r.top()) for r in rects}) > 3  # several lines
    assert all(r.right() <= 300 for r in rects)
    assert strip.heightForWidth(150) > strip.heightForWidth(600)


def test_token_strip_hover_and_click(qtbot):
    strip = TokenStrip()
    qtbot.addWidget(strip)
    strip.set_tokens(["a", "b", "c"], [1, 2, 3])
    strip.resize(300, 60)
    strip.show()
    qtbot.waitExposed(strip)
    center = strip.box_rects()[1].center().toPoint()
    # The move event goes to the strip itself: a synthetic cursor move lands on whatever
    # top-level window an earlier test left under that screen position.
    move = QtGui.QMouseEvent(QtCore.QEvent.Type.MouseMove, QtCore.QPointF(center),
                             QtCore.QPointF(strip.mapToGlobal(center)), QtCore.Qt.MouseButton.NoButton,
                             QtCore.Qt.MouseButton.NoButton, QtCore.Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(strip.tokenHovered, timeout=2000) as hovered:
        QtWidgets.QApplication.sendEvent(strip, move)
    assert hovered.args == [1]
    with qtbot.waitSignal(strip.tokenClicked, timeout=2000) as clicked:
        qtbot.mouseClick(strip, QtCore.Qt.MouseButton.LeftButton, pos=center)
    assert clicked.args == [1]
    with pytest.raises(ValueError):
        strip.set_tokens(["a"], [1, 2])


def test_visible_whitespace_markers():
    assert theme.visible_whitespace(" a\tb\nc\r") == "·a→b↵c␍"
    assert theme.visible_whitespace("") == "∅"
    assert theme.visible_runs(" x") == [("·", True), ("x", False)]
    assert theme.short_label("a" * 20, 8) == "aaaaaaa…"


def test_zooming_in_redraws_the_visible_range_in_detail(plot):
    n = 100_000
    y = np.sin(np.arange(n) / 50.0)
    plot.add_points("train/lm", np.arange(n), y)
    plot.refresh()
    x_all, _ = plot.curve_data("train/lm")
    coarse = np.diff(x_all).max()
    plot.view_box.setXRange(50_000, 50_300, padding=0)  # 300 points: drawn one by one
    x, y_shown = plot.curve_data("train/lm")
    inside = (x >= 50_000) & (x <= 50_300)
    np.testing.assert_array_equal(x[inside], np.arange(50_000, 50_301))
    np.testing.assert_array_equal(y_shown[inside], y[50_000:50_301])
    assert coarse > 1 and x.size < 2_000  # the rest stays coarse
    plot.reset_view()
    plot.refresh()
    assert plot.curve_data("train/lm")[0].size == x_all.size


def test_token_strip_export_png(qtbot, tmp_path):
    strip = TokenStrip(show_ids=True)
    qtbot.addWidget(strip)
    strip.set_tokens(["a", " b"], [1, 2])
    strip.resize(200, 60)
    strip.export_png(tmp_path / "t.png")
    image = QtGui.QImage(str(tmp_path / "t.png"))
    assert image.width() == 400 and image.height() == 120


def test_every_view_takes_a_presentation_scale(qtbot, snapshot):
    heat, grid, strip = AttentionHeatmap(), AttentionGrid(), TokenStrip()
    for w in (heat, grid, strip):
        qtbot.addWidget(w)
    heat.set_attention(snapshot[0, 0], list("abcdef"))
    grid.set_snapshot(snapshot, list("abcdef"), layer=0)
    strip.set_tokens(["a", " b"], [1, 2])
    small = strip.heightForWidth(300)
    for w in (heat, grid, strip):
        w.set_presentation(1.75)
        assert w.presentation() == 1.75
    assert strip.heightForWidth(300) > small
    assert grid._titles[0].textItem.font().pointSizeF() == pytest.approx(9 * 1.75)


def _wheel(widget: QtWidgets.QWidget, dy: int, modifiers=QtCore.Qt.KeyboardModifier.NoModifier) -> None:
    pos = QtCore.QPointF(widget.width() / 2, widget.height() / 2)
    event = QtGui.QWheelEvent(pos, widget.mapToGlobal(pos), QtCore.QPoint(0, 0), QtCore.QPoint(0, dy),
                              QtCore.Qt.MouseButton.NoButton, modifiers, QtCore.Qt.ScrollPhase.NoScrollPhase, False)
    QtWidgets.QApplication.sendEvent(widget, event)


def _loss_plot_with_data() -> LossPlot:
    plot = LossPlot(title="Loss", show_controls=False)
    steps = np.arange(200.0)
    plot.add_points("train/lm", steps, 3.0 * np.exp(-steps / 60) + 0.5)
    plot.refresh(force=True)
    return plot


def _heatmap_with_data() -> AttentionHeatmap:
    heat = AttentionHeatmap()
    heat.set_attention(causal(12, np.random.default_rng(0)), [f"t{i}" for i in range(12)])
    return heat


@pytest.mark.parametrize("make", [_loss_plot_with_data, _heatmap_with_data], ids=["loss_plot", "heatmap"])
def test_wheel_over_a_plot_scrolls_the_page_and_ctrl_wheel_zooms(qtbot, make):
    """A person scrolling a page past a plot must not zoom it; Ctrl+wheel zooms; double-click
    fits the view again."""
    view = make()
    host = QtWidgets.QWidget()
    lay = QtWidgets.QVBoxLayout(host)
    view.setFixedHeight(300)
    lay.addWidget(view)
    lay.addSpacing(1500)
    page = QtWidgets.QScrollArea()
    page.setWidgetResizable(True)
    page.setWidget(host)
    qtbot.addWidget(page)
    page.resize(500, 500)
    page.show()
    qtbot.waitExposed(page)
    qtbot.wait(20)
    viewport = view.plot_widget.viewport()
    before = [list(r) for r in view.view_box.viewRange()]
    bar = page.verticalScrollBar()
    assert bar.value() == 0 and bar.maximum() > 0

    _wheel(viewport, -360)
    assert bar.value() > 0, "the wheel over the plot did not scroll the page"
    assert [list(r) for r in view.view_box.viewRange()] == before, "the wheel zoomed the plot"

    bar.setValue(0)
    qtbot.wait(10)
    _wheel(viewport, 360, QtCore.Qt.KeyboardModifier.ControlModifier)
    zoomed = [list(r) for r in view.view_box.viewRange()]
    assert bar.value() == 0
    assert zoomed[0][1] - zoomed[0][0] < before[0][1] - before[0][0], "Ctrl+wheel did not zoom in"

    centre = QtCore.QPoint(viewport.width() // 2, viewport.height() // 2)
    qtbot.mouseDClick(viewport, QtCore.Qt.MouseButton.LeftButton, pos=centre)
    qtbot.wait(10)
    after = [list(r) for r in view.view_box.viewRange()]
    assert np.allclose(after, before, rtol=0.02, atol=0.05), (after, before)
    # and the plot says so
    assert "Ctrl+wheel" in (view.plot_widget.toolTip() + getattr(view, "info", QtWidgets.QLabel()).text())


def test_zooming_the_heatmap_out_and_in_never_leaves_the_matrix(qtbot):
    """Zooming out ran into the range limits on one axis (the aspect is locked) while the other
    kept moving; zooming back in then showed only the labels beside the matrix, for every head
    and snapshot after it. The hint under a narrow heatmap is elided, whole in its tooltip."""
    heat = AttentionHeatmap(presentation=1.45)
    t = 37
    heat.set_attention(causal(t, np.random.default_rng(1)), [f"t{i}" for i in range(t)])
    qtbot.addWidget(heat)
    heat.resize(300, 320)
    heat.show()
    qtbot.waitExposed(heat)
    viewport = heat.plot_widget.viewport()
    ctrl = QtCore.Qt.KeyboardModifier.ControlModifier
    for dy in [-120] * 12 + [120] * 25:
        _wheel(viewport, dy, ctrl)
        (x0, x1), (y0, y1) = heat.view_box.viewRange()
        assert 0 <= (x0 + x1) / 2 <= t and 0 <= (y0 + y1) / 2 <= t, heat.view_box.viewRange()
        assert x1 - x0 <= 1.5 * t and y1 - y0 <= 1.5 * t  # zooming out stops near the whole matrix
    # a new snapshot of the same shape keeps the zoom, still on the matrix
    heat.set_attention(causal(t, np.random.default_rng(2)), [f"t{i}" for i in range(t)])
    (x0, x1), (y0, y1) = heat.view_box.viewRange()
    assert 0 <= (x0 + x1) / 2 <= t and 0 <= (y0 + y1) / 2 <= t

    hint = heat.info.text()
    assert "double-click" in hint and heat.info.toolTip() == hint
    fm = QtGui.QFontMetricsF(heat.info.font())
    assert fm.horizontalAdvance(heat.info.shown_text()) <= heat.info.contentsRect().width() + 1


@pytest.mark.parametrize("scale", [1.0, 1.45])
def test_the_legend_sits_above_the_data_not_over_it(qtbot, scale):
    """Curves, Runs and Task balance drew their legend in the plot's top right corner, over the
    curves. It now sits in a band above the data area, in as many columns as fit."""
    plot = LossPlot(title="Loss", show_controls=False, presentation=scale)
    assert not plot._legend.isVisible()  # no series: no (empty) legend box
    steps = np.arange(100.0)
    for i, name in enumerate(["train/total", "val/total", "train/lm", "val/lm", "train/arithmetic"]):
        plot.add_points(name, steps, 4.0 - steps / 30 + i * 0.1)  # the curves reach the top right corner
    plot.refresh(force=True)
    qtbot.addWidget(plot)
    plot.resize(620, 360)
    plot.show()
    qtbot.waitExposed(plot)
    qtbot.wait(20)
    legend = plot._legend
    assert len(legend.items) == 5 and legend.isVisible()
    data = plot.view_box.sceneBoundingRect()
    box = legend.sceneBoundingRect()
    assert box.height() > 0 and not box.intersects(data), (box, data)
    assert box.bottom() <= data.top() + 1
    assert legend.columnCount > 1  # a band, not a tall column eating the plot's height
    assert data.height() >= 0.5 * plot.plot_widget.height()


def test_a_thick_training_line_is_drawn_thick_on_screen(qtbot):
    """A training curve is 2 px wide: on screen it is a 1-px line stamped at sub-pixel offsets
    (a wide pen costs 50-120 ms a frame). Count the rows of a column that the flat line fills."""
    plot = LossPlot(title="Loss")
    qtbot.addWidget(plot)
    plot.resize(500, 300)
    plot.show()
    steps = np.arange(1, 41)
    plot.add_points("train/lm", steps, np.full(40, 2.0), steps * 100, steps * 0.1)
    plot.add_points("train/lm2", steps, np.linspace(1.0, 3.0, 40), steps * 100, steps * 0.1)  # room around 2.0
    plot.set_smoothing(0.0)
    plot.refresh(force=True)
    qtbot.wait(50)
    curve = plot._series["train/lm"].main_curve.curve
    assert curve._stamp_offsets and len(curve._stamp_offsets) > 1
    img = plot.grab().toImage()
    x = img.width() // 2
    dark = [y for y in range(img.height())
            if QtGui.QColor(img.pixel(x, y)).lightness() < 150]
    # the flat line and the slanted one cross the middle column; the flat one alone is >= 2 rows
    runs = np.split(np.array(dark), np.where(np.diff(dark) > 1)[0] + 1) if dark else []
    assert max(len(r) for r in runs) >= 2, dark


def test_a_single_step_reads_once_on_the_step_axis(plot, qtbot):
    # one validation per run (the Runs page comparing short runs) zooms the x axis to one step;
    # the axis used to write "200 200 200" for the ticks 199.8, 200 and 200.2
    plot.add_point("val", 200, 1.5)
    plot.refresh(force=True)
    qtbot.wait(50)
    axis = plot._x_axis_item
    lo, hi = plot.view_box.viewRange()[0]
    assert hi - lo < 5
    labels = [s for sp, vals in axis.tickValues(lo, hi, 600) for s in axis.tickStrings(vals, 1, sp)]
    assert labels == ["200"]
    # a long range still gets its usual compact ticks
    labels = [s for sp, vals in axis.tickValues(0, 12000, 600) for s in axis.tickStrings(vals, 1, sp)]
    assert "10k" in labels and len(labels) == len(set(labels))


@pytest.mark.parametrize("size", [(1100, 500), (500, 700)])
def test_the_matrix_sits_beside_its_row_labels_in_a_wide_or_tall_view(heatmap, qtbot, size):
    # square cells in a wide view used to leave the matrix centred, ~90 px from the row labels
    m = np.tril(np.ones((len(TOKENS), len(TOKENS))))
    heatmap.set_attention(m / m.sum(1, keepdims=True), TOKENS)
    heatmap.resize(*size)

    def beside():
        axis_right = heatmap.left_axis.sceneBoundingRect().right()
        image_left = heatmap.image_item.mapToScene(0, 0).x()
        return abs(image_left - axis_right) <= 3

    qtbot.waitUntil(beside, timeout=3000)
    # and the whole matrix is still in view
    (x0, x1), (y0, y1) = heatmap.view_box.viewRange()
    assert x0 <= 0.01 and x1 >= len(TOKENS) - 0.01 and y0 <= 0.01 and y1 >= len(TOKENS) - 0.01
