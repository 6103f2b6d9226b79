"""A GPT-2-style decoder-only transformer.

Token and learned position embeddings, pre-LayerNorm blocks, causal self-attention, a tied output
embedding, GPT-2 initialisation and GPT-2 parameter names (``transformer.h.0.attn.c_attn.weight``
...), so weights move to and from the GPT-2 layout by name.

Attention has two paths that compute the same function:
- the fast path, ``F.scaled_dot_product_attention``, used for training;
- the explicit path, softmax(q k^T / sqrt(d)) v written out, which also returns the weights of every
  layer and head; the attention view and probes use it.
Training uses the fast path unless ``GPT.attention_kernel`` is "explicit": on a CPU, at small block
sizes and in bf16, the written-out path is often the faster one (speed.py measures which).
Both can run causally (the GPT objective) or bidirectionally (masked LM), with an optional padding
mask over keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F

from .config import ModelConfig


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    dropout: float = 0.0
    bias: bool = True

    @classmethod
    def from_model_config(cls, cfg: ModelConfig, vocab_size: int) -> "GPTConfig":
        return cls(vocab_size=vocab_size, n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd,
                   block_size=cfg.block_size, dropout=cfg.dropout, bias=cfg.bias)


def attention_mask(T: int, causal: bool, padding_mask: torch.Tensor | None, device) -> torch.Tensor | None:
    """Boolean mask (B or 1, 1, T, T), True where a query may attend to a key; None if nothing is masked.

    padding_mask: (B, T), True for real tokens. Each position may always attend to itself, so a row
    is never empty (an all-masked row would make softmax NaN for padding queries).
    """
    if not causal and padding_mask is None:
        return None
    mask = torch.ones(T, T, dtype=torch.bool, device=device)
    if causal:
        mask = torch.tril(mask)
    mask = mask.view(1, 1, T, T)
    if padding_mask is not None:
        mask = mask & padding_mask.view(-1, 1, 1, T)
        mask = mask | torch.eye(T, dtype=torch.bool, device=device).view(1, 1, T, T)
    return mask


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v in one matmul
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        # (nh,) multipliers of each head's output, or None; interpret.knocked_out sets it to zero heads
        self.head_mask: torch.Tensor | None = None

    def forward(self, x, causal: bool = True, mask: torch.Tensor | None = None, explicit: bool = False):
        """x: (B, T, C). mask: from ``attention_mask`` (already includes causality when given).
        Returns (y, att) with att (B, nh, T, T) on the explicit path, else None."""
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        hs = C // self.n_head
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)
        att = None
        if explicit:
            scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))  # (B, nh, T, T)
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            att = F.softmax(scores, dim=-1)
            y = self.attn_dropout(att) @ v  # (B, nh, T, hs)
        else:
            p = self.dropout if self.training else 0.0
            if mask is None:
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=causal)
            else:
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        if self.head_mask is not None:
            y = y * self.head_mask.to(y.dtype).view(1, -1, 1, 1)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # re-assemble heads side by side
        return self.resid_dropout(self.c_proj(y)), att


class TanhGELU(nn.Module):
    """GPT-2's gelu, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). Under torch.compile it is written
    as x sigmoid(2 sqrt(2/pi) (...)), the same function (1e-15 apart in fp64), because inductor's CPU
    code for exp is about twice as fast as for tanh; eagerly, ATen's single kernel is the faster."""

    def forward(self, x):
        if torch.compiler.is_compiling():
            return gelu_tanh_as_sigmoid(x)
        return F.gelu(x, approximate="tanh")


def gelu_tanh_as_sigmoid(x):
    return x * torch.sigmoid(1.5957691216057308 * (x + 0.044715 * x * x * x))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = TanhGELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x, causal=True, mask=None, explicit=False):
        a, att = self.attn(self.ln_1(x), causal, mask, explicit)
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return x, att


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # tied input/output embedding
        # Task heads (classifiers, ...) on the shared trunk, by task name; empty for plain LM.
        self.heads = nn.ModuleDict()
        # how the training path computes attention: "sdpa" or "explicit" (the same function; speed.py)
        self.attention_kernel = "sdpa"
        self.apply(self.init_weights)
        # GPT-2: residual projections scaled down by depth so the residual stream's variance stays put
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def init_weights(module):
        """GPT-2's initialisation of one module (Linear, Embedding); task heads get it too."""
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    # -- forward passes ----------------------------------------------------------------------

    def hidden_states(self, idx, *, causal: bool = True, padding_mask=None, explicit: bool = False,
                      residuals: list | None = None):
        """The trunk: idx (B, T) -> final hidden states (B, T, C) after ln_f, and on the explicit path
        a list of per-layer attention weights, each (B, nh, T, T). ``residuals``, when given, receives
        the residual stream (B, T, C) after the embeddings and after each block (n_layer + 1 entries)."""
        B, T = idx.size()
        if T > self.config.block_size:
            raise ValueError(f"sequence of {T} tokens is longer than the context ({self.config.block_size})")
        pos = torch.arange(T, dtype=torch.long, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))  # (B, T, C)
        written_out = explicit or self.attention_kernel == "explicit"
        # The fast causal path needs no explicit mask (is_causal); everything else gets one.
        mask = None
        if written_out or padding_mask is not None or not causal:
            mask = attention_mask(T, causal, padding_mask, idx.device)
        maps = [] if explicit else None
        if residuals is not None:
            residuals.append(x)
        for block in self.transformer.h:
            x, att = block(x, causal, mask, written_out)
            if explicit:
                maps.append(att)
            if residuals is not None:
                residuals.append(x)
        return self.transformer.ln_f(x), maps

    def forward(self, idx, targets=None, *, causal: bool = True, padding_mask=None):
        """Logits (B, T, vocab) and, with targets (B, T; -100 = ignore), the mean cross-entropy."""
        h, _ = self.hidden_states(idx, causal=causal, padding_mask=padding_mask)
        logits = self.lm_head(h)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.view(-1), ignore_index=-100)
        return logits, loss

    @torch.no_grad()
    def attention_maps(self, idx, *, causal: bool = True, padding_mask=None):
        """Explicit path for probes: (logits (B, T, vocab), attention (n_layer, B, n_head, T, T))."""
        h, maps = self.hidden_states(idx, causal=causal, padding_mask=padding_mask, explicit=True)
        return self.lm_head(h), torch.stack(maps)

    # -- sizes -------------------------------------------------------------------------------

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameters, the tied embedding counted once; non_embedding drops both embedding tables."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.transformer.wpe.weight.numel() + self.transformer.wte.weight.numel()
        return n


@dataclass(frozen=True)
class ModelStats:
    params: int                 # all parameters, tied embedding once
    non_embedding_params: int
    flops_per_token: int        # training (forward + backward), incl. attention
    forward_flops_per_token: int
    param_bytes: int            # fp32 weights
    train_state_bytes: int      # weights + grads + AdamW moments, fp32

    def activation_bytes(self, config: GPTConfig, batch_size: int, bytes_per_value: int = 4, *,
                         scores: bool = True) -> int:
        """Rough activation memory of one training micro-batch (kept for backward). scores=False
        leaves out the attention scores (SDPA's fused kernels never hold them): a lower bound."""
        T, C, L, H = config.block_size, config.n_embd, config.n_layer, config.n_head
        # per layer and token: ~34*C values for norms, qkv, MLP (4C wide) and residuals, plus
        # 5*H*T for the attention scores on the explicit path (SDPA keeps far fewer)
        per_layer = batch_size * T * (34 * C + (5 * H * T if scores else 0)) * bytes_per_value // 2
        logits = batch_size * T * config.vocab_size * bytes_per_value * 2
        return L * per_layer + logits


def model_stats(config: GPTConfig) -> ModelStats:
    """Sizes computed from the config alone (no model built), for the model panel and the CLI."""
    C, L, T, V = config.n_embd, config.n_layer, config.block_size, config.vocab_size
    b = 1 if config.bias else 0
    per_block = (
        2 * C * (1 + b)                     # ln_1, ln_2
        + C * 3 * C + 3 * C * b             # c_attn
        + C * C + C * b                     # attn.c_proj
        + C * 4 * C + 4 * C * b             # mlp.c_fc
        + 4 * C * C + C * b                 # mlp.c_proj
    )
    non_emb = L * per_block + C * (1 + b)  # + ln_f
    params = non_emb + V * C + T * C
    # 2 FLOPs per multiply-add per weight forward, x3 with backward (the PaLM/nanoGPT convention);
    # attention scores q.k and mixing att.v add 2*T*C each per layer forward over a full context.
    matmul_params = non_emb + V * C  # the lm_head matmul counts; position lookups do not
    fwd = 2 * matmul_params + 4 * L * T * C
    return ModelStats(
        params=params,
        non_embedding_params=non_emb,
        flops_per_token=3 * fwd,
        forward_flops_per_token=fwd,
        param_bytes=4 * params,
        train_state_bytes=16 * params,
    )
