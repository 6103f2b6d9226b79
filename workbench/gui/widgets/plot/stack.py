"""Several curve plots stacked with linked x axes and one control row."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

from ..export import save_png
from .controls import CurveControls, ask_export_path
from .loss_plot import LossPlot, MetricPlot


class PlotStack(QtWidgets.QWidget):
    """Plots stacked vertically with linked x axes and one control row.

    ::

        stack = PlotStack()
        stack.add_plot("loss", LossPlot(title="Loss", show_controls=False))
        stack.add_plot("lr", title="Learning rate")            # a MetricPlot
        stack.add_plot("gnorm", title="Gradient norm")
        stack.add_points("loss", "train/lm", step, y, tokens, time)
        timer.timeout.connect(stack.refresh)

    The x-axis choice applies to every plot; smoothing and log scale to the LossPlots (not the
    MetricPlots, which show their metric raw).
    """

    def __init__(self, parent: QtWidgets.QWidget | None = None, *,
                 show_controls: bool = True, presentation: float = 1.0):
        super().__init__(parent)
        self._plots: dict[str, LossPlot] = {}
        self._scale = presentation
        self._smoothing: float | None = None
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.controls: CurveControls | None = None
        if show_controls:
            self.controls = CurveControls(exports=("png",))
            self.controls.smoothingChanged.connect(self.set_smoothing)
            self.controls.xAxisChanged.connect(self.set_x_axis)
            self.controls.logYChanged.connect(self.set_log_y)
            self.controls.exportRequested.connect(self._export_dialog)
            self.controls.set_presentation(presentation)
            self.controls.set_state(0.6, "step", False)
            layout.addWidget(self.controls)
        self._splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        self._splitter.setChildrenCollapsible(False)
        self._splitter.setHandleWidth(4)
        layout.addWidget(self._splitter, 1)

    def add_plot(self, key: str, plot: LossPlot | None = None, *, title: str = "",
                 y_label: str = "", stretch: int | None = None) -> LossPlot:
        """Append ``plot`` (default: a new MetricPlot) under ``key``; its x axis follows the
        first plot's. ``stretch``: relative height (default 2 for a LossPlot, 1 otherwise)."""
        if plot is None:
            plot = MetricPlot(title=title, y_label=y_label, presentation=self._scale,
                              color_offset=len(self._plots))
        first = next(iter(self._plots.values()), None)
        previous = list(self._plots.values())
        self._plots[key] = plot
        self._splitter.addWidget(plot)
        index = self._splitter.indexOf(plot)
        if stretch is None:
            stretch = 1 if isinstance(plot, MetricPlot) else 2
        self._splitter.setStretchFactor(index, stretch)
        if first is not None:
            plot.link_x(first)
            plot.set_x_axis(first.x_axis())
        # only the bottom plot names the x axis
        for p in previous:
            p.show_x_label(False)
        plot.show_x_label(True)
        if self.controls is not None and not isinstance(plot, MetricPlot):
            self.controls.set_state(plot.smoothing(), plot.x_axis(), plot.log_y())
        return plot

    def plot(self, key: str) -> LossPlot:
        return self._plots[key]

    def plots(self) -> dict[str, LossPlot]:
        return dict(self._plots)

    def add_points(self, key: str, series: str, step, y, tokens=None, time=None) -> None:
        self._plots[key].add_points(series, step, y, tokens, time)

    def refresh(self) -> None:
        for p in self._plots.values():
            p.refresh()

    def set_x_axis(self, axis: str) -> None:
        for p in self._plots.values():
            p.set_x_axis(axis)

    def set_smoothing(self, weight: float) -> None:
        for p in self._plots.values():
            if not isinstance(p, MetricPlot):
                p.set_smoothing(weight)

    def set_log_y(self, on: bool) -> None:
        for p in self._plots.values():
            if not isinstance(p, MetricPlot):
                p.set_log_y(on)

    def set_presentation(self, scale: float) -> None:
        self._scale = scale
        for p in self._plots.values():
            p.set_presentation(scale)
        if self.controls is not None:
            self.controls.set_presentation(scale)

    def clear(self) -> None:
        for p in self._plots.values():
            p.clear()

    def export_png(self, path: str | Path) -> None:
        """All plots as one PNG at twice their size on screen."""
        self.refresh()
        for p in self._plots.values():
            p._exporting(2.0)
        try:
            save_png(self._splitter, path, 2.0)
        finally:
            for p in self._plots.values():
                p._exporting(0.0)

    def _export_dialog(self, kind: str) -> None:
        path = ask_export_path(self, kind, "curves")
        if path:
            self.export_png(path)
