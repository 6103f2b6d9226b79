"""The command line end to end, as a user runs it: real subprocesses, a built-in corpus."""

import json
import os
import subprocess
import sys

import pytest


def workbench(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


TINY = ["--set", "model.n_layer=1", "--set", "model.n_embd=32", "--set", "model.n_head=2",
        "--set", "model.block_size=32", "--set", "training.batch_size=8", "--set", "training.eval_every=10",
        "--set", "training.attention_every=10", "--set", "training.threads=1"]


def test_train_resume_and_list_a_run_on_a_builtin_corpus(tmp_path):
    run = tmp_path / "run"
    r = workbench("train", "demo_toy", "--run-dir", str(run), "--set", "training.max_steps=20", *TINY)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["status"] == "completed" and summary["steps"] == 20 and summary["val_loss"] > 0
    assert "completed at step 20" in r.stderr
    assert (run / "config.toml").exists() and (run / "tokenizer.json").exists()
    assert len(list((run / "attention").glob("*.safetensors"))) == 3  # steps 0, 10, 20
    # continue the same run for longer
    r = workbench("train", "--resume", str(run), "--set", "training.max_steps=30")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["steps"] == 30
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["split"] == "train"]
    assert steps == list(range(1, 31))
    r = workbench("runs", "--dir", str(tmp_path), "--json")
    listed = json.loads(r.stdout)
    assert listed[0]["steps"] == 30 and listed[0]["status"] == "completed"


def test_bad_input_gets_a_message_and_exit_code_2(tmp_path):
    bad = tmp_path / "exp.toml"
    bad.write_text("[model]\nn_layers = 4\n")
    r = workbench("train", str(bad))
    assert r.returncode == 2
    assert str(bad) in r.stderr and 'did you mean "n_layer"' in r.stderr and "Traceback" not in r.stderr
    missing = tmp_path / "nowhere.txt"
    r = workbench("train", "demo_toy", "--quiet", "--set", f'corpus.paths=["{missing}"]', *TINY)
    # --quiet drops progress, not the reason the run failed
    assert r.returncode == 1 and "no such file or folder" in r.stderr and "Traceback" not in r.stderr


def test_corpus_stats_prints_a_table_and_json(tmp_path):
    (tmp_path / "a.txt").write_text("one line\ntwo lines\n")
    r = workbench("corpus", "stats", str(tmp_path / "a.txt"), "builtin:copy")
    assert r.returncode == 0, r.stderr
    assert "a.txt" in r.stdout and "builtin:copy" in r.stdout and "total" in r.stdout
    r = workbench("corpus", "stats", str(tmp_path / "a.txt"), "--json")
    stats = json.loads(r.stdout)
    assert stats["total"]["lines"] == 2 and stats["total"]["chars"] == 19


def test_bench_train_prints_engine_bare_and_machine_figures():
    r = workbench("bench", "train", "demo_toy", "--steps", "4", "--warmup", "1", "--rounds", "1", *TINY)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    tokens_per_step = 8 * 32  # batch 8 x block 32
    # the printed step times are rounded to 0.01 ms: compare within 1%
    assert out["tokens_per_s"] * out["step_ms"] / 1000 == pytest.approx(tokens_per_step, rel=0.01)
    assert out["ratio"] == pytest.approx(out["bare_step_ms"] / out["step_ms"], rel=0.01)
    assert out["threads"] == 1 and out["device"] == "cpu"
    assert out["matmul_peak_gflops"] > 0 and out["model_gflops"] > 0
    assert abs(out["mfu"] - out["model_gflops"] / out["matmul_peak_gflops"]) < 2e-3
    assert len(out["engine_rounds_tokens_per_s"]) == len(out["bare_rounds_tokens_per_s"]) == 1
    assert out["max_rss_mb"] > 50 and out["cuda_max_allocated_mb"] is None  # torch alone takes more than 50 MB


def test_a_run_folder_belongs_to_one_run(tmp_path):
    import signal
    import time

    run = tmp_path / "run"
    assert workbench("train", "demo_toy", "--run-dir", str(run), "--set", "training.max_steps=10", *TINY).returncode == 0
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    # the same folder again, without --resume: refused, the run left as it was
    r = workbench("train", "demo_toy", "--run-dir", str(run), "--set", "training.max_steps=5", *TINY)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "already holds a run" in r.stderr and f"--resume {run}" in r.stderr and "--overwrite" in r.stderr
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    r = workbench("train", "demo_toy", "--run-dir", str(run), "--overwrite", "--set", "training.max_steps=5", *TINY)
    assert r.returncode == 0, r.stderr
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["split"] == "train"]
    assert steps == [1, 2, 3, 4, 5]

    # two trains on one folder: the second refuses at once, naming the first's process
    live = tmp_path / "live"
    first = subprocess.Popen([sys.executable, "-m", "workbench", "train", "demo_toy", "--run-dir", str(live),
                              "--set", "training.max_steps=100000", "--set", "training.checkpoint_every=0",
                              # a run this long would be probed and compiled first (speed.py): minutes here
                              "--set", "training.compile=off", *TINY],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not ((live / "metrics.jsonl").is_file() and (live / "metrics.jsonl").stat().st_size > 0):
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        for args in (["demo_toy", "--run-dir", str(live), *TINY], ["demo_toy", "--run-dir", str(live), "--overwrite"],
                     ["--resume", str(live)]):
            r = workbench("train", *args)
            assert r.returncode == 2 and f"process {first.pid} on host" in r.stderr, (args, r.stderr)
        config = (live / "config.toml").read_bytes()
    finally:
        first.send_signal(signal.SIGINT)  # stops after this step and saves a checkpoint
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1])["status"] == "stopped"
    assert (live / "config.toml").read_bytes() == config and not (live / "run.lock").exists()
    r = workbench("generate", str(live), "--max-tokens", "3")  # its checkpoint is whole
    assert r.returncode == 0, r.stderr


def test_export_import_and_report_never_write_into_a_run_folder(tmp_path):
    run = tmp_path / "run"
    assert workbench("train", "demo_toy", "--run-dir", str(run), "--set", "training.max_steps=4", *TINY).returncode == 0
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    hf = tmp_path / "hf"
    assert workbench("export", str(run), str(hf)).returncode == 0
    for args in (["export", str(run), str(run)], ["import", str(hf), str(run)],
                 ["report", str(run), "--out", str(run / "report.html")],
                 ["report", str(run), "--out", str(run / "checkpoints" / "step_0000004.json")]):
        r = workbench(*args)
        assert r.returncode == 2 and "inside the run folder" in r.stderr and "Traceback" not in r.stderr, args
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    page = tmp_path / "page.html"
    page.write_text("<p>mine</p>")
    r = workbench("report", str(run), "--out", str(page))
    assert r.returncode == 2 and "not an earlier report" in r.stderr and page.read_text() == "<p>mine</p>"


def test_runs_lists_every_run_when_one_is_damaged(tmp_path):
    from tests.engine.test_run_folders import damaged_runs

    expected = damaged_runs(tmp_path)
    r = workbench("runs", "--dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    for name in list(expected) + ["good"]:
        assert name in r.stdout
    assert r.stdout.count("damaged:") == len(expected)
    listed = {d["path"].rsplit("/", 1)[-1]: d for d in json.loads(workbench("runs", "--dir", str(tmp_path),
                                                                              "--json").stdout)}
    assert not listed["good"]["damaged"] and listed["bad-best"]["damaged"][0].startswith("best.json")
    r = workbench("report", str(tmp_path / "bad-metrics"), "--out", str(tmp_path / "bad.html"))
    assert r.returncode == 0, r.stderr
    assert "metrics.jsonl line 6" in (tmp_path / "bad.html").read_text()


def test_a_run_killed_with_sigkill_resumes_and_its_leftovers_go(tmp_path):
    import signal
    import time

    run = tmp_path / "run"
    victim = subprocess.Popen([sys.executable, "-m", "workbench", "train", "demo_toy", "--run-dir", str(run), "--quiet",
                               "--set", "training.max_steps=100000", "--set", "training.checkpoint_every=1",
                               "--set", "training.keep_checkpoints=2", *TINY],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while len(list((run / "checkpoints").glob("step_*.json"))) < 2:  # writing a checkpoint every step
            assert victim.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    assert json.loads((run / "run.lock").read_text())["pid"] == victim.pid  # left behind by kill -9
    (run / "checkpoints" / ".step_0000099.safetensors.abc123_z.tmp").write_bytes(b"\0" * 5000)  # as a torn write
    last = max(int(p.stem.split("_")[1]) for p in (run / "checkpoints").glob("step_*.json"))
    r = workbench("train", "--resume", str(run), "--set", f"training.max_steps={last + 3}")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["steps"] == last + 3
    assert "stale lock" in r.stderr and f"process {victim.pid}" in r.stderr
    assert "leftover file" in r.stderr
    assert not list(run.rglob("*.tmp")) and not (run / "run.lock").exists()
