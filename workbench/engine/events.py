"""What a run tells the world: plain dataclasses of numbers, strings and numpy arrays.

The trainer hands each event to a reporter's ``report(event)``. The CLI prints them, the GUI's
bridge turns them into Qt signals; neither ever sees a torch tensor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Status:
    """Preparation before the first step (reading the corpus, training the tokenizer, encoding)."""
    message: str
    fraction: float | None = None  # 0..1, or None when unknown


@dataclass(frozen=True)
class RunStarted:
    run_dir: str
    device: str            # e.g. "cpu", "cuda:0 (NVIDIA H100)"
    precision: str         # fp32 | bf16 | fp16
    params: int
    start_step: int        # > 0 when resumed
    max_steps: int
    tokens_per_step: int
    vocab_size: int
    # what preparing the run did: a stale lock taken over, leftovers removed, later checkpoints set aside
    notes: tuple[str, ...] = ()
    speed: str = ""              # compiled or eager and why ("compiled fp32: 1.40x eager fp32, measured ...")
    compiled: bool = False
    compile_seconds: float = 0.0  # the warm-up that compiled the model, before step 1


@dataclass(frozen=True)
class StepMetrics:
    step: int              # optimizer steps done
    max_steps: int
    tokens: int            # training tokens seen so far
    elapsed: float         # seconds of training (pauses excluded)
    loss: float            # total loss of this step
    losses: dict[str, float]  # per task, e.g. {"lm": 2.31}
    lr: float
    grad_norm: float       # before clipping
    tokens_per_s: float    # over the last few steps
    group_grad_norms: dict[str, float] | None = None  # per layer group ("block.0", "heads"...), every 10th step


@dataclass(frozen=True)
class EvalResult:
    step: int
    tokens: int
    elapsed: float
    losses: dict[str, float]                        # validation loss per task
    metrics: dict[str, float] = field(default_factory=dict)  # e.g. {"lm/ppl": 9.1}
    confusion: dict[str, np.ndarray] = field(default_factory=dict)  # task -> (true, predicted) counts
    labels: dict[str, list[str]] = field(default_factory=dict)      # task -> class names of those rows


@dataclass(frozen=True)
class AttentionSnapshot:
    step: int
    tokens: list[str]      # display text of each probe token
    ids: list[int]
    attention: np.ndarray  # (n_layer, n_head, T, T) float32, rows sum to 1


@dataclass(frozen=True)
class TaskBalance:
    """How the tasks of a multi-task run are weighted and whether their gradients agree."""
    step: int
    tasks: list[str]
    weights: list[float]   # current loss weight of each task
    conflict: np.ndarray   # (n, n) cosine similarity of the tasks' gradients on the shared trunk;
                           # NaN for a pair not measured (a task without a batch in that step)


@dataclass(frozen=True)
class FreezeChanged:
    """The freezing plan changed what trains (at the start of ``step``)."""
    step: int
    trainable: list[str]   # group names: embeddings, block.N, ln_f, heads
    n_trainable: int       # parameters (elements) that now train
    description: str       # "ln_f, heads, blocks 2-3"


@dataclass(frozen=True)
class CheckpointSaved:
    step: int
    path: str


@dataclass(frozen=True)
class Paused:
    step: int


@dataclass(frozen=True)
class Resumed:
    step: int


@dataclass(frozen=True)
class Finished:
    step: int
    reason: str            # "completed" | "stopped" | "early_stopped"
    run_dir: str
    summary: dict[str, float]


@dataclass(frozen=True)
class Failed:
    step: int
    message: str           # for a person
    details: str           # traceback or context, for a developer
    run_dir: str | None = None


class Reporter(Protocol):
    def report(self, event) -> None: ...


class NullReporter:
    def report(self, event) -> None:
        pass


class ListReporter:
    """Keeps every event; tests and the benchmark read them back."""

    def __init__(self):
        self.events: list = []

    def report(self, event) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]
