"""The Tasks, Task balance and Fine-tune panels: they show what the engine sends and what it will run."""

import json
import os
import random

import numpy as np
import pytest
from PySide6 import QtGui

from workbench.engine.config import Experiment, FinetuneConfig, MultitaskConfig, StageConfig, TaskConfig
from workbench.engine.events import EvalResult, FreezeChanged, StepMetrics, TaskBalance
from workbench.gui.panels.balance_panel import BalancePanel
from workbench.engine.freezing import layer_groups
from workbench.gui.panels.finetune.inspector import InputInspector
from workbench.gui.panels.finetune.lanes import FreezeLaneView
from workbench.gui.panels.finetune.page import FinetunePanel, experiment_sections, load_experiment_into
from workbench.gui.panels.tasks_mix import sampling_shares
from workbench.gui.panels.tasks_panel import LabelledTaskDialog, TasksPanel

# ---------------------------------------------------------------------------------------------
# helpers


def shown(qtbot, widget, w=1200, h=800):
    qtbot.addWidget(widget)
    widget.resize(w, h)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def steps(n, tasks, start=1, norms_every=0):
    rng = np.random.default_rng(0)
    out = []
    for s in range(start, start + n):
        losses = {t: float(3 - 0.01 * s + 0.1 * k + rng.random() * 0.05) for k, t in enumerate(tasks)}
        norms = {"embeddings": 0.1, "block.0": 0.2 + s * 1e-3, "heads": 1.5} if norms_every and s % norms_every == 0 \
            else None
        out.append(StepMetrics(s, 100, s * 640, s * 0.1, sum(losses.values()), losses, 1e-3, 1.0, 6400.0, norms))
    return out


def close_colors(a: QtGui.QColor, b: QtGui.QColor, tol: int = 3) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a.getRgb()[:3], b.getRgb()[:3]))


# ---------------------------------------------------------------------------------------------
# task balance


def test_balance_panel_shows_losses_weights_and_scrubs_conflicts(qtbot):
    from workbench.gui.bridge import MetricsBatch

    panel = shown(qtbot, BalancePanel())
    tasks = ["lm", "mlm", "continuity"]
    sent = steps(20, tasks)
    for e in sent[:10]:
        panel.on_step(e)
    panel.on_step(MetricsBatch.from_events(sent[10:]))  # the bridge's batched form works too
    panel.on_eval(EvalResult(20, 12800, 2.0, {"lm": 2.5, "mlm": 2.9, "continuity": 0.6}))
    mats = []
    for k, step in enumerate((10, 20, 30)):
        m = np.eye(3)
        m[0, 1] = m[1, 0] = 0.5 - 0.4 * k
        m[1, 2] = m[2, 1] = -0.3 + 0.1 * k
        m[0, 2] = m[2, 0] = 0.05 * k
        mats.append(m)
        panel.on_balance(TaskBalance(step, tasks, [1.0 + 0.1 * k, 1.0, 1.0 - 0.1 * k], m))
    panel.refresh()

    for t in tasks:
        d = panel.loss_plot.series_data(f"train/{t}")[f"train/{t}"]
        assert np.allclose(d["step"], np.arange(1, 21))
        assert np.allclose(d["y"], [e.losses[t] for e in sent])
    assert np.allclose(panel.loss_plot.series_data("val/mlm")["val/mlm"]["y"], [2.9])
    w = panel.weight_plot.series_data("lm")["lm"]
    assert np.allclose(w["step"], [10, 20, 30]) and np.allclose(w["y"], [1.0, 1.1, 1.2])
    # the slider follows the newest snapshot, and scrubs back
    assert panel.slider.maximum() == 2 and panel.slider.value() == 2
    assert np.allclose(panel.conflict_view.matrix(), mats[2])
    assert panel.conflict_view.labels() == (tasks, tasks)
    panel.slider.setValue(0)
    assert np.allclose(panel.conflict_view.matrix(), mats[0])
    assert "step 10" in panel.slider_label.text()
    # a new snapshot does not yank the slider away from where the person put it
    panel.on_balance(TaskBalance(40, tasks, [1, 1, 1], np.eye(3)))
    assert panel.slider.value() == 0 and panel.slider.maximum() == 3
    panel.select(1)
    assert np.allclose(panel.conflict_view.matrix(), mats[1])

    # the picture is the matrix: every cell painted in the colour of its value on the -1..1 scale
    view = panel.conflict_view
    assert view.levels() == (-1.0, 1.0)
    img = view.grab().toImage()
    ratio = img.devicePixelRatio()
    for i in range(3):
        for j in range(3):
            r = view.cell_rect(i, j)
            px = img.pixelColor(int((r.left() + 5) * ratio), int((r.top() + 5) * ratio))
            assert close_colors(px, view.color_for(mats[1][i, j])), (i, j)
    assert close_colors(view.color_for(-1.0), QtGui.QColor("#b2182b"))
    assert close_colors(view.color_for(1.0), QtGui.QColor("#2166ac"))
    assert "mlm" in panel.headline.text()

    panel.reset()
    assert panel.loss_plot.series_names() == [] and panel.snapshots() == []
    assert panel.conflict_view.matrix().size == 0


# ---------------------------------------------------------------------------------------------
# tasks


def test_tasks_panel_round_trips_and_explains_invalid_combinations(qtbot, tmp_path):
    panel = shown(qtbot, TasksPanel())
    data = tmp_path / "cls.tsv"
    data.write_text("sentence\tlabel\ngood film\t1\nbad film\t0\n")
    tasks = (TaskConfig(kind="causal_lm", weight=1.0),
             TaskConfig(kind="masked_lm", name="mask", weight=0.5, mask_prob=0.2),
             TaskConfig(kind="continuity", weight=0.25),
             TaskConfig(kind="classification", name="sent", train=str(data), text="sentence", label="label",
                        weight=2.0, lm_weight=0.3))
    mt = MultitaskConfig(sampling="temperature", temperature=3.0, weighting="uncertainty", conflict_every=20)
    panel.set_config(tasks, mt)
    assert panel.to_config() == (tasks, mt)
    assert panel.error_text() == ""
    assert [not r.mask_prob.isHidden() for r in panel.rows()] == [False, True, False, False]

    # GradNorm compares all tasks within a step: with one task drawn per step the engine says no
    panel.sampling.setCurrentIndex(panel.sampling.findData("proportional"))
    panel.weighting.setCurrentIndex(panel.weighting.findData("gradnorm"))
    assert "gradnorm" in panel.error_text() and 'sampling = "all"' in panel.error_text()
    assert not panel.error.isHidden()
    panel.sampling.setCurrentIndex(panel.sampling.findData("all"))
    assert panel.error_text() == ""
    # two tasks with one name
    panel.rows()[1].name_edit.setText("lm")
    assert "two tasks are named 'lm'" in panel.error_text()
    panel.rows()[1].name_edit.setText("")
    assert panel.error_text() == ""
    # adding a second task of a kind gives it a name of its own; removing works
    row = panel.add_task(TaskConfig(kind="causal_lm"))
    assert row.task_config().task_name == "lm2" and panel.error_text() == ""
    panel.remove_task(len(panel.rows()) - 1)
    assert len(panel.to_config()[0]) == 4
    # a labelled task is edited in the Fine-tune page's dataset form, in a dialog
    dialog = LabelledTaskDialog(tasks[3])
    qtbot.addWidget(dialog)
    assert dialog.task_config() == tasks[3]
    assert dialog.preview.rowCount() == 2 and dialog.error.isHidden()
    dialog.form.set_column("label", "")
    assert "needs label" in dialog.error.text()
    requested = []
    panel.finetuneRequested.connect(lambda: requested.append(True))
    panel.add_menu.actions()[-1].trigger()
    assert requested == [True]
    # what one step does, as the diagram shows it
    tasks3 = tasks[:3]
    assert sampling_shares(tasks3, MultitaskConfig(sampling="proportional")) == pytest.approx([1 / 1.75, 0.5 / 1.75,
                                                                                                0.25 / 1.75])
    assert sampling_shares(tasks3, MultitaskConfig(sampling="all")) == [1.0, 1.0, 1.0]


# ---------------------------------------------------------------------------------------------
# freezing lanes


def assert_lanes_are_the_plan(view: FreezeLaneView, cfg: FinetuneConfig, n_layer: int, max_steps: int,
                              base_lr: float = 1e-3):
    from workbench.engine.freezing import FreezePlan

    plan = FreezePlan(cfg, n_layer)
    assert view.groups() == layer_groups(n_layer)
    f = cfg.lr_factor
    for step in range(max_steps):
        trainable = plan.trainable(step)
        for g in view.groups():
            assert view.is_trainable(g, step) == (g in trainable), (g, step)
            if g in trainable:
                disc = 1.0
                if cfg.discriminative and g.startswith("block."):
                    disc = f ** (n_layer - int(g.split(".")[1]) - 1)
                elif cfg.discriminative and g == "embeddings":
                    disc = f ** n_layer
                assert view.lr_multiplier(g, step) == pytest.approx(disc * plan.lr_multiplier(step, base_lr))


def test_lane_view_is_the_freeze_plan(qtbot):
    panel = shown(qtbot, FinetunePanel(), 1400, 900)
    panel.set_run_shape(max_steps=200, n_layer=3, learning_rate=1e-3)
    gradual = FinetuneConfig(freeze="gradual", unfreeze_every=30, discriminative=True, lr_factor=0.5)
    panel.set_config(None, gradual, enabled=True)
    assert panel.to_config()[1] == gradual
    assert panel.lanes.plan() == (gradual, 3, 200)
    assert_lanes_are_the_plan(panel.lanes, gradual, 3, 200)
    # heads train from step 0; block 0 thaws at 3 x 30; the embeddings last, at 4 x 30
    assert [s.start for s in panel.lanes.lanes()["block.0"] if s.trainable] == [90]
    assert [s.start for s in panel.lanes.lanes()["embeddings"] if s.trainable] == [120]

    stages = FinetuneConfig(freeze="stages", stages=(
        StageConfig(steps=50, trainable=("heads",), learning_rate=3e-3),
        StageConfig(steps=70, trainable=("heads", "ln_f", "top:2")),
        StageConfig(steps=10, trainable=("all",), learning_rate=1e-4)))
    panel.set_config(None, stages)
    assert panel.to_config()[1] == stages
    assert panel.stages_editor.isVisible() and len(panel.stages_editor.stages()) == 3
    assert_lanes_are_the_plan(panel.lanes, stages, 3, 200)
    assert panel.lanes.lr_multiplier("heads", 10) == pytest.approx(3.0)

    # the picture: blue where a group trains, grey where it is frozen
    view = panel.lanes
    img = view.grab().toImage()
    ratio = img.devicePixelRatio()
    m = view._metrics()
    top = list(reversed(view.groups()))
    for g, step, training in (("heads", 25, True), ("block.0", 25, False), ("block.0", 190, True),
                              ("embeddings", 100, False)):
        x = view._x(step, m)
        y = m["y0"] + top.index(g) * m["lane_h"] + 4
        px = img.pixelColor(int(x * ratio), int(y * ratio))
        blue = px.blue() > px.red() + 40
        assert blue == training, (g, step, px.name())

    for cfg in (FinetuneConfig(freeze="bottom_n", freeze_n=2), FinetuneConfig(freeze="head_only"),
                FinetuneConfig()):
        panel.set_config(None, cfg)
        assert_lanes_are_the_plan(panel.lanes, cfg, 3, 200)


def test_lanes_are_worked_out_at_once_without_torch():
    """The lanes are the engine's plan, worked out on the spot (no background job, no torch): the
    page can draw the plan before torch has loaded."""
    import subprocess
    import sys

    code = ("import sys; from PySide6 import QtWidgets; app = QtWidgets.QApplication([]); "
            "from workbench.engine.config import FinetuneConfig; "
            "from workbench.gui.panels.finetune.lanes import FreezeLaneView; "
            "view = FreezeLaneView(); view.set_plan(FinetuneConfig(freeze='gradual', unfreeze_every=30), 3, 200); "
            "print([s.start for s in view.lanes()['block.0'] if s.trainable], view.error() or 'ok', "
            "'torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert r.returncode == 0 and r.stdout.split() == ["[90]", "ok", "False"], r.stdout + r.stderr


def test_lanes_show_no_plan_for_a_stage_being_typed_and_recover(qtbot):
    view = shown(qtbot, FreezeLaneView(), 800, 300)
    view.set_plan(FinetuneConfig(freeze="stages", stages=(StageConfig(steps=10, trainable=("top:",)),)), 2, 100)
    assert view.lanes() == {} and view.error() and not view.is_trainable("heads", 5)
    view.set_plan(FinetuneConfig(freeze="stages", stages=(StageConfig(steps=10, trainable=("top:1",)),)), 2, 100)
    assert view.error() == "" and view.is_trainable("block.1", 5) and not view.is_trainable("block.0", 5)


# ---------------------------------------------------------------------------------------------
# fine-tuning: live views


def test_finetune_panel_shows_training_events(qtbot):
    panel = shown(qtbot, FinetunePanel(), 1400, 900)
    panel.set_run_shape(max_steps=100, n_layer=2)
    for s in range(1, 21):
        norms = {"block.1": 0.4, "ln_f": 0.05, "heads": 2.0 + s / 100} if s % 10 == 0 else None
        panel.on_step(StepMetrics(s, 100, s * 10, s / 10, 1.0, {"sent": 1.0 - s / 100, "sent/task_loss": 0.7,
                                                                 "sent/lm_loss": 0.6}, 1e-3, 1.0, 100.0, norms))
    panel.refresh()
    loss = panel.training_tab.loss_plot.series_data("train/loss")["train/loss"]
    assert np.allclose(loss["y"], [1 - s / 100 for s in range(1, 21)])
    assert set(panel.training_tab.loss_plot.series_names()) == {"train/loss", "train/task loss", "train/aux LM loss"}
    assert panel.tabs.currentWidget() is panel.training_tab
    # one bar per group that has a gradient, as long as its norm; frozen groups have none
    assert panel.training_tab.grad_strip.bars() == pytest.approx({"block.1": 0.4, "ln_f": 0.05, "heads": 2.2})
    rects = panel.training_tab.grad_strip.bar_rects()
    assert set(rects) == {"block.1", "ln_f", "heads"}
    assert rects["block.1"].width() / rects["heads"].width() == pytest.approx(0.4 / 2.2, rel=1e-3)
    assert rects["heads"].top() < rects["ln_f"].top() < rects["block.1"].top()  # heads on top, as in the lanes
    assert panel.lanes._current == 20

    confusion = np.array([[30, 5], [8, 37]])
    for step, acc in ((10, 0.7), (20, 0.84)):
        panel.on_eval(EvalResult(step, step * 10, step / 10, {"sent": 0.5},
                                 {"sent/accuracy": acc, "sent/f1": acc - 0.02},
                                 {"sent": confusion}, {"sent": ["negative", "positive"]}))
    panel.refresh()
    acc = panel.training_tab.metric_plot.series_data("val/accuracy")["val/accuracy"]
    assert np.allclose(acc["step"], [10, 20]) and np.allclose(acc["y"], [0.7, 0.84])
    view = panel.training_tab.confusion_view
    assert np.array_equal(view.matrix(), confusion)
    assert view.labels() == (["negative", "positive"], ["negative", "positive"])
    assert [view.cell_text(i, j) for i in range(2) for j in range(2)] == ["30", "5", "8", "37"]
    assert "0.840" in panel.training_tab.headline.text()

    panel.on_freeze(FreezeChanged(50, ["block.1", "heads", "ln_f"], 1234, "ln_f, heads, block 1"))
    assert panel.lanes._changes == [(50, "ln_f, heads, block 1")]
    assert "1,234" in panel.plan_caption.text()
    panel.reset()
    assert panel.training_tab.grad_strip.bars() == {} and view.matrix().size == 0 and panel.lanes._current is None


# ---------------------------------------------------------------------------------------------
# the inspector


@pytest.fixture(scope="module")
def char_tokenizer():
    from workbench.engine.tokenizer import train_tokenizer

    return train_tokenizer("char", 128, ["the quick brown fox jumps over a lazy dog. 0123456789 good bad?"])


def labelled_files(tmp_path):
    rng = random.Random(0)
    words = "good bad film plot fine dull story".split()
    pair = ["premise\thypothesis\tlabel\tscore"] + [
        f"{' '.join(rng.sample(words, 3))}\t{' '.join(rng.sample(words, 2))}\t{rng.choice(['yes', 'no'])}\t"
        f"{rng.random() * 5:.2f}" for _ in range(20)]
    (tmp_path / "pair.tsv").write_text("\n".join(pair) + "\n")
    mc = [json.dumps({"q": {"stem": "a dog?"}, "answers": ["fox", "dog", "bad", "good"], "answer": 1})
          for _ in range(6)]
    (tmp_path / "mc.jsonl").write_text("\n".join(mc) + "\n")
    return tmp_path / "pair.tsv", tmp_path / "mc.jsonl"


def test_inspector_marks_start_delimiter_and_extract(qtbot, tmp_path, char_tokenizer):
    from workbench.engine.tasks import TaskContext, build_task

    tok = char_tokenizer
    bos, delim, ext = (tok.special_id(r) for r in ("bos", "delim", "extract"))
    pair, mc = labelled_files(tmp_path)
    ctx = TaskContext(tok, None, 32, 64)
    inspector = shown(qtbot, InputInspector(), 900, 600)

    ent = build_task(TaskConfig(kind="entailment", train=str(pair), text="premise", text_pair="hypothesis",
                                label="label"), ctx)
    inspector.set_task(ent, tok)
    assert inspector.example_count() == len(ent.examples["val"]) and len(inspector.strips) == 1
    strip = inspector.strips[0]
    seq = ent.sequences(ent.examples["val"][0])[0]
    assert strip.ids() == seq
    roles = strip.roles()
    assert roles[0] == "bos" and roles[-1] == "extract" and roles.count("delim") == 1
    assert roles[seq.index(delim)] == "delim"
    assert [i for i, r in enumerate(roles) if r] == [i for i, t in enumerate(seq) if t in (bos, delim, ext)]
    colors = strip.box_colors()
    plain = {c.name() for c, r in zip(colors, roles) if not r}
    specials = [c.name() for c, r in zip(colors, roles) if r]
    assert len(set(specials)) == 3 and not plain & set(specials)  # three colours of their own
    assert strip.tokens()[0] == "Start" and strip.tokens()[-1] == "Extract"

    sim = build_task(TaskConfig(kind="similarity", train=str(pair), text="premise", text_pair="hypothesis",
                                score="score"), ctx)
    inspector.set_task(sim, tok)
    assert len(inspector.strips) == 2  # both orderings
    assert [s.ids() for s in inspector.strips] == sim.sequences(sim.examples["val"][0])

    choice = build_task(TaskConfig(kind="multiple_choice", train=str(mc), val=str(mc), text="q.stem",
                                   choices=("answers",), answer="answer"), ctx)
    inspector.set_task(choice, tok)
    inspector.index_spin.setValue(3)
    assert len(inspector.strips) == 4 and "✓" in inspector.captions[1].text()
    for s in inspector.strips:
        r = s.roles()
        assert r[0] == "bos" and r[-1] == "extract" and "delim" in r


def test_only_the_latest_data_check_reaches_the_page(qtbot, tmp_path, monkeypatch):
    """The page reads its labelled data in the background; a check overtaken by a newer setting (the
    person chose another file while the first was read) is dropped, and data chosen again after the
    file was cleared is read again."""
    import threading

    import workbench.gui.panels.finetune.page as page_mod

    slow, fast = tmp_path / "slow.tsv", tmp_path / "fast.tsv"
    for path in (slow, fast):
        path.write_text("sentence\tlabel\n" + "".join(f"the cat sat {i}\t{i % 2}\n" for i in range(20)))
    release = threading.Event()

    def check(state, cfg, init):
        n = 111 if cfg.train == str(slow) else 222
        if n == 111:
            release.wait(20)
        return {"n_train": n, "n_val": 1, "labels": ["0", "1"], "task": None, "tokenizer": None,
                "block_size": 0, "regression": False}

    monkeypatch.setattr(page_mod, "check_labelled", check)
    panel = shown(qtbot, FinetunePanel(), 1400, 900)
    panel.set_enabled(True)
    panel.dataset.set_train_file(str(slow))
    assert not panel.wait_for_check(50)  # the slow file is still being read
    overtaken = panel._check.job
    panel.dataset.set_train_file(str(fast))
    assert panel.wait_for_check()
    assert panel.dataset.status.text().startswith("222 training")
    release.set()
    assert overtaken.wait(20000)  # it ended, and what it sent went nowhere
    qtbot.wait(10)
    assert panel.dataset.status.text().startswith("222 training")

    panel.dataset.set_train_file("")
    assert panel.wait_for_check()
    assert "Choose a labelled dataset" in panel.inspector.status.text()
    panel.dataset.set_train_file(str(fast))
    assert panel.wait_for_check()
    assert panel.dataset.status.text().startswith("222 training")
    assert "From scratch there is no tokenizer yet" in panel.inspector.status.text()


def test_finetune_panel_builds_the_inspector_from_a_checkpoint(qtbot, tmp_path, small_text):
    from workbench.engine.trainer import Trainer

    run = tmp_path / "pre"
    exp = Experiment(name="pre").with_overrides([
        f'corpus.paths=["{small_text}"]', "model.n_layer=2", "model.n_head=2", "model.n_embd=16",
        "model.block_size=32", "training.max_steps=2", "training.batch_size=2", "training.threads=1",
        "training.eval_every=0", "training.attention_every=0", "training.warmup_steps=0"])
    assert Trainer(exp, run_dir=run).run().status == "completed"
    data = tmp_path / "cls.tsv"
    data.write_text("sentence\tlabel\n" + "".join(f"the cat sat {i}\t{i % 2}\n" for i in range(30)))

    panel = shown(qtbot, FinetunePanel(), 1400, 900)
    panel.set_enabled(True)
    panel.set_checkpoint(str(run))
    assert panel.n_layer() == 2 and panel.lanes.groups() == layer_groups(2)
    panel.dataset.set_train_file(str(data))
    # the file's columns fill the pickers and the mapping is guessed
    assert panel.dataset.columns() == ["sentence", "label"]
    assert panel.dataset.kind() == "classification"
    task, ft = panel.to_config()
    assert (task.text, task.label, ft.init) == ("sentence", "label", str(run))
    assert panel.preview.rowCount() == 30 and panel.validate() == ""
    assert panel.wait_for_check()
    qtbot.waitUntil(lambda: panel.inspector.task() is not None, timeout=10000)
    strip = panel.inspector.strips[0]
    assert strip.roles()[0] == "bos" and strip.roles()[-1] == "extract"
    assert "27 training" in panel.dataset.status.text()
    # bad columns: the engine's message, naming the file and the column
    panel.dataset.set_column("label", "")
    assert "needs label" in panel.error.text()

    # the two pages make one experiment, and an experiment fills the two pages
    tasks_panel = shown(qtbot, TasksPanel())
    panel.dataset.set_column("label", "label")
    sections = experiment_sections(tasks_panel, panel)
    assert sections["tasks"] == (panel.to_config()[0],) and sections["finetune"].init == str(run)
    exp2 = Experiment().replace(**sections)
    panel.set_enabled(False)
    assert experiment_sections(tasks_panel, panel)["finetune"] == FinetuneConfig()
    load_experiment_into(exp2, tasks_panel, panel)
    assert panel.is_enabled() and panel.to_config() == (exp2.tasks[0], exp2.finetune)
    assert tasks_panel.finetune_note.isVisibleTo(tasks_panel)
