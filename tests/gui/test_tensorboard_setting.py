"""The Training page's TensorBoard switch is the experiment's [logging] tensorboard: it comes from
a loaded experiment, goes into the one the window trains and into the copied command, and says
what to install where the package is missing."""

from __future__ import annotations

import pytest
from PySide6 import QtCore

from workbench.engine.config import Experiment, resolve_experiment
from workbench.gui.window.main_window import MainWindow


@pytest.fixture
def window(qtbot, qapp, tmp_path):
    settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    w = MainWindow(settings=settings)
    w.tokenizer.auto_train = False
    w.show()
    yield w
    w.confirm_close = False
    w.shutdown(30000)
    w.close()
    w.deleteLater()


def test_the_tensorboard_switch_is_the_logging_setting(window, monkeypatch):
    w = window
    w.set_experiment(Experiment(name="tb").with_overrides(["logging.tensorboard=true"]), base_label="demo_toy")
    assert w.training.tensorboard_check.isChecked() and w.experiment().logging.tensorboard
    w.training.tensorboard_check.setChecked(False)
    assert not w.experiment().logging.tensorboard
    assert w.experiment().training == Experiment(name="tb").training  # nothing else moved

    import workbench.engine.tensorboard_log as tb

    monkeypatch.setattr(tb, "installed", lambda: False)
    w.training.tensorboard_check.setChecked(True)
    message = w.training.error.text()
    assert "logging.tensorboard" in message and 'pip install "gpt-workbench[tensorboard]"' in message
    w.training.tensorboard_check.setChecked(False)
    assert w.training.error.text() == ""

    # the command that trains the same experiment headless carries it
    w.set_experiment(resolve_experiment("demo_toy"), base_label="demo_toy")
    assert not w.training.tensorboard_check.isChecked()
    w.training.tensorboard_check.setChecked(True)
    assert w.copy_command() == "workbench train demo_toy --set logging.tensorboard=true"
