"""Reusable views of the workbench: curves, attention maps, token strips.

They take plain Python numbers and numpy arrays and import nothing from ``workbench.engine``.
"""

from .attention_view import AttentionGrid, AttentionHeatmap
from .loss_plot import CurveControls, LossPlot, MetricPlot, PlotStack
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
