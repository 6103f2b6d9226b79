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

from workbench.gui.window.main_window import MainWindow

from .windows import shown_window, train_steps

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
    with shown_window(qtbot, tmp_path, size=(1280, 820)) as w:
        yield w



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


def write_run(run: Path, steps: int, *, state: str | None = "completed", eval_every: int = 10) -> None:
    """A run folder as the trainer leaves it (config, metrics rows, status), without training."""
    from workbench.engine.checkpoint import MetricsWriter, RunDir
    from workbench.engine.config import Experiment
    from workbench.engine.control import write_status

    RunDir.create(run)
    Experiment(name="written").with_overrides([f"training.max_steps={steps}"]).save(run / "config.toml")
    w = MetricsWriter(run / "metrics.jsonl")
    for i in range(1, steps + 1):
        w.train_step(i, ["lm"], 3.0 - i / steps, {"lm": 3.0 - i / steps}, lr=1e-3, tokens=64 * i, elapsed=0.01 * i,
                     tokens_per_s=6400.0, grad_norm=1.0)
        if i % eval_every == 0:
            w.validation(i, {"lm": 3.1 - i / steps}, {}, tokens=64 * i, elapsed=0.01 * i)
    w.close()
    if state:
        write_status(run, state, steps, None, started={"device": "cpu", "precision": "fp32", "params": 100,
                                                      "start_step": 0, "max_steps": steps, "tokens_per_step": 64,
                                                      "vocab_size": 40})


def test_catching_up_with_a_long_run_hands_its_events_over_in_slices(window, qtbot, tmp_path, monkeypatch):
    import workbench.gui.follow as follow_mod

    w = window
    run = tmp_path / "run"
    write_run(run, 3000, eval_every=10)
    monkeypatch.setattr(follow_mod, "DRAIN_SLICE", 0.0)  # one event per pass of the event loop
    passes = []
    drain = w.follow._drain
    monkeypatch.setattr(w.follow, "_drain", lambda: (passes.append(len(w.follow._queue)), drain()))
    w.follow_run(str(run))
    qtbot.waitUntil(lambda: w.follow.state == "completed" and w.follow.is_caught_up(), timeout=60000)
    assert len(passes) > 100  # the pages got the 300 evaluations over many passes, not in one
    assert train_steps(w) == list(range(1, 3001))
    assert w.curves.loss_plot.point_count("val/lm") == 300
    assert w.state_chip.text() == "Finished" and "step 3,000" in w.statusBar().currentMessage()


def test_a_resumed_run_rewrites_its_metrics_and_the_pages_read_them_again(window, qtbot, tmp_path):
    from workbench.engine.checkpoint import atomic_write_text

    w = window
    run = tmp_path / "run"
    write_run(run, 40, state=None)
    (run / "run.lock").write_text(json.dumps({"pid": os.getpid(), "host": __import__("socket").gethostname()}))
    w.follow_run(str(run))
    qtbot.waitUntil(lambda: len(train_steps(w)) == 40, timeout=30000)
    assert w.follow.state == "running"
    # a resume from step 20 cuts the file after its checkpoint (a new file) and trains on
    kept = [x for x in (run / "metrics.jsonl").read_text().splitlines() if json.loads(x)["step"] <= 20]
    atomic_write_text(run / "metrics.jsonl", "".join(x + "\n" for x in kept))
    qtbot.waitUntil(lambda: train_steps(w) == list(range(1, 21)), timeout=30000)
    assert "rewritten" in w.training.log.toPlainText()


def test_the_runs_page_offers_to_follow_a_run_that_is_training(window, qtbot, tmp_path):
    w = window
    done, live = tmp_path / "runs" / "done", tmp_path / "runs" / "live"
    write_run(done, 20)
    write_run(live, 20, state="running")
    (live / "run.lock").write_text(json.dumps({"pid": os.getpid(), "host": __import__("socket").gethostname()}))
    w.runs.add_folder(str(tmp_path / "runs"))
    qtbot.waitUntil(lambda: len(w.runs.runs()) == 2, timeout=30000)
    w.runs.select_runs([done])
    assert not w.runs.follow_button.isEnabled()  # it ended: nothing to follow
    w.runs.select_runs([live])
    assert w.runs.follow_button.isEnabled()
    w.runs.follow_button.click()
    assert w.follow.is_following() and w.follow.run_dir == str(live) and w.current_panel() == "curves"
    qtbot.waitUntil(lambda: len(train_steps(w)) == 20, timeout=30000)
