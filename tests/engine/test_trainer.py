import math
import threading

import numpy as np
import pytest
import torch

from workbench.engine import checkpoint as ckpt
from workbench.engine.config import Experiment
from workbench.engine.control import RunControl
from workbench.engine.events import (AttentionSnapshot, EvalResult, Failed, Finished, ListReporter,
                                     Paused, Resumed, StepMetrics)
from workbench.engine.stepping import lr_at
from workbench.engine.trainer import Trainer, saved_experiment


def tiny_experiment(corpus_path, **training):
    exp = Experiment(name="t").with_overrides([
        f'corpus.paths=["{corpus_path}"]', "tokenizer.kind=char", "model.n_layer=2", "model.n_head=2",
        "model.n_embd=32", "model.block_size=32", "training.batch_size=8", "training.learning_rate=3e-3",
        "training.min_lr=3e-4", "training.warmup_steps=5", "training.eval_batches=4", "training.threads=1",
    ])
    return exp.with_overrides([f"training.{k}={v}" for k, v in training.items()])


class StopAt(ListReporter):
    """Stops (or pauses) the run from inside when it reports a given step."""

    def __init__(self, control, step, action="stop"):
        super().__init__()
        self.control, self.at, self.action = control, step, action

    def report(self, e):
        super().report(e)
        if isinstance(e, StepMetrics) and e.step == self.at:
            getattr(self.control, self.action)()


def test_training_lowers_the_loss_and_writes_a_run_folder(small_text, tmp_path):
    exp = tiny_experiment(small_text, max_steps=60, eval_every=20, attention_every=30, checkpoint_every=30)
    rep = ListReporter()
    result = Trainer(exp, run_dir=tmp_path / "run").run(reporter=rep)
    assert result.status == "completed" and result.step == 60

    steps = rep.of(StepMetrics)
    assert [s.step for s in steps] == list(range(1, 61))
    assert steps[0].loss > 3.0 and np.mean([s.loss for s in steps[-10:]]) < steps[0].loss - 1.0
    evals = rep.of(EvalResult)
    assert [e.step for e in evals] == [20, 40, 60] and evals[-1].losses["lm"] < evals[0].losses["lm"]

    run = ckpt.RunDir.open(tmp_path / "run")
    assert saved_experiment(run.path) == exp  # the exact config is kept
    assert run.tokenizer.exists()
    records = ckpt.read_metrics(run.metrics)
    assert {"step", "split", "task", "loss"} <= set(records[0])
    assert [r["step"] for r in records if r["split"] == "val"] == [20, 40, 60]
    assert run.checkpoint_steps() == [30, 60]

    snaps = rep.of(AttentionSnapshot)
    assert [s.step for s in snaps] == [0, 30, 60]
    att = snaps[-1].attention
    assert att.shape == (2, 2, 32, 32) and len(snaps[-1].tokens) == 32
    assert np.allclose(att.sum(-1), 1.0, atol=1e-5)
    step, saved, tokens, ids = ckpt.load_attention(ckpt.list_attention(run.attention)[-1])
    assert step == 60 and tokens == snaps[-1].tokens and np.allclose(saved, att, atol=2e-3)
    assert isinstance(rep.events[-1], Finished) and rep.events[-1].reason == "completed"


def test_resume_reproduces_an_uninterrupted_run_exactly(small_text, tmp_path):
    settings = dict(max_steps=24, eval_every=8, checkpoint_every=100, attention_every=0)
    exp = tiny_experiment(small_text, **settings).with_overrides(["model.dropout=0.1"])  # dropout RNG too
    straight = ListReporter()
    Trainer(exp, run_dir=tmp_path / "a").run(reporter=straight)

    control = RunControl()
    first = StopAt(control, 11)
    r1 = Trainer(exp, run_dir=tmp_path / "b").run(control, first)
    assert r1.status == "stopped" and r1.step == 11
    assert ckpt.RunDir.open(tmp_path / "b").checkpoint_steps() == [11]
    second = ListReporter()
    r2 = Trainer(saved_experiment(tmp_path / "b"), resume=tmp_path / "b").run(reporter=second)
    assert r2.status == "completed" and r2.step == 24

    a = [s.loss for s in straight.of(StepMetrics)]
    b = [s.loss for s in first.of(StepMetrics)] + [s.loss for s in second.of(StepMetrics)]
    assert a == b  # bit for bit on the CPU
    assert [e.losses for e in straight.of(EvalResult)] == [e.losses for e in first.of(EvalResult) + second.of(EvalResult)]
    # metrics.jsonl of the resumed run reads like the uninterrupted one
    ra = [(r["step"], r["split"], r["loss"]) for r in ckpt.read_metrics(tmp_path / "a" / "metrics.jsonl")]
    rb = [(r["step"], r["split"], r["loss"]) for r in ckpt.read_metrics(tmp_path / "b" / "metrics.jsonl")]
    assert ra == rb


def test_resume_refuses_changed_model_settings(small_text, tmp_path):
    exp = tiny_experiment(small_text, max_steps=3, eval_every=0, attention_every=0)
    Trainer(exp, run_dir=tmp_path / "r").run()
    changed = saved_experiment(tmp_path / "r").with_overrides(["model.n_layer=3", "training.max_steps=6"])
    result = Trainer(changed, resume=tmp_path / "r").run()
    assert result.status == "failed" and "model.n_layer" in result.message
    longer = saved_experiment(tmp_path / "r").with_overrides(["training.max_steps=6"])
    assert Trainer(longer, resume=tmp_path / "r").run().step == 6


def test_pause_and_resume_between_steps(small_text, tmp_path):
    exp = tiny_experiment(small_text, max_steps=12, eval_every=0, attention_every=0)
    control = RunControl()
    timers = []

    class PauseThenResume(StopAt):  # resumed from another thread once the run has paused
        def report(self, e):
            super().report(e)
            if isinstance(e, Paused):
                timers.append(threading.Timer(0.3, control.resume))
                timers[-1].start()

    rep = PauseThenResume(control, 5, action="pause")
    result = Trainer(exp, run_dir=tmp_path / "p").run(control, rep)
    for t in timers:
        t.join()
    assert result.status == "completed"
    kinds = [type(e).__name__ for e in rep.events if isinstance(e, (Paused, Resumed, StepMetrics))]
    i = kinds.index("Paused")
    assert kinds[i - 1] == "StepMetrics" and kinds[i + 1] == "Resumed"
    assert rep.of(Paused)[0].step == 5


def test_a_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(small_text, tmp_path):
    exp = tiny_experiment(small_text, max_steps=20, eval_every=0, attention_every=0, checkpoint_every=4)
    trainer = Trainer(exp, run_dir=tmp_path / "n")

    class Poison(ListReporter):
        def report(self, e):
            super().report(e)
            if isinstance(e, StepMetrics) and e.step == 6:
                with torch.no_grad():
                    trainer.state.model.transformer.h[0].mlp.c_fc.weight.fill_(math.nan)

    rep = Poison()
    result = trainer.run(reporter=rep)
    assert result.status == "diverged"
    fail = rep.of(Failed)[0]
    assert "step 7" in fail.message and "step 4" in fail.message and "learning_rate" in fail.message
    assert "--from-step 4" in fail.message
    run = ckpt.RunDir.open(tmp_path / "n")
    assert run.checkpoint_steps() == [4]
    tensors, meta = ckpt.load_checkpoint(run.latest_checkpoint())
    assert all(torch.isfinite(t).all() for t in tensors.values())


def test_stop_during_preparation_is_clean(small_text, tmp_path):
    control = RunControl()
    control.stop()
    rep = ListReporter()
    result = Trainer(tiny_experiment(small_text, max_steps=5), run_dir=tmp_path / "s").run(control, rep)
    assert result.status == "stopped"
    assert not rep.of(Failed)


def test_checkpoint_round_trip_and_damage(tmp_path):
    tensors = {"a": torch.randn(3, 4), "b": torch.arange(5)}
    path = ckpt.save_checkpoint(tmp_path / "step_0000001.json", tensors, {"step": 1})
    back, meta = ckpt.load_checkpoint(path)
    assert meta["step"] == 1 and all(torch.equal(back[k], tensors[k]) for k in tensors)
    st = path.with_suffix(".safetensors")
    st.write_bytes(st.read_bytes()[:20])
    with pytest.raises(Exception, match="cannot read tensors"):
        ckpt.load_checkpoint(path)


def test_lr_schedule_warms_up_then_decays_to_min_lr():
    exp = Experiment().with_overrides(["training.max_steps=100", "training.warmup_steps=10",
                                       "training.learning_rate=1.0", "training.min_lr=0.1"])
    lrs = [lr_at(s, exp.training) for s in range(120)]
    assert lrs[0] < lrs[5] < lrs[9] <= 1.0
    assert max(lrs) == pytest.approx(1.0, abs=0.01)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[100] == lrs[119] == 0.1


def test_the_probe_text_can_change_during_a_run(small_text, tmp_path):
    from workbench.engine.control import SET_PROBE_TEXT

    exp = tiny_experiment(small_text, max_steps=6, eval_every=0, attention_every=0)
    control = RunControl()

    class Ask(ListReporter):
        def report(self, e):
            super().report(e)
            if isinstance(e, StepMetrics) and e.step == 3:
                control.request(SET_PROBE_TEXT, "the cat sat.")

    rep = Ask()
    Trainer(exp, run_dir=tmp_path / "probe").run(control, rep)
    snap = rep.of(AttentionSnapshot)[-1]
    assert snap.step == 3 and "".join(snap.tokens) == "the cat sat."
    assert snap.attention.shape[-1] == len("the cat sat.")


def test_commands_while_paused_are_carried_out_at_once_and_the_run_keeps_the_probe(small_text, tmp_path):
    """A paused run answers a new probe text and a snapshot without training a step; the probe goes
    into config.toml and the checkpoints, so resuming the run keeps recording it."""
    from workbench.engine.control import SET_PROBE_TEXT, SNAPSHOT_ATTENTION

    exp = tiny_experiment(small_text, max_steps=8, eval_every=0, attention_every=0, checkpoint_every=0)
    control = RunControl()
    seen = threading.Event()

    class PauseThenAsk(ListReporter):
        def report(self, e):
            super().report(e)
            if isinstance(e, StepMetrics) and e.step == 3:
                control.pause()
            elif isinstance(e, Paused):  # the trainer is about to wait: ask from another thread
                threading.Timer(0.05, control.request, (SET_PROBE_TEXT, "dog ran.")).start()
                threading.Timer(0.1, control.request, (SNAPSHOT_ATTENTION,)).start()
            elif isinstance(e, AttentionSnapshot) and len(self.of(AttentionSnapshot)) == 2:
                seen.set()

    rep = PauseThenAsk()
    worker = threading.Thread(target=lambda: Trainer(exp, run_dir=tmp_path / "run").run(control, rep))
    worker.start()
    answered = seen.wait(60)
    if not answered:
        control.stop()  # let the worker end before failing
        worker.join(60)
    assert answered, "the paused run did not answer"
    assert control.paused  # still paused: both were carried out in the pause
    snaps = rep.of(AttentionSnapshot)
    assert [s.step for s in snaps] == [3, 3] and all("".join(s.tokens) == "dog ran." for s in snaps)
    after = rep.events[rep.events.index(rep.of(Paused)[0]):]
    assert not [e for e in after if isinstance(e, StepMetrics)]  # nothing trained meanwhile
    assert saved_experiment(tmp_path / "run").training.probe_text == "dog ran."
    control.resume()
    worker.join(60)
    assert rep.events[-1].reason == "completed"

    # resumed for more steps, the run records the probe it was given
    longer = saved_experiment(tmp_path / "run").with_overrides(["training.max_steps=10", "training.attention_every=1"])
    again = ListReporter()
    Trainer(longer, resume=tmp_path / "run").run(reporter=again)
    assert again.of(AttentionSnapshot) and "".join(again.of(AttentionSnapshot)[0].tokens) == "dog ran."
    _tensors, meta = ckpt.load_checkpoint(ckpt.RunDir.open(tmp_path / "run").latest_checkpoint())
    assert meta["experiment"]["training"]["probe_text"] == "dog ran."


def test_a_refused_resume_names_each_setting_in_words(small_text, tmp_path):
    exp = tiny_experiment(small_text, max_steps=2, eval_every=0, attention_every=0)
    Trainer(exp, run_dir=tmp_path / "r").run()
    changed = saved_experiment(tmp_path / "r").with_overrides(["training.batch_size=16", "training.max_steps=4"])
    result = Trainer(changed, resume=tmp_path / "r").run()
    assert result.status == "failed"
    assert "training.batch_size (sequences per micro-batch): 8 in the run, 16 now" in result.message
    assert "training.max_steps" not in result.message  # the steps may change
    assert "New run" in result.message and "--resume" in result.message


def test_a_command_during_a_pause_waits_for_whoever_borrows_the_model(small_text, tmp_path):
    """The GUI's generation playground holds RunControl.model_lock while it uses the paused model:
    a probe text asked for meanwhile is carried out only after it lets go."""
    from workbench.engine.control import SET_PROBE_TEXT

    exp = tiny_experiment(small_text, max_steps=4, eval_every=0, attention_every=0, checkpoint_every=0)
    control = RunControl()
    order: list[str] = []
    paused, snapped = threading.Event(), threading.Event()

    class Watch(ListReporter):
        def report(self, e):
            super().report(e)
            if isinstance(e, StepMetrics) and e.step == 2:
                control.pause()
            elif isinstance(e, Paused):
                paused.set()
            elif isinstance(e, AttentionSnapshot):
                order.append("snapshot")
                snapped.set()

    worker = threading.Thread(target=lambda: Trainer(exp, run_dir=tmp_path / "run").run(control, Watch()))
    worker.start()
    try:
        assert paused.wait(60)
        with control.model_lock:  # a borrower's forward pass
            control.request(SET_PROBE_TEXT, "cat sat.")
            snapped.wait(0.5)  # it would have come by now, were it not waiting for the lock
            order.append("released")
        assert snapped.wait(60)
        assert order == ["released", "snapshot"]
    finally:
        control.resume()
        worker.join(60)
