"""``workbench bench train``: what the engine's loop costs over a bare PyTorch loop.

Both run the same model, optimizer settings and batches in one process, in alternating rounds
(so a noisy neighbour hurts both alike); the best round of each counts. Periodic evaluation,
attention snapshots and checkpoints are switched off for both: they are work the bare loop does
not do, and their cost is set by their own intervals, not by the loop.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time

import torch

from .config import Experiment
from .events import StepMetrics


class _StepClock:
    def __init__(self):
        self.times: list[float] = []

    def report(self, e) -> None:
        if isinstance(e, StepMetrics):
            self.times.append(time.perf_counter())


def _engine_round(exp: Experiment, steps: int, warmup: int, run_dir: str) -> float:
    from .trainer import Trainer

    tc = dataclasses.replace(exp.training, max_steps=warmup + steps, eval_every=0, attention_every=0,
                             checkpoint_every=0, warmup_steps=min(exp.training.warmup_steps, warmup + steps))
    clock = _StepClock()
    trainer = Trainer(exp.replace(training=tc), run_dir=run_dir)
    result = trainer.run(reporter=clock)
    if result.status != "completed":
        raise RuntimeError(result.message)
    t = clock.times
    tokens = steps * tc.batch_size * tc.grad_accum_steps * exp.model.block_size
    return tokens / (t[warmup + steps - 1] - t[warmup - 1])


def _bare_round(exp: Experiment, steps: int, warmup: int) -> float:
    """The same work written as plainly as possible: sample, forward, backward, clip, step."""
    from .trainer import Trainer, build_optimizer, lr_at

    tc = exp.training
    # Reuse the engine's preparation for data, model and device (the token cache is warm by now).
    with tempfile.TemporaryDirectory() as d:
        probe = Trainer(exp.replace(training=dataclasses.replace(tc, max_steps=1)), run_dir=os.path.join(d, "run"))
        probe.prepare()
        probe.metrics.close()
    model, data, device, prec = probe.model, probe.data, probe.device, probe.precision
    opt = build_optimizer(model, tc, device)
    scaler = torch.amp.GradScaler(device.type, enabled=prec.use_scaler)
    gen = torch.Generator().manual_seed(tc.seed)
    model.train()
    t_start = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t_start = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = lr_at(step, tc)
        for _ in range(tc.grad_accum_steps):
            x, y = data.batch("train", tc.batch_size, gen)
            with prec.autocast(device):
                _, loss = model(x.to(device), y.to(device))
            scaler.scale(loss / tc.grad_accum_steps).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip if tc.grad_clip > 0 else float("inf"))
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
    loss.item()  # wait for the device
    elapsed = time.perf_counter() - t_start
    return steps * tc.batch_size * tc.grad_accum_steps * exp.model.block_size / elapsed


def bench_train(exp: Experiment, steps: int = 60, warmup: int = 10, rounds: int = 2) -> dict:
    engine, bare = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            engine.append(_engine_round(exp, steps, warmup, os.path.join(tmp, f"run{r}")))
            bare.append(_bare_round(exp, steps, warmup))
    e, b = max(engine), max(bare)
    return {
        "bench": "train",
        "experiment": exp.name,
        "steps": steps,
        "rounds": rounds,
        "threads": torch.get_num_threads(),
        "tokens_per_s": round(e, 1),
        "bare_tokens_per_s": round(b, 1),
        "ratio": round(e / b, 4),
        "engine_rounds": [round(x, 1) for x in engine],
        "bare_rounds": [round(x, 1) for x in bare],
    }
