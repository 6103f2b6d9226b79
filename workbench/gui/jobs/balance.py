"""The Task balance page's job: the weight each task's loss starts with."""

from __future__ import annotations


def initial_weights(_state, tasks: list, multitask) -> list[float]:
    """The weight of each task's loss at step 0, from the engine's own weighting (it imports
    torch, hence a job)."""
    from workbench.engine.multitask import build_weighting

    return build_weighting(list(tasks), multitask).weights()
