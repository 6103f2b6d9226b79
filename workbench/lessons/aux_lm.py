"""The auxiliary LM loss (GPT-1: L = L_task + lambda * L_LM on the fine-tuning texts): lambda 0
against 0.5 with few labels, from the same pretrained model."""

from __future__ import annotations

from . import _transfer as T
from .base import Lesson, LessonResult, Outcome, RunContext, default_verdict

FULL = T.Sizes(pretrain_steps=240, finetune_steps=150, n_train=200, n_test=400)
SMALL = T.Sizes(pretrain_steps=120, finetune_steps=60, n_train=200, n_test=200, eval_every=20)
LAMBDA = {"lambda 0.5": 0.5, "lambda 0": 0.0}
CONTEXT = 1  # unlabelled-style clauses before each labelled frame: text the LM loss can learn from


def sizes(ctx: RunContext) -> T.Sizes:
    return SMALL if ctx.small else FULL


def prepare(ctx: RunContext):
    return T.pretrained(ctx, sizes(ctx).pretrain_steps)  # shared with the pretraining lesson (cached)


def run(ctx: RunContext) -> Outcome:
    s = sizes(ctx)
    train_tsv, test_tsv = T.labelled_files(ctx, s, context=CONTEXT)
    exp = T.finetune_experiment(ctx.seed, s, train_tsv, test_tsv, init=ctx.shared,
                                tokenizer=ctx.shared / "tokenizer.json", lm_weight=LAMBDA[ctx.condition])
    r = T.train(ctx, exp, ctx.workdir / "run")
    extra = {"train_seconds": round(r.seconds, 2)}
    lm = f"{T.TASK}/lm_loss"
    if lm in r.last_losses:  # lambda > 0: how far the LM loss on the labelled sentences fell
        extra |= {"lm_loss_first": round(r.first_losses[lm], 4), "lm_loss_last": round(r.last_losses[lm], 4)}
    return Outcome(r.accuracy, extra)


def conclude(r: LessonResult) -> str:
    """The figures' verdict, and what a small or negative effect means here."""
    words = default_verdict(r)
    a, b = (r.conditions[c] for c in r.lesson.effect)
    if not a.values or not b.values:
        return words
    if r.overlap or abs(r.effect) < 0.03:
        return (words + " With 200 labels the auxiliary loss makes no clear difference here; GPT-1 reported "
                "the same trend: it helped on its larger datasets, not on the smaller ones.")
    if r.effect < 0:
        return (words + " Here it hurts: an LM loss on a few short sentences can pull the model towards "
                "their few words.")
    return words


LESSON = Lesson(
    name="aux-lm",
    title="The auxiliary LM loss",
    claim=("GPT-1 fine-tunes with L = L_task + lambda * L_LM: the language-model loss on the labelled texts "
           "keeps training alongside the task. Does it help when labels are few? Lambda 0.5 against 0."),
    metric=f"accuracy on {FULL.n_test} test sentences whose nouns no label named (chance 0.5)",
    conditions=tuple(LAMBDA),
    effect=("lambda 0.5", "lambda 0"),
    run=run,
    prepare=prepare,
    prepare_label="pretraining",
    x_label="step",
    y_label="test accuracy",
    budget_s=300.0,
    small_seeds=1,
    how=("The pretrained GPT of the pretraining lesson is fine-tuned twice on the same 200 labelled sentences "
         "(their label is the kind of the last noun; each starts with one sentence of the unlabelled kind, "
         "\"the glup sleeps . i saw the snorb\", text the LM loss can learn from): once with the task loss alone "
         "(lambda 0), once adding half the language-model loss on the same sentences (lambda 0.5, GPT-1's "
         "setting). Both are tested on sentences about nouns no label named."),
    conclude=conclude,
)
