"""Pretraining helps: a GPT pretrained on unlabelled text against the same GPT from random weights,
both fine-tuned on the same 200 labelled sentences (the workbench's central claim)."""

from __future__ import annotations

from . import _transfer as T
from .base import Lesson, Outcome, RunContext

FULL = T.Sizes(pretrain_steps=240, finetune_steps=100, n_train=200, n_test=400)
SMALL = T.Sizes(pretrain_steps=120, finetune_steps=60, n_train=200, n_test=200, eval_every=20)


def sizes(ctx: RunContext) -> T.Sizes:
    return SMALL if ctx.small else FULL


def prepare(ctx: RunContext):
    return T.pretrained(ctx, sizes(ctx).pretrain_steps)


def run(ctx: RunContext) -> Outcome:
    s = sizes(ctx)
    train_tsv, test_tsv = T.labelled_files(ctx, s)
    init = ctx.shared if ctx.condition == "pretrained" else None  # scratch: same shape and tokenizer, random weights
    exp = T.finetune_experiment(ctx.seed, s, train_tsv, test_tsv, init=init, tokenizer=ctx.shared / "tokenizer.json")
    r = T.train(ctx, exp, ctx.workdir / "run")
    return Outcome(r.accuracy, {"train_seconds": round(r.seconds, 2)})


LESSON = Lesson(
    name="pretraining",
    title="Pretraining helps",
    claim=("A model that first read unlabelled text learns a task from 200 labelled sentences far better "
           "than the same model starting from random weights, because the text already taught it which "
           "words behave alike."),
    metric=f"accuracy on {FULL.n_test} test sentences whose nouns no label named (chance 0.5)",
    conditions=("pretrained", "scratch"),
    effect=("pretrained", "scratch"),
    run=run,
    prepare=prepare,
    prepare_label="pretraining",
    x_label="step",
    y_label="test accuracy",
    budget_s=120.0,
    small_seeds=1,
    how=("A made-up language has 80 invented nouns of two kinds, animals and machines, whose spelling says "
         "nothing about their kind. In the unlabelled text animals eat, sleep and run; machines beep, rust and "
         "spin; two nouns named together are of one kind. A small GPT first learns to predict the next word of "
         "that text (pretraining; no labels). From it alone the model can learn which nouns keep the same "
         "company, i.e. which nouns are of one kind, without being told what the kinds are. Then a classifier is "
         "fine-tuned on 200 labelled sentences such as \"i saw the blebop\" -> animal, which name only 16 of the "
         "nouns, and tested on sentences about the other 64; both models fine-tune the same way (the same "
         "labels, steps and settings, the task loss alone) and differ only in their starting weights. The pretrained model carries the 16 labels over "
         "to the nouns it knows behave like them. The model from scratch has read only the 200 labelled "
         "sentences, whose words (\"i saw the\") say nothing about a kind: for a noun it never saw labelled "
         "it has nothing to go on, and can only guess."),
)
