"""Freezing strategies as a plan over steps, and discriminative learning rates.

The model's parameters fall into named groups: ``embeddings`` (token and position tables; the
output layer is tied to the token table), ``block.0`` .. ``block.{L-1}`` (bottom to top),
``ln_f`` and ``heads`` (task heads). A plan says which groups train at a given step; the trainer
applies it at step boundaries by setting ``requires_grad`` and rebuilding the optimizer from the
trainable parameters only, so a frozen parameter is never touched (bitwise equal) and costs
neither gradient nor optimizer memory.
"""

from __future__ import annotations

from torch import nn

from .config import FinetuneConfig


def group_of(name: str) -> str:
    """'transformer.h.3.attn.c_attn.weight' -> 'block.3'; 'transformer.wte.weight' -> 'embeddings'."""
    if name.startswith("heads."):
        return "heads"
    if name.startswith("transformer.h."):
        return f"block.{name.split('.')[2]}"
    if name.startswith(("transformer.wte", "transformer.wpe", "lm_head")):
        return "embeddings"
    if name.startswith("transformer.ln_f"):
        return "ln_f"
    return "other"


def expand(spec: tuple[str, ...] | list[str], n_layer: int) -> set[str]:
    """Stage vocabulary ("all", "blocks", "top:K", "block.N", ...) -> group names."""
    blocks = [f"block.{i}" for i in range(n_layer)]
    out: set[str] = set()
    for item in spec:
        if item == "all":
            out |= {"embeddings", "ln_f", "heads", "other", *blocks}
        elif item == "blocks":
            out |= set(blocks)
        elif item.startswith("top:"):
            k = int(item[4:])
            out |= set(blocks[max(0, n_layer - k):])
        else:
            out.add(item)
    return out


class FreezePlan:
    def __init__(self, cfg: FinetuneConfig, n_layer: int):
        self.cfg, self.L = cfg, n_layer

    def trainable(self, step: int) -> set[str]:
        """The groups that train during optimizer step ``step`` (0-based)."""
        cfg, L = self.cfg, self.L
        if cfg.freeze == "none":
            return expand(["all"], L)
        if cfg.freeze == "head_only":
            return {"heads"}
        if cfg.freeze == "bottom_n":
            return expand(["all"], L) - {"embeddings"} - {f"block.{i}" for i in range(min(cfg.freeze_n, L))}
        if cfg.freeze == "gradual":
            k = step // cfg.unfreeze_every  # blocks unfrozen so far, from the top
            groups = expand(["heads", "ln_f", "other", f"top:{k}"], L)
            return groups | ({"embeddings"} if k > L else set())
        return expand(self.stage(step)[0].trainable, L)

    def stage(self, step: int):
        """(stage config, index) in force at ``step``; the last stage lasts beyond its steps."""
        end = 0
        for i, st in enumerate(self.cfg.stages):
            end += st.steps
            if step < end:
                return st, i
        return self.cfg.stages[-1], len(self.cfg.stages) - 1

    def lr_multiplier(self, step: int, base_lr: float) -> float:
        if self.cfg.freeze == "stages" and base_lr > 0:
            st, _ = self.stage(step)
            if st.learning_rate > 0:
                return st.learning_rate / base_lr
        return 1.0

    def describe(self, step: int) -> str:
        groups = self.trainable(step)
        blocks = sorted(int(g.split(".")[1]) for g in groups if g.startswith("block."))
        parts = [g for g in ("embeddings", "ln_f", "heads") if g in groups]
        if blocks:
            parts.append(f"blocks {blocks[0]}-{blocks[-1]}" if len(blocks) > 1 else f"block {blocks[0]}")
        return ", ".join(parts) or "nothing"


def apply_trainable(model: nn.Module, groups: set[str]) -> int:
    """Set requires_grad by group; returns how many parameters (elements) train."""
    n = 0
    for name, p in model.named_parameters():
        p.requires_grad_(group_of(name) in groups)
        n += p.numel() if p.requires_grad else 0
    return n


def discriminative_scales(model: nn.Module, cfg: FinetuneConfig, n_layer: int) -> dict[str, float]:
    """Per-parameter learning-rate multipliers: block l (1 = bottom .. L = top) gets factor^(L - l),
    the embeddings factor^L, ln_f and the heads 1. All 1 when discriminative rates are off."""
    scales = {}
    for name, _ in model.named_parameters():
        g = group_of(name)
        if not cfg.discriminative:
            s = 1.0
        elif g.startswith("block."):
            s = cfg.lr_factor ** (n_layer - (int(g.split(".")[1]) + 1))
        elif g == "embeddings":
            s = cfg.lr_factor ** n_layer
        else:
            s = 1.0
        scales[name] = s
    return scales
