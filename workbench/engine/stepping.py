"""The pieces of one optimizer step that need no trainer: the learning-rate schedule, AdamW's parameter
groups, the tally of a step's losses, and the gradient norm per layer group."""

from __future__ import annotations

import math

import torch

from .freezing import group_of
from .model import GPT


def lr_at(step: int, cfg) -> float:
    """The rate of the update that takes the weights from ``step`` to ``step + 1`` (logged as step + 1):
    linear warmup (step k = 1..W at learning_rate * k / W: near 0 first, the full rate at step W),
    cosine decay to min_lr at lr_decay_steps, then min_lr."""
    decay_end = cfg.lr_decay_steps or cfg.max_steps
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    if step >= decay_end:
        return cfg.min_lr
    progress = (step - cfg.warmup_steps) / max(1, decay_end - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.learning_rate - cfg.min_lr)


def build_optimizer(model: torch.nn.Module, cfg, device: torch.device,
                    lr_scales: dict[str, float] | None = None) -> torch.optim.AdamW:
    """AdamW over the parameters that require grad only (frozen ones then cost nothing).
    Matrices and embeddings decay; biases and LayerNorm gains do not. ``lr_scales`` (by parameter
    name) gives discriminative learning rates: each group carries an ``lr_scale`` the loop applies."""
    buckets: dict[tuple[bool, float], list] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            scale = (lr_scales or {}).get(name, 1.0)
            buckets.setdefault((p.dim() >= 2, scale), []).append(p)
    groups = [{"params": ps, "weight_decay": cfg.weight_decay if decay else 0.0, "lr_scale": scale}
              for (decay, scale), ps in sorted(buckets.items(), key=lambda kv: (not kv[0][0], -kv[0][1]))]
    # fused kernels exist for CUDA and (recent torch) CPU; measured faster on both for small GPTs
    fused = device.type in ("cuda", "cpu")
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2), fused=fused)


class Tally:
    """A step's losses and metrics, kept on the device until one ``.tolist()`` after the backward
    passes: a single host sync (and on N processes a single all-reduce) per step."""

    def __init__(self):
        self.terms: list[torch.Tensor] = []                      # what was backpropagated
        self.values: list[tuple[str, int, torch.Tensor]] = []   # (metric name, task index or -1, value)

    def add(self, i: int, name: str, term: torch.Tensor, out, accum: int) -> None:
        self.terms.append(term.detach())
        self.values.append((name, i, out.loss.detach() / accum))
        self.values += [(f"{name}/{k}", -1, v / accum) for k, v in out.metrics.items()]

    def read(self, group, stop: bool, pause: bool = False) -> tuple[float, dict[str, float], dict[int, float], bool]:
        """(total loss, per-task losses and metrics by name, per-task losses by task index, stop): on N
        processes the means over the ranks and whether any rank asked to stop (one all-reduce, which
        also carries a pause request to every rank)."""
        numbers, stop = group.agree(torch.stack(self.terms + [v for _, _, v in self.values]), stop, pause)
        total = sum(numbers[:len(self.terms)])
        sums: dict[str, float] = {}
        raw: dict[int, float] = {}
        for (name, i, _), x in zip(self.values, numbers[len(self.terms):]):
            sums[name] = sums.get(name, 0.0) + x
            if i >= 0:
                raw[i] = raw.get(i, 0.0) + x
        return total, sums, raw, stop


def group_grad_norms(model: GPT) -> dict[str, float]:
    """Gradient norm per layer group (embeddings, block.N, ln_f, heads): which layers learn."""
    sq: dict[str, torch.Tensor] = {}
    for name, p in model.named_parameters():
        if p.grad is not None:
            g = group_of(name)
            sq[g] = sq.get(g, 0.0) + p.grad.detach().float().pow(2).sum()
    names = list(sq)
    values = torch.stack([sq[n] for n in names]).sqrt().tolist() if names else []
    return dict(zip(names, values))
