"""``workbench bench train``: what the engine's loop costs over a bare PyTorch loop.

Both run the same model, optimizer settings and batches in one process, in alternating rounds
(so a noisy neighbour hurts both alike). Each step is timed on its own and the figures are
tokens per step over the *median* step time of all rounds: on a small shared machine a burst of
noise lands in a few steps, and the median ignores them where a round's mean would not.
Periodic evaluation, attention snapshots and checkpoints are switched off for both: they are
work the bare loop does not do, and their cost is set by their own intervals, not by the loop.

Beside the ratio it prints how close the model runs to the machine: model FLOPs per second
(``model_stats``' 6N + attention convention) over the rate of one large fp32 matmul measured in
the same process with the same threads (``mfu``). On a CPU that number, not the ratio, says
whether a faster loop is still possible.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import tempfile
import time

import torch

from workbench.engine.config import Experiment
from workbench.engine.errors import ConfigError, TrainingError
from workbench.engine.events import StepMetrics


class _StepClock:
    def __init__(self):
        self.times: list[float] = []

    def report(self, e) -> None:
        if isinstance(e, StepMetrics):
            self.times.append(time.perf_counter())


def _engine_round(exp: Experiment, steps: int, warmup: int, run_dir: str) -> list[float]:
    """Seconds of each measured step of ``Trainer.run`` (from one step's report to the next, so the
    loop's own work between steps counts)."""
    from workbench.engine.trainer import Trainer

    tc = dataclasses.replace(exp.training, max_steps=warmup + steps, eval_every=0, attention_every=0,
                             checkpoint_every=0, warmup_steps=min(exp.training.warmup_steps, warmup + steps))
    clock = _StepClock()
    result = Trainer(exp.replace(training=tc), run_dir=run_dir).run(reporter=clock)
    if result.status != "completed":  # a bad setting stays one (exit 2); anything else failed the run (1)
        raise result.error if isinstance(result.error, ConfigError) else TrainingError(result.message, exit_code=1)
    t = clock.times[warmup - 1:warmup + steps]
    return [b - a for a, b in zip(t, t[1:])]


def _bare_round(exp: Experiment, steps: int, warmup: int):
    """The same work written as plainly as possible: sample, forward, backward, clip, step.
    Returns (seconds of each measured step, the model)."""
    from workbench.engine.stepping import build_optimizer, lr_at
    from workbench.engine.trainer import Trainer

    tc = exp.training
    # Reuse the engine's preparation for data, model and device (the token cache is warm by now).
    with tempfile.TemporaryDirectory() as d:
        probe = Trainer(exp.replace(training=dataclasses.replace(tc, max_steps=1)), run_dir=os.path.join(d, "run"))
        state = probe.prepare()
        probe.close()  # closes the metrics file and releases the run folder
    model, data, device, prec = state.model, state.data, state.device, state.precision
    opt = build_optimizer(model, tc, device)
    scaler = torch.amp.GradScaler(device.type, enabled=prec.use_scaler)
    gen = torch.Generator().manual_seed(tc.seed)
    model.train()
    marks = []
    for step in range(warmup + steps):
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
        loss.item()  # wait for the device, as the engine's one sync per step does
        if step >= warmup - 1:
            marks.append(time.perf_counter())
    return [b - a for a, b in zip(marks, marks[1:])], model


def matmul_gflops(device: torch.device, n: int = 1024, seconds: float = 0.5) -> float:
    """fp32 GFLOP/s of an n x n x n matmul, best of a few timed batches: the machine's practical peak."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    a @ b
    sync()
    best, spent = 0.0, 0.0
    while spent < seconds:
        t0 = time.perf_counter()
        for _ in range(4):
            a @ b
        sync()
        dt = time.perf_counter() - t0
        spent += dt
        best = max(best, 4 * 2 * n ** 3 / dt / 1e9)
    return best


def bench_train(exp: Experiment, steps: int = 60, warmup: int = 10, rounds: int = 2) -> dict:
    from workbench.engine.model import model_stats

    if warmup < 1 or steps < 2 or rounds < 1:
        raise ConfigError(f"bench train needs --warmup >= 1, --steps >= 2 and --rounds >= 1 (got {warmup}, "
                          f"{steps}, {rounds}).")
    engine: list[list[float]] = []
    bare: list[list[float]] = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            engine.append(_engine_round(exp, steps, warmup, os.path.join(tmp, f"run{r}")))
            times, model = _bare_round(exp, steps, warmup)
            bare.append(times)
    tokens = exp.training.batch_size * exp.training.grad_accum_steps * exp.model.block_size
    e_med = statistics.median(t for r in engine for t in r)
    b_med = statistics.median(t for r in bare for t in r)
    flops_per_token = model_stats(model.config).flops_per_token  # the real vocabulary, specials included
    device = next(model.parameters()).device
    peak = matmul_gflops(device)
    model_gflops = flops_per_token * tokens / e_med / 1e9
    return {
        "bench": "train",
        "experiment": exp.name,
        "steps": steps,
        "rounds": rounds,
        "threads": torch.get_num_threads(),
        "device": str(device),
        "tokens_per_s": round(tokens / e_med, 1),
        "bare_tokens_per_s": round(tokens / b_med, 1),
        "ratio": round(b_med / e_med, 4),
        "step_ms": round(1000 * e_med, 2),
        "bare_step_ms": round(1000 * b_med, 2),
        "engine_rounds_tokens_per_s": [round(tokens * len(r) / sum(r), 1) for r in engine],
        "bare_rounds_tokens_per_s": [round(tokens * len(r) / sum(r), 1) for r in bare],
        "flops_per_token": flops_per_token,
        "model_gflops": round(model_gflops, 2),
        "matmul_peak_gflops": round(peak, 1),
        "mfu": round(model_gflops / peak, 3),
        "load_avg": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "max_rss_mb": round(_max_rss_mb(), 1),
        "cuda_max_allocated_mb": (round(torch.cuda.max_memory_allocated() / 2**20, 1)
                                  if device.type == "cuda" else None),
    }


def _max_rss_mb() -> float:
    """This process's peak resident memory (Linux reports KiB, macOS bytes)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10
