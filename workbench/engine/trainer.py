"""The training loop: prepare data and model, step, evaluate, snapshot attention, checkpoint.

``Trainer(experiment).run(control, reporter)`` runs in whatever thread calls it (the CLI's main
thread, the GUI's worker QThread). It talks to the outside only through the reporter (events out)
and the RunControl (stop, pause, commands in), both polled between optimizer steps.

How a run goes, in the order of this file:

1. ``prepare`` claims the run folder (ownership.py), picks threads, device and precision, seeds the
   RNGs, reads the corpus, loads or trains the tokenizer, fills the token cache, builds the model,
   the tasks and their heads, the multi-task weighting and AdamW, and on resume puts back every
   state of the checkpoint (checkpoint.py holds the optimizer and RNG (de)serialisation). All of it
   lands in one ``RunState`` (``Trainer.state``), the only thing the loop changes.
2. ``_loop``: between steps, commands (probe text, snapshot, checkpoint), pause (``_pause``) and
   stop; a freezing plan's change rebuilds the optimizer; the step's learning rate; ``_train_step``;
   a metrics row (``MetricsWriter``) and a ``StepMetrics`` event; at their intervals validation,
   early stopping, an attention snapshot and a checkpoint.
3. ``_train_step`` is nanoGPT's step: per micro-batch (and task the sampler picked) forward under
   autocast, loss / grad_accum_steps, backward through the grad scaler; then unscale, clip, step,
   update the scale, zero the gradients. Hung on it: multi-task runs' per-task gradients
   (``multitask.TaskGradients``: for GradNorm and the conflict matrix) and the divergence checks
   (``divergence.py``: a non-finite loss or gradient norm, or a loss out of its band, stops the run
   before the update).
4. A checkpoint holds only weights whose loss was seen finite: step s's periodic one is written
   during step s + 1, with the RNG states as step s + 1 began (so resuming is exact); one that
   cannot wait checks the weights first (``_checkpoint_now``).

Every failure becomes a ``Failed`` event and a ``RunResult``; ``run`` does not raise.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import paths
from . import checkpoint as ckpt
from .config import PRETRAINING_KINDS, Experiment, TrainingConfig, check_range, field_meta
from .control import CONTROL_FILE, SAVE_CHECKPOINT, SET_PROBE_TEXT, SNAPSHOT_ATTENTION, RunControl, write_status
from .corpus import Corpus
from .data import TokenData, build_token_cache, line_end_ids
from .device import (Precision, check_fits_memory, describe_device, is_out_of_memory, out_of_memory_message,
                     resolve_device)
from .distributed import Group, Replicas
from .divergence import DivergenceWatch, advice, band_message, nan_message, set_aside_bad_checkpoints
from .errors import Cancelled, CheckpointError, Diverged, TrainingError, WorkbenchError
from .events import (AttentionSnapshot, CheckpointSaved, FreezeChanged, EvalResult, Failed, Finished, NullReporter, Paused,
                     Resumed, RunStarted, Status, StepMetrics)
from .freezing import FreezePlan, apply_trainable, discriminative_scales
from .model import GPT, GPTConfig
from .multitask import TaskGradients, TaskSampler, Weighting, build_weighting
from .ownership import claim_run_folder, set_aside_after
from .speed import SpeedPlan
from .speed import configure as configure_speed
from .stepping import Tally, build_optimizer, group_grad_norms, lr_at
from .tasks import Task, TaskContext, build_task
from .tasks.validation import quick_losses, validate
from .tensorboard_log import check_available as check_tensorboard, tensorboard_for
from .tokenizer import Tokenizer, prepare_tokenizer


@dataclass
class RunResult:
    status: str            # completed | stopped | early_stopped | diverged | failed
    run_dir: Path | None
    step: int
    message: str = ""
    last_val_loss: float | None = None
    error: WorkbenchError | None = None  # why it failed, when the engine knew (a ConfigError: a bad setting)


@dataclass
class RunState:
    """Everything ``Trainer.prepare`` builds and the loop changes (``Trainer.state``)."""
    run_dir: ckpt.RunDir                   # a new run's is made once the model is built
    device: torch.device
    precision: Precision
    speed: SpeedPlan                       # compiled or not, and why (speed.py)
    tokenizer: Tokenizer
    data: TokenData | None                 # the token cache; None when every task is labelled
    model: GPT                             # the trunk, with the task heads in model.heads
    tasks: list[Task]
    sampler: TaskSampler                   # which tasks a step trains
    weighting: Weighting                   # how their losses combine (may learn: "balance.*")
    net: torch.nn.ModuleDict               # "model" + "balance": everything trained or checkpointed
    task_grads: TaskGradients              # per-task gradients of multi-task steps
    plan: FreezePlan
    lr_scales: dict[str, float]            # discriminative learning rates, by net parameter name
    trainable: set[str]                    # the parameter groups the plan trains now
    optimizer: torch.optim.AdamW
    scaler: torch.amp.GradScaler           # enabled for fp16 only
    batch_gen: torch.Generator             # every training batch comes from it: the data position
    watch: DivergenceWatch
    tokens_per_step: int
    group: Group = field(default_factory=Group)  # this process among the ranks of a torchrun run
    replicas: Replicas | None = None       # how the ranks' gradients become the global batch's
    opt_stash: dict = field(default_factory=dict)  # AdamW state of parameters frozen for now
    metrics: ckpt.MetricsWriter | None = None
    probe: list[int] = field(default_factory=list)  # token ids of the attention probe
    # where the run is (a checkpoint records these)
    step: int = 0
    tokens_seen: int = 0
    elapsed: float = 0.0
    last_val_loss: float | None = None
    best: tuple[float, int] | None = None  # (value, step) of the early-stopping metric
    evals_since_best: int = 0
    skipped_in_row: int = 0                # fp16: optimizer steps the grad scaler skipped in a row
    # "Good" weights are weights whose loss was computed and finite: verified_step is the step whose
    # weights that is known for; pending_checkpoint: a periodic checkpoint waits for the next step.
    verified_step: int | None = None
    pending_checkpoint: bool = False
    last_eval: dict[str, float] = field(default_factory=dict)
    group_norms: dict[str, float] | None = None


class Trainer:
    def __init__(self, experiment: Experiment, *, run_dir: str | Path | None = None,
                 resume: str | Path | None = None, from_step: int | None = None,
                 default_threads: int | None = None, overwrite: bool = False):
        """run_dir: where to write (default: a new folder under the data dir); a folder that holds a
        run is refused unless ``overwrite`` (its run files are deleted first; ownership.py).
        resume: a run folder to continue from its latest checkpoint; ``experiment`` must then be
        its saved one (``saved_experiment``) with at most the RESUMABLE settings changed.
        from_step: with resume, continue from the checkpoint of this step instead of the latest;
        later checkpoints and metrics are moved aside (``ownership.set_aside_after``).
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
        self.run_dir: ckpt.RunDir | None = None  # known before the state: a resume opens it first
        self.state: RunState | None = None       # set by prepare()
        self.control, self.reporter = RunControl(), NullReporter()
        self._status_on = False    # status.json is written from RunStarted on (control.py)
        self._started: dict = {}   # the RunStarted numbers, in every status.json
        self._acked: str | None = None  # the control request status.json last acknowledged
        self.group = Group()       # one process, until prepare() joins torchrun's process group

    # -- public entry ------------------------------------------------------------------------

    def run(self, control: RunControl | None = None, reporter=None) -> RunResult:
        """Prepare and train. Every end (done, stopped, diverged, failed) is reported and returned,
        never raised, so the GUI's worker and the CLI handle one path."""
        reporter = reporter or NullReporter()
        result = None
        try:
            result = self._run(control, reporter)
            return result
        finally:
            if result is not None:  # how the run ended (before the lock goes: a follower reads both)
                self._status(result.status, **({"message": result.message} if result.message else {}))
            self.close()

    def _run(self, control: RunControl | None, reporter) -> RunResult:
        try:
            s = self.prepare(control or RunControl(), reporter)
            status = self._loop()
            self.group.finished()  # torchrun: every rank ended here; they leave together
            return RunResult(status, s.run_dir.path, s.step, last_val_loss=s.last_val_loss)
        except Diverged as e:
            msg = str(e) + (set_aside_bad_checkpoints(self.state.watch, self.state.run_dir) if self.group.writes else "")
            if self.state.metrics is not None:
                # one line saying why the run ended (`workbench runs` shows "diverged"); its step is the
                # failed one, later than any checkpoint, so a resume drops it like other later lines
                self.state.metrics.event(self.state.step + 1, "diverged", msg)
            return self._failed(reporter, msg, status="diverged", last_val_loss=self.state.last_val_loss)
        except Cancelled as e:
            folder = self.run_dir.path if self.run_dir else None
            reporter.report(Finished(self._at(), "stopped", str(folder or ""), {}))
            return RunResult("stopped", folder, self._at(), str(e))
        except WorkbenchError as e:
            msg = str(e)
            if isinstance(e, ckpt.WriteError) and not e.intact_noted and self.run_dir is not None:
                msg += " " + self.run_dir.intact_note()
            return self._failed(reporter, msg, error=e)
        except OSError as e:
            if e.errno not in ckpt.DISK_ERRNOS:
                raise
            err = ckpt.write_error(Path(e.filename or (self.run_dir.path if self.run_dir else ".")), e)
            note = self.run_dir.intact_note() if self.run_dir else ""
            return self._failed(reporter, f"{err} {note}", traceback.format_exc())
        except Exception as e:  # a bug or an environment problem: keep the traceback for the details
            lost = self.group.lost_rank_message(e, self._at())  # another rank died or hangs
            if lost:
                return self._failed(reporter, lost)
            msg = (out_of_memory_message(e, self._at(), self.exp, self.state.model if self.state else None)
                   if is_out_of_memory(e) else f"Training failed at step {self._at()}: {type(e).__name__}: {e}")
            return self._failed(reporter, msg, traceback.format_exc())

    def _failed(self, reporter, msg: str, details: str = "", *, status: str = "failed",
                error: WorkbenchError | None = None, last_val_loss: float | None = None) -> RunResult:
        folder = self.run_dir.path if self.run_dir else None
        reporter.report(Failed(self._at(), msg, details, str(folder) if folder else None))
        return RunResult(status, folder, self._at(), msg, last_val_loss, error)

    def _at(self) -> int:
        return self.state.step if self.state is not None else 0

    def _status(self, state: str, **extra) -> None:
        """status.json: the run's state and the last control.json request it carried out, for a
        window following the run from another process (control.py; docs/RUN_FOLDERS.md)."""
        if not self._status_on or self.run_dir is None or not self.group.writes:  # rank 0 alone
            return
        self._acked = self.control.acknowledged
        try:
            write_status(self.run_dir.path, state, self._at(), self._acked, started=self._started, **extra)
        except (OSError, WorkbenchError):
            pass  # advisory: a full disk is reported by the writes that matter (checkpoints, metrics)

    def close(self) -> None:
        """Close the metrics file and release the run folder (run() does it; call it after prepare()
        alone). A folder this run made and never wrote its config to is removed again."""
        if self.state is not None and self.state.metrics is not None:
            self.state.metrics.close()
            self.state.metrics = None
        if self.lock is not None:
            self.lock.release(made_folder=self._made_folder)
            self.lock = None
        self.group.close()

    # -- preparation -------------------------------------------------------------------------

    def prepare(self, control: RunControl | None = None, reporter=None) -> RunState:
        """Everything before the first step: run folder, corpus, tokenizer, token cache, model,
        optimizer, restored state. ``run`` calls it; benchmarks call it alone."""
        self.control = control or self.control
        self.reporter = reporter or self.reporter
        report = self.reporter.report
        saved = None  # (tensors, meta) of the checkpoint a resume continues from
        tc = self.exp.training
        # torchrun: join the other ranks (each on its own GPU); one process: a no-op
        self.group = Group.from_env(resolve_device(tc.device), tc.dist_timeout)
        self.group.check_batch(tc.batch_size)
        if self.exp.logging.tensorboard:  # a missing optional package: said before anything is written
            check_tensorboard()
        if self.group.writes:  # rank 0 alone owns and writes the run folder, and reads control.json
            self._claim_folder()
            self.control.watch_file(self.lock.folder / CONTROL_FILE)  # pause/stop from another process
        if self.resume_arg is not None:
            self.run_dir = ckpt.RunDir.open(self.resume_arg)
            saved = self.run_dir.read_resume(self.from_step, self.exp)
        exp, tc = self.exp, self.exp.training

        # checked here too: an experiment built in code or resumed from a bigger machine skipped it
        check_range(tc.threads, "training.threads", field_meta(TrainingConfig, "threads"))
        torch.set_num_threads(max(1, tc.threads or self.default_threads))
        device = self.group.device(resolve_device(tc.device))
        _seed_everything(tc.seed)

        init = None
        if exp.finetune.init:
            from .loading import load_trained

            report(Status(f"Loading the pretrained model from {exp.finetune.init}"))
            init = load_trained(exp.finetune.init, with_heads=False)
            if exp.model != init.experiment.model:  # the checkpoint decides the shape
                self.exp = exp = exp.replace(model=init.experiment.model)
        tokenizer, data = self.group.after_rank0(  # rank 0 fills the token cache, the others read it
            "data", lambda: self._read_data(exp, resumed=saved is not None, init=init))

        gconf = GPTConfig.from_model_config(exp.model, tokenizer.vocab_size)
        check_fits_memory(gconf, tc.batch_size // self.group.world, device)
        model = GPT(gconf)
        if init is not None:
            model.load_state_dict(init.model.state_dict(), strict=False)
        report(Status("Reading the tasks' data"))
        ctx = TaskContext(tokenizer, data, exp.model.n_embd, exp.model.block_size)
        tasks = [build_task(t, ctx) for t in exp.tasks]
        for task in tasks:
            head = task.build_head()
            if head is not None:
                head.apply(GPT.init_weights)
                model.heads[task.name] = head
        weighting = build_weighting(list(exp.tasks), exp.multitask)
        net = torch.nn.ModuleDict({"model": model, "balance": weighting}).to(device)
        plan = FreezePlan(exp.finetune, exp.model.n_layer)
        lr_scales = {f"model.{k}": v for k, v in discriminative_scales(model, exp.finetune, exp.model.n_layer).items()}
        trainable = plan.trainable(saved[1]["step"] if saved else 0)
        apply_trainable(model, trainable)
        speed = configure_speed(model, tasks, tc, device, saved[1] if saved else None, report,  # compile, precision
                                processes=self.group.world)
        self.state = s = RunState(
            run_dir=self.run_dir, device=device, precision=speed.precision, speed=speed, tokenizer=tokenizer, data=data,
            model=model, tasks=tasks, sampler=TaskSampler(list(exp.tasks), exp.multitask), weighting=weighting,
            net=net, task_grads=TaskGradients(model, weighting, [t.name for t in tasks], exp.multitask.conflict_every),
            plan=plan, lr_scales=lr_scales, trainable=trainable,
            optimizer=build_optimizer(net, tc, device, lr_scales),
            scaler=torch.amp.GradScaler(device.type, enabled=speed.precision.use_scaler),
            batch_gen=torch.Generator().manual_seed(tc.seed),
            watch=DivergenceWatch(tc.divergence_factor, tc.divergence_margin, tc.divergence_steps, tc.warmup_steps),
            tokens_per_step=tc.batch_size * tc.grad_accum_steps * exp.model.block_size, group=self.group)

        set_aside, writes = None, self.group.writes
        if saved is None and writes:
            self.run_dir = s.run_dir = ckpt.RunDir.create(self.lock.folder, checked=True)
            exp.save(s.run_dir.config)
            tokenizer.save(s.run_dir.tokenizer)
        if saved is None:  # the other ranks learn the folder's name (for their messages)
            self.run_dir = s.run_dir = ckpt.RunDir(Path(self.group.path_from_rank0(writes and str(s.run_dir.path))))
        else:
            ckpt.restore_training_state(s, *saved)
        if saved is not None and writes:
            set_aside = set_aside_after(s.run_dir, s.step) if self.from_step is not None else None
            s.run_dir.truncate_metrics_after(s.step)
            ckpt.truncate_jsonl_after(s.run_dir.balance, s.step)
            exp.save(s.run_dir.config)  # max_steps may have grown
        s.replicas = Replicas(self.group, net, tasks, device)  # after the restore: DDP copies rank 0's weights
        self.group.own_dropout(tc.seed, s.step)
        s.metrics = (ckpt.MetricsWriter(s.run_dir.metrics, tensorboard_for(exp, s.run_dir.path, s.step, saved is not None))
                     if writes else None)
        s.probe = self._probe_ids()
        started = RunStarted(
            run_dir=str(s.run_dir.path), device=describe_device(device), precision=s.precision.name,
            speed=speed.reason, compiled=speed.compile, compile_seconds=round(speed.compile_seconds, 2),
            params=model.num_params(), start_step=s.step, max_steps=tc.max_steps,
            tokens_per_step=s.tokens_per_step, vocab_size=tokenizer.vocab_size,
            notes=tuple(self.lock.notes if self.lock else ())
            + ((self.group.describe(device, tc.batch_size),) if self.group.active else ()) + ((
                f"resuming from the checkpoint of step {s.step}; the later checkpoints, attention "
                f"snapshots and the old metrics.jsonl were moved to {set_aside}",) if set_aside else ()),
        )
        report(started)
        self._status_on = True
        self._started = {k: v for k, v in dataclasses.asdict(started).items() if k != "notes"}
        self._status("running")
        return s

    def _read_data(self, exp: Experiment, *, resumed: bool, init) -> tuple[Tokenizer, TokenData | None]:
        """The tokenizer (the run's on resume, the pretrained model's when fine-tuning, else loaded or
        trained) and, when a task pretrains, the corpus encoded into the token cache."""
        report, should_stop = self.reporter.report, lambda: self.control.stop_requested
        tokenizer, data = None, None
        if resumed and self.run_dir.tokenizer.exists():
            tokenizer = Tokenizer.load(self.run_dir.tokenizer)
        elif init is not None:
            tokenizer = init.tokenizer
        pretraining = any(t.kind in PRETRAINING_KINDS for t in exp.tasks)
        if pretraining or tokenizer is None:
            report(Status("Reading the corpus"))
            corpus = Corpus.from_config(exp.corpus)
            if tokenizer is None:
                tokenizer = prepare_tokenizer(exp, corpus, reporter=self.reporter, should_stop=should_stop)
            if pretraining:
                report(Status("Encoding the corpus", 0.0))
                cache = build_token_cache(
                    corpus, tokenizer, paths.cache_dir(), should_stop=should_stop,
                    progress=lambda chars, toks: report(Status(f"Encoding the corpus: {toks:,} tokens")),
                )
                ends = line_end_ids(tokenizer) if exp.corpus.window_start == "line" else None
                data = TokenData.from_cache(cache, exp.corpus.val_fraction, exp.model.block_size, ends)
        return tokenizer, data

    def _claim_folder(self) -> None:
        """Lock the run folder before any work, so a second run on it refuses at once, and check under
        the lock that this run may write there (ownership.claim_run_folder)."""
        if self.lock is not None:
            return
        if self.resume_arg is not None:
            self.lock = claim_run_folder(self.resume_arg, resume=True)
            return
        folder = self.run_dir_arg
        self._made_folder = folder is None or not folder.exists()
        if folder is None:
            folder = ckpt.RunDir.new_path(paths.runs_dir(), self.exp.name)
        self.lock = claim_run_folder(folder, overwrite=self.overwrite)

    def _probe_ids(self, text: str | None = None) -> list[int]:
        """The probe's token ids: the given text, else training.probe_text, else the start of the
        validation data (or of the first labelled example), cropped to the context."""
        s, T = self.state, self.exp.model.block_size
        text = self.exp.training.probe_text if text is None else text
        if text:
            ids = s.tokenizer.encode(text)[:T]
            if ids:
                return ids
        if s.data is not None:
            return [int(i) for i in s.data.split("val")[:T]]
        task = s.tasks[0]  # a labelled task: its first validation input, as the model sees it
        return task.sequences(task.examples["val"][0] if task.examples["val"] else task.examples["train"][0])[0][:T]

    # -- the loop ----------------------------------------------------------------------------

    def _loop(self) -> str:
        s, tc, report, control = self.state, self.exp.training, self.reporter.report, self.control
        if s.step == 0 and tc.attention_every:
            self._snapshot_attention()
        window_tokens, window_time = 0, 0.0
        while s.step < tc.max_steps:
            # Between steps: commands, pause, stop.
            self._run_commands(control.pending_commands())
            if (control.paused and not self.group.active) or self.group.pause_seen:  # N: rank 0 was asked
                self._pause()
            elif control.acknowledged != self._acked and not control.stop_requested:
                self._status("running")  # a request that changed nothing (resume a running run); a stop
                # is answered by the status it ends with, after its checkpoint
            if self.group.should_stop(control.stop_requested):  # on N processes: asked on any rank
                self._checkpoint_now()
                report(Finished(s.step, "stopped", str(s.run_dir.path), self._summary()))
                return "stopped"

            self._apply_freeze_plan()
            t0 = time.perf_counter()
            lr = lr_at(s.step, tc) * s.plan.lr_multiplier(s.step, tc.learning_rate)
            for group in s.optimizer.param_groups:
                group["lr"] = lr * group["lr_scale"]
            loss, losses, grad_norm, balance = self._train_step()
            s.step += 1
            s.tokens_seen += s.tokens_per_step
            dt = time.perf_counter() - t0
            s.elapsed += dt
            window_tokens += s.tokens_per_step
            window_time += dt
            tps = window_tokens / window_time if window_time > 0 else 0.0
            if window_time > 2.0:  # a sliding-ish window: halve the history every 2 s
                window_tokens, window_time = window_tokens // 2, window_time / 2

            if s.metrics is not None:  # rank 0 writes
                s.metrics.train_step(s.step, [t.name for t in s.tasks], loss, losses, lr=lr, tokens=s.tokens_seen,
                                     elapsed=s.elapsed, tokens_per_s=tps, grad_norm=grad_norm)
            report(StepMetrics(s.step, tc.max_steps, s.tokens_seen, s.elapsed, loss,
                               {k: v for k, v in losses.items() if not k.endswith("/accuracy")}, lr,
                               grad_norm if math.isfinite(grad_norm) else math.nan, tps, s.group_norms))
            if balance is not None:
                report(balance)

            last = s.step == tc.max_steps
            if (tc.eval_every and s.step % tc.eval_every == 0) or last:
                self._evaluate()
                if self._early_stop_due():
                    self._restore_best()
                    report(Finished(s.step, "early_stopped", str(s.run_dir.path), self._summary()))
                    return "early_stopped"
            if tc.attention_every and (s.step % tc.attention_every == 0 or last):
                self._snapshot_attention()
            if last:
                self._checkpoint_now()
            elif tc.checkpoint_every and s.step % tc.checkpoint_every == 0:
                if s.verified_step == s.step:  # validation just computed a finite loss with them
                    self._save_checkpoint()
                else:
                    s.pending_checkpoint = True  # written during the next step, once verified
        report(Finished(s.step, "completed", str(s.run_dir.path), self._summary()))
        return "completed"

    def _train_step(self) -> tuple[float, dict[str, float], float, object]:
        """One optimizer step over the tasks the sampler picks; returns (total loss, per-task losses
        and metrics, gradient norm (inf or NaN: fp16's scaler skipped the update), TaskBalance or None)."""
        s, tc = self.state, self.exp.training
        model, optimizer, scaler = s.model, s.optimizer, s.scaler
        rng_before = ckpt.rng_state(s.batch_gen) if s.pending_checkpoint else None
        active = s.sampler.tasks_for_step(s.step, s.batch_gen)  # [0] in a single-task run
        s.task_grads.start(s.step + 1, active)
        model.train()
        tally = Tally()
        for micro in range(tc.grad_accum_steps):
            for i in active:
                task = s.tasks[i]
                # every rank draws the global batch (one generator, as one process would) and trains its rows
                batch = {k: v.to(s.device, non_blocking=True)
                         for k, v in s.group.shard(task.sample("train", tc.batch_size, s.batch_gen)).items()}
                with s.replicas.accumulating(micro < tc.grad_accum_steps - 1):  # DDP syncs the last one
                    with s.precision.autocast(s.device):
                        out = s.replicas.forward(i, batch)
                    loss = s.weighting.term(i, out.loss) / tc.grad_accum_steps
                    with s.task_grads.measure(i):  # multi-task: this task's share of the gradient
                        scaler.scale(loss).backward()
                tally.add(i, task.name, loss, out, tc.grad_accum_steps)
        s.replicas.reduce(s.task_grads)  # multi-task on N processes: global (per-task) gradients
        total, sums, raw, _ = tally.read(s.group, self.control.stop_requested, self.control.paused)  # means over ranks
        if not math.isfinite(total):
            raise self._nan(f"the loss became {total}")
        # Weights W_s just gave a finite loss; the watch sees it before anything is written. A pending
        # checkpoint of W_s stores the watch as it was after step s: a resume replays step s + 1.
        watch_before = s.watch.state() if s.pending_checkpoint else None
        diverged = s.watch.update(s.step + 1, total)
        s.task_grads.combine(s.batch_gen)
        scaler.unscale_(optimizer)
        s.group_norms = group_grad_norms(model) if (s.step + 1) % 10 == 0 else None
        grad_norm = torch.nn.utils.clip_grad_norm_(
            s.net.parameters(), tc.grad_clip if tc.grad_clip > 0 else float("inf")).item()
        finite_grads = math.isfinite(grad_norm)
        if not finite_grads and not scaler.is_enabled():
            # Without a scaler nothing would skip this update: stop before the weights change.
            raise self._nan(f"the gradient norm became {grad_norm} (the loss {total:.4g} was finite)")
        if finite_grads:
            s.verified_step = s.step
            if s.pending_checkpoint and not diverged:  # W_s, with the RNG states as this step began
                self._save_checkpoint(rng=rng_before, watch=watch_before)
        if diverged:
            raise Diverged(band_message(s.step + 1, s.watch, s.run_dir))
        scale = scaler.get_scale() if scaler.is_enabled() else 1.0  # the scale the gradients carry
        scaler.step(optimizer)  # skips the update when the scaler found inf/NaN gradients
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        if scaler.is_enabled():
            # fp16: an overflowing step is skipped and the scale lowered; many in a row is divergence.
            s.skipped_in_row = 0 if finite_grads else s.skipped_in_row + 1
            if s.skipped_in_row >= MAX_SKIPPED_STEPS:
                raise self._nan(f"the gradients overflowed in {s.skipped_in_row} steps in a row (fp16 loss "
                                f"scale now {scaler.get_scale():g})")
        balance = s.task_grads.finish(s.step + 1, raw, finite_grads, scale)
        if balance is not None and s.group.writes:
            s.run_dir.append_balance(balance)
        return total, sums, grad_norm, balance

    def _nan(self, what: str) -> Diverged:
        """The step under way met something non-finite (``what``): stop before its update."""
        s = self.state
        return Diverged(nan_message(s.step + 1, what, s.watch, s.run_dir))

    def _pause(self) -> None:
        """Wait at this step boundary while paused, doing commands; on N processes every rank waits."""
        s, control, writes = self.state, self.control, self.group.writes
        if writes:
            self.reporter.report(Paused(s.step))
            self._status("paused")
        # wait_while_paused returns None: the answer is whether the pause ended in a stop
        if not self.group.pause_together(lambda: control.wait_while_paused(self._run_commands)
                                         or control.stop_requested) and writes:
            self.reporter.report(Resumed(s.step))
            self._status("running")

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
        self.exp.save(self.state.run_dir.config)
        self.state.probe = self._probe_ids(text)
        self._snapshot_attention()

    def _apply_freeze_plan(self) -> None:
        """At a step boundary: if the plan trains other groups now, switch requires_grad and rebuild
        the optimizer from the trainable parameters, carrying AdamW state across by parameter."""
        s = self.state
        groups = s.plan.trainable(s.step)
        if groups == s.trainable:
            return
        s.opt_stash.update(s.optimizer.state)
        s.trainable = groups
        n = apply_trainable(s.model, groups)
        s.replicas.rebuild()  # DDP fixes its trainable set when built
        s.optimizer = build_optimizer(s.net, self.exp.training, s.device, s.lr_scales)
        for group in s.optimizer.param_groups:
            for p in group["params"]:
                if p in s.opt_stash:
                    s.optimizer.state[p] = s.opt_stash.pop(p)
        self.reporter.report(FreezeChanged(s.step, sorted(groups), n, s.plan.describe(s.step)))

    def _early_stop_due(self) -> bool:
        """Track the early-stopping metric; save the best checkpoint; True when patience is spent."""
        s, name = self.state, self.exp.training.early_stopping_metric
        if not name:
            return False
        value = s.last_eval.get(name)
        if value is None:
            known = ", ".join(sorted(s.last_eval))
            raise TrainingError(f"training.early_stopping_metric = {name!r} is not measured; known: {known}.")
        lower_better = any(w in name for w in ("loss", "mse", "ppl"))
        better = s.best is None or (value < s.best[0] if lower_better else value > s.best[0])
        if better:
            s.best, s.evals_since_best = (value, s.step), 0
            self._save_checkpoint(best=True)
            return False
        s.evals_since_best += 1
        return s.evals_since_best >= self.exp.training.early_stopping_patience

    def _restore_best(self) -> None:
        """Early stopping ends on the best weights, not the last ones: load the best checkpoint's model."""
        s = self.state
        if not s.group.writes:  # the run ends here; only rank 0's weights are looked at again
            return
        tensors, _ = ckpt.load_checkpoint(s.run_dir.checkpoint_path(s.best[1]))
        s.net.load_state_dict({k: v for k, v in tensors.items() if k.startswith("model.")}, strict=False)
        self.reporter.report(Status(f"Early stopping: restored the best weights (step {s.best[1]}, "
                                    f"{self.exp.training.early_stopping_metric} = {s.best[0]:.4f})"))

    def _summary(self) -> dict[str, float]:
        s = self.state
        out = {"steps": s.step, "tokens": s.tokens_seen, "seconds": round(s.elapsed, 2)}
        if s.best is not None:
            out["best_step"], out["best_value"] = s.best[1], s.best[0]
        if s.last_val_loss is not None:
            out["val_loss"] = s.last_val_loss
        return out

    # -- evaluation and probes ---------------------------------------------------------------

    def _evaluate(self) -> None:
        s = self.state
        losses, metrics = validate(s.model, s.tasks, self.exp.training, s.device, s.precision)
        # every rank validates the same weights; rank 0's numbers decide for all (early stopping)
        numbers = s.group.from_rank0([*losses.values(), *metrics.values()], s.device)
        losses, metrics = dict(zip(losses, numbers)), dict(zip(metrics, numbers[len(losses):]))
        confusion = {t.name: t.last_confusion for t in s.tasks if getattr(t, "last_confusion", None) is not None}
        labels = {name: next(t for t in s.tasks if t.name == name).class_names() for name in confusion}
        s.last_val_loss = next(iter(losses.values()))
        bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
        if bad:  # never a quiet 0.000 or NaN in the curves: the weights are gone
            raise Diverged(f"Training diverged by step {s.step}: the validation loss is {bad}. "
                           f"{advice(s.watch, s.run_dir)}")
        s.verified_step = s.step
        s.last_eval = {**{f"{k}/loss": v for k, v in losses.items()}, **metrics}
        if s.metrics is not None:
            s.metrics.validation(s.step, losses, metrics, tokens=s.tokens_seen, elapsed=s.elapsed)
        self.reporter.report(EvalResult(s.step, s.tokens_seen, s.elapsed, losses, metrics, confusion, labels))

    @torch.no_grad()
    def attention_snapshot(self) -> AttentionSnapshot:
        s = self.state
        s.model.eval()
        idx = torch.tensor([s.probe], dtype=torch.long, device=s.device)
        _, att = s.model.attention_maps(idx)  # (L, 1, H, T, T)
        arr = att[:, 0].float().cpu().numpy()
        return AttentionSnapshot(s.step, s.tokenizer.token_texts(s.probe), list(s.probe), arr)

    def _snapshot_attention(self) -> None:
        if not self.group.writes:  # rank 0 records attention; the others' weights are the same
            return
        snap = self.attention_snapshot()
        ckpt.save_attention(self.state.run_dir.attention, snap.step, snap.attention, snap.tokens, snap.ids)
        self.state.metrics.attention(snap.step, snap.attention)
        self.reporter.report(snap)

    # -- checkpoints -------------------------------------------------------------------------

    def _checkpoint_now(self) -> None:
        """A checkpoint that cannot wait for the next step's loss (stop, the end, a request): check
        the weights on one validation batch per task first; weights giving a non-finite loss are never
        written, and then the message names the good checkpoint instead."""
        s = self.state
        if s.verified_step != s.step and self.group.writes:
            losses = quick_losses(s.model, s.tasks, self.exp.training, s.device, s.precision)
            bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
            if bad:
                raise Diverged(f"Training diverged by step {s.step}: the weights give a validation loss of "
                               f"{bad}; they were not saved. {advice(s.watch, s.run_dir)}")
            s.verified_step = s.step
        self._save_checkpoint()

    def _save_checkpoint(self, best: bool = False, rng: dict | None = None, watch: dict | None = None) -> None:
        """Write the state after ``state.step`` steps (callers make sure its loss is known finite).
        ``rng``, ``watch``: the RNG states and the divergence watch as they were after that step, when
        the save happens during the next."""
        s, tc = self.state, self.exp.training
        s.watch.checkpoint_written(s.step)  # before its state goes into this checkpoint
        if not s.group.writes:  # rank 0 writes; the others keep their state in step with it
            s.pending_checkpoint = False
            return
        tensors, meta = ckpt.training_checkpoint(s, self.exp, rng=rng, watch=watch)
        keep = {s.best[1]} if s.best else set()
        if s.watch.good_checkpoint is not None:  # the one a divergence message would name
            keep.add(s.watch.good_checkpoint)
        path = s.run_dir.save_checkpoint(s.step, tensors, meta, keep=tc.keep_checkpoints, protect=keep)
        if best:
            ckpt.atomic_write_json(s.run_dir.path / "best.json", {"step": s.step, "value": s.best[0],
                                   "metric": tc.early_stopping_metric})
        s.pending_checkpoint = False
        self.reporter.report(CheckpointSaved(s.step, str(path)))


MAX_SKIPPED_STEPS = 20  # fp16: overflowing steps in a row before the run counts as diverged


def saved_experiment(run_dir: str | Path) -> Experiment:
    """The experiment a run folder was trained with (as it was, even where this machine has fewer cores:
    ``with_overrides`` and the trainer check those limits for the run about to start)."""
    from .config import load_experiment

    return load_experiment(ckpt.RunDir.open(Path(run_dir)).config, machine=False)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
