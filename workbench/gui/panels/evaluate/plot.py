"""The Evaluate page's plots: accuracy against k (mean over draws, error bars, every draw, the
chance / majority class / fine-tuned lines) and one bar per demonstration for the query's attention."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from ... import theme
from ...widgets.plot_input import wheel_scrolls_page
from .. import muted_label

CURVE_COLOR = theme.SERIES_COLORS[0]
CHANCE_COLOR = "#8a8a8a"
MAJORITY_COLOR = theme.SERIES_COLORS[6]
FINETUNED_COLOR = theme.SERIES_COLORS[2]
DEMO_BARS = ("#4e79a7", "#f28e2b")       # the demonstrations' bars (their prompt fills: prompt_view.DEMO_FILLS)
MEAN_MARK = theme.SERIES_COLORS[3]


def short_acc(x: float) -> str:
    """0.25 -> ".25" (1.0 -> "1.00"), for the sidebar summary."""
    s = f"{x:.2f}"
    return s[1:] if s.startswith("0") else s


def _style_axes(item: pg.PlotItem, scale: float, left: str, bottom: str) -> None:
    css = {"color": theme.MUTED, "font-size": f"{9.5 * scale:.1f}pt"}
    for name in ("left", "bottom"):
        ax = item.getAxis(name)
        ax.setPen(pg.mkPen(theme.MUTED, width=1))
        ax.setTextPen(pg.mkPen(theme.FOREGROUND))
        ax.setTickFont(theme.font(scale, size=9))
        ax.setStyle(tickTextOffset=int(round(4 * scale)), tickLength=int(round(-5 * scale)))
        ax.enableAutoSIPrefix(False)
    item.getAxis("left").setWidth(int(round(52 * scale)))
    item.setLabel("left", left, **css)
    item.setLabel("bottom", bottom, **css)
    item.showGrid(x=False, y=True, alpha=theme.GRID_ALPHA)


def _style_legend(legend: pg.LegendItem, scale: float) -> None:
    legend.setBrush(pg.mkBrush(255, 255, 255, 225))
    legend.setPen(pg.mkPen(221, 221, 221))
    legend.setLabelTextColor(theme.FOREGROUND)
    legend.setLabelTextSize(f"{9 * scale:.1f}pt")


class AccuracyPlot(QtWidgets.QWidget):
    """Accuracy against k: the mean over draws with error bars (one standard deviation), every
    draw as a faint dot, and horizontal reference lines (chance, majority class, fine-tuned)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._scale = 1.0
        self.view = pg.PlotWidget(background=theme.BACKGROUND)
        self.view.setMenuEnabled(False)
        self.view.setMinimumHeight(200)
        wheel_scrolls_page(self.view, reset=self.reset_view)
        self.item = self.view.getPlotItem()
        self.item.hideButtons()
        self.legend = self.item.addLegend(offset=(6, 2), colCount=2)  # in a band above accuracy 1
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.view)

        self.draw_dots = pg.ScatterPlotItem(size=6, pen=None, brush=pg.mkBrush(theme.qcolor(CURVE_COLOR, 0.35)),
                                            name="one draw of demonstrations")
        self.error_bars = pg.ErrorBarItem(x=np.zeros(0), y=np.zeros(0), top=np.zeros(0), bottom=np.zeros(0),
                                          beam=0.0, pen=pg.mkPen(CURVE_COLOR, width=1.6))
        self.curve = pg.PlotDataItem([], [], pen=pg.mkPen(CURVE_COLOR, width=2.2), symbol="o", symbolSize=8,
                                     symbolBrush=CURVE_COLOR, symbolPen=pg.mkPen("w", width=1), name="in-context")
        self.chance_line = pg.PlotDataItem([], [], pen=pg.mkPen(CHANCE_COLOR, width=1.5,
                                                                style=QtCore.Qt.PenStyle.DashLine), name="chance")
        self.majority_line = pg.PlotDataItem([], [], pen=pg.mkPen(MAJORITY_COLOR, width=1.5,
                                                                  style=QtCore.Qt.PenStyle.DotLine),
                                             name="majority class")
        self.finetuned_line = pg.PlotDataItem([], [], pen=pg.mkPen(FINETUNED_COLOR, width=2,
                                                                   style=QtCore.Qt.PenStyle.DashDotLine),
                                              name="fine-tuned")
        for it in (self.chance_line, self.majority_line, self.finetuned_line, self.draw_dots, self.error_bars,
                   self.curve):
            self.item.addItem(it)
        self._ks: list[int] = [0, 1, 2, 4, 8]
        self._chance: float | None = None
        self._majority: float | None = None
        self._finetuned: tuple[float, str] | None = None
        self._has_result = False
        self.item.getAxis("left").setTicks([[(v / 5, f"{v / 5:.1f}") for v in range(6)]])
        self._band_timer = QtCore.QTimer(self, singleShot=True, interval=0)
        self._band_timer.timeout.connect(self._fit_band)
        self.item.getViewBox().sigResized.connect(self._band_timer.start)
        self.item.setYRange(0, 1.25, padding=0)
        self._apply_style()
        self._update_lines()

    # -- API --------------------------------------------------------------------------------

    def set_ks(self, ks: list[int]) -> None:
        """The x extent before a result is shown."""
        if not self._has_result:
            self._ks = list(ks) or [0]
            self._update_lines()

    def set_result(self, result) -> None:
        """An engine ICLResult."""
        ks = np.array([r.k for r in result.results], dtype=float)
        means = np.array([r.accuracy for r in result.results])
        stds = np.array([r.std for r in result.results])
        self.curve.setData(ks, means)
        self.curve.opts["name"] = f"mean of {result.draws} draw{'s' if result.draws != 1 else ''} ± 1 std"
        self.error_bars.setData(x=ks, y=means, top=stds, bottom=stds, beam=0.0)
        dx = np.concatenate([np.full(len(r.accuracies), r.k, dtype=float) for r in result.results])
        dy = np.concatenate([np.array(r.accuracies, dtype=float) for r in result.results])
        self.draw_dots.setData(dx, dy)
        self._ks = [int(k) for k in ks]
        self._has_result = True
        self._chance, self._majority = float(result.chance), float(result.majority)
        self._update_lines()
        self._relabel()

    def clear_result(self) -> None:
        self.curve.setData([], [])
        self.error_bars.setData(x=np.zeros(0), y=np.zeros(0), top=np.zeros(0), bottom=np.zeros(0))
        self.draw_dots.setData([], [])
        self._has_result = False
        self._update_lines()

    def set_baselines(self, chance: float | None, majority: float | None) -> None:
        """Chance and majority class of the task (before a result arrives)."""
        if not self._has_result:
            self._chance, self._majority = chance, majority
            self._update_lines()

    def set_reference(self, value: float | None, label: str = "") -> None:
        self._finetuned = None if value is None else (float(value), label)
        self._update_lines()

    def reference(self) -> float | None:
        """The fine-tuned line's height as drawn (None when hidden)."""
        _x, y = self.finetuned_line.getData()
        return None if y is None or len(y) == 0 else float(y[0])

    def points(self) -> dict[str, np.ndarray]:
        """What is drawn: k, the means (curve), the error bars' half-heights above and below."""
        x, y = self.curve.getData()
        o = self.error_bars.opts
        return {"k": np.asarray(x if x is not None else []), "mean": np.asarray(y if y is not None else []),
                "bar_x": np.asarray(o["x"]), "bar_y": np.asarray(o["y"]), "top": np.asarray(o["top"]),
                "bottom": np.asarray(o["bottom"])}

    def legend_names(self) -> list[str]:
        return [label.text for _sample, label in self.legend.items]

    def set_presentation(self, scale: float) -> None:
        self._scale = max(0.5, float(scale))
        self._apply_style()

    def export_png(self, path, scale: float = 2.0) -> None:
        from ...widgets.export import save_png

        save_png(self.view, path, scale)

    # -- internals --------------------------------------------------------------------------

    def _span(self) -> tuple[float, float]:
        lo, hi = min(self._ks), max(self._ks)
        pad = max(0.4, 0.04 * (hi - lo))
        return lo - pad, hi + pad

    def _update_lines(self) -> None:
        x0, x1 = self._span()
        for line, value in ((self.chance_line, self._chance), (self.majority_line, self._majority),
                            (self.finetuned_line, self._finetuned[0] if self._finetuned else None)):
            if value is None:
                line.setData([], [])
            else:
                line.setData([x0, x1], [value, value])
        self.item.setXRange(x0, x1, padding=0)
        ticks = [(k, str(k)) for k in self._ks] if len(self._ks) <= 24 else None
        self.item.getAxis("bottom").setTicks([ticks] if ticks else None)
        self._relabel()

    def _relabel(self) -> None:
        names = {self.chance_line: f"chance {short_acc(self._chance)}" if self._chance is not None else "chance",
                 self.majority_line: (f"majority class {short_acc(self._majority)}" if self._majority is not None
                                      else "majority class"),
                 self.finetuned_line: (f"fine-tuned {short_acc(self._finetuned[0])}"
                                       + (f" ({self._finetuned[1]})" if self._finetuned[1] else "")
                                       if self._finetuned else "fine-tuned")}
        self.legend.clear()
        if self._has_result:
            self.legend.addItem(self.curve, self.curve.opts["name"])
            self.legend.addItem(self.draw_dots, "one draw")
        for line in (self.chance_line, self.majority_line, self.finetuned_line):
            _x, y = line.getData()
            if y is not None and len(y):
                self.legend.addItem(line, names[line])
        _style_legend(self.legend, self._scale)
        self._band_timer.start()

    def reset_view(self) -> None:
        """Back to the whole k range and accuracy 0..1 (double-click; Ctrl+wheel zooms)."""
        if self._ks:
            self._update_lines()
            self._fit_band()

    def _fit_band(self) -> None:
        """Room above accuracy 1 for the legend, so it never hides a point: the y range grows
        until the band above 1.02 is as tall as the legend."""
        vb_h = self.item.getViewBox().height()
        if vb_h <= 0:
            return
        f = min(0.6, (self.legend.boundingRect().height() + 6) / vb_h)
        self.item.setYRange(-0.05, (1.02 + 0.05 * f) / (1 - f), padding=0)

    def _apply_style(self) -> None:
        _style_axes(self.item, self._scale, "accuracy", "k  (demonstrations in the prompt)")
        self.item.getAxis("bottom").setStyle(tickTextOffset=int(round(4 * self._scale)))
        self.curve.setSymbolSize(8 * self._scale)
        self.draw_dots.setSize(6 * self._scale)
        _style_legend(self.legend, self._scale)


class AttentionBars(QtWidgets.QWidget):
    """One bar per demonstration (first in the prompt on the left): the share of the query's
    attention it receives; optional diamonds for the mean over many prompts."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._scale = 1.0
        self.view = pg.PlotWidget(background=theme.BACKGROUND)
        self.view.setMenuEnabled(False)
        self.view.setMinimumHeight(150)
        wheel_scrolls_page(self.view, hint="")
        self.item = self.view.getPlotItem()
        self.item.hideButtons()
        self.item.setMouseEnabled(x=False, y=False)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.65)
        self.mean_marks = pg.ScatterPlotItem(symbol="d", size=9, pen=pg.mkPen("w", width=1),
                                             brush=pg.mkBrush(MEAN_MARK))
        self.item.addItem(self.bars)
        self.item.addItem(self.mean_marks)
        self.caption = muted_label()
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.caption)
        self._values: list[float] = []
        self._apply_style()

    def set_values(self, values: list[float], mean: list[float] | None = None) -> None:
        self._values = [float(v) for v in values]
        n = len(values)
        x = np.arange(1, n + 1, dtype=float)
        brushes = [pg.mkBrush(DEMO_BARS[i % 2]) for i in range(n)]
        # (pyqtgraph 0.14's BarGraphItem fails on an empty list of pens or brushes)
        self.bars.setOpts(x=x, height=np.array(self._values), width=0.65, pen=pg.mkPen(None),
                          brushes=brushes or None, brush=pg.mkBrush(DEMO_BARS[0]))
        if mean is not None and len(mean) == n:
            self.mean_marks.setData(x, np.array(mean, dtype=float))
        else:
            self.mean_marks.setData([], [])
        top = max([*self._values, *(mean or []), 0.05])
        self.item.setYRange(0, top * 1.12, padding=0)
        self.item.setXRange(0.4, max(1, n) + 0.6, padding=0)
        self.item.getAxis("bottom").setTicks([[(i + 1, str(i + 1)) for i in range(n)]] if n <= 32 else None)

    def values(self) -> list[float]:
        return list(self._values)

    def clear(self) -> None:
        self.set_values([])
        self.caption.setText("")

    def set_presentation(self, scale: float) -> None:
        self._scale = max(0.5, float(scale))
        self._apply_style()

    def _apply_style(self) -> None:
        _style_axes(self.item, self._scale, "share of the query's attention", "demonstration (1 = first)")
