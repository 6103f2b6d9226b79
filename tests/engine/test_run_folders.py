"""What a run folder promises (docs/RUN_FOLDERS.md): one run owns it, leftovers of interrupted writes
are removed, a full disk is a message that names the file and the intact checkpoint, and one damaged
file never hides the other runs."""

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.engine.test_trainer import tiny_experiment
from workbench.engine import checkpoint as ckpt
from workbench.engine import ownership
from workbench.engine.config import Experiment
from workbench.engine.errors import CheckpointError
from workbench.engine.events import CheckpointSaved, Failed, ListReporter, RunStarted, StepMetrics
from workbench.engine.runs import list_runs
from workbench.engine.trainer import Trainer, saved_experiment


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of a folder and its bytes (run.lock aside): to show that nothing changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ownership.LOCK_NAME}


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


HOLD_LOCK = """
import sys, time
from workbench.engine.ownership import RunLock
lock = RunLock.acquire(sys.argv[1])  # held while the object lives
print("locked", flush=True)
time.sleep(120)
"""


def hold_lock_in_subprocess(folder: Path) -> subprocess.Popen:
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    p = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(folder)], stdout=subprocess.PIPE, text=True, env=env)
    assert p.stdout.readline().strip() == "locked"
    return p


# -- one run per folder ---------------------------------------------------------------------------


def test_a_second_trainer_on_a_running_folder_refuses_and_the_first_finishes_intact(small_text, tmp_path):
    folder = tmp_path / "run"
    exp = tiny_experiment(small_text, max_steps=12, eval_every=6, attention_every=6, checkpoint_every=4)
    other = exp.with_overrides(["training.learning_rate=1e-2", "training.seed=7"])
    second, statuses = {}, []

    class Intruder(ListReporter):
        """While the first run trains (step 5), a second one tries the same folder: new, and resumed."""

        def report(self, e):
            super().report(e)
            if isinstance(e, StepMetrics) and e.step == 5:
                for kind, t in (("new", Trainer(other, run_dir=folder)), ("overwrite", Trainer(other, run_dir=folder,
                                overwrite=True)), ("resume", Trainer(saved_experiment(folder), resume=folder))):
                    rep = ListReporter()
                    second[kind] = (t.run(reporter=rep), rep)
                statuses.append(list_runs(tmp_path)[0].status)  # `workbench runs` meanwhile

    result = Trainer(exp, run_dir=folder).run(reporter=Intruder())
    assert result.status == "completed" and result.step == 12
    for kind, (res, rep) in second.items():
        assert res.status == "failed", kind
        msg = rep.of(Failed)[0].message
        assert f"process {os.getpid()} on host {socket.gethostname()}" in msg and "another training run" in msg
        assert not rep.of(RunStarted)
    # the first run's files are its own: config, checkpoints 4, 8, 12 of one run, metrics 1..12 once
    assert saved_experiment(folder) == exp
    run = ckpt.RunDir.open(folder)
    assert run.checkpoint_steps() == [4, 8, 12]
    for step in run.checkpoint_steps():
        _, meta = ckpt.load_checkpoint(run.checkpoint_path(step))
        assert meta["experiment"] == exp.to_dict()
    steps = [r["step"] for r in ckpt.read_metrics(run.metrics) if r["split"] == "train"]
    assert steps == list(range(1, 13))
    assert not (folder / ownership.LOCK_NAME).exists()  # released at the end
    assert statuses == ["training"] and list_runs(tmp_path)[0].status == "completed"


def test_a_lock_held_by_another_process_names_its_pid(small_text, tmp_path):
    folder = tmp_path / "held"
    holder = hold_lock_in_subprocess(folder)
    try:
        rep = ListReporter()
        result = Trainer(tiny_experiment(small_text, max_steps=2), run_dir=folder).run(reporter=rep)
        assert result.status == "failed" and f"process {holder.pid} on host" in result.message
        assert ownership.lock_holder(folder)["pid"] == holder.pid
    finally:
        holder.kill()
        holder.wait()
    # kill -9 drops the flock: the next run takes the stale lock over and says so
    assert ownership.lock_holder(folder) is None
    rep = ListReporter()
    assert Trainer(tiny_experiment(small_text, max_steps=2), run_dir=folder).run(reporter=rep).status == "completed"
    notes = rep.of(RunStarted)[0].notes
    assert any(f"stale lock" in n and f"process {holder.pid}" in n for n in notes), notes


def test_a_stale_lock_file_without_a_holder_is_taken_over(small_text, tmp_path):
    folder = tmp_path / "stale"
    folder.mkdir()
    pid = dead_pid()
    (folder / ownership.LOCK_NAME).write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "started": 1.0}))
    rep = ListReporter()
    assert Trainer(tiny_experiment(small_text, max_steps=2), run_dir=folder).run(reporter=rep).status == "completed"
    assert any(f"process {pid}" in n for n in rep.of(RunStarted)[0].notes)


def test_run_dir_of_an_existing_run_is_refused_unless_overwrite(small_text, tmp_path):
    folder = tmp_path / "run"
    exp = tiny_experiment(small_text, max_steps=4, eval_every=2, checkpoint_every=4)
    assert Trainer(exp, run_dir=folder).run().status == "completed"
    (folder / "notes.txt").write_text("mine")
    before = snapshot(folder)
    other = exp.with_overrides(["training.max_steps=3", "training.seed=5"])
    result = Trainer(other, run_dir=folder).run()
    assert result.status == "failed" and "already holds a run" in result.message
    assert f"--resume {folder}" in result.message and "--overwrite" in result.message
    assert snapshot(folder) == before  # nothing replaced, nothing appended

    rep = ListReporter()
    result = Trainer(other, run_dir=folder, overwrite=True).run(reporter=rep)
    assert result.status == "completed", result.message
    assert any("--overwrite: deleted" in n for n in rep.of(RunStarted)[0].notes)
    assert saved_experiment(folder) == other
    run = ckpt.RunDir.open(folder)
    assert run.checkpoint_steps() == [3]  # the old step-4 checkpoint is gone
    assert [r["step"] for r in ckpt.read_metrics(run.metrics) if r["split"] == "train"] == [1, 2, 3]
    assert (folder / "notes.txt").read_text() == "mine"  # not a run's file: left alone


def test_a_run_that_died_before_its_first_checkpoint_is_not_appended_to(small_text, tmp_path):
    folder = tmp_path / "dead"
    exp = tiny_experiment(small_text, max_steps=50, checkpoint_every=100)
    trainer = Trainer(exp, run_dir=folder)
    trainer.prepare()  # config, tokenizer written; then "killed" before any checkpoint
    trainer.state.metrics.write(step=1, split="train", task="lm", loss=4.0)
    trainer.close()
    before = snapshot(folder)
    resumed = Trainer(saved_experiment(folder), resume=folder).run()
    assert resumed.status == "failed" and "no complete checkpoint" in resumed.message
    assert f"--run-dir {folder} --overwrite" in resumed.message
    again = Trainer(exp, run_dir=folder).run()
    assert again.status == "failed" and "saved no checkpoint" in again.message and "--overwrite" in again.message
    assert snapshot(folder) == before


def test_a_folder_of_other_files_is_refused_and_a_failed_start_leaves_no_folder(small_text, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"\xff\xd8")
    for overwrite in (False, True):
        result = Trainer(tiny_experiment(small_text, max_steps=2), run_dir=folder, overwrite=overwrite).run()
        assert result.status == "failed" and "not a run folder" in result.message and "cat.jpg" in result.message
    assert sorted(p.name for p in folder.iterdir()) == ["cat.jpg"]
    # a run that fails before writing anything takes its new folder away again
    bad = tiny_experiment(tmp_path / "missing.txt", max_steps=2)
    assert Trainer(bad, run_dir=tmp_path / "new").run().status == "failed"
    assert not (tmp_path / "new").exists()


def test_new_run_folders_of_the_same_second_are_distinct(tmp_path):
    a = ckpt.RunDir.new_path(tmp_path, "x")
    b = ckpt.RunDir.new_path(tmp_path, "x")
    assert a != b and a.is_dir() and b.is_dir()


# -- other writers never write into a run folder ------------------------------------------------


@pytest.fixture
def trained_run(small_text, tmp_path):
    folder = tmp_path / "runs" / "r"
    exp = tiny_experiment(small_text, max_steps=3, eval_every=3, attention_every=0, checkpoint_every=3)
    assert Trainer(exp, run_dir=folder).run().status == "completed"
    return folder


def test_export_import_report_and_results_refuse_a_run_folder_or_a_file_not_theirs(trained_run, tmp_path):
    from workbench.engine.evaluate import check_results_path
    from workbench.engine.gpt2_interop import export_run, import_gpt2
    from workbench.engine.report import export_report

    before = snapshot(trained_run)
    with pytest.raises(CheckpointError, match="inside the run folder"):
        export_run(trained_run, trained_run)
    with pytest.raises(CheckpointError, match="inside the run folder"):
        export_run(trained_run, trained_run / "hf")
    with pytest.raises(CheckpointError, match="inside the run folder"):
        export_report(trained_run, trained_run / "report.html")
    with pytest.raises(CheckpointError, match="inside the run folder"):
        export_report(trained_run, trained_run, fmt="folder")
    with pytest.raises(CheckpointError, match="inside the run folder"):
        check_results_path(trained_run / "icl.json")
    hf = export_run(trained_run, tmp_path / "hf")
    with pytest.raises(CheckpointError, match="inside the run folder"):
        import_gpt2(hf, trained_run)
    assert snapshot(trained_run) == before

    # over a file or into a folder that is not theirs: refused, left as it is
    mine = tmp_path / "mine.html"
    mine.write_text("<html>my page</html>")
    with pytest.raises(CheckpointError, match="not an earlier report"):
        export_report(trained_run, mine)
    assert mine.read_text() == "<html>my page</html>"
    model_dir = tmp_path / "downloaded"
    shutil.copytree(hf, model_dir)
    (model_dir / "model.safetensors").write_bytes(b"not ours")
    with pytest.raises(CheckpointError, match="holds no earlier GPT-2 export"):
        export_run(trained_run, model_dir)
    with pytest.raises(CheckpointError, match="holds no earlier imported run"):
        import_gpt2(hf, model_dir)
    assert (model_dir / "model.safetensors").read_bytes() == b"not ours"
    # their own earlier outputs may be replaced
    out = export_report(trained_run, tmp_path / "r.html")
    assert export_report(trained_run, out) == out
    assert export_run(trained_run, hf) == hf
    assert (import_gpt2(hf, tmp_path / "imported") / "config.toml").is_file()
    with pytest.raises(CheckpointError, match="inside the run folder"):
        import_gpt2(hf, tmp_path / "imported")


# -- leftovers of kill -9 ---------------------------------------------------------------------------


def test_leftovers_of_interrupted_writes_are_removed_at_the_next_start_and_nothing_else(small_text, tmp_path):
    folder = tmp_path / "run"
    exp = tiny_experiment(small_text, max_steps=4, eval_every=0, attention_every=2, checkpoint_every=2)
    assert Trainer(exp, run_dir=folder).run().status == "completed"
    # what kill -9 in the middle of atomic_write_bytes and of a checkpoint leaves (names as mkstemp makes them)
    ours = [folder / "checkpoints" / ".step_0000006.safetensors.k2x9_q1a.tmp",
            folder / "checkpoints" / ".step_0000006.json.abcdefgh.tmp",
            folder / "attention" / ".step_0000006.safetensors.0a1b2c3d.tmp",
            folder / ".metrics.jsonl.zz99yy88.tmp",
            folder / "checkpoints" / "step_0000005.safetensors"]  # tensors whose JSON was never written
    theirs = [folder / "notes.tmp", folder / "checkpoints" / ".my.tmp", folder / "attention" / "keep.safetensors.tmp"]
    for p in ours + theirs:
        p.write_bytes(b"x" * 1000)
    rep = ListReporter()
    result = Trainer(saved_experiment(folder).with_overrides(["training.max_steps=6"]), resume=folder).run(reporter=rep)
    assert result.status == "completed"
    assert not any(p.exists() for p in ours)
    assert all(p.exists() for p in theirs)
    assert any("Removed 5 leftover file(s)" in n for n in rep.of(RunStarted)[0].notes)
    assert ckpt.RunDir.open(folder).checkpoint_steps() == [2, 4, 6]


def test_token_cache_temp_files_of_dead_writers_are_removed_live_ones_kept(small_text, tmp_path):
    from workbench import paths

    folder = paths.cache_dir() / "tokens"
    folder.mkdir(parents=True)
    dead, live = f".{'a' * 24}.bin.{dead_pid()}.tmp", f".{'b' * 24}.bin.{os.getpid()}.tmp"
    old_dead = f"{'c' * 24}.tmp{dead_pid()}"  # the name caches had before
    foreign = ".notes.bin.1.tmp"
    for name in (dead, live, old_dead, foreign):
        (folder / name).write_bytes(b"\0" * 4096)
    assert Trainer(tiny_experiment(small_text, max_steps=1), run_dir=tmp_path / "r").run().status == "completed"
    left = {p.name for p in folder.iterdir()}
    assert dead not in left and old_dead not in left
    assert {live, foreign} <= left and any(n.endswith(".bin") for n in left)


# -- full disks -------------------------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path):
    """A 2 MB tmpfs (needs root and mount; skipped elsewhere: test_a_full_disk_simulated covers it)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(disk: Path, leave: int) -> None:
    """Write a filler file so that about ``leave`` bytes stay free."""
    free = shutil.disk_usage(disk).free
    with open(disk / "filler", "ab") as f:
        f.write(b"\0" * max(0, free - leave))


class FillAfter(ListReporter):
    """Fills the disk, leaving ``leave`` bytes, right after the checkpoint of ``step``."""

    def __init__(self, disk, step, leave):
        super().__init__()
        self.disk, self.step, self.leave = disk, step, leave

    def report(self, e):
        super().report(e)
        if isinstance(e, CheckpointSaved) and e.step == self.step:
            fill(self.disk, self.leave)


def disk_experiment(small_text, **training):
    return tiny_experiment(small_text, eval_every=0, attention_every=0, **training).with_overrides(
        ["model.n_layer=1"])


def test_a_full_tmpfs_says_which_file_was_not_written_and_which_checkpoint_is_intact(small_text, tiny_disk,
                                                                                      monkeypatch):
    folder = tiny_disk / "run"
    exp = disk_experiment(small_text, max_steps=20, checkpoint_every=5, keep_checkpoints=5)
    # 1. the room check: too little space is said before trying
    rep = FillAfter(tiny_disk, 5, leave=20_000)
    result = Trainer(exp, run_dir=folder).run(reporter=rep)
    assert result.status == "failed" and result.step == 10
    msg = rep.of(Failed)[0].message
    assert "step_0000010.safetensors: not written" in msg and "free" in msg
    assert f"step 5 ({folder / 'checkpoints' / 'step_0000005.json'}), is intact" in msg
    assert f"--resume {folder}" in msg
    run = ckpt.RunDir.open(folder)
    assert run.checkpoint_steps() == [5]
    tensors, meta = ckpt.load_checkpoint(run.latest_checkpoint())
    assert meta["step"] == 5 and all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())
    assert not [p for p in folder.rglob("*.tmp")]

    # 2. the write itself meets the full disk (the room check fooled): the same message, from ENOSPC
    monkeypatch.setattr(ckpt, "free_bytes", lambda folder: 10**12)
    shutil.rmtree(folder)
    (tiny_disk / "filler").unlink()
    rep = FillAfter(tiny_disk, 5, leave=20_000)
    result = Trainer(exp, run_dir=folder).run(reporter=rep)
    msg = rep.of(Failed)[0].message
    assert result.status == "failed" and "the disk is full" in msg and "could not be written" in msg
    assert str(folder) in msg and "step 5" in msg and "is intact" in msg and "Traceback" not in msg
    assert ckpt.RunDir.open(folder).checkpoint_steps() == [5]
    assert not [p for p in folder.rglob("*.tmp")]


def test_keeping_n_checkpoints_never_needs_room_for_n_plus_one(small_text, tiny_disk):
    folder = tiny_disk / "run"
    exp = disk_experiment(small_text, max_steps=20, checkpoint_every=5, keep_checkpoints=2)
    probe = Trainer(exp, run_dir=tiny_disk / "probe")
    probe.prepare()
    size = sum(t.numel() * t.element_size() for t in probe.state.net.state_dict().values()) * 3  # weights + AdamW
    probe.close()
    shutil.rmtree(tiny_disk / "probe")
    # after checkpoints 5 and 10: room for about 1.6 more, not for a third beside the two kept
    rep = FillAfter(tiny_disk, 10, leave=int(size * 1.6))
    result = Trainer(exp, run_dir=folder).run(reporter=rep)
    assert result.status == "completed", result.message
    assert ckpt.RunDir.open(folder).checkpoint_steps() == [15, 20]


def test_a_full_disk_simulated(small_text, tmp_path, monkeypatch):
    """Without a tmpfs: fsync reports ENOSPC for the checkpoint after the first one."""
    folder = tmp_path / "run"
    real_fsync, seen = os.fsync, []

    def fsync(fd):
        name = os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else ""
        if ".step_0000004.safetensors" in name:
            raise OSError(errno.ENOSPC, "No space left on device")
        seen.append(name)
        return real_fsync(fd)

    if not os.path.exists("/proc/self/fd"):
        pytest.skip("needs /proc to tell which file is written")
    monkeypatch.setattr(os, "fsync", fsync)
    exp = disk_experiment(small_text, max_steps=6, checkpoint_every=2)
    result = Trainer(exp, run_dir=folder).run()
    assert result.status == "failed" and result.step == 4
    assert f"{folder / 'checkpoints' / 'step_0000004.safetensors'}: could not be written: the disk is full" \
        in result.message
    assert "step 2" in result.message and "is intact" in result.message
    assert ckpt.RunDir.open(folder).checkpoint_steps() == [2]
    assert not [p for p in folder.rglob("*.tmp")]


def test_free_space_is_checked_before_a_checkpoint_and_old_ones_pruned_first(tmp_path, monkeypatch):
    run = ckpt.RunDir.create(tmp_path / "r")
    tensors = {"w": torch.zeros(25_000)}  # 100 kB
    for step in (1, 2):
        run.save_checkpoint(step, tensors, {"step": step}, keep=2)
    monkeypatch.setattr(ckpt, "free_bytes", lambda folder: 180_000)  # room for one, not for two more
    run.save_checkpoint(3, tensors, {"step": 3}, keep=2)
    assert run.checkpoint_steps() == [2, 3]
    monkeypatch.setattr(ckpt, "free_bytes", lambda folder: 50_000)
    with pytest.raises(ckpt.WriteError, match=r"not written: the checkpoint needs about 16\d\.\d kB") as e:
        run.save_checkpoint(4, tensors, {"step": 4}, keep=2)
    assert "step 3" in str(e.value) and "is intact" in str(e.value)
    assert run.checkpoint_steps() == [3]  # pruned to make room, never below one


# -- one damaged file, many runs --------------------------------------------------------------------


def make_run(base: Path, name: str, **files) -> Path:
    folder = base / name
    (folder / "checkpoints").mkdir(parents=True)
    Experiment(name=name).with_overrides(["training.max_steps=20"]).save(folder / "config.toml")
    lines = [json.dumps({"step": s, "split": "train", "task": "lm", "loss": 4.0 - s / 10}) for s in range(1, 21)]
    lines.append(json.dumps({"step": 20, "split": "val", "task": "lm", "loss": 2.5}))
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "checkpoints" / "step_0000020.json").write_text(json.dumps({"format": 1, "step": 20}))
    (folder / "checkpoints" / "step_0000020.safetensors").write_bytes(b"")
    for fname, content in files.items():
        path = folder / fname.replace("__", "/")
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    return folder


def damaged_runs(base: Path) -> dict[str, str]:
    """One good run and one per damaged file: name -> the file named in the damage."""
    make_run(base, "good")
    good_lines = (base / "good" / "metrics.jsonl").read_text().splitlines()
    make_run(base, "bad-best", **{"best.json": "{not json"})
    make_run(base, "bad-best-type", **{"best.json": "[1, 2]"})
    make_run(base, "bad-metrics", **{"metrics.jsonl": "\n".join(good_lines[:5] + ['{"step": "x", "loss": 1}', "[3]",
                                                                                  "\xff garbage"] + good_lines[5:])
                                     + "\n"})
    make_run(base, "bad-utf8", **{"metrics.jsonl": b"\n".join(l.encode() for l in good_lines[:3]) + b"\n\xff\xfe{\n"
                                  + b"\n".join(l.encode() for l in good_lines[3:]) + b"\n"})
    make_run(base, "bad-config", **{"config.toml": "[model\nn_layer = "})
    make_run(base, "bad-checkpoint", **{"checkpoints__step_0000020.json": '{"format": 1, "st'})
    return {"bad-best": "best.json", "bad-best-type": "best.json", "bad-metrics": "metrics.jsonl line 6",
            "bad-utf8": "metrics.jsonl line 4", "bad-config": "config.toml",
            "bad-checkpoint": "checkpoints/step_0000020.json"}


def test_one_damaged_file_marks_its_run_and_the_others_are_listed(tmp_path):
    expected = damaged_runs(tmp_path)
    runs = {r.path.name: r for r in list_runs(tmp_path)}
    assert set(runs) == set(expected) | {"good"}
    good = runs["good"]
    assert good.status == "completed" and good.steps == 20 and good.val == {"lm": 2.5} and not good.damaged
    for name, where in expected.items():
        r = runs[name]
        assert r.damaged and r.damaged[0].startswith(where), (name, r.damaged)
        if name != "bad-config":  # everything else is still read
            assert r.steps == 20 and r.val == {"lm": 2.5} and r.status == "completed", name
    assert "and 2 more damaged lines" in runs["bad-metrics"].damaged[0]


def test_a_torn_last_metrics_line_is_not_damage(tmp_path):
    folder = make_run(tmp_path, "torn")
    with open(folder / "metrics.jsonl", "a") as f:
        f.write('{"step": 21, "split": "tr')
    problems = []
    assert len(ckpt.read_metrics(folder / "metrics.jsonl", problems)) == 21 and problems == []


def test_a_token_cache_that_does_not_fit_names_the_cache_and_leaves_no_temp_file(small_text, tmp_path, monkeypatch):
    from workbench import paths

    real_open = open

    class FullFile:
        def __init__(self, f):
            self.f = f

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    def fake_open(path, mode="r", *a, **k):
        f = real_open(path, mode, *a, **k)
        return FullFile(f) if str(path).endswith(".tmp") and ".bin." in str(path) else f

    monkeypatch.setattr("builtins.open", fake_open)
    result = Trainer(tiny_experiment(small_text, max_steps=2), run_dir=tmp_path / "r").run()
    assert result.status == "failed" and "could not be written: the disk is full" in result.message
    tokens = paths.cache_dir() / "tokens"
    assert str(tokens) in result.message and ".bin:" in result.message
    assert not list(tokens.glob("*.tmp"))


# -- found by the review of the merged work ------------------------------------------------------


def test_outputs_never_replace_a_device_a_pipe_or_a_broken_link(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    broken = tmp_path / "broken"
    broken.symlink_to(tmp_path / "nowhere")
    for path in (fifo, broken):
        with pytest.raises(CheckpointError, match="not a regular file or folder"):
            ownership.check_output(path, "report")
        assert path.is_symlink() or path.exists()  # left as it was
    assert not fifo.is_file()


def test_a_run_folder_is_never_made_inside_another_run_or_through_a_file(small_text, tmp_path):
    assert Trainer(tiny_experiment(small_text, max_steps=2, eval_every=0, attention_every=0),
                   run_dir=tmp_path / "outer").run().status == "completed"
    for inner in (tmp_path / "outer" / "inner", tmp_path / "outer" / "checkpoints" / "deeper"):
        result = Trainer(tiny_experiment(small_text, max_steps=2), run_dir=inner).run()
        assert result.status == "failed" and "lies inside the run folder" in result.message
        assert not inner.exists()
    afile = tmp_path / "afile"
    afile.write_text("mine")
    result = Trainer(tiny_experiment(small_text, max_steps=2), run_dir=afile / "sub").run()
    assert result.status == "failed" and "cannot create the run folder" in result.message
    assert afile.read_text() == "mine"


def test_resume_refuses_fewer_steps_than_the_run_has_and_leaves_its_config(small_text, tmp_path):
    assert Trainer(tiny_experiment(small_text, max_steps=6, eval_every=0, attention_every=0),
                   run_dir=tmp_path / "r").run().status == "completed"
    before = (tmp_path / "r" / "config.toml").read_bytes()
    shorter = saved_experiment(tmp_path / "r").with_overrides(["training.max_steps=3"])
    result = Trainer(shorter, resume=tmp_path / "r").run()
    assert result.status == "failed" and "max_steps = 3 is below the step the run continues from (6)" in result.message
    assert (tmp_path / "r" / "config.toml").read_bytes() == before


def test_weights_with_nan_are_refused_with_the_way_out(small_text, tmp_path):
    from safetensors.torch import load_file, save_file

    from workbench.engine.loading import load_trained

    assert Trainer(tiny_experiment(small_text, max_steps=2, eval_every=0, attention_every=0),
                   run_dir=tmp_path / "r").run().status == "completed"
    path = ckpt.RunDir.open(tmp_path / "r").latest_checkpoint().with_suffix(".safetensors")
    tensors = load_file(str(path))
    name = next(k for k in tensors if k.startswith("model.transformer.h.0"))
    tensors[name][0] = float("nan")
    save_file(tensors, str(path))
    with pytest.raises(CheckpointError, match="NaN or infinite values.*--from-step") as e:
        load_trained(tmp_path / "r")
    assert e.value.exit_code == 1


def test_the_command_line_turns_a_refusal_of_the_file_system_into_a_message(monkeypatch, capsys):
    from workbench import cli

    def denied(_args):
        raise PermissionError(errno.EACCES, "Permission denied", "/somewhere/run.lock")

    monkeypatch.setitem(cli.COMMANDS, "runs", denied)
    assert cli.main(["runs"]) == 1
    err = capsys.readouterr().err
    assert "error: /somewhere/run.lock: Permission denied" in err and "Traceback" not in err


def test_a_lone_config_toml_that_is_not_a_runs_is_never_deleted(small_text, tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "config.toml").write_text('[package]\nname = "x"\n')
    for overwrite in (False, True):
        result = Trainer(tiny_experiment(small_text, max_steps=2), run_dir=folder, overwrite=overwrite).run()
        assert result.status == "failed" and "is not a run folder (it holds config.toml)" in result.message
        assert (folder / "config.toml").read_text() == '[package]\nname = "x"\n'
