"""Loading a trained model for a page (Generate, Inside, Evaluate), in the background."""

from __future__ import annotations


def load_checkpoint(state, path: str, with_heads: bool = True, device: str = "cpu"):
    """The ``engine.loading.TrainedModel`` of a run folder (its latest checkpoint) or a checkpoint
    file. Task heads are left out when ``with_heads`` is False (a page that reads only the GPT).
    ``device`` is "cpu" (Generate and Inside share the machine with a live run) or "auto" (the best
    device here: Evaluate scores many prompts)."""
    from workbench.engine.device import resolve_device
    from workbench.engine.loading import load_trained

    return load_trained(path, resolve_device(device), with_heads=with_heads)
