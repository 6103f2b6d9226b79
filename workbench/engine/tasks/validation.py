"""Scoring the tasks without training: the numbers a run reports at each validation, and the quick
check a checkpoint that cannot wait makes first.

Both draw their batches from generators of their own, seeded from ``training.seed`` and the task's
index, so the same windows are scored every time (comparable numbers) and evaluating or not never
changes the training RNGs (exact resume).
"""

from __future__ import annotations

import math

import torch

from ..config import TrainingConfig
from ..device import Precision


@torch.no_grad()
def validate(model, tasks: list, tc: TrainingConfig, device: torch.device, precision: Precision,
             split: str = "val") -> tuple[dict[str, float], dict[str, float]]:
    """Per-task mean loss and metrics ("TASK/NAME") over ``eval_batches`` fixed batches; a labelled
    task scores its whole validation set, in order. Causal LM tasks add their perplexity."""
    model.eval()
    losses, metrics = {}, {}
    for i, task in enumerate(tasks):
        if hasattr(task, "evaluate"):  # labelled: the whole validation set, in order
            with precision.autocast(device):
                losses[task.name], m = task.evaluate(model, tc.batch_size, device)
            metrics.update({f"{task.name}/{k}": v for k, v in m.items()})
            continue
        gen = torch.Generator().manual_seed(tc.seed + 1 + i)
        total, sums = 0.0, {}
        for _ in range(tc.eval_batches):
            batch = {k: v.to(device) for k, v in task.sample(split, tc.batch_size, gen).items()}
            with precision.autocast(device):
                out = task.forward(model, batch)
            total += out.loss.item()
            for k, v in out.metrics.items():
                sums[k] = sums.get(k, 0.0) + float(v)
        losses[task.name] = total / tc.eval_batches
        metrics.update({f"{task.name}/{k}": v / tc.eval_batches for k, v in sums.items()})
        if task.kind == "causal_lm":
            metrics[f"{task.name}/ppl"] = math.exp(min(losses[task.name], 50.0))
    return losses, metrics


@torch.no_grad()
def quick_losses(model, tasks: list, tc: TrainingConfig, device: torch.device,
                 precision: Precision) -> dict[str, float]:
    """Each task's loss on one fixed validation batch, in eval mode (no RNG is consumed)."""
    model.eval()
    out = {}
    for i, task in enumerate(tasks):
        batch = {k: v.to(device) for k, v in
                 task.sample("val", tc.batch_size, torch.Generator().manual_seed(tc.seed + 1 + i)).items()}
        with precision.autocast(device):
            out[task.name] = float(task.forward(model, batch).loss)
    return out
