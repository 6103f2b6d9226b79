"""Sampling text from a GPT, one token at a time, with what each token attended to.

``generate`` is a generator: it yields a :class:`GeneratedToken` as soon as the token is sampled,
so a window can show text as it appears and a console can stream it. It works on any
:class:`~workbench.engine.model.GPT`: one loaded from a checkpoint or the live model of a paused
run (the model is put in eval mode for each step and given back in the mode it was in).

Every step runs the whole context again (no key/value cache): the models made here are small, and
the explicit attention path that records attention has no cache either. The context is the last
``block_size`` tokens.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .config import MAX_SEED, MAX_VOCAB, check_fields, setting
from .errors import Cancelled, ConfigError, TokenizerError
from .model import GPT
from .tokenizer import Tokenizer

ATTENTION_MODES = ("none", "last", "all")


MAX_TOKENS = 100_000  # without a key/value cache each token reruns the context: more would take hours


@dataclass(frozen=True)
class SamplingSettings:
    max_tokens: int = setting(200, "Tokens to generate.", min=0, max=MAX_TOKENS)
    temperature: float = setting(0.8, "0: greedy (always the most likely token); higher: more varied.",
                                 min=0.0, max=100.0)
    top_k: int = setting(0, "Keep only the k most likely tokens (0: all).", min=0, max=MAX_VOCAB)
    top_p: float = setting(1.0, "Keep the smallest set of tokens whose probability reaches p (1: all).",
                           min=0.0, max=1.0)
    seed: int | None = setting(0, "Random seed (None: not reproducible).", min=0, max=MAX_SEED)
    stop_at_eos: bool = setting(True, "End at <|endoftext|> (it is still yielded).")

    def check(self) -> None:
        """Every field against its limits (the command line's options use the same ones)."""
        check_fields(self)
        if self.top_p == 0.0:
            raise ConfigError(f"top_p = {self.top_p}: use a probability above 0 and at most 1 (1 = off).")


@dataclass
class GeneratedToken:
    id: int
    text: str                  # what the token stands for, for display (Tokenizer.token_texts)
    position: int              # index in the whole sequence, prompt included
    prob: float                # its probability under the sampling distribution (after temperature, top-k/p)
    model_prob: float          # its probability under the model itself (temperature 1, nothing cut)
    context_start: int         # sequence index of the first token the model saw (the window's start)
    attention: np.ndarray | None = None      # (T_ctx,) last layer, mean over heads: where it looked
    attention_all: np.ndarray | None = None  # (n_layer, n_head, T_ctx), when asked for


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module):
    """Eval mode (no dropout) for a while, then back to the mode the caller had (a paused run's model
    is in train mode and must stay so)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Set to -inf every logit outside the top-k and outside the top-p nucleus. logits: (..., V)."""
    if top_k and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]  # (..., 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        cum = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
        # drop a token when the ones before it already reach top_p; the most likely always stays
        drop_sorted = (cum - torch.softmax(sorted_logits, dim=-1)) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def _as_ids(prompt: str | Sequence[int], tokenizer: Tokenizer | None) -> list[int]:
    if isinstance(prompt, str):
        if tokenizer is None:
            raise TokenizerError("A text prompt needs a tokenizer; pass one, or pass token ids.")
        return tokenizer.encode(prompt)
    return [int(i) for i in prompt]


def _eos_id(tokenizer: Tokenizer | None) -> int | None:
    if tokenizer is None:
        return None
    try:
        return tokenizer.special_id("eos")
    except TokenizerError:
        return None


@torch.no_grad()
def generate(model: GPT, tokenizer: Tokenizer | None, prompt: str | Sequence[int],
             settings: SamplingSettings = SamplingSettings(), *, attention: str = "last",
             should_stop: Callable[[], bool] | None = None) -> Iterator[GeneratedToken]:
    """Yield up to ``settings.max_tokens`` sampled tokens, one at a time.

    attention: "none" (fastest), "last" (the last layer's attention, averaged over heads, from the
    position that produced the token) or "all" (also every layer and head). An empty prompt starts
    from <|endoftext|> when the tokenizer has one. ``should_stop()`` is asked before every token;
    when it says so, :class:`Cancelled` is raised.
    """
    settings.check()
    if attention not in ATTENTION_MODES:
        raise ConfigError(f"attention = {attention!r}: use one of {', '.join(ATTENTION_MODES)}.")
    ids = _as_ids(prompt, tokenizer)
    eos = _eos_id(tokenizer)
    if not ids:
        if eos is None:
            raise ConfigError("The prompt is empty and the tokenizer has no <|endoftext|> to start from; "
                              "type a few characters.")
        ids = [eos]
    device = next(model.parameters()).device
    gen = torch.Generator(device=device)
    if settings.seed is not None:
        gen.manual_seed(settings.seed)
    else:
        gen.seed()
    block = model.config.block_size
    for _ in range(settings.max_tokens):
        if should_stop is not None and should_stop():
            raise Cancelled("Generation was stopped.")
        start = max(0, len(ids) - block)
        idx = torch.tensor([ids[start:]], dtype=torch.long, device=device)  # (1, T)
        with eval_mode(model):
            h, maps = model.hidden_states(idx, explicit=attention != "none")
            logits = model.lm_head(h[:, -1, :]).float()[0]  # (V,) only the last position is needed
        model_probs = torch.softmax(logits, dim=-1)
        if settings.temperature == 0:
            next_id = int(torch.argmax(logits))
            probs = torch.zeros_like(model_probs)
            probs[next_id] = 1.0
        else:
            probs = torch.softmax(filter_logits(logits / settings.temperature, settings.top_k, settings.top_p), -1)
            next_id = int(torch.multinomial(probs, 1, generator=gen))
        tok = GeneratedToken(
            id=next_id, text=tokenizer.token_texts([next_id])[0] if tokenizer else str(next_id),
            position=len(ids), prob=float(probs[next_id]), model_prob=float(model_probs[next_id]),
            context_start=start,
        )
        if maps is not None:
            rows = torch.stack([m[0, :, -1, :] for m in maps]).float().cpu()  # (n_layer, n_head, T)
            tok.attention = rows[-1].mean(0).numpy()
            if attention == "all":
                tok.attention_all = rows.numpy()
        ids.append(next_id)
        yield tok
        if settings.stop_at_eos and next_id == eos:
            return


def generate_text(model: GPT, tokenizer: Tokenizer, prompt: str,
                  settings: SamplingSettings = SamplingSettings()) -> str:
    """The prompt's continuation as text (no attention recorded)."""
    out = [t.id for t in generate(model, tokenizer, prompt, settings, attention="none")]
    return tokenizer.decode(out)


class TextStream:
    """Turns token ids into text increments for a console: decodes everything generated so far and
    returns what is new, holding back a trailing partial UTF-8 character (byte-level tokens can
    split one) until the token that completes it arrives."""

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.shown = 0  # characters already returned

    def push(self, token_id: int) -> str:
        self.ids.append(token_id)
        text = self.tokenizer.decode(self.ids)
        if text.endswith("\ufffd"):
            return ""
        new, self.shown = text[self.shown:], len(text)
        return new

    def flush(self) -> str:
        text = self.tokenizer.decode(self.ids)
        new, self.shown = text[self.shown:], len(text)
        return new
