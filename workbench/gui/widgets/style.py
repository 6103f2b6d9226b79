"""Shared look of the reusable views: palette, fonts, whitespace markers.

One place decides how plots, heatmaps and token strips look, so that the panels built from them
agree: dark text on a light background, muted axes, a colour-blind friendly categorical palette
(Tableau 10) for curves, pastel boxes for tokens and a perceptually uniform colour map (viridis)
for attention weights.

Every widget takes a *presentation scale* (1.0 = normal, 1.5 or 2.0 for a projector): fonts,
line widths and symbol sizes are multiplied by it.
"""

from __future__ import annotations

from PySide6 import QtGui, QtWidgets

# ---------------------------------------------------------------------------------------------
# colours

BACKGROUND = "#ffffff"
FOREGROUND = "#2b2b2b"  # text
MUTED = "#6b6b6b"  # axis lines, secondary text
FAINT = "#9a9a9a"  # whitespace markers, hints
GRID_ALPHA = 0.12
ACCENT = "#e15759"  # selection outlines

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

ATTENTION_COLORMAP = "viridis"

# Prefixes of series names that denote a data split rather than a metric: "train/lm" and
# "val/lm" share the colour of "lm".
SPLIT_PREFIXES = ("train", "val", "valid", "validation", "test", "eval", "dev")


def color_key(series: str) -> str:
    """The part of a series name that chooses its colour ("val/lm" -> "lm")."""
    head, sep, tail = series.partition("/")
    if sep and head.lower() in SPLIT_PREFIXES and tail:
        return tail
    return series


def is_validation(series: str) -> bool:
    """True for series drawn as sparse points with symbols ("val/...", "eval/...", ...)."""
    head = series.partition("/")[0].lower()
    return head in ("val", "valid", "validation", "eval", "dev", "test")


def qcolor(color, alpha: float | None = None) -> QtGui.QColor:
    c = QtGui.QColor(color)
    if alpha is not None:
        c.setAlphaF(max(0.0, min(1.0, alpha)))
    return c


# ---------------------------------------------------------------------------------------------
# fonts

BASE_POINT_SIZE = 10.0


def font(scale: float = 1.0, *, size: float | None = None, bold: bool = False,
         mono: bool = False) -> QtGui.QFont:
    """The application font at ``size`` points (default 10) times ``scale``."""
    app = QtWidgets.QApplication.instance()
    f = QtGui.QFont(app.font()) if app is not None else QtGui.QFont()
    if mono:
        f = QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont)
    f.setPointSizeF((size if size is not None else BASE_POINT_SIZE) * scale)
    f.setBold(bold)
    f.setStyleStrategy(QtGui.QFont.StyleStrategy.PreferAntialias)
    return f


# ---------------------------------------------------------------------------------------------
# whitespace made visible

WHITESPACE_MARKS = {
    " ": "·",
    "\n": "↵",
    "\t": "→",
    "\r": "␍",
    "\u00a0": "⍽",  # no-break space
    "\f": "␌",
    "\v": "␋",
}


def visible_runs(text: str) -> list[tuple[str, bool]]:
    """Split ``text`` into runs of (display text, is_marker).

    Whitespace and control characters become visible markers (``·`` space, ``↵`` newline,
    ``→`` tab, ``\\x07`` for other control characters); the empty string becomes ``∅``.
    """
    if text == "":
        return [("∅", True)]
    runs: list[tuple[str, bool]] = []
    for ch in text:
        mark = WHITESPACE_MARKS.get(ch)
        if mark is None and (ord(ch) < 32 or ord(ch) == 127):
            mark = f"\\x{ord(ch):02x}"
        piece, is_mark = (mark, True) if mark is not None else (ch, False)
        if runs and runs[-1][1] == is_mark:
            runs[-1] = (runs[-1][0] + piece, is_mark)
        else:
            runs.append((piece, is_mark))
    return runs


def visible_whitespace(text: str) -> str:
    """``text`` with whitespace and control characters replaced by visible markers."""
    return "".join(piece for piece, _ in visible_runs(text))


def short_label(text: str, max_chars: int = 12) -> str:
    """A token as an axis label: whitespace visible, long tokens cut with an ellipsis."""
    s = visible_whitespace(text)
    return s if len(s) <= max_chars else s[: max_chars - 1] + "…"
