"""The lesson's curves as it trains: every run's curve, one colour per condition and one line per
seed, the shared preparation (pretraining) on a plot of its own (its y is another quantity), and the
moments a lesson marks ("copy head forms") as vertical lines with their words."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from workbench.lessons import Mark, Point

from ... import theme
from ...widgets.flow import Columns, FlowRow
from ...widgets.plot.loss_plot import LossPlot

PREPARE_COLOR = "#7f7f7f"
SECOND_SERIES_WIDTH = 1.0   # a run's second curve ("train" beside "validation") is thinner


def condition_colors(conditions) -> dict[str, str]:
    """One colour per condition, in the lesson's order (the results chart uses the same)."""
    return {c: theme.SERIES_COLORS[i % len(theme.SERIES_COLORS)] for i, c in enumerate(conditions)}


def series_name(condition: str, seed: int, series: str = "") -> str:
    return f"{condition} · seed {seed}" + (f" · {series}" if series else "")


class LiveCurves(QtWidgets.QWidget):
    """``begin(lesson, planned)``, then ``add(events)`` as they come and ``refresh()`` on a timer."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self._scale = 1.0
        self._colors: dict[str, str] = {}
        self._prepare_label = ""
        self._marks: list[tuple[Mark, pg.InfiniteLine, LossPlot]] = []
        self._first_series: dict[str, str] = {}   # condition -> the series of its first point
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        self.legend = FlowRow(spacing=14)
        self._legend_labels: list[QtWidgets.QLabel] = []
        lay.addWidget(self.legend)
        self.plots = Columns(spacing=10)
        self.prepare_plot = LossPlot(title="", y_label="", show_controls=False, smoothing=0.6, legend=False)
        self.runs_plot = LossPlot(title="", y_label="", show_controls=False, smoothing=0.6, legend=False)
        self.plots.add(self.prepare_plot, 2)
        self.plots.add(self.runs_plot, 3)
        lay.addWidget(self.plots, 1)
        self.prepare_plot.hide()

    def begin(self, lesson) -> None:
        """Empty plots for ``lesson`` (its curves' names and axes)."""
        self.clear()
        self._colors = condition_colors(lesson.conditions)
        self._prepare_label = lesson.prepare_label if lesson.prepare is not None else ""
        self.prepare_plot.setVisible(bool(self._prepare_label))
        # short titles: a chart is never narrower than its title (the page scrolls sideways instead)
        self.prepare_plot.set_title(self._prepare_label.capitalize())
        self.runs_plot.set_title(lesson.y_label.capitalize() if lesson.y_label else "Each run")
        for plot in (self.prepare_plot, self.runs_plot):
            plot.set_x_label(lesson.x_label)
        items = list(self._colors.items()) + ([(self._prepare_label, PREPARE_COLOR)] if self._prepare_label else [])
        texts = [f"<span style='color:{color}; font-size:large'>●</span> {name}" for name, color in items]
        texts.append(f"<span style='color:{theme.MUTED}'>one line per seed</span>")
        # the labels are kept and reused: a widget taken out of a FlowLayout (a Python layout) left
        # its layout item to be freed twice at exit
        while len(self._legend_labels) < len(texts):
            label = QtWidgets.QLabel()
            self._legend_labels.append(label)
            self.legend.add(label)
        for label, text in zip(self._legend_labels, texts + [""] * (len(self._legend_labels) - len(texts))):
            label.setText(text)
            label.setVisible(bool(text))

    def clear(self) -> None:
        self._first_series: dict[str, str] = {}
        self.prepare_plot.set_y_label("")
        for plot in (self.prepare_plot, self.runs_plot):
            plot.clear()
        for _mark, line, plot in self._marks:
            plot.plot_item.removeItem(line)
        self._marks = []

    def add(self, events) -> None:
        for e in events:
            if isinstance(e, Point):
                plot = self._plot_for(e.condition)
                name = series_name(e.condition, e.seed, e.series)
                if name not in plot.series_names():
                    # a condition's first series is its curve; another one ("train" beside it) is thinner
                    first = self._first_series.setdefault(e.condition, e.series)
                    if plot is self.prepare_plot and e.series and first == e.series:
                        plot.set_y_label(e.series)   # what pretraining's curve is ("lm loss")
                    color = self._colors.get(e.condition, PREPARE_COLOR)
                    plot.set_series_style(name, color=color, symbol=None,
                                          width=SECOND_SERIES_WIDTH if e.series != first else None)
                plot.add_point(name, e.x, e.y)
            elif isinstance(e, Mark):
                self._add_mark(e)

    def refresh(self) -> None:
        for plot in (self.prepare_plot, self.runs_plot):
            if plot.isVisible():
                plot.refresh()

    def curve(self, condition: str, seed: int, series: str = "") -> tuple[list[float], list[float]]:
        """The points of one run's curve as the plot holds them (x, y)."""
        data = self._plot_for(condition).series_data().get(series_name(condition, seed, series))
        if data is None:
            return [], []
        return [float(v) for v in data["step"]], [float(v) for v in data["y"]]

    def marks(self) -> list[tuple[str, int, float, str]]:
        return [(m.condition, m.seed, m.x, m.text) for m, _line, _plot in self._marks]

    def set_presentation(self, scale: float) -> None:
        self._scale = scale
        for plot in (self.prepare_plot, self.runs_plot):
            plot.set_presentation(scale)
        for _mark, line, _plot in self._marks:
            line.label.setFont(theme.font(scale, size=9))

    def _plot_for(self, condition: str) -> LossPlot:
        return self.prepare_plot if self._prepare_label and condition == self._prepare_label else self.runs_plot

    def _add_mark(self, m: Mark) -> None:
        color = self._colors.get(m.condition, PREPARE_COLOR)
        # labels of marks near each other sit at different heights instead of over each other
        position = 0.92 - 0.14 * (len(self._marks) % 6)
        line = pg.InfiniteLine(pos=m.x, angle=90, movable=False,
                               pen=pg.mkPen(color, width=1.5, style=QtCore.Qt.PenStyle.DashLine),
                               label=f"{m.text} (seed {m.seed})",
                               labelOpts={"position": position, "color": color, "anchors": [(0, 0.5), (0, 0.5)],
                                          "fill": pg.mkBrush(255, 255, 255, 210)})
        line.label.setFont(theme.font(self._scale, size=9))
        line.setZValue(60)   # its words over the curves
        plot = self._plot_for(m.condition)
        plot.plot_item.addItem(line)
        self._marks.append((m, line, plot))
