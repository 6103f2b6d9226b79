"""The main window end to end (pytest-qt, offscreen): the whole path from a built-in corpus to
live curves and attention, pause/resume/stop, a failing run, closing during a run, and the panels
fed with synthetic engine events.

Runs use a tiny model so the file takes well under a minute; token caches and tokenizers go to
one cache folder shared by the tests of this file (they are keyed by content), runs to a fresh
data folder per test.
"""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from workbench.engine import events as ev
from workbench.engine.config import ModelConfig
from workbench.gui import theme
from workbench.gui.bridge import MetricsBatch, SignalReporter, TrainingSession
from workbench.gui.window.main_window import MainWindow

from .windows import shown_window
from workbench.gui.panels.training_panel import command_line

TINY_MODEL = ModelConfig(n_layer=1, n_head=2, n_embd=32, block_size=32)


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def window(qtbot, qapp, tmp_path, monkeypatch, shared_cache):
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(shared_cache))
    with shown_window(qtbot, tmp_path) as w:
        yield w


def tiny(w: MainWindow, **training) -> None:
    """Tiny settings in the forms (the demo preset with a 1-layer, 32-wide model)."""
    w.model.set_config(TINY_MODEL)
    t = dict(max_steps=30, batch_size=8, warmup_steps=2, eval_every=10, attention_every=5,
             checkpoint_every=0)
    t.update(training)
    w.training.set_config(dataclasses.replace(w.training.config(), **t))


def metrics_points(w: MainWindow) -> int:
    data = w.curves.loss_plot.series_data()
    return len(data.get("train/lm", {}).get("step", []))


def wait_idle(qtbot, w: MainWindow, timeout: int = 60000) -> None:
    qtbot.waitUntil(lambda: not w.session.is_active(), timeout=timeout)


def test_whole_flow_corpus_to_attention_with_pause_resume_stop(window, qtbot):
    w = window
    # corpus: a built-in one, its statistics counted in the background
    w.corpus.use_builtin("toy")
    qtbot.waitUntil(lambda: not w.corpus.is_counting(), timeout=20000)
    stats = w.corpus.source_stats("builtin:toy")
    assert stats is not None and stats.chars > 100_000
    assert w.corpus.preview_sample()
    # tokenizer: trained in the background, the sample text shown as tokens
    w.tokenizer.train()
    qtbot.waitUntil(lambda: not w.tokenizer.is_training(), timeout=30000)
    tok = w.tokenizer.tokenizer()
    assert tok is not None and not w.tokenizer.is_stale()
    w.tokenizer.sample_edit.setPlainText("abc>abc")
    qtbot.waitUntil(lambda: w.tokenizer.strip.token_count() == 7, timeout=3000)
    # model: tiny, valid, numbers shown
    tiny(w, max_steps=5000)
    assert w.model.is_valid() and w.start_action.isEnabled()
    assert "k" in w.model.stat_labels["params"].text()

    assert w.start()
    assert not w.start_action.isEnabled() and not w.model.n_layer.isEnabled()
    qtbot.waitUntil(lambda: metrics_points(w) >= 10, timeout=60000)
    assert w.session.state == "running"
    qtbot.waitUntil(lambda: len(w.attention.entries) >= 2, timeout=20000)
    m = w.attention.heatmap.matrix()
    assert m.shape == (32, 32)
    np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-3)

    w.pause()
    qtbot.waitUntil(lambda: w.session.state == "paused", timeout=10000)
    assert w.resume_action.isEnabled() and not w.pause_action.isEnabled()
    qtbot.wait(300)
    w.curves.refresh()
    n = metrics_points(w)
    qtbot.wait(400)
    assert metrics_points(w) == n  # nothing trains while paused
    w.resume()
    qtbot.waitUntil(lambda: metrics_points(w) > n + 3, timeout=20000)
    assert w.session.state == "running"

    w.stop()
    wait_idle(qtbot, w)
    run_dir = Path(w.session.run_dir)
    assert list((run_dir / "checkpoints").glob("step_*.json")), "stopping saves a checkpoint"
    assert "stopped" in w.training.progress.format()
    assert w.start_action.isEnabled() and w.model.n_layer.isEnabled()
    # the timeline now also holds the snapshots on disk
    assert len(w.attention.entries) == len(list((run_dir / "attention").glob("step_*.safetensors")))


def test_a_failing_run_shows_the_error_and_the_next_run_works(window, qtbot, monkeypatch):
    from workbench.engine import trainer as trainer_mod

    w = window
    boxes = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "exec", lambda self: boxes.append(self) or 0)
    original = trainer_mod.Trainer._loop

    def boom(self):
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(trainer_mod.Trainer, "_loop", boom)
    tiny(w)
    assert w.start()
    wait_idle(qtbot, w)
    assert boxes, "a message box reports the failure"
    assert "the disk is on fire" in boxes[-1].text()
    assert "Traceback" in boxes[-1].detailedText() and "boom" in boxes[-1].detailedText()
    assert "the disk is on fire" in w.training.error.text()

    monkeypatch.setattr(trainer_mod.Trainer, "_loop", original)
    n_boxes = len(boxes)
    assert w.start_action.isEnabled()
    assert w.start()
    wait_idle(qtbot, w)
    assert len(boxes) == n_boxes
    assert "done: 30 steps" in w.training.progress.format()
    assert metrics_points(w) == 30
    # the finished run is listed on the Runs page and loaded where a trained model is studied
    assert w.runs.wait_for_list() and str(Path(w.session.run_dir).resolve()) in \
        [str(Path(r.path).resolve()) for r in w.runs.runs()]
    assert w.generate.wait() and w.generate.trained().step == 30
    assert w.evaluate.wait_idle() and w.evaluate.trained().step == 30

    # resume that run for 10 more steps: its settings fill the forms, its curves carry on
    run_dir = w.session.run_dir
    w.training.set_resume(run_dir)
    assert metrics_points(w) == 30
    w.training.set_config(dataclasses.replace(w.training.config(), max_steps=40))
    assert w.start()
    wait_idle(qtbot, w)
    assert len(boxes) == n_boxes, boxes[-1].text() if boxes else ""
    assert w.session.run_dir == run_dir and "done: 40 steps" in w.training.progress.format()
    assert metrics_points(w) == 40
    assert w.generate.wait() and w.generate.trained().step == 40  # the longer run replaces its shorter self


def test_a_run_folder_in_use_is_refused_with_a_visible_message(window, qtbot, monkeypatch, tmp_path):
    import os
    import socket

    from workbench.engine.ownership import RunLock

    w = window
    boxes = []

    def answer(box):  # the unsaved-changes question is answered Discard; other boxes just recorded
        boxes.append(box)
        discard = box.button(QtWidgets.QMessageBox.StandardButton.Discard)
        if discard is not None:
            discard.click()
        return 0

    monkeypatch.setattr(QtWidgets.QMessageBox, "exec", answer)
    tiny(w)
    folder = tmp_path / "busy"
    (folder / "checkpoints").mkdir(parents=True)
    w.experiment().save(folder / "config.toml")
    lock = RunLock.acquire(folder)  # as another training run holds it (flock: one holder per open file)
    try:
        w.training.set_resume(str(folder))
        assert w.start()
        wait_idle(qtbot, w)
    finally:
        lock.release()
    assert boxes, "a message box reports the refusal"
    text = boxes[-1].text()
    assert "another training run is writing to this folder" in text
    assert f"process {os.getpid()} on host {socket.gethostname()}" in text
    assert "another training run" in w.training.error.text()
    # nor does Save experiment write over a run's config.toml
    before = (folder / "config.toml").read_bytes()
    w.training.set_config(dataclasses.replace(w.training.config(), max_steps=77))
    assert not w.save_experiment_to(str(folder / "config.toml"))
    assert "inside the run folder" in boxes[-1].text() and (folder / "config.toml").read_bytes() == before


def test_closing_during_training_stops_saves_and_joins(window, qtbot, monkeypatch):
    w = window
    asked = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "question",
                        lambda *a, **k: asked.append(a) or QtWidgets.QMessageBox.StandardButton.Yes)
    tiny(w, max_steps=5000)
    assert w.start()
    qtbot.waitUntil(lambda: metrics_points(w) >= 3, timeout=60000)
    w.close()
    assert asked, "closing during a run asks first"
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=60000)
    assert not w.session.is_active()  # the worker thread ended and was joined
    assert w.session.last_result is not None and w.session.last_result.status == "stopped"
    run_dir = Path(w.session.run_dir)
    assert list((run_dir / "checkpoints").glob("step_*.json"))
    assert QtCore.QSettings(w.settings.fileName(), QtCore.QSettings.Format.IniFormat).value("window/rect")


def test_closing_can_be_cancelled(window, qtbot, monkeypatch):
    w = window
    monkeypatch.setattr(QtWidgets.QMessageBox, "question",
                        lambda *a, **k: QtWidgets.QMessageBox.StandardButton.No)
    tiny(w, max_steps=5000)
    w.start()
    qtbot.waitUntil(lambda: w.session.state == "running", timeout=60000)
    w.close()
    assert w.isVisible() and w.session.is_active()
    w.stop()
    wait_idle(qtbot, w)


def step_events(start: int, n: int, max_steps: int = 100) -> list[ev.StepMetrics]:
    return [ev.StepMetrics(step=s, max_steps=max_steps, tokens=s * 256, elapsed=s * 0.1, loss=4.0 - s * 0.01,
                           losses={"lm": 4.0 - s * 0.01}, lr=1e-3, grad_norm=0.5, tokens_per_s=2560.0)
            for s in range(start, start + n)]


def test_panels_show_synthetic_events(window, qtbot, monkeypatch):
    w = window
    boxes = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "exec", lambda self: boxes.append(self) or 0)
    batch = MetricsBatch.from_events(step_events(1, 20))
    w.session.started.emit(ev.RunStarted(run_dir="/tmp/x", device="cpu", precision="fp32", params=12345,
                                         start_step=0, max_steps=100, tokens_per_step=256, vocab_size=40,
                                         speed="compiled bf16: 1.52x eager fp32, measured on this machine",
                                         compiled=True, compile_seconds=12.5))
    # the engine's speed choice and its reason, beside the device and precision settings
    assert w.training.speed_label.text() == "compiled bf16: 1.52x eager fp32, measured on this machine"
    w.session.metrics.emit(batch)
    w.session.evaluated.emit(ev.EvalResult(step=20, tokens=5120, elapsed=2.0, losses={"lm": 3.5},
                                           metrics={"lm/ppl": 33.1}))
    w.curves.refresh(force=True)
    assert set(w.curves.loss_plot.series_names()) == {"train/lm", "val/lm"}
    assert metrics_points(w) == 20
    assert "3.500" in w.curves.headline.text()
    assert w.training.progress.value() == 20 and "20 / 100" in w.training.progress.format()
    assert "2,560 tokens/s" in w.training.progress_labels["speed"].text()
    assert w.model.stat_labels["params"].text()  # vocabulary from the run reached the model panel

    rng = np.random.default_rng(0)
    a = rng.random((2, 3, 5, 5)).astype(np.float32)
    a /= a.sum(-1, keepdims=True)
    tokens = list("hello")
    w.attention.add_snapshot(ev.AttentionSnapshot(step=10, tokens=tokens, ids=[1, 2, 3, 3, 4], attention=a))
    w.attention.add_snapshot(ev.AttentionSnapshot(step=20, tokens=tokens, ids=[1, 2, 3, 3, 4], attention=a[::-1]))
    assert w.attention.timeline.maximum() == 1 and w.attention.current().step == 20
    np.testing.assert_allclose(w.attention.heatmap.matrix(), a[1, 0])
    w.attention.grid.headSelected.emit(1, 2)
    np.testing.assert_allclose(w.attention.heatmap.matrix(), a[0, 2])  # step 20 holds a reversed
    w.attention.timeline.setValue(0)
    assert w.attention.current().step == 10 and not w.attention.follow_check.isChecked()
    np.testing.assert_allclose(w.attention.heatmap.matrix(), a[1, 2])
    w.attention.head_combo.setCurrentIndex(3)  # the average of the heads
    np.testing.assert_allclose(w.attention.heatmap.matrix(), a[1].mean(0), rtol=1e-5)
    sharp = np.zeros((2, 3, 5, 5), np.float32)
    sharp[:] = 0.2
    sharp[1, 1] = np.eye(5)
    w.attention.follow_check.setChecked(True)
    w.attention.add_snapshot(ev.AttentionSnapshot(step=30, tokens=tokens, ids=[1, 2, 3, 3, 4], attention=sharp))
    w.attention.show_sharpest_head()
    np.testing.assert_allclose(w.attention.heatmap.matrix(), np.eye(5))

    w.session.failed.emit(ev.Failed(step=3, message="out of memory", details="Traceback ..."))
    assert boxes[-1].text() == "out of memory" and boxes[-1].detailedText() == "Traceback ..."
    assert "out of memory" in w.training.error.text()


def test_the_speed_settings_go_to_the_experiment_and_back(window):
    t = window.training
    cfg = t.config()
    assert cfg.compile == "off"  # the demo the window opens with: no speed probe before it trains
    t.set_config(dataclasses.replace(cfg, compile="auto"))
    assert t.compile_combo.currentData() == "auto" and t.config().compile == "auto"
    t.compile_combo.setCurrentIndex(t.compile_combo.findData("on"))
    assert t.config().compile == "on"
    assert "C++ compiler" in t.compile_combo.toolTip()
    # the attention kernel, the third lever, makes the same round trip
    t.set_config(dataclasses.replace(cfg, attention="explicit"))
    assert t.attention_combo.currentText() == "Written out" and t.config().attention == "explicit"
    t.attention_combo.setCurrentIndex(t.attention_combo.findData("auto"))
    assert t.config().attention == "auto"
    assert "sdpa" in t.attention_combo.toolTip()


def test_metrics_are_batched_and_ordered(qapp):
    session = TrainingSession()
    got = []
    session.metrics.connect(lambda b: got.append(("metrics", b)))
    session.evaluated.connect(lambda e: got.append(("eval", e)))
    now = [0.0]
    rep = SignalReporter(session, session.mailbox, interval=0.1, clock=lambda: now[0])
    events = step_events(1, 50)
    for e in events[:30]:
        rep.report(e)
    assert [len(b) for _, b in got] == [1]  # the first at once, the next 29 wait for the clock
    now[0] = 0.05
    rep.report(events[30])
    assert len(got) == 1
    now[0] = 0.2
    rep.report(events[31])
    assert [len(b) for _, b in got] == [1, 31]
    rep.report(events[32])
    rep.report(ev.EvalResult(step=33, tokens=0, elapsed=0.0, losses={"lm": 1.0}))
    assert [k for k, _ in got] == ["metrics", "metrics", "metrics", "eval"]  # pending metrics first
    assert got[2][1].step.tolist() == [33]
    # attention: a one-slot mailbox, the newest wins
    snaps = [ev.AttentionSnapshot(s, ["a"], [1], np.ones((1, 1, 1, 1), np.float32)) for s in (5, 10)]
    for s in snaps:
        rep.report(s)
    assert session.take_attention().step == 10 and session.take_attention() is None


def test_model_panel_flags_heads_that_do_not_divide_the_width(window, qtbot):
    w = window
    w.model.set_config(ModelConfig(n_layer=2, n_head=4, n_embd=30, block_size=32))
    assert not w.model.is_valid()
    assert not w.model.error.isHidden() and "30" in w.model.error.text() and "4 heads" in w.model.error.text()
    assert not w.start_action.isEnabled()
    assert not w.start()
    w.model.n_embd.setValue(32)
    assert w.model.is_valid() and w.model.error.isHidden() and w.start_action.isEnabled()


def test_corpus_errors_show_on_their_row_and_the_rest_keeps_working(window, qtbot, tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("hello world\n" * 50, encoding="utf-8")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine so far \xff\xfe broken")
    data = tmp_path / "data.jsonl"
    data.write_text('{"body": "a text", "id": 1}\n{"body": "another", "id": 2}\n', encoding="utf-8")
    w = window
    w.corpus.add_paths([str(good), str(bad), str(data)])
    qtbot.waitUntil(lambda: not w.corpus.is_counting(), timeout=20000)
    assert w.corpus.source_stats(str(good)).lines == 50
    assert "UTF-8" in w.corpus.source_error(str(bad))
    assert "body" in w.corpus.source_error(str(data))  # no "text" field: the message names the fields
    assert [w.corpus.field_combo.itemText(i) for i in range(w.corpus.field_combo.count())] == ["body", "id"]
    row = w.corpus.sources().index(str(bad))
    shown = w.corpus.table.cellWidget(row, 1)
    assert "UTF-8" in shown.text() and str(bad) not in shown.text()  # the row already names the file
    assert "error" in w.corpus.summary()


def test_experiment_files_recent_list_and_command_line(window, tmp_path):
    w = window
    tiny(w, max_steps=123)
    path = tmp_path / "exp.toml"
    assert w.save_experiment_to(str(path))
    assert w.recent_experiments()[0] == str(path.resolve())
    w.open_experiment("demo_toy")
    from workbench.engine.config import resolve_experiment

    assert w.training.config() == resolve_experiment("demo_toy").training  # the forms show the preset
    assert w.open_experiment(str(path))
    assert w.training.config().max_steps == 123 and w.model.config() == TINY_MODEL

    w.open_experiment("demo_toy")
    tiny(w, learning_rate=0.002)
    w.training.set_name("my run")
    cmd = w.copy_command()
    assert cmd == QtWidgets.QApplication.clipboard().text()
    args = shlex.split(cmd)
    assert args[:3] == ["workbench", "train", "demo_toy"]
    sets = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    assert resolve_experiment("demo_toy").with_overrides(sets) == w.experiment()
    assert "--resume" in command_line("x", w.experiment(), w.experiment(), resume="/runs/a b")


def test_presentation_mode_and_demo_preset(window, qtbot):
    w = window
    base = QtWidgets.QApplication.font().pointSizeF()
    w.set_presentation(True)
    assert QtWidgets.QApplication.font().pointSizeF() > base * 1.3
    assert w.curves.loss_plot.presentation() > 1.3
    w.set_presentation(False)
    assert QtWidgets.QApplication.font().pointSizeF() == pytest.approx(theme.BASE_POINT_SIZE)
    assert w.run_demo()
    assert w.current_panel() == "curves" and w.training.name() == "demo-toy"
    w.stop()
    wait_idle(qtbot, w)


def test_workbench_without_a_subcommand_opens_the_window(qapp, qtbot, tmp_path, monkeypatch, shared_cache):
    from workbench import cli

    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(shared_cache))
    QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, str(tmp_path))
    QtCore.QSettings.setPath(QtCore.QSettings.Format.NativeFormat, QtCore.QSettings.Scope.UserScope, str(tmp_path))
    seen = []

    def close_it():
        windows = [x for x in QtWidgets.QApplication.topLevelWidgets() if isinstance(x, MainWindow) and x.isVisible()]
        seen.extend(windows)
        for x in windows:
            x.close()

    QtCore.QTimer.singleShot(1500, close_it)
    assert cli.main([]) == 0
    assert seen and seen[0].training.name() == "demo-toy"  # ready to train on a built-in corpus
