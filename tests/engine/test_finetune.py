import json
import math
import random

import pytest
import torch

from workbench.engine.config import Experiment, FinetuneConfig, StageConfig
from workbench.engine.errors import CorpusError
from workbench.engine.events import EvalResult, Finished, FreezeChanged, ListReporter, StepMetrics
from workbench.engine.freezing import FreezePlan, discriminative_scales, group_of, layer_groups
from workbench.engine.labelled import Columns, preview, read_labelled
from workbench.engine.model import GPT, GPTConfig
from workbench.engine.stepping import lr_at
from workbench.engine.trainer import Trainer

GOOD = "good great fine lovely superb".split()
BAD = "bad awful poor dull terrible".split()
FILL = "the film was and a plot with acting music story".split()


def review(rng, positive):
    words = [rng.choice(FILL) for _ in range(rng.randint(3, 7))]
    words.insert(rng.randrange(len(words)), rng.choice(GOOD if positive else BAD))
    return " ".join(words)


@pytest.fixture
def reviews(tmp_path):
    """A sentiment task the project makes itself: the label is carried by one word."""
    rng = random.Random(0)
    for name, n in (("train", 400), ("dev", 80)):
        rows = ["sentence\tlabel"] + [f"{review(rng, y)}\t{y}" for y in (rng.randint(0, 1) for _ in range(n))]
        (tmp_path / f"{name}.tsv").write_text("\n".join(rows) + "\n")
    return tmp_path


@pytest.fixture
def pretrained(small_text, tmp_path_factory):
    """A small char-level GPT pretrained for a few steps on text containing the task's words."""
    out = tmp_path_factory.mktemp("pre") / "run"
    rng = random.Random(1)
    text = small_text.parent / "reviews.txt"
    text.write_text("\n".join(review(rng, rng.randint(0, 1)) for _ in range(1500)) + "\n")
    exp = base(tokenizer_kind="char").with_overrides([f'corpus.paths=["{text}"]', "training.max_steps=30"])
    assert Trainer(exp, run_dir=out).run().status == "completed"
    return out


def base(tokenizer_kind="char"):
    return Experiment(name="ft").with_overrides([
        f"tokenizer.kind={tokenizer_kind}", "model.n_layer=2", "model.n_head=2", "model.n_embd=32",
        "model.block_size=64", "training.batch_size=16", "training.learning_rate=3e-3", "training.min_lr=3e-4",
        "training.warmup_steps=5", "training.eval_batches=3", "training.threads=1", "training.attention_every=0",
        "training.checkpoint_every=0",
    ])


def finetune_experiment(reviews, pretrained, *extra):
    return base().with_overrides([
        f'finetune.init="{pretrained}"',
        f'tasks=[{{kind="classification", name="sent", train="{reviews / "train.tsv"}", '
        f'val="{reviews / "dev.tsv"}", text="sentence", label="label"}}]',
        *extra,
    ])


# -- labelled data -------------------------------------------------------------------------


@pytest.mark.parametrize("content, cols, words", [
    ("sentence\tlabel\nfine\t1\n", Columns(text="text", label="label"), ["line 2", "'text'", "sentence"]),
    ("sentence\tlabel\nfine\t1\n\t0\n", Columns(text="sentence", label="label"), ["line 3", "empty text"]),
    ("sentence\tlabel\nfine\t1\nok\t1\textra\n", Columns(text="sentence", label="label"), ["line 3", "3 fields"]),
    ("sentence\tlabel\nfine\t\n", Columns(text="sentence", label="label"), ["line 2", "missing label"]),
    ("sentence\tlabel\nfine\tmaybe\n", Columns(text="sentence", label="label"), ["line 2", "unknown label 'maybe'"]),
])
def test_bad_labelled_rows_name_the_file_line_and_column(tmp_path, content, cols, words):
    path = tmp_path / "data.tsv"
    path.write_text(content)
    with pytest.raises(CorpusError) as err:
        read_labelled(path, cols, labels=["0", "1"])
    assert str(path) in str(err.value)
    for w in words:
        assert w in str(err.value)


def test_jsonl_multiple_choice_with_nested_fields(tmp_path):
    path = tmp_path / "mc.jsonl"
    rows = [{"question": {"stem": "2+2?", "choices": [{"label": "A", "text": "3"}, {"label": "B", "text": "4"}]},
             "answerKey": "B"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken\n")
    cols = Columns(text="question.stem", choices=("question.choices",), answer="answerKey")
    with pytest.raises(CorpusError, match="line 2"):
        read_labelled(path, cols)
    path.write_text(json.dumps(rows[0]) + "\n")
    ex = read_labelled(path, cols).examples[0]
    assert ex.choices == ("3", "4") and ex.answer == 1


def test_preview_names_the_columns_a_task_can_use(tmp_path):
    nested = tmp_path / "arc.jsonl"
    nested.write_text(json.dumps({"id": "q1", "question": {"stem": "Why?", "choices": [{"label": "A", "text": "x"}]},
                                  "answerKey": "A"}) + "\n" + json.dumps({"id": "q2", "extra": 1}) + "\n")
    columns, rows = preview(nested)
    assert columns == ["id", "question.stem", "question.choices", "answerKey", "extra"]
    assert rows[0]["question.stem"] == "Why?" and isinstance(rows[0]["question.choices"], list)
    # GLUE-style TSV with a stray double quote: csv quoting fails on it, literal reading works
    glue = tmp_path / "stsb.tsv"
    glue.write_text('sentence1\tsentence2\tscore\n"Quoted start\tplain\t1.5\nb\tc\t2\n')
    columns, rows = preview(glue, n=5)
    assert columns == ["sentence1", "sentence2", "score"] and rows[0]["sentence1"] == '"Quoted start'
    assert len(rows) == 2
    header_only = tmp_path / "empty.csv"
    header_only.write_text("text,label\n")
    assert preview(header_only) == (["text", "label"], [])
    with pytest.raises(CorpusError, match="no such file"):
        preview(tmp_path / "missing.csv")


# -- input transformations -------------------------------------------------------------------


def test_gpt1_input_transformations(reviews, pretrained):
    from workbench.engine.loading import load_trained
    from workbench.engine.tasks import TaskContext, build_task

    tok = load_trained(pretrained).tokenizer
    bos, delim, ext = (tok.special_id(r) for r in ("bos", "delim", "extract"))
    ctx = TaskContext(tok, None, 32, 64)
    (reviews / "pairs.tsv").write_text("a\tb\tlabel\tscore\n" + "ab\tcd\t1\t2.5\nab\tcd\t0\t1.0\n" * 4)
    (reviews / "mc.jsonl").write_text(json.dumps({"q": "ab", "c": ["x", "yz"], "a": 1}) + "\n")
    a, b, c, d = (tok.encode(ch) for ch in "abcd")
    ent = build_task(base().with_overrides([f'tasks=[{{kind="entailment", train="{reviews / "pairs.tsv"}", '
                                            'text="a", text_pair="b", label="label"}]']).tasks[0], ctx)
    assert ent.sequences(ent.examples["train"][0]) == [[bos, *a, *b, delim, *c, *d, ext]]
    sim = build_task(base().with_overrides([f'tasks=[{{kind="similarity", train="{reviews / "pairs.tsv"}", '
                                            'text="a", text_pair="b", score="score"}]']).tasks[0], ctx)
    assert sim.regression and sim.sequences(sim.examples["train"][0]) == [
        [bos, *a, *b, delim, *c, *d, ext], [bos, *c, *d, delim, *a, *b, ext]]
    mc = build_task(base().with_overrides([f'tasks=[{{kind="multiple_choice", train="{reviews / "mc.jsonl"}", '
                                           'val="' + str(reviews / "mc.jsonl") + '", text="q", choices=["c"], '
                                           'answer="a"}]']).tasks[0], ctx)
    space = tok.encode(" ")
    assert mc.sequences(mc.examples["val"][0]) == [[bos, *a, *b, delim, *space, *tok.encode("x"), ext],
                                                   [bos, *a, *b, delim, *space, *tok.encode("yz"), ext]]
    # similarity is symmetric by construction: swapping A and B cannot change the prediction
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_embd=32, block_size=64)).eval()
    model.heads["similarity"] = sim.build_head()
    enc = sim.examples["train"][0]
    from workbench.engine.tasks.labelled import Encoded

    swapped = Encoded([enc.parts[1], enc.parts[0]], enc.target)
    p1, _ = sim.predict(model, sim.collate([enc]))
    p2, _ = sim.predict(model, sim.collate([swapped]))
    assert torch.allclose(p1, p2, atol=1e-5)


# -- freezing ----------------------------------------------------------------------------------


def test_freeze_plans_and_discriminative_rates():
    L = 4
    plan = lambda **kw: FreezePlan(FinetuneConfig(**kw), L)  # noqa: E731
    assert plan(freeze="head_only").trainable(0) == {"heads"}
    assert plan(freeze="bottom_n", freeze_n=2).trainable(0) == {"block.2", "block.3", "ln_f", "heads", "other"}
    g = plan(freeze="gradual", unfreeze_every=10)
    assert g.trainable(0) == {"heads", "ln_f", "other"}
    assert g.trainable(10) == {"heads", "ln_f", "other", "block.3"}
    assert g.trainable(25) == {"heads", "ln_f", "other", "block.3", "block.2"}
    assert "embeddings" in g.trainable(50) and "block.0" in g.trainable(40)
    st = plan(freeze="stages", stages=(StageConfig(steps=5, trainable=("heads",), learning_rate=1e-2),
                                       StageConfig(steps=5, trainable=("top:1", "heads"))))
    assert st.trainable(4) == {"heads"} and st.trainable(5) == {"block.3", "heads"} == st.trainable(99)
    assert st.lr_multiplier(0, 1e-3) == pytest.approx(10.0) and st.lr_multiplier(6, 1e-3) == 1.0
    model = GPT(GPTConfig(vocab_size=20, n_layer=L, n_head=2, n_embd=16, block_size=8))
    scales = discriminative_scales(model, FinetuneConfig(discriminative=True, lr_factor=0.5), L)
    assert scales["transformer.h.3.attn.c_attn.weight"] == 1.0
    assert scales["transformer.h.0.mlp.c_fc.weight"] == 0.5 ** 3
    assert scales["transformer.wte.weight"] == 0.5 ** 4 and scales["transformer.ln_f.weight"] == 1.0


def snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("extra, frozen_groups", [
    (["finetune.freeze=head_only"], {"embeddings", "block.0", "block.1", "ln_f"}),
    (["finetune.freeze=bottom_n", "finetune.freeze_n=1"], {"embeddings", "block.0"}),
])
def test_frozen_parameters_stay_bitwise_equal(reviews, pretrained, tmp_path, extra, frozen_groups):
    exp = finetune_experiment(reviews, pretrained, "training.max_steps=15", "training.eval_every=0", *extra)
    trainer = Trainer(exp, run_dir=tmp_path / "f")
    before = {}

    class Grab(ListReporter):
        def report(self, e):
            super().report(e)
            if type(e).__name__ == "RunStarted":
                before.update(snapshot(trainer.state.model))

    assert trainer.run(reporter=Grab()).status == "completed"
    after = snapshot(trainer.state.model)
    for name, p in after.items():
        if group_of(name) in frozen_groups:
            assert torch.equal(p, before[name]), name
        else:
            assert not torch.equal(p, before[name]), name


def test_gradual_unfreezing_thaws_blocks_from_the_top(reviews, pretrained, tmp_path):
    exp = finetune_experiment(reviews, pretrained, "training.max_steps=12", "training.eval_every=0",
                              "finetune.freeze=gradual", "finetune.unfreeze_every=4", "finetune.discriminative=true")
    trainer = Trainer(exp, run_dir=tmp_path / "g")
    rep, seen = ListReporter(), {}

    class Watch(ListReporter):
        def report(self, e):
            rep.report(e)
            if isinstance(e, StepMetrics) and e.step in (4, 8):
                seen[e.step] = snapshot(trainer.state.model)

    trainer.run(reporter=Watch())
    changes = rep.of(FreezeChanged)
    assert [c.step for c in changes] == [4, 8]
    assert "block.1" in changes[0].trainable and "block.0" not in changes[0].trainable
    assert "block.0" in changes[1].trainable
    # block 0 was frozen through step 8, block 1 thawed at 4
    final = snapshot(trainer.state.model)
    w0, w1 = "transformer.h.0.attn.c_attn.weight", "transformer.h.1.attn.c_attn.weight"
    assert torch.equal(seen[4][w0], seen[8][w0]) and not torch.equal(seen[8][w0], final[w0])
    assert not torch.equal(seen[4][w1], seen[8][w1])
    lrs = {g["lr_scale"] for g in trainer.state.optimizer.param_groups}
    assert 1.0 in lrs and any(s < 1.0 for s in lrs)  # discriminative rates


def test_the_freezing_plan_loads_no_torch():
    """The Fine-tune page draws the plan with the engine's own code; working it out needs no torch."""
    import subprocess
    import sys

    code = ("import sys; from workbench.engine.config import FinetuneConfig; "
            "from workbench.engine.freezing import FreezePlan; "
            "plan = FreezePlan(FinetuneConfig(freeze='gradual', discriminative=True), 4); "
            "assert plan.group_segments(1000, 1e-3)['embeddings'][-1].trainable; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


def test_plan_segments_over_a_run():
    L = 2
    stages = FreezePlan(FinetuneConfig(freeze="stages", discriminative=True, lr_factor=0.5, stages=(
        StageConfig(steps=10, trainable=("heads",), learning_rate=2e-3),
        StageConfig(steps=10, trainable=("heads", "ln_f", "top:1")),
        StageConfig(steps=5, trainable=("all",), learning_rate=1e-4))), L)
    segs = stages.segments(40, base_lr=1e-3)
    assert [(s.start, s.end, s.stage) for s in segs] == [(0, 10, 0), (10, 20, 1), (20, 40, 2)]
    assert segs[0].trainable == {"heads"} and segs[1].trainable == {"heads", "ln_f", "block.1"}
    assert segs[0].lr == pytest.approx({"embeddings": 2 * 0.25, "block.0": 2 * 0.5, "block.1": 2.0, "ln_f": 2.0,
                                        "heads": 2.0})
    assert segs[2].lr["block.0"] == pytest.approx(0.1 * 0.5)
    assert [(s.index, s.start, s.end) for s in stages.stage_spans(40)] == [(0, 0, 10), (1, 10, 20), (2, 20, 40)]
    assert [(s.start, s.end) for s in stages.stage_spans(15)] == [(0, 10), (10, 15)]  # stage 3 starts after
    lanes = stages.group_segments(40, base_lr=1e-3)
    assert list(lanes) == layer_groups(L) == ["embeddings", "block.0", "block.1", "ln_f", "heads"]
    # heads train throughout; a new piece where the stage's rate changes
    assert [(p.start, p.end, p.trainable) for p in lanes["heads"]] == [(0, 10, True), (10, 20, True), (20, 40, True)]
    gradual = FreezePlan(FinetuneConfig(freeze="gradual", unfreeze_every=30), 3)
    pieces = gradual.group_segments(200, base_lr=1e-3)
    assert [(p.start, p.end, p.trainable) for p in pieces["block.0"]] == [(0, 90, False), (90, 200, True)]
    assert [(p.start, p.trainable) for p in pieces["embeddings"]] == [(0, False), (120, True)]
    assert [(p.start, p.end) for p in gradual.group_segments(100, 1e-3)["heads"]] == [(0, 100)]
    assert gradual.stage_spans(200) == []
    assert "every 30 steps one more block thaws" in gradual.describe_plan(200)
    assert "after the run ends" in gradual.describe_plan(100)


@pytest.mark.parametrize("extra", [
    ["finetune.freeze=gradual", "finetune.unfreeze_every=3", "finetune.discriminative=true",
     "finetune.lr_factor=0.5"],
    ["finetune.freeze=stages", "finetune.discriminative=true", "finetune.lr_factor=0.5",
     'finetune.stages=[{steps=3, trainable=["heads"], learning_rate=1e-2}, '
     '{steps=4, trainable=["heads", "ln_f", "top:1"]}, {steps=2, trainable=["ln_f"], learning_rate=1e-3}, '
     '{steps=2, trainable=["all"], learning_rate=1e-4}]'],
], ids=["gradual", "stages"])
def test_plan_segments_are_what_the_trainer_freezes_step_by_step(reviews, pretrained, tmp_path, extra):
    """The segments the Fine-tune page draws equal, at every step of a real run, which parameters
    have requires_grad and the learning rate each trainable parameter is updated with."""
    exp = finetune_experiment(reviews, pretrained, "training.max_steps=13", "training.eval_every=0", *extra)
    tc = exp.training
    plan = FreezePlan(exp.finetune, exp.model.n_layer)
    segments = plan.segments(tc.max_steps, tc.learning_rate)
    pieces = plan.group_segments(tc.max_steps, tc.learning_rate)
    assert len(segments) >= 4  # the plan changes during the run
    trainer = Trainer(exp, run_dir=tmp_path / "run")
    checked, wrong = [], []  # (an assert inside a reporter would only fail the run: collect instead)

    def at(segs, step):
        return next(s for s in segs if s.start <= step < s.end)

    class Watch(ListReporter):
        def report(self, e):
            super().report(e)
            if not isinstance(e, StepMetrics):
                return
            i = e.step - 1  # the optimizer step just taken (0-based), as the plan counts
            seg = at(segments, i)
            rate = {id(p): g["lr"] for g in trainer.state.optimizer.param_groups for p in g["params"]}
            trains = {}
            for name, p in trainer.state.model.named_parameters():
                group = group_of(name)
                trains.setdefault(group, set()).add(p.requires_grad)
                if p.requires_grad != (group in seg.trainable):
                    wrong.append((i, name, "trains" if p.requires_grad else "frozen"))
                elif p.requires_grad and not math.isclose(rate[id(p)], lr_at(i, tc) * seg.lr[group]):
                    wrong.append((i, name, rate[id(p)], lr_at(i, tc) * seg.lr[group]))
            for group, states in trains.items():
                piece = at(pieces[group], i)
                if states != {piece.trainable} or not math.isclose(piece.lr, seg.lr[group]):
                    wrong.append((i, group, piece))
            checked.append(i)

    rep = Watch()
    result = trainer.run(reporter=rep)
    assert result.status == "completed", result.message
    assert wrong == [] and checked == list(range(tc.max_steps))
    # the trainer announced a change exactly where the segments change what trains
    starts = [s.start for prev, s in zip(segments, segments[1:]) if s.trainable != prev.trainable]
    assert [c.step for c in rep.of(FreezeChanged)] == starts


# -- the whole fine-tuning run -----------------------------------------------------------------


def test_finetuning_learns_the_task_with_an_auxiliary_lm_loss_and_stops_early(reviews, pretrained, tmp_path):
    exp = finetune_experiment(reviews, pretrained, "training.max_steps=300", "training.eval_every=20",
                              "training.early_stopping_metric=sent/accuracy", "training.early_stopping_patience=3",
                              "training.checkpoint_every=0")
    rep = ListReporter()
    trainer = Trainer(exp, run_dir=tmp_path / "e")
    result = trainer.run(reporter=rep)
    result.trainer = trainer
    evals = rep.of(EvalResult)
    accs = [e.metrics["sent/accuracy"] for e in evals]
    assert accs[0] <= 0.6 and max(accs) >= 0.8, accs  # chance is 0.5
    assert "sent/f1" in evals[-1].metrics
    assert {"sent", "sent/lm_loss", "sent/task_loss"} <= set(rep.of(StepMetrics)[-1].losses)
    # it plateaus: three evaluations without a better accuracy end the run early
    assert result.status == "early_stopped" and rep.of(Finished)[-1].reason == "early_stopped"
    assert result.step < 300
    best = json.loads((tmp_path / "e" / "best.json").read_text())
    assert best["value"] == max(accs)
    from workbench.engine import checkpoint as ckpt

    run = ckpt.RunDir.open(tmp_path / "e")
    assert best["step"] in run.checkpoint_steps()
    # the run ends on the best weights, not the last ones
    tensors, _ = ckpt.load_checkpoint(run.checkpoint_path(best["step"]))
    for name, p in trainer_model(result, tmp_path / "e").items():
        assert torch.equal(p, tensors[f"model.{name}"]), name
    # a confusion matrix per evaluation: rows true, columns predicted, all validation examples counted
    conf = evals[-1].confusion["sent"]
    assert conf.shape == (2, 2) and conf.sum() == 80 and evals[-1].labels["sent"] == ["0", "1"]
    assert (conf[0, 0] + conf[1, 1]) / 80 == pytest.approx(accs[-1])
    norms = [s.group_grad_norms for s in rep.of(StepMetrics) if s.group_grad_norms]
    assert norms and {"embeddings", "block.0", "block.1", "heads"} <= set(norms[0])


def test_augmentation_changes_training_batches_only(reviews, pretrained):
    from workbench.engine.loading import load_trained
    from workbench.engine.tasks import TaskContext, build_task

    tok = load_trained(pretrained).tokenizer
    cfg = finetune_experiment(reviews, pretrained, "tasks=[]" if False else "model.dropout=0.0").tasks[0]
    import dataclasses

    plain = build_task(cfg, TaskContext(tok, None, 32, 64))
    aug = build_task(dataclasses.replace(cfg, aug_delete=0.2, aug_swap=0.2, aug_mask=0.2), TaskContext(tok, None, 32, 64))
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    assert not torch.equal(plain.sample("train", 8, g1)["x"], aug.sample("train", 8, g2)["x"])
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    assert torch.equal(plain.sample("val", 8, g1)["x"], aug.sample("val", 8, g2)["x"])


def trainer_model(result, _path):
    return {n: t for n, t in result.trainer.state.model.state_dict().items() if n != "lm_head.weight"}


def test_multiple_choice_handles_two_to_five_answers(tmp_path, pretrained):
    from workbench.engine.loading import load_trained
    from workbench.engine.tasks import TaskContext, build_task

    rows = [{"q": "pick", "c": [f"o{j}" for j in range(n)], "a": n - 1} for n in (2, 3, 4, 5)]
    path = tmp_path / "mc.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    tok = load_trained(pretrained).tokenizer
    cfg = base().with_overrides([f'tasks=[{{kind="multiple_choice", train="{path}", val="{path}", text="q", '
                                 'choices=["c"], answer="a"}]']).tasks[0]
    task = build_task(cfg, TaskContext(tok, None, 32, 64))
    batch = task.collate(task.examples["val"])
    assert batch["choices"].tolist() == [[j < n for j in range(5)] for n in (2, 3, 4, 5)]
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_embd=32, block_size=64))
    model.heads[task.name] = task.build_head()
    scores, _ = task.predict(model, batch)
    assert scores.shape == (4, 5)
    assert torch.isinf(scores[0, 2:]).all() and torch.isfinite(scores[3]).all()  # missing answers never win
    probs = scores.softmax(-1)
    assert torch.allclose(probs.sum(-1), torch.ones(4)) and (probs[0, 2:] == 0).all()
    out = task.forward(model, batch)
    assert torch.isfinite(out.loss)
    # validation in batches of 2 (widths 3 and 5): the narrow batch is padded, the metric matches one batch
    _, by_two = task.evaluate(model, 2, torch.device("cpu"))
    _, at_once = task.evaluate(model, 4, torch.device("cpu"))
    assert by_two["accuracy"] == at_once["accuracy"]
