"""Views that tell the truth during a run: the attention timeline, the task balance headline, the
Fine-tune page (its summary, its plan's marker), the sidebar, smoothing, the Runs page, Generate."""

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets
from PySide6.QtTest import QTest

from workbench.engine import events as ev
from workbench.gui.panels.attention_panel import AttentionPanel


def shown(qtbot, widget, w=1300, h=850):
    qtbot.addWidget(widget)
    widget.resize(w, h)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def snapshot(step: int, T: int = 5) -> ev.AttentionSnapshot:
    rng = np.random.default_rng(step)
    a = np.tril(rng.random((2, 2, T, T))).astype(np.float32) + np.eye(T, dtype=np.float32)
    a /= a.sum(-1, keepdims=True)
    return ev.AttentionSnapshot(step=step, tokens=list("abcde")[:T], ids=list(range(T)), attention=a)


def click(widget: QtWidgets.QWidget, pos: QtCore.QPoint | None = None) -> None:
    QTest.mouseClick(widget, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier,
                     pos if pos is not None else widget.rect().center())


# ---------------------------------------------------------------------------------------------
# attention timeline


def _handle_center(slider: QtWidgets.QSlider) -> QtCore.QPoint:
    opt = QtWidgets.QStyleOptionSlider()
    slider.initStyleOption(opt)
    return slider.style().subControlRect(QtWidgets.QStyle.ComplexControl.CC_Slider, opt,
                                         QtWidgets.QStyle.SubControl.SC_SliderHandle, slider).center()


@pytest.mark.parametrize("how", ["keys", "drag"])
def test_scrubbing_the_timeline_stops_following_and_ticking_jumps_to_the_newest(qtbot, how):
    panel = shown(qtbot, AttentionPanel())
    for step in (0, 10, 20, 30):
        panel.add_snapshot(snapshot(step))
    assert panel.follow_check.isChecked() and panel.current().step == 30
    slider = panel.timeline
    if how == "keys":
        slider.setFocus()
        QTest.keyClick(slider, QtCore.Qt.Key.Key_Left)
        QTest.keyClick(slider, QtCore.Qt.Key.Key_Left)
        assert panel.current().step == 10
    else:
        start = _handle_center(slider)
        QTest.mousePress(slider, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier, start)
        for x in np.linspace(start.x(), 2, 12):
            QTest.mouseMove(slider, QtCore.QPoint(int(x), start.y()))
        QTest.mouseRelease(slider, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier,
                           QtCore.QPoint(2, start.y()))
        assert panel.current().step == 0
    assert not panel.follow_check.isChecked()
    held = panel.current().step
    # the next snapshot of the run does not pull the view away from what the person chose
    panel.add_snapshot(snapshot(40))
    assert panel.current().step == held and slider.maximum() == 4
    assert f"of {len(panel.entries)}" in panel.step_label.text()
    # ticking Follow live again jumps to the newest, and the next one is followed
    click(panel.follow_check, QtCore.QPoint(8, panel.follow_check.height() // 2))
    assert panel.follow_check.isChecked() and panel.current().step == 40
    panel.add_snapshot(snapshot(50))
    assert panel.current().step == 50 and slider.value() == 5


# ---------------------------------------------------------------------------------------------
# smoothing


def test_smoothing_at_maximum_keeps_up_with_the_data_and_says_its_value(qtbot):
    from workbench.gui.widgets.plot.loss_plot import LossPlot

    plot = shown(qtbot, LossPlot(title="loss", show_controls=True, smoothing=0.6), 900, 500)
    slider = plot.controls.slider
    slider.setFocus()
    QTest.keyClick(slider, QtCore.Qt.Key.Key_End)  # the slider as far as it goes
    assert plot.smoothing() == pytest.approx(0.999)
    assert plot.controls.value_label.text() == "0.999"
    rng = np.random.default_rng(0)
    n = 2000
    t = np.arange(1, n + 1)
    y = 0.6 + 4 * np.exp(-t / 150) + rng.normal(0, 0.1, n)
    done = 0
    for upto in (100, 300, 600, 2000):  # as a run sends them, the curve is checked as it grows
        plot.add_points("train/lm", t[done:upto], y[done:upto])
        done = upto
        plot.refresh(force=True)
        sm = plot.smoothed("train/lm")
        assert sm.size == upto
        assert sm[0] == pytest.approx(y[0])  # debiased: the line starts at the data
        tail = y[upto - upto // 10:upto]
        assert tail.min() <= sm[-1] <= tail.max(), (upto, sm[-1], tail.min(), tail.max())


# ---------------------------------------------------------------------------------------------
# task balance: the headline and the weights describe the run from its first steps


def two_task_experiment(weighting: str, conflict_every: int = 50):
    from workbench.engine.config import Experiment, MultitaskConfig, TaskConfig

    return Experiment().replace(tasks=(TaskConfig(kind="causal_lm", weight=1.0), TaskConfig(kind="masked_lm", weight=0.5)),
                                multitask=MultitaskConfig(weighting=weighting, conflict_every=conflict_every))


def step_metrics(first: int, last: int, tasks=("lm", "mlm")) -> list:
    return [ev.StepMetrics(s, 100, s * 64, s * 0.1, 3.0, {t: 3.0 - s / 100 for t in tasks}, 1e-3, 1.0, 640.0)
            for s in range(first, last + 1)]


def test_balance_headline_and_weights_describe_the_run_before_the_first_measurement(qtbot):
    from workbench.gui.bridge import MetricsBatch
    from workbench.gui.panels.balance_panel import BalancePanel

    panel = shown(qtbot, BalancePanel())
    assert "Train two or more tasks" in panel.headline.text()  # no run yet
    panel.reset()
    panel.begin_run(two_task_experiment("fixed"))
    assert panel.wait_for_weights()
    text = panel.headline.text()
    assert "Train two or more" not in text and "2 tasks" in text and "lm, mlm" in text
    assert "lm 1.00, mlm 0.50" in text and "every 50 steps" in text
    panel.on_step(MetricsBatch.from_events(step_metrics(1, 8)))
    panel.refresh(force=True)
    lm = panel.weight_plot.series_data("lm")["lm"]
    mlm = panel.weight_plot.series_data("mlm")["mlm"]
    assert lm["step"][0] == 0 and lm["step"][-1] == 8 and np.all(lm["y"] == 1.0)
    assert mlm["step"][-1] == 8 and np.allclose(mlm["y"], 0.5)
    assert panel.summary() == "2 tasks"

    # learned weights: the start is drawn (the engine's own uncertainty weighting: 0.5 each), and the
    # headline says they move; steps do not invent weights the run has not measured
    panel.reset()
    panel.begin_run(two_task_experiment("uncertainty", conflict_every=0))
    assert panel.wait_for_weights()
    assert "lm 0.50, mlm 0.50" in panel.headline.text() and "learned" in panel.headline.text()
    assert "not measured" in panel.headline.text()
    panel.on_step(MetricsBatch.from_events(step_metrics(1, 5)))
    assert list(panel.weight_plot.series_data("lm")["lm"]["step"]) == [0]
    # the first measurement takes over the headline
    panel.on_balance(ev.TaskBalance(10, ["lm", "mlm"], [0.6, 0.4], np.array([[1.0, -0.3], [-0.3, 1.0]])))
    assert "most in conflict" in panel.headline.text() and "lm 0.60" in panel.headline.text()

    panel.reset()
    from workbench.engine.config import Experiment

    panel.begin_run(Experiment())
    assert "one task (lm)" in panel.headline.text() and panel.summary() == "1 task"


# ---------------------------------------------------------------------------------------------
# Fine-tune page: it follows only a run that fine-tunes; its plan's marker belongs to its plan


def test_finetune_page_ignores_a_pretraining_run_and_its_summary_says_so(qtbot):
    from workbench.gui.panels.finetune.page import FinetunePanel

    panel = shown(qtbot, FinetunePanel(), 1400, 900)
    panel.set_run_shape(max_steps=100, n_layer=2)
    assert not panel.is_enabled() and panel.summary() == "off"
    panel.begin_run(False)
    for e in step_metrics(1, 30, tasks=("mlm",)):
        panel.on_step(e)
    panel.on_eval(ev.EvalResult(30, 1920, 3.0, {"mlm": 2.0}, {"mlm/accuracy": 0.41}))
    assert "accuracy" not in panel.summary() and panel.summary() == "off"
    assert panel.lanes.current_step() is None and panel.training_tab.loss_plot.series_names() == []
    assert "pretrains" in panel.training_tab.headline.text()
    panel.end_run()
    assert "pretrains" not in panel.training_tab.headline.text() and panel.summary() == "off"
    panel.set_enabled(True)
    assert panel.summary() == "from random weights"
    panel.set_checkpoint("/nowhere/runs/pretrained-a")
    assert panel.summary() == "from pretrained-a"

    panel.begin_run(True)
    panel.on_eval(ev.EvalResult(10, 640, 1.0, {"sent": 0.6}, {"sent/accuracy": 0.7}))
    assert panel.summary() == "accuracy 0.700"


def test_the_plan_marker_belongs_to_the_plan_it_was_drawn_on(qtbot):
    from workbench.gui.panels.finetune.page import FinetunePanel

    panel = shown(qtbot, FinetunePanel(), 1400, 900)
    panel.set_enabled(True)
    panel.set_run_shape(max_steps=100, n_layer=2)
    panel.begin_run(True)
    for e in step_metrics(1, 100, tasks=("sent",)):
        panel.on_step(e)
    assert panel.lanes.marker_label() == "step 100" and panel.lanes.plan()[2] == 100
    # the person plans a longer run, then a shorter one: the old run's marker does not stay on the new plan
    panel.set_run_shape(max_steps=400)
    assert panel.lanes.current_step() is None and panel.lanes.marker_label() == ""
    panel.begin_run(True)
    for e in step_metrics(1, 400, tasks=("sent",)):
        panel.on_step(e)
    assert panel.lanes.marker_label() == "step 400"
    panel.set_run_shape(max_steps=100)
    assert panel.lanes.marker_label() == "" and panel.lanes.plan()[2] == 100


# ---------------------------------------------------------------------------------------------
# the window: the sidebar changes with its pages; a multi-task pretraining run on every page

from tests.gui.test_window import shared_cache, step_events, tiny, wait_idle, window  # noqa: E402,F401


def sidebar_lines(w) -> dict:
    from workbench.gui.window.sidebar import SUBTITLE_ROLE

    return {key: w.sidebar.item(i).data(SUBTITLE_ROLE) for i, key in enumerate(w.panels)}


def test_sidebar_summaries_change_with_their_pages_during_a_run(window, monkeypatch):
    from workbench.gui.bridge import MetricsBatch

    w = window
    monkeypatch.setattr(w.session, "is_active", lambda: True)  # as during a run
    for first in (1, 21):
        w.session.metrics.emit(MetricsBatch.from_events(step_events(first, 20)))
        assert "loss" in w.curves.summary() and "loss" in w.curves.headline.text()
        assert sidebar_lines(w) == {key: panel.summary() for key, panel in w.panels.items()}


def test_a_multitask_pretraining_run_on_the_balance_and_finetune_pages(window, qtbot):
    from workbench.engine.config import MultitaskConfig, TaskConfig

    w = window
    tiny(w, max_steps=12, eval_every=6, attention_every=0)
    w.tasks.set_config((TaskConfig(kind="causal_lm"), TaskConfig(kind="masked_lm", weight=0.5)),
                       MultitaskConfig(conflict_every=1000))
    assert not w.finetune.is_enabled()
    assert w.start()
    assert "2 tasks" in w.balance.headline.text()  # at once, not at the first measurement
    qtbot.waitUntil(lambda: w.balance.weight_plot.series_names() != [], timeout=30000)
    wait_idle(qtbot, w)
    w.balance.refresh(force=True)
    mlm = w.balance.weight_plot.series_data("mlm")["mlm"]
    assert mlm["step"][0] == 0 and mlm["step"][-1] >= 6 and np.allclose(mlm["y"], 0.5)
    assert "Train two or more" not in w.balance.headline.text()
    # the run validated MLM accuracy: that is the Curves page's, not the Fine-tune page's
    import json
    from pathlib import Path

    lines = (Path(w.session.run_dir) / "metrics.jsonl").read_text().splitlines()
    assert any(r.get("split") == "val" and r.get("task") == "mlm" and "accuracy" in r for r in map(json.loads, lines))
    assert w.finetune.summary() == "off" and sidebar_lines(w)["finetune"] == "off"
    assert w.finetune.training_tab.loss_plot.series_names() == [] and w.finetune.lanes.current_step() is None


# ---------------------------------------------------------------------------------------------
# Runs page: where the runs are, what can be compared; one numbering of layers and heads

RUN_BASE = ['corpus.paths=["builtin:toy"]', "model.n_layer=2", "model.n_head=2", "model.n_embd=16",
            "model.block_size=16", "training.batch_size=4", "training.max_steps=4", "training.threads=1",
            "training.eval_every=2", "training.eval_batches=1", "training.attention_every=0",
            "training.warmup_steps=0"]


@pytest.fixture(scope="module")
def char_and_bpe_runs(tmp_path_factory):
    """Two tiny runs on the same corpus, one with a char tokenizer, one with byte-level BPE."""
    from workbench.engine.config import Experiment
    from workbench.engine.trainer import Trainer

    root = tmp_path_factory.mktemp("tok-runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_CACHE_DIR", str(root / "cache"))
        for name, tok in (("run-char", ["tokenizer.kind=char"]),
                          ("run-bpe", ["tokenizer.kind=bpe", "tokenizer.vocab_size=300"])):
            exp = Experiment(name=name).with_overrides(RUN_BASE + tok)
            assert Trainer(exp, run_dir=root / name).run().status == "completed"
    return root


def test_runs_page_counts_only_real_places_and_warns_about_different_tokenizers(qtbot, char_and_bpe_runs):
    import shutil

    from workbench import paths
    from workbench.gui.panels.runs_panel import RunsPanel

    base = paths.runs_dir()
    for name in ("run-char", "run-bpe"):
        shutil.copytree(char_and_bpe_runs / name, base / name)
    panel = shown(qtbot, RunsPanel())
    panel.refresh()
    assert panel.wait_for_list()
    # runs trained in this window are added one by one: they live in runs/, no "more places"
    for name in ("run-char", "run-bpe", "run-char"):
        panel.add_run(base / name)
        assert panel.wait_for_list()
    assert panel.count_label.text() == f"2 runs in {base}"
    # a run elsewhere is one more place
    elsewhere = char_and_bpe_runs / "run-char"
    panel.add_run(elsewhere)
    assert panel.wait_for_list()
    assert panel.count_label.text().endswith("and 1 more folder") and str(elsewhere) in panel.count_label.toolTip()

    panel.select_runs([base / "run-char", base / "run-bpe"])
    panel.set_metric("loss|val/lm")
    assert panel.caveat.isVisibleTo(panel)
    text = panel.caveat.text()
    assert "different tokenizers" in text and "run-char: char" in text and "run-bpe: bpe 300" in text
    assert set(panel.plot.series_names()) == {"run-char", "run-bpe"}  # still drawn, with the warning
    panel.set_metric("lr|train")  # the learning rate is the same unit whatever the tokenizer
    assert not panel.caveat.isVisibleTo(panel)
    panel.select_runs([base / "run-char"])
    panel.set_metric("loss|val/lm")
    assert not panel.caveat.isVisibleTo(panel)


def test_layers_and_heads_are_numbered_from_0_everywhere(qtbot, char_and_bpe_runs):
    """One convention for the whole app: from 0, as the engine's parameter names (block.0) and the
    freezing plan. The window's pickers, the HTML report and `workbench eval`'s look-back line agree."""
    from workbench.engine.evaluate import ICLResult, LookBack
    from workbench.engine.report import svg_attention

    panel = shown(qtbot, AttentionPanel())
    panel.add_snapshot(snapshot(5))
    window_names = ([panel.layer_combo.itemText(i) for i in range(panel.layer_combo.count())]
                    + [panel.head_combo.itemText(i) for i in range(2)])
    assert window_names == ["layer 0", "layer 1", "head 0", "head 1"]
    svg = svg_attention(snapshot(5).attention, list("abcde"), step=5)
    for name in window_names:
        assert f">{name}<" in svg
    assert ">layer 2<" not in svg and ">head 2<" not in svg

    look = LookBack(same_token=[[0.1, 0.2], [0.3, 0.9]], induction=[[0.05, 0.7], [0.1, 0.2]], positions=10)
    result = ICLResult([0], 1, False, 1, 0.5, 0.5, [0], [], {}, [], {}, 0, look_back=look)
    line = result.look_back_line()
    assert "layer 0 head 1 gives 0.70" in line and "layer 1 head 1 gives 0.90" in line


# ---------------------------------------------------------------------------------------------
# Generate: a visible pace


def choose(qtbot, combo: QtWidgets.QComboBox, text: str) -> None:
    """Pick an item of a combo box with the keyboard, as a person would."""
    combo.setFocus()
    target = combo.findText(text)
    assert target >= 0
    key = QtCore.Qt.Key.Key_Down if target > combo.currentIndex() else QtCore.Qt.Key.Key_Up
    while combo.currentIndex() != target:
        QTest.keyClick(combo, key)


def test_generate_shows_tokens_at_a_visible_pace(qtbot, tmp_path):
    from tests.gui.test_generate_panel import PROMPT, fill, tiny_experiment
    from workbench.engine.trainer import Trainer
    from workbench.gui.panels.generate.page import DEFAULT_PACE, GeneratePanel

    assert Trainer(tiny_experiment(2), run_dir=tmp_path / "run").run().status == "completed"
    panel = shown(qtbot, GeneratePanel())
    assert panel.pace() == DEFAULT_PACE == 20  # streaming is visible by default
    panel.set_run(tmp_path / "run")
    assert panel.wait()
    panel.prompt_edit.setPlainText(PROMPT)
    panel.eos_check.setChecked(False)
    fill(panel, max_tokens=40, temperature=1.0, seed=3)

    # as fast as possible: the reference text
    choose(qtbot, panel.pace_combo, "as fast as possible")
    assert panel.pace() == 0
    QTest.mouseClick(panel.generate_button, QtCore.Qt.MouseButton.LeftButton)
    assert panel.wait()
    reference = [t.id for t in panel.generated_tokens()]
    assert len(reference) == 40

    # 5 a second: the model is done long before the page has shown its 40 tokens (8 s)
    choose(qtbot, panel.pace_combo, "5 tokens/s")
    drawn = []  # the strip's length at each redraw
    set_tokens = panel.strip.set_tokens
    panel.strip.set_tokens = lambda texts, *a, **k: (drawn.append(len(texts)), set_tokens(texts, *a, **k))
    QTest.mouseClick(panel.generate_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel._sampling, timeout=30000)  # generated: the job has ended
    qtbot.waitUntil(lambda: len(panel.generated_tokens()) >= 2, timeout=5000)
    shown_now = len(panel.generated_tokens())
    assert shown_now < 40 and panel.is_generating() and panel.stop_button.isEnabled()
    assert "Showing the tokens at 5 a second" in panel.status_label.text()
    assert not panel.generate_button.isEnabled()
    # the strip grows one token at a time
    qtbot.waitUntil(lambda: len(panel.generated_tokens()) >= shown_now + 2, timeout=5000)
    grown = np.diff(drawn[1:])  # drawn[0]: the prompt alone
    assert len(grown) >= 2 and set(grown) == {1}, drawn
    # "as fast as possible" shows the rest at once; the text is the same at any pace
    choose(qtbot, panel.pace_combo, "as fast as possible")
    assert [t.id for t in panel.generated_tokens()] == reference
    assert not panel.is_generating() and panel.status_label.text().startswith("40 tokens from")

    # Stop while the tokens are being shown: what is shown stays, the rest is dropped
    choose(qtbot, panel.pace_combo, "10 tokens/s")
    QTest.mouseClick(panel.generate_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(panel.generated_tokens()) >= 2, timeout=5000)
    QTest.mouseClick(panel.stop_button, QtCore.Qt.MouseButton.LeftButton)
    n = len(panel.generated_tokens())
    assert panel.wait() and len(panel.generated_tokens()) == n < 40
    assert f"Stopped after {n} tokens: stopped" in panel.status_label.text()
    assert [t.id for t in panel.generated_tokens()] == reference[:n]
    assert len(panel.strip.ids()) == panel.prompt_count() + n
