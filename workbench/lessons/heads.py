"""Attention heads form suddenly: the Demo's copy head, caught in the act.

The demo model (the `demo_toy` preset: five-letter copy lines such as ``dkgan>dkgan``, windows at
line starts) is trained once per seed. Every few steps the lesson measures, on a fixed batch of
held-out lines, the loss on the *answer letters* (after ">": a head that looks back at the letter
to copy makes them certain) and on the *new letters* (before ">": random, nothing to look up),
and the copy score of the best head on the probe text (engine/patterns.py). For most of the run
both losses sit still (the plateau: the model knows the shape of a line but guesses each answer
letter), then within a few dozen steps one head starts to look back at the right letter and the
answer letters' loss collapses. The step at which the head's copy score first passes 0.5 is
marked on the curve.

The two conditions are the two halves of the same lines: each one's value is how far its loss
fell in the steps around the head's forming (from WINDOW steps before to WINDOW steps after).
The answer letters fall by about a nat and a half, the new letters by next to nothing: the drop
at that moment is the head's doing, not general learning. A seed whose head does not form within
the steps allowed reports the fall over its last 2 x WINDOW steps and says so.
"""

from __future__ import annotations

from .base import Lesson, LessonResult, Outcome, RunContext

ANSWER, NEW = "answer letters", "new letters"
EVERY = 10          # steps between measurements (and attention snapshots)
WINDOW = 50         # steps before and after the forming that the fall is measured over
MAX_STEPS = {"full": 600, "small": 400}
SHAPE_LEARNED = 50  # by this step the model knows the shape of a line (">" after five letters, and so on)
EVAL_ROWS = 64      # held-out windows measured each time (two lines each)


def _masks(window, tokenizer):
    """Which targets of the windows are answer letters and which new letters. ``window`` (B, T + 1)
    holds the inputs and the last target; target t is token t + 1. A letter after its line's ">" is an
    answer, any other letter a new one (">" and newlines are certain once the shape of a line is known,
    so they belong to neither)."""
    import torch

    B, T = window.shape[0], window.shape[1] - 1
    answer, new = torch.zeros((B, T), dtype=torch.bool), torch.zeros((B, T), dtype=torch.bool)
    for b, row in enumerate(window.tolist()):
        chars = tokenizer.token_texts(row)
        after = False  # a window starts at a line start (corpus.window_start = "line")
        for t in range(T):
            after = False if chars[t] == "\n" else (after or chars[t] == ">")
            if chars[t + 1].isalpha():
                (answer if after else new)[b, t] = True
    return answer, new


def _losses(model, x, y, masks) -> dict[str, float]:
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        logits, _ = model(x)
        per = F.cross_entropy(logits.transpose(1, 2).float(), y, reduction="none")  # (B, T)
    return {name: float(per[m].mean()) for name, m in masks.items()}


def _train(ctx: RunContext) -> dict:
    """Train the demo model for this seed; the curves of the two halves, the copy score, the forming."""
    import torch

    from workbench.engine.config import resolve_experiment
    from workbench.engine.events import AttentionSnapshot, StepMetrics
    from workbench.engine.patterns import CLEAR, pattern_scores, probe_links

    from .engine_run import train

    max_steps = MAX_STEPS[ctx.size]
    exp = resolve_experiment("demo_toy", [
        f"training.seed={ctx.seed}", f"training.max_steps={max_steps}", f"training.attention_every={EVERY}",
        "training.eval_every=0", "training.checkpoint_every=0", "training.threads=1"])
    curves: dict[str, list[tuple[int, float]]] = {ANSWER: [], NEW: [], "copy score": []}
    formed: dict = {}
    fixed: dict = {}

    def measure(step: int, attention, s) -> bool:
        if not fixed:  # the same held-out windows every time
            gen = torch.Generator().manual_seed(12345)
            x, y = s.data.batch("val", EVAL_ROWS, gen)
            answer, new = _masks(torch.cat([x, y[:, -1:]], dim=1), s.tokenizer)
            fixed.update(x=x, y=y, masks={ANSWER: answer, NEW: new},
                         links={"copy": probe_links(s.tokenizer, exp.training.probe_text)["copy"]})
        losses = _losses(s.model, fixed["x"], fixed["y"], fixed["masks"])
        _task, layer, head, score = pattern_scores(attention, fixed["links"]).best()
        for name, value in (*losses.items(), ("copy score", score)):
            curves[name].append((step, value))
            ctx.point(step, value, series=name)
        if not formed and score >= CLEAR:
            formed.update(step=step, layer=layer, head=head, score=round(score, 3))
            ctx.mark(step, f"copy head forms: layer {layer} head {head} (score {score:.2f})")
        # the fall after the forming is measured: the rest adds nothing
        return bool(formed) and step >= formed["step"] + WINDOW

    def listen(e, state) -> bool:
        if isinstance(e, StepMetrics):
            ctx.point(e.step, e.loss)
        elif isinstance(e, AttentionSnapshot):
            return measure(e.step, e.attention, state)
        return False

    trainer = train(ctx, exp, ctx.workdir / "run", listen)
    return {"curves": curves, "formed": formed or None, "steps": trainer.state.step}


def _fall(curve: list[tuple[int, float]], start: int, end: int) -> float:
    """The loss at the measurement nearest ``start`` minus the one nearest ``end``."""
    def at(step):
        return min(curve, key=lambda p: abs(p[0] - step))[1]
    return at(start) - at(end)


def _run(ctx: RunContext) -> Outcome:
    shared = ctx.shared
    curves, formed = shared["curves"], shared["formed"]
    if formed:
        start, end = formed["step"] - WINDOW, formed["step"] + WINDOW
    else:
        end = curves[ANSWER][-1][0]
        start = end - 2 * WINDOW
    value = _fall(curves[ctx.condition], start, end)
    # the plateau: how far the same loss fell in the steps before (once a line's shape is learned)
    before = _fall(curves[ctx.condition], SHAPE_LEARNED, start) if start - SHAPE_LEARNED >= WINDOW else None
    extra = {"formed_step": formed["step"] if formed else None, "head": formed, "from_step": max(0, start),
             "to_step": end, "fall_before": None if before is None else round(before, 4),
             "steps_trained": shared["steps"]}
    return Outcome(value, extra)


def _conclude(r: LessonResult) -> str:
    a, b = r.conditions[ANSWER], r.conditions[NEW]
    if not a.values or not b.values:
        return "Stopped before a seed had finished: nothing to compare yet."
    steps = [e["formed_step"] for e in a.extras if e.get("formed_step") is not None]
    n = len(a.values)
    where = (f"A copy head formed in {len(steps)} of {n} seed{'s' if n != 1 else ''} "
             f"(at step {', '.join(map(str, steps))})" if steps else f"No copy head formed in {n} seed(s)")
    if len(steps) < n:
        where += "; the others report the fall over their last steps instead"
    agree = ("one seed only" if n == 1 else "every seed agrees" if not r.overlap
             else "the seeds' ranges overlap, so at this size the difference is not clear")
    before = [e["fall_before"] for e in a.extras if e.get("fall_before") is not None]
    plateau = (f" Before that, from step {SHAPE_LEARNED} on, the answer letters' loss had fallen by "
               f"{sum(before) / len(before):.2f} on average." if before else "")
    sudden = r.effect > 0.5 and (n == 1 or not r.overlap)
    return (f"{where}. In the {2 * WINDOW} steps around that moment the loss on the answer letters fell by "
            f"{a.mean:.2f} ± {a.std:.2f} nats and on the new letters by {b.mean:.2f} ± {b.std:.2f} "
            f"({agree}).{plateau} "
            + ("The fall is the copy head's, and it comes suddenly, after a plateau."
               if sudden else "The effect is small here: these runs do not show the claim."))


LESSON = Lesson(
    name="heads",
    title="Attention heads form suddenly",
    claim=("A head that does a job (here: looking back at the letter to copy) does not grow slowly: the loss "
           "sits on a plateau for a long while, then within a few dozen steps the head forms and the loss on "
           "what it makes predictable collapses."),
    metric=f"how far the loss fell in the {2 * WINDOW} steps around the copy head's forming (nats)",
    conditions=(ANSWER, NEW),
    effect=(ANSWER, NEW),
    run=_run,
    prepare=_train,
    prepare_label="training",
    x_label="step",
    y_label="training loss (answer letters, new letters: held-out lines)",
    higher_is_better=True,
    seeds=5,
    small_seeds=1,
    budget_s=300.0,
    how=("The Demo's model (2 layers, 4 heads, width 64) learns lines such as dkgan>dkgan, once per seed. Every "
         f"{EVERY} steps the loss on held-out answer letters (after \">\") and new letters (before it) is "
         "measured, with the best head's copy score on the probe text; the step it first reaches 0.5 is marked. "
         "Each half's value is its fall from 50 steps before that mark to 50 after."),
    conclude=_conclude,
)
