import numpy as np
import pytest
import torch

from workbench.engine.config import Experiment, MultitaskConfig, TaskConfig
from workbench.engine.data import TokenData
from workbench.engine.events import EvalResult, ListReporter, StepMetrics, TaskBalance
from workbench.engine.model import GPT, GPTConfig
from workbench.engine.multitask import (GradNorm, TaskGradients, TaskSampler, Uncertainty, build_weighting,
                                        conflict_matrix, pcgrad_project)
from workbench.engine.tasks import TaskContext, build_task
from workbench.engine.trainer import Trainer

SPECIALS = {"pad": 0, "bos": 1, "eos": 2, "mask": 3, "delim": 4, "extract": 5, "unk": 6}


class Specials:
    """Stands in for a tokenizer: tasks only ask for special ids and the vocabulary size."""
    vocab_size = 40

    def special_id(self, role):
        return SPECIALS[role]


def context(tokens=None, block_size=16):
    tokens = np.arange(7, 2007) % 33 + 7 if tokens is None else tokens  # a counting sequence, ids 7..39
    return TaskContext(Specials(), TokenData(tokens.astype(np.uint16), 0.1, block_size), n_embd=32,
                       block_size=block_size)


# -- gradient surgery and balancing, with known answers -------------------------------------


def test_pcgrad_removes_conflicts_and_leaves_agreeing_gradients_alone():
    g = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])  # dot = -1: conflicting
    p = pcgrad_project(g, torch.Generator().manual_seed(0))
    assert torch.dot(p[0], g[1]) >= -1e-6 and torch.dot(p[1], g[0]) >= -1e-6
    assert torch.allclose(p[0], torch.tensor([0.5, 0.5]))  # g1 minus its component along g2
    agree = torch.tensor([[1.0, 0.2], [0.5, 1.0], [0.3, 0.3]])
    assert torch.equal(pcgrad_project(agree), agree)
    rng = torch.Generator().manual_seed(1)
    conflicts = 0
    for _ in range(200):
        g = torch.randn(2, 8, generator=rng)
        p = pcgrad_project(g, rng)
        if torch.dot(g[0], g[1]) < 0:
            conflicts += 1
            assert torch.dot(p[0], g[1]).abs() < 1e-5 and torch.dot(p[1], g[0]).abs() < 1e-5
            assert torch.dot(p[0], p[1]) >= 0  # = -(g0.g1) sin^2(angle) for two tasks
        else:
            assert torch.equal(p, g)
    assert conflicts > 50


def test_conflict_matrix_is_cosine_similarity():
    g = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])
    m = conflict_matrix(g)
    assert torch.allclose(m, torch.tensor([[1.0, 0.0, -1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 1.0]]))


def test_uncertainty_weighting_gives_the_noisier_task_the_smaller_weight():
    torch.manual_seed(0)
    x = torch.randn(512, 4)
    w_true = torch.randn(4, 1)
    y_clean = x @ w_true + 0.1 * torch.randn(512, 1)
    y_noisy = x @ w_true + 1.0 * torch.randn(512, 1)
    tasks = [TaskConfig(kind="causal_lm", name="clean"), TaskConfig(kind="causal_lm", name="noisy")]
    weighting = Uncertainty(tasks, MultitaskConfig(weighting="uncertainty"))
    shared = torch.nn.Linear(4, 1)
    opt = torch.optim.Adam(list(shared.parameters()) + list(weighting.parameters()), lr=0.05)
    for _ in range(600):
        pred = shared(x)
        losses = [((pred - y_clean) ** 2).mean(), ((pred - y_noisy) ** 2).mean()]
        total = sum(weighting.term(i, l) for i, l in enumerate(losses))
        opt.zero_grad()
        total.backward()
        opt.step()
    w_clean, w_noisy = weighting.weights()
    assert w_noisy < w_clean / 5
    # at the optimum exp(s_i) equals task i's loss: the learned variance tracks the noise
    s = weighting.log_vars.detach()
    assert torch.allclose(torch.exp(s), torch.stack(losses).detach(), rtol=0.3)


def test_gradnorm_keeps_the_weights_summing_to_the_number_of_tasks_and_favours_the_slow_task():
    tasks = [TaskConfig(name="a"), TaskConfig(name="b"), TaskConfig(name="c")]
    gn = GradNorm(tasks, MultitaskConfig(weighting="gradnorm", gradnorm_lr=0.05))
    for step in range(40):
        # task c's loss falls slowest; all have the same raw gradient norm
        losses = {0: 2.0 * 0.9 ** step, 1: 2.0 * 0.95 ** step, 2: 2.0}
        gn.after_step(losses, {i: float(gn.w[i]) * 1.0 for i in range(3)})
        assert sum(gn.weights()) == pytest.approx(3.0, abs=1e-5)
    w = gn.weights()
    assert w[2] > w[1] > w[0]


def test_task_gradients_hold_each_tasks_own_gradient_and_report_their_conflict_when_due():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=40, n_layer=1, n_head=2, n_embd=32, block_size=16))
    head = model.heads["cls"] = torch.nn.Linear(32, 2)  # a task head is no part of the shared trunk
    tasks = [TaskConfig(kind="causal_lm"), TaskConfig(kind="masked_lm")]
    grads = TaskGradients(model, build_weighting(tasks, MultitaskConfig()), ["lm", "mlm"], conflict_every=2)
    batches = [torch.randint(0, 40, (4, 9), generator=torch.Generator().manual_seed(i)) for i in (1, 2)]

    def loss(x):
        return model(x[:, :-1].contiguous(), x[:, 1:].contiguous())[1] + head(model.transformer.wte(x)).sum() * 0

    alone = []
    for x in batches:  # each task's gradient on the trunk, from a backward pass of its own
        model.zero_grad()
        loss(x).backward()
        alone.append(grads.flat().clone())
    model.zero_grad()
    grads.start(step=2, active=[0, 1])  # step 2: a conflict report is due
    for i, x in enumerate(batches):
        with grads.measure(i):
            loss(x).backward()
    assert grads.grads.shape == (2, sum(p.numel() for n, p in model.named_parameters() if not n.startswith("heads.")))
    for i in range(2):
        assert torch.allclose(grads.grads[i], alone[i], atol=1e-6)
    assert torch.allclose(grads.grads.sum(0), grads.flat(), atol=1e-6)  # together: the step's gradient
    grads.combine(torch.Generator())  # fixed weighting: the plain sum stays
    assert torch.allclose(grads.grads.sum(0), grads.flat(), atol=1e-6)
    assert grads.finish(2, {0: 1.0, 1: 1.0}, updated=False, scale=1.0) is None  # a skipped fp16 step
    balance = grads.finish(2, {0: 1.0, 1: 1.0}, updated=True, scale=1.0)
    cosine = torch.nn.functional.cosine_similarity(alone[0], alone[1], dim=0).item()
    assert balance.step == 2 and balance.tasks == ["lm", "mlm"] and balance.weights == [1.0, 1.0]
    assert balance.conflict[0, 1] == pytest.approx(cosine, abs=1e-5)
    grads.start(step=3, active=[0, 1])  # nothing due, nothing needed: no bookkeeping at all
    with grads.measure(0):
        loss(batches[0]).backward()
    assert grads.grads is None and grads.finish(3, {0: 1.0}, updated=True, scale=1.0) is None


def test_sampling_proportions_match_the_weights():
    tasks = [TaskConfig(name="a", weight=1.0), TaskConfig(name="b", weight=3.0), TaskConfig(name="c", weight=0.0)]
    gen = torch.Generator().manual_seed(0)
    draws = [TaskSampler(tasks, MultitaskConfig(sampling="proportional")).tasks_for_step(s, gen)[0]
             for s in range(4000)]
    counts = np.bincount(draws, minlength=3) / len(draws)
    assert counts == pytest.approx([0.25, 0.75, 0.0], abs=0.03)
    temp = TaskSampler(tasks[:2], MultitaskConfig(sampling="temperature", temperature=2.0))
    expected = np.sqrt([1.0, 3.0]) / np.sqrt([1.0, 3.0]).sum()
    assert temp.probs.numpy() == pytest.approx(expected)
    rr = TaskSampler(tasks, MultitaskConfig(sampling="round_robin"))
    assert [rr.tasks_for_step(s, gen) for s in range(4)] == [[0], [1], [2], [0]]
    assert TaskSampler(tasks, MultitaskConfig()).tasks_for_step(0, gen) == [0, 1, 2]


# -- the pretraining tasks ----------------------------------------------------------------------


def test_masked_lm_takes_loss_only_on_masked_positions_and_sees_the_future():
    ctx = context()
    task = build_task(TaskConfig(kind="masked_lm", mask_prob=0.15), ctx)
    gen = torch.Generator().manual_seed(0)
    batch = task.sample("train", 64, gen)
    x, y = batch["x"], batch["y"]
    chosen = y != -100
    assert 0.12 < chosen.float().mean() < 0.18
    assert (x[chosen] == SPECIALS["mask"]).float().mean() == pytest.approx(0.8, abs=0.06)
    assert (x[~chosen] != SPECIALS["mask"]).all()  # unchosen positions are untouched
    # the targets are the original tokens: a counting sequence, so y = x_prev + 1 (mod 33) where known
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=40, n_layer=1, n_head=2, n_embd=32, block_size=16)).eval()
    out = task.forward(model, batch)
    logits, _ = model(x, causal=False)
    manual = torch.nn.functional.cross_entropy(logits[chosen], y[chosen])
    assert torch.allclose(out.loss, manual, atol=1e-5)
    # bidirectional: changing the last token changes the prediction at the first position
    x2 = x.clone()
    x2[:, -1] = (x2[:, -1] + 1) % 40
    a, _ = model(x, causal=False)
    b, _ = model(x2, causal=False)
    assert not torch.allclose(a[:, 0], b[:, 0])


def test_continuity_batches_are_balanced_and_labelled_correctly():
    tokens = np.arange(7, 3007).astype(np.int64)  # every window is unique: followers can be checked
    ctx = context(tokens=(tokens % 60000), block_size=21)
    task = build_task(TaskConfig(kind="continuity"), ctx)
    gen = torch.Generator().manual_seed(0)
    S = task.seg
    for _ in range(5):
        batch = task.sample("train", 32, gen)
        x, label = batch["x"], batch["label"]
        assert label.sum() == 16
        assert (x[:, 0] == SPECIALS["bos"]).all() and (x[:, S + 1] == SPECIALS["delim"]).all()
        assert (x[:, -1] == SPECIALS["extract"]).all() and x.shape[1] <= 21
        a, b = x[:, 1:S + 1], x[:, S + 2:2 * S + 2]
        follows = (b[:, 0] == a[:, -1] + 1) & (b[:, 1:] - b[:, :-1] == 1).all(1)
        assert torch.equal(follows.long(), label)


# -- the whole loop ------------------------------------------------------------------------


def multitask_experiment(small_text, weighting="fixed", **training):
    exp = Experiment(name="mt").with_overrides([
        f'corpus.paths=["{small_text}"]', "tokenizer.kind=char", "model.n_layer=2", "model.n_head=2",
        "model.n_embd=32", "model.block_size=32", "training.batch_size=8", "training.learning_rate=3e-3",
        "training.min_lr=3e-4", "training.warmup_steps=5", "training.eval_batches=3", "training.threads=1",
        "training.attention_every=0",
        'tasks=[{kind="causal_lm"}, {kind="masked_lm", weight=0.5}, {kind="continuity", weight=0.5}]',
        f"multitask.weighting={weighting}", "multitask.conflict_every=5",
    ])
    return exp.with_overrides([f"training.{k}={v}" for k, v in training.items()])


@pytest.mark.parametrize("weighting", ["fixed", "uncertainty", "gradnorm", "pcgrad"])
def test_multitask_training_reports_every_task_and_the_balance(small_text, tmp_path, weighting):
    exp = multitask_experiment(small_text, weighting, max_steps=20, eval_every=10, checkpoint_every=100)
    rep = ListReporter()
    result = Trainer(exp, run_dir=tmp_path / weighting).run(reporter=rep)
    assert result.status == "completed", result.message
    steps = rep.of(StepMetrics)
    assert set(steps[-1].losses) == {"lm", "mlm", "continuity"}
    ev = rep.of(EvalResult)[-1]
    assert set(ev.losses) == {"lm", "mlm", "continuity"}
    assert {"mlm/accuracy", "continuity/accuracy", "lm/ppl"} <= set(ev.metrics)
    bal = rep.of(TaskBalance)
    assert [b.step for b in bal] == [5, 10, 15, 20]
    assert bal[-1].conflict.shape == (3, 3) and np.allclose(np.diag(bal[-1].conflict), 1.0, atol=1e-4)
    assert (tmp_path / weighting / "balance.jsonl").exists()
    if weighting == "gradnorm":
        assert sum(bal[-1].weights) == pytest.approx(3.0, abs=1e-4)
    if weighting == "uncertainty":
        assert bal[-1].weights != bal[0].weights


def test_multitask_resume_is_exact(small_text, tmp_path):
    from tests.engine.test_trainer import StopAt
    from workbench.engine.control import RunControl
    from workbench.engine.trainer import saved_experiment

    exp = multitask_experiment(small_text, "uncertainty", max_steps=12, eval_every=0, checkpoint_every=100)
    exp = exp.with_overrides(["multitask.sampling=proportional"])
    straight = ListReporter()
    Trainer(exp, run_dir=tmp_path / "a").run(reporter=straight)
    control = RunControl()
    first = StopAt(control, 5)
    Trainer(exp, run_dir=tmp_path / "b").run(control, first)
    second = ListReporter()
    Trainer(saved_experiment(tmp_path / "b"), resume=tmp_path / "b").run(reporter=second)
    a = [(s.loss, s.losses) for s in straight.of(StepMetrics)]
    b = [(s.loss, s.losses) for s in first.of(StepMetrics) + second.of(StepMetrics)]
    assert a == b


def test_resuming_from_an_earlier_step_keeps_one_balance_line_per_step(small_text, tmp_path):
    import json

    from workbench.engine.trainer import saved_experiment

    exp = multitask_experiment(small_text, "gradnorm", max_steps=8, eval_every=0, checkpoint_every=4)
    exp = exp.with_overrides(["multitask.conflict_every=1", "training.keep_checkpoints=5"])
    first = ListReporter()
    Trainer(exp, run_dir=tmp_path / "b").run(reporter=first)
    again = ListReporter()
    Trainer(saved_experiment(tmp_path / "b"), resume=tmp_path / "b", from_step=4).run(reporter=again)
    lines = [json.loads(x) for x in (tmp_path / "b" / "balance.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == list(range(1, 9))
    # GradNorm's weights are part of the exact resume
    assert [b.weights for b in first.of(TaskBalance)][4:] == [b.weights for b in again.of(TaskBalance)]
