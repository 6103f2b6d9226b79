"""Loading a trained model for a page (Generate, Inside): in the background, on the CPU."""

from __future__ import annotations


def load_checkpoint(state, path: str, with_heads: bool = True):
    """The ``engine.loading.TrainedModel`` of a run folder (its latest checkpoint) or a checkpoint
    file. Task heads are left out when ``with_heads`` is False (a page that reads only the GPT)."""
    from workbench.engine.loading import load_trained

    return load_trained(path, "cpu", with_heads=with_heads)
