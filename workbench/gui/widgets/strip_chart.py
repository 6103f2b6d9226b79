"""A strip chart: a few groups side by side, each value a dot, each group's mean a bar with its
spread (± one standard deviation) as a whisker and the figures written above it.

For comparisons over seeds (the Lessons page): with three seeds a bar alone hides whether the seeds
agree, dots alone hide the mean; both together show the effect and its noise at a glance::

    chart = StripChart(y_label="accuracy")
    chart.set_groups(["pretrained", "scratch"], ["#4e79a7", "#f28e2b"])
    chart.set_values("pretrained", [0.84, 0.86, 0.85])
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6 import QtGui, QtWidgets

from .. import theme
from .plot_input import wheel_scrolls_page

JITTER = (0.0, -0.12, 0.12, -0.06, 0.06, -0.18, 0.18)  # the dots of one group, side by side
BAR_HALF = 0.3            # half a bar's width, in groups


class StripChart(QtWidgets.QWidget):
    """Groups on the x axis, values on the y axis (see the module docstring)."""

    def __init__(self, parent: QtWidgets.QWidget | None = None, *, y_label: str = "",
                 empty_text: str = "No results yet", presentation: float = 1.0):
        super().__init__(parent)
        self._scale = float(presentation)
        self._y_label = y_label
        self._groups: list[str] = []
        self._colors: dict[str, str] = {}
        self._values: dict[str, list[float]] = {}
        self._items: list = []
        self.plot_widget = pg.PlotWidget(background=theme.BACKGROUND)
        self.plot_widget.setAntialiasing(True)
        wheel_scrolls_page(self.plot_widget, reset=self._redraw)
        self.plot_item: pg.PlotItem = self.plot_widget.getPlotItem()
        self.plot_item.setMenuEnabled(False)
        self.plot_item.hideButtons()
        self.plot_item.showGrid(x=False, y=True, alpha=theme.GRID_ALPHA)
        self.plot_item.getViewBox().setMouseEnabled(x=False, y=True)
        self._empty = pg.TextItem(empty_text, color=theme.MUTED, anchor=(0.5, 0.5))
        self.plot_item.addItem(self._empty, ignoreBounds=True)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.plot_widget)
        self._style()

    # -- data ----------------------------------------------------------------------------------

    def set_groups(self, names: list[str], colors: list[str]) -> None:
        """The groups, left to right, and their colours; clears the values."""
        self._groups = list(names)
        self._colors = dict(zip(names, colors))
        self._values = {n: [] for n in names}
        self._style()
        self._redraw()

    def set_values(self, name: str, values: list[float]) -> None:
        self._values[name] = [float(v) for v in values]
        self._redraw()

    def add_value(self, name: str, value: float) -> None:
        self._values.setdefault(name, []).append(float(value))
        self._redraw()

    def values(self, name: str) -> list[float]:
        """The dots of group ``name`` (what the chart shows)."""
        return list(self._values.get(name, []))

    def groups(self) -> list[str]:
        return list(self._groups)

    def label_text(self, name: str) -> str:
        """The figures written above group ``name``: "mean ± std" (the value alone for one dot)."""
        v = self._values.get(name, [])
        if not v:
            return ""
        mean, std = mean_std(v)
        return f"{mean:.3f}" if len(v) == 1 else f"{mean:.3f} ± {std:.3f}"

    # -- look ----------------------------------------------------------------------------------

    def set_presentation(self, scale: float) -> None:
        self._scale = float(scale)
        self._style()
        self._redraw()

    def set_y_label(self, label: str) -> None:
        self._y_label = label
        self._style()

    def _style(self) -> None:
        sc = self._scale
        tick_font = theme.font(sc, size=9)
        for name in ("left", "bottom"):
            ax = self.plot_item.getAxis(name)
            ax.setPen(pg.mkPen(theme.MUTED, width=1))
            ax.setTextPen(pg.mkPen(theme.FOREGROUND))
            ax.setTickFont(tick_font)
            ax.setStyle(tickTextOffset=int(4 * sc), maxTickLevel=0)
        self.plot_item.getAxis("bottom").setTickFont(theme.font(sc, size=10, bold=True))
        self.plot_item.getAxis("left").setWidth(int(56 * sc))
        if self._y_label:
            self.plot_item.setLabel("left", self._y_label, color=theme.MUTED, **{"font-size": f"{9.5 * sc:.1f}pt"})
        self.plot_item.layout.setContentsMargins(4 * sc, 8 * sc, 10 * sc, 4 * sc)
        self._empty.setFont(theme.font(sc, size=10))
        # every group's name under it without touching its neighbour's (the x range is n + 0.5 groups)
        fm = QtGui.QFontMetricsF(theme.font(sc, size=10, bold=True))
        widest = max((fm.horizontalAdvance(n) for n in self._groups), default=0.0)
        names = (len(self._groups) + 0.5) * (widest + 14 * sc) + 76 * sc
        self.plot_widget.setMinimumSize(int(max(220 * sc, names)), int(180 * sc))

    def _redraw(self) -> None:
        pi = self.plot_item
        for item in self._items:
            pi.removeItem(item)
        self._items = []
        sc = self._scale
        shown = [v for n in self._groups for v in self._values.get(n, [])]
        self._empty.setVisible(not shown)
        pi.getAxis("bottom").setTicks([[(i, n) for i, n in enumerate(self._groups)]])
        for i, name in enumerate(self._groups):
            values = self._values.get(name, [])
            color = self._colors.get(name, theme.SERIES_COLORS[i % len(theme.SERIES_COLORS)])
            if not values:
                continue
            mean, std = mean_std(values)
            bar = pg.PlotCurveItem([i - BAR_HALF, i + BAR_HALF], [mean, mean],
                                   pen=pg.mkPen(color, width=max(2.0, 4 * sc)))
            self._add(bar)
            if std > 0:
                self._add(pg.ErrorBarItem(x=np.array([i]), y=np.array([mean]), height=np.array([2 * std]),
                                          beam=0.16, pen=pg.mkPen(color, width=max(1.0, 1.5 * sc))))
            xs = [i + JITTER[k % len(JITTER)] for k in range(len(values))]
            self._add(pg.ScatterPlotItem(xs, values, size=11 * sc, brush=pg.mkBrush(theme.qcolor(color, 0.75)),
                                         pen=pg.mkPen("#ffffff", width=1)))
            label = pg.TextItem(self.label_text(name), color=theme.FOREGROUND, anchor=(0.5, 1.0))
            label.setFont(theme.font(sc, size=10, bold=True))
            label.setPos(i, max(values + [mean + std]))
            self._add(label)
        n = max(1, len(self._groups))
        pi.setXRange(-0.75, n - 0.25, padding=0)   # room for the figures written over the outer groups
        if shown:
            spreads = [mean_std(self._values[g]) for g in self._groups if self._values.get(g)]
            lo = min(shown + [m - sd for m, sd in spreads])
            hi = max(shown + [m + sd for m, sd in spreads])
            span = (hi - lo) or max(abs(hi), 1.0) * 0.1
            # room above the highest dot for the figures written there
            pi.setYRange(lo - 0.15 * span, hi + 0.35 * span, padding=0)
        else:
            pi.setYRange(0, 1, padding=0)
        self._empty.setPos((n - 1) / 2, 0.5 if not shown else 0)

    def _add(self, item) -> None:
        self.plot_item.addItem(item)
        self._items.append(item)


def mean_std(values: list[float]) -> tuple[float, float]:
    """The mean and the sample standard deviation (0 for one value; NaN for none), as the chart draws."""
    if not values:
        return math.nan, math.nan
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
