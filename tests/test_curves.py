"""workbench.curves: the numbers behind every curve, without Qt or torch."""

import json
import math

import numpy as np
import pytest

from tests.old_run import METRICS, TRAIN_ACCURACY, VAL_ACCURACY
from workbench.curves import (MetricsBatch, ema_smooth, ema_weight_for, metric_curves, normalize_records,
                              step_columns, task_rows, thin)
from workbench.engine import checkpoint as ckpt
from workbench.engine.events import StepMetrics

OLD_ROWS = [json.loads(line) for line in METRICS.splitlines()]


# -- smoothing ------------------------------------------------------------------------------------


def test_smoothing_gives_the_figures_the_report_always_drew():
    """The report smooths training curves at 0.6 with the live plot's code now; these are the
    values its own loop (report.ema, before issue #12) gave on the same input."""
    y = [4.0, 2.0, float("nan"), 3.0, 1.0, 2.5, 0.5]
    old_report_ema = [4.0, 2.75, float("nan"), 2.8775510204081636, 2.014705882352941, 2.225190839694656,
                      1.5013426423200857]
    assert ema_weight_for(0.6, len(y)) == 0.6  # a short curve keeps the weight asked for
    got, state = ema_smooth(np.array(y), 0.6)
    np.testing.assert_allclose(got, old_report_ema, rtol=1e-12, equal_nan=True)
    assert state[1] == 6  # the NaN did not count
    # piece by piece, as the live plot smooths, the same values
    a, st = ema_smooth(np.array(y[:3]), 0.6)
    b, _ = ema_smooth(np.array(y[3:]), 0.6, st)
    np.testing.assert_allclose(np.concatenate([a, b]), old_report_ema, rtol=1e-12, equal_nan=True)


def test_a_long_curve_is_never_averaged_over_more_than_a_sixteenth_of_it():
    assert ema_weight_for(0.999, 100) == pytest.approx(1 - 16 / 64)
    assert ema_weight_for(0.999, 10_000) == pytest.approx(1 - 16 / 8192)
    assert ema_weight_for(0.0, 10_000) == 0.0


# -- min/max thinning -----------------------------------------------------------------------------


def test_thinning_keeps_the_minimum_and_maximum_of_every_bin():
    rng = np.random.default_rng(3)
    n, bins = 10_000, 100
    y = np.cumsum(rng.standard_normal(n))
    y[[17, 5000, 5001]] = np.nan
    idx = thin(y, bins)
    assert idx[0] == 0 and idx[-1] == n - 1 and np.all(np.diff(idx) > 0)
    assert idx.size < n / 4
    # the envelope's bins are blocks of 4**k samples, the largest with at least bins/2 of them in view
    block = 4 ** max(k for k in range(1, 8) if n / 4 ** k >= bins / 2)
    kept = set(idx.tolist())
    for a in range(0, n, block):
        seg = y[a:a + block]
        assert a + int(np.nanargmin(seg)) in kept and a + int(np.nanargmax(seg)) in kept
    assert np.nanmax(y[idx]) == np.nanmax(y) and np.nanmin(y[idx]) == np.nanmin(y)


def test_a_short_curve_is_drawn_point_by_point():
    y = np.linspace(0, 1, 150)
    assert thin(y, 100).tolist() == list(range(150))


# -- the metrics schema ---------------------------------------------------------------------------


def test_old_rows_read_as_the_current_writer_writes_them(tmp_path):
    """The writer now puts a task's training metrics in columns of its row; the reader turns the
    old form (a row per metric, task "TASK/METRIC", the value in "loss") into exactly that."""
    writer = ckpt.MetricsWriter(tmp_path / "metrics.jsonl")
    for step in (1, 2, 3, 4):
        rows = [r for r in OLD_ROWS if r["step"] == step]
        total = rows[0]  # the "total" row with the run-wide numbers: unchanged
        writer.train_step(step, ["lm", "continuity"], total["loss"],
                          {r["task"]: r["loss"] for r in rows[1:] if r["split"] == "train"},
                          lr=total["lr"], tokens=total["tokens"], elapsed=total["time"],
                          tokens_per_s=total["tokens_per_s"], grad_norm=total["grad_norm"])
        for r in rows:
            if r["split"] == "val":
                writer.write(**r)
    writer.close()
    new = ckpt.read_metrics(tmp_path / "metrics.jsonl")
    assert {"step": 1, "split": "train", "task": "continuity", "loss": 0.69, "accuracy": 0.5} in new
    assert not any("/" in r["task"] for r in new)
    assert normalize_records(OLD_ROWS) == new
    assert normalize_records(new) == new  # the current form passes unchanged
    assert OLD_ROWS[3] == {"step": 1, "split": "train", "task": "continuity/accuracy", "loss": 0.5}  # untouched


def test_task_rows_put_each_metric_in_its_tasks_row():
    assert task_rows({"cls": 0.7, "cls/accuracy": 0.8, "lm": 3.1, "sent/task_loss": 0.4}) == {
        "cls": {"loss": 0.7, "accuracy": 0.8}, "lm": {"loss": 3.1}, "sent": {"task_loss": 0.4}}


def test_a_metric_row_without_its_task_row_stays_a_row_of_its_own():
    rows = [{"step": 5, "split": "train", "task": "cls/accuracy", "loss": 0.9}]
    assert normalize_records(rows) == [{"step": 5, "split": "train", "task": "cls", "accuracy": 0.9}]


NEW_ROWS = [  # steps 1 and 2 of OLD_ROWS as the current writer writes them
    {"task": "total", "loss": 4.5, "step": 1, "split": "train", "lr": 0.001, "tokens": 256, "time": 0.05,
     "tokens_per_s": 5120.0, "grad_norm": 1.9},
    {"step": 1, "split": "train", "task": "lm", "loss": 4.2},
    {"step": 1, "split": "train", "task": "continuity", "loss": 0.69, "accuracy": 0.5},
    {"task": "total", "loss": 4.1, "step": 2, "split": "train", "lr": 0.002, "tokens": 512, "time": 0.1,
     "tokens_per_s": 5120.0, "grad_norm": 1.5},
    {"step": 2, "split": "train", "task": "lm", "loss": 3.8},
    {"step": 2, "split": "train", "task": "continuity", "loss": 0.66, "accuracy": 0.625},
    {"step": 2, "split": "val", "task": "lm", "loss": 3.9, "tokens": 512, "time": 0.1, "ppl": 49.4},
    {"step": 2, "split": "val", "task": "continuity", "loss": 0.67, "tokens": 512, "time": 0.1, "accuracy": 0.6},
]


def test_old_and_new_rows_group_into_the_same_curves():
    as_text = lambda curves: json.dumps(curves, sort_keys=True)  # noqa: E731 (NaN == NaN as text)
    assert as_text(metric_curves(normalize_records(OLD_ROWS[:10]))) == as_text(metric_curves(NEW_ROWS))
    old = metric_curves(normalize_records(OLD_ROWS))
    assert old["accuracy"]["train/continuity"]["y"] == TRAIN_ACCURACY
    assert old["accuracy"]["val/continuity"]["y"] == VAL_ACCURACY
    assert old["accuracy"]["val/continuity"]["step"] == [2.0, 4.0]
    assert set(old["loss"]) == {"train/total", "train/lm", "train/continuity", "val/lm", "val/continuity"}
    assert old["lr"]["train"]["y"] == [0.001, 0.002, 0.002, 0.001]
    assert old["ppl"]["val/lm"]["y"] == [49.4, 33.1]
    assert all(math.isnan(t) for t in old["loss"]["train/lm"]["tokens"])  # per-task rows carry only a step


# -- steps as columns -----------------------------------------------------------------------------


def test_step_metrics_become_columns_one_at_a_time_or_in_a_batch():
    steps = [StepMetrics(s, 10, 64 * s, 0.5 * s, 3.0 - 0.1 * s, {"lm": 3.0 - 0.1 * s, "cls": 0.7}, 1e-3, 1.5,
                         900.0, {"block.0": 0.2 * s} if s == 2 else None) for s in (1, 2, 3)]
    batch = MetricsBatch.from_events(steps)
    assert batch.step.tolist() == [1, 2, 3] and batch.last_step == 3 and len(batch) == 3
    assert batch.losses["lm"].tolist() == pytest.approx([2.9, 2.8, 2.7])
    assert batch.group_grad_norms == {"block.0": 0.4}  # the newest in the batch
    one = step_columns(steps[0])
    assert one.step.tolist() == [1] and one.elapsed.tolist() == [0.5] and one.losses["cls"].tolist() == [0.7]
    assert step_columns(batch) is batch
