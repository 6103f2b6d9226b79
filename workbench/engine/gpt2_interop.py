"""Moving models to and from the layout of Hugging Face ``transformers``' GPT-2.

A GPT-2 folder holds ``config.json``, ``model.safetensors`` and ``tokenizer.json``. Our GPT already
uses GPT-2's parameter names; two things differ:

- GPT-2 computes its projections with ``Conv1D``, which stores a weight as (in, out); our
  ``nn.Linear`` stores (out, in). The c_attn, c_proj and c_fc weights are transposed both ways.
- GPT-2 always has biases. A model built with ``bias = False`` is exported with zero biases, which
  computes the same function.

Task heads (``model.heads``) have no place in GPT-2's layout and are left out of an export.

Importing reads only safetensors and JSON, never pickle (``pytorch_model.bin``): a pickle can run
code when loaded. Nothing is downloaded; point it at a local copy (gpt2, distilgpt2, ...).
``import_gpt2`` writes a run folder like one training writes (step 0), so evaluation, generation
and fine-tuning take it like any other run.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save as save_torch_bytes

from . import checkpoint as ckpt
from . import ownership
from .config import MAX_VOCAB, Experiment, ModelConfig, TokenizerConfig, check_range, from_dict
from .errors import CheckpointError, ConfigError, TokenizerError
from .model import GPT, GPTConfig
from .tokenizer import SPECIAL_TOKENS, Tokenizer

# Weights that GPT-2 keeps as Conv1D (in, out), suffixes of their names
_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
# Buffers some GPT-2 files carry: the causal mask, not parameters
_BUFFERS = (".attn.bias", ".attn.masked_bias")


def _is_conv1d(name: str) -> bool:
    return name.endswith(_CONV1D)


# -- growing the vocabulary -----------------------------------------------------------------------


@torch.no_grad()
def grow_embeddings(model: GPT, new_vocab_size: int) -> GPT:
    """Give the (tied) token embedding ``new_vocab_size`` rows, keeping the old rows as they are.

    New rows start at the mean of the old ones: the new tokens' logits then start near the
    average token's instead of at arbitrary values, which disturbs the model's predictions least
    (Hewitt 2021, "Initializing new word embeddings for pretrained language models").
    """
    old = model.transformer.wte.weight
    V, C = old.shape
    if new_vocab_size < V:
        raise CheckpointError(f"cannot shrink the vocabulary from {V} to {new_vocab_size} tokens.")
    if new_vocab_size == V:
        return model
    wte = torch.nn.Embedding(new_vocab_size, C, device=old.device, dtype=old.dtype)
    wte.weight[:V] = old
    wte.weight[V:] = old.mean(0, keepdim=True)
    lm_head = torch.nn.Linear(C, new_vocab_size, bias=False, device=old.device, dtype=old.dtype)
    lm_head.weight = wte.weight  # keep the tie
    wte.weight.requires_grad_(old.requires_grad)
    model.transformer.wte, model.lm_head = wte, lm_head
    model.config = dataclasses.replace(model.config, vocab_size=new_vocab_size)
    return model


# -- export ---------------------------------------------------------------------------------------


def gpt2_config(config: GPTConfig, tokenizer: Tokenizer | None = None) -> dict:
    """config.json for ``config`` with the keys GPT2Config reads."""
    eos = bos = None
    if tokenizer is not None:
        ids = {role: _maybe_id(tokenizer, role) for role in ("bos", "eos")}
        eos = ids["eos"]
        bos = ids["bos"] if ids["bos"] is not None else eos  # GPT-2 uses <|endoftext|> for both
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": config.vocab_size,
        "n_positions": config.block_size,
        "n_ctx": config.block_size,  # older readers look for this name
        "n_embd": config.n_embd,
        "n_layer": config.n_layer,
        "n_head": config.n_head,
        "n_inner": None,  # 4 * n_embd
        "activation_function": "gelu_new",  # the tanh approximation our MLP uses
        "layer_norm_epsilon": 1e-5,
        "resid_pdrop": config.dropout,
        "embd_pdrop": config.dropout,
        "attn_pdrop": config.dropout,
        "initializer_range": 0.02,
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "tie_word_embeddings": True,
        "use_cache": True,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "torch_dtype": "float32",
    }


def _maybe_id(tokenizer: Tokenizer, role: str) -> int | None:
    try:
        return tokenizer.special_id(role)
    except TokenizerError:
        return None


def gpt2_state_dict(model: GPT) -> dict[str, torch.Tensor]:
    """Our weights under GPT2LMHeadModel's names, Conv1D weights transposed, missing biases as
    zeros; without task heads and without lm_head.weight (tied to wte, as GPT-2 files store it)."""
    out = {}
    for name, t in model.state_dict().items():
        if name.startswith("heads.") or name == "lm_head.weight":
            continue
        out[name] = t.t() if _is_conv1d(name) else t
    if not model.config.bias:  # GPT-2 has a bias wherever we have a LayerNorm or Linear
        for name, module in model.named_modules():
            if name.startswith("heads") or name == "lm_head":
                continue
            if isinstance(module, (torch.nn.Linear, torch.nn.LayerNorm)) and f"{name}.bias" not in out:
                width = module.weight.shape[0] if isinstance(module, torch.nn.Linear) else module.normalized_shape[0]
                out[f"{name}.bias"] = torch.zeros(width, dtype=module.weight.dtype)
    return {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in out.items()}


EXPORT_MARK = "gpt-workbench"  # in model.safetensors' metadata: how an earlier export is recognised
EXPORT_FILES = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}


def _earlier_export(folder: Path) -> bool:
    """Only files export writes, and a model.safetensors that export wrote."""
    names = {p.name for p in folder.iterdir() if not ownership.TEMP_FILE.match(p.name)}
    if not names <= EXPORT_FILES or "model.safetensors" not in names:
        return False
    try:
        with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
            return (f.metadata() or {}).get("exported_by") == EXPORT_MARK
    except Exception:  # a damaged or foreign file: not ours
        return False


def check_export_folder(out: Path) -> None:
    ownership.check_output(Path(out), "GPT-2 export", own_folder=_earlier_export)


def export_gpt2(model: GPT, tokenizer: Tokenizer, out_dir: str | Path) -> Path:
    """Write ``out_dir`` with config.json, model.safetensors, tokenizer.json and a
    tokenizer_config.json, loadable by ``GPT2LMHeadModel.from_pretrained(out_dir)``. ``out_dir``: a
    new or empty folder, or an earlier export (replaced); never inside a run folder."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"{out}: is a file, not a folder; give a new or empty folder to export to.")
    check_export_folder(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a parent that is a file, no permission
        raise CheckpointError(f"{out}: cannot create the folder ({e.strerror}); give a new or empty folder "
                              f"to export to.") from None
    if tokenizer.vocab_size > model.config.vocab_size:
        raise CheckpointError(f"the tokenizer has {tokenizer.vocab_size} tokens but the model only "
                              f"{model.config.vocab_size} embedding rows; they do not belong together.")
    # "format": "pt" is what transformers checks before it reads a safetensors file
    tensors = save_torch_bytes(gpt2_state_dict(model), metadata={"format": "pt", "exported_by": EXPORT_MARK})
    ckpt.atomic_write_bytes(out / "model.safetensors", tensors)
    ckpt.atomic_write_json(out / "config.json", gpt2_config(model.config, tokenizer))
    tokenizer.save(out / "tokenizer.json")
    specials = {role: SPECIAL_TOKENS[role] for role in ("bos", "eos", "pad", "unk")
                if _maybe_id(tokenizer, role) is not None}
    ckpt.atomic_write_json(out / "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": model.config.block_size,
        **{f"{role}_token": text for role, text in specials.items()},
    })
    return out


def export_run(run_dir: str | Path, out_dir: str | Path) -> Path:
    """Export the latest checkpoint of a run folder (or a checkpoint file) to the GPT-2 layout."""
    from .loading import load_trained

    check_export_folder(Path(out_dir))  # before loading the model
    trained = load_trained(run_dir, with_heads=False)
    return export_gpt2(trained.model, trained.tokenizer, out_dir)


# -- import ---------------------------------------------------------------------------------------


def _config_number(cfg: dict, key: str, default, meta: dict, path: Path, *, typ=int):
    """One size from config.json, checked for type and range before anything is built from it."""
    value = cfg.get(key, default)
    ok = isinstance(value, int) if typ is int else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok:
        kind = "a whole number" if typ is int else "a number"
        raise CheckpointError(f"{path}: {key} must be {kind}, got {json.dumps(value)[:60]}.", exit_code=1)
    try:
        return check_range(typ(value), key, meta, str(path))
    except ConfigError as e:
        raise CheckpointError(str(e), exit_code=1) from None


def read_gpt2_config(folder: Path) -> tuple[GPTConfig, float]:
    """Our GPTConfig from a GPT-2 config.json, and its dropout; refuses variants we do not compute.
    Every size is checked (type, range) here: nothing is allocated from an unchecked number."""
    path = folder / "config.json"
    try:
        cfg = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{folder}: no config.json; give the folder of a GPT-2-style model "
                              f"(config.json, model.safetensors, tokenizer.json).") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot be read ({e.strerror}).") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
        raise CheckpointError(f"{path}: not valid JSON ({e}).", exit_code=1) from None
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{path}: a JSON {type(cfg).__name__}, not an object of settings.", exit_code=1)
    if cfg.get("model_type", "gpt2") != "gpt2":
        raise CheckpointError(f"{path}: model_type {cfg.get('model_type')!r}; only GPT-2-style models "
                              f"(model_type \"gpt2\") can be imported.")
    limits = {f.name: f.metadata for f in dataclasses.fields(ModelConfig)}
    n_layer = _config_number(cfg, "n_layer", 12, limits["n_layer"], path)
    n_head = _config_number(cfg, "n_head", 12, limits["n_head"], path)
    n_embd = _config_number(cfg, "n_embd", 768, limits["n_embd"], path)
    positions = "n_positions" if "n_positions" in cfg or "n_ctx" not in cfg else "n_ctx"
    block_size = _config_number(cfg, positions, 1024, limits["block_size"], path)
    vocab_size = _config_number(cfg, "vocab_size", 50257, {"min": 1, "max": MAX_VOCAB}, path)
    dropout = _config_number(cfg, "resid_pdrop", 0.1, limits["dropout"], path, typ=float)
    epsilon = _config_number(cfg, "layer_norm_epsilon", 1e-5, {"min": 0.0}, path, typ=float)
    if n_embd % n_head:
        raise CheckpointError(f"{path}: n_embd {n_embd} is not divisible by n_head {n_head}.", exit_code=1)
    checks = [
        (cfg.get("activation_function", "gelu_new") in ("gelu_new", "gelu_pytorch_tanh"),
         f"activation_function {cfg.get('activation_function')!r} (only gelu_new)"),
        (cfg.get("n_inner") in (None, 4 * n_embd), f"n_inner {cfg.get('n_inner')} (only 4 * n_embd)"),
        (math.isclose(epsilon, 1e-5), f"layer_norm_epsilon {epsilon} (only 1e-5)"),
        (cfg.get("scale_attn_weights", True), "scale_attn_weights false"),
        (not cfg.get("scale_attn_by_inverse_layer_idx", False), "scale_attn_by_inverse_layer_idx"),
        (not cfg.get("add_cross_attention", False), "cross-attention"),
        (cfg.get("tie_word_embeddings", True), "untied input and output embeddings"),
    ]
    unsupported = [what for ok, what in checks if not ok]
    if unsupported:
        raise CheckpointError(f"{path}: this GPT-2 variant computes something our GPT does not: "
                              f"{'; '.join(unsupported)}.")
    config = GPTConfig(vocab_size=vocab_size, n_layer=n_layer, n_head=n_head, n_embd=n_embd,
                       block_size=block_size, dropout=dropout, bias=True)
    return config, dropout


def _tensor_files(folder: Path) -> list[Path]:
    """model.safetensors, or the shards a model.safetensors.index.json lists."""
    index = folder / "model.safetensors.index.json"
    if index.exists():
        try:
            names = json.loads(index.read_bytes().decode("utf-8"))["weight_map"].values()
            files = sorted(set(names))
            if not all(isinstance(n, str) and n and Path(n).name == n for n in files):
                raise ValueError("weight_map must name files in the same folder")
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
            raise CheckpointError(f"{index}: not a usable index of tensor files ({type(e).__name__}: {e}); "
                                  f"it must be JSON with a \"weight_map\" of tensor name -> file name.",
                                  exit_code=1) from None
        return [folder / n for n in files]
    if (folder / "model.safetensors").exists():
        return [folder / "model.safetensors"]
    pickled = [p.name for p in folder.glob("*.bin")]
    hint = (f" It has {', '.join(pickled)}: pickle files, which can run code when opened, are not read; "
            f"convert it to safetensors first (transformers: save_pretrained(..., "
            f"safe_serialization=True)).") if pickled else ""
    raise CheckpointError(f"{folder}: no model.safetensors.{hint}")


def _our_name(key: str) -> str:
    return key if key.startswith(("transformer.", "lm_head.")) else f"transformer.{key}"


def _declared_shapes(files: list[Path]) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape under our names (Conv1D weights transposed), read from the files'
    headers only: no tensor is loaded."""
    shapes = {}
    for path in files:
        try:
            with safe_open(str(path), framework="pt") as f:
                for key in f.keys():
                    name = _our_name(key)
                    if not name.endswith(_BUFFERS):
                        shape = tuple(f.get_slice(key).get_shape())
                        shapes[name] = shape[::-1] if _is_conv1d(name) else shape
        except Exception as e:  # safetensors has its own error types for damaged files
            raise CheckpointError(f"{path}: cannot read tensors ({e}).", exit_code=1) from None
    return shapes


def _read_tensors(files: list[Path]) -> dict[str, torch.Tensor]:
    tensors = {}
    for path in files:
        try:
            with safe_open(str(path), framework="pt") as f:
                for key in f.keys():
                    tensors[key] = f.get_tensor(key)
        except Exception as e:  # safetensors has its own error types for damaged files
            raise CheckpointError(f"{path}: cannot read tensors ({e}).", exit_code=1) from None
    return tensors


def load_gpt2(folder: str | Path, *, add_special_tokens: bool = True) -> tuple[GPT, Tokenizer]:
    """Build our GPT and tokenizer from a GPT-2-style folder (in memory; nothing is written).

    config.json's sizes are checked against the shapes the tensor files declare before anything
    is allocated, so a config.json with absurd sizes beside a small file costs nothing.
    With add_special_tokens, the roles of SPECIAL_TOKENS the tokenizer lacks (GPT-2 has only
    <|endoftext|>) are added after its last id and the embedding grows to match, old rows kept.
    """
    from .loading import check_shapes

    folder = Path(folder)
    config, _ = read_gpt2_config(folder)
    files = _tensor_files(folder)
    shapes = _declared_shapes(files)
    wte = shapes.get("transformer.wte.weight")
    if wte is not None and len(wte) == 2 and wte[0] != config.vocab_size and 0 < wte[0] <= MAX_VOCAB:
        config = dataclasses.replace(config, vocab_size=wte[0])  # the tensors decide the vocabulary
    lm_head = shapes.pop("lm_head.weight", None)
    check_shapes(config, shapes, folder / "config.json", describe="config.json")
    if lm_head is not None and lm_head != wte:
        raise CheckpointError(f"{folder}: lm_head.weight has shape {lm_head}, the token embedding {wte}; only "
                              f"models with tied input and output embeddings (as GPT-2) can be imported.")
    state = {}
    for key, t in _read_tensors(files).items():
        name = _our_name(key)
        if name.endswith(_BUFFERS):
            continue
        state[name] = t.t() if _is_conv1d(name) else t
    lm_head = state.pop("lm_head.weight", None)
    if lm_head is not None and not torch.equal(lm_head, state["transformer.wte.weight"]):
        raise CheckpointError(f"{folder}: lm_head.weight differs from the token embedding; only models "
                              f"with tied input and output embeddings (as GPT-2) can be imported.")
    model = GPT(config)
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)

    tokenizer = Tokenizer.load(folder / "tokenizer.json")
    if add_special_tokens:
        tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    if tokenizer.vocab_size > model.config.vocab_size:
        grow_embeddings(model, tokenizer.vocab_size)
    return model.eval(), tokenizer


def import_gpt2(folder: str | Path, out_run_dir: str | Path, *, name: str | None = None) -> Path:
    """Import a GPT-2-style folder as a run folder (config.toml, tokenizer.json, a step-0 checkpoint).

    The experiment in it describes the imported model and points its tokenizer at the run's own
    tokenizer.json, so a fine-tuning experiment made from it keeps the imported vocabulary; its
    corpus is the default one, to be replaced by whatever the model is trained on next.
    """
    folder = Path(folder)
    out = Path(out_run_dir)
    ownership.check_output(out, "imported run", own_folder=lambda _p: False)  # a new or empty folder only
    model, tokenizer = load_gpt2(folder)
    lock = ownership.claim_run_folder(out)  # held while writing: a second import or train into it refuses
    try:
        run = ckpt.RunDir.create(out, checked=True)
        c = model.config
        base = Experiment()
        exp = base.replace(
            name=name or folder.resolve().name or "gpt2",
            model=ModelConfig(n_layer=c.n_layer, n_head=c.n_head, n_embd=c.n_embd, block_size=c.block_size,
                              dropout=c.dropout, bias=True),
            tokenizer=TokenizerConfig(kind=tokenizer.kind, vocab_size=tokenizer.vocab_size,
                                      path=str(run.tokenizer.resolve())),
        )
        exp = from_dict(exp.to_dict(), source=str(folder))  # the same checks as a TOML file gets
        exp.save(run.config)
        tokenizer.save(run.tokenizer)
        tensors = {f"model.{k}": v for k, v in model.state_dict().items() if k != "lm_head.weight"}
        meta = {
            "step": 0, "tokens": 0, "elapsed": 0.0, "experiment": exp.to_dict(), "vocab_size": c.vocab_size,
            "optimizer": {"steps": {}}, "scaler": {}, "last_val_loss": None,
            "imported_from": {"path": str(folder.resolve()), "layout": "gpt2"},
        }
        ckpt.save_checkpoint(run.checkpoint_path(0), tensors, meta)
    finally:
        lock.release()
    return run.path
