"""Train one run of a lesson with the engine's Trainer, inside the lesson's stop and its live curves.

A lesson's run is an ordinary training run (its own folder under the run's workdir). ``train`` hands
each engine event, with the run's live state (``RunState``: its model, tokenizer...), to the lesson's
``listen`` (to draw curves from validation results, task balance reports, an evaluation of its own;
``listen`` returns True to end the run early once it has measured what the lesson needs); it turns a
stop request into the Trainer's own stop (the run ends between steps, cleanly) and then into
``LessonStopped``, and raises a run that failed as a ``TrainingError`` (exit code 1) with the
engine's message. The Trainer comes back: ``trainer.state.model`` is the model as the run left it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..engine.config import Experiment
from ..engine.control import RunControl
from ..engine.errors import TrainingError
from ..engine.trainer import RunState, Trainer
from .base import LessonStopped, RunContext


def train(ctx: RunContext, exp: Experiment, folder: Path,
          listen: Callable[[object, RunState], bool | None] | None = None) -> Trainer:
    """Run ``exp`` in ``folder`` to its end, or until ``listen(event, state)`` returns True; ``listen``
    sees every engine event as it comes (in the training thread, between steps: the model may be
    evaluated there)."""
    control = RunControl()
    enough = False

    class Reporter:
        def report(self, event) -> None:
            nonlocal enough
            if listen is not None and trainer.state is not None:
                try:
                    if listen(event, trainer.state):
                        enough = True
                        control.stop()
                except LessonStopped:  # ctx.point noticed the stop: end the run between steps
                    control.stop()
            if ctx.stop_requested():
                control.stop()

    trainer = Trainer(exp, run_dir=folder, overwrite=True)
    result = trainer.run(control, Reporter())
    if ctx.stop_requested() or (result.status == "stopped" and not enough):
        raise LessonStopped()
    if result.status not in ("completed", "early_stopped") and not (enough and result.status == "stopped"):
        raise TrainingError(f"lesson {ctx.lesson}, {ctx.condition or 'prepare'} (seed {ctx.seed}): the training run "
                            f"{result.status}: {result.message}", exit_code=1)
    return trainer
