"""A run that goes wrong stops at the right step and names a checkpoint that really is good."""

import math

import pytest
import torch

from workbench.engine import checkpoint as ckpt
from workbench.engine.divergence import DivergenceWatch
from workbench.engine.events import Failed, ListReporter, StepMetrics
from workbench.engine.generate import SamplingSettings, generate
from workbench.engine.loading import load_trained
from workbench.engine.trainer import Trainer, saved_experiment

from .test_trainer import tiny_experiment


def _finite(tensors: dict) -> bool:
    return all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())


def test_a_checkpoint_is_written_only_for_weights_whose_loss_was_finite(small_text, tmp_path):
    # The weights go bad right when a checkpoint is due (step 8): before, that checkpoint held them
    # and the message called it the last good one. Now it waits for step 9's loss, which is NaN.
    exp = tiny_experiment(small_text, max_steps=20, eval_every=0, attention_every=0, checkpoint_every=4)
    trainer = Trainer(exp, run_dir=tmp_path / "n")

    class Poison(ListReporter):
        def report(self, e):
            super().report(e)
            if isinstance(e, StepMetrics) and e.step == 8:
                with torch.no_grad():
                    trainer.state.model.transformer.h[0].attn.c_attn.weight.mul_(1e30).fill_(math.inf)

    rep = Poison()
    result = trainer.run(reporter=rep)
    assert result.status == "diverged" and result.step == 8
    msg = rep.of(Failed)[0].message
    assert "step 9" in msg and "step 4 " in msg and "--from-step 4" in msg
    run = ckpt.RunDir.open(tmp_path / "n")
    assert run.checkpoint_steps() == [4]
    assert _finite(ckpt.load_checkpoint(run.latest_checkpoint())[0])


def test_a_nan_gradient_with_a_finite_loss_stops_before_the_update(small_text, tmp_path):
    exp = tiny_experiment(small_text, max_steps=20, eval_every=0, attention_every=0, checkpoint_every=3)
    trainer = Trainer(exp, run_dir=tmp_path / "g")
    seen = {}

    class PoisonGrad(ListReporter):
        def report(self, e):
            super().report(e)
            if isinstance(e, StepMetrics) and e.step == 5:
                w = trainer.state.model.transformer.h[1].mlp.c_fc.weight
                w.register_hook(lambda g: torch.full_like(g, math.nan))  # the loss stays finite
                seen["before"] = {k: v.clone() for k, v in trainer.state.model.state_dict().items()}

    rep = PoisonGrad()
    result = trainer.run(reporter=rep)
    assert result.status == "diverged" and result.step == 5
    msg = rep.of(Failed)[0].message
    assert "step 6" in msg and "gradient norm became nan" in msg and "--from-step 3" in msg
    after = trainer.state.model.state_dict()
    assert all(torch.equal(after[k], seen["before"][k]) for k in after)  # not one weight moved
    assert _finite(after)
    run = ckpt.RunDir.open(tmp_path / "g")
    assert run.checkpoint_steps() == [3]  # step 3 was verified by step 4's loss and gradients
    assert _finite(ckpt.load_checkpoint(run.checkpoint_path(3))[0])
    assert [s.step for s in rep.of(StepMetrics)][-1] == 5  # no metrics line for the failed step


def test_a_loss_that_explodes_without_nan_stops_and_names_a_checkpoint_that_works(small_text, tmp_path):
    # Train sensibly, then continue at learning rate 10 without clipping: the loss jumps to hundreds
    # and stays there, never NaN. Before, this ran to the end and called itself "completed".
    exp = tiny_experiment(small_text, max_steps=30, eval_every=0, attention_every=0, checkpoint_every=10,
                          keep_checkpoints=1)
    assert Trainer(exp, run_dir=tmp_path / "d").run().status == "completed"
    hot = saved_experiment(tmp_path / "d").with_overrides(
        ["training.max_steps=300", "training.learning_rate=10", "training.min_lr=10", "training.grad_clip=0"])
    rep = ListReporter()
    result = Trainer(hot, resume=tmp_path / "d").run(reporter=rep)
    assert result.status == "diverged" and result.step < 300
    msg = rep.of(Failed)[0].message
    assert f"step {result.step + 1}" in msg and "training.divergence_factor" in msg
    good = int(msg.split("--from-step ")[1].split()[0])
    assert good == 30
    run = ckpt.RunDir.open(tmp_path / "d")
    assert good in run.checkpoint_steps()  # kept although keep_checkpoints = 1 and later ones were written
    # the checkpoints written while the loss was out of its band are moved aside: a plain --resume,
    # generate or export of the run now takes the good one
    assert max(run.checkpoint_steps()) == good and "were moved to" in msg
    moved = list((tmp_path / "d" / "superseded").glob("*/checkpoints/step_*.json"))
    assert moved and all(ckpt._STEP_FILE.search(m.name) and int(m.stem.split("_")[1]) > good for m in moved)

    trained = load_trained(run.checkpoint_path(good))
    tokens = list(generate(trained.model, trained.tokenizer, "the cat ",
                           SamplingSettings(max_tokens=20, temperature=1.0, seed=1, stop_at_eos=False)))
    assert len(tokens) == 20 and "".join(t.text for t in tokens).strip()
    assert all(math.isfinite(t.prob) and math.isfinite(t.model_prob) for t in tokens)

    calm = saved_experiment(tmp_path / "d").with_overrides(
        ["training.max_steps=50", "training.learning_rate=1e-3", "training.min_lr=1e-4", "training.grad_clip=1"])
    again = ListReporter()
    resumed = Trainer(calm, resume=tmp_path / "d", from_step=good).run(reporter=again)
    assert resumed.status == "completed" and resumed.step == 50
    losses = [s.loss for s in again.of(StepMetrics)]
    assert all(math.isfinite(x) for x in losses) and max(losses) < 3.5  # 30 steps in, the loss was ~2.3
    assert (tmp_path / "d" / "superseded").is_dir()  # the diverged checkpoints were moved, not deleted


def test_from_step_resumes_with_the_numbers_the_run_had_at_that_step(small_text, tmp_path):
    exp = tiny_experiment(small_text, max_steps=24, eval_every=0, attention_every=0, checkpoint_every=8,
                          keep_checkpoints=5).with_overrides(["model.dropout=0.1"])
    first = ListReporter()
    assert Trainer(exp, run_dir=tmp_path / "f").run(reporter=first).status == "completed"
    run = ckpt.RunDir.open(tmp_path / "f")
    assert run.checkpoint_steps() == [8, 16, 24]

    second = ListReporter()
    result = Trainer(saved_experiment(run.path), resume=run.path, from_step=8).run(reporter=second)
    assert result.status == "completed" and result.step == 24
    original = [s.loss for s in first.of(StepMetrics)][8:]
    assert [s.loss for s in second.of(StepMetrics)] == original  # bit for bit, dropout included
    records = ckpt.read_metrics(run.metrics)
    assert [r["step"] for r in records if r["split"] == "train"] == list(range(1, 25))  # no duplicates
    aside = list((run.path / "superseded").iterdir())
    assert len(aside) == 1
    assert sorted(p.name for p in (aside[0] / "checkpoints").iterdir()) == [
        "step_0000016.json", "step_0000016.safetensors", "step_0000024.json", "step_0000024.safetensors"]
    assert (aside[0] / "metrics.jsonl").exists()
    assert run.checkpoint_steps() == [8, 16, 24]  # written again by the resumed run


def test_from_step_names_the_steps_there_are(small_text, tmp_path):
    exp = tiny_experiment(small_text, max_steps=6, eval_every=0, attention_every=0, checkpoint_every=3)
    Trainer(exp, run_dir=tmp_path / "s").run()
    result = Trainer(saved_experiment(tmp_path / "s"), resume=tmp_path / "s", from_step=4).run()
    assert result.status == "failed" and "step 4" in result.message and "3, 6" in result.message


def test_the_watch_rides_out_a_spike_but_not_a_plateau_far_above_the_floor():
    w = DivergenceWatch(factor=2.0, margin=1.0, patience=5, warmup=3)
    losses = [4.0, 3.5, 3.0, 2.5, 2.0] + [30.0] * 2 + [2.0] * 30
    assert not any(w.update(i + 1, x) for i, x in enumerate(losses))
    w.checkpoint_written(len(losses))
    fired = [w.update(len(losses) + 1 + i, 50.0) for i in range(20)]
    assert fired.index(True) < 10 and w.good_checkpoint == len(losses)
    off = DivergenceWatch(factor=0.0, margin=1.0, patience=1, warmup=0)
    assert not any(off.update(i + 1, 10.0 ** i) for i in range(10))


def test_a_loss_that_leaves_its_band_during_warmup_stops_right_after_it_and_names_no_later_checkpoint():
    w = DivergenceWatch(factor=2.0, margin=1.0, patience=3, warmup=10)
    w.update(1, 4.0)
    w.checkpoint_written(1)
    fired = []
    for step in range(2, 15):
        fired.append(w.update(step, 500.0))
        if step == 5:
            w.checkpoint_written(5)  # out of band already: written (resume needs it), never "good"
    assert fired.index(True) + 2 == 11  # the first step after warmup
    assert w.good_checkpoint == 1 and w.streak_start == 2


def test_the_watch_state_round_trips_and_ignores_damaged_values():
    w = DivergenceWatch(factor=2.0, margin=1.0, patience=3, warmup=0)
    for step, loss in enumerate([4.0, 3.0, 2.5, 9.0], start=1):
        w.update(step, loss)
    w.checkpoint_written(3)
    back = DivergenceWatch(factor=2.0, margin=1.0, patience=3, warmup=0)
    back.load(w.state())
    assert back == w
    back.load({"ema": "x", "floor": float("nan"), "streak": True, "factor": 0.0, "good_checkpoint": "3"})
    assert back.factor == 2.0 and back.ema == w.ema and back.floor == w.floor and back.streak == w.streak
    back.load(None)
    back.load([1, 2])
    assert back == w


def test_a_checkpoint_written_during_the_next_step_keeps_the_watch_of_its_own_step(small_text, tmp_path):
    # The checkpoint of step 10 is written during step 11 (once its loss is known finite); a resume
    # from it replays step 11, so the watch it stores must not have seen step 11 yet.
    exp = tiny_experiment(small_text, max_steps=15, eval_every=0, attention_every=0, checkpoint_every=10)
    assert Trainer(exp, run_dir=tmp_path / "w").run().status == "completed"
    run = ckpt.RunDir.open(tmp_path / "w")
    _, meta = ckpt.load_checkpoint(run.checkpoint_path(10))
    losses = [r["loss"] for r in ckpt.read_metrics(run.metrics) if r["split"] == "train"][:10]
    watch = DivergenceWatch(2.0, 1.0, 20, 0)
    for step, loss in enumerate(losses, start=1):
        watch.update(step, loss)
    assert meta["divergence"]["ema"] == pytest.approx(watch.ema, rel=1e-6)
    assert meta["divergence"]["good_checkpoint"] == 10
