"""The fp16 loss-scaler path (run on the CPU) and optimizer state placement after a resume."""

import math

import numpy as np
import pytest
import torch

from workbench.engine.events import ListReporter, StepMetrics, TaskBalance
from workbench.engine.trainer import Trainer, saved_experiment

from .test_multitask import multitask_experiment
from .test_trainer import tiny_experiment


def test_fp16_with_the_grad_scaler_trains_on_the_cpu(small_text, tmp_path):
    exp = tiny_experiment(small_text, max_steps=40, eval_every=0, attention_every=0, precision="fp16")
    rep = ListReporter()
    trainer = Trainer(exp, run_dir=tmp_path / "h")
    result = trainer.run(reporter=rep)
    assert result.status == "completed", result.message
    assert trainer.state.scaler.is_enabled() and trainer.state.precision.name == "fp16"
    losses = [s.loss for s in rep.of(StepMetrics)]
    assert np.mean(losses[-5:]) < losses[0] - 0.5


def test_an_overflowing_fp16_step_is_skipped_and_leaves_gradnorm_weights_finite(small_text, tmp_path):
    exp = multitask_experiment(small_text, "gradnorm", max_steps=12, eval_every=0, checkpoint_every=100,
                               precision="fp16").with_overrides(["multitask.conflict_every=1"])
    trainer = Trainer(exp, run_dir=tmp_path / "o")
    state = {}

    class Overflow(ListReporter):
        def report(self, e):
            super().report(e)
            if isinstance(e, StepMetrics) and e.step == 5:
                # GradNorm's W (the last block's MLP output) overflows in step 6, the loss stays finite
                w = trainer.state.model.transformer.h[-1].mlp.c_proj.weight
                state["hook"] = w.register_hook(lambda g: torch.full_like(g, math.inf))
                state["scale"] = trainer.state.scaler.get_scale()
                state["weights"] = list(trainer.state.weighting.weights())
            if isinstance(e, StepMetrics) and e.step == 6:
                state["hook"].remove()
                state["after"] = list(trainer.state.weighting.weights())
                state["scale_after"] = trainer.state.scaler.get_scale()

    rep = Overflow()
    result = trainer.run(reporter=rep)
    assert result.status == "completed", result.message
    assert state["scale_after"] == state["scale"] / 2   # the scaler skipped the step
    assert state["after"] == state["weights"]           # GradNorm learned nothing from it
    assert all(math.isfinite(w) for w in trainer.state.weighting.weights())
    assert sum(trainer.state.weighting.weights()) == pytest.approx(3.0, abs=1e-4)
    balance_steps = [b.step for b in rep.of(TaskBalance)]
    assert 6 not in balance_steps and 7 in balance_steps  # no conflict matrix from inf gradients
    assert all(np.isfinite(b.conflict).all() for b in rep.of(TaskBalance))


def test_many_overflowing_steps_in_a_row_stop_the_run(small_text, tmp_path):
    exp = tiny_experiment(small_text, max_steps=60, eval_every=0, attention_every=0, precision="fp16",
                          checkpoint_every=2)
    trainer = Trainer(exp, run_dir=tmp_path / "m")

    class Overflow(ListReporter):
        def report(self, e):
            super().report(e)
            if isinstance(e, StepMetrics) and e.step == 3:
                trainer.state.model.transformer.h[0].mlp.c_fc.weight.register_hook(lambda g: torch.full_like(g, math.inf))

    rep = Overflow()
    result = trainer.run(reporter=rep)
    assert result.status == "diverged" and "overflowed in 20 steps in a row" in result.message
    assert all(torch.isfinite(p).all() for p in trainer.state.model.parameters())


def test_every_optimizer_state_tensor_sits_on_its_parameters_device_after_resume(small_text, tmp_path):
    device = "cuda" if torch.cuda.is_available() else "cpu"
    exp = tiny_experiment(small_text, max_steps=4, eval_every=0, attention_every=0, device=f'"{device}"')
    Trainer(exp, run_dir=tmp_path / "r").run()
    longer = saved_experiment(tmp_path / "r").with_overrides(["training.max_steps=6"])
    trainer = Trainer(longer, resume=tmp_path / "r")
    trainer.prepare()
    fused = trainer.state.optimizer.defaults.get("fused")
    assert trainer.state.optimizer.state
    for p, st in trainer.state.optimizer.state.items():
        for key, t in st.items():
            # fused AdamW reads `step` on the device; the unfused one keeps it on the CPU
            want = p.device if (key != "step" or fused) else torch.device("cpu")
            assert t.device == want, (key, t.device, p.device)
    # and the next steps run from there
    assert trainer.run().status == "completed"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fused_adamw_resumes_on_cuda_to_the_same_numbers(small_text, tmp_path):
    exp = tiny_experiment(small_text, max_steps=8, eval_every=0, attention_every=0, checkpoint_every=4,
                          device='"cuda"', precision="fp32")
    straight = ListReporter()
    Trainer(exp, run_dir=tmp_path / "a").run(reporter=straight)
    again = ListReporter()
    Trainer(saved_experiment(tmp_path / "a"), resume=tmp_path / "a", from_step=4).run(reporter=again)
    a = [s.loss for s in straight.of(StepMetrics)][4:]
    b = [s.loss for s in again.of(StepMetrics)]
    assert np.allclose(a, b, rtol=1e-5)


def test_a_skipped_step_is_marked_in_the_metrics_without_an_infinite_norm(small_text, tmp_path):
    from workbench.engine import checkpoint as ckpt

    exp = tiny_experiment(small_text, max_steps=6, eval_every=0, attention_every=0, precision="fp16")
    trainer = Trainer(exp, run_dir=tmp_path / "k")
    hooks = []

    class Overflow(ListReporter):
        def report(self, e):
            super().report(e)
            if isinstance(e, StepMetrics) and e.step == 2:
                w = trainer.state.model.transformer.h[0].mlp.c_fc.weight
                hooks.append(w.register_hook(lambda g: torch.full_like(g, math.inf)))
            if isinstance(e, StepMetrics) and e.step == 3:
                hooks[0].remove()

    rep = Overflow()
    assert trainer.run(reporter=rep).status == "completed"
    lines = (tmp_path / "k" / "metrics.jsonl").read_text()
    assert "Infinity" not in lines and "NaN" not in lines
    train = [r for r in ckpt.read_metrics(tmp_path / "k" / "metrics.jsonl") if r["split"] == "train"]
    assert [r.get("skipped", False) for r in train] == [False, False, True, False, False, False]
    assert "grad_norm" not in train[2] and all(r["grad_norm"] > 0 for i, r in enumerate(train) if i != 2)
    assert math.isnan(rep.of(StepMetrics)[2].grad_norm)
