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
