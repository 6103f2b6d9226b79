"""A headless `workbench train` obeys its run folder's control.json: paused, resumed and stopped
from another process (`workbench control`), answering in status.json."""

import json
import os
import subprocess
import sys
import time

from tests.e2e.test_cli import TINY, workbench


def train_steps(run):
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.endswith("}")]
    return [r["step"] for r in rows if r["split"] == "train"]


def test_a_headless_run_is_paused_resumed_and_stopped_through_its_control_file(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "train", "demo_toy", "--run-dir", str(run),
                             "--set", "training.max_steps=100000", "--set", "training.checkpoint_every=0", *TINY],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        deadline = time.monotonic() + 240
        while not ((run / "metrics.jsonl").is_file() and len(train_steps(run)) >= 5):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else ""
            time.sleep(0.1)
        r = workbench("control", str(run), "pause")
        assert r.returncode == 0 and "paused at step" in r.stderr, r.stderr
        status = json.loads((run / "status.json").read_text())
        assert status["state"] == "paused" and status["pid"] == proc.pid
        paused_at = status["step"]
        assert train_steps(run)[-1] == paused_at  # it stopped between two steps, and trains no further
        r = workbench("runs", "--dir", str(tmp_path), "--json")
        assert json.loads(r.stdout)[0]["status"] == "paused"

        r = workbench("control", str(run), "resume")
        assert r.returncode == 0 and "running at step" in r.stderr, r.stderr
        while train_steps(run)[-1] <= paused_at:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)

        r = workbench("control", str(run), "stop")
        assert r.returncode == 0 and "stopped at step" in r.stderr, r.stderr
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["status"] == "stopped" and f"paused at step {paused_at}" in err and "resumed at step" in err
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "stopped" and status["step"] == summary["steps"] == train_steps(run)[-1]
    assert (run / "checkpoints" / f"step_{summary['steps']:07d}.json").is_file()  # a stop saves a checkpoint

    # a run that no longer trains: a clear message and exit code 2, nothing written
    before = (run / "control.json").read_bytes()
    r = workbench("control", str(run), "pause")
    assert r.returncode == 2 and "no run is training in this folder" in r.stderr and "stopped at step" in r.stderr
    assert (run / "control.json").read_bytes() == before
