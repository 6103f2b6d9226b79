"""The look of the whole window in one place: colours, fonts, the style sheet and palette, the
application's name and icon, and the visual conventions the views share (series colours, token
pastels, visible whitespace).

Two accents with two jobs: ``UI_ACCENT`` (blue) marks the controls (default buttons, focus,
sliders, the current step in the sidebar); ``HIGHLIGHT`` (red) marks what the eye should find in
a view (the selected head or token, a setting that differs between two runs).

Plots, heatmaps and token strips: dark text on a light background, muted axes, a colour-blind
friendly categorical palette (Tableau 10) for curves, pastel boxes for tokens and a perceptually
uniform colour map (viridis) for attention weights. Every view takes a *presentation scale* (1.0 =
normal, larger for a projector): fonts, line widths and symbol sizes are multiplied by it.

A change of look belongs here; a page or widget names the colour it needs by its job. The views'
colours live in the Qt-free workbench/palette.py and the visible whitespace in workbench/fmt.py
(the report uses both); this module names them for the window.
"""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtGui, QtWidgets

from ..fmt import WHITESPACE_MARKS, short_label, visible_runs, visible_whitespace  # noqa: F401 (the views' names)
from ..palette import (ATTENTION_COLORMAP, ATTENTION_MASK, BACKGROUND, FAINT, FOREGROUND,  # noqa: F401
                       GRID_ALPHA, HIGHLIGHT, MUTED, SERIES_COLORS, TOKEN_PASTELS)

# ---------------------------------------------------------------------------------------------
# the application as the desktop sees it

ORGANIZATION = "GPT Workbench"
APPLICATION = "GPT Workbench"
DESKTOP_FILE = "gpt-workbench"  # packaging/gpt-workbench.desktop: lets the desktop match windows to it
ICON_DIR = Path(__file__).resolve().parent.parent / "resources" / "icons"


def app_icon() -> QtGui.QIcon:
    """The application icon: resources/icons/gpt-workbench-*.png (renders of the SVG beside
    them, made by packaging/make_icons.py)."""
    icon = QtGui.QIcon()
    for png in sorted(ICON_DIR.glob("gpt-workbench-*.png")):
        icon.addFile(str(png))
    return icon


# ---------------------------------------------------------------------------------------------
# colours of the window

UI_ACCENT = "#4e79a7"  # controls: default buttons, focus, sliders, selected text, the current step
UI_ACCENT_DARK = "#3b5f86"
START_GREEN = "#3d8b37"  # the Start button, and the state chip while a run trains
WAITING = "#b26a00"  # the state chip while a run prepares or is paused
NEUTRAL = "#8a9099"  # the state chip of an idle window
ERROR_COLOR = "#c62828"  # a message a person can act on; the Stop icon
OK_COLOR = "#2e7d32"
ICON_COLOR = "#3a4150"  # toolbar icons drawn by the window

SIDEBAR_BG = "#1f2430"
SIDEBAR_HOVER_BG = "#272e3b"
SIDEBAR_SELECTED_BG = "#2f394b"
SIDEBAR_MARK = "#6fa0d8"  # the bar beside the current step and its circle's ring
SIDEBAR_LINE = "#4a5466"  # the line that joins the steps
SIDEBAR_RING = "#5b6679"
SIDEBAR_NUMBER = "#b8c0cf"
SIDEBAR_TITLE = "#d8dde6"
SIDEBAR_SELECTED_TEXT = "#ffffff"
SIDEBAR_SUMMARY = "#8e97a8"
SIDEBAR_SELECTED_SUMMARY = "#9fb3cc"

# ---------------------------------------------------------------------------------------------
# colours of the views (plots, heatmaps, token strips)

# BACKGROUND, FOREGROUND, MUTED, FAINT, GRID_ALPHA, HIGHLIGHT, SERIES_COLORS, TOKEN_PASTELS,
# ATTENTION_COLORMAP, ATTENTION_MASK: Qt-free, in workbench/palette.py (imported above), so that the
# report draws with the same colours; a page or widget names them as theme.NAME.

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


class TaskColors:
    """One colour per task name, in order of first appearance, shared by every plot of a panel."""

    def __init__(self):
        self._colors: dict[str, str] = {}

    def __call__(self, task: str) -> str:
        if task not in self._colors:
            self._colors[task] = SERIES_COLORS[len(self._colors) % len(SERIES_COLORS)]
        return self._colors[task]

    def clear(self) -> None:
        self._colors.clear()


# ---------------------------------------------------------------------------------------------
# fonts

BASE_POINT_SIZE = 10.0  # points, times the presentation scale


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
# whitespace made visible: visible_runs, visible_whitespace, short_label (imported above from
# workbench/fmt.py, which the report uses too)


# ---------------------------------------------------------------------------------------------
# the style sheet and palette


def stylesheet(scale: float = 1.0) -> str:
    """The application's style sheet; ``scale`` enlarges every font (presentation mode)."""
    def pt(size: float) -> str:
        return f"{size * scale:.1f}pt"

    def px(size: float) -> str:  # box lengths in points are not honoured: a card's title overlapped it
        return f"{int(round(size))}px"

    title_px = 10.5 * scale * 96 / 72 * 1.25  # a card title's line, in pixels at 96 dpi

    return f"""
    QMainWindow, QWidget#central {{ background: #f4f5f7; }}
    QWidget {{ font-size: {pt(BASE_POINT_SIZE)}; }}
    QStackedWidget > QWidget {{ background: #f4f5f7; }}
    QScrollArea, QScrollArea > QWidget > QWidget {{ background: transparent; }}
    QLabel#panelTitle {{ font-size: {pt(18)}; font-weight: 600; color: #1f2430; }}
    QLabel#panelSubtitle {{ color: #5f6670; font-size: {pt(10.5)}; }}
    QLabel#mutedLabel, QLabel#statName {{ color: #6b6b6b; }}
    QLabel#statValue {{ color: #1f2430; }}
    QLabel#headline {{ font-size: {pt(11.5)}; color: #1f2430; padding: 2px 2px; }}
    QGroupBox#card QLabel#lessonClaim {{ font-size: {pt(17)}; font-weight: 600; color: #1f2430; }}
    QGroupBox#card QLabel#lessonEffect {{ font-size: {pt(20)}; font-weight: 700; color: #1f2430; }}
    QGroupBox#card QLabel#lessonVerdict {{ font-size: {pt(14)}; color: #1f2430; }}
    QListWidget#lessonList::item {{ padding: 6px 4px; }}
    QToolButton#howButton {{ border: none; background: transparent; padding: 2px 0px; color: {UI_ACCENT}; }}
    QGroupBox#card {{
        background: #ffffff; border: 1px solid #e1e4e8; border-radius: 8px;
        margin-top: {px(title_px + 8)}; padding: 8px 10px 8px 10px; font-weight: 600;
    }}
    QGroupBox#card::title {{
        subcontrol-origin: margin; subcontrol-position: top left; left: 2px; top: 0px; padding: 0 4px 0 4px;
        color: #3a4150; font-size: {pt(10.5)};
    }}
    QGroupBox#card QWidget {{ font-weight: normal; }}
    QPushButton {{
        background: #ffffff; border: 1px solid #c9ced6; border-radius: 5px; padding: 5px 12px;
    }}
    QPushButton:hover {{ background: #eef2f7; border-color: #aab3bf; }}
    QPushButton:pressed {{ background: #e1e7ef; }}
    QPushButton:disabled {{ color: #a0a6ae; border-color: #dde1e6; background: #f7f8f9; }}
    QPushButton#primaryButton {{ background: {UI_ACCENT}; color: white; border-color: {UI_ACCENT_DARK}; }}
    QPushButton#primaryButton:hover {{ background: {UI_ACCENT_DARK}; }}
    QPushButton#primaryButton:disabled {{ background: #b7c6d8; border-color: #b7c6d8; color: #f4f6f9; }}
    QPushButton#builtinButton {{ padding: 5px 14px; border-radius: 13px; }}
    QPushButton#builtinButton:checked {{ background: {UI_ACCENT}; color: white; border-color: {UI_ACCENT_DARK}; }}
    QLineEdit, QPlainTextEdit, QTextEdit {{
        background: #ffffff; border: 1px solid #c9ced6; border-radius: 4px; padding: 3px 5px;
        selection-background-color: {UI_ACCENT};
    }}
    QLineEdit:focus, QPlainTextEdit:focus {{ border-color: {UI_ACCENT}; }}
    QLineEdit:disabled {{ background: #f1f2f4; color: #8a9099; }}
    QPlainTextEdit#preview, QPlainTextEdit#eventLog {{ background: #fbfbfc; }}
    QTableWidget {{
        background: #ffffff; alternate-background-color: #f8f9fb; border: 1px solid #e1e4e8;
        border-radius: 4px; gridline-color: #eceef1;
    }}
    QTableWidget::item:selected {{ background: #dbe7f3; color: #1f2430; }}
    QHeaderView::section {{
        background: #f4f5f7; border: none; border-bottom: 1px solid #e1e4e8; padding: 4px 6px;
        color: #5f6670; font-weight: 600;
    }}
    QProgressBar {{
        border: 1px solid #c9ced6; border-radius: 5px; background: #ffffff; text-align: center;
        color: #1f2430;
    }}
    QProgressBar::chunk {{ background: #9cc0e4; border-radius: 4px; }}
    QToolButton {{
        background: #ffffff; border: 1px solid #c9ced6; border-radius: 5px; padding: 4px 10px;
    }}
    QToolButton:hover {{ background: #eef2f7; }}
    QToolButton::menu-indicator {{ image: none; width: 0px; }}
    QToolBar {{ background: #ffffff; border: none; border-bottom: 1px solid #e1e4e8; spacing: 6px; padding: 4px 8px; }}
    QToolBar QToolButton {{
        border: 1px solid transparent; border-radius: 5px; padding: 4px 10px; font-size: {pt(10.5)};
    }}
    QToolBar QToolButton:hover {{ background: #eef2f7; border-color: #d5dbe3; }}
    QToolBar QToolButton:disabled {{ color: #a9aeb5; }}
    QToolButton#startTool, QToolButton#startButton {{
        background: {START_GREEN}; color: white; border: 1px solid #2f6f2a; border-radius: 5px; padding: 4px 14px;
        font-weight: 600;
    }}
    QToolButton#startTool:hover, QToolButton#startButton:hover {{ background: #347a2f; }}
    QToolButton#startTool:disabled, QToolButton#startButton:disabled {{
        background: #c5d9c3; border-color: #c5d9c3; color: #f4f7f4;
    }}
    QToolButton#demoTool {{
        background: {UI_ACCENT}; color: white; border: 1px solid {UI_ACCENT_DARK}; border-radius: 5px; padding: 4px 14px;
        font-weight: 600;
    }}
    QToolButton#demoTool:hover {{ background: {UI_ACCENT_DARK}; }}
    QToolButton#demoTool:disabled {{ background: #b7c6d8; border-color: #b7c6d8; color: #f4f6f9; }}
    QToolButton#pauseButton, QToolButton#resumeButton, QToolButton#stopButton {{
        background: #ffffff; border: 1px solid #c9ced6; border-radius: 5px; padding: 4px 12px;
    }}
    QToolButton#pauseButton:hover, QToolButton#resumeButton:hover, QToolButton#stopButton:hover {{
        background: #eef2f7;
    }}
    QToolButton#pauseButton:disabled, QToolButton#resumeButton:disabled, QToolButton#stopButton:disabled {{
        color: #a9aeb5; border-color: #e1e4e8;
    }}
    QListWidget#sidebar {{ background: {SIDEBAR_BG}; border: none; outline: none; }}
    QWidget#sidebarPane {{ background: {SIDEBAR_BG}; }}
    QLabel#appTitle {{ color: #ffffff; font-size: {pt(13.5)}; font-weight: 600; padding: 14px 16px 2px 16px; }}
    QLabel#appSubtitle {{ color: #8e97a8; font-size: {pt(9)}; padding: 0 16px 10px 16px; }}
    QLabel#sidebarFoot {{ color: #8e97a8; font-size: {pt(9)}; padding: 8px 16px 12px 16px; }}
    QStatusBar {{ background: #ffffff; border-top: 1px solid #e1e4e8; }}
    QStatusBar QLabel {{ padding: 0 6px; }}
    QLabel#stateChip {{ border-radius: 9px; padding: 1px 10px; color: white; background: #8a9099; font-weight: 600; }}
    QSplitter::handle {{ background: #e1e4e8; }}
    QSplitter::handle:horizontal {{ width: 1px; }}
    QSplitter::handle:vertical {{ height: 4px; background: #f4f5f7; }}
    QSlider::groove:horizontal {{ height: 4px; background: #d5dbe3; border-radius: 2px; }}
    QSlider::handle:horizontal {{
        background: {UI_ACCENT}; width: 14px; height: 14px; margin: -6px 0; border-radius: 7px;
    }}
    QSlider::sub-page:horizontal {{ background: #9cc0e4; border-radius: 2px; }}
    QToolTip {{ background: #1f2430; color: #ffffff; border: none; padding: 5px; }}
    QMenu {{ background: #ffffff; border: 1px solid #d5dbe3; }}
    QMenu::item {{ padding: 5px 22px 5px 22px; }}
    QMenu::item:selected {{ background: #dbe7f3; color: #1f2430; }}
    """


def apply_style(app: QtWidgets.QApplication, scale: float = 1.0) -> None:
    """The application font and style sheet at ``scale`` (1.0, or PRESENTATION_SCALE on a projector)."""
    f = QtGui.QFont(app.font())
    f.setPointSizeF(BASE_POINT_SIZE * scale)
    app.setFont(f)
    app.setStyleSheet(stylesheet(scale))


def apply_theme(app: QtWidgets.QApplication) -> None:
    """Fusion with the accent as the selection colour, dark text, and the style sheet."""
    app.setStyle("Fusion")
    palette = app.style().standardPalette()
    palette.setColor(QtGui.QPalette.ColorRole.Highlight, QtGui.QColor(UI_ACCENT))
    for role in (QtGui.QPalette.ColorRole.WindowText, QtGui.QPalette.ColorRole.Text,
                 QtGui.QPalette.ColorRole.ButtonText):
        palette.setColor(QtGui.QPalette.ColorGroup.Active, role, QtGui.QColor(FOREGROUND))
        palette.setColor(QtGui.QPalette.ColorGroup.Inactive, role, QtGui.QColor(FOREGROUND))
        palette.setColor(QtGui.QPalette.ColorGroup.Disabled, role, QtGui.QColor("#9aa0a8"))
    app.setPalette(palette)
    apply_style(app)
