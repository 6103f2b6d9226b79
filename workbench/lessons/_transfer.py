"""What the three transfer lessons share (pretraining, freezing, aux-lm): the made-up language of
``engine/word_kinds.py``, one small GPT pretrained on it per seed (kept in the cache, so a second
lesson or a second go reuses it), and fine-tuning runs, all through the engine's Trainer.

A run's evaluations become the lesson's live curve (accuracy on the test sentences against steps,
or against training seconds); a stop asked of the lesson stops the run at its next step.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .. import paths
from ..engine import word_kinds
from ..engine.config import (CorpusConfig, Experiment, FinetuneConfig, ModelConfig, TaskConfig, TokenizerConfig,
                             TrainingConfig)
from ..engine.events import EvalResult, StepMetrics
from . import engine_run
from .base import RunContext

LM_SERIES = "lm loss"  # the series pretraining's points carry (the conditions' points: accuracy)
TASK = "kind"  # the classification task's name: its metrics are "kind/accuracy"
CORPUS = "builtin:kinds"
# Small enough that pretraining takes seconds on a laptop CPU, big enough to learn the kinds.
MODEL = ModelConfig(n_layer=2, n_head=2, n_embd=64, block_size=64, dropout=0.0)
TOKENIZER = TokenizerConfig(kind="bpe", vocab_size=1024)  # every word of the language one token


@dataclass(frozen=True)
class Sizes:
    pretrain_steps: int
    finetune_steps: int
    n_train: int            # labelled training sentences
    n_test: int             # test sentences, every one about a noun no label named
    per_kind: int = 8       # nouns of each kind the labels name (of word_kinds.NOUNS_PER_KIND)
    batch_size: int = 32
    eval_every: int = 10


def _speed(seed: int, **kw) -> TrainingConfig:
    """The training settings every run of these lessons shares: fp32 eager on the CPU (no measured
    compile probe: a lesson's runs are seconds long), checkpoints only at the end, one thread: a model
    this small gains little from a second, and on a busy 2-core machine (the window, other work) two
    OpenMP threads waiting on each other ran 7x slower than one (1.3 s against 0.18 s a step here)."""
    return TrainingConfig(seed=seed, device="cpu", precision="fp32", compile="off", checkpoint_every=0, threads=1,
                          attention_every=0, **kw)


def pretrain_experiment(seed: int, steps: int) -> Experiment:
    return Experiment(
        name="lesson-pretrain", corpus=CorpusConfig(paths=(CORPUS,), val_fraction=0.05), tokenizer=TOKENIZER,
        model=MODEL, tasks=(TaskConfig(kind="causal_lm"),),
        training=_speed(seed, max_steps=steps, batch_size=32, learning_rate=3e-3, min_lr=3e-4,
                        warmup_steps=min(20, steps // 5), eval_every=max(1, steps // 10), eval_batches=4))


def _key(exp: Experiment) -> str:
    """Names everything that shapes the pretrained weights: the settings and the corpus's text."""
    from ..engine.builtin_corpora import get

    text = json.dumps({"experiment": exp.to_dict(), "corpus": get(CORPUS.split(":", 1)[1]).identity()},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def pretrained(ctx: RunContext, steps: int) -> Path:
    """A run folder with a GPT pretrained (causal LM) on the unlabelled text, for this seed.

    Kept in the cache dir under a key of its settings and corpus, so the other transfer lessons (and
    the next go at this one) reuse it; a change of the language or the settings changes the key.
    The run trains in the lesson's own folder and is moved into the cache only once complete.
    """
    exp = pretrain_experiment(ctx.seed, steps)
    final = paths.cache_dir() / "lessons" / f"pretrained-{_key(exp)}"
    if (final / "config.toml").exists() and _has_checkpoint(final):
        ctx.point(steps, _last_loss(final), LM_SERIES)  # the curve still shows where pretraining ended
        return final
    run = train(ctx, exp, ctx.workdir / "pretrain", metric=None).folder
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(final.name + f".tmp{os.getpid()}")
    shutil.copytree(run, tmp)
    try:
        os.replace(tmp, final)  # atomic; another process may have put it there first
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return final if _has_checkpoint(final) else run


def _has_checkpoint(folder: Path) -> bool:
    return any((folder / "checkpoints").glob("step_*.json"))


def _last_loss(folder: Path) -> float:
    from ..engine.checkpoint import read_metrics

    rows = [r for r in read_metrics(folder / "metrics.jsonl") if r.get("split") == "val"]
    return float(rows[-1]["loss"]) if rows else float("nan")


def finetune_experiment(seed: int, sizes: Sizes, train_tsv: Path, test_tsv: Path, *, init: Path | None,
                        tokenizer: Path, freeze: str = "none", unfreeze_every: int = 20, lm_weight: float = 0.0,
                        learning_rate: float = 1e-3) -> Experiment:
    """Fine-tune a classifier of the noun's kind; ``init`` None: the same model from random weights."""
    task = TaskConfig(kind="classification", name=TASK, train=str(train_tsv), val=str(test_tsv), text="text",
                      label="label", labels=word_kinds.KINDS, lm_weight=lm_weight)
    return Experiment(
        name="lesson-finetune", tokenizer=dataclasses.replace(TOKENIZER, path=str(tokenizer)), model=MODEL,
        tasks=(task,), finetune=FinetuneConfig(init=str(init) if init else "", freeze=freeze,
                                                unfreeze_every=unfreeze_every),
        training=_speed(seed, max_steps=sizes.finetune_steps, batch_size=sizes.batch_size,
                        learning_rate=learning_rate, min_lr=learning_rate / 10,
                        warmup_steps=min(10, sizes.finetune_steps // 5), eval_every=sizes.eval_every))


def labelled_files(ctx: RunContext, sizes: Sizes, context: int = 0) -> tuple[Path, Path]:
    """This seed's labelled sentences as TSV files in the run's folder: (train, test)."""
    train, test = word_kinds.labelled_examples(ctx.seed, sizes.n_train, sizes.n_test, sizes.per_kind,
                                               context=context)
    paths_ = ctx.workdir / "train.tsv", ctx.workdir / "test.tsv"
    word_kinds.write_tsv(paths_[0], train)
    word_kinds.write_tsv(paths_[1], test)
    return paths_


class _Curve:
    """Listens to a transfer run: its evaluations become the lesson's points; keeps what the lesson reads."""

    def __init__(self, ctx: RunContext, metric: str | None, x: str):
        self.ctx, self.metric, self.x = ctx, metric, x
        self.last: EvalResult | None = None
        self.elapsed = 0.0
        self.first_losses: dict[str, float] = {}   # the first and last training steps' losses and metrics
        self.last_losses: dict[str, float] = {}

    def __call__(self, event, _state) -> None:
        if isinstance(event, StepMetrics):
            self.elapsed = event.elapsed
            self.first_losses = self.first_losses or dict(event.losses)
            self.last_losses = dict(event.losses)
        elif isinstance(event, EvalResult):
            self.last = event
            y = event.metrics[self.metric] if self.metric else next(iter(event.losses.values()))
            # pretraining's curve is its validation LM loss, a series of its own
            self.ctx.point(event.elapsed if self.x == "seconds" else event.step, y, "" if self.metric else LM_SERIES)


@dataclass
class Trained:
    folder: Path
    last: EvalResult | None     # the run's final evaluation
    seconds: float              # training time (evaluations and preparation excluded)
    first_losses: dict[str, float]   # the first training step's losses ("kind", "kind/lm_loss", ...)
    last_losses: dict[str, float]    # the last one's

    @property
    def accuracy(self) -> float:
        return float(self.last.metrics[f"{TASK}/accuracy"])


def train(ctx: RunContext, exp: Experiment, folder: Path, *, metric: str | None = f"{TASK}/accuracy",
          x: str = "step") -> Trained:
    """Run ``exp`` with the engine's Trainer in ``folder`` (engine_run.train), drawing its evaluations on
    the lesson's curve (``metric``, or the first task's validation loss)."""
    curve = _Curve(ctx, metric, x)
    engine_run.train(ctx, exp, folder, curve)
    return Trained(folder, curve.last, curve.elapsed, curve.first_losses, curve.last_losses)
