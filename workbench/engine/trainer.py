"""The training loop: prepare data and model, step, evaluate, snapshot attention, checkpoint.

``Trainer(experiment).run(control, reporter)`` runs in whatever thread calls it (the CLI's main
thread, the GUI's worker QThread). It talks to the outside only through the reporter (events out)
and the RunControl (stop, pause, commands in), both polled between optimizer steps.
"""

from __future__ import annotations

import binascii
import dataclasses
import json
import math
import os
import random
import re
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import paths
from . import checkpoint as ckpt
from .config import PRETRAINING_KINDS, Experiment, TrainingConfig, check_range, diff_experiments, field_meta, from_dict
from .control import SAVE_CHECKPOINT, SET_PROBE_TEXT, SNAPSHOT_ATTENTION, RunControl
from .corpus import Corpus
from .data import TokenData, build_token_cache
from .device import check_fits_memory, describe_device, is_out_of_memory, resolve_device, resolve_precision
from .divergence import DivergenceWatch
from .errors import Cancelled, CheckpointError, ConfigError, Diverged, TrainingError, WorkbenchError
from .events import (AttentionSnapshot, CheckpointSaved, FreezeChanged, EvalResult, Failed, Finished, NullReporter, Paused,
                     Resumed, RunStarted, Status, StepMetrics, TaskBalance)
from .freezing import FreezePlan, apply_trainable, discriminative_scales, group_of
from .model import GPT, GPTConfig
from .multitask import TaskSampler, build_weighting, conflict_matrix
from .ownership import check_resume_folder, claim_run_folder
from .tasks import TaskContext, build_task
from .tokenizer import Tokenizer, train_tokenizer


@dataclass
class RunResult:
    status: str            # completed | stopped | early_stopped | diverged | failed
    run_dir: Path | None
    step: int
    message: str = ""
    last_val_loss: float | None = None
    error: WorkbenchError | None = None  # why it failed, when the engine knew (a ConfigError: a bad setting)


def lr_at(step: int, cfg) -> float:
    """The rate of the update that takes the weights from ``step`` to ``step + 1`` (logged as step + 1):
    linear warmup (step k = 1..W at learning_rate * k / W: near 0 first, the full rate at step W),
    cosine decay to min_lr at lr_decay_steps, then min_lr."""
    decay_end = cfg.lr_decay_steps or cfg.max_steps
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    if step >= decay_end:
        return cfg.min_lr
    progress = (step - cfg.warmup_steps) / max(1, decay_end - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.learning_rate - cfg.min_lr)


def build_optimizer(model: torch.nn.Module, cfg, device: torch.device,
                    lr_scales: dict[str, float] | None = None) -> torch.optim.AdamW:
    """AdamW over the parameters that require grad only (frozen ones then cost nothing).
    Matrices and embeddings decay; biases and LayerNorm gains do not. ``lr_scales`` (by parameter
    name) gives discriminative learning rates: each group carries an ``lr_scale`` the loop applies."""
    buckets: dict[tuple[bool, float], list] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            scale = (lr_scales or {}).get(name, 1.0)
            buckets.setdefault((p.dim() >= 2, scale), []).append(p)
    groups = [{"params": ps, "weight_decay": cfg.weight_decay if decay else 0.0, "lr_scale": scale}
              for (decay, scale), ps in sorted(buckets.items(), key=lambda kv: (not kv[0][0], -kv[0][1]))]
    # fused kernels exist for CUDA and (recent torch) CPU; measured faster on both for small GPTs
    fused = device.type in ("cuda", "cpu")
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2), fused=fused)


def prepare_tokenizer(exp: Experiment, corpus: Corpus, *, reporter=None, should_stop=None) -> Tokenizer:
    """Load the configured tokenizer.json, or train one (cached by corpus and settings)."""
    tc = exp.tokenizer
    if tc.path:
        return Tokenizer.load(tc.path)
    import hashlib

    key = hashlib.sha256(f"{corpus.fingerprint()}:{tc.kind}:{tc.vocab_size}".encode()).hexdigest()[:24]
    cached = paths.cache_dir() / "tokenizers" / f"{key}.json"
    if cached.exists():
        return Tokenizer.load(cached)
    report = reporter.report if reporter else (lambda e: None)
    report(Status(f"Training a {tc.kind} tokenizer (vocabulary {tc.vocab_size:,})"))
    tok = train_tokenizer(
        tc.kind, tc.vocab_size, (p.text for p in corpus.pieces(max_chars=8192)),
        should_stop=should_stop,
        progress=lambda chars: report(Status(f"Training a {tc.kind} tokenizer: {chars / 1e6:.1f} M characters")),
    )
    cached.parent.mkdir(parents=True, exist_ok=True)
    tok.save(cached)
    return tok


class Trainer:
    def __init__(self, experiment: Experiment, *, run_dir: str | Path | None = None,
                 resume: str | Path | None = None, from_step: int | None = None,
                 default_threads: int | None = None, overwrite: bool = False):
        """run_dir: where to write (default: a new folder under the data dir); a folder that holds a
        run is refused unless ``overwrite`` (its run files are deleted first; ownership.py).
        resume: a run folder to continue from its latest checkpoint; ``experiment`` must then be
        its saved one (``saved_experiment``) with at most the RESUMABLE settings changed.
        from_step: with resume, continue from the checkpoint of this step instead of the latest;
        later checkpoints and metrics are moved aside (see ``_set_aside_after``).
        default_threads: CPU threads when training.threads is 0 (the GUI passes cores - 1)."""
        self.exp = experiment
        self.run_dir_arg = Path(run_dir) if run_dir else None
        self.resume_arg = Path(resume) if resume else None
        if from_step is not None and resume is None:
            raise CheckpointError("from_step needs resume = the run folder to continue.")
        self.from_step = from_step
        self.default_threads = default_threads or os.cpu_count() or 1
        self.overwrite = overwrite
        self.lock = None           # ownership.RunLock, held from prepare() to the end of run()
        self._made_folder = False
        # filled by prepare()
        self.model: GPT | None = None
        self.tokenizer: Tokenizer | None = None
        self.step = 0
        self.run_dir: ckpt.RunDir | None = None
        self.control, self.reporter = RunControl(), NullReporter()

    # -- public entry ------------------------------------------------------------------------

    def run(self, control: RunControl | None = None, reporter=None) -> RunResult:
        control = control or RunControl()
        reporter = reporter or NullReporter()
        try:
            self.prepare(control, reporter)
            status = self._loop()
            return RunResult(status, self.run_dir.path, self.step, last_val_loss=self.last_val_loss)
        except Diverged as e:
            msg = str(e) + self._set_aside_bad_checkpoints()
            if getattr(self, "metrics", None) is not None:
                # one line saying why the run ended (`workbench runs` shows "diverged"); its step is the
                # failed one, later than any checkpoint, so a resume drops it like other later lines
                self.metrics.write(step=self.step + 1, split="event", event="diverged", message=msg)
            reporter.report(Failed(self.step, msg, "", str(self.run_dir.path) if self.run_dir else None))
            return RunResult("diverged", self.run_dir.path if self.run_dir else None, self.step, msg,
                             self.last_val_loss)
        except Cancelled as e:
            reporter.report(Finished(self.step, "stopped", str(self.run_dir.path if self.run_dir else ""), {}))
            return RunResult("stopped", self.run_dir.path if self.run_dir else None, self.step, str(e))
        except WorkbenchError as e:
            msg = str(e)
            if isinstance(e, ckpt.WriteError) and not e.intact_noted and self.run_dir is not None:
                msg += " " + self.run_dir.intact_note()
            reporter.report(Failed(self.step, msg, "", str(self.run_dir.path) if self.run_dir else None))
            return RunResult("failed", self.run_dir.path if self.run_dir else None, self.step, msg, error=e)
        except OSError as e:
            if e.errno not in ckpt.DISK_ERRNOS:
                raise
            err = ckpt.write_error(Path(e.filename or (self.run_dir.path if self.run_dir else ".")), e)
            msg = f"{err} " + (self.run_dir.intact_note() if self.run_dir else "")
            reporter.report(Failed(self.step, msg, traceback.format_exc(),
                                   str(self.run_dir.path) if self.run_dir else None))
            return RunResult("failed", self.run_dir.path if self.run_dir else None, self.step, msg)
        except Exception as e:  # a bug or an environment problem: keep the traceback for the details
            msg = (self._out_of_memory_message(e) if is_out_of_memory(e)
                   else f"Training failed at step {self.step}: {type(e).__name__}: {e}")
            reporter.report(Failed(self.step, msg, traceback.format_exc(),
                                   str(self.run_dir.path) if self.run_dir else None))
            return RunResult("failed", self.run_dir.path if self.run_dir else None, self.step, msg)
        finally:
            self.close()

    def close(self) -> None:
        """Close the metrics file and release the run folder (run() does it; call it after prepare()
        alone). A folder this run made and never wrote its config to is removed again."""
        if getattr(self, "metrics", None) is not None:
            self.metrics.close()
            self.metrics = None
        if self.lock is not None:
            folder, made = self.lock.folder, self._made_folder
            self.lock.release()
            self.lock = None
            if made and not (folder / "config.toml").exists():
                for sub in ("checkpoints", "attention", ""):
                    try:
                        (folder / sub).rmdir()  # only if empty: nothing of anyone's is deleted
                    except OSError:
                        pass

    def _out_of_memory_message(self, e: Exception) -> str:
        tc, m = self.exp.training, self.exp.model
        size = (f"{self.model.num_params() / 1e6:,.1f} M parameters" if self.model is not None else
                f"n_layer {m.n_layer}, n_embd {m.n_embd}")
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        return (f"Out of memory at step {self.step} with training.batch_size = {tc.batch_size:,}, "
                f"model.block_size = {m.block_size:,} and a model of {size} ({first}). Lower "
                f"training.batch_size (training.grad_accum_steps keeps the effective batch), "
                f"model.block_size or the model's size.")

    # -- preparation -------------------------------------------------------------------------

    def prepare(self, control: RunControl | None = None, reporter=None) -> None:
        """Everything before the first step: run folder, corpus, tokenizer, token cache, model,
        optimizer, restored state. ``run`` calls it; benchmarks call it alone."""
        self.control = control or self.control
        self.reporter = reporter or self.reporter
        report = self.reporter.report
        should_stop = lambda: self.control.stop_requested  # noqa: E731
        state = None
        self._claim_folder()
        if self.resume_arg is not None:
            self.run_dir = ckpt.RunDir.open(self.resume_arg)
            resume_from = self._resume_checkpoint()
            state_tensors, state = ckpt.load_checkpoint(resume_from)
            ckpt.require_keys(state, resume_from, "experiment", "vocab_size")
            saved = from_dict(state["experiment"], source=str(self.run_dir.config), machine=False)
            check_resumable(saved, self.exp, self.run_dir.path)
            at = state.get("step", 0)
            if isinstance(at, int) and self.exp.training.max_steps < at:  # would rewrite the run as shorter
                raise ConfigError(f"{self.run_dir.path}: training.max_steps = {self.exp.training.max_steps} is below "
                                  f"the step the run continues from ({at}); set it to {at} or more.")
        exp, tc = self.exp, self.exp.training

        # checked here too: an experiment built in code or resumed from a bigger machine skipped it
        check_range(tc.threads, "training.threads", field_meta(TrainingConfig, "threads"))
        threads = tc.threads or self.default_threads
        torch.set_num_threads(max(1, threads))
        self.device = resolve_device(tc.device)
        self.precision = resolve_precision(tc.precision, self.device)
        _seed_everything(tc.seed)

        init = None
        if exp.finetune.init:
            from .loading import load_trained

            report(Status(f"Loading the pretrained model from {exp.finetune.init}"))
            init = load_trained(exp.finetune.init, with_heads=False)
            if exp.model != init.experiment.model:  # the checkpoint decides the shape
                self.exp = exp = exp.replace(model=init.experiment.model)

        self.data = None
        if state is not None and self.run_dir.tokenizer.exists():
            self.tokenizer = Tokenizer.load(self.run_dir.tokenizer)
        elif init is not None:
            self.tokenizer = init.tokenizer
        if any(t.kind in PRETRAINING_KINDS for t in exp.tasks) or (self.tokenizer is None):
            report(Status("Reading the corpus"))
            corpus = Corpus.from_config(exp.corpus)
            if self.tokenizer is None:
                self.tokenizer = prepare_tokenizer(exp, corpus, reporter=self.reporter, should_stop=should_stop)
            if any(t.kind in PRETRAINING_KINDS for t in exp.tasks):
                report(Status("Encoding the corpus", 0.0))
                cache = build_token_cache(
                    corpus, self.tokenizer, paths.cache_dir(), should_stop=should_stop,
                    progress=lambda chars, toks: report(Status(f"Encoding the corpus: {toks:,} tokens")),
                )
                self.data = TokenData.from_cache(cache, exp.corpus.val_fraction, exp.model.block_size)

        gconf = GPTConfig.from_model_config(exp.model, self.tokenizer.vocab_size)
        check_fits_memory(gconf, tc.batch_size, self.device)
        self.model = GPT(gconf)
        if init is not None:
            self.model.load_state_dict(init.model.state_dict(), strict=False)
        report(Status("Reading the tasks' data"))
        ctx = TaskContext(self.tokenizer, self.data, exp.model.n_embd, exp.model.block_size)
        self.tasks = [build_task(t, ctx) for t in exp.tasks]
        for task in self.tasks:
            head = task.build_head()
            if head is not None:
                head.apply(GPT._init_weights)
                self.model.heads[task.name] = head
        self.sampler = TaskSampler(list(exp.tasks), exp.multitask)
        self.weighting = build_weighting(list(exp.tasks), exp.multitask)
        # One module holds everything that is trained or checkpointed: "model.*" and "balance.*".
        self.net = torch.nn.ModuleDict({"model": self.model, "balance": self.weighting}).to(self.device)
        self.plan = FreezePlan(exp.finetune, exp.model.n_layer)
        self.lr_scales = {f"model.{k}": v for k, v in
                          discriminative_scales(self.model, exp.finetune, exp.model.n_layer).items()}
        self.trainable = self.plan.trainable(state["step"] if state else 0)
        apply_trainable(self.model, self.trainable)
        self.shared = [p for n, p in self.model.named_parameters() if not n.startswith("heads.")]
        self.optimizer = build_optimizer(self.net, tc, self.device, self.lr_scales)
        self.opt_stash: dict = {}  # AdamW state of parameters frozen for now, kept for when they thaw
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision.use_scaler)
        self.batch_gen = torch.Generator().manual_seed(tc.seed)
        self.step, self.tokens_seen, self.elapsed = 0, 0, 0.0
        self.last_val_loss = None
        self.group_norms = None
        self.best = None           # (value, step) of the early-stopping metric
        self.evals_since_best = 0
        # "Good" weights are weights whose loss was computed and finite: verified_step is the step
        # whose weights that is known for. A periodic checkpoint of step s waits until step s + 1 has
        # computed its loss (and finite gradients) with those weights, and is written then, before the
        # update; a checkpoint that cannot wait (stop, end, request) checks the weights first.
        self.verified_step: int | None = None
        self.pending_checkpoint = False
        self.skipped_in_row = 0    # fp16: optimizer steps the grad scaler skipped in a row
        self.watch = DivergenceWatch(tc.divergence_factor, tc.divergence_margin, tc.divergence_steps,
                                     tc.warmup_steps)

        self.set_aside = None
        if state is None:
            self.run_dir = ckpt.RunDir.create(self.lock.folder, checked=True)
            exp.save(self.run_dir.config)
            self.tokenizer.save(self.run_dir.tokenizer)
        else:
            self._restore(state_tensors, state)
            self.set_aside = _set_aside_after(self.run_dir, self.step) if self.from_step is not None else None
            self.run_dir.truncate_metrics_after(self.step)
            ckpt.truncate_jsonl_after(self.run_dir.path / "balance.jsonl", self.step)
            exp.save(self.run_dir.config)  # max_steps may have grown
        self.metrics = ckpt.MetricsWriter(self.run_dir.metrics)
        self.probe = self._probe_ids()
        self.tokens_per_step = tc.batch_size * tc.grad_accum_steps * exp.model.block_size
        report(RunStarted(
            run_dir=str(self.run_dir.path), device=describe_device(self.device), precision=self.precision.name,
            params=self.model.num_params(), start_step=self.step, max_steps=tc.max_steps,
            tokens_per_step=self.tokens_per_step, vocab_size=self.tokenizer.vocab_size,
            notes=tuple(self.lock.notes) + ((
                f"resuming from the checkpoint of step {self.step}; the later checkpoints, attention "
                f"snapshots and the old metrics.jsonl were moved to {self.set_aside}",) if self.set_aside else ()),
        ))

    def _claim_folder(self) -> None:
        """Lock the run folder before any work, so a second run on it refuses at once, and check under
        the lock that this run may write there (ownership.claim_run_folder)."""
        if self.lock is not None:
            return
        if self.resume_arg is not None:
            self._made_folder = False
            self.lock = claim_run_folder(self.resume_arg, resume=True)
            try:
                check_resume_folder(self.resume_arg)
            except BaseException:
                self.lock.release()
                self.lock = None
                raise
            return
        folder = self.run_dir_arg
        self._made_folder = folder is None or not folder.exists()
        if folder is None:
            folder = ckpt.RunDir.new_path(paths.runs_dir(), self.exp.name)
        self.lock = claim_run_folder(folder, overwrite=self.overwrite)

    def _probe_ids(self, text: str | None = None) -> list[int]:
        """The probe's token ids: the given text, else training.probe_text, else the start of the
        validation data (or of the first labelled example), cropped to the context."""
        T = self.exp.model.block_size
        text = self.exp.training.probe_text if text is None else text
        if text:
            ids = self.tokenizer.encode(text)[:T]
            if ids:
                return ids
        if self.data is not None:
            return [int(i) for i in self.data.split("val")[:T]]
        task = self.tasks[0]  # a labelled task: its first validation input, as the model sees it
        return task.sequences(task.examples["val"][0] if task.examples["val"] else task.examples["train"][0])[0][:T]

    # -- the loop ----------------------------------------------------------------------------

    def _loop(self) -> str:
        tc, report, control = self.exp.training, self.reporter.report, self.control
        if self.step == 0 and tc.attention_every:
            self._snapshot_attention()
        window_tokens, window_time = 0, 0.0
        while self.step < tc.max_steps:
            # Between steps: commands, pause, stop.
            self._run_commands(control.pending_commands())
            if control.paused:
                report(Paused(self.step))
                control.wait_while_paused(self._run_commands)  # commands meanwhile: at once
                if not control.stop_requested:
                    report(Resumed(self.step))
            if control.stop_requested:
                self._checkpoint_now()
                report(Finished(self.step, "stopped", str(self.run_dir.path), self._summary()))
                return "stopped"

            self._apply_freeze_plan()
            opt = self.optimizer
            t0 = time.perf_counter()
            lr = lr_at(self.step, tc) * self.plan.lr_multiplier(self.step, tc.learning_rate)
            for group in opt.param_groups:
                group["lr"] = lr * group["lr_scale"]
            loss_total, losses, grad_norm, balance = self._train_step()
            self.step += 1
            self.tokens_seen += self.tokens_per_step
            dt = time.perf_counter() - t0
            self.elapsed += dt
            window_tokens += self.tokens_per_step
            window_time += dt
            tps = window_tokens / window_time if window_time > 0 else 0.0
            if window_time > 2.0:  # a sliding-ish window: halve the history every 2 s
                window_tokens, window_time = window_tokens // 2, window_time / 2

            common = dict(step=self.step, split="train", lr=lr, tokens=self.tokens_seen,
                          time=round(self.elapsed, 4), tokens_per_s=round(tps, 1))
            if math.isfinite(grad_norm):
                common["grad_norm"] = grad_norm
            else:  # fp16: the scaler skipped this update (JSON has no inf; the curves show a gap)
                common["skipped"] = True
                grad_norm = math.nan
            if len(self.tasks) == 1:
                self.metrics.write(task=self.tasks[0].name, loss=loss_total, **common)
            else:
                self.metrics.write(task="total", loss=loss_total, **common)
                self.metrics.write_tasks(self.step, losses)
            report(StepMetrics(self.step, tc.max_steps, self.tokens_seen, self.elapsed, loss_total,
                               {k: v for k, v in losses.items() if not k.endswith("/accuracy")}, lr, grad_norm, tps,
                               self.group_norms))
            if balance is not None:
                report(balance)

            last = self.step == tc.max_steps
            if (tc.eval_every and self.step % tc.eval_every == 0) or last:
                self._evaluate()
                if self._early_stop_due():
                    self._restore_best()
                    report(Finished(self.step, "early_stopped", str(self.run_dir.path), self._summary()))
                    return "early_stopped"
            if tc.attention_every and (self.step % tc.attention_every == 0 or last):
                self._snapshot_attention()
            if last:
                self._checkpoint_now()
            elif tc.checkpoint_every and self.step % tc.checkpoint_every == 0:
                if self.verified_step == self.step:  # validation just computed a finite loss with them
                    self._save_checkpoint()
                else:
                    self.pending_checkpoint = True  # written during the next step, once verified
        report(Finished(self.step, "completed", str(self.run_dir.path), self._summary()))
        return "completed"

    def _run_commands(self, commands: list[tuple[str, tuple]]) -> None:
        """Commands from the RunControl, between two steps or while paused."""
        for cmd, args in commands:
            if cmd == SET_PROBE_TEXT:
                self._set_probe_text(args[0] if args else "")
            elif cmd == SNAPSHOT_ATTENTION:
                self._snapshot_attention()
            elif cmd == SAVE_CHECKPOINT:
                self._checkpoint_now()  # the weights are checked first: only good ones are saved

    def _set_probe_text(self, text: str) -> None:
        """Record attention on ``text`` from now on; the run's config.toml (and its next checkpoint)
        keep it, so a resumed run goes on with the same probe."""
        self.exp = self.exp.replace(training=dataclasses.replace(self.exp.training, probe_text=text))
        self.exp.save(self.run_dir.config)
        self.probe = self._probe_ids(text)
        self._snapshot_attention()

    def _apply_freeze_plan(self) -> None:
        """At a step boundary: if the plan trains other groups now, switch requires_grad and rebuild
        the optimizer from the trainable parameters, carrying AdamW state across by parameter."""
        groups = self.plan.trainable(self.step)
        if groups == self.trainable:
            return
        old = self.optimizer
        self.opt_stash.update(old.state)
        self.trainable = groups
        n = apply_trainable(self.model, groups)
        self.optimizer = build_optimizer(self.net, self.exp.training, self.device, self.lr_scales)
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                if p in self.opt_stash:
                    self.optimizer.state[p] = self.opt_stash.pop(p)
        self.reporter.report(FreezeChanged(self.step, sorted(groups), n, self.plan.describe(self.step)))

    def _early_stop_due(self) -> bool:
        """Track the early-stopping metric; save the best checkpoint; True when patience is spent."""
        name = self.exp.training.early_stopping_metric
        if not name:
            return False
        value = self.last_eval.get(name)
        if value is None:
            known = ", ".join(sorted(self.last_eval))
            raise TrainingError(f"training.early_stopping_metric = {name!r} is not measured; known: {known}.")
        lower_better = any(w in name for w in ("loss", "mse", "ppl"))
        better = self.best is None or (value < self.best[0] if lower_better else value > self.best[0])
        if better:
            self.best, self.evals_since_best = (value, self.step), 0
            self._save_checkpoint(best=True)
            return False
        self.evals_since_best += 1
        return self.evals_since_best >= self.exp.training.early_stopping_patience

    def _restore_best(self) -> None:
        """Early stopping ends on the best weights, not the last ones: load the best checkpoint's model."""
        tensors, _ = ckpt.load_checkpoint(self.run_dir.checkpoint_path(self.best[1]))
        state = {k: v for k, v in tensors.items() if k.startswith("model.")}
        self.net.load_state_dict(state, strict=False)
        self.reporter.report(Status(f"Early stopping: restored the best weights (step {self.best[1]}, "
                                    f"{self.exp.training.early_stopping_metric} = {self.best[0]:.4f})"))

    def _good_checkpoint(self) -> int | None:
        """The newest checkpoint whose weights gave a finite loss inside the divergence band."""
        steps = self.run_dir.checkpoint_steps()
        if self.watch.streak and self.watch.good_checkpoint in steps:
            return self.watch.good_checkpoint
        if self.watch.streak:
            steps = [s for s in steps if s < self.watch.streak_start - 1]
        return steps[-1] if steps else None

    def _set_aside_bad_checkpoints(self) -> str:
        """A diverged run: checkpoints written after the good one (while the loss was already out of
        its band) move to superseded/, so resume, generate and export never pick them by default."""
        if self.run_dir is None:
            return ""
        good = self._good_checkpoint()
        bad = [s for s in self.run_dir.checkpoint_steps() if good is None or s > good]
        if not bad:
            return ""
        aside = _set_aside_after(self.run_dir, good if good is not None else 0)
        return (f" The checkpoints of steps {', '.join(map(str, bad))} were written while the loss was already "
                f"out of its band; they were moved to {aside}.")

    def _advice(self) -> str:
        good = self._good_checkpoint()
        if good is None:
            return ("No checkpoint had been saved yet; start a new run with a lower training.learning_rate "
                    "or a smaller training.grad_clip.")
        return (f"The last good checkpoint is step {good} in {self.run_dir.checkpoints}; continue from it "
                f"with a lower learning rate: workbench train --resume {self.run_dir.path} --from-step {good} "
                f"--set training.learning_rate=... (or a smaller training.grad_clip, or precision fp32).")

    def _nan_message(self, what: str) -> str:
        return (f"Training diverged at step {self.step + 1}: {what}; stopped before the update, nothing "
                f"was written for this step. {self._advice()}")

    def _diverged_message(self) -> str:
        return (f"Training diverged at step {self.step + 1}: {self.watch.describe(self.step + 1)}. "
                f"{self._advice()} To turn the rule off: training.divergence_factor = 0.")

    def _checkpoint_now(self) -> None:
        """A checkpoint that cannot wait for the next step's loss (stop, the end, a request): check
        the weights on one validation batch per task first; weights giving a non-finite loss are never
        written, and then the message names the good checkpoint instead."""
        if self.verified_step != self.step:
            losses = self._quick_losses()
            bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
            if bad:
                raise Diverged(f"Training diverged by step {self.step}: the weights give a validation loss of "
                               f"{bad}; they were not saved. {self._advice()}")
            self.verified_step = self.step
        self._save_checkpoint()

    @torch.no_grad()
    def _quick_losses(self) -> dict[str, float]:
        """Each task's loss on one fixed validation batch, in eval mode (no RNG is consumed)."""
        self.model.eval()
        out = {}
        for i, task in enumerate(self.tasks):
            batch = {k: v.to(self.device) for k, v in
                     task.sample("val", self.exp.training.batch_size,
                                 torch.Generator().manual_seed(self.exp.training.seed + 1 + i)).items()}
            with self.precision.autocast(self.device):
                out[task.name] = float(task.forward(self.model, batch).loss)
        return out

    def _summary(self) -> dict[str, float]:
        out = {"steps": self.step, "tokens": self.tokens_seen, "seconds": round(self.elapsed, 2)}
        if self.best is not None:
            out["best_step"], out["best_value"] = self.best[1], self.best[0]
        if self.last_val_loss is not None:
            out["val_loss"] = self.last_val_loss
        return out

    # -- evaluation and probes ---------------------------------------------------------------

    def _train_step(self):
        """One optimizer step over the tasks the sampler picks; returns (total loss, per-task losses,
        gradient norm, TaskBalance or None)."""
        tc, mt = self.exp.training, self.exp.multitask
        model, opt, scaler = self.model, self.optimizer, self.scaler
        rng_before = _rng_state(self.batch_gen) if self.pending_checkpoint else None
        active = self.sampler.tasks_for_step(self.step, self.batch_gen)
        report_balance = len(self.tasks) > 1 and mt.conflict_every and (self.step + 1) % mt.conflict_every == 0
        need_grads = len(self.tasks) > 1 and (self.weighting.needs_task_grads or report_balance)
        task_grads = torch.zeros(len(self.tasks), sum(p.numel() for p in self.shared if p.requires_grad),
                                 device=self.device) if need_grads else None
        model.train()
        # Values stay on the device until one .tolist() after the step: a single host sync per step.
        terms: list[torch.Tensor] = []
        values: list[tuple[str, int, torch.Tensor]] = []  # (metric name, task index, value)
        for _ in range(tc.grad_accum_steps):
            for i in active:
                task = self.tasks[i]
                batch = {k: v.to(self.device, non_blocking=True)
                         for k, v in task.sample("train", tc.batch_size, self.batch_gen).items()}
                with self.precision.autocast(self.device):
                    out = task.forward(model, batch)
                term = self.weighting.term(i, out.loss) / tc.grad_accum_steps
                before = self._flat_shared_grad() if need_grads else None
                scaler.scale(term).backward()
                if need_grads:
                    task_grads[i] += self._flat_shared_grad() - before
                terms.append(term.detach())
                values.append((task.name, i, out.loss.detach() / tc.grad_accum_steps))
                values += [(f"{task.name}/{k}", -1, v / tc.grad_accum_steps) for k, v in out.metrics.items()]
        numbers = torch.stack(terms + [v for _, _, v in values]).float().tolist()
        total = sum(numbers[:len(terms)])
        sums: dict[str, float] = {}
        raw: dict[int, float] = {}
        for (name, i, _), x in zip(values, numbers[len(terms):]):
            sums[name] = sums.get(name, 0.0) + x
            if i >= 0:
                raw[i] = raw.get(i, 0.0) + x
        if not math.isfinite(total):
            raise Diverged(self._nan_message(f"the loss became {total}"))
        # Weights W_s just gave a finite loss; the watch sees it before anything is written. A pending
        # checkpoint of W_s stores the watch as it was after step s: a resume replays step s + 1.
        watch_before = self.watch.state() if self.pending_checkpoint else None
        diverged = self.watch.update(self.step + 1, total)
        if need_grads:
            combined = self.weighting.combine_shared(task_grads, active, self.batch_gen)
            if combined is not None:
                self._set_flat_shared_grad(combined)
        scaler.unscale_(opt)
        self.group_norms = self._group_grad_norms() if (self.step + 1) % 10 == 0 else None
        grad_norm = torch.nn.utils.clip_grad_norm_(
            self.net.parameters(), tc.grad_clip if tc.grad_clip > 0 else float("inf")).item()
        finite_grads = math.isfinite(grad_norm)
        if not finite_grads and not scaler.is_enabled():
            # Without a scaler nothing would skip this update: stop before the weights change.
            raise Diverged(self._nan_message(f"the gradient norm became {grad_norm} (the loss {total:.4g} "
                                             f"was finite)"))
        if finite_grads:
            self.verified_step = self.step
            if self.pending_checkpoint and not diverged:  # W_s, with the RNG states as this step began
                self._save_checkpoint(rng=rng_before, watch=watch_before)
        if diverged:
            raise Diverged(self._diverged_message())
        scale = scaler.get_scale() if scaler.is_enabled() else 1.0  # the scale the gradients carry
        scaler.step(opt)  # skips the update when the scaler found inf/NaN gradients
        scaler.update()
        opt.zero_grad(set_to_none=True)
        if scaler.is_enabled():
            # fp16: an overflowing step is skipped and the scale lowered; many in a row is divergence.
            self.skipped_in_row = 0 if finite_grads else self.skipped_in_row + 1
            if self.skipped_in_row >= MAX_SKIPPED_STEPS:
                raise Diverged(self._nan_message(
                    f"the gradients overflowed in {self.skipped_in_row} steps in a row (fp16 loss scale now "
                    f"{scaler.get_scale():g})"))
        balance = None
        if need_grads:
            last = self._last_shared_slice()
            norms = {i: float(task_grads[i, last].norm()) / scale for i in active}
            # A skipped step or non-finite norms teach GradNorm nothing and would poison its weights.
            measured = finite_grads and all(math.isfinite(v) for v in norms.values())
            if measured:
                self.weighting.after_step(raw, norms)
            if report_balance and measured:
                names = [t.name for t in self.tasks]
                conflict = conflict_matrix(task_grads, active).float().cpu().numpy()
                balance = TaskBalance(self.step + 1, names, self.weighting.weights(), conflict)
                with open(self.run_dir.path / "balance.jsonl", "a", encoding="utf-8") as f:
                    f.write(json.dumps({"step": balance.step, "tasks": names, "weights": balance.weights,
                                        "conflict": _nan_to_none(conflict.round(5).tolist())}) + "\n")
        return total, sums, grad_norm, balance

    def _group_grad_norms(self) -> dict[str, float]:
        """Gradient norm per layer group (embeddings, block.N, ln_f, heads): which layers learn."""
        sq: dict[str, torch.Tensor] = {}
        for name, p in self.model.named_parameters():
            if p.grad is not None:
                g = group_of(name)
                sq[g] = sq.get(g, 0.0) + p.grad.detach().float().pow(2).sum()
        names = list(sq)
        values = torch.stack([sq[n] for n in names]).sqrt().tolist() if names else []
        return dict(zip(names, values))

    def _flat_shared_grad(self) -> torch.Tensor:
        return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                          for p in self.shared if p.requires_grad])

    def _set_flat_shared_grad(self, flat: torch.Tensor) -> None:
        offset = 0
        for p in self.shared:
            if not p.requires_grad:
                continue
            n = p.numel()
            p.grad = flat[offset:offset + n].view_as(p).clone()
            offset += n

    def _last_shared_slice(self) -> slice:
        """Where the last block's MLP output weights sit in the flat shared gradient (GradNorm's W)."""
        target = self.model.transformer.h[-1].mlp.c_proj.weight
        offset = 0
        for p in self.shared:
            if not p.requires_grad:
                continue
            if p is target:
                return slice(offset, offset + p.numel())
            offset += p.numel()
        return slice(0, offset)

    @torch.no_grad()
    def evaluate(self, split: str = "val") -> tuple[dict[str, float], dict[str, float]]:
        """Per-task mean loss and metrics over eval_batches fixed batches (the same windows every
        time, from generators of their own, so evaluating never changes training)."""
        tc = self.exp.training
        self.model.eval()
        losses, metrics = {}, {}
        for i, task in enumerate(self.tasks):
            if hasattr(task, "evaluate"):  # labelled: the whole validation set, in order
                with self.precision.autocast(self.device):
                    losses[task.name], m = task.evaluate(self.model, tc.batch_size, self.device)
                metrics.update({f"{task.name}/{k}": v for k, v in m.items()})
                continue
            gen = torch.Generator().manual_seed(tc.seed + 1 + i)
            total, sums = 0.0, {}
            for _ in range(tc.eval_batches):
                batch = {k: v.to(self.device) for k, v in task.sample(split, tc.batch_size, gen).items()}
                with self.precision.autocast(self.device):
                    out = task.forward(self.model, batch)
                total += out.loss.item()
                for k, v in out.metrics.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
            losses[task.name] = total / tc.eval_batches
            metrics.update({f"{task.name}/{k}": v / tc.eval_batches for k, v in sums.items()})
            if task.kind == "causal_lm":
                metrics[f"{task.name}/ppl"] = math.exp(min(losses[task.name], 50.0))
        return losses, metrics

    def evaluate_loss(self, split: str = "val") -> float:
        """The first task's validation loss (the LM loss in a plain pretraining run)."""
        return next(iter(self.evaluate(split)[0].values()))

    def _evaluate(self) -> None:
        losses, metrics = self.evaluate("val")
        confusion = {t.name: t.last_confusion for t in self.tasks if getattr(t, "last_confusion", None) is not None}
        labels = {name: next(t for t in self.tasks if t.name == name).class_names() for name in confusion}
        self.last_val_loss = next(iter(losses.values()))
        bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
        if bad:  # never a quiet 0.000 or NaN in the curves: the weights are gone
            raise Diverged(f"Training diverged by step {self.step}: the validation loss is {bad}. {self._advice()}")
        self.verified_step = self.step
        self.last_eval = {**{f"{k}/loss": v for k, v in losses.items()}, **metrics}
        for name, loss in losses.items():
            extra = {k.split("/", 1)[1]: v for k, v in metrics.items() if k.startswith(name + "/")}
            self.metrics.write(step=self.step, split="val", task=name, loss=loss, tokens=self.tokens_seen,
                               time=round(self.elapsed, 4), **extra)
        self.reporter.report(EvalResult(self.step, self.tokens_seen, self.elapsed, losses, metrics, confusion, labels))

    @torch.no_grad()
    def attention_snapshot(self) -> AttentionSnapshot:
        self.model.eval()
        idx = torch.tensor([self.probe], dtype=torch.long, device=self.device)
        _, att = self.model.attention_maps(idx)  # (L, 1, H, T, T)
        arr = att[:, 0].float().cpu().numpy()
        return AttentionSnapshot(self.step, self.tokenizer.token_texts(self.probe), list(self.probe), arr)

    def _snapshot_attention(self) -> None:
        snap = self.attention_snapshot()
        ckpt.save_attention(self.run_dir.attention, snap.step, snap.attention, snap.tokens, snap.ids)
        self.reporter.report(snap)

    # -- checkpoints -------------------------------------------------------------------------

    def _save_checkpoint(self, best: bool = False, rng: dict | None = None, watch: dict | None = None) -> None:
        """Write the state after ``self.step`` steps (callers make sure its loss is known finite).
        ``rng``, ``watch``: the RNG states and the divergence watch as they were after that step, when
        the save happens during the next."""
        # net's names are "model.transformer...", "model.heads...", "balance..."; the tied output
        # embedding is stored once, as in GPT-2 files.
        tensors = {k: v for k, v in self.net.state_dict().items() if k != "model.lm_head.weight"}
        names = {p: n for n, p in self.net.named_parameters()}
        self.watch.checkpoint_written(self.step)  # before its state goes into this checkpoint
        opt_steps = {}
        for p, st in list(self.optimizer.state.items()) + list(self.opt_stash.items()):
            name = names[p]
            tensors[f"optim.{name}.exp_avg"] = st["exp_avg"]
            tensors[f"optim.{name}.exp_avg_sq"] = st["exp_avg_sq"]
            opt_steps[name] = float(st["step"])
        meta = {
            "step": self.step, "tokens": self.tokens_seen, "elapsed": self.elapsed,
            "experiment": self.exp.to_dict(), "vocab_size": self.tokenizer.vocab_size,
            "optimizer": {"steps": opt_steps}, "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "last_val_loss": self.last_val_loss, "rng": rng or _rng_state(self.batch_gen),
            "divergence": ({**watch, "good_checkpoint": self.watch.good_checkpoint} if watch is not None
                           else self.watch.state()),
            "skipped_in_row": self.skipped_in_row,
            "best": list(self.best) if self.best else None, "evals_since_best": self.evals_since_best,
            "trainable": sorted(self.trainable),
        }
        keep = {self.best[1]} if self.best else set()
        if self.watch.good_checkpoint is not None:  # the one a divergence message would name
            keep.add(self.watch.good_checkpoint)
        path = self.run_dir.save_checkpoint(self.step, tensors, meta, keep=self.exp.training.keep_checkpoints,
                                            protect=keep)
        if best:
            ckpt.atomic_write_json(self.run_dir.path / "best.json", {"step": self.step, "value": self.best[0],
                                   "metric": self.exp.training.early_stopping_metric})
        self.pending_checkpoint = False
        self.reporter.report(CheckpointSaved(self.step, str(path)))

    def _restore(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        """Every state of the checkpoint; a damaged one fails with its file named."""
        path = self.run_dir.checkpoint_path(meta["step"])
        if "rng" not in meta or "optimizer" not in meta:
            raise CheckpointError(f"{path}: holds a model but no training state (an imported model?), so it "
                                  f"cannot be resumed; fine-tune from it with finetune.init instead.")
        try:  # the JSON's types were checked on reading; what is inside them is checked here
            self._restore_state(tensors, meta)
        except (KeyError, TypeError, ValueError, RuntimeError, binascii.Error) as e:
            raise CheckpointError(f"{path}: damaged training state ({type(e).__name__}: {e}); resume from an "
                                  f"earlier checkpoint.", exit_code=1) from None

    def _restore_state(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        state = {k: v for k, v in tensors.items() if not k.startswith("optim.")}
        missing, unexpected = self.net.load_state_dict(state, strict=False)
        if [m for m in missing if m != "model.lm_head.weight"] or unexpected:
            raise CheckpointError(f"{self.run_dir.path}: checkpoint does not fit the model "
                                  f"(missing {missing[:3]}, unexpected {unexpected[:3]}).")
        in_optimizer = {p for g in self.optimizer.param_groups for p in g["params"]}
        # AdamW keeps `step` on the CPU, except fused/capturable kernels, which read it on the device.
        defaults = self.optimizer.defaults
        on_device = bool(defaults.get("fused") or defaults.get("capturable"))
        for name, p in self.net.named_parameters():
            if f"optim.{name}.exp_avg" in tensors:
                target = self.optimizer.state if p in in_optimizer else self.opt_stash
                target[p] = {
                    "step": torch.tensor(meta["optimizer"]["steps"][name], dtype=torch.float32,
                                         device=p.device if on_device else "cpu"),
                    "exp_avg": tensors[f"optim.{name}.exp_avg"].to(self.device),
                    "exp_avg_sq": tensors[f"optim.{name}.exp_avg_sq"].to(self.device),
                }
        if meta.get("scaler"):
            self.scaler.load_state_dict(meta["scaler"])
        self.step, self.tokens_seen, self.elapsed = meta["step"], meta["tokens"], meta["elapsed"]
        self.last_val_loss = meta.get("last_val_loss")
        self.best = tuple(meta["best"]) if meta.get("best") else None
        self.evals_since_best = meta.get("evals_since_best", 0)
        self.watch.load(meta.get("divergence"))
        skipped = meta.get("skipped_in_row", 0)
        self.skipped_in_row = skipped if isinstance(skipped, int) and not isinstance(skipped, bool) else 0
        self.verified_step = self.step  # only checkpoints whose loss was finite are written
        _set_rng_state(meta["rng"], self.batch_gen)

    def _resume_checkpoint(self) -> Path:
        if self.from_step is None:
            return self.run_dir.latest_checkpoint()
        steps = self.run_dir.checkpoint_steps()
        if self.from_step not in steps:
            raise CheckpointError(f"{self.run_dir.checkpoints}: no checkpoint of step {self.from_step}; "
                                  f"the complete ones are at steps {', '.join(map(str, steps)) or '(none)'}.")
        return self.run_dir.checkpoint_path(self.from_step)


# Settings that may differ on resume without changing the numbers already computed (the rates and
# clipping change only the steps still to come: they are how a diverged run is continued).
RESUMABLE = {"training.max_steps", "training.device", "training.threads", "training.eval_every",
             "training.checkpoint_every", "training.keep_checkpoints", "training.attention_every",
             "training.probe_text", "training.learning_rate", "training.min_lr", "training.grad_clip",
             "training.divergence_factor", "training.divergence_margin", "training.divergence_steps"}

MAX_SKIPPED_STEPS = 20  # fp16: overflowing steps in a row before the run counts as diverged


def _set_aside_after(run_dir: ckpt.RunDir, step: int) -> Path | None:
    """Resuming from an earlier checkpoint: move the later checkpoints and attention snapshots, and a
    copy of metrics.jsonl as it was, into superseded/after_step_N-TIME/ (nothing is deleted; the run
    folder then reads like a run that stopped at ``step``). Returns that folder, or None if empty."""
    import shutil

    later = [run_dir.checkpoint_path(s) for s in run_dir.checkpoint_steps() if s > step]
    later += [p.with_suffix(".safetensors") for p in later]
    later += [p for p in run_dir.attention.glob("step_*.safetensors") if _step_of(p) > step]
    best = run_dir.path / "best.json"
    if best.exists():
        try:
            if json.loads(best.read_text(encoding="utf-8")).get("step", 0) > step:
                later.append(best)
        except (OSError, ValueError):
            pass
    if not later:
        return None
    aside = run_dir.path / "superseded" / f"after_step_{step}-{time.strftime('%Y%m%d-%H%M%S')}"
    aside.mkdir(parents=True, exist_ok=True)
    if run_dir.metrics.exists():
        shutil.copy2(run_dir.metrics, aside / "metrics.jsonl")
    for p in later:
        if p.exists():
            dest = aside / p.relative_to(run_dir.path)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(p, dest)
    return aside


def _step_of(path: Path) -> int:
    digits = "".join(ch for ch in path.stem if ch.isdigit())
    return int(digits) if digits else -1


def _nan_to_none(rows: list[list[float]]) -> list[list[float | None]]:
    """JSON has no NaN: a pair that was not measured is null."""
    return [[None if isinstance(x, float) and math.isnan(x) else x for x in row] for row in rows]


def saved_experiment(run_dir: str | Path) -> Experiment:
    """The experiment a run folder was trained with (as it was, even where this machine has fewer cores:
    ``with_overrides`` and the trainer check those limits for the run about to start)."""
    from .config import load_experiment

    return load_experiment(ckpt.RunDir.open(Path(run_dir)).config, machine=False)


def check_resumable(saved: Experiment, wanted: Experiment, where: Path) -> None:
    """Refuse, in words a person can act on, a resume whose settings would change the numbers."""
    changed = [(k, a, b) for k, a, b in diff_experiments(saved, wanted) if k not in RESUMABLE]
    if changed:
        from .config import describe_settings

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


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state(batch_gen: torch.Generator) -> dict:
    state = {
        "torch": ckpt.tensor_to_b64(torch.get_rng_state()),
        "batches": ckpt.tensor_to_b64(batch_gen.get_state()),
        "python": _py_state_to_json(random.getstate()),
        "numpy": _np_state_to_json(np.random.get_state()),
    }
    if torch.cuda.is_available():
        state["cuda"] = [ckpt.tensor_to_b64(s) for s in torch.cuda.get_rng_state_all()]
    return state


def _set_rng_state(state: dict, batch_gen: torch.Generator) -> None:
    torch.set_rng_state(ckpt.b64_to_byte_tensor(state["torch"]))
    batch_gen.set_state(ckpt.b64_to_byte_tensor(state["batches"]))
    random.setstate(_py_state_from_json(state["python"]))
    np.random.set_state(_np_state_from_json(state["numpy"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([ckpt.b64_to_byte_tensor(s) for s in state["cuda"]])


def _py_state_to_json(st):
    version, internal, gauss = st
    return [version, list(internal), gauss]


def _py_state_from_json(st):
    version, internal, gauss = st
    return (version, tuple(internal), gauss)


def _np_state_to_json(st):
    name, keys, pos, has_gauss, gauss = st
    return [name, keys.tolist(), int(pos), int(has_gauss), float(gauss)]


def _np_state_from_json(st):
    name, keys, pos, has_gauss, gauss = st
    return (name, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss)
