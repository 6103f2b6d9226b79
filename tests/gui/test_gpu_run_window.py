"""A run on all GPUs from the window: detect_devices offers "all N GPUs" with two or more CUDA devices;
Start saves the experiment beside a new run folder, starts `workbench train --nproc N` as a child and
follows it; Pause is off (DDP ignores it), closing asks and stops the child through control.json.

No GPU here: the device detection is faked, and the child's command line gets `training.device=cpu`
(two gloo processes on the CPU, the same torchrun path)."""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
from PySide6 import QtWidgets

from workbench.engine import device as device_mod
from workbench.engine.config import ModelConfig, load_experiment
from workbench.gui.window import gpu_run

from .windows import train_steps


def fake_gpus(monkeypatch, n: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda i: SimpleNamespace(name="NVIDIA H100 80GB HBM3", total_memory=80 * 2**30))


def test_all_gpus_is_offered_with_two_or_more_cuda_devices_after_the_single_ones(monkeypatch):
    fake_gpus(monkeypatch, 4)
    ids = [d.id for d in device_mod.detect_devices()]
    assert ids[:5] == ["cuda:0", "cuda:1", "cuda:2", "cuda:3", "cuda:all"] and ids[-1] == "cpu"
    assert [d.label for d in device_mod.detect_devices() if d.id == "cuda:all"] == ["all 4 GPUs (torchrun)"]
    assert device_mod.resolve_device("auto") == torch.device("cuda", 0)  # auto stays one device
    fake_gpus(monkeypatch, 1)
    assert "cuda:all" not in [d.id for d in device_mod.detect_devices()]


@pytest.fixture
def window(fresh_window):
    return fresh_window



@pytest.mark.slow
@pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()), reason="no gloo backend")
def test_start_on_all_gpus_runs_a_torchrun_child_follows_it_and_closing_stops_it(window, qtbot, monkeypatch):
    w = window
    two_gpus = [("cuda:0", "GPU A (cuda:0)"), ("cuda:1", "GPU B (cuda:1)"), ("cuda:all", "all 2 GPUs (torchrun)"),
                ("cpu", "CPU")]
    w.training.set_devices(two_gpus)
    w.training.device_combo.setCurrentIndex(w.training.device_combo.findData("cuda:all"))
    assert w.training.gpu_processes() == 2
    w.model.set_config(ModelConfig(n_layer=1, n_head=2, n_embd=32, block_size=32))
    w.training.set_config(dataclasses.replace(w.training.config(), max_steps=100000, batch_size=8, warmup_steps=2,
                                              eval_every=10, attention_every=0, checkpoint_every=0))
    assert w.training.device_combo.currentData() == "cuda:all"  # device "cuda" loaded back keeps the choice
    cmd = shlex.split(w.copy_command())  # the same run from a shell
    assert cmd[cmd.index("--nproc") + 1] == "2" and 'training.device="cuda"' in cmd
    built = []

    def on_the_cpu(exp_path, nproc, run_dir):  # the real command line, trained on the CPU here
        argv = real_command(exp_path, nproc, run_dir)
        built.append(argv)
        return argv + ["--set", "training.device=cpu", "--set", "training.threads=1"]

    real_command = gpu_run.command
    monkeypatch.setattr(gpu_run, "command", on_the_cpu)
    asked = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "question",
                        lambda *a, **k: asked.append(a) or QtWidgets.QMessageBox.StandardButton.Yes)

    assert w.start()
    run = w.gpu_run
    assert run is not None and not w.session.is_active()
    argv = built[0]
    assert argv[1:4] == ["-m", "workbench", "train"] and argv[4] == str(run.exp_path)
    assert argv[argv.index("--nproc") + 1] == "2" and argv[argv.index("--run-dir") + 1] == str(run.run_dir)
    # the experiment saved beside the new run folder, as the window holds it, for every GPU
    assert run.exp_path.parent == run.run_dir.parent and run.exp_path.name == run.run_dir.name + ".toml"
    saved = load_experiment(run.exp_path)
    assert saved.training.device == "cuda" and saved.model.n_embd == 32
    # followed like any other process's run; Pause holds every process (the ranks agree on it)
    assert w.follow.is_following() and Path(w.follow.run_dir) == run.run_dir
    assert "Pause holds every process" in w.statusBar().currentMessage()
    qtbot.waitUntil(lambda: len(train_steps(w)) >= 3, timeout=240000)
    qtbot.waitUntil(lambda: w.follow.state == "running", timeout=30000)  # from status.json, polled apart
    assert w.pause_action.isEnabled() and w.stop_action.isEnabled()
    w.pause_action.trigger()
    qtbot.waitUntil(lambda: w.follow.state == "paused", timeout=60000)
    paused_at = json.loads((run.run_dir / "status.json").read_text())["step"]
    qtbot.waitUntil(lambda: train_steps(w)[-1] == paused_at, timeout=30000)  # the curve catches up
    qtbot.wait(1500)
    assert train_steps(w)[-1] == paused_at and run.running()  # and trains no further
    assert w.resume_action.isEnabled() and not w.pause_action.isEnabled()
    w.resume_action.trigger()
    qtbot.waitUntil(lambda: w.follow.state == "running", timeout=60000)
    status = json.loads((run.run_dir / "status.json").read_text())
    assert status["state"] == "running"

    # closing asks, stops the child through control.json (a checkpoint is saved) and then closes
    w.close()
    assert asked and w.isVisible() and (run.run_dir / "control.json").exists()
    qtbot.waitUntil(lambda: not run.running(), timeout=180000)
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=10000)
    assert run.proc.returncode == 0, run.log_tail()
    assert json.loads((run.run_dir / "status.json").read_text())["state"] == "stopped"
    assert list((run.run_dir / "checkpoints").glob("step_*.json"))
    assert run.log_path.exists()


def test_a_child_that_dies_before_training_is_reported_with_its_output(window, qtbot, monkeypatch):
    w = window
    w.training.set_devices([("cuda:0", "A"), ("cuda:1", "B"), ("cuda:all", "all 2 GPUs (torchrun)"), ("cpu", "CPU")])
    w.training.device_combo.setCurrentIndex(w.training.device_combo.findData("cuda:all"))
    monkeypatch.setattr(gpu_run, "command", lambda *a: [sys.executable, "-c",
                                                        "import sys; print('torchrun: no such thing'); sys.exit(3)"])
    assert w.start()
    qtbot.waitUntil(lambda: not w.follow.is_following(), timeout=30000)
    shown = w.training.error.text()
    assert "exit code 3" in shown and "torchrun: no such thing" in shown and not w.training.error.isHidden()
    assert w.start_action.isEnabled()  # the window trains again
