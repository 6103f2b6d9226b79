"""Looking inside a trained GPT, beyond attention maps.

- Head knock-out: zero one or more heads' outputs (before the attention's output projection) and
  measure what changes: the loss on a text, per position, and the model's top predictions.
  ``ablation_table`` does it for every head at once: the table of each head's effect.
- Layer by layer ("logit lens"): apply the final LayerNorm and the unembedding to the residual
  stream after the embeddings and after each block, so each layer "says" what it would predict.
  The last row is the model's own prediction.
- A token across training: one query token's attention row over every snapshot of a run.

Knock-out here is zero-ablation (the head contributes nothing); mean-ablation would need a
reference distribution of activations, which a single probe text does not give.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from . import checkpoint as ckpt
from .errors import ConfigError
from .generate import eval_mode
from .model import GPT

Head = tuple[int, int]  # (layer, head)


def _check_heads(model: GPT, heads: Iterable[Head]) -> list[Head]:
    L, H = model.config.n_layer, model.config.n_head
    out = []
    for layer, head in heads:
        if not (0 <= layer < L and 0 <= head < H):
            raise ConfigError(f"head ({layer}, {head}) does not exist: the model has layers 0-{L - 1} "
                              f"and heads 0-{H - 1} in each.")
        out.append((int(layer), int(head)))
    return out


@contextmanager
def knocked_out(model: GPT, heads: Iterable[Head]):
    """Within the block, the given heads output zeros; afterwards the model is as it was (the
    masks are restored even on an exception, so a paused run's live model is never left damaged)."""
    heads = _check_heads(model, heads)
    blocks = model.transformer.h
    saved = [b.attn.head_mask for b in blocks]
    try:
        device = next(model.parameters()).device
        for layer, head in heads:
            attn = blocks[layer].attn
            if attn.head_mask is None:
                attn.head_mask = torch.ones(model.config.n_head, device=device)
            else:
                attn.head_mask = attn.head_mask.clone()
            attn.head_mask[head] = 0.0
        yield model
    finally:
        for b, m in zip(blocks, saved):
            b.attn.head_mask = m


@torch.no_grad()
def token_losses(model: GPT, ids: Sequence[int]) -> np.ndarray:
    """Cross-entropy of each next token of ``ids`` (cropped to the context): (T-1,) in nats."""
    ids = list(ids)[:model.config.block_size]
    if len(ids) < 2:
        raise ConfigError("the probe text needs at least two tokens to measure a loss.")
    device = next(model.parameters()).device
    idx = torch.tensor([ids], device=device)
    with eval_mode(model):
        logits, _ = model(idx[:, :-1])  # (1, T-1, V)
    return F.cross_entropy(logits[0].float(), idx[0, 1:], reduction="none").cpu().numpy()


@dataclass
class KnockOut:
    """What zeroing ``heads`` does to the probe: per-position losses and top predictions, before and after."""

    heads: list[Head]
    tokens: list[str]            # the probe's tokens (T)
    base_losses: np.ndarray      # (T-1,) loss of predicting token t+1 from tokens 0..t
    losses: np.ndarray           # (T-1,) the same with the heads knocked out
    base_top: list[str]          # (T-1,) the model's top prediction after each token
    top: list[str]               # (T-1,) with the heads knocked out

    @property
    def delta(self) -> float:
        """Mean loss change over the probe, in nats (positive: the heads helped)."""
        return float(self.losses.mean() - self.base_losses.mean())

    def changed_predictions(self) -> list[int]:
        """Positions whose top prediction changed."""
        return [i for i, (a, b) in enumerate(zip(self.base_top, self.top)) if a != b]


@torch.no_grad()
def _top_predictions(model: GPT, tokenizer, ids: Sequence[int]) -> list[str]:
    device = next(model.parameters()).device
    with eval_mode(model):
        logits, _ = model(torch.tensor([list(ids)[:-1]], device=device))
    return tokenizer.token_texts(logits[0].argmax(-1).tolist())


def knock_out(model: GPT, tokenizer, ids: Sequence[int], heads: Iterable[Head]) -> KnockOut:
    """The probe's losses and predictions with and without ``heads``."""
    ids = list(ids)[:model.config.block_size]
    heads = _check_heads(model, heads)
    base, base_top = token_losses(model, ids), _top_predictions(model, tokenizer, ids)
    with knocked_out(model, heads):
        after, top = token_losses(model, ids), _top_predictions(model, tokenizer, ids)
    return KnockOut(heads, tokenizer.token_texts(ids), base, after, base_top, top)


@dataclass
class AblationTable:
    """Each head's effect: ``delta[l, h]`` = mean loss over the chosen positions with head (l, h)
    zeroed, minus the intact model's (nats; positive = the head helps there)."""

    base_loss: float
    delta: np.ndarray            # (n_layer, n_head)
    positions: int               # how many predicted tokens were averaged

    def strongest(self) -> tuple[int, int, float]:
        """(layer, head, delta) of the head whose removal hurts most."""
        layer, head = np.unravel_index(int(np.argmax(self.delta)), self.delta.shape)
        return int(layer), int(head), float(self.delta[layer, head])


def ablation_table(model: GPT, texts: Sequence[Sequence[int]], *,
                   positions: Sequence[Sequence[int]] | None = None) -> AblationTable:
    """Knock out every head in turn over token id lists ``texts``; ``positions`` (per text, indices
    of predicted tokens, i.e. into the (T-1,) losses) restricts the average, e.g. to copied tokens."""
    L, H = model.config.n_layer, model.config.n_head

    def mean_loss() -> tuple[float, int]:
        total, n = 0.0, 0
        for i, ids in enumerate(texts):
            losses = token_losses(model, ids)
            keep = list(positions[i]) if positions is not None else range(len(losses))
            keep = [p for p in keep if 0 <= p < len(losses)]
            total += float(losses[keep].sum()) if keep else 0.0
            n += len(keep)
        if n == 0:
            raise ConfigError("no positions to measure: every chosen position lies outside the texts.")
        return total / n, n

    base, n = mean_loss()
    delta = np.zeros((L, H))
    for layer in range(L):
        for head in range(H):
            with knocked_out(model, [(layer, head)]):
                delta[layer, head] = mean_loss()[0] - base
    return AblationTable(base, delta, n)


@dataclass
class LogitLens:
    """What each layer would predict for the probe. Rows: 0 = the embeddings, l = after block l
    (the last row is the model's own prediction); columns: the probe's positions."""

    tokens: list[str]            # (T,) the probe's tokens
    top_ids: np.ndarray          # (L+1, T) the most likely next token at each layer and position
    top_texts: list[list[str]]   # (L+1, T) their texts
    top_probs: np.ndarray        # (L+1, T) its probability
    next_probs: np.ndarray       # (L+1, T-1) probability each layer gives the token that really came next


@torch.no_grad()
def logit_lens(model: GPT, tokenizer, ids: Sequence[int]) -> LogitLens:
    ids = list(ids)[:model.config.block_size]
    if not ids:
        raise ConfigError("the probe text is empty.")
    device = next(model.parameters()).device
    idx = torch.tensor([ids], device=device)
    residuals: list[torch.Tensor] = []
    with eval_mode(model):
        model.hidden_states(idx, residuals=residuals)
        stream = torch.stack(residuals)[:, 0]                              # (L+1, T, C)
        probs = F.softmax(model.lm_head(model.transformer.ln_f(stream)).float(), dim=-1)  # (L+1, T, V)
    top_p, top_i = probs.max(-1)                                           # (L+1, T)
    nxt = torch.tensor(ids[1:], device=device)
    next_probs = probs[:, :-1].gather(-1, nxt.view(1, -1, 1).expand(probs.size(0), -1, 1))[..., 0]
    top_ids = top_i.cpu().numpy()
    return LogitLens(tokenizer.token_texts(ids), top_ids,
                     [tokenizer.token_texts(row.tolist()) for row in top_ids],
                     top_p.cpu().numpy(), next_probs.cpu().numpy())


@dataclass
class AttentionHistory:
    """One query token's attention over a run's snapshots: ``rows[s]`` is (n_layer, n_head, T) at
    ``steps[s]``. Snapshots of another probe text (changed mid-run) are left out and counted."""

    query: int
    tokens: list[str]
    steps: list[int]
    rows: np.ndarray             # (S, n_layer, n_head, T)
    skipped: int                 # snapshots of a different probe text


def attention_history(run_dir: str | Path, query: int) -> AttentionHistory:
    """The attention row of token ``query`` (negative: from the end) of the run's latest probe text,
    across its snapshots."""
    folder = ckpt.RunDir.open(Path(run_dir)).attention
    files = ckpt.list_attention(folder)
    if not files:
        raise ConfigError(f"{folder}: the run has no attention snapshots (training.attention_every = 0?).")
    snaps = [ckpt.load_attention(f) for f in files]
    _, last, tokens, ids = snaps[-1]
    T = len(ids)
    given, query = query, (query + T if query < 0 else query)
    if not 0 <= query < T:
        raise ConfigError(f"query token {given} is outside the probe text (tokens 0 to {T - 1}, or -1 to -{T} "
                          f"from the end).")
    keep = [(step, att) for step, att, _, i in snaps if i == ids]
    rows = np.stack([att[:, :, query, :] for _, att in keep])  # (S, L, H, T)
    return AttentionHistory(query, tokens, [s for s, _ in keep], rows, len(snaps) - len(keep))
