"""A model whose insides are known, for the interpretability tests: one layer, two heads, trained to
repeat a sequence of P random tokens, so one head learns to look P-1 tokens back and copy."""

import torch

from workbench.engine.model import GPT, GPTConfig
from workbench.engine.tokenizer import train_tokenizer

P, V = 8, 16  # sequences are P random tokens, then the same P again; V = the tokenizer's vocabulary


def copy_batch(gen: torch.Generator, n: int) -> torch.Tensor:
    x = torch.randint(7, V, (n, P), generator=gen)  # ids 0-6 are the tokenizer's special tokens
    return torch.cat([x, x], 1)                       # (n, 2P)


def copied_positions() -> list[int]:
    """Indices into the (T-1,) per-token losses whose target is a copy: predicting tokens P..2P-1."""
    return list(range(P - 1, 2 * P - 1))


def train_copy_model(steps: int = 500) -> GPT:
    torch.manual_seed(1)
    gen = torch.Generator().manual_seed(1)
    model = GPT(GPTConfig(vocab_size=V, n_layer=1, n_head=2, n_embd=32, block_size=2 * P))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    for _ in range(steps):
        x = copy_batch(gen, 64)
        _, loss = model(x[:, :-1], x[:, 1:].contiguous())
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return model


def copy_tokenizer():
    """Char tokenizer whose ids 7..15 are the letters a..i (the probe "hbacgfeihbacgfei" is a copy)."""
    return train_tokenizer("char", V, ["abcdefghijklmnop"])


def copy_head(model: GPT, texts: torch.Tensor) -> int:
    """The head that attends from each copied position to the token it copies (found from the
    attention pattern, not from an ablation)."""
    _, att = model.attention_maps(texts)  # (L, B, H, T, T)
    rows = torch.tensor(copied_positions())
    share = torch.stack([att[0, :, h, rows, rows + 1 - P].mean() for h in range(model.config.n_head)])
    assert share.max() > 0.7, f"no copy head formed: {share}"
    return int(share.argmax())
