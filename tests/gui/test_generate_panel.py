"""The generation playground: the panel shows exactly what the engine's generate() yields, from a
checkpoint and from the live model of a paused run, with each token's attention one click away."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6 import QtCore

from workbench.engine.config import Experiment
from workbench.engine.generate import SamplingSettings, generate
from workbench.engine.loading import load_trained
from workbench.gui.bridge import TrainingSession
from workbench.gui.panels.generate.attention import MEAN, heat_color
from workbench.gui.panels.generate.page import GeneratePanel, prob_color

torch.set_num_threads(1)

TINY = ["model.n_layer=2", "model.n_head=2", "model.n_embd=16", "model.block_size=32",
        "training.batch_size=2", "training.threads=1", 'training.device="cpu"', "training.eval_every=0",
        "training.attention_every=0", "training.warmup_steps=0", "training.checkpoint_every=0"]
PROMPT = "abc<"


def tiny_experiment(steps: int) -> Experiment:
    return Experiment(name="tiny").with_overrides(TINY + [f"training.max_steps={steps}",
                                                          'corpus.paths=["builtin:toy"]'])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A run folder of a 2-layer model trained for a few steps on the built-in toy corpus."""
    from workbench.engine.trainer import Trainer

    root = tmp_path_factory.mktemp("gen")
    with pytest.MonkeyPatch.context() as mp:  # module scope: keep caches out of the user's folders
        mp.setenv("WORKBENCH_DATA_DIR", str(root / "data"))
        mp.setenv("WORKBENCH_CACHE_DIR", str(root / "cache"))
        result = Trainer(tiny_experiment(3), run_dir=root / "run").run()
    assert result.status == "completed"
    return root / "run"


def shown(qtbot, widget, w=1200, h=850):
    qtbot.addWidget(widget)
    widget.resize(w, h)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def fill(panel: GeneratePanel, **values) -> None:
    s = dict(temperature="0", top_k="0", top_p="1.0", max_tokens="12", seed="0")
    s.update({k: str(v) for k, v in values.items()})
    for name, text in s.items():
        panel.fields[name].setText(text)


def click_token(qtbot, panel: GeneratePanel, index: int) -> None:
    """A real mouse click on the chip of the strip (scrolled into view first)."""
    rect = panel.strip.box_rects()[index]
    panel.out_scroll.ensureVisible(int(rect.center().x()), int(rect.center().y()))
    qtbot.mouseClick(panel.strip, QtCore.Qt.MouseButton.LeftButton, pos=rect.center().toPoint())


def engine_tokens(model, tokenizer, settings):
    return list(generate(model, tokenizer, PROMPT, settings, attention="all"))


def test_checkpoint_generation_is_the_engines_and_shows_attention(qtbot, tiny_run):
    panel = shown(qtbot, GeneratePanel())
    assert not panel.generate_button.isEnabled() and "No checkpoint" in panel.source_label.text()
    panel.set_run(tiny_run)
    assert panel.wait()
    assert panel.trained() is not None and panel.trained().step == 3
    assert "step 3" in panel.source_label.text() and "checkpoint" in panel.source_label.text().lower()
    assert panel.summary() == "step 3"

    # greedy, 40 tokens: more than the 32-token context, so the window slides
    fill(panel, max_tokens=40)
    panel.eos_check.setChecked(False)
    panel.prompt_edit.setPlainText(PROMPT)
    qtbot.mouseClick(panel.generate_button, QtCore.Qt.MouseButton.LeftButton)
    assert panel.is_generating()
    assert panel.wait()
    assert not panel.is_generating() and panel.generate_button.isEnabled()

    tm = load_trained(tiny_run)
    expected = engine_tokens(tm.model, tm.tokenizer, SamplingSettings(max_tokens=40, temperature=0, seed=0,
                                                                      stop_at_eos=False))
    got = panel.generated_tokens()
    assert [t.id for t in got] == [t.id for t in expected] and len(got) == 40
    assert [t.text for t in got] == [t.text for t in expected]
    assert np.allclose([t.model_prob for t in got], [t.model_prob for t in expected])
    prompt_ids = tm.tokenizer.encode(PROMPT)
    assert panel.strip.ids() == prompt_ids + [t.id for t in expected]
    assert panel.strip.tokens() == tm.tokenizer.token_texts(prompt_ids) + [t.text for t in expected]
    # prompt chips grey, generated chips coloured by the model's probability
    colors = panel.strip.box_colors()
    assert len({c.name() for c in colors[:len(prompt_ids)]}) == 1
    for c, t in zip(colors[len(prompt_ids):], expected):
        assert c.name() == prob_color(t.model_prob).name()
    assert "model's probability" in panel.strip.tooltip_text(len(prompt_ids))
    assert panel.summary() == "step 3 · 40 tokens"
    assert "40 tokens from checkpoint" in panel.status_label.text()
    assert "checkpoint, step 3" in panel.output_box.title()

    # clicking the first generated token: last layer, mean of heads = the engine's attention
    first = len(prompt_ids)
    click_token(qtbot, panel, first)
    assert panel.selected_token() is got[0]
    row = panel.attention_row()
    assert row.shape == (len(prompt_ids),)
    assert np.allclose(row, expected[0].attention, atol=1e-6)
    assert abs(float(row.sum()) - 1.0) < 1e-4
    assert panel.attention.heat.tokens() == tm.tokenizer.token_texts(prompt_ids)
    assert np.allclose(panel.attention.bars.opts["height"], row)
    top = row.max()
    assert [c.name() for c in panel.attention.heat.box_colors()] == [heat_color(w, top).name() for w in row]
    assert panel.attention.layer_combo.currentText() == "layer 1" and panel.attention.head_combo.currentText() == "mean of heads"

    # a late token: its context is the last 32 tokens only
    last = len(panel.strip.tokens()) - 1
    click_token(qtbot, panel, last)
    tok = expected[-1]
    assert tok.context_start > 0
    row = panel.attention_row()
    assert row.shape == (32,) and np.allclose(row, tok.attention, atol=1e-6)
    assert panel.attention_tokens() == panel.strip.tokens()[tok.context_start:tok.position]
    assert panel.attention.heat.tokens() == panel.attention_tokens()
    assert "context window starts" in panel.attention.caption.text()
    # another layer and head, through the pickers
    panel.attention.layer_combo.setCurrentIndex(0)
    panel.attention.head_combo.setCurrentIndex(1)
    row = panel.attention_row()
    assert np.allclose(row, tok.attention_all[0, 1], atol=1e-6) and abs(float(row.sum()) - 1) < 1e-4
    assert np.allclose(panel.attention.bars.opts["height"], tok.attention_all[0, 1], atol=1e-6)
    panel.attention.head_combo.setCurrentIndex(2)
    assert np.allclose(panel.attention_row(), tok.attention_all[0].mean(0), atol=1e-6)
    panel.set_head(1, 0)
    assert panel.attention.layer_combo.currentIndex() == 1 and panel.attention.head_combo.currentIndex() == 0
    assert np.allclose(panel.attention_row(), tok.attention_all[1, 0], atol=1e-6)
    panel.set_head(-1, MEAN)

    # a prompt token has no attention row and says why
    click_token(qtbot, panel, 1)
    assert panel.attention_row() is None and panel.attention.heat.token_count() == 0
    assert "prompt" in panel.attention.caption.text()

    # sampling with a seed is reproducible and equal to the engine's
    fill(panel, temperature=1.3, top_k=5, top_p=0.9, max_tokens=15, seed=7)
    assert panel.generate() and panel.wait()
    settings = SamplingSettings(max_tokens=15, temperature=1.3, top_k=5, top_p=0.9, seed=7, stop_at_eos=False)
    assert [t.id for t in panel.generated_tokens()] == [t.id for t in engine_tokens(tm.model, tm.tokenizer, settings)]
    assert panel.selected_token() is None and panel.attention_row() is None  # a new output clears the choice


def test_bad_settings_show_a_message_and_do_not_start(qtbot, tiny_run):
    panel = shown(qtbot, GeneratePanel())
    panel.set_run(tiny_run)
    assert panel.wait()
    panel.prompt_edit.setPlainText(PROMPT)
    fill(panel, max_tokens=5)
    assert panel.generate() and panel.wait()
    before = panel.strip.ids()

    cases = [("top_p", "0", "top_p"), ("temperature", "-0.5", "temperature"), ("top_k", "-1", "top_k"),
             ("max_tokens", "ten", "max_tokens"), ("seed", "1.5", "seed"), ("top_p", "1.5", "top_p")]
    for field, text, named in cases:
        fill(panel, max_tokens=5)
        panel.fields[field].setText(text)
        assert panel.error.isVisibleTo(panel) and panel.error.text().startswith(f"{named} = ")  # shown as typed
        assert "border" in panel.fields[field].styleSheet()
        qtbot.mouseClick(panel.generate_button, QtCore.Qt.MouseButton.LeftButton)
        assert not panel.is_generating() and panel.strip.ids() == before, field
        assert not panel.generate()
        assert panel.error.text().startswith(f"{named} = ")
    fill(panel, max_tokens=5)
    assert not panel.error.isVisibleTo(panel) and all(not e.styleSheet() for e in panel.fields.values())

    # a blank (or "random") seed is allowed: not reproducible, but it runs (all the way: an unseeded
    # sample could otherwise draw <|endoftext|> and end early)
    panel.eos_check.setChecked(False)
    for seed in ("", "random"):
        fill(panel, max_tokens=4, temperature=1.0, seed=seed)
        assert panel.settings().seed is None
        assert panel.generate() and panel.wait()
        assert len(panel.generated_tokens()) == 4

    # the live source without a paused run: a message, nothing starts
    panel.set_source("live")
    assert not panel.generate_button.isEnabled()
    assert not panel.generate() and "pause" in panel.error.text().lower()

    # a folder that is no run: said inline, the panel keeps working
    panel.set_run(tiny_run.parent)
    panel.wait()
    assert "Could not load" in panel.error.text()


def test_stop_cancels_a_generation(qtbot, tiny_run):
    panel = shown(qtbot, GeneratePanel())
    panel.set_run(tiny_run)
    assert panel.wait()
    fill(panel, temperature=1.0, max_tokens=100000)
    panel.eos_check.setChecked(False)
    assert panel.generate()
    qtbot.waitUntil(lambda: len(panel.generated_tokens()) > 0, timeout=30000)  # streamed while it runs
    assert panel.is_generating() and panel.stop_button.isEnabled()
    qtbot.mouseClick(panel.stop_button, QtCore.Qt.MouseButton.LeftButton)
    assert panel.wait()
    n = len(panel.generated_tokens())
    assert not panel.is_generating() and 0 < n < 100000
    assert "Stopped after" in panel.status_label.text() and "stopped" in panel.status_label.text()
    assert panel.generate_button.isEnabled() and not panel.stop_button.isEnabled()
    assert panel.summary() == f"step 3 · {n:,} tokens"
    assert len(panel.strip.ids()) == panel.prompt_count() + n


def test_live_model_of_a_paused_run(qtbot, tmp_path):
    STEPS = 60
    session = TrainingSession()
    panel = shown(qtbot, GeneratePanel())
    panel.set_session(session)
    assert not panel.live_radio.isEnabled()
    session.start(tiny_experiment(STEPS), run_dir=tmp_path / "live", default_threads=1)
    session.pause()
    try:
        # the worker blocks first; the page hears of it with the session's queued "paused" signal
        qtbot.waitUntil(lambda: panel.live_available() and panel.live_radio.isEnabled(), timeout=120000)
        assert session.state == "paused"
        assert panel.source() == "live"  # nothing else loaded: the run
        assert "live model of the paused run, step 0" in panel.source_label.text()
        model, tokenizer, step = session.live_model()
        assert step == 0 and model.training  # the trainer's own model, in train mode

        fill(panel, max_tokens=10)
        panel.eos_check.setChecked(False)
        panel.prompt_edit.setPlainText(PROMPT)
        assert panel.generate() and panel.wait()
        got = panel.generated_tokens()
        expected = engine_tokens(model, tokenizer, SamplingSettings(max_tokens=10, temperature=0, seed=0,
                                                                    stop_at_eos=False))
        assert [t.id for t in got] == [t.id for t in expected] and len(got) == 10
        click_token(qtbot, panel, panel.prompt_count() + 3)
        assert np.allclose(panel.attention_row(), expected[3].attention, atol=1e-6)
        assert model.training  # given back in the mode the trainer had it
        assert "live model" in panel.status_label.text() and "live model" in panel.output_box.title()
        assert panel.summary() == "step 0 · 10 tokens"

        # while the model is lent, a resume is answered but the worker does not train
        before = [p.detach().clone() for p in model.parameters()]
        with session.hold_live_model() as lent:
            assert lent is not None and lent[0] is model
            session.resume()
            assert session.live_model() is None
            qtbot.wait(300)  # events flow; the worker is waiting for the lock
            assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
        session.pause()
        qtbot.waitUntil(lambda: panel.live_available() and session.live_model()[2] > 0, timeout=60000)
        assert panel.generate_button.isEnabled()
        assert f"step {session.live_model()[2]:,}" in panel.source_label.text()

        # resuming while it generates: the generation is cancelled first, then the run goes on
        fill(panel, temperature=1.0, max_tokens=100000)
        assert panel.generate()
        qtbot.waitUntil(lambda: len(panel.generated_tokens()) > 0, timeout=30000)
        session.resume()
        assert session.live_model() is None  # at once: the model is not lent any more
        assert panel.wait()
        assert not panel.is_generating() and len(panel.generated_tokens()) < 100000
        qtbot.waitUntil(lambda: not session.is_active(), timeout=120000)
        assert session.last_result.status == "completed" and session.last_result.step == STEPS
        assert "Stopped after" in panel.status_label.text()
        assert not panel.live_available() and not panel.generate_button.isEnabled()
        assert not panel.generate() and "pause" in panel.error.text().lower()
    finally:
        session.stop()
        session.wait(60000)


def test_a_long_output_scrolls_and_the_wheel_reaches_its_end(qtbot):
    """QScrollArea reads height-for-width from the strip's size policy: without it the strip was
    squeezed into the viewport (about 4 lines, no scroll bar, the wheel did nothing)."""
    from PySide6 import QtGui

    panel = GeneratePanel()
    qtbot.addWidget(panel)
    panel.resize(900, 800)
    panel.show()
    tokens = [f"word{i} " for i in range(600)]
    panel.strip.set_tokens(tokens, list(range(600)))
    qtbot.wait(50)
    viewport = panel.out_scroll.viewport()
    bar = panel.out_scroll.verticalScrollBar()
    assert panel.strip.height() >= panel.strip.heightForWidth(viewport.width()) > viewport.height()
    assert bar.maximum() > 0
    bar.setValue(0)
    pos = QtCore.QPointF(viewport.width() / 2, viewport.height() / 2)
    wheel = QtGui.QWheelEvent(pos, viewport.mapToGlobal(pos), QtCore.QPoint(0, 0), QtCore.QPoint(0, -120 * 20),
                              QtCore.Qt.MouseButton.NoButton, QtCore.Qt.KeyboardModifier.NoModifier,
                              QtCore.Qt.ScrollPhase.NoScrollPhase, False)
    QtCore.QCoreApplication.sendEvent(viewport, wheel)
    assert bar.value() > 0


def test_ctrl_return_in_the_prompt_generates_inside_a_scrolling_page(qtbot, tiny_run):
    """The placeholder promises "Ctrl+Enter generates", but in the window the toolbar's Start
    (Ctrl+Return) made the edit's shortcut ambiguous, so neither fired. The edit now claims the
    keys itself: they generate and do not start a training run."""
    from PySide6 import QtGui, QtWidgets

    panel = GeneratePanel()
    page = QtWidgets.QScrollArea()  # as in the window: every page sits in a scroll area
    page.setWidgetResizable(True)
    page.setWidget(panel)
    started = []
    start = QtGui.QAction("Start", page)  # the window's Start action has the same keys
    start.setShortcut(QtGui.QKeySequence("Ctrl+Return"))
    start.triggered.connect(lambda: started.append(True))
    page.addAction(start)
    shown(qtbot, page)
    panel.set_run(tiny_run)
    assert panel.wait()
    fill(panel, max_tokens=5)
    for key in (QtCore.Qt.Key.Key_Return, QtCore.Qt.Key.Key_Enter):
        panel.prompt_edit.setPlainText(PROMPT)
        panel.prompt_edit.setFocus()
        qtbot.waitUntil(panel.prompt_edit.hasFocus)
        panel.strip.set_tokens([], [])
        qtbot.keyClick(panel.prompt_edit, key, QtCore.Qt.KeyboardModifier.ControlModifier)
        assert panel.wait()
        assert len(panel.generated_tokens()) == 5
        assert panel.prompt_edit.toPlainText() == PROMPT  # no newline typed into the prompt
    assert not started


def test_presentation_mode_keeps_several_lines_of_output_in_view(qtbot):
    panel = shown(qtbot, GeneratePanel())
    normal = panel.out_scroll.minimumHeight()
    panel.set_presentation(1.45)
    lines = panel.out_scroll.minimumHeight() / (panel.strip.fontMetrics().lineSpacing() * 1.45)
    assert panel.out_scroll.minimumHeight() > 1.8 * normal and lines >= 4
