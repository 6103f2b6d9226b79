"""Lesson "tasks": two objectives on one trunk can help each other or fight, and a balancing method
can end the fight.

Every text is 12 letters from "abcdefgh". Task A, the one we care about, has few labels (16): does
the text hold more a's than b's? Each other condition adds a second task B with a head of its own on
the same trunk, trained in the same steps (the engine's multi-task training, ``sampling = "all"``):

    A alone                  the baseline
    A + helper               B predicts count(a) - count(b) from 2,000 texts: the feature A needs,
                             with many more labels; its gradient points the same way (cosine > 0)
    A + loud task            B predicts how many g's the text holds, in tenths (a unit ten times
                             smaller, as millimetres instead of centimetres): a squared error about
                             100 times A's loss, whose gradient swamps A's in the clipped update
    A + loud task, GradNorm  the same, with GradNorm (Chen et al. 2018) learning the loss weights so
                             that both tasks' gradients have their share

The metric is A's accuracy on 400 held-out texts; the headline is GradNorm against the plain sum.
The conflict matrix (the cosine between the tasks' gradients on the trunk, engine/multitask.py) is
measured every few steps, drawn as a second curve and kept in each run's extra with the final weights.
"""

from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass
from pathlib import Path

from ..engine.config import Experiment, MultitaskConfig, TaskConfig
from ..engine.events import EvalResult, TaskBalance
from .base import Lesson, LessonResult, Outcome, RunContext
from .engine_run import train

LETTERS = "abcdefgh"
TEXT_LEN = 12
LOUD_UNIT = 10.0  # task B's target is count(g) * LOUD_UNIT: its loss is ~LOUD_UNIT^2 times too large

ALONE, HELPER, LOUD, BALANCED = "A alone", "A + helper", "A + loud task", "A + loud task, GradNorm"
COSINE = "cosine A-B"  # the second curve of a two-task run


@dataclass(frozen=True)
class Size:
    steps: int
    eval_every: int
    a_train: int = 16       # few labels: A alone overfits, a helper has something to add
    a_val: int = 400
    b_train: int = 2000


SIZES = {"full": Size(steps=200, eval_every=20), "small": Size(steps=60, eval_every=20, a_val=200, b_train=600)}


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(LETTERS) for _ in range(TEXT_LEN))


def _write(path: Path, column: str, rows: list[tuple[str, object]]) -> str:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", column])
        w.writerows(rows)
    return str(path)


def majority_rows(rng: random.Random, n: int) -> list[tuple[str, str]]:
    """Task A: label "a" when the text holds more a's than b's, "b" when fewer (ties are left out)."""
    rows = []
    while len(rows) < n:
        t = _text(rng)
        a, b = t.count("a"), t.count("b")
        if a != b:
            rows.append((t, "a" if a > b else "b"))
    return rows


def prepare(ctx: RunContext) -> dict[str, str]:
    """The seed's data, shared by its four conditions: A's few labels, the helper's and the loud task's."""
    size = SIZES[ctx.size]
    rng = random.Random(f"lesson-tasks:{ctx.seed}")
    d = ctx.workdir
    texts = [_text(rng) for _ in range(size.b_train + 300)]
    files = {
        "a_train": _write(d / "a_train.csv", "label", majority_rows(rng, size.a_train)),
        "a_val": _write(d / "a_val.csv", "label", majority_rows(rng, size.a_val)),
        "helper_train": _write(d / "helper_train.csv", "score", [(t, t.count("a") - t.count("b")) for t in texts[:-300]]),
        "helper_val": _write(d / "helper_val.csv", "score", [(t, t.count("a") - t.count("b")) for t in texts[-300:]]),
        "loud_train": _write(d / "loud_train.csv", "score", [(t, t.count("g") * LOUD_UNIT) for t in texts[:-300]]),
        "loud_val": _write(d / "loud_val.csv", "score", [(t, t.count("g") * LOUD_UNIT) for t in texts[-300:]]),
    }
    # The tokenizer is trained on the corpus even when every task is labelled: the letters are all it needs.
    (d / "letters.txt").write_text(LETTERS + "\n", encoding="utf-8")
    files["corpus"] = str(d / "letters.txt")
    return files


def experiment(files: dict[str, str], condition: str, seed: int, size: Size) -> Experiment:
    a = TaskConfig(kind="classification", name="A", train=files["a_train"], val=files["a_val"], label="label",
                   lm_weight=0.0)
    tasks = [a]
    if condition != ALONE:
        which = "helper" if condition == HELPER else "loud"
        tasks.append(TaskConfig(kind="regression", name="B", train=files[f"{which}_train"],
                                val=files[f"{which}_val"], score="score", lm_weight=0.0))
    return Experiment(name=f"lesson-tasks-{seed}").with_overrides([
        f'corpus.paths=["{files["corpus"]}"]', "corpus.val_fraction=0", "tokenizer.kind=char",
        "model.n_layer=2", "model.n_head=2", "model.n_embd=32", "model.block_size=16",
        "training.batch_size=32", "training.learning_rate=3e-3", "training.min_lr=3e-4", "training.warmup_steps=20",
        f"training.max_steps={size.steps}", f"training.eval_every={size.eval_every}", "training.checkpoint_every=0",
        "training.attention_every=0", f"training.seed={seed}",
        # The divergence rule watches the weighted total loss; GradNorm swings the loud task's weight
        # between ~0.001 and ~1 from step to step, so that total jumps 1000-fold without anything
        # diverging (a NaN or infinite loss or gradient still stops the run).
        "training.divergence_factor=0",
        # tiny model: one thread steps fastest, and compiling would cost more than the whole run
        "training.threads=1", "training.compile=off",
    ]).replace(tasks=tuple(tasks), multitask=MultitaskConfig(
        weighting="gradnorm" if condition == BALANCED else "fixed", conflict_every=5))


def run(ctx: RunContext) -> Outcome:
    size = SIZES[ctx.size]
    evals: list[EvalResult] = []
    cosines: list[tuple[int, float]] = []
    weights: list[list[float]] = []  # the tasks' loss weights at each report (GradNorm moves them)

    def listen(event, state) -> None:
        if isinstance(event, EvalResult):
            evals.append(event)
            ctx.point(event.step, event.metrics["A/accuracy"])
        elif isinstance(event, TaskBalance):
            cos = float(event.conflict[0, 1])
            if math.isfinite(cos):
                cosines.append((event.step, round(cos, 4)))
                weights.append(list(event.weights))
                ctx.point(event.step, cos, COSINE)

    train(ctx, experiment(ctx.shared, ctx.condition, ctx.seed, size), ctx.workdir / "run", listen)
    last = evals[-1]
    extra = {"A_accuracy_curve": [(e.step, round(e.metrics["A/accuracy"], 4)) for e in evals]}
    if cosines:
        extra |= {"cosine_mean": round(sum(c for _, c in cosines) / len(cosines), 4), "cosines": cosines,
                  # GradNorm's weights swing from step to step when one loss is far larger: the mean says more
                  "B_weight_mean": round(sum(w[1] for w in weights) / len(weights), 4),
                  "weights": [[round(x, 4) for x in w] for w in weights], "B_val_loss": round(last.losses["B"], 4)}
    return Outcome(last.metrics["A/accuracy"], extra)


def conclude(r: LessonResult) -> str:
    """The figures in words: what the helper and the loud task did to A, the tasks' gradient cosine in
    each condition, and whether GradNorm's rescue is clear over the seeds."""
    c = r.conditions
    if not (c[LOUD].values and c[BALANCED].values):
        return "Stopped before the loud task ran with and without GradNorm: nothing to compare yet."

    def mean_of(name: str, key: str) -> float:
        got = [e[key] for e in c[name].extras if key in e]
        return sum(got) / len(got) if got else math.nan

    parts = []
    if c[ALONE].values:
        parts.append(f"A alone reached {c[ALONE].mean:.3f}")
    if c[HELPER].values:
        gain = c[HELPER].mean - c[ALONE].mean if c[ALONE].values else math.nan
        word = "ran" if math.isnan(gain) else "helped" if gain > 0.02 else "hurt" if gain < -0.02 else "changed little"
        parts.append(f"the helper {word} ({c[HELPER].mean:.3f}; gradient cosine {mean_of(HELPER, 'cosine_mean'):+.2f})")
    parts.append(f"the loud task summed in left A at {c[LOUD].mean:.3f} (chance 0.5; cosine "
                 f"{mean_of(LOUD, 'cosine_mean'):+.2f}: A's gradient is lost beside the loud one)")
    parts.append(f"with GradNorm A reached {c[BALANCED].mean:.3f} (the loud task's weight averaged "
                 f"{mean_of(BALANCED, 'B_weight_mean'):.2f} of 2; cosine {mean_of(BALANCED, 'cosine_mean'):+.2f})")
    spread = ("every seed agrees" if not r.overlap else
              "the seeds' ranges overlap, so the difference is not clear at this size")
    better = "gains" if r.effect > 0 else "does not gain"
    return f"{'; '.join(parts)}. GradNorm {better} {abs(r.effect):.3f} accuracy over the plain sum ({spread})."


LESSON = Lesson(
    name="tasks",
    title="Tasks can help or fight",
    claim=("Two tasks on one trunk share its weights. A task that needs the same features helps (its gradient "
           "points the same way); a task whose loss is on a much larger scale drowns the other, and a balancing "
           "method (GradNorm) that learns the loss weights gives the drowned task its share back."),
    metric="task A's accuracy on 400 held-out texts (chance 0.5)",
    conditions=(ALONE, HELPER, LOUD, BALANCED),
    effect=(BALANCED, LOUD),
    run=run,
    prepare=prepare,
    prepare_label="data",
    x_label="step",
    y_label="task A accuracy (validation); second curve: gradient cosine A-B",
    higher_is_better=True,
    seeds=3,
    small_seeds=2,
    budget_s=300.0,
    how=("Texts of 12 letters. Task A (16 labels): more a's than b's? Four conditions, each a training run of "
         "200 steps of a 2-layer, 32-wide GPT with a head per task: A alone; A with a helper task (count(a) - "
         "count(b), 2,000 labels); A with a loud task (how many g's, in tenths: a loss ~100 times "
         "larger), losses summed; and the same with GradNorm. The gradient cosine between the tasks is measured "
         "every 5 steps."),
    conclude=conclude,
)
