"""The application: the QApplication and ``main`` (the look is theme.py's).

``workbench`` (no subcommand), ``workbench gui [EXPERIMENT]`` and the ``workbench-gui`` script
all end in ``main``. The window opens at once, ready to train on a built-in corpus; torch is
loaded in the background meanwhile (it takes a second or two), so start-up stays quick.
"""

from __future__ import annotations

import os
import sys

from PySide6 import QtCore, QtWidgets

from . import theme


def create_app(argv: list[str] | None = None) -> QtWidgets.QApplication:
    """The QApplication (the existing one when there is one, as under pytest-qt)."""
    app = QtWidgets.QApplication.instance()
    if app is None:
        QtWidgets.QApplication.setHighDpiScaleFactorRoundingPolicy(
            QtCore.Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QtWidgets.QApplication(argv if argv is not None else sys.argv[:1])
    app.setOrganizationName(theme.ORGANIZATION)
    app.setApplicationName(theme.APPLICATION)
    app.setApplicationDisplayName(theme.APPLICATION)
    app.setDesktopFileName(theme.DESKTOP_FILE)
    app.setWindowIcon(theme.app_icon())
    theme.apply_theme(app)
    return app


def main(experiment: str | None = None) -> int:
    """Open the window (optionally with an experiment TOML or preset name) and run until closed."""
    app = create_app()
    from .window.main_window import MainWindow

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
