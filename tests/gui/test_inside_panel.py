"""The Inside page shows what engine.interpret measures: every head's effect, the probe with heads
switched off by real clicks, the logit lens, and one token's attention across a run's snapshots."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6 import QtCore

from tests.copy_model import P, copied_positions, copy_head, copy_tokenizer, train_copy_model
from workbench.engine import interpret
from workbench.engine.config import Experiment
from workbench.gui.panels.inside_panel import InsidePanel

PROBE = "hbacgfeihbacgfei"  # 8 letters, then the same 8 again


@pytest.fixture(scope="module")
def copy_run(tmp_path_factory):
    from workbench.engine.gpt2_interop import export_gpt2, import_gpt2

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("inside")
    model, tok = train_copy_model(), copy_tokenizer()
    return import_gpt2(export_gpt2(model, tok, root / "hf"), root / "run"), model, tok


@pytest.fixture(scope="module")
def snapshot_run(tmp_path_factory):
    """A tiny real run with attention snapshots every 2 steps."""
    from workbench.engine.trainer import Trainer

    root = tmp_path_factory.mktemp("inside-hist")
    exp = Experiment(name="hist").with_overrides([
        "model.n_layer=2", "model.n_head=2", "model.n_embd=16", "model.block_size=32", "training.batch_size=2",
        "training.threads=1", 'training.device="cpu"', "training.eval_every=0", "training.attention_every=2",
        "training.max_steps=6", 'corpus.paths=["builtin:toy"]', 'training.probe_text="abc<cba>"'])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_DATA_DIR", str(root / "data"))
        mp.setenv("WORKBENCH_CACHE_DIR", str(root / "cache"))
        assert Trainer(exp, run_dir=root / "run").run().status == "completed"
    return root / "run"


def shown(qtbot, widget, w=1100, h=800):
    qtbot.addWidget(widget)
    widget.resize(w, h)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def test_head_effects_and_a_clicked_knock_out_are_the_engines(qtbot, copy_run):
    run, model, tok = copy_run
    panel = shown(qtbot, InsidePanel())
    qtbot.mouseClick(panel.measure_button, QtCore.Qt.MouseButton.LeftButton)
    assert "No model yet" in panel.error.text()          # said, not silently ignored
    panel.set_run(run)
    assert panel.wait(30000)
    panel.probe_edit.setText(PROBE)
    qtbot.mouseClick(panel.measure_button, QtCore.Qt.MouseButton.LeftButton)
    assert panel.wait(60000) and panel.error.text() == ""
    ids = tok.encode(PROBE)
    expected = interpret.ablation_table(model, [ids])
    np.testing.assert_allclose(panel.heads_view.matrix(), expected.delta, atol=1e-5)
    head = copy_head(model, torch.tensor([ids]))
    assert f"Head 0.{head} matters most" in panel.knockout_label.text()
    assert panel.summary().endswith(f"head 0.{head} matters most")  # the sidebar line says it too

    # a real click on the copy head's cell switches it off
    rect = panel.heads_view.cell_rect(0, head)
    qtbot.mouseClick(panel.heads_view, QtCore.Qt.MouseButton.LeftButton, pos=rect.center().toPoint())
    assert panel.wait(30000)
    assert panel.knocked_out_heads() == [(0, head)] and panel.heads_view.marked() == {(0, head)}
    assert f"Switched off: 0.{head}" in panel.knockout_label.text()
    after = interpret.knock_out(model, tok, ids, [(0, head)])
    colors = panel.probe_strip.box_colors()
    worse = [t + 1 for t in copied_positions() if after.losses[t] > after.base_losses[t] + 0.5]
    assert len(worse) >= P // 2
    assert all(colors[i].red() > colors[i].blue() for i in worse)      # harder to predict: red
    assert "switched off: predicts" in panel.probe_strip.tooltip_text(worse[0])
    # the logit lens' last row is the model's own prediction
    lens = interpret.logit_lens(model, tok, ids)
    assert panel.lens_table.rowCount() == 2
    assert panel.lens_texts()[-1] == [repr(t)[1:-1] for t in lens.top_texts[-1]]
    # switch it back on
    qtbot.mouseClick(panel.clear_button, QtCore.Qt.MouseButton.LeftButton)
    assert panel.wait(30000) and panel.knocked_out_heads() == [] and panel.heads_view.marked() == set()


def test_a_clicked_token_shows_its_attention_in_every_snapshot(qtbot, snapshot_run):
    panel = shown(qtbot, InsidePanel())
    panel.set_run(snapshot_run)
    assert panel.wait(30000)
    assert panel.probe_edit.text() == "abc<cba>"          # the run's own probe text
    tokens = panel.history_strip.tokens()
    assert len(tokens) == 8
    panel.tabs.setCurrentIndex(2)
    query = 5
    rect = panel.history_strip.box_rects()[query]
    qtbot.mouseClick(panel.history_strip, QtCore.Qt.MouseButton.LeftButton, pos=rect.center().toPoint())
    assert panel.wait(30000)
    hist = interpret.attention_history(snapshot_run, query)
    assert hist.steps == [0, 2, 4, 6]
    panel.layer_combo.setCurrentIndex(0)
    panel.head_combo.setCurrentIndex(1)
    shown_rows = panel.history_view.matrix()
    np.testing.assert_allclose(shown_rows, hist.rows[:, 0, 1, :query + 1], atol=1e-6)
    assert panel.history_view.labels()[0] == ["0", "2", "4", "6"]
    assert "layer 0 head 1" in panel.history_label.text()


def test_a_paused_run_is_looked_at_with_its_own_probe_and_snapshots_and_later_steps_are_flagged(qtbot, tmp_path):
    from workbench.gui.bridge import TrainingSession

    session = TrainingSession()
    panel = shown(qtbot, InsidePanel())
    panel.set_session(session)
    exp = Experiment(name="live").with_overrides([
        "model.n_layer=2", "model.n_head=2", "model.n_embd=16", "model.block_size=32", "training.batch_size=2",
        "training.threads=1", 'training.device="cpu"', "training.eval_every=0", "training.attention_every=2",
        "training.max_steps=400", 'corpus.paths=["builtin:toy"]', 'training.probe_text="abc<cba>"'])
    session.start(exp, run_dir=tmp_path / "live", default_threads=1)
    try:
        qtbot.waitUntil(lambda: session.state == "running" and len(list((tmp_path / "live" / "attention")
                                                                        .glob("*.safetensors"))) >= 2,
                        timeout=120000)
        session.pause()
        qtbot.waitUntil(panel.live_available, timeout=60000)
        assert panel.live_radio.isChecked()                      # nothing else loaded: the paused run
        assert panel.history_strip.tokens()[:3] == ["a", "b", "c"]   # its snapshots, for Across training
        assert panel.probe_edit.text() == ""
        qtbot.mouseClick(panel.measure_button, QtCore.Qt.MouseButton.LeftButton)
        assert panel.wait(60000) and panel.error.text() == ""
        assert panel.probe_edit.text() == "abc<cba>"              # empty: the run's own probe text
        step = panel._result["step"]
        assert not panel.stale_label.isVisible()
        session.resume()
        qtbot.waitUntil(lambda: session.state == "running", timeout=30000)
        qtbot.wait(300)
        session.pause()
        qtbot.waitUntil(lambda: panel.live_available() and session.live_model()[2] > step, timeout=60000)
        qtbot.waitUntil(panel.stale_label.isVisible, timeout=10000)  # the paused signal updates the page
        assert f"of step {step:,}" in panel.stale_label.text()
    finally:
        session.stop()
        session.wait(60000)
