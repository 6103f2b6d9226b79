"""``workbench bench train``: the engine's step against a bare PyTorch loop, with and without its speed-ups.

Three loops run the same model, optimizer settings and batches in one process, in alternating
rounds (so a noisy neighbour hurts each alike): the engine as configured ("default":
training.compile, .precision and .attention, "auto" resolved first as a real run of the experiment
would resolve it, probe or cache included), the engine with every speed-up off (eager, fp32, SDPA)
and the bare fp32 eager loop (sample, forward, backward, clip, step: the stand-in for a plain reference
implementation). Each step is timed on its own and the figures are tokens per step over the
*median* step time of all rounds: on a small shared machine a burst of noise lands in a few steps,
and the median ignores them where a round's mean would not. Periodic evaluation, attention
snapshots and checkpoints are switched off: they are work the bare loop does not do.

``ratio`` is exactly tokens/s of the default configuration over tokens/s of the bare loop (same
model, same batches, same run); ``ratio_vs_off`` the default over the engine with speed-ups off.
Compile time (the warm-up before step 1; the first one may fill inductor's cache) is reported apart.
Beside them: model FLOPs per second (``model_stats``' 6N + attention convention) over the rate of
one large fp32 and bf16 matmul in the same process with the same threads (``mfu``, ``mfu_bf16``),
and the process's peak memory.
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
from workbench.engine.events import RunStarted, StepMetrics


class _StepClock:
    def __init__(self):
        self.times: list[float] = []
        self.started: RunStarted | None = None

    def report(self, e) -> None:
        if isinstance(e, StepMetrics):
            self.times.append(time.perf_counter())
        elif isinstance(e, RunStarted):
            self.started = e


def _engine_round(exp: Experiment, steps: int, warmup: int, run_dir: str) -> tuple[list[float], RunStarted]:
    """Seconds of each measured step of ``Trainer.run`` (from one step's report to the next, so the
    loop's own work between steps counts), and the run's RunStarted (its speed choice)."""
    from workbench.engine.trainer import Trainer

    tc = dataclasses.replace(exp.training, max_steps=warmup + steps, eval_every=0, attention_every=0,
                             checkpoint_every=0, warmup_steps=min(exp.training.warmup_steps, warmup + steps))
    clock = _StepClock()
    result = Trainer(exp.replace(training=tc), run_dir=run_dir).run(reporter=clock)
    if result.status != "completed":  # a bad setting stays one (exit 2); anything else failed the run (1)
        raise result.error if isinstance(result.error, ConfigError) else TrainingError(result.message, exit_code=1)
    t = clock.times[warmup - 1:warmup + steps]
    return [b - a for a, b in zip(t, t[1:])], clock.started


def _with_speed(exp: Experiment, compile: str, precision: str, attention: str) -> Experiment:
    return exp.replace(training=dataclasses.replace(exp.training, compile=compile, precision=precision,
                                                    attention=attention))


def chosen_configuration(exp: Experiment, run_dir: str):
    """What a real run of ``exp`` (its own max_steps) would use: the SpeedPlan ``Trainer.prepare``
    settles (probing, or reading the probe's cache, and compiling when chosen)."""
    from workbench.engine.trainer import Trainer

    t = Trainer(exp, run_dir=run_dir)
    try:
        return t.prepare().speed
    finally:
        t.close()


def _bare_round(exp: Experiment, steps: int, warmup: int):
    """The same work written as plainly as possible: sample, forward, backward, clip, step.
    Returns (seconds of each measured step, the model)."""
    from workbench.engine.stepping import build_optimizer, lr_at
    from workbench.engine.trainer import Trainer

    exp = _with_speed(exp, "off", "fp32", "sdpa")  # the plain loop: fp32, eager, SDPA
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


def matmul_gflops(device: torch.device, n: int = 1024, seconds: float = 0.5,
                  dtype: torch.dtype = torch.float32) -> float:
    """GFLOP/s of an n x n x n matmul in ``dtype``, best of a few timed batches: the machine's practical peak."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
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


# --size: the experiment's own model, or a 10-20M parameter one (nanoGPT's GPU Shakespeare shape)
SIZES = {"experiment": [], "10m": ["model.n_layer=6", "model.n_head=6", "model.n_embd=384", "model.block_size=256"]}


def bench_train(exp: Experiment, steps: int = 60, warmup: int = 10, rounds: int = 2) -> dict:
    """Three loops over the same model and batches, in alternating rounds: the engine as configured
    ("default": training.compile / precision as set, auto resolved as a real run of the experiment
    would), the engine with every speed-up off (eager, fp32, SDPA) and the bare fp32 eager loop.
    ``ratio`` is tokens/s of the default over the bare loop's."""
    from workbench.engine.model import model_stats

    if warmup < 1 or steps < 2 or rounds < 1:
        raise ConfigError(f"bench train needs --warmup >= 1, --steps >= 2 and --rounds >= 1 (got {warmup}, "
                          f"{steps}, {rounds}).")
    engine: list[list[float]] = []
    off: list[list[float]] = []
    bare: list[list[float]] = []
    compile_s: list[float] = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        plan = chosen_configuration(exp, os.path.join(tmp, "plan"))
        choose_s = time.perf_counter() - t0
        chosen = _with_speed(exp, "on" if plan.compile else "off", plan.precision.name, plan.attention)
        for r in range(rounds):
            times, started = _engine_round(chosen, steps, warmup, os.path.join(tmp, f"run{r}"))
            engine.append(times)
            compile_s.append(started.compile_seconds)
            off.append(_engine_round(_with_speed(exp, "off", "fp32", "sdpa"), steps, warmup, os.path.join(tmp, f"off{r}"))[0])
            times, model = _bare_round(exp, steps, warmup)
            bare.append(times)
    tokens = exp.training.batch_size * exp.training.grad_accum_steps * exp.model.block_size
    e_med = statistics.median(t for r in engine for t in r)
    o_med = statistics.median(t for r in off for t in r)
    b_med = statistics.median(t for r in bare for t in r)
    flops_per_token = model_stats(model.config).flops_per_token  # the real vocabulary, specials included
    device = next(model.parameters()).device
    peak = matmul_gflops(device)
    peak_bf16 = matmul_gflops(device, dtype=torch.bfloat16)
    model_gflops = flops_per_token * tokens / e_med / 1e9
    return {
        "bench": "train",
        "experiment": exp.name,
        "params": model.num_params(),
        "steps": steps,
        "rounds": rounds,
        "threads": torch.get_num_threads(),
        "device": str(device),
        "configuration": {"compile": plan.compile, "precision": plan.precision.name, "attention": plan.attention,
                          "reason": plan.reason},
        "choose_seconds": round(choose_s, 1),
        "compile_seconds": round(plan.compile_seconds, 1),
        "compile_seconds_rounds": [round(x, 1) for x in compile_s],
        "tokens_per_s": round(tokens / e_med, 1),
        "off_tokens_per_s": round(tokens / o_med, 1),
        "bare_tokens_per_s": round(tokens / b_med, 1),
        "ratio": round(b_med / e_med, 4),
        "ratio_vs_off": round(o_med / e_med, 4),
        "off_ratio": round(b_med / o_med, 4),
        "step_ms": round(1000 * e_med, 2),
        "off_step_ms": round(1000 * o_med, 2),
        "bare_step_ms": round(1000 * b_med, 2),
        "engine_rounds_tokens_per_s": [round(tokens * len(r) / sum(r), 1) for r in engine],
        "off_rounds_tokens_per_s": [round(tokens * len(r) / sum(r), 1) for r in off],
        "bare_rounds_tokens_per_s": [round(tokens * len(r) / sum(r), 1) for r in bare],
        "flops_per_token": flops_per_token,
        "model_gflops": round(model_gflops, 2),
        "matmul_peak_gflops": round(peak, 1),
        "matmul_bf16_peak_gflops": round(peak_bf16, 1),
        "mfu": round(model_gflops / peak, 3),
        "mfu_bf16": round(model_gflops / peak_bf16, 3),
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
