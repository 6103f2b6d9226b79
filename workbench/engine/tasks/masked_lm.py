"""BERT-style masked language modelling through the same trunk, attending both ways.

Of the positions chosen for prediction (``mask_prob``), 80% show the mask token, 10% a random
token and 10% the original; the loss counts only the chosen positions. Predictions use the tied
LM head, so the two LM objectives share the embedding.
"""

from __future__ import annotations

import torch

from .base import Task, TaskOutput


class MaskedLM(Task):
    kind = "masked_lm"

    def sample(self, split, batch_size, gen):
        x, _ = self.ctx.data.batch(split, batch_size, gen)  # (B, T)
        chosen = torch.rand(x.shape, generator=gen) < self.cfg.mask_prob
        chosen[:, 0] |= ~chosen.any(dim=1)  # at least one target per row keeps the loss defined
        y = torch.where(chosen, x, torch.full_like(x, -100))
        roll = torch.rand(x.shape, generator=gen)
        inp = x.clone()
        inp[chosen & (roll < 0.8)] = self.ctx.tokenizer.special_id("mask")
        randomise = chosen & (roll >= 0.8) & (roll < 0.9)
        vocab = self.ctx.tokenizer.vocab_size
        inp[randomise] = torch.randint(vocab, (int(randomise.sum()),), generator=gen)
        return {"x": inp, "y": y}

    def forward(self, model, batch):
        logits, loss = model(batch["x"], batch["y"], causal=False)
        target = batch["y"] != -100
        acc = (logits.argmax(-1)[target] == batch["y"][target]).float().mean().detach()
        return TaskOutput(loss, {"accuracy": acc})
