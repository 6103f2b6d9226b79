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
    ckpt.require_keys(meta, cpath, "experiment", "vocab_size")
    # machine=False: a run trained elsewhere (more cores) is still readable here
    exp = from_dict(meta["experiment"], source=f"{cpath} (experiment)", machine=False)
    tok_path = cpath.parent.parent / "tokenizer.json"
    if not tok_path.exists():
        raise CheckpointError(f"{cpath.parent.parent}: no tokenizer.json beside the checkpoints; the run folder "
                              f"is incomplete.")
    tokenizer = Tokenizer.load(tok_path)
    config = GPTConfig.from_model_config(exp.model, meta["vocab_size"])
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    heads = {k for k in state if k.startswith("heads.")}
    if not with_heads:
        state = {k: v for k, v in state.items() if k not in heads}
    head_shapes = {}
    for key in sorted(k for k in heads if k.endswith(".weight")) if with_heads else []:
        if state[key].dim() != 2:
            raise CheckpointError(f"{cpath}: task head {key} has shape {tuple(state[key].shape)}, not a matrix.",
                                  exit_code=1)
        head_shapes[key[len("heads."):-len(".weight")]] = tuple(state[key].shape)
    # The JSON's sizes are checked against the tensors before a model of that size is allocated.
    check_shapes(config, {k: tuple(v.shape) for k, v in state.items()}, cpath, heads=head_shapes)
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:  # sampling, scoring and exporting such weights give nan or garbage, not an answer
        raise CheckpointError(f"{cpath}: the weights hold NaN or infinite values ({', '.join(bad[:3])}"
                              f"{' ...' if len(bad) > 3 else ''}), as a run that diverged leaves them. Use an "
                              f"earlier checkpoint of the run (workbench train --resume RUN --from-step N continues "
                              f"from one).", exit_code=1)
    model = GPT(config)
    for name, (out_f, in_f) in head_shapes.items():  # every task head is one linear layer
        model.heads[name] = torch.nn.Linear(in_f, out_f, bias=f"heads.{name}.bias" in state)
    model.load_state_dict(state, strict=False)
    return TrainedModel(model.to(device).eval(), tokenizer, exp, int(meta["step"]), cpath)


def expected_shapes(config: GPTConfig, heads: dict[str, tuple[int, int]] | None = None,
                    bias_heads: set[str] = frozenset()) -> dict[str, tuple[int, ...]]:
    """Every parameter's shape for ``config``, from a model on the meta device (nothing allocated)."""
    with torch.device("meta"):
        model = GPT(config)
        for name, (out_f, in_f) in (heads or {}).items():
            model.heads[name] = torch.nn.Linear(in_f, out_f, bias=name in bias_heads)
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if k != "lm_head.weight"}


def check_shapes(config: GPTConfig, shapes: dict[str, tuple[int, ...]], where: Path, *,
                 heads: dict[str, tuple[int, int]] | None = None, describe: str = "its JSON") -> None:
    """Raise CheckpointError naming the first tensor (by name -> shape, as a safetensors header
    declares them) that is missing, unexpected or of another shape than ``config`` implies."""
    tensors = shapes
    bias_heads = {n for n in heads or {} if f"heads.{n}.bias" in tensors}
    blocks = {int(k.split(".")[2]) for k in tensors if k.startswith("transformer.h.") and k.split(".")[2].isdigit()}
    if len(blocks) != config.n_layer:
        raise CheckpointError(f"{where}: {describe} describes {config.n_layer} blocks (n_layer), the tensors hold "
                              f"{len(blocks)}.", exit_code=1)
    want = expected_shapes(config, heads, bias_heads)
    missing = sorted(want.keys() - tensors.keys())
    unexpected = sorted(tensors.keys() - want.keys() - {"lm_head.weight"})
    if missing or unexpected:
        raise CheckpointError(f"{where}: the tensors do not fit the model {describe} describes "
                              f"(missing {missing[:3]}, unexpected {unexpected[:3]}).", exit_code=1)
    for name, shape in want.items():
        have = tuple(tensors[name])
        if have != shape:
            raise CheckpointError(f"{where}: {name} has shape {have}, but {describe} implies {shape} "
                                  f"(n_layer {config.n_layer}, n_embd {config.n_embd}, vocabulary "
                                  f"{config.vocab_size}, block_size {config.block_size}).", exit_code=1)
