"""The window's side of divergence and one-task steps: resuming from a chosen checkpoint, and
conflict pairs that were not measured."""

from __future__ import annotations

import dataclasses
import shlex

import numpy as np

from workbench.engine import checkpoint as ckpt
from workbench.engine.config import MultitaskConfig, TaskConfig
from workbench.engine.events import TaskBalance
from workbench.gui.panels.balance_panel import BalancePanel
from workbench.gui.panels.tasks_panel import TasksPanel

from .test_panels_mt_ft import shown
from .test_window import metrics_points, shared_cache, tiny, wait_idle, window  # noqa: F401 (fixtures)


def test_resume_from_a_chosen_checkpoint_in_the_window(window, qtbot):
    w = window
    tiny(w, max_steps=30, checkpoint_every=10, keep_checkpoints=5, attention_every=0)
    assert w.start()
    wait_idle(qtbot, w)
    run_dir = w.session.run_dir
    assert ckpt.RunDir.open(run_dir).checkpoint_steps() == [10, 20, 30]

    w.training.set_resume(run_dir)
    combo = w.training.from_step_combo
    assert combo.isVisibleTo(w.training) and combo.count() == 3
    assert combo.itemText(0) == "latest: step 30" and w.training.from_step() is None
    combo.setCurrentIndex(combo.findData(10))
    assert w.training.from_step() == 10
    args = shlex.split(w.copy_command())
    assert args[args.index("--from-step") + 1] == "10"

    w.training.set_config(dataclasses.replace(w.training.config(), max_steps=30))
    assert w.start()
    wait_idle(qtbot, w)
    assert w.session.last_result.status == "completed" and "done: 30 steps" in w.training.progress.format()
    aside = list((ckpt.RunDir.open(run_dir).path / "superseded").iterdir())
    assert len(aside) == 1 and (aside[0] / "checkpoints" / "step_0000020.json").exists()
    assert "superseded" in w.training.log.toPlainText()  # the log says where the later checkpoints went
    steps = [r["step"] for r in ckpt.read_metrics(ckpt.RunDir.open(run_dir).metrics) if r["split"] == "train"]
    assert steps == list(range(1, 31))  # steps 11..30 once, from the resumed run


def test_balance_page_says_not_measured_for_pairs_without_gradients(qtbot):
    panel = shown(qtbot, BalancePanel())
    tasks = ["lm", "mlm", "continuity"]
    m = np.full((3, 3), np.nan)
    m[1, 1] = 1.0  # one task drawn in this step: only its own cell
    panel.on_balance(TaskBalance(5, tasks, [1.0, 1.0, 1.0], m))
    assert "no pair of tasks measured" in panel.headline.text()
    assert "nan" not in panel.headline.text().lower()
    assert "not measured" in panel.conflict_view.describe_cell(0, 1)
    assert panel.conflict_view.cell_text(0, 1) == "–"
    assert not panel.pairs_plot.series_data()  # no NaN points plotted
    partial = np.eye(3)
    partial[0, 1] = partial[1, 0] = -0.5
    partial[2, :] = partial[:, 2] = np.nan
    panel.on_balance(TaskBalance(10, tasks, [1.0, 1.0, 1.0], partial))
    assert "lm and mlm (-0.50)" in panel.headline.text() and "nan" not in panel.headline.text().lower()


def test_tasks_page_names_weights_that_are_ignored(qtbot):
    panel = shown(qtbot, TasksPanel())
    tasks = (TaskConfig(kind="causal_lm"), TaskConfig(kind="masked_lm", weight=0.5))
    panel.set_config(tasks, MultitaskConfig(sampling="round_robin"))
    assert "ignored" in panel.explain.text() and "round_robin" in panel.explain.text()
    panel.set_config(tasks, MultitaskConfig(sampling="all", weighting="pcgrad"))
    assert "ignored" not in panel.explain.text()


def test_the_training_page_sets_the_divergence_rule(qtbot):
    from workbench.engine.config import TrainingConfig
    from workbench.gui.panels.training_panel import TrainingPanel

    panel = shown(qtbot, TrainingPanel())
    field = panel.fields["divergence_factor"]
    assert field.value() == TrainingConfig().divergence_factor == 2.0
    assert "divergence_steps" in field.toolTip()
    field.setValue(0.0)
    assert field.text() == "never" and panel.config().divergence_factor == 0.0
    panel.set_config(dataclasses.replace(TrainingConfig(), divergence_factor=3.5))
    assert panel.config().divergence_factor == 3.5
