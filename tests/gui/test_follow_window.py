"""The window follows a run that another process trains (a headless `workbench train` started as a
subprocess): the curves gain points while it trains, the attention page gets its snapshots, and
Pause / Resume / Stop act on that process through its control.json (pytest-qt, offscreen)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6 import QtCore

from workbench.gui.window.main_window import MainWindow

TINY = ["--set", "model.n_layer=1", "--set", "model.n_embd=32", "--set", "model.n_head=2",
        "--set", "model.block_size=32", "--set", "training.batch_size=8", "--set", "training.eval_every=10",
        "--set", "training.attention_every=10", "--set", "training.threads=1"]


def train_in_background(run: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "workbench", "train", "demo_toy", "--run-dir", str(run),
                             "--set", "training.max_steps=100000", "--set", "training.checkpoint_every=0",
                             *TINY, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})


@pytest.fixture
def window(qtbot, qapp, tmp_path):
    settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    w = MainWindow(settings=settings)
    w.tokenizer.auto_train = False
    w.resize(1280, 820)
    w.show()
    qtbot.waitUntil(w.engine_ready, timeout=30000)
    yield w
    w.stop_following()
    w.confirm_close = False
    w.shutdown(60000)
    w.close()
    w.deleteLater()
    qtbot.wait(20)


def train_steps(w: MainWindow) -> list[int]:
    return [int(s) for s in w.curves.loss_plot.series_data().get("train/lm", {}).get("step", [])]


def shot(w: MainWindow, name: str) -> None:
    """Screenshots for a person to look at, when WORKBENCH_SHOTS names a folder."""
    folder = os.environ.get("WORKBENCH_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        w.grab().save(str(Path(folder) / f"{name}.png"))


def test_the_window_follows_pauses_and_stops_a_headless_run(window, qtbot, tmp_path):
    w = window
    run = tmp_path / "run"
    proc = train_in_background(run)
    try:
        assert w.follow_run(str(run))  # before the process has made the folder: it waits for it
        assert w.follow.state in ("waiting", "preparing")
        assert w.follow_label.isVisible() and "(another process)" in w.follow_label.text()
        assert "(another process)" in w.training.follow_label.text() and not w.training.follow_label.isHidden()
        assert not w.start_action.isEnabled() and not w.demo_action.isEnabled()

        # the curves gain points while it trains, the same pages as the window's own runs
        qtbot.waitUntil(lambda: len(train_steps(w)) > 0, timeout=180000)
        first = len(train_steps(w))
        qtbot.waitUntil(lambda: len(train_steps(w)) > first + 20, timeout=60000)
        steps = train_steps(w)
        assert steps == list(range(1, len(steps) + 1))  # every step once, in order
        qtbot.waitUntil(lambda: "val/lm" in w.curves.loss_plot.series_names(), timeout=30000)
        qtbot.waitUntil(lambda: len(w.attention.entries) > 0, timeout=30000)
        assert w.follow.state == "running" and w.state_chip.text() == "Training"
        assert w.pause_action.isEnabled() and not w.resume_action.isEnabled()
        assert w.training.progress_labels["device"].text().startswith("cpu")
        w.show_panel("curves")
        qtbot.wait(300)
        shot(w, "follow_curves")

        # Pause acts on the other process; the window shows the state the run writes back
        w.pause()
        assert w.follow.state == "pausing"
        qtbot.waitUntil(lambda: w.follow.state == "paused", timeout=30000)
        status = json.loads((run / "status.json").read_text())
        assert status["state"] == "paused" and status["ack"] == w.follow.follower.ack
        qtbot.waitUntil(lambda: train_steps(w)[-1] == status["step"], timeout=10000)
        assert w.state_chip.text() == "Paused" and w.resume_action.isEnabled()
        w.show_panel("training")
        qtbot.wait(200)
        shot(w, "follow_training_paused")
        w.show_panel("attention")
        qtbot.wait(200)
        shot(w, "follow_attention")

        w.resume()
        qtbot.waitUntil(lambda: w.follow.state == "running", timeout=30000)
        qtbot.waitUntil(lambda: train_steps(w)[-1] > status["step"], timeout=30000)

        w.stop()
        qtbot.waitUntil(lambda: w.follow.state == "stopped", timeout=60000)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["status"] == "stopped" and "paused at step" in err
    assert train_steps(w)[-1] == summary["steps"]  # every row up to the last one it wrote
    assert w.state_chip.text() == "Stopped" and not w.stop_action.isEnabled()
    assert "Stopped at step" in w.training.log.toPlainText()

    w.stop_following()  # back to normal: the window trains its own runs again
    assert not w.follow.is_following() and not w.follow_label.isVisible() and w.training.follow_label.isHidden()
    assert w.start_action.isEnabled() and w.state_chip.text() == "Ready"
