"""When a run has diverged without the loss becoming NaN, and which checkpoint is still good.

The rule (training.divergence_*): the training loss is smoothed with an exponential moving average
(EMA, weight SMOOTHING on the past). Its lowest value so far is the run's floor. A step is *out of
band* when the EMA is above max(floor * divergence_factor, floor + divergence_margin);
``divergence_steps`` out-of-band steps in a row, the last one after warmup, mean the run has
diverged. A run whose loss dips out
of the band and comes back (a spike) is not stopped.

The good checkpoint it names is the last one written while the loss was inside its band: checkpoints
written during an out-of-band streak are still written (resume needs them) but never named good,
and the trainer protects the good one from pruning. The messages a diverged run ends with (what
fired, the good checkpoint, the command to continue from it) are written here too.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

SMOOTHING = 0.9  # EMA weight on the past: ~10 steps of memory, enough to ride out one noisy batch


@dataclass
class DivergenceWatch:
    factor: float            # 0: never stop
    margin: float
    patience: int            # out-of-band steps in a row that mean "diverged"
    warmup: int              # no stop before this step (the loss may wobble while lr ramps up)
    ema: float | None = None
    floor: float | None = None
    floor_step: int = 0
    streak: int = 0          # out-of-band steps in a row, up to the last one seen
    streak_start: int = 0    # the first step of the current streak
    good_checkpoint: int | None = None  # last checkpoint written inside the band

    @property
    def enabled(self) -> bool:
        return self.factor > 0

    def threshold(self) -> float:
        return max(self.floor * self.factor, self.floor + self.margin)

    def update(self, step: int, loss: float) -> bool:
        """Feed the finite training loss of ``step`` (1-based); True when the rule fires."""
        self.ema = loss if self.ema is None else SMOOTHING * self.ema + (1 - SMOOTHING) * loss
        if self.floor is None or self.ema < self.floor:
            self.floor, self.floor_step = self.ema, step
        if not self.enabled or self.ema <= self.threshold():
            self.streak = 0
            return False
        if self.streak == 0:
            self.streak_start = step
        self.streak += 1
        # Out of band counts from the first step (a checkpoint written then is never called good);
        # only the stop waits until warmup is over.
        return self.streak >= self.patience and step > self.warmup

    def checkpoint_written(self, step: int) -> None:
        if self.streak == 0:
            self.good_checkpoint = step

    def good_among(self, steps: list[int]) -> int | None:
        """Of the complete checkpoints ``steps`` (oldest first), the newest whose weights gave a finite
        loss inside the band: the good one, else the newest written before the current streak began."""
        if self.streak and self.good_checkpoint in steps:
            return self.good_checkpoint
        if self.streak:
            steps = [s for s in steps if s < self.streak_start - 1]
        return steps[-1] if steps else None

    def describe(self, step: int) -> str:
        return (f"the smoothed training loss ({self.ema:.4g}) stayed above {self.threshold():.4g} "
                f"= max({self.factor:g} x its lowest {self.floor:.4g} (step {self.floor_step}), "
                f"lowest + {self.margin:g}) for {self.streak} steps in a row (steps {self.streak_start}-{step}; "
                f"rule: training.divergence_factor, divergence_margin, divergence_steps)")

    # -- checkpoints carry the watch, so a resumed run judges as the uninterrupted one would --

    _STATE = ("ema", "floor", "floor_step", "streak", "streak_start", "good_checkpoint")

    def state(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k in self._STATE}

    def load(self, state: dict | None) -> None:
        """Take the saved state; anything that is not a finite number (a damaged sidecar) is ignored."""
        if not isinstance(state, dict):
            return
        for k in self._STATE:
            v = state.get(k)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            if ok or (v is None and k in ("ema", "floor", "good_checkpoint")):
                setattr(self, k, int(v) if ok and k not in ("ema", "floor") else v)


# -- what a diverged run says and does ------------------------------------------------------
# ``run_dir`` below is the run's checkpoint.RunDir.


def advice(watch: DivergenceWatch, run_dir) -> str:
    """What to do after a divergence: continue from the good checkpoint with a lower rate, or start
    over when there is none."""
    good = watch.good_among(run_dir.checkpoint_steps())
    if good is None:
        return ("No checkpoint had been saved yet; start a new run with a lower training.learning_rate "
                "or a smaller training.grad_clip.")
    return (f"The last good checkpoint is step {good} in {run_dir.checkpoints}; continue from it "
            f"with a lower learning rate: workbench train --resume {run_dir.path} --from-step {good} "
            f"--set training.learning_rate=... (or a smaller training.grad_clip, or precision fp32).")


def nan_message(step: int, what: str, watch: DivergenceWatch, run_dir) -> str:
    """Step ``step`` met a non-finite loss or gradient (``what``) and stopped before its update."""
    return (f"Training diverged at step {step}: {what}; stopped before the update, nothing "
            f"was written for this step. {advice(watch, run_dir)}")


def band_message(step: int, watch: DivergenceWatch, run_dir) -> str:
    """The smoothed loss left its band at ``step``."""
    return (f"Training diverged at step {step}: {watch.describe(step)}. "
            f"{advice(watch, run_dir)} To turn the rule off: training.divergence_factor = 0.")


def set_aside_bad_checkpoints(watch: DivergenceWatch, run_dir) -> str:
    """A diverged run: checkpoints written after the good one (while the loss was already out of its
    band) move to superseded/, so resume, generate and export never pick them by default. Returns
    the sentence that says so ("" when there were none)."""
    from .ownership import set_aside_after

    good = watch.good_among(run_dir.checkpoint_steps())
    bad = [s for s in run_dir.checkpoint_steps() if good is None or s > good]
    if not bad:
        return ""
    aside = set_aside_after(run_dir, good if good is not None else 0)
    return (f" The checkpoints of steps {', '.join(map(str, bad))} were written while the loss was already "
            f"out of its band; they were moved to {aside}.")
