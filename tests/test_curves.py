"""workbench.curves: the numbers behind every curve, without Qt or torch."""

import numpy as np
import pytest

from workbench.curves import MetricsBatch, ema_smooth, ema_weight_for, step_columns, thin
from workbench.engine.events import StepMetrics


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
