"""Freezing strategies as a plan over steps, and discriminative learning rates.

The model's parameters fall into named groups: ``embeddings`` (token and position tables; the
output layer is tied to the token table), ``block.0`` .. ``block.{L-1}`` (bottom to top),
``ln_f`` and ``heads`` (task heads). A plan says which groups train at a given step; the trainer
applies it at step boundaries by setting ``requires_grad`` and rebuilding the optimizer from the
trainable parameters only, so a frozen parameter is never touched (bitwise equal) and costs
neither gradient nor optimizer memory.

The plan itself is plain arithmetic over the settings and imports no torch, so the Fine-tune page
draws it (``FreezePlan.segments`` / ``group_segments`` / ``stage_spans`` / ``describe_plan``) with
the very calls the trainer makes, without loading torch. Only ``apply_trainable`` and
``discriminative_scales`` touch a model, through the parameters it is given.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .config import FinetuneConfig

if TYPE_CHECKING:
    from torch import nn


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


def layer_groups(n_layer: int) -> list[str]:
    """The layer groups of a model with ``n_layer`` blocks, from the bottom of the model to the top."""
    return ["embeddings", *[f"block.{i}" for i in range(n_layer)], "ln_f", "heads"]


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


def group_scale(group: str, cfg: FinetuneConfig, n_layer: int) -> float:
    """The discriminative learning-rate multiplier of a layer group: block l (1 = bottom .. L = top)
    gets factor^(L - l), the embeddings factor^L, ln_f and the heads 1. 1 when the rates are off."""
    if not cfg.discriminative:
        return 1.0
    if group.startswith("block."):
        return cfg.lr_factor ** (n_layer - (int(group.split(".")[1]) + 1))
    if group == "embeddings":
        return cfg.lr_factor ** n_layer
    return 1.0


@dataclass(frozen=True)
class PlanSegment:
    """Steps ``start`` .. ``end - 1`` (0-based optimizer steps), during which the plan is the same."""
    start: int
    end: int
    trainable: frozenset[str]      # the groups that train
    lr: dict[str, float]           # layer group -> learning-rate multiplier (discriminative x stage)
    stage: int | None              # index into cfg.stages (freeze = "stages"), else None


@dataclass(frozen=True)
class GroupSegment:
    """One layer group over steps ``start`` .. ``end - 1``: frozen or training, and its multiplier."""
    start: int
    end: int
    trainable: bool
    lr: float


@dataclass(frozen=True)
class StageSpan:
    """Where stage ``index`` lies within a run of a given length (the last one lasts to its end)."""
    index: int
    start: int
    end: int
    learning_rate: float  # the stage's own peak rate, 0 for the run's


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

    # -- the plan over a whole run ------------------------------------------------------------

    def _staged(self) -> bool:
        # ``trainable`` reads the stages for every strategy it does not know by name
        return self.cfg.freeze not in ("none", "head_only", "bottom_n", "gradual")

    def change_points(self, max_steps: int) -> list[int]:
        """The steps (0 included) where what trains or its learning rate may change: between two of
        them ``trainable`` and ``lr_multiplier`` are constant."""
        pts = {0}
        if self.cfg.freeze == "gradual":
            pts |= {k * self.cfg.unfreeze_every for k in range(1, self.L + 2)}
        elif self._staged():
            end = 0
            for st in self.cfg.stages:
                end += st.steps
                pts.add(end)
        return sorted(p for p in pts if 0 <= p < max(1, max_steps))

    def segments(self, max_steps: int, base_lr: float) -> list[PlanSegment]:
        """The run's steps 0 .. max_steps - 1 cut where the plan changes: what trains in each piece
        and every layer group's learning-rate multiplier (discriminative x stage), for a run whose
        scheduled peak rate is ``base_lr``. Raises IndexError for a staged plan without stages."""
        pts = self.change_points(max_steps) + [max(1, max_steps)]
        groups = layer_groups(self.L)
        out = []
        for a, b in zip(pts, pts[1:]):
            mult = self.lr_multiplier(a, base_lr)
            seg = PlanSegment(a, b, frozenset(self.trainable(a)),
                              {g: group_scale(g, self.cfg, self.L) * mult for g in groups},
                              self.stage(a)[1] if self._staged() else None)
            prev = out[-1] if out else None
            if prev and (prev.trainable, prev.lr, prev.stage) == (seg.trainable, seg.lr, seg.stage):
                out[-1] = dataclasses.replace(prev, end=b)  # e.g. the end of the last stage: it goes on
            else:
                out.append(seg)
        return out

    def group_segments(self, max_steps: int, base_lr: float) -> dict[str, list[GroupSegment]]:
        """Layer group (bottom to top) -> its pieces over the run; neighbouring pieces where the group
        is in the same state at the same multiplier are one piece."""
        lanes: dict[str, list[GroupSegment]] = {g: [] for g in layer_groups(self.L)}
        for seg in self.segments(max_steps, base_lr):
            for g, pieces in lanes.items():
                piece = GroupSegment(seg.start, seg.end, g in seg.trainable, seg.lr[g])
                prev = pieces[-1] if pieces else None
                if prev and prev.trainable == piece.trainable and math.isclose(prev.lr, piece.lr):
                    pieces[-1] = GroupSegment(prev.start, piece.end, prev.trainable, prev.lr)
                else:
                    pieces.append(piece)
        return lanes

    def stage_spans(self, max_steps: int) -> list[StageSpan]:
        """The stages that start within a run of ``max_steps`` steps; none unless the plan is staged."""
        if self.cfg.freeze != "stages":
            return []
        spans, start = [], 0
        for i, st in enumerate(self.cfg.stages):
            if start >= max_steps:
                break
            end = start + st.steps if i < len(self.cfg.stages) - 1 else max_steps
            spans.append(StageSpan(i, start, min(end, max_steps), st.learning_rate))
            start = end
        return spans

    def describe_plan(self, max_steps: int) -> str:
        """The plan for a run of ``max_steps`` steps in a sentence or two."""
        cfg, L = self.cfg, self.L
        if cfg.freeze == "none":
            text = "Every layer trains from the first step."
        elif cfg.freeze == "head_only":
            text = "Only the task head trains: a linear probe on the pretrained model's features."
        elif cfg.freeze == "bottom_n":
            n = min(cfg.freeze_n, L)
            text = (f"The embeddings and the lowest {n} block{'s' if n != 1 else ''} stay frozen; "
                    f"the {L - n} block{'s' if L - n != 1 else ''} above them, ln_f and the head train.")
        elif cfg.freeze == "gradual":
            k = cfg.unfreeze_every
            all_at = (L + 1) * k
            text = (f"The head and ln_f train first; every {k:,} steps one more block thaws, from the top down; "
                    + (f"from step {all_at:,} everything trains, embeddings included."
                       if all_at < max_steps else f"the embeddings would thaw at step {all_at:,}, after the run ends."))
        else:
            n = len(cfg.stages)
            text = f"{n} stage{'s' if n != 1 else ''}, each with its own trainable layers and learning rate."
        if cfg.discriminative:
            f = cfg.lr_factor
            text += (f" Discriminative rates: each block gets ×{f:.3g} of the rate of the block above "
                     f"(block 0: ×{f ** (L - 1):.2g}, embeddings ×{f ** L:.2g}).")
        return text


def apply_trainable(model: nn.Module, groups: set[str]) -> int:
    """Set requires_grad by group; returns how many parameters (elements) train."""
    n = 0
    for name, p in model.named_parameters():
        p.requires_grad_(group_of(name) in groups)
        n += p.numel() if p.requires_grad else 0
    return n


def discriminative_scales(model: nn.Module, cfg: FinetuneConfig, n_layer: int) -> dict[str, float]:
    """Per-parameter learning-rate multipliers (``group_scale`` of each parameter's group)."""
    return {name: group_scale(group_of(name), cfg, n_layer) for name, _ in model.named_parameters()}
