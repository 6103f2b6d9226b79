"""One module per task kind; ``build_task`` picks the class from the config."""

from __future__ import annotations

from ..config import TaskConfig
from .base import Task, TaskContext, TaskOutput
from .causal_lm import CausalLM
from .continuity import Continuity
from .labelled import Classification, Entailment, MultipleChoice, Regression, Similarity
from .masked_lm import MaskedLM

TASK_CLASSES: dict[str, type[Task]] = {c.kind: c for c in (
    CausalLM, MaskedLM, Continuity, Classification, Entailment, Similarity, MultipleChoice, Regression)}


def build_task(cfg: TaskConfig, ctx: TaskContext) -> Task:
    return TASK_CLASSES[cfg.kind](cfg, ctx)


__all__ = ["Task", "TaskContext", "TaskOutput", "TASK_CLASSES", "build_task"]
