"""The window's start-up job: load torch and the engine off the GUI thread."""

from __future__ import annotations


def import_engine(state) -> dict:
    """Load torch and the engine modules that need it, off the GUI thread at start-up, and warm up
    what torch only loads on first use (building an AdamW imports torch._dynamo: ~4 s here; the
    first backward pass and optimizer step add more), so that Start starts at once. Returns what
    the forms need."""
    import importlib

    import torch

    from workbench.engine import device, model

    importlib.import_module("workbench.engine.trainer")  # what the run imports first, loaded now

    devices = [(d.id, d.label) for d in device.detect_devices()]
    try:
        with torch.random.fork_rng(devices=[]):
            tiny = model.GPT(model.GPTConfig(vocab_size=8, n_layer=1, n_head=1, n_embd=8, block_size=4))
            opt = torch.optim.AdamW(tiny.parameters(), lr=1e-3, fused=True)
            x = torch.zeros(1, 4, dtype=torch.long)
            _, loss = tiny(x, x)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(tiny.parameters(), 1.0)
            opt.step()
    except Exception:  # only a warm-up: a real run reports real problems
        pass
    return {"devices": devices}
