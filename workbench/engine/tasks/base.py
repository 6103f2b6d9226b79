"""What every task is: a way to build a batch, an optional head on the trunk, a loss, metrics.

A task never owns the trunk. The trainer holds one GPT whose ``heads`` ModuleDict carries each
task's head under the task's name, so heads checkpoint and freeze like any other parameter.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch
from torch import nn

from ..config import TaskConfig


@dataclass
class TaskContext:
    """What tasks may read when they are built."""
    tokenizer: object        # engine.tokenizer.Tokenizer
    data: object             # engine.data.TokenData (pretraining tasks)
    n_embd: int
    block_size: int


@dataclass
class TaskOutput:
    loss: torch.Tensor                   # scalar, differentiable
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)  # detached scalars, e.g. accuracy


class Task(ABC):
    kind: str = ""

    def __init__(self, cfg: TaskConfig, ctx: TaskContext):
        self.cfg = cfg
        self.name = cfg.task_name
        self.ctx = ctx

    def build_head(self) -> nn.Module | None:
        """Task-specific parameters; None when the task reuses the tied LM head."""
        return None

    @abstractmethod
    def sample(self, split: str, batch_size: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        """A batch of CPU tensors drawn with ``gen`` (the only randomness allowed: exact resume)."""

    @abstractmethod
    def forward(self, model, batch: dict[str, torch.Tensor]) -> TaskOutput:
        """The task's loss (and metrics) on one batch."""

    def head(self, model) -> nn.Module:
        return model.heads[self.name]


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(-1) == labels).float().mean().detach()
