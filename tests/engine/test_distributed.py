"""One run on two processes (gloo on the CPU, loopback) against the same run on one.

Each test starts small runs as child processes: through ``workbench train --nproc 2`` (torchrun), or
rank by rank with torchrun's environment variables (to watch one rank alone, or kill it). Every child
has a timeout; the whole file is skipped where this PyTorch has no gloo backend.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from safetensors.torch import load_file

from workbench.engine.config import Experiment
from workbench.engine.distributed import Group
from workbench.engine.errors import ConfigError
from workbench.engine.trainer import Trainer, saved_experiment

pytestmark = [
    pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()), reason="no gloo backend"),
    pytest.mark.slow,
]

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 240  # seconds any child run may take on a busy 2-core machine


def experiment(corpus, path: Path, *settings) -> Path:
    """A tiny, dropout-free experiment saved as TOML (the children read it like a user's file)."""
    exp = Experiment(name="d").with_overrides([
        f'corpus.paths=["{corpus}"]', "tokenizer.kind=char", "model.n_layer=2", "model.n_head=2", "model.n_embd=32",
        "model.block_size=32", "model.dropout=0.0", "training.batch_size=8", "training.learning_rate=3e-3",
        "training.min_lr=3e-4", "training.warmup_steps=2", "training.lr_decay_steps=8", "training.eval_batches=2",
        "training.threads=1", "training.max_steps=6", "training.eval_every=3", "training.checkpoint_every=3",
        "training.attention_every=3", *settings])
    exp.save(path)
    return path


def child_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    return {**env, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **extra}


def nproc(*args, n=2) -> subprocess.CompletedProcess:
    """``workbench train ... --nproc n``: torchrun started by the command itself."""
    r = subprocess.run([sys.executable, "-m", "workbench", "train", *map(str, args), "--nproc", str(n)],
                       env=child_env(), capture_output=True, text=True, timeout=LIMIT, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# A rank under an audit hook: every file it opens for writing, every folder it makes and
# every file it moves or deletes is printed on stderr when it ends.
AUDITED = r"""
import os, sys
seen = []
def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        mode, flags = args[1], args[2]
        if (mode and any(c in str(mode) for c in "wax+")) or flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            seen.append(os.fsdecode(args[0]))
    elif event in ("os.mkdir", "os.rename", "os.replace", "os.remove", "os.rmdir", "os.truncate", "shutil.move",
                   "shutil.rmtree") and isinstance(args[0], (str, bytes, os.PathLike)):
        seen.append(os.fsdecode(args[0]))
sys.addaudithook(hook)
from workbench.cli import main
code = main(sys.argv[1:])
sys.stderr.write("WRITES " + repr(seen) + "\n")
sys.exit(code)
"""


def ranks(*args, world=2, audit=False) -> list[subprocess.Popen]:
    """The ranks of one run started one by one with the environment torchrun would give them."""
    port, procs = free_port(), []
    for r in range(world):
        env = child_env(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(r), LOCAL_RANK=str(r),
                        WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world))
        code = ["-c", AUDITED] if audit else ["-m", "workbench"]
        procs.append(subprocess.Popen([sys.executable, *code, "train", *map(str, args)], env=env, cwd=ROOT,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return procs


def train_losses(run: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if r.get("split") == "train"}


def one_process(toml: Path, run: Path):
    result = Trainer(_load(toml), run_dir=run).run()
    assert result.status == "completed", result.message


def _load(toml: Path) -> Experiment:
    from workbench.engine.config import load_experiment

    return load_experiment(toml)


def assert_same_losses(a: dict[int, float], b: dict[int, float], steps) -> None:
    assert sorted(a) == sorted(b) == list(steps)
    for s in steps:
        assert abs(a[s] - b[s]) <= 1e-5, (s, a[s], b[s])


def files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


# -- the batch ---------------------------------------------------------------------------------


def test_each_rank_takes_its_rows_of_the_global_batch():
    batch = {"x": torch.arange(16).view(8, 2), "y": torch.arange(8)}
    parts = [Group(r, 4).shard(batch) for r in range(4)]
    assert [p["y"].tolist() for p in parts] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert torch.equal(torch.cat([p["x"] for p in parts]), batch["x"])
    with pytest.raises(ConfigError, match=r"training.batch_size = 10 .* not divisible by 4"):
        Group(0, 4).check_batch(10)


def test_ranks_after_the_first_draw_their_own_dropout_masks():
    def draws(rank):
        torch.manual_seed(5)
        Group(rank, 2).own_dropout(5, step=3)
        return torch.rand(8)

    torch.manual_seed(5)
    run_stream = torch.rand(8)
    assert torch.equal(draws(0), run_stream)        # rank 0 keeps the stream its checkpoints store
    assert not torch.equal(draws(1), run_stream)    # rank 1's rows get other masks
    assert torch.equal(draws(1), draws(1))          # and the same ones on every start at that step


def test_nproc_refuses_a_batch_it_cannot_split(small_text, tmp_path):
    toml = experiment(small_text, tmp_path / "e.toml", "training.batch_size=9")
    r = subprocess.run([sys.executable, "-m", "workbench", "train", str(toml), "--nproc", "2"], env=child_env(),
                       capture_output=True, text=True, timeout=LIMIT, cwd=ROOT)
    assert r.returncode == 2
    assert "training.batch_size = 9" in r.stderr and "2 processes" in r.stderr


# -- two processes train like one ------------------------------------------------------------------


def test_two_processes_compute_the_one_process_losses(small_text, tmp_path):
    toml = experiment(small_text, tmp_path / "e.toml")
    one_process(toml, tmp_path / "one")
    nproc(toml, "--run-dir", tmp_path / "two")
    assert_same_losses(train_losses(tmp_path / "one"), train_losses(tmp_path / "two"), range(1, 7))
    # the same run folder, written once: rank 0's files and nothing else (no second metrics line per step)
    assert files(tmp_path / "two") == files(tmp_path / "one")
    a = load_file(tmp_path / "one/checkpoints/step_0000006.safetensors")
    b = load_file(tmp_path / "two/checkpoints/step_0000006.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_two_machines_on_the_loopback_train_like_one_process(small_text, tmp_path):
    """The README's two-machine command: two torchrun invocations, --nnodes 2, c10d rendezvous."""
    toml = experiment(small_text, tmp_path / "e.toml")
    one_process(toml, tmp_path / "one")
    endpoint = f"127.0.0.1:{free_port()}"
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
                               "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", "wb-test",
                               "-m", "workbench", "train", str(toml), "--run-dir", str(tmp_path / "two")],
                              env=child_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=LIMIT) for p in nodes]
    assert [p.returncode for p in nodes] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    assert_same_losses(train_losses(tmp_path / "one"), train_losses(tmp_path / "two"), range(1, 7))
    assert sum('"status": "completed"' in out for out, _ in outs) == 1  # rank 0's summary, on one node


def test_only_rank_0_writes(small_text, tmp_path):
    toml = experiment(small_text, tmp_path / "e.toml")
    procs = ranks(toml, "--run-dir", tmp_path / "run", audit=True)
    outs = [p.communicate(timeout=LIMIT) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    # what each rank opened for writing, made, moved or deleted in the run folder, the data dir and the
    # token cache (torch's own temp files elsewhere are not ours)
    places = (str(tmp_path), str(Path(os.environ["WORKBENCH_DATA_DIR"]).parent))
    writes = [[w for w in eval(err.split("WRITES ")[-1].strip()) if w.startswith(places)] for _, err in outs]
    assert any(w.endswith("metrics.jsonl") for w in writes[0])  # the audit sees rank 0's writes
    assert writes[1] == []
    assert (tmp_path / "run/metrics.jsonl").exists() and sorted(train_losses(tmp_path / "run")) == list(range(1, 7))
    assert json.loads(outs[0][0].strip().splitlines()[-1])["status"] == "completed" and outs[1][0] == ""  # one summary, rank 0's


def test_a_killed_rank_stops_the_others_with_its_number(small_text, tmp_path):
    toml = experiment(small_text, tmp_path / "e.toml", "training.max_steps=100000", "training.eval_every=0",
                      "training.checkpoint_every=0", "training.attention_every=0", "training.dist_timeout=20")
    procs = ranks(toml, "--run-dir", tmp_path / "run")
    metrics = tmp_path / "run/metrics.jsonl"
    deadline = time.monotonic() + LIMIT
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
        assert time.monotonic() < deadline and procs[0].poll() is None, procs[0].communicate()[1][-2000:]
        time.sleep(0.2)
    procs[1].send_signal(signal.SIGKILL)
    t0 = time.monotonic()
    _, err = procs[0].communicate(timeout=60)
    assert procs[0].returncode == 1
    assert "rank 1 of 2 stopped answering" in err, err[-2000:]
    assert time.monotonic() - t0 < 20 + 15  # within the collectives' timeout (and the census)


def test_ctrl_c_on_one_rank_stops_every_rank_at_the_same_step(small_text, tmp_path):
    """The stop flag rides on the step's all-reduce: a Ctrl-C that reaches rank 1 alone stops both
    ranks after the same step, and rank 0 saves the checkpoint of that step."""
    toml = experiment(small_text, tmp_path / "e.toml", "training.max_steps=100000", "training.eval_every=0",
                      "training.checkpoint_every=0", "training.attention_every=0")
    procs = ranks(toml, "--run-dir", tmp_path / "run")
    metrics = tmp_path / "run/metrics.jsonl"
    deadline = time.monotonic() + LIMIT
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
        assert time.monotonic() < deadline and procs[0].poll() is None, procs[0].communicate()[1][-2000:]
        time.sleep(0.2)
    procs[1].send_signal(signal.SIGINT)
    outs = [p.communicate(timeout=LIMIT) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    summary = json.loads(outs[0][0].strip().splitlines()[-1])
    assert summary["status"] == "stopped"
    assert sorted(train_losses(tmp_path / "run"))[-1] == summary["steps"]  # no rank went on alone
    assert (tmp_path / f"run/checkpoints/step_{summary['steps']:07d}.safetensors").exists()


def test_ctrl_c_on_nproc_stops_the_run_cleanly(small_text, tmp_path):
    """`workbench train --nproc 2` passes Ctrl-C on to the ranks: they stop, rank 0 checkpoints, and the
    command ends with exit code 0 (not torchrun's traceback)."""
    toml = experiment(small_text, tmp_path / "e.toml", "training.max_steps=100000", "training.eval_every=0",
                      "training.checkpoint_every=0", "training.attention_every=0")
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "train", str(toml), "--run-dir", str(tmp_path / "run"),
                             "--nproc", "2"], env=child_env(), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "run/metrics.jsonl"
    deadline = time.monotonic() + LIMIT
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()[1][-2000:]
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=LIMIT)
    assert proc.returncode == 0, err[-2000:]
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["status"] == "stopped" and "Traceback" not in err
    assert (tmp_path / f"run/checkpoints/step_{summary['steps']:07d}.safetensors").exists()


# -- resume on another number of processes ---------------------------------------------------------


def test_resume_on_one_process_of_a_two_process_run_and_back(small_text, tmp_path):
    toml = experiment(small_text, tmp_path / "e.toml", "training.max_steps=8", "training.checkpoint_every=4",
                      "training.eval_every=4", "training.attention_every=0")
    half = experiment(small_text, tmp_path / "half.toml", "training.max_steps=4", "training.checkpoint_every=4",
                      "training.eval_every=4", "training.attention_every=0")
    one_process(toml, tmp_path / "straight")
    straight = train_losses(tmp_path / "straight")

    nproc(half, "--run-dir", tmp_path / "a")          # 2 processes to step 4, then 1 process to 8
    Trainer(saved_experiment(tmp_path / "a").with_overrides(["training.max_steps=8"]), resume=tmp_path / "a").run()
    assert_same_losses(straight, train_losses(tmp_path / "a"), range(1, 9))

    one_process(half, tmp_path / "b")                 # 1 process to step 4, then 2 processes to 8
    nproc("--resume", tmp_path / "b", "--set", "training.max_steps=8")
    assert_same_losses(straight, train_losses(tmp_path / "b"), range(1, 9))


# -- multi-task and freezing -----------------------------------------------------------------------


def test_pcgrad_under_ddp_equals_pcgrad_in_one_process(small_text, tmp_path):
    """PCGrad projects the tasks' global gradients: the same numbers as one process on the whole batch,
    and the same conflict matrix."""
    toml = experiment(small_text, tmp_path / "e.toml", 'tasks=[{kind="causal_lm"}, {kind="continuity"}]',
                      "multitask.weighting=pcgrad", "multitask.conflict_every=2")
    one_process(toml, tmp_path / "one")
    nproc(toml, "--run-dir", tmp_path / "two")
    rows = {d: [json.loads(x) for x in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]
            for d in ("one", "two")}
    for a, b in zip(rows["one"], rows["two"], strict=True):
        assert a.keys() == b.keys()
        for k in a.keys() - {"time", "tokens_per_s", "grad_norm"}:
            if isinstance(a[k], float):
                assert abs(a[k] - b[k]) <= 1e-5, (k, a, b)
    bal = {d: [json.loads(x) for x in (tmp_path / d / "balance.jsonl").read_text().splitlines()] for d in ("one", "two")}
    assert [r["step"] for r in bal["two"]] == [r["step"] for r in bal["one"]] == [2, 4, 6]
    for a, b in zip(bal["one"], bal["two"]):
        assert torch.allclose(torch.tensor(a["conflict"]), torch.tensor(b["conflict"]), atol=1e-4)


def test_gradual_unfreezing_under_ddp_trains_what_the_plan_says(small_text, tmp_path):
    """ln_f first, block.1 from step 2, block.0 from step 4, the embeddings never within 6 steps: DDP is
    rebuilt on each new trainable set, the frozen weights stay the initial ones, and both ranks agree
    (the losses are the one-process ones)."""
    toml = experiment(small_text, tmp_path / "e.toml", "finetune.freeze=gradual", "finetune.unfreeze_every=2",
                      "training.checkpoint_every=2", "training.keep_checkpoints=5")
    start = Trainer(_load(toml), run_dir=tmp_path / "init")
    init = {f"model.{k}": v.clone() for k, v in start.prepare().model.state_dict().items()}
    start.close()
    one_process(toml, tmp_path / "one")
    nproc(toml, "--run-dir", tmp_path / "two")
    assert_same_losses(train_losses(tmp_path / "one"), train_losses(tmp_path / "two"), range(1, 7))

    def at(step):
        return load_file(tmp_path / f"two/checkpoints/step_{step:07d}.safetensors")

    def same(w, prefix):
        return all(torch.equal(w[k], init[k]) for k in init if k.startswith(prefix))

    for step, frozen, trained in ((2, ["model.transformer.h.", "model.transformer.w"], ["model.transformer.ln_f"]),
                                  (4, ["model.transformer.h.0.", "model.transformer.w"], ["model.transformer.h.1."]),
                                  (6, ["model.transformer.w"], ["model.transformer.h.0."])):
        w = at(step)
        assert all(same(w, p) for p in frozen), step
        assert not any(same(w, p) for p in trained), step


def test_a_pause_from_the_control_file_holds_every_rank_and_changes_no_number(small_text, tmp_path):
    """`workbench control RUN pause` on a 2-process run: both ranks wait at one step boundary (rank 0
    reads control.json, the pause reaches the other through the step's all-reduce), then resume, stop,
    and have computed the one-process losses."""
    from tests.e2e.test_control_file import train_steps

    toml = experiment(small_text, tmp_path / "e.toml", "training.max_steps=100000", "training.lr_decay_steps=400",
                      "training.eval_every=0", "training.checkpoint_every=0", "training.attention_every=0")
    run = tmp_path / "two"
    # the console progress goes to a file: a pipe nobody reads fills up and blocks the run
    log = (tmp_path / "stderr.txt").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "train", str(toml), "--run-dir", str(run),
                             "--nproc", "2"], env=child_env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)

    def control(word):
        return subprocess.run([sys.executable, "-m", "workbench", "control", str(run), word], env=child_env(),
                              cwd=ROOT, capture_output=True, text=True, timeout=LIMIT)

    def wait_for_step(n):
        while not ((run / "metrics.jsonl").is_file() and train_steps(run) and train_steps(run)[-1] >= n):
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "stderr.txt").read_text()[-3000:]
            time.sleep(0.05)

    try:
        deadline = time.monotonic() + LIMIT
        wait_for_step(3)
        r = control("pause")
        assert r.returncode == 0 and "paused at step" in r.stderr, r.stderr
        paused_at = json.loads((run / "status.json").read_text())["step"]
        time.sleep(2.0)   # both ranks hold: no step is trained, and no collective times out meanwhile
        assert train_steps(run)[-1] == paused_at and proc.poll() is None
        r = control("resume")
        assert r.returncode == 0 and "running at step" in r.stderr, r.stderr
        wait_for_step(paused_at + 3)
        r = control("stop")
        assert r.returncode == 0 and "stopped at step" in r.stderr, r.stderr
        proc.wait(timeout=LIMIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    err = (tmp_path / "stderr.txt").read_text()
    assert proc.returncode == 0, err[-3000:]
    assert f"paused at step {paused_at}" in err and "resumed at step" in err
    last = train_steps(run)[-1]
    exp = _load(toml).with_overrides([f"training.max_steps={last}"])
    assert Trainer(exp, run_dir=tmp_path / "one").run().status == "completed"
    assert_same_losses(train_losses(tmp_path / "one"), train_losses(run), range(1, last + 1))
