"""The colours of the views (plots, heatmaps, token strips), shared by the window and the report.

Imports nothing (no Qt, no numpy): gui/theme.py re-exports these names for the window, and
engine/report_figures.py draws the report's charts and heatmaps with them, so a report looks like
the window. A change of a view's colour belongs here; the window's own chrome (sidebar, buttons,
state chips) stays in gui/theme.py.
"""

BACKGROUND = "#ffffff"
FOREGROUND = "#2b2b2b"  # text
MUTED = "#6b6b6b"  # axis lines, secondary text
FAINT = "#9a9a9a"  # whitespace markers, hints
GRID_ALPHA = 0.12
HIGHLIGHT = "#e15759"  # what the eye should find: a selected head or token (outline), a differing setting (tint)

# Tableau 10: distinct, pleasant, readable on white.
SERIES_COLORS = [
    "#4e79a7",  # blue
    "#f28e2b",  # orange
    "#59a14f",  # green
    "#e15759",  # red
    "#b07aa1",  # purple
    "#76b7b2",  # teal
    "#9c755f",  # brown
    "#ff9da7",  # pink
    "#edc948",  # yellow
    "#bab0ac",  # grey
]

# Pastel boxes for tokens (dark text stays readable on every one of them).
TOKEN_PASTELS = [
    "#cfe3f7",  # blue
    "#fde2c4",  # apricot
    "#d4efd0",  # mint
    "#f7d1d8",  # rose
    "#e3d7f2",  # lavender
    "#fbf0bd",  # butter
    "#cdeeed",  # aqua
]

# Attention weights: a perceptually uniform map (a name both matplotlib and pyqtgraph know), and
# the grey of the causal mask (the cells above the diagonal, where a query cannot look).
ATTENTION_COLORMAP = "viridis"
ATTENTION_MASK = "#eeeeee"
