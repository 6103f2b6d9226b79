"""[logging] tensorboard = true: event files beside metrics.jsonl that hold the same numbers, and a
clear message, before anything is written, where the package is missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from workbench.engine.checkpoint import read_metrics
from workbench.engine.errors import ConfigError
from workbench.engine.trainer import Trainer
from tests.engine.test_trainer import tiny_experiment


def test_tensorboard_event_files_hold_the_losses_the_run_wrote(small_text, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    exp = tiny_experiment(small_text, max_steps=12, eval_every=6, attention_every=6)
    exp = exp.with_overrides(["logging.tensorboard=true"])
    run = tmp_path / "run"
    result = Trainer(exp, run_dir=run).run()
    assert result.status == "completed", result.message
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    ea = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    ea.Reload()
    tags = set(ea.Tags()["scalars"])
    assert {"loss/train/lm", "loss/val/lm", "lr", "grad_norm", "tokens_per_s"} <= tags
    rows = read_metrics(run / "metrics.jsonl")
    train = [(r["step"], r["loss"]) for r in rows if r["split"] == "train"]
    logged = [(e.step, e.value) for e in ea.Scalars("loss/train/lm")]
    assert [s for s, _ in logged] == [s for s, _ in train] == list(range(1, 13))
    assert np.allclose([v for _, v in logged], [v for _, v in train], rtol=1e-6)  # float32 in the file
    val = [(r["step"], r["loss"]) for r in rows if r["split"] == "val"]
    assert [(e.step, round(e.value, 5)) for e in ea.Scalars("loss/val/lm")] == [(s, round(v, 5)) for s, v in val]
    lrs = [r["lr"] for r in rows if r["split"] == "train"]
    assert np.allclose([e.value for e in ea.Scalars("lr")], lrs, rtol=1e-6)
    images = ea.Images("attention/layer_0")
    assert [im.step for im in images] == [0, 6, 12] and images[0].width > images[0].height  # heads side by side


def test_without_the_package_the_run_refuses_before_it_starts(small_text, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed: importing it fails
    exp = tiny_experiment(small_text, max_steps=3).with_overrides(["logging.tensorboard=true"])
    run = tmp_path / "run"
    result = Trainer(exp, run_dir=run).run()
    assert result.status == "failed" and isinstance(result.error, ConfigError)
    assert "logging.tensorboard = true" in result.message and 'pip install "gpt-workbench[tensorboard]"' in result.message
    assert not run.exists()  # nothing was written

    # the command line, in a process where the package cannot be imported: exit code 2, the same words
    toml = tmp_path / "exp.toml"
    exp.save(toml)
    code = ("import sys; sys.modules['tensorboard'] = None; from workbench.cli import main; "
            f"sys.exit(main(['train', {str(toml)!r}, '--run-dir', {str(run)!r}, '--quiet']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert r.returncode == 2, r.stderr
    assert "logging.tensorboard" in r.stderr and 'pip install "gpt-workbench[tensorboard]"' in r.stderr
    assert "Traceback" not in r.stderr and not run.exists()
