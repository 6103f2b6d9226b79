"""An experiment as frozen dataclasses, loaded from and saved to TOML.

The TOML file is the experiment: the GUI builds one of these from its forms, the CLI reads one
from disk, and a run folder keeps the exact copy it trained with. Every field carries its help
text and limits in ``metadata`` so that validation, ``--help``-style listings and GUI tooltips
all read the same source.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from .errors import CheckpointError, ConfigError, did_you_mean


def _f(default, help: str, *, choices=None, min=None, max=None, machine=False, factory=None):
    """A dataclass field with help text and limits kept in its metadata.

    ``machine``: the maximum is what this machine can do (computed at import), so it is checked
    when the setting is about to be used here, not when a run folder made elsewhere is only read.
    """
    meta = {"help": help, "choices": choices, "min": min, "max": max, "machine": machine}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


setting = _f  # the public name, for settings outside this module (generate's SamplingSettings)

# -- limits ---------------------------------------------------------------------------------------
# Every number a person can type has a range, so a typo fails with its name instead of crashing
# the process (100000 OpenMP threads segfault), overflowing a C integer (seeds) or running forever.

CORES = os.cpu_count() or 1
# More threads than cores only slows PyTorch's CPU kernels down; 4x leaves room for an experiment
# written on a somewhat bigger machine and stays far below where OpenMP fails.
MAX_THREADS = 4 * CORES
MAX_SEED = 2**63 - 1          # torch seeds are 64-bit; validation adds small offsets to the seed
MAX_STEPS = 10**9             # steps, intervals, warmup: beyond this a run would never end
MAX_BATCH = 1 << 20           # sequences per micro-batch; memory is checked separately (trainer)
MAX_VOCAB = 1 << 20           # token ids; the largest tokenizer we train has 262144
MAX_COUNT = 10**9             # counts of examples, evaluation batches, kept checkpoints


@dataclass(frozen=True)
class CorpusConfig:
    paths: tuple[str, ...] = _f(
        None,
        'Files or folders to read (.txt .md .jsonl .csv .tsv), or built-in corpora as '
        '"builtin:NAME" (toy, stdlib).',
        factory=lambda: ("builtin:toy",),
    )
    glob: str = _f("**/*", "Which files to take from a folder (recursive glob pattern).")
    text_field: str = _f("text", "The JSONL field or CSV/TSV column that holds the text.")
    encoding_errors: str = _f(
        "strict",
        'What to do with bytes that are not UTF-8: "strict" stops with the byte offset, '
        '"replace" substitutes U+FFFD.',
        choices=("strict", "replace"),
    )
    val_fraction: float = _f(0.1, "Share of the tokens held out for validation.", min=0.0, max=0.5)
    window_start: str = _f(
        "anywhere", 'Where a training or validation window (a causal_lm or masked_lm task\'s context) may '
        'start: "anywhere" (any token) or "line" (the first token of a line, so each line\'s parts sit at '
        'the same positions in every window: lines of a fixed shape, such as the demo\'s, are then learned '
        'within a few hundred steps). "line" needs a corpus with line breaks.',
        choices=("anywhere", "line"),
    )


@dataclass(frozen=True)
class TokenizerConfig:
    kind: str = _f(
        "char",
        "char: one token per character; bpe: byte-level BPE (GPT-2 style); wordpiece (BERT "
        "style); unigram (SentencePiece style).",
        choices=("char", "bpe", "wordpiece", "unigram"),
    )
    vocab_size: int = _f(
        512, "Largest vocabulary to learn (char takes every character it sees, up to this).",
        min=16, max=262144,
    )
    path: str = _f("", "Use this tokenizer.json instead of training one.")


@dataclass(frozen=True)
class ModelConfig:
    n_layer: int = _f(4, "Transformer blocks.", min=1, max=96)
    n_head: int = _f(4, "Attention heads per block; must divide n_embd.", min=1, max=128)
    n_embd: int = _f(128, "Width of the residual stream.", min=8, max=16384)
    block_size: int = _f(64, "Context length in tokens.", min=2, max=32768)
    dropout: float = _f(0.0, "Dropout probability in attention and MLP.", min=0.0, max=0.9)
    bias: bool = _f(True, "Biases in linear layers and LayerNorms (GPT-2 has them).")


@dataclass(frozen=True)
class TrainingConfig:
    max_steps: int = _f(2000, "Optimizer steps to train for.", min=1, max=MAX_STEPS)
    batch_size: int = _f(12, "Sequences per micro-batch.", min=1, max=MAX_BATCH)
    grad_accum_steps: int = _f(1, "Micro-batches summed into one optimizer step.", min=1, max=65536)
    learning_rate: float = _f(1e-3, "Peak learning rate after warmup.", min=0.0, max=10.0)
    min_lr: float = _f(1e-4, "Learning rate at the end of the cosine decay.", min=0.0, max=10.0)
    warmup_steps: int = _f(100, "Steps of linear warmup: step k of the first warmup_steps trains at "
                           "learning_rate * k / warmup_steps (near 0 at step 1, the full rate at step "
                           "warmup_steps), then the cosine decay.", min=0, max=MAX_STEPS)
    lr_decay_steps: int = _f(0, "Step where cosine decay reaches min_lr (0: max_steps).", min=0, max=MAX_STEPS)
    weight_decay: float = _f(0.1, "AdamW weight decay on matrices (not biases, norms).", min=0.0, max=10.0)
    beta1: float = _f(0.9, "AdamW beta1.", min=0.0, max=0.999999)
    beta2: float = _f(0.99, "AdamW beta2.", min=0.0, max=0.999999)
    grad_clip: float = _f(1.0, "Clip the gradient norm to this (0: no clipping).", min=0.0, max=1e6)
    divergence_factor: float = _f(
        2.0, "Stop the run as diverged when the smoothed training loss (moving average, ~10 steps) stays "
        "above max(divergence_factor x its lowest value, lowest + divergence_margin) for divergence_steps "
        "steps in a row after warmup; the message names the last checkpoint written inside that band, "
        "which is never pruned (0: never stop; a NaN or infinite loss or gradient always stops).",
        min=0.0, max=1e6)
    divergence_margin: float = _f(1.0, "See divergence_factor: the least rise (in loss units) that counts.",
                                  min=0.0, max=1e6)
    divergence_steps: int = _f(20, "See divergence_factor: out-of-band steps in a row that mean diverged.",
                               min=1, max=MAX_STEPS)
    eval_every: int = _f(250, "Evaluate on validation data every N steps (0: only at the end).", min=0,
                         max=MAX_STEPS)
    eval_batches: int = _f(20, "Validation batches per evaluation.", min=1, max=100_000)
    checkpoint_every: int = _f(500, "Save a checkpoint every N steps (0: only at the end).", min=0,
                               max=MAX_STEPS)
    keep_checkpoints: int = _f(3, "How many periodic checkpoints to keep on disk.", min=1, max=MAX_COUNT)
    attention_every: int = _f(100, "Snapshot attention on the probe text every N steps (0: never).", min=0,
                              max=MAX_STEPS)
    probe_text: str = _f("", "Text whose attention is recorded (empty: the start of validation data).")
    seed: int = _f(1337, "Random seed for weights, batches and dropout.", min=0, max=MAX_SEED)
    device: str = _f("auto", 'auto, cpu, cuda, cuda:N or mps ("auto": CUDA, then MPS, then CPU).')
    precision: str = _f(
        "auto", "auto (bf16 where the GPU supports it, fp16 + grad scaler on other GPUs; on a CPU with "
        "bf16 instructions (AVX512-BF16, AMX) bf16 only where a short measured probe finds it faster, "
        "else fp32), fp32, bf16 or fp16 (fp16 also runs on the CPU, slowly: it is there to test the "
        "loss scaler).",
        choices=("auto", "fp32", "bf16", "fp16"),
    )
    compile: str = _f(
        "auto", "torch.compile the model (inductor; on a CPU it needs a C++ compiler): auto compiles "
        "where a short measured probe on this machine and model shape finds it faster (the result is "
        "cached), on always tries, off never. A failed compile falls back to eager with a message.",
        choices=("auto", "on", "off"),
    )
    attention: str = _f(
        "auto", "How the training step computes attention (the same function either way): sdpa, PyTorch's "
        "fused kernel; explicit, softmax(q k^T / sqrt(d)) v written out (on a CPU at small block sizes, "
        "and in bf16, often the faster); auto, whichever the measured probe finds faster (sdpa where "
        "nothing is probed, and where the written-out attention weights kept for the backward pass "
        "would take over 1 GiB).",
        choices=("auto", "sdpa", "explicit"),
    )
    threads: int = _f(0, "CPU threads for training (0: all cores headless, all but one in the GUI; at most "
                          "4 x the cores).", min=0, max=MAX_THREADS, machine=True)
    dist_timeout: int = _f(60, "Seconds a process of a multi-process run (torchrun) waits for the others in a "
                           "collective before it stops, naming the rank that did not answer.", min=5,
                           max=86_400)
    early_stopping_metric: str = _f("", 'Stop when this validation metric stops improving, e.g. "sst2/accuracy" '
                                    'or "sst2/loss" (empty: never). The best checkpoint is kept.')
    early_stopping_patience: int = _f(5, "Evaluations without improvement before stopping.", min=1,
                                      max=MAX_COUNT)


PRETRAINING_KINDS = ("causal_lm", "masked_lm", "continuity")
LABELLED_KINDS = ("classification", "entailment", "similarity", "multiple_choice", "regression")
TASK_KINDS = PRETRAINING_KINDS + LABELLED_KINDS


@dataclass(frozen=True)
class TaskConfig:
    kind: str = _f("causal_lm", "causal_lm: next-token prediction (GPT); masked_lm: BERT-style masked "
                   "tokens, bidirectional; continuity: does segment B follow segment A?; labelled tasks "
                   "(GPT-1 input transformations): classification, entailment, similarity, "
                   "multiple_choice, regression.", choices=TASK_KINDS)
    name: str = _f("", "Name in curves and metrics (default: lm, mlm, continuity, or the kind).")
    weight: float = _f(1.0, "Loss weight (fixed and pcgrad weighting, sampling all) and sampling weight "
                       "(proportional, temperature); other combinations ignore it (the config check says so).",
                       min=0.0, max=1e6)
    mask_prob: float = _f(0.15, "masked_lm: share of positions to predict (80% masked, 10% random, 10% kept).",
                          min=0.01, max=0.9)
    # -- labelled data (classification ... regression) --
    train: str = _f("", "Labelled training data: .csv, .tsv or .jsonl.")
    val: str = _f("", "Labelled validation data (empty: hold out val_fraction of train).")
    val_fraction: float = _f(0.1, "Share of train held out when there is no val file.", min=0.0, max=0.5)
    text: str = _f("text", "Column/field of the text (premise, first sentence, context, question).")
    text_pair: str = _f("", "Column of the second text (hypothesis, second sentence).")
    label: str = _f("", "Column of the class label.")
    labels: tuple[str, ...] = _f(None, "The label vocabulary in class order (empty: the sorted labels found).",
                                 factory=tuple)
    score: str = _f("", "Column of a number to predict (regression, similarity as regression).")
    choices: tuple[str, ...] = _f(None, "multiple_choice: the answer columns, or one column holding a list.",
                                  factory=tuple)
    answer: str = _f("", "multiple_choice: the column naming the right choice (index or label).")
    answer_base: int = _f(0, "multiple_choice: numbers in the answer column count from this (COPA: 1).", min=0,
                          max=MAX_COUNT)
    max_examples: int = _f(0, "Use at most this many training examples (0: all).", min=0, max=MAX_COUNT)
    lm_weight: float = _f(0.5, "Auxiliary LM loss weight lambda: L = L_task + lambda * L_LM (GPT-1: 0.5; "
                          "0: off).", min=0.0, max=1e6)
    aug_token_dropout: float = _f(0.0, "Augmentation: chance to replace a token by <|unk|>.", min=0.0, max=0.5)
    aug_delete: float = _f(0.0, "Augmentation: chance to delete a token.", min=0.0, max=0.5)
    aug_swap: float = _f(0.0, "Augmentation: chance to swap a token with its neighbour.", min=0.0, max=0.5)
    aug_mask: float = _f(0.0, "Augmentation: chance to replace a token by <|mask|>.", min=0.0, max=0.5)

    @property
    def task_name(self) -> str:
        return self.name or {"causal_lm": "lm", "masked_lm": "mlm"}.get(self.kind, self.kind)


@dataclass(frozen=True)
class MultitaskConfig:
    sampling: str = _f("all", "all: every task every step; proportional: one task per step drawn by weight; "
                       "temperature: drawn by weight^(1/T); round_robin: in turn.",
                       choices=("all", "proportional", "temperature", "round_robin"))
    temperature: float = _f(2.0, "T for temperature sampling (1 = proportional, large = uniform).", min=0.01,
                             max=1e6)
    weighting: str = _f("fixed", "fixed: the tasks' weights; average: equal weights; uncertainty: learned "
                        "(Kendall et al. 2018); gradnorm: learned to balance gradient norms (Chen et al. "
                        "2018); pcgrad: the tasks' weights, with conflicting gradients projected (Yu et al. 2020).",
                        choices=("fixed", "average", "uncertainty", "gradnorm", "pcgrad"))
    gradnorm_alpha: float = _f(1.5, "GradNorm's asymmetry: how hard slower tasks are pushed.", min=0.0, max=100.0)
    gradnorm_lr: float = _f(0.025, "Learning rate of GradNorm's task weights.", min=0.0, max=10.0)
    conflict_every: int = _f(50, "Measure task weights and gradient conflicts every N steps (0: never).", min=0,
                             max=MAX_STEPS)


@dataclass(frozen=True)
class StageConfig:
    steps: int = _f(100, "How many steps this stage lasts.", min=1, max=MAX_STEPS)
    trainable: tuple[str, ...] = _f(None, 'What trains: "all", "heads", "ln_f", "embeddings", "blocks", '
                                    '"block.N", "top:K" (the K highest blocks).', factory=lambda: ("all",))
    learning_rate: float = _f(0.0, "Peak learning rate of this stage (0: training.learning_rate).", min=0.0,
                              max=10.0)


@dataclass(frozen=True)
class FinetuneConfig:
    init: str = _f("", "Start from this run folder or checkpoint (empty: random weights, i.e. pretraining). "
                   "Its tokenizer and model shape are used.")
    freeze: str = _f("none", "none: everything trains; head_only: a linear probe on frozen features; "
                     "bottom_n: embeddings and the lowest freeze_n blocks frozen; gradual: heads first, then one "
                     "more block from the top every unfreeze_every steps (ULMFiT); stages: the [[finetune.stages]] "
                     "plan.", choices=("none", "head_only", "bottom_n", "gradual", "stages"))
    freeze_n: int = _f(0, "bottom_n: how many of the lowest blocks stay frozen.", min=0, max=96)
    unfreeze_every: int = _f(100, "gradual: steps between unfreezing one more block.", min=1, max=MAX_STEPS)
    discriminative: bool = _f(False, "Discriminative learning rates: block l gets lr * lr_factor^(L - l), "
                              "embeddings lr * lr_factor^L; combinable with any freezing.")
    lr_factor: float = _f(1 / 2.6, "Per-block learning-rate factor for discriminative rates (fastai: 1/2.6).",
                          min=0.01, max=1.0)
    stages: tuple[StageConfig, ...] = _f(None, "freeze = stages: a list of stages run in order.", factory=tuple)


@dataclass(frozen=True)
class LoggingConfig:
    tensorboard: bool = _f(False, "Also write TensorBoard event files to RUN/tensorboard/ (losses per task, learning "
                           "rate, gradient norm, tokens/s, attention snapshots as images): `tensorboard --logdir "
                           "RUN`. Needs the optional extra: pip install \"gpt-workbench[tensorboard]\".")


@dataclass(frozen=True)
class Experiment:
    name: str = _f("experiment", "A short name; run folders start with it.")
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    tasks: tuple[TaskConfig, ...] = field(default_factory=lambda: (TaskConfig(),))
    multitask: MultitaskConfig = field(default_factory=MultitaskConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    # -- conversions -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(self)

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    def save(self, path: str | Path) -> None:
        from .checkpoint import atomic_write_text  # one place for atomic writes

        atomic_write_text(Path(path), self.to_toml())

    def replace(self, **sections) -> "Experiment":
        """A copy with whole sections or top-level fields swapped."""
        return dataclasses.replace(self, **sections)

    def with_overrides(self, overrides: list[str]) -> "Experiment":
        """Apply ``section.key=value`` strings (the CLI's ``--set``) and validate again."""
        data = self.to_dict()
        for item in overrides:
            apply_override(data, item)
        return from_dict(data, source="--set")


SECTIONS: dict[str, type] = {
    "corpus": CorpusConfig,
    "tokenizer": TokenizerConfig,
    "model": ModelConfig,
    "training": TrainingConfig,
    "multitask": MultitaskConfig,
    "finetune": FinetuneConfig,
    "logging": LoggingConfig,
}


# -- loading -------------------------------------------------------------------------------------


def load_experiment(path: str | Path, overrides: list[str] | None = None, *, machine: bool = True) -> Experiment:
    """Read an experiment TOML file; errors name the file and the key. machine: see ``from_dict``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such experiment file. Check the path, or pass a preset name "
                          f"({', '.join(preset_names()) or 'none installed'}).") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}); save it as UTF-8.") from None
    exp = loads_experiment(text, source=str(path), overrides=overrides, machine=machine)
    return _resolve_paths(exp, path.resolve().parent)


def _resolve_paths(exp: Experiment, base: Path) -> Experiment:
    """Relative file paths in an experiment are relative to the TOML file's folder; make them absolute
    so the copy saved in a run folder still points at the same files."""
    def fix(p: str) -> str:
        if not p or p.startswith("builtin:") or Path(p).expanduser().is_absolute():
            return str(Path(p).expanduser()) if p.startswith("~") else p
        return str((base / p).resolve())

    corpus = dataclasses.replace(exp.corpus, paths=tuple(fix(p) for p in exp.corpus.paths))
    tokenizer = dataclasses.replace(exp.tokenizer, path=fix(exp.tokenizer.path))
    tasks = tuple(dataclasses.replace(t, train=fix(t.train), val=fix(t.val)) for t in exp.tasks)
    finetune = dataclasses.replace(exp.finetune, init=fix(exp.finetune.init))
    return exp.replace(corpus=corpus, tokenizer=tokenizer, tasks=tasks, finetune=finetune)


def loads_experiment(text: str, source: str = "<string>", overrides: list[str] | None = None, *,
                     machine: bool = True) -> Experiment:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: not valid TOML: {e}. Fix the syntax at that line.") from None
    if not overrides:
        return from_dict(data, source=source, machine=machine)
    import copy

    original = copy.deepcopy(data)
    for item in overrides:
        apply_override(data, item)
    try:
        return from_dict(data, source=source, machine=machine)
    except ConfigError as e:
        try:  # the file alone is fine: the bad value came from --set, so say so
            from_dict(original, source=source, machine=machine)
        except ConfigError:
            raise e from None
        raise ConfigError(str(e).replace(f"{source}:", f"--set (over {source}):", 1)) from None


def from_dict(data: dict[str, Any], source: str = "<dict>", *, machine: bool = True) -> Experiment:
    """Build and validate an Experiment from plain data (as TOML gives it).

    machine=False skips the limits of this machine (training.threads): for an experiment read from
    a run folder only to use its model, which a bigger machine may have trained."""
    return _build(Experiment, data, source, prefix="", machine=machine)


def apply_override(data: dict[str, Any], item: str) -> None:
    """``training.max_steps=100`` -> data["training"]["max_steps"] = 100 (value parsed as TOML)."""
    if "=" not in item:
        raise ConfigError(f'--set {item!r}: expected section.key=value, for example training.max_steps=500.')
    dotted, raw = item.split("=", 1)
    keys = dotted.strip().split(".")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word such as cuda or wordpiece: take it as a string
    node = data
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {item!r}: {k} is a value, not a section.")
    node[keys[-1]] = value


def preset_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "resources" / "presets"


def preset_names() -> list[str]:
    return sorted(p.stem for p in preset_dir().glob("*.toml"))


def resolve_experiment(name_or_path: str, overrides: list[str] | None = None) -> Experiment:
    """A path to a TOML file, or the name of a bundled preset."""
    p = Path(name_or_path)
    if not p.exists() and (preset_dir() / f"{name_or_path}.toml").exists():
        p = preset_dir() / f"{name_or_path}.toml"
    return load_experiment(p, overrides)


# -- the generic part: dataclass <-> dict with checks ------------------------------------------


def _to_plain(obj):
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple):
        return [_to_plain(x) for x in obj]
    return obj


def _build(cls, data: Any, source: str, prefix: str, machine: bool = True):
    where = f"[{prefix}]" if prefix else "the top level"
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {where} must be a table of settings.")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            raise ConfigError(
                f"{source}: unknown setting {_name(prefix, key)}{did_you_mean(key, fields)}. "
                f"Known in {where}: {', '.join(fields)}."
            )
    kwargs = {}
    for name, f in fields.items():
        if name not in data:
            continue
        typ = hints[name]
        if dataclasses.is_dataclass(typ):
            kwargs[name] = _build(typ, data[name], source, name if not prefix else f"{prefix}.{name}", machine)
        else:
            kwargs[name] = _check_value(data[name], typ, f.metadata, source, _name(prefix, name), machine)
    obj = cls(**kwargs)
    _check_relations(obj, source)
    return obj


def _name(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _check_value(value, typ, meta, source: str, name: str, machine: bool = True):
    origin = typing.get_origin(typ)
    if origin is tuple:
        (item_type, _) = typing.get_args(typ)
        if dataclasses.is_dataclass(item_type):  # an array of tables: [[tasks]]
            if isinstance(value, dict):
                value = [value]
            if not isinstance(value, list):
                raise ConfigError(f"{source}: {name} must be a list of tables ([[{name}]]), got {value!r}.")
            return tuple(_build(item_type, v, source, f"{name}[{i}]", machine) for i, v in enumerate(value))
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {name} must be a list, got {value!r}.")
        return tuple(_check_value(v, item_type, {}, source, f"{name}[{i}]") for i, v in enumerate(value))
    if typ is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {name} must be true or false, got {value!r}.")
    elif typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise ConfigError(f"{source}: {name} must be a whole number, got {value!r}.")
    elif typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: {name} must be a number, got {value!r}.")
        try:
            value = float(value)
        except OverflowError:  # an integer too large for a float
            raise ConfigError(f"{source}: {name} = {value} is far too large.") from None
    elif typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: {name} must be text (in quotes), got {value!r}.")
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ConfigError(
            f"{source}: {name} = {value!r} is not one of {', '.join(map(repr, choices))}"
            f"{did_you_mean(str(value), choices)}."
        )
    if typ in (int, float):
        check_range(value, name, meta, source, machine=machine)
    return value


def check_range(value, name: str, meta, source: str = "", *, machine: bool = True):
    """The one range check of every number: a setting's (from its metadata) and a command-line
    option's (``cli`` builds its option types on it). The message names the setting."""
    where = f"{source}: " if source else ""
    what = f"{name} = {value!r}" if name else repr(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}{name + ' ' if name else ''}must be a finite number, got {value!r}.")
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and value < lo:
        raise ConfigError(f"{where}{what} is below its minimum {lo}.")
    if hi is not None and value > hi and (machine or not meta.get("machine")):
        why = (f" on this machine ({CORES} CPU cores x 4; 0 uses every core)" if hi == MAX_THREADS
               and meta.get("machine") else "")
        raise ConfigError(f"{where}{what} is above its maximum {hi}{why}.")
    return value


def field_meta(cls: type, name: str) -> dict:
    """The metadata (help, choices, min, max) of one field of a settings dataclass."""
    return next(f.metadata for f in dataclasses.fields(cls) if f.name == name)


def check_fields(obj, source: str = "") -> None:
    """Check every field of a settings dataclass built in code (not from TOML) against its metadata."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        typ = hints[f.name]
        if typing.get_origin(typ) is typing.Union or isinstance(typ, types.UnionType):  # int | None
            if value is None:
                continue
            typ = next(t for t in typing.get_args(typ) if t is not type(None))
        _check_value(value, typ, f.metadata, source, f.name)


# The window's "every GPU" device choice (engine.device.detect_devices offers it with 2+ GPUs): not a
# training.device value, as one process trains on one device; the window saves the experiment with
# device "cuda" and starts `workbench train --nproc N` (torchrun).
ALL_GPUS = "cuda:all"


def check_device_name(dev: str, name: str = "training.device", source: str = "") -> None:
    """auto, cpu, cuda, cuda:N or mps; ``name`` is the setting or option the value came from."""
    if not (dev in ("auto", "cpu", "mps", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit()
                                                       and len(dev) < 10)):
        raise ConfigError(f"{source + ': ' if source else ''}{name} = {dev!r}: use auto, cpu, cuda, cuda:N or mps"
                          f"{did_you_mean(dev, ['auto', 'cpu', 'cuda', 'mps'])}.")


def _check_relations(obj, source: str) -> None:
    """Checks that involve more than one field of a section."""
    if isinstance(obj, ModelConfig) and obj.n_embd % obj.n_head:
        lo = obj.n_embd - obj.n_embd % obj.n_head
        raise ConfigError(
            f"{source}: model.n_embd = {obj.n_embd} is not divisible by model.n_head = {obj.n_head}; "
            f"each head gets n_embd / n_head channels. Try n_embd = {lo or obj.n_head} or "
            f"{lo + obj.n_head}, or another n_head."
        )
    if isinstance(obj, TrainingConfig):
        if obj.min_lr > obj.learning_rate:
            raise ConfigError(f"{source}: training.min_lr = {obj.min_lr} is above training.learning_rate "
                              f"= {obj.learning_rate}; the decay goes down to min_lr.")
        check_device_name(obj.device, "training.device", source)
    if isinstance(obj, Experiment):
        if not obj.tasks:
            raise ConfigError(f'{source}: no [[tasks]]; add at least one, e.g. [[tasks]] kind = "causal_lm".')
        labels = [t.task_name for t in obj.tasks]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ConfigError(f"{source}: two tasks are named {dup[0]!r}; give each [[tasks]] its own name.")
        if obj.multitask.sampling in ("proportional", "temperature") and not any(t.weight > 0 for t in obj.tasks):
            raise ConfigError(f"{source}: every task has weight 0; {obj.multitask.sampling} sampling needs one > 0.")
    if isinstance(obj, TaskConfig) and obj.kind in LABELLED_KINDS:
        need = {"classification": ("text", "label"), "entailment": ("text", "text_pair", "label"),
                "similarity": ("text", "text_pair"), "multiple_choice": ("text", "choices", "answer"),
                "regression": ("text", "score")}[obj.kind]
        if not obj.train:
            raise ConfigError(f"{source}: the {obj.kind} task needs train = \"FILE\" (.csv, .tsv or .jsonl).")
        for key in need:
            if not getattr(obj, key):
                raise ConfigError(f"{source}: the {obj.kind} task needs {key} = the column holding it.")
        if obj.kind == "similarity" and not (obj.label or obj.score):
            raise ConfigError(f"{source}: the similarity task needs label = COLUMN (paraphrase or not) or "
                              f"score = COLUMN (a similarity score, trained by regression).")
    if isinstance(obj, MultitaskConfig) and obj.weighting in ("gradnorm", "pcgrad") and obj.sampling != "all":
        why = "compares all tasks within a step" if obj.weighting == "gradnorm" else \
            "projects the gradients of tasks trained in the same step"
        raise ConfigError(f'{source}: multitask.weighting = "{obj.weighting}" {why}; set multitask.sampling = "all" '
                          f'(now "{obj.sampling}").')
    if isinstance(obj, FinetuneConfig) and obj.freeze == "stages" and not obj.stages:
        raise ConfigError(f'{source}: finetune.freeze = "stages" needs [[finetune.stages]] tables '
                          f'(steps, trainable, learning_rate).')
    if isinstance(obj, StageConfig):
        for t in obj.trainable:
            ok = t in ("all", "heads", "ln_f", "embeddings", "blocks") or (
                t.startswith("block.") and t[6:].isdigit()) or (t.startswith("top:") and t[4:].isdigit())
            if not ok:
                raise ConfigError(f'{source}: stage trainable {t!r} is not one of "all", "heads", "ln_f", '
                                  f'"embeddings", "blocks", "block.N", "top:K".')
    if isinstance(obj, CorpusConfig) and not obj.paths:
        raise ConfigError(f'{source}: corpus.paths is empty; give a file or folder, or "builtin:toy".')


def setting_warnings(tasks, multitask: MultitaskConfig) -> list[str]:
    """Valid settings that do not do what they seem to: task weights a combination ignores. Shown by
    `workbench train` before it starts and on the Tasks page."""
    weights = [t.weight for t in tasks]
    if len(tasks) < 2 or len(set(weights)) == 1:
        return []
    listed = ", ".join(f"{t.task_name} {t.weight:g}" for t in tasks)
    if multitask.sampling == "round_robin":
        return [f'the tasks\' weights ({listed}) are ignored with multitask.sampling = "round_robin": each task '
                f'trains every {len(tasks)}th step and its loss counts fully. Use sampling = "proportional" '
                f'(weights as draw chances) or "all" with weighting = "fixed" (weights as loss weights).']
    if multitask.weighting in ("average", "uncertainty", "gradnorm"):
        how = {"average": "every task counts the same", "uncertainty": "the weights are learned",
               "gradnorm": "the weights are learned"}[multitask.weighting]
        return [f'the tasks\' weights ({listed}) are ignored with multitask.weighting = "{multitask.weighting}" '
                f'({how}). Use weighting = "fixed" or "pcgrad" to weight the losses.']
    return []


def flatten(d: dict, prefix: str = "") -> dict:
    """{"model": {"n_layer": 4}, "tasks": [{...}]} -> {"model.n_layer": 4, "tasks[0].kind": ...}."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            for i, item in enumerate(v):
                out.update(flatten(item, f"{key}[{i}]."))
        else:
            out[key] = v
    return out


def diff_experiments(a: Experiment, b: Experiment) -> list[tuple[str, Any, Any]]:
    """(dotted setting, value in a, value in b) for every setting that differs."""
    fa, fb = flatten(a.to_dict()), flatten(b.to_dict())
    return [(k, fa.get(k), fb.get(k)) for k in sorted(fa.keys() | fb.keys()) if fa.get(k) != fb.get(k)]


def describe_settings() -> list[tuple[str, str, Any]]:
    """(dotted name, help, default) for every setting: for --help listings and the docs."""
    rows = []
    for section, cls in {**SECTIONS, "tasks[]": TaskConfig, "finetune.stages[]": StageConfig}.items():
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            help_text = f.metadata.get("help", "")
            lo, hi = f.metadata.get("min"), f.metadata.get("max")
            if lo is not None and hi is not None:
                help_text += f" Range {lo:,} .. {hi:,}{' on this machine' if f.metadata.get('machine') else ''}."
            rows.append((f"{section}.{f.name}", help_text, _to_plain(default)))
    return rows


# -- resuming a run -------------------------------------------------------------------------

# Settings that may differ on resume without changing the numbers already computed (the rates and
# clipping change only the steps still to come: they are how a diverged run is continued).
RESUMABLE = {"training.max_steps", "training.device", "training.threads", "training.compile", "training.eval_every",
             "training.attention", "training.checkpoint_every", "training.keep_checkpoints", "training.attention_every",
             "training.probe_text", "training.learning_rate", "training.min_lr", "training.grad_clip",
             "training.divergence_factor", "training.divergence_margin", "training.divergence_steps",
             "logging.tensorboard", "training.dist_timeout"}


def check_resumable(saved: Experiment, wanted: Experiment, where: Path) -> None:
    """Refuse, in words a person can act on, a resume whose settings would change the numbers."""
    changed = [(k, a, b) for k, a, b in diff_experiments(saved, wanted) if k not in RESUMABLE]
    if changed:
        helps = {name: text for name, text, _default in describe_settings()}
        lines = []
        for key, old, new in changed[:6]:
            generic = re.sub(r"\[\d+\]", "[]", key)  # tasks[0].kind -> tasks[].kind
            text = helps.get(generic, "")  # "Transformer blocks." -> "transformer blocks"
            what = re.split(r" \(|; |\. ", text)[0].rstrip(".") if text[:1].isupper() else ""  # first clause
            what = what[:1].lower() + what[1:] if what[1:2].islower() else what
            lines.append(f"{key}{f' ({what})' if what else ''}: {old!r} in the run, {new!r} now")
        more = f" and {len(changed) - 6} more" if len(changed) > 6 else ""
        raise CheckpointError(
            f"Cannot continue the run in {where}: these settings differ from the ones it was trained "
            f"with: {'; '.join(lines)}{more}. A run can only go on with its own settings (the number of "
            f"steps, the device, the learning rates, clipping, the divergence rule and how often to evaluate, "
            f"snapshot and checkpoint may change). Set them "
            f"back to the run's values to continue it, or start a new run with the new settings (in the "
            f"window: New run on the Training page; on the command line: leave out --resume).")
