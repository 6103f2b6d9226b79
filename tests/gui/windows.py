"""A shown MainWindow for window tests: temporary settings, the engine loaded, closed cleanly after."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from PySide6 import QtCore

from workbench.gui.window.main_window import MainWindow


@contextmanager
def shown_window(qtbot, tmp_path: Path, size: tuple[int, int] | None = None):
    settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    w = MainWindow(settings=settings)
    w.tokenizer.auto_train = False
    if size:
        w.resize(*size)
    w.show()
    qtbot.waitUntil(w.engine_ready, timeout=30000)
    try:
        yield w
    finally:
        w.set_presentation(False)  # the application's font is global: the next test starts normal
        w.stop_following()
        w.confirm_close = False
        w.shutdown(60000)
        w.close()
        w.deleteLater()
        qtbot.wait(20)


def train_steps(w: MainWindow) -> list[int]:
    """The steps of the train/lm curve the Curves page shows."""
    return [int(s) for s in w.curves.loss_plot.series_data().get("train/lm", {}).get("step", [])]
