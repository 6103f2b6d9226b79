"""Open what a run produced: its model, tokenizer and experiment, ready for evaluation or fine-tuning."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from . import checkpoint as ckpt
from .config import Experiment, from_dict
from .errors import CheckpointError
from .model import GPT, GPTConfig
from .tokenizer import Tokenizer


@dataclass
class TrainedModel:
    model: GPT
    tokenizer: Tokenizer
    experiment: Experiment
    step: int
    path: Path            # the checkpoint's .json


def checkpoint_of(path: str | Path) -> Path:
    """A run folder -> its latest checkpoint; a checkpoint .json/.safetensors -> itself."""
    path = Path(path)
    if path.is_dir():
        return ckpt.RunDir.open(path).latest_checkpoint()
    if path.suffix in (".json", ".safetensors") and path.with_suffix(".json").exists():
        return path.with_suffix(".json")
    raise CheckpointError(f"{path}: neither a run folder nor a checkpoint (.json with its .safetensors).")


def load_trained(path: str | Path, device: str | torch.device = "cpu", *, with_heads: bool = True) -> TrainedModel:
    """Rebuild the GPT of a run folder or checkpoint. Task heads are restored when with_heads."""
    cpath = checkpoint_of(path)
    tensors, meta = ckpt.load_checkpoint(cpath)
    exp = from_dict(meta["experiment"], source=str(cpath))
    tok_path = cpath.parent.parent / "tokenizer.json"
    if not tok_path.exists():
        raise CheckpointError(f"{cpath.parent.parent}: no tokenizer.json beside the checkpoints; the run folder "
                              f"is incomplete.")
    tokenizer = Tokenizer.load(tok_path)
    model = GPT(GPTConfig.from_model_config(exp.model, meta["vocab_size"]))
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    heads = {k for k in state if k.startswith("heads.")}
    if with_heads:
        # Every task head is one linear layer: its shape is in the tensors, no data needed.
        for key in sorted(k for k in heads if k.endswith(".weight")):
            name = key[len("heads."):-len(".weight")]
            out_f, in_f = state[key].shape
            model.heads[name] = torch.nn.Linear(in_f, out_f, bias=f"heads.{name}.bias" in state)
    else:
        state = {k: v for k, v in state.items() if k not in heads}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if [m for m in missing if m != "lm_head.weight"] or unexpected:
        raise CheckpointError(f"{cpath}: tensors do not fit the model described by its config "
                              f"(missing {missing[:3]}, unexpected {unexpected[:3]}).")
    return TrainedModel(model.to(device).eval(), tokenizer, exp, int(meta["step"]), cpath)
