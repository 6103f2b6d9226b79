"""Freezing: how much of a pretrained model to fine-tune. Head only, gradual unfreezing and full
fine-tuning from the same pretrained model, accuracy against training seconds."""

from __future__ import annotations

from . import _transfer as T
from .base import Lesson, LessonResult, Outcome, RunContext

FULL = T.Sizes(pretrain_steps=240, finetune_steps=150, n_train=200, n_test=400)
SMALL = T.Sizes(pretrain_steps=120, finetune_steps=60, n_train=200, n_test=200, eval_every=20)
FREEZE = {"head only": "head_only", "gradual": "gradual", "full": "none"}


def sizes(ctx: RunContext) -> T.Sizes:
    return SMALL if ctx.small else FULL


def prepare(ctx: RunContext):
    return T.pretrained(ctx, sizes(ctx).pretrain_steps)  # shared with the pretraining lesson (cached)


def run(ctx: RunContext) -> Outcome:
    s = sizes(ctx)
    train_tsv, test_tsv = T.labelled_files(ctx, s)
    # gradual: the head (and final LayerNorm) first, then one block from the top every quarter of the
    # run, the embeddings last (2 blocks: both train from the third quarter on, the embeddings in the fourth)
    exp = T.finetune_experiment(ctx.seed, s, train_tsv, test_tsv, init=ctx.shared, tokenizer=ctx.shared / "tokenizer.json",
                                freeze=FREEZE[ctx.condition], unfreeze_every=max(1, s.finetune_steps // 4))
    r = T.train(ctx, exp, ctx.workdir / "run", x="seconds")
    return Outcome(r.accuracy, {"seconds": round(r.seconds, 2), "steps": s.finetune_steps})


def conclude(r: LessonResult) -> str:
    """Which wins, and at what cost: the accuracies and the training seconds side by side."""
    done = [c for c in r.conditions.values() if c.values]
    if len(done) < 2:
        return "Stopped before two ways had a result: nothing to compare yet."
    secs = {c.name: sum(e["seconds"] for e in c.extras) / len(c.extras) for c in done}
    best = max(done, key=lambda c: c.mean)
    cheap = min(done, key=lambda c: secs[c.name])
    parts = "; ".join(f"{c.name} {c.mean:.3f} ± {c.std:.3f} in {secs[c.name]:.1f} s" for c in done)
    tie = [c.name for c in done if c is not best and best.mean - c.mean <= max(best.std, c.std, 0.01)]
    words = (f"{best.name} is the most accurate" + (f", level with {' and '.join(tie)} within the seeds' spread"
                                                    if tie else ""))
    if cheap is best:
        cost = "it is also the cheapest"
    else:
        cost = (f"{cheap.name} trains fastest ({secs[cheap.name] / secs[best.name]:.0%} of {best.name}'s time: "
                f"frozen layers need no gradients) and gives up {best.mean - cheap.mean:.3f} of accuracy")
    return f"Over {min(len(c.values) for c in done)} seed(s): {parts}. {words}; {cost}."


LESSON = Lesson(
    name="freezing",
    title="Freezing trades speed for accuracy",
    claim=("Training only the new head on top of a frozen pretrained model is cheapest, but the frozen layers "
           "were never taught the task; unfreezing them (all at once, or gradually from the top) costs more "
           "time a step and buys accuracy."),
    metric=f"accuracy on {FULL.n_test} test sentences whose nouns no label named (chance 0.5)",
    conditions=tuple(FREEZE),
    effect=("full", "head only"),
    run=run,
    prepare=prepare,
    prepare_label="pretraining",
    x_label="seconds of training",
    y_label="test accuracy",
    budget_s=300.0,
    small_seeds=1,
    how=("One GPT pretrained on the made-up language of the pretraining lesson is fine-tuned three ways on "
         "the same 200 labelled sentences, for the same number of steps: head only (a linear classifier on "
         "the frozen model's features: the cheapest step, no gradients through the model), gradual (the head "
         "first, then one more block from the top every quarter of the run, as ULMFiT does) and full (every "
         "weight trains from the first step). The curves draw test accuracy against seconds of training, so "
         "the cost shows on the x axis."),
    conclude=conclude,
)
