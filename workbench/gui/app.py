"""The application: QApplication set-up, the look (style sheet), and ``main``.

``workbench`` (no subcommand), ``workbench gui [EXPERIMENT]`` and the ``workbench-gui`` script
all end in ``main``. The window opens at once, ready to train on a built-in corpus; torch is
loaded in the background meanwhile (it takes a second or two), so start-up stays quick.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

ORGANIZATION = "GPT Workbench"
APPLICATION = "GPT Workbench"
BASE_POINT_SIZE = 10.0

ACCENT = "#4e79a7"
ACCENT_DARK = "#3b5f86"
GREEN = "#3d8b37"
RED = "#c62828"
SIDEBAR_BG = "#1f2430"
ICON_DIR = Path(__file__).resolve().parent.parent / "resources" / "icons"
DESKTOP_FILE = "gpt-workbench"  # packaging/gpt-workbench.desktop: lets the desktop match windows to it


def app_icon() -> QtGui.QIcon:
    """The application icon: resources/icons/gpt-workbench-*.png (renders of the SVG beside
    them, made by packaging/make_icons.py)."""
    icon = QtGui.QIcon()
    for png in sorted(ICON_DIR.glob("gpt-workbench-*.png")):
        icon.addFile(str(png))
    return icon


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
    QPushButton#primaryButton {{ background: {ACCENT}; color: white; border-color: {ACCENT_DARK}; }}
    QPushButton#primaryButton:hover {{ background: {ACCENT_DARK}; }}
    QPushButton#primaryButton:disabled {{ background: #b7c6d8; border-color: #b7c6d8; color: #f4f6f9; }}
    QPushButton#builtinButton {{ padding: 5px 14px; border-radius: 13px; }}
    QPushButton#builtinButton:checked {{ background: {ACCENT}; color: white; border-color: {ACCENT_DARK}; }}
    QLineEdit, QPlainTextEdit, QTextEdit {{
        background: #ffffff; border: 1px solid #c9ced6; border-radius: 4px; padding: 3px 5px;
        selection-background-color: {ACCENT};
    }}
    QLineEdit:focus, QPlainTextEdit:focus {{ border-color: {ACCENT}; }}
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
        background: {GREEN}; color: white; border: 1px solid #2f6f2a; border-radius: 5px; padding: 4px 14px;
        font-weight: 600;
    }}
    QToolButton#startTool:hover, QToolButton#startButton:hover {{ background: #347a2f; }}
    QToolButton#startTool:disabled, QToolButton#startButton:disabled {{
        background: #c5d9c3; border-color: #c5d9c3; color: #f4f7f4;
    }}
    QToolButton#demoTool {{
        background: {ACCENT}; color: white; border: 1px solid {ACCENT_DARK}; border-radius: 5px; padding: 4px 14px;
        font-weight: 600;
    }}
    QToolButton#demoTool:hover {{ background: {ACCENT_DARK}; }}
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
        background: {ACCENT}; width: 14px; height: 14px; margin: -6px 0; border-radius: 7px;
    }}
    QSlider::sub-page:horizontal {{ background: #9cc0e4; border-radius: 2px; }}
    QToolTip {{ background: #1f2430; color: #ffffff; border: none; padding: 5px; }}
    QMenu {{ background: #ffffff; border: 1px solid #d5dbe3; }}
    QMenu::item {{ padding: 5px 22px 5px 22px; }}
    QMenu::item:selected {{ background: #dbe7f3; color: #1f2430; }}
    """


def apply_style(app: QtWidgets.QApplication, scale: float = 1.0) -> None:
    font = QtGui.QFont(app.font())
    font.setPointSizeF(BASE_POINT_SIZE * scale)
    app.setFont(font)
    app.setStyleSheet(stylesheet(scale))


def create_app(argv: list[str] | None = None) -> QtWidgets.QApplication:
    """The QApplication (the existing one when there is one, as under pytest-qt)."""
    app = QtWidgets.QApplication.instance()
    if app is None:
        QtWidgets.QApplication.setHighDpiScaleFactorRoundingPolicy(
            QtCore.Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QtWidgets.QApplication(argv if argv is not None else sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName(APPLICATION)
    app.setDesktopFileName(DESKTOP_FILE)
    app.setWindowIcon(app_icon())
    app.setStyle("Fusion")
    palette = app.style().standardPalette()
    palette.setColor(QtGui.QPalette.ColorRole.Highlight, QtGui.QColor(ACCENT))
    for role in (QtGui.QPalette.ColorRole.WindowText, QtGui.QPalette.ColorRole.Text,
                 QtGui.QPalette.ColorRole.ButtonText):
        palette.setColor(QtGui.QPalette.ColorGroup.Active, role, QtGui.QColor("#2b2b2b"))
        palette.setColor(QtGui.QPalette.ColorGroup.Inactive, role, QtGui.QColor("#2b2b2b"))
        palette.setColor(QtGui.QPalette.ColorGroup.Disabled, role, QtGui.QColor("#9aa0a8"))
    app.setPalette(palette)
    apply_style(app)
    return app


def main(experiment: str | None = None) -> int:
    """Open the window (optionally with an experiment TOML or preset name) and run until closed."""
    app = create_app()
    from .main_window import MainWindow

    window = MainWindow()
    app.aboutToQuit.connect(window.shutdown)
    if experiment:
        window.open_experiment(experiment)
    window.show()
    window.raise_()
    code = app.exec()
    from .bridge import Job

    window.shutdown()  # a run stopped (checkpoint saved) and joined, background jobs cancelled
    if Job.running():
        # a job stuck in a long read cannot be interrupted; Qt aborts when a running QThread is
        # destroyed at exit, so leave without tearing the interpreter down (everything is saved)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else None))
