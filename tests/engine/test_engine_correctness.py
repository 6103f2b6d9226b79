"""Engine details that a reading of the code found wrong or untested: ranks with ties, the warmup,
the conflict matrix of one-task steps, task weights, right padding, the optimizer and the step."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from workbench.engine.config import Experiment, MultitaskConfig, TaskConfig, setting_warnings
from workbench.engine.events import ListReporter, StepMetrics, TaskBalance
from workbench.engine.evaluate import look_back_attention
from workbench.engine.model import GPT, GPTConfig, gelu_tanh_as_sigmoid
from workbench.engine.multitask import conflict_matrix
from workbench.engine.tasks.labelled import LabelledTask
from workbench.engine.tokenizer import train_tokenizer
from workbench.engine.stepping import build_optimizer, lr_at
from workbench.engine.trainer import Trainer

from .test_finetune import base, finetune_experiment, pretrained, reviews  # noqa: F401 (fixtures)
from .test_multitask import multitask_experiment
from .test_trainer import tiny_experiment


# -- metrics and schedule ----------------------------------------------------------------------


def test_spearman_gives_tied_values_their_average_rank():
    regression = SimpleNamespace(regression=True)
    pred = torch.tensor([1.0, 2.0, 2.0, 3.0])
    target = torch.tensor([1.0, 2.0, 3.0, 4.0])
    # average ranks: pred (0, 1.5, 1.5, 3) against (0, 1, 2, 3): Pearson = 0.9486833
    rho = LabelledTask.metrics(regression, pred, target)["spearman"]
    assert rho == pytest.approx(3 / math.sqrt(10), abs=1e-9)
    # both orders of the tied pair give the same value (arbitrary ranks gave 1.0 or 0.8)
    assert LabelledTask.metrics(regression, pred.flip(0), target.flip(0))["spearman"] == pytest.approx(rho, abs=1e-12)
    # a constant prediction is one big tie: no correlation, not a number made from the input order
    assert LabelledTask.metrics(regression, torch.ones(4), target)["spearman"] == 0.0


def test_warmup_rises_from_near_zero_to_the_full_rate_at_step_w():
    cfg = Experiment().with_overrides(["training.max_steps=100", "training.warmup_steps=10",
                                       "training.learning_rate=1.0", "training.min_lr=0.1"]).training
    # lr_at(s) is the rate of the update logged as step s + 1
    assert lr_at(0, cfg) == pytest.approx(0.1)        # step 1: learning_rate / W
    assert lr_at(9, cfg) == 1.0                        # step W: the full rate, as the help says
    assert lr_at(10, cfg) == 1.0                       # then the cosine starts from the top
    assert all(lr_at(s + 1, cfg) - lr_at(s, cfg) == pytest.approx(0.1) for s in range(9))


# -- several tasks ----------------------------------------------------------------------------


def test_the_conflict_matrix_marks_pairs_without_gradients_as_not_measured():
    g = torch.tensor([[1.0, 0.0], [0.0, 0.0], [-2.0, 0.0]])  # task 1 had no batch this step
    m = conflict_matrix(g, active=[0, 2])
    assert m[0, 2] == pytest.approx(-1.0) and m[0, 0] == pytest.approx(1.0)
    assert torch.isnan(m[1]).all() and torch.isnan(m[:, 1]).all()
    assert torch.allclose(conflict_matrix(g[[0, 2]]), torch.tensor([[1.0, -1.0], [-1.0, 1.0]]))


def test_a_run_drawing_one_task_per_step_reports_no_made_up_conflicts(small_text, tmp_path):
    import json

    exp = multitask_experiment(small_text, "fixed", max_steps=6, eval_every=0, checkpoint_every=100)
    exp = exp.with_overrides(["multitask.sampling=proportional", "multitask.conflict_every=1"])
    rep = ListReporter()
    assert Trainer(exp, run_dir=tmp_path / "p").run(reporter=rep).status == "completed"
    snaps = rep.of(TaskBalance)
    assert len(snaps) == 6
    for s in snaps:
        off = s.conflict[~np.eye(3, dtype=bool)]
        assert np.isnan(off).all()  # one task per step: no pair had two gradients (before: zeros)
        assert np.nansum(np.isfinite(np.diag(s.conflict))) == 1  # the drawn task's own cell
    lines = [json.loads(x) for x in (tmp_path / "p" / "balance.jsonl").read_text().splitlines()]
    assert lines[0]["conflict"][0][1] is None  # JSON null, not NaN


def test_pcgrad_honours_the_task_weights_and_the_check_names_weights_that_are_ignored(small_text, tmp_path):
    exp = multitask_experiment(small_text, "pcgrad", max_steps=2, eval_every=0, checkpoint_every=100)
    trainer = Trainer(exp, run_dir=tmp_path / "w")
    trainer.prepare()
    assert trainer.state.weighting.weights() == [1.0, 0.5, 0.5]  # as configured (before: all 1)
    assert trainer.state.weighting.term(1, torch.tensor(2.0)).item() == 1.0
    tasks = [TaskConfig(kind="causal_lm"), TaskConfig(kind="masked_lm", weight=0.5)]
    rr = setting_warnings(tasks, MultitaskConfig(sampling="round_robin"))
    assert len(rr) == 1 and "round_robin" in rr[0] and "lm 1, mlm 0.5" in rr[0]
    assert "ignored" in setting_warnings(tasks, MultitaskConfig(weighting="gradnorm"))[0]
    assert setting_warnings(tasks, MultitaskConfig(weighting="pcgrad")) == []
    assert setting_warnings(tasks, MultitaskConfig(sampling="proportional")) == []
    equal = [TaskConfig(kind="causal_lm"), TaskConfig(kind="masked_lm")]
    assert setting_warnings(equal, MultitaskConfig(sampling="round_robin")) == []


def test_the_trainer_applies_pcgrad_projected_gradients_not_their_plain_sum(small_text, tmp_path):
    exp = multitask_experiment(small_text, "pcgrad", max_steps=8, eval_every=0, checkpoint_every=100,
                               grad_clip=0)
    trainer = Trainer(exp, run_dir=tmp_path / "pc")
    trainer.prepare()
    seen = []
    combine = trainer.state.weighting.combine_shared

    def spy(grads, active, gen):
        out = combine(grads, active, gen)
        seen.append({"sum": grads[active].sum(0).clone(), "projected": out.clone()})
        return out

    trainer.state.weighting.combine_shared = spy
    step = trainer.state.optimizer.step

    def spy_step(*a, **kw):
        seen[-1]["applied"] = trainer.state.task_grads.flat().clone()
        return step(*a, **kw)

    trainer.state.optimizer.step = spy_step
    assert trainer._loop() == "completed"  # run() would prepare (and build the optimizer) again
    trainer.state.metrics.close()
    assert len(seen) == 8
    for s in seen:
        assert torch.allclose(s["applied"], s["projected"], atol=1e-7)  # what the optimizer got
    changed = [not torch.allclose(s["projected"], s["sum"], atol=1e-6) for s in seen]
    assert any(changed)  # the tasks conflicted at least once and the projection changed the update


# -- labelled tasks ----------------------------------------------------------------------------


def test_labelled_tasks_use_the_causal_fast_path_and_padding_changes_nothing(reviews, pretrained, monkeypatch):
    from workbench.engine import model as model_mod
    from workbench.engine.loading import load_trained
    from workbench.engine.tasks import TaskContext, build_task

    tok = load_trained(pretrained).tokenizer
    task = build_task(finetune_experiment(reviews, pretrained).tasks[0], TaskContext(tok, None, 32, 64))
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, n_layer=2, n_head=2, n_embd=32, block_size=64)).eval()
    model.heads[task.name] = task.build_head()
    encs = sorted(task.examples["val"][:6], key=lambda e: len(e.parts[0]))
    assert len(encs[0].parts[0]) < len(encs[-1].parts[0])
    alone = torch.cat([task.predict(model, task.collate([e]))[0] for e in encs])

    def no_mask(*a, **kw):
        raise AssertionError("an explicit attention mask was built")

    monkeypatch.setattr(model_mod, "attention_mask", no_mask)  # SDPA's is_causal path only
    together, _ = task.predict(model, task.collate(encs))       # right-padded to the longest
    assert torch.allclose(together, alone, atol=1e-5)


def test_labelled_validation_runs_the_trunk_once_per_batch(reviews, pretrained):
    from workbench.engine.loading import load_trained
    from workbench.engine.tasks import TaskContext, build_task

    tok = load_trained(pretrained).tokenizer
    task = build_task(finetune_experiment(reviews, pretrained).tasks[0], TaskContext(tok, None, 32, 64))
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_embd=32, block_size=64)).eval()
    model.heads[task.name] = task.build_head()
    calls = []
    trunk = model.hidden_states
    model.hidden_states = lambda *a, **kw: calls.append(1) or trunk(*a, **kw)
    loss, metrics = task.evaluate(model, 16, torch.device("cpu"))
    batches = math.ceil(len(task.examples["val"]) / 16)
    assert len(calls) == batches and math.isfinite(loss) and 0 <= metrics["accuracy"] <= 1
    # and the loss is the mean of the batches' own losses
    expected = sum(task.forward(model, task.collate(task.examples["val"][i:i + 16])).loss.item()
                   * len(task.examples["val"][i:i + 16]) for i in range(0, len(task.examples["val"]), 16))
    assert loss == pytest.approx(expected / len(task.examples["val"]), rel=1e-6)


# -- the optimizer and the step ------------------------------------------------------------------


def test_adamw_decays_matrices_only_and_leaves_out_frozen_parameters():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, n_layer=2, n_head=2, n_embd=16, block_size=8))
    model.transformer.h[0].mlp.c_fc.weight.requires_grad_(False)
    model.transformer.h[0].ln_1.bias.requires_grad_(False)
    cfg = Experiment().with_overrides(["training.weight_decay=0.25"]).training
    opt = build_optimizer(model, cfg, torch.device("cpu"))
    names = {p: n for n, p in model.named_parameters()}
    decay = {names[p] for g in opt.param_groups if g["weight_decay"] == 0.25 for p in g["params"]}
    plain = {names[p] for g in opt.param_groups if g["weight_decay"] == 0.0 for p in g["params"]}
    assert not decay & plain
    assert decay == {n for n, p in model.named_parameters() if p.requires_grad and p.dim() >= 2}
    assert plain == {n for n, p in model.named_parameters() if p.requires_grad and p.dim() < 2}
    assert "transformer.wte.weight" in decay and "transformer.h.1.ln_1.weight" in plain
    assert "transformer.h.0.mlp.c_fc.weight" not in decay | plain
    assert "transformer.h.0.ln_1.bias" not in decay | plain
    # discriminative rates: a group per (decay, scale), carrying its scale
    scaled = build_optimizer(model, cfg, torch.device("cpu"), {"transformer.h.1.mlp.c_fc.weight": 0.5})
    assert any(g["lr_scale"] == 0.5 and len(g["params"]) == 1 for g in scaled.param_groups)


def _one_step(exp, tmp_path, name, batches):
    """One optimizer step of a fresh trainer whose task draws ``batches`` in turn."""
    trainer = Trainer(exp, run_dir=tmp_path / name)
    trainer.prepare()
    it = iter(batches)
    trainer.state.tasks[0].sample = lambda split, n, gen: next(it)
    for g in trainer.state.optimizer.param_groups:
        g["lr"] = 1e-2
    loss, _, norm, _ = trainer._train_step()
    return loss, norm, {k: v.clone() for k, v in trainer.state.model.state_dict().items()}


def test_gradient_accumulation_equals_one_big_batch(small_text, tmp_path):
    exp = tiny_experiment(small_text, max_steps=1, grad_clip=0, attention_every=0)
    trainer = Trainer(exp, run_dir=tmp_path / "src")
    trainer.prepare()
    big = trainer.state.tasks[0].sample("train", 8, torch.Generator().manual_seed(3))
    halves = [{k: v[:4] for k, v in big.items()}, {k: v[4:] for k, v in big.items()}]
    loss_a, norm_a, w_a = _one_step(exp.with_overrides(["training.batch_size=8"]), tmp_path, "a", [big])
    loss_b, norm_b, w_b = _one_step(exp.with_overrides(["training.batch_size=4", "training.grad_accum_steps=2"]),
                                    tmp_path, "b", halves)
    assert loss_b == pytest.approx(loss_a, rel=1e-6) and norm_b == pytest.approx(norm_a, rel=1e-5)
    assert all(torch.allclose(w_a[k], w_b[k], atol=1e-6) for k in w_a)
    start = Trainer(exp, run_dir=tmp_path / "c").prepare()
    assert any(not torch.equal(w_a[k], v) for k, v in start.model.state_dict().items())  # it did train


def test_clipping_caps_the_gradient_norm_the_optimizer_sees(small_text, tmp_path):
    exp = tiny_experiment(small_text, max_steps=5, grad_clip=0.05, eval_every=0, attention_every=0)
    trainer = Trainer(exp, run_dir=tmp_path / "clip")
    trainer.prepare()
    applied = []
    step = trainer.state.optimizer.step

    def spy(*a, **kw):
        grads = [p.grad for p in trainer.state.net.parameters() if p.grad is not None]
        applied.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item())
        return step(*a, **kw)

    trainer.state.optimizer.step = spy
    rep = trainer.reporter = ListReporter()
    assert trainer._loop() == "completed"
    trainer.state.metrics.close()
    reported = [s.grad_norm for s in rep.of(StepMetrics)]
    assert all(r > 0.05 for r in reported)  # the norm before clipping is what the curves show
    assert applied == pytest.approx([0.05] * 5, rel=1e-4)


# -- the model's pieces -------------------------------------------------------------------------


def test_the_mlp_uses_gpt2s_tanh_gelu():
    torch.manual_seed(0)
    mlp = GPT(GPTConfig(vocab_size=20, n_layer=1, n_head=1, n_embd=8, block_size=4)).transformer.h[0].mlp.double()
    x = torch.linspace(-6, 6, 2001, dtype=torch.float64)
    tanh_form = 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    exact = 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
    assert (tanh_form - exact).abs().max() > 1e-4  # the two variants are distinguishable here
    assert torch.allclose(mlp.gelu(x), tanh_form, rtol=0, atol=1e-12)
    assert torch.allclose(gelu_tanh_as_sigmoid(x), tanh_form, rtol=0, atol=1e-12)  # its compiled form
    h = torch.randn(3, 8, dtype=torch.float64)
    u = mlp.c_fc(h)
    manual = mlp.c_proj(0.5 * u * (1 + torch.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u ** 3))))
    assert torch.allclose(mlp.eval()(h), manual, rtol=0, atol=1e-12)


def test_look_back_scores_read_the_earlier_occurrence_and_the_token_after_it_exactly():
    tok = train_tokenizer("char", 64, ["ab1ab2ba xyzxy 0123456789"])
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_embd=16, block_size=32)).eval()

    def crafted(idx, **kw):
        """Head 0 looks only at the token after the last earlier occurrence (an induction head),
        head 1 only at that occurrence (a same-token head); other queries look at themselves."""
        B, T = idx.shape
        att = torch.zeros(1, B, 2, T, T)
        for b in range(B):
            ids = idx[b].tolist()
            for t in range(T):
                prev = [p for p in range(t) if ids[p] == ids[t] and p + 1 < t]
                if prev:
                    att[0, b, 0, t, prev[-1] + 1] = 1.0
                    att[0, b, 1, t, prev[-1]] = 1.0
                else:
                    att[0, b, :, t, t] = 1.0
        return None, att

    model.attention_maps = crafted
    lb = look_back_attention(model, tok, ["ab1ab2ba", "xyzxy"])  # two lengths: right padding in one batch
    assert lb.positions == 6
    assert lb.induction[0] == pytest.approx([1.0, 0.0], abs=1e-9)
    assert lb.same_token[0] == pytest.approx([0.0, 1.0], abs=1e-9)
