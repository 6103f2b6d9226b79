"""engine/follow.py: a run folder's files read back as the trainer's events, incrementally; and
engine/control.py's control file, as the trainer sees it."""

from __future__ import annotations

import json
import math
import os
import socket

import numpy as np

from workbench.engine import events as ev
from workbench.engine.checkpoint import MetricsWriter, RunDir, atomic_write_text, save_attention
from workbench.engine.control import ControlFile, RunControl, request_action, write_status
from workbench.engine.follow import JsonLines, Restarted, RunFollower


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


def hold_lock(run):
    """run.lock naming this (live) process: the run counts as training."""
    (run / "run.lock").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))


def test_a_torn_last_line_is_kept_back_and_read_once_complete(tmp_path):
    path = tmp_path / "metrics.jsonl"
    rows = [json.dumps({"step": i, "split": "train", "task": "lm", "loss": 3.0 - i / 10, "lr": 0.001,
                        "tokens": 64 * i, "time": 0.1 * i, "tokens_per_s": 640.0, "grad_norm": 1.0})
            for i in (1, 2, 3)]
    text = "\n".join(rows) + "\n"
    cut = len(rows[0]) + 1 + len(rows[1]) + 1 + 20  # two whole lines and 20 bytes of the third
    path.write_text(text[:cut])
    lines = JsonLines(path)
    got, restarted = lines.read()
    assert [json.loads(x)["step"] for x in got] == [1, 2] and not restarted
    assert lines.read() == ([], False)  # the torn line is not handed out, nor reread
    with open(path, "a") as f:
        f.write(text[cut:])
    got, _ = lines.read()
    assert [json.loads(x) for x in got] == [json.loads(rows[2])]  # whole, once
    assert lines.offset == len(text.encode())  # read from the offset, not from the start


def test_the_follower_turns_what_the_writer_wrote_into_the_trainers_events(tmp_path):
    run = tmp_path / "run"
    RunDir.create(run)
    follower = RunFollower(run)
    assert follower.poll() == [] and follower.state == "waiting"  # nothing written yet: no error
    hold_lock(run)
    write_status(run, "running", 0, None, started={"device": "cpu", "precision": "fp32", "params": 1234,
                                                    "start_step": 0, "max_steps": 50, "tokens_per_step": 64,
                                                    "vocab_size": 30})
    w = MetricsWriter(run / "metrics.jsonl")
    w.train_step(1, ["cls", "lm"], 2.5, {"cls": 0.7, "cls/accuracy": 0.5, "lm": 1.8}, lr=0.01, tokens=64,
                 elapsed=0.5, tokens_per_s=128.0, grad_norm=1.5)
    events = follower.poll()
    started = of(events, ev.RunStarted)
    assert len(started) == 1 and started[0].params == 1234 and started[0].max_steps == 50
    assert of(events, ev.StepMetrics) == []  # the step's rows may not all be there yet
    w.train_step(2, ["cls", "lm"], 2.4, {"cls": 0.6, "lm": 1.8}, lr=0.02, tokens=128, elapsed=1.0,
                 tokens_per_s=128.0, grad_norm=math.inf)  # fp16 skipped this step
    w.validation(2, {"cls": 0.65, "lm": 1.9}, {"cls/accuracy": 0.75}, tokens=128, elapsed=1.0)
    events = follower.poll() + follower.poll()  # the second finds nothing new: the last rows are whole
    steps = of(events, ev.StepMetrics)
    assert len(steps) == 2
    s1, s2 = steps
    assert (s1.step, s1.loss, s1.lr, s1.tokens, s1.elapsed, s1.grad_norm) == (1, 2.5, 0.01, 64, 0.5, 1.5)
    assert s1.losses == {"cls": 0.7, "lm": 1.8} and s1.max_steps == 50  # accuracy is validation's to show
    assert s2.losses == {"cls": 0.6, "lm": 1.8} and math.isnan(s2.grad_norm)
    (val,) = of(events, ev.EvalResult)
    assert val.step == 2 and val.losses == {"cls": 0.65, "lm": 1.9} and val.metrics == {"cls/accuracy": 0.75}
    assert follower.poll() == []  # nothing new: nothing again

    # balance.jsonl and attention/ come as the trainer's events too
    RunDir(run).append_balance(ev.TaskBalance(2, ["cls", "lm"], [1.0, 0.5], np.array([[1.0, np.nan], [-0.2, 1.0]])))
    att = np.random.default_rng(0).random((1, 2, 3, 3)).astype(np.float32)
    save_attention(run / "attention", 2, att, ["a", "b", "c"], [1, 2, 3])
    events = follower.poll()
    (bal,) = of(events, ev.TaskBalance)
    assert bal.weights == [1.0, 0.5] and np.isnan(bal.conflict[0, 1]) and bal.conflict[1, 0] == -0.2
    (snap,) = of(events, ev.AttentionSnapshot)
    assert snap.step == 2 and snap.tokens == ["a", "b", "c"] and np.allclose(snap.attention, att, atol=1e-3)
    (run / "checkpoints" / "step_0000002.safetensors").write_bytes(b"")  # tensors first: not complete yet
    assert of(follower.poll(), ev.CheckpointSaved) == []
    (run / "checkpoints" / "step_0000002.json").write_text("{}")
    (saved,) = of(follower.poll(), ev.CheckpointSaved)
    assert saved.step == 2 and saved.path.endswith("step_0000002.json")

    # pause, resume, the end
    write_status(run, "paused", 2, "abc")
    assert [type(e) for e in follower.poll()] == [ev.Paused] and follower.ack == "abc"
    write_status(run, "running", 2, "abd")
    assert [type(e) for e in follower.poll()] == [ev.Resumed]
    w.train_step(3, ["cls", "lm"], 2.3, {"cls": 0.5, "lm": 1.8}, lr=0.02, tokens=192, elapsed=1.5,
                 tokens_per_s=128.0, grad_norm=1.0)
    write_status(run, "stopped", 3, "abe")
    events = follower.poll()
    assert [type(e) for e in events] == [ev.StepMetrics, ev.Finished]  # the last step before the end
    assert events[1].reason == "stopped" and events[1].step == 3 and follower.ended
    w.close()


def test_a_rewritten_metrics_file_is_read_again_from_its_start(tmp_path):
    run = tmp_path / "run"
    RunDir.create(run)
    hold_lock(run)
    w = MetricsWriter(run / "metrics.jsonl")
    for i in range(1, 6):
        w.train_step(i, ["lm"], 3.0 - i / 10, {"lm": 3.0 - i / 10}, lr=0.01, tokens=64 * i, elapsed=i,
                     tokens_per_s=64.0, grad_norm=1.0)
    w.close()
    follower = RunFollower(run)
    follower.poll()
    assert follower.step == 4  # step 5 waits for a poll with nothing new
    follower.poll()
    assert follower.step == 5
    # a resume from step 3 rewrites the file (atomically: a new file) and goes on from there
    lines = (run / "metrics.jsonl").read_text().splitlines()[:3]
    atomic_write_text(run / "metrics.jsonl", "".join(x + "\n" for x in lines))
    events = follower.poll() + follower.poll()
    assert isinstance(events[0], Restarted)
    assert [e.step for e in of(events, ev.StepMetrics)] == [1, 2, 3]


def test_a_run_whose_process_died_is_said_to_have_ended(tmp_path):
    run = tmp_path / "run"
    RunDir.create(run)
    write_status(run, "running", 7, None)  # and no live run.lock: killed
    events = RunFollower(run).poll()
    failed = of(events, ev.Failed)
    assert len(failed) == 1 and "without finishing" in failed[0].message and "--resume" in failed[0].message


def test_the_control_file_ignores_an_old_request_and_hands_a_new_one_out_once(tmp_path):
    now = [0.0]
    path = tmp_path / "control.json"
    request_action(tmp_path, "stop")  # left by an earlier run of the folder
    cf = ControlFile(path, interval=0.25, clock=lambda: now[0])
    assert cf.poll() is None
    rid = request_action(tmp_path, "pause")
    assert cf.poll() is None  # looked too recently
    now[0] = 1.0
    assert cf.poll() == (rid, "pause")
    now[0] = 2.0
    assert cf.poll() is None  # handed out once

    control = RunControl()
    control.watch_file(path, interval=0.0)
    assert not control.paused
    rid = request_action(tmp_path, "pause")
    assert control.paused and control.acknowledged == rid and not control.stop_requested
    rid = request_action(tmp_path, "stop")
    assert control.stop_requested and not control.paused and control.acknowledged == rid


def test_a_stop_through_the_control_file_is_answered_by_the_status_the_run_ends_with(small_text, tmp_path,
                                                                                       monkeypatch):
    """status.json names a stop request only once the run has stopped (a client waiting for the
    answer once read "running" there: the ack went out before the stop was carried out)."""
    import time

    from tests.engine.test_trainer import tiny_experiment
    from workbench.engine import control as control_mod
    from workbench.engine import trainer as trainer_mod
    from workbench.engine.events import ListReporter
    from workbench.engine.trainer import Trainer

    written = []
    real = trainer_mod.write_status
    monkeypatch.setattr(trainer_mod, "write_status",
                        lambda run_dir, state, step, ack, **extra: (written.append((state, step, ack)),
                                                                    real(run_dir, state, step, ack, **extra)))
    run = tmp_path / "run"
    asked = []

    class AskAt(ListReporter):
        def report(self, e):
            super().report(e)
            if isinstance(e, ev.StepMetrics) and e.step == 3:
                asked.append(request_action(run, "stop"))
                time.sleep(control_mod.FILE_POLL_INTERVAL + 0.05)  # the trainer looks at the file at its next step

    result = Trainer(tiny_experiment(small_text, max_steps=50), run_dir=run).run(reporter=AskAt())
    assert result.status == "stopped" and result.step == 3
    answers = [w for w in written if w[2] == asked[0]]
    assert answers == [("stopped", 3, asked[0])]
    assert json.loads((run / "status.json").read_text())["state"] == "stopped"
