"""`workbench bench gui` and the widget benchmarks run end to end and report every figure (short
runs; no timing limits here: the figures depend on the machine, and the note in the docs gives the
measured ones)."""

from __future__ import annotations

import json
import math

import pytest

from workbench.bench import gui as bench
from workbench.bench.widgets import paint_benchmark, redraw_benchmark


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@pytest.mark.slow
def test_bench_gui_short_run_reports_every_figure(qapp, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    # all_cores_seconds: long enough for two training steps on a loaded 2-core machine
    r = bench.main("demo_toy", 3.0, segments=1, warmup=1.0, attention_seconds=1.5, all_cores_seconds=3.0,
                   redraw_points=20_000, paint_repeats=3)
    json.dumps(r, allow_nan=False)  # what the command prints

    for key in ("event_loop", "event_loop_attention"):
        lat = r[key]
        assert lat["n"] > 0
        for k in ("p50_ms", "p99_ms", "max_ms"):
            assert _number(lat[k]) and lat[k] >= 0, (key, k, lat[k])
        assert lat["p50_ms"] <= lat["p99_ms"] <= lat["max_ms"]

    t = r["throughput"]
    for k in ("gui_tokens_per_s", "gui_with_lateness_timer_tokens_per_s", "ratio_same_threads",
              "ratio_with_lateness_timer", "ratio_all_cores"):
        assert _number(t[k]) and t[k] > 0, (k, t[k])
    for k in ("headless_same_threads", "headless_all_cores"):
        assert _number(t[k]["tokens_per_s"]) and t[k]["tokens_per_s"] > 0, (k, t[k])
    assert t["headless_same_threads"]["threads"] == r["gui_worker_threads"] == max(1, r["cores"] - 1)

    redraw = r["curves_redraw"]
    assert redraw["points"] == 20_000
    for k in ("full_refresh_ms", "append_refresh_ms", "log_y_refresh_ms"):
        assert _number(redraw[k]) and redraw[k] > 0, (k, redraw[k])

    stopped = r["attention_to_pixels"]["run_stopped"]
    assert stopped["n"] == 3
    for k in ("p50_ms", "p99_ms", "max_ms"):
        assert _number(stopped[k]) and stopped[k] > 0
    live = r["attention_to_pixels"]["while_training"]
    assert all(_number(live[k]) and live[k] > 0 for k in ("p50_ms", "max_ms")) if live["n"] else True
    assert all(_number(v) and v > 0 for v in r["attention_widget"].values())
    assert all(_number(v) for v in r["cpu"]["curves_page"].values())


def test_redraw_benchmark_runs(qapp):
    result = redraw_benchmark(n=20_000, repeats=2)
    assert result["points"] == 20_000
    assert result["full_refresh_ms"] > 0 and result["displayed_points"] < 20_000


def test_paint_benchmark_runs(qapp):
    result = paint_benchmark(sizes=(16,), repeats=3, grid_shape=(2, 2))
    assert result["heatmap_T16_ms"] > 0 and result["grid_2x2_T16_ms"] > 0
