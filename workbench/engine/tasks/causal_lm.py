"""Next-token prediction: the GPT objective."""

from __future__ import annotations

from .base import Task, TaskOutput


class CausalLM(Task):
    kind = "causal_lm"

    def sample(self, split, batch_size, gen):
        x, y = self.ctx.data.batch(split, batch_size, gen)  # (B, T), (B, T)
        return {"x": x, "y": y}

    def forward(self, model, batch):
        _, loss = model(batch["x"], batch["y"])
        return TaskOutput(loss)
