"""The training loop: prepare data and model, step, evaluate, snapshot attention, checkpoint.

``Trainer(experiment).run(control, reporter)`` runs in whatever thread calls it (the CLI's main
thread, the GUI's worker QThread). It talks to the outside only through the reporter (events out)
and the RunControl (stop, pause, commands in), both polled between optimizer steps.
"""

from __future__ import annotations

import binascii
import json
import math
import os
import random
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
from .errors import Cancelled, CheckpointError, TrainingError, WorkbenchError
from .events import (AttentionSnapshot, CheckpointSaved, FreezeChanged, EvalResult, Failed, Finished, NullReporter, Paused,
                     Resumed, RunStarted, Status, StepMetrics, TaskBalance)
from .freezing import FreezePlan, apply_trainable, discriminative_scales, group_of
from .model import GPT, GPTConfig
from .multitask import TaskSampler, build_weighting, conflict_matrix
from .tasks import TaskContext, build_task
from .tokenizer import Tokenizer, train_tokenizer


@dataclass
class RunResult:
    status: str            # completed | stopped | failed
    run_dir: Path | None
    step: int
    message: str = ""
    last_val_loss: float | None = None
    error: WorkbenchError | None = None  # why it failed, when the engine knew (a ConfigError: a bad setting)


def lr_at(step: int, cfg) -> float:
    """Linear warmup to learning_rate, cosine decay to min_lr at lr_decay_steps, then min_lr."""
    decay_end = cfg.lr_decay_steps or cfg.max_steps
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / (cfg.warmup_steps + 1)
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
                 resume: str | Path | None = None, default_threads: int | None = None):
        """run_dir: where to write (default: a new folder under the data dir).
        resume: a run folder to continue from its latest checkpoint; ``experiment`` must then be
        its saved one (``saved_experiment``) with at most the RESUMABLE settings changed.
        default_threads: CPU threads when training.threads is 0 (the GUI passes cores - 1)."""
        self.exp = experiment
        self.run_dir_arg = Path(run_dir) if run_dir else None
        self.resume_arg = Path(resume) if resume else None
        self.default_threads = default_threads or os.cpu_count() or 1
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
        except Cancelled as e:
            reporter.report(Finished(self.step, "stopped", str(self.run_dir.path if self.run_dir else ""), {}))
            return RunResult("stopped", self.run_dir.path if self.run_dir else None, self.step, str(e))
        except WorkbenchError as e:
            reporter.report(Failed(self.step, str(e), "", str(self.run_dir.path) if self.run_dir else None))
            return RunResult("failed", self.run_dir.path if self.run_dir else None, self.step, str(e), error=e)
        except Exception as e:  # a bug or an environment problem: keep the traceback for the details
            msg = (self._out_of_memory_message(e) if is_out_of_memory(e)
                   else f"Training failed at step {self.step}: {type(e).__name__}: {e}")
            reporter.report(Failed(self.step, msg, traceback.format_exc(),
                                   str(self.run_dir.path) if self.run_dir else None))
            return RunResult("failed", self.run_dir.path if self.run_dir else None, self.step, msg)
        finally:
            if getattr(self, "metrics", None) is not None:
                self.metrics.close()
                self.metrics = None

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
        if self.resume_arg is not None:
            self.run_dir = ckpt.RunDir.open(self.resume_arg)
            state_tensors, state = ckpt.load_checkpoint(self.run_dir.latest_checkpoint())
            ckpt.require_keys(state, self.run_dir.latest_checkpoint(), "experiment", "vocab_size")
            saved = from_dict(state["experiment"], source=str(self.run_dir.config), machine=False)
            check_resumable(saved, self.exp, self.run_dir.path)
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

        if state is None:
            self.run_dir = (ckpt.RunDir.create(self.run_dir_arg) if self.run_dir_arg
                            else ckpt.RunDir.new(paths.runs_dir(), exp.name))
            exp.save(self.run_dir.config)
            self.tokenizer.save(self.run_dir.tokenizer)
        else:
            self._restore(state_tensors, state)
            self.run_dir.truncate_metrics_after(self.step)
            exp.save(self.run_dir.config)  # max_steps may have grown
        self.metrics = ckpt.MetricsWriter(self.run_dir.metrics)
        self.probe = self._probe_ids()
        self.tokens_per_step = tc.batch_size * tc.grad_accum_steps * exp.model.block_size
        report(RunStarted(
            run_dir=str(self.run_dir.path), device=describe_device(self.device), precision=self.precision.name,
            params=self.model.num_params(), start_step=self.step, max_steps=tc.max_steps,
            tokens_per_step=self.tokens_per_step, vocab_size=self.tokenizer.vocab_size,
        ))

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
            for cmd, args in control.pending_commands():
                if cmd == SET_PROBE_TEXT:
                    self.probe = self._probe_ids(args[0] if args else "")
                    self._snapshot_attention()
                elif cmd == SNAPSHOT_ATTENTION:
                    self._snapshot_attention()
                elif cmd == SAVE_CHECKPOINT:
                    self._save_checkpoint()
            if control.paused:
                report(Paused(self.step))
                control.wait_while_paused()
                if not control.stop_requested:
                    report(Resumed(self.step))
            if control.stop_requested:
                self._save_checkpoint()
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

            common = dict(step=self.step, split="train", lr=lr, grad_norm=grad_norm, tokens=self.tokens_seen,
                          time=round(self.elapsed, 4), tokens_per_s=round(tps, 1))
            if len(self.tasks) == 1:
                self.metrics.write(task=self.tasks[0].name, loss=loss_total, **common)
            else:
                self.metrics.write(task="total", loss=loss_total, **common)
                for name, value in losses.items():
                    self.metrics.write(step=self.step, split="train", task=name, loss=value)
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
            if (tc.checkpoint_every and self.step % tc.checkpoint_every == 0) or last:
                self._save_checkpoint()
        report(Finished(self.step, "completed", str(self.run_dir.path), self._summary()))
        return "completed"

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

    def _nan_message(self, loss: float) -> str:
        steps = self.run_dir.checkpoint_steps()
        kept = (f"The last good checkpoint (step {steps[-1]}) is kept in {self.run_dir.checkpoints}."
                if steps else "No checkpoint had been saved yet.")
        return (f"The loss became {loss} at step {self.step + 1}; training stopped. {kept} "
                f"Try a lower training.learning_rate, a smaller training.grad_clip, or precision fp32.")

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
            raise TrainingError(self._nan_message(total))
        if need_grads:
            combined = self.weighting.combine_shared(task_grads, active, self.batch_gen)
            if combined is not None:
                self._set_flat_shared_grad(combined)
        scaler.unscale_(opt)
        self.group_norms = self._group_grad_norms() if (self.step + 1) % 10 == 0 else None
        grad_norm = torch.nn.utils.clip_grad_norm_(
            self.net.parameters(), tc.grad_clip if tc.grad_clip > 0 else float("inf")).item()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        balance = None
        if need_grads:
            unscale = 1.0 / scaler.get_scale() if scaler.is_enabled() else 1.0
            last = self._last_shared_slice()
            norms = {i: float(task_grads[i, last].norm()) * unscale for i in active}
            self.weighting.after_step(raw, norms)
            if report_balance:
                names = [t.name for t in self.tasks]
                balance = TaskBalance(self.step + 1, names, self.weighting.weights(),
                                      conflict_matrix(task_grads).float().cpu().numpy())
                with open(self.run_dir.path / "balance.jsonl", "a", encoding="utf-8") as f:
                    f.write(json.dumps({"step": balance.step, "tasks": names, "weights": balance.weights,
                                        "conflict": balance.conflict.round(5).tolist()}) + "\n")
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

    def _save_checkpoint(self, best: bool = False) -> None:
        # net's names are "model.transformer...", "model.heads...", "balance..."; the tied output
        # embedding is stored once, as in GPT-2 files.
        tensors = {k: v for k, v in self.net.state_dict().items() if k != "model.lm_head.weight"}
        names = {p: n for n, p in self.net.named_parameters()}
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
            "last_val_loss": self.last_val_loss, "rng": _rng_state(self.batch_gen),
            "best": list(self.best) if self.best else None, "evals_since_best": self.evals_since_best,
            "trainable": sorted(self.trainable),
        }
        path = ckpt.save_checkpoint(self.run_dir.checkpoint_path(self.step), tensors, meta)
        if best:
            ckpt.atomic_write_json(self.run_dir.path / "best.json", {"step": self.step, "value": self.best[0],
                                   "metric": self.exp.training.early_stopping_metric})
        keep = {self.best[1]} if self.best else set()
        self.run_dir.prune_checkpoints(self.exp.training.keep_checkpoints, protect=keep)
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
        for name, p in self.net.named_parameters():
            if f"optim.{name}.exp_avg" in tensors:
                target = self.optimizer.state if p in in_optimizer else self.opt_stash
                target[p] = {
                    "step": torch.tensor(meta["optimizer"]["steps"][name], dtype=torch.float32),
                    "exp_avg": tensors[f"optim.{name}.exp_avg"].to(self.device),
                    "exp_avg_sq": tensors[f"optim.{name}.exp_avg_sq"].to(self.device),
                }
        if meta.get("scaler"):
            self.scaler.load_state_dict(meta["scaler"])
        self.step, self.tokens_seen, self.elapsed = meta["step"], meta["tokens"], meta["elapsed"]
        self.last_val_loss = meta.get("last_val_loss")
        self.best = tuple(meta["best"]) if meta.get("best") else None
        self.evals_since_best = meta.get("evals_since_best", 0)
        _set_rng_state(meta["rng"], self.batch_gen)


# Settings that may differ on resume without changing the numbers already computed.
RESUMABLE = {"training.max_steps", "training.device", "training.threads", "training.eval_every",
             "training.checkpoint_every", "training.keep_checkpoints", "training.attention_every",
             "training.probe_text"}


def saved_experiment(run_dir: str | Path) -> Experiment:
    """The experiment a run folder was trained with (as it was, even where this machine has fewer cores:
    ``with_overrides`` and the trainer check those limits for the run about to start)."""
    from .config import load_experiment

    return load_experiment(ckpt.RunDir.open(Path(run_dir)).config, machine=False)


def check_resumable(saved: Experiment, wanted: Experiment, where: Path) -> None:
    changed = [k for k, _, _ in diff_experiments(saved, wanted) if k not in RESUMABLE]
    if changed:
        raise CheckpointError(
            f"{where}: cannot resume with changed settings {', '.join(changed)}; on resume only "
            f"{', '.join(sorted(RESUMABLE))} may change. Start a new run to change the others.")


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
