"""Reusable views of the workbench: curves, attention maps, token strips.

They take plain Python numbers and numpy arrays and import nothing from ``workbench.engine``.
"""

from .attention.grid import AttentionGrid
from .attention.heatmap import AttentionHeatmap
from .plot.controls import CurveControls
from .plot.loss_plot import LossPlot, MetricPlot
from .plot.stack import PlotStack
from .token_strip import TokenStrip

__all__ = [
    "AttentionGrid",
    "AttentionHeatmap",
    "CurveControls",
    "LossPlot",
    "MetricPlot",
    "PlotStack",
    "TokenStrip",
]
