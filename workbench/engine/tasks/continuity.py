"""Sentence continuity: does segment B really follow segment A in the corpus?

Input, GPT-1 style: bos + A + delim + B + extract; a linear head reads the final hidden state at
the extract token. Each batch is exactly half positives (B is the text right after A) and half
negatives (B comes from a random place at least one window away), in random order.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .base import Task, TaskOutput, accuracy


class Continuity(Task):
    kind = "continuity"

    def __init__(self, cfg, ctx):
        super().__init__(cfg, ctx)
        self.seg = (ctx.block_size - 3) // 2  # tokens per segment
        if self.seg < 2:
            from ..errors import ConfigError

            raise ConfigError("The continuity task needs model.block_size >= 7 (two segments of 2 tokens "
                              "plus bos, delim and extract).")

    def build_head(self):
        return nn.Linear(self.ctx.n_embd, 2)

    def sample(self, split, batch_size, gen):
        data = self.ctx.data.split(split)
        S, n = self.seg, len(self.ctx.data.split(split))
        tok = self.ctx.tokenizer
        bos, delim, ext = tok.special_id("bos"), tok.special_id("delim"), tok.special_id("extract")
        labels = torch.zeros(batch_size, dtype=torch.long)
        labels[: batch_size // 2] = 1
        labels = labels[torch.randperm(batch_size, generator=gen)]
        starts = torch.randint(n - 2 * S, (batch_size,), generator=gen)
        # a negative's B starts anywhere except the window [a - S, a + 2S): never the true follower
        offsets = torch.randint(n - 4 * S, (batch_size,), generator=gen)
        rows = []
        for a, off, label in zip(starts.tolist(), offsets.tolist(), labels.tolist()):
            b = a + S if label else (off if off < a - S else off + 3 * S)
            b = min(b, n - S)
            rows.append([bos, *data[a:a + S].tolist(), delim, *data[b:b + S].tolist(), ext])
        return {"x": torch.tensor(rows, dtype=torch.long), "label": labels}

    def forward(self, model, batch):
        h, _ = model.hidden_states(batch["x"])  # (B, T, C); causal: the extract token has seen A and B
        logits = self.head(model)(h[:, -1])     # (B, 2)
        return TaskOutput(F.cross_entropy(logits.float(), batch["label"]), {"accuracy": accuracy(logits, batch["label"])})
