"""How fast a run steps: torch.compile, the precision and the attention kernel, chosen per machine by
measurement.

``training.compile`` (auto/on/off), ``training.precision`` (auto/fp32/bf16/fp16) and
``training.attention`` (auto/sdpa/explicit) come here once the model and tasks are built
(``configure``, called from ``Trainer.prepare``). "auto" is never a guess:

- a run too short to pay for compiling is not probed: when ``max_steps`` eager steps (two timed)
  take under ``PAYBACK_SECONDS``, it trains eagerly (the demo, tests, short fine-tunes);
- otherwise a probe times forward + backward of copies of the model, interleaved (a noisy
  neighbour slows each alike): fp32, and on a CPU with bf16 instructions bf16, each with PyTorch's
  fused attention (SDPA) and with attention written out, eagerly; then each precision with its
  faster kernel compiled. A variant wins only when it is ``MARGIN`` faster than fp32 eager SDPA
  (or than what the settings fix), so the choice never makes a run slower than eager by more than
  noise. (The kernel matters: on an AVX512-BF16 CPU at block size 64, SDPA's bf16 backward is
  about 3x its fp32 one, so bf16 only pays with attention written out; docs/BENCHMARKS.md). A
  variant that fails in the probe (a compile error, out of memory) is left out and named in the
  reason; attention written out is only tried where its saved weights fit ``WRITTEN_OUT_BYTES``;
- the result is cached as JSON (``probe.json`` in the workbench cache) per CPU model, core and
  thread count, device, torch version and model shape: the next run reads it and probes nothing.

Compiling is ``nn.Module.compile`` in place: the module keeps its parameters and names (checkpoints
hold no ``_orig_mod.`` prefixes), ``model(...)`` runs compiled code, and ``hidden_states`` /
``attention_maps`` called directly (the explicit attention path of snapshots and probes) stay
eager. Graphs are compiled by a warm-up forward + backward here, so compile time is counted apart
from the steps and a failed compile (no C++ compiler, a compiler error) falls back to eager with a
message instead of failing the run. The warm-up draws its batch from a generator of its own and
restores every RNG, so the run's numbers do not depend on whether it compiled. Inductor's compiled
code is cached between runs under the workbench cache (``inductor/``).

A freezing plan that changes which weights train makes the compiled graph recompile at the next
step (guards on ``requires_grad``); the recompile limit is raised so a gradual unfreezing of every
layer stays compiled.
"""

from __future__ import annotations

import copy
import json
import os
import platform
import shutil
import statistics
import sys
import time
from dataclasses import dataclass

import torch

from .. import paths
from .device import Precision, resolve_precision

PAYBACK_SECONDS = 60.0   # auto probes only runs whose eager steps take at least this long
MARGIN = 1.05            # a variant must be this much faster than the baseline to be chosen
PROBE_SECONDS = 3.0      # timed, interleaved steps of the probe (after compiling)
RECOMPILE_LIMIT = 64     # graphs per compiled function: train/eval x each freezing stage
WRITTEN_OUT_BYTES = 2**30  # auto tries attention written out only where its saved weights fit this


@dataclass(frozen=True)
class SpeedPlan:
    """What a run uses, and why (one line for a person: the window's Training page, the CLI)."""
    compile: bool
    precision: Precision
    reason: str
    compile_seconds: float = 0.0   # the warm-up that compiled the graphs (0 when eager)
    attention: str = "sdpa"        # the training path's attention kernel: sdpa or explicit (model.py)

    def to_json(self) -> dict:
        return {"compile": self.compile, "precision": self.precision.name, "attention": self.attention}


# -- what this machine has -------------------------------------------------------------------


def cpp_compiler() -> str | None:
    """The C++ compiler inductor's CPU backend would call (its config, i.e. $CXX or g++; cl on
    Windows), found on PATH; None when there is none."""
    if sys.platform == "win32":
        names = [os.environ.get("CXX", "cl")]
    else:
        try:
            from torch._inductor import config as inductor_config

            cxx = inductor_config.cpp.cxx
            names = [c for c in (cxx if isinstance(cxx, (list, tuple)) else (cxx,)) if c]
        except Exception:  # inductor missing from this torch build
            return None
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def compiler_missing(device: torch.device) -> str | None:
    """Why torch.compile cannot work on ``device`` here, with what to install; None when it can."""
    if device.type == "cpu":
        if cpp_compiler() is None:
            how = ("install the Xcode command line tools (xcode-select --install)" if sys.platform == "darwin"
                   else "install Visual Studio's C++ build tools" if sys.platform == "win32"
                   else "install g++ (Debian/Ubuntu: apt install g++) or set $CXX")
            return f"no C++ compiler found (inductor's CPU backend needs one): {how}"
        return None
    if device.type == "cuda":
        try:
            from torch.utils._triton import has_triton
        except ImportError:
            return "this torch has no Triton for compiling GPU kernels: pip install triton"
        return None if has_triton() else "Triton is not installed (pip install triton)"
    return f"torch.compile is not used on {device.type}"


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_bf16() -> bool:
    """The CPU has bf16 instructions (AVX512-BF16 or AMX), where bf16 autocast may pay."""
    flags = cpu_flags()
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def use_cache_dir() -> None:
    """Keep inductor's compiled code (its FX graph and autograd caches) in the workbench cache, so a
    second run of the same shapes skips the C++ compiles; an explicit TORCHINDUCTOR_CACHE_DIR wins."""
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(paths.cache_dir() / "inductor"))


# -- the probe's cache -------------------------------------------------------------------------


def probe_cache_path():
    return paths.cache_dir() / "speed" / "probe.json"


def probe_key(model, tasks, tc, device: torch.device) -> str:
    c = model.config
    where = cpu_name() if device.type == "cpu" else torch.cuda.get_device_name(device) if device.type == "cuda" \
        else device.type
    if os.environ.get("ATEN_CPU_CAPABILITY"):  # kernels held to a lesser ISA (how docs/BENCHMARKS.md
        where += f" as {os.environ['ATEN_CPU_CAPABILITY']}"  # measured an AVX2-only CPU)
    return (f"{where} | {os.cpu_count()} cores, {torch.get_num_threads()} threads | {device.type} | torch "
            f"{torch.__version__} | L{c.n_layer} H{c.n_head} C{c.n_embd} T{c.block_size} V{c.vocab_size} "
            f"B{tc.batch_size} dropout {c.dropout} bias {c.bias} | {'+'.join(t.kind for t in tasks)}")


def _read_cache() -> dict:
    try:
        data = json.loads(probe_cache_path().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(key: str, entry: dict) -> None:
    path = probe_cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _read_cache()
        data[key] = entry
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError:  # a read-only cache only costs the next run a probe
        pass


# -- timing ------------------------------------------------------------------------------------


class _Variant:
    """A copy of the model trained forward + backward on one fixed batch: eager or compiled, in one
    precision, with one attention kernel."""

    def __init__(self, model, task, batch, device, variant: tuple[bool, str, str]):
        compiled, precision, attention = variant
        self.model = copy.deepcopy(model)
        self.model.attention_kernel = attention
        self.task, self.batch, self.device = task, batch, device
        self.precision = resolve_precision(precision, device)
        self.times: list[float] = []
        if compiled:
            self.model.compile(dynamic=False)

    def step(self) -> float:
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        t0 = time.perf_counter()
        _forward_backward(self.model, self.task, self.batch, self.device, self.precision)
        sync()
        return time.perf_counter() - t0


def _forward_backward(model, task, batch, device, precision: Precision) -> None:
    model.train()
    with precision.autocast(device):
        out = task.forward(model, batch)
    out.loss.backward()
    for p in model.parameters():
        p.grad = None


def _probe_batch(task, tc, device) -> dict:
    gen = torch.Generator().manual_seed(0)  # its own: the run's batches stay where they are
    return {k: v.to(device) for k, v in task.sample("train", tc.batch_size, gen).items()}


def _measure(model, tasks, tc, device, variants: list[tuple[bool, str, str]], seconds: float) -> dict:
    """Speed of each (compiled, precision, attention) variant over the first (the baseline):
    {"compiled bf16 + explicit attention": ratio, ...}, the baseline's step in ms and the seconds
    the compiles took."""
    with _own_rng(device):  # dropout in the probe must not move the run's RNG
        return _measure_variants(model, tasks[0], tc, device, variants, seconds)


def _own_rng(device: torch.device):
    return torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else [])


def _measure_variants(model, task, tc, device, variants, seconds) -> dict:
    """A variant whose first step fails (a compile error, out of memory) is left out and named in
    "failed", with speed 0; only the baseline's failure is the run's (it trains that way)."""
    batch = _probe_batch(task, tc, device)
    runs, failed = [], {}
    compile_s = 0.0
    for variant in variants:
        try:
            v = _Variant(model, task, batch, device, variant)
            t0 = time.perf_counter()
            v.step()  # compiles a compiled variant; warms the caches of an eager one
        except Exception as e:
            if not runs:
                raise
            failed[_name(*variant)] = f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:120]}"
            if device.type == "cuda":
                torch.cuda.empty_cache()
            continue
        if variant[0]:
            compile_s = max(compile_s, time.perf_counter() - t0)
        runs.append((variant, v))
    t_end = time.perf_counter() + seconds
    rounds = 0
    while rounds < 3 or (time.perf_counter() < t_end and rounds < 50):
        for _, v in runs:
            v.times.append(v.step())
        rounds += 1
    base = statistics.median(runs[0][1].times)
    speedups = {_name(*variant): round(base / statistics.median(v.times), 3) for variant, v in runs}
    return {"speedups": {**speedups, **{n: 0.0 for n in failed}}, "failed": failed,
            "step_ms": round(1000 * base, 2), "compile_seconds": round(compile_s, 1), "rounds": rounds}


def _name(compiled: bool, precision: str, attention: str = "sdpa") -> str:
    return f"{'compiled' if compiled else 'eager'} {precision}" + (
        " + explicit attention" if attention == "explicit" else "")


# -- the choice --------------------------------------------------------------------------------


def configure(model, tasks, tc, device: torch.device, saved: dict | None = None, report=None, *,
              processes: int = 1) -> SpeedPlan:
    """Decide compile, precision and attention kernel for this run (see the module's docstring),
    set them on ``model`` (compiled in place when chosen) and return the plan. ``saved``: the meta of
    the checkpoint a resume continues from: "auto" then keeps what the run used (a resume stays
    exact); a run saved before these settings existed trained eagerly, with SDPA, in fp32 on a CPU.
    On N ``processes`` (torchrun) every rank must choose alike, so nothing is probed: auto is eager
    SDPA in the device's default precision."""
    import dataclasses

    from .events import Status

    if processes > 1:
        tc = dataclasses.replace(tc, compile="off" if tc.compile == "auto" else tc.compile,
                                 precision=resolve_precision(tc.precision, device).name,
                                 attention="sdpa" if tc.attention == "auto" else tc.attention)

    use_cache_dir()
    say = (report or (lambda e: None))
    plan = _choose(model, tasks, tc, device, saved, lambda m: say(Status(m)))
    model.attention_kernel = plan.attention
    if not plan.compile:
        return plan
    missing = compiler_missing(device)
    if missing:
        return dataclasses.replace(plan, compile=False, reason=f"eager: training.compile = {tc.compile!r}, but "
                                   f"{missing}; training eagerly")
    say(Status("Compiling the model (torch.compile; cached for the next run)"))
    try:
        seconds = compile_in_place(model, tasks, tc, device, plan.precision)
    except Exception as e:  # never a failed run for a failed compile
        uncompile(model)
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        return dataclasses.replace(plan, compile=False, reason=f"eager: training.compile = {tc.compile!r}, but "
                                   f"compiling failed ({type(e).__name__}: {first}); training eagerly")
    return dataclasses.replace(plan, reason=f"{plan.reason}; compiled in {seconds:.1f} s", compile_seconds=seconds)


def _plan(variant: tuple[bool, str, str], device, reason: str) -> SpeedPlan:
    compiled, precision, attention = variant
    return SpeedPlan(compiled, resolve_precision(precision, device), reason, attention=attention)


def _choose(model, tasks, tc, device, saved, status) -> SpeedPlan:
    fixed_prec = None if tc.precision == "auto" else tc.precision
    fixed_attn = None if tc.attention == "auto" else tc.attention
    if saved is not None and (tc.compile == "auto" or fixed_prec is None or fixed_attn is None):
        was = saved.get("speed") or {"compile": False, "precision": resolve_precision("auto", device).name
                                     if device.type != "cpu" else "fp32"}
        v = (was["compile"] if tc.compile == "auto" else tc.compile == "on",
             was["precision"] if fixed_prec is None else fixed_prec,
             was.get("attention", "sdpa") if fixed_attn is None else fixed_attn)
        return _plan(v, device, f"{_name(*v)}: as the run was trained (a resume keeps its choice)")
    # what auto may choose from
    if fixed_prec is not None:
        precs = [fixed_prec]
    elif device.type == "cpu":
        precs = ["fp32", "bf16"] if cpu_bf16() else ["fp32"]
    else:
        precs = [resolve_precision("auto", device).name]  # a GPU's auto precision is settled
    comps = [tc.compile == "on"] if tc.compile != "auto" else [False, True]
    attns = [fixed_attn] if fixed_attn else ["sdpa", "explicit"] if _written_out_fits(model, tc) else ["sdpa"]
    if compiler_missing(device):
        if tc.compile == "on":  # nothing compiled can be measured; configure says why it trains eagerly
            return _plan((True, precs[0], attns[0]), device, f"{_name(True, precs[0], attns[0])}: as set")
        comps = [False]
    baseline = (comps[0], precs[0], attns[0])
    if len(precs) * len(comps) * len(attns) == 1:
        return _plan(baseline, device, f"{_name(*baseline)}: " + (
            f"nothing else to try here ({compiler_missing(device)})"
            if tc.compile == "auto" and compiler_missing(device) else "as set"))

    # the search space is part of the key: runs that may choose from different variants probe apart
    key = f"{probe_key(model, tasks, tc, device)} | {'/'.join(precs)} {comps} {'/'.join(attns)}"
    entry = _read_cache().get(key)
    # a run too short to repay a compile is not probed: its eager step is timed (or known) first
    eager = (False, precs[0], attns[0])
    step_ms = entry["step_ms"] if entry else _measure(model, tasks, tc, device, [eager], 0.0)["step_ms"]
    run_s = step_ms / 1000 * tc.grad_accum_steps * len(tasks) * tc.max_steps
    if run_s < PAYBACK_SECONDS:
        return _plan(baseline, device, f"{_name(*baseline)}: the run's steps take about {run_s:.0f} s, too short "
                     f"for {'' if baseline[0] else 'compiling or '}a probe to pay (auto probes runs of "
                     f"{PAYBACK_SECONDS:.0f} s or more)")
    if entry is None:
        status("Measuring what runs fastest on this machine (once per model shape; cached)")
        entry = _probe(model, tasks, tc, device, precs, comps, attns)
        entry["measured"] = time.strftime("%Y-%m-%d %H:%M:%S")
        _write_cache(key, entry)
        source = "measured on this machine"
    else:
        source = "measured on this machine earlier (cached)"
    speed = entry["speedups"]
    candidates = [tuple(v) for v in entry["candidates"]]
    best = max(candidates, key=lambda v: speed[_name(*v)])
    if speed[_name(*best)] < MARGIN:
        best = baseline
    failed = entry.get("failed", {})
    others = ", ".join(f"{n} failed ({failed[n]})" if n in failed else f"{n} {x:.2f}x" for n, x in speed.items()
                       if n not in (_name(*best), _name(*baseline)))
    if best == baseline:
        why = f"{_name(*best)}: nothing measured faster ({others}; over {_name(*baseline)}, {source})"
    else:
        why = (f"{_name(*best)}: {speed[_name(*best)]:.2f}x {_name(*baseline)}, {source}"
               + (f"; {others}" if others else ""))
    return _plan(best, device, why)


def _written_out_fits(model, tc) -> bool:
    """Attention written out keeps every layer's (B, nh, T, T) scores and weights for the backward
    pass, where SDPA keeps none: at long contexts that is gigabytes (GPT-2 small, B 8, T 1024: 9 GiB
    in fp32), so auto only considers it under ``WRITTEN_OUT_BYTES``."""
    c = model.config
    return 2 * 4 * tc.batch_size * c.n_head * c.block_size ** 2 * c.n_layer <= WRITTEN_OUT_BYTES


def _probe(model, tasks, tc, device, precs, comps, attns) -> dict:
    """Time the variants in two rounds: first, eagerly (nothing to compile), which attention kernel
    is faster in each precision; then each precision with its kernel, eager and compiled, against
    the baseline. Compiling is what costs (tens of seconds a variant on a CPU), so only the kernel
    that won eagerly is compiled (where the kernels differed by more than noise eagerly, the same
    one won compiled: docs/BENCHMARKS.md)."""
    baseline = (comps[0], precs[0], attns[0])
    speedups: dict[str, float] = {}
    failed: dict[str, str] = {}
    kernel = {p: attns[0] for p in precs}
    if len(attns) > 1:
        first = _measure(model, tasks, tc, device, [(False, p, a) for p in precs for a in attns], PROBE_SECONDS)
        speedups.update(first["speedups"])
        failed.update(first["failed"])
        kernel = {p: max(attns, key=lambda a: first["speedups"][_name(False, p, a)]) for p in precs}
    candidates = [baseline] + [v for v in ((c, p, kernel[p]) for p in precs for c in comps) if v != baseline]
    if len(candidates) > 1 and (len(attns) == 1 or any(c for c, _, _ in candidates)):
        second = _measure(model, tasks, tc, device, candidates, PROBE_SECONDS)
    else:  # every candidate is eager and was timed against the baseline already
        second = {"speedups": {}, "failed": {}, "step_ms": first["step_ms"], "compile_seconds": 0.0}
    speedups.update(second["speedups"])
    failed.update(second["failed"])
    return {"speedups": speedups, "candidates": [list(v) for v in candidates], "step_ms": second["step_ms"],
            "compile_seconds": second["compile_seconds"], "failed": failed}


# -- compiling in place -------------------------------------------------------------------------


def compile_in_place(model, tasks, tc, device: torch.device, precision: Precision) -> float:
    """``model.compile()`` and one warm-up forward + backward per task (train mode) and forward (eval
    mode, as validation runs it), so compiling happens now, is timed, and fails here if it fails.
    Every RNG and the gradients are as they were before. Returns the seconds it took."""
    use_cache_dir()
    import torch._dynamo

    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
    t0 = time.perf_counter()
    model.compile(dynamic=False)
    was_training = model.training
    with _own_rng(device):
        for task in tasks:
            batch = _probe_batch(task, tc, device)
            _forward_backward(model, task, batch, device, precision)
            model.eval()
            with torch.no_grad(), precision.autocast(device):
                task.forward(model, batch)
    model.train(was_training)
    return time.perf_counter() - t0


def uncompile(model) -> None:
    """Undo ``model.compile()`` (nn.Module keeps the compiled callable in this attribute)."""
    model._compiled_call_impl = None


def is_compiled(model) -> bool:
    return getattr(model, "_compiled_call_impl", None) is not None


__all__ = ["SpeedPlan", "configure", "compile_in_place", "cpp_compiler", "compiler_missing", "cpu_bf16",
           "probe_cache_path", "probe_key", "PAYBACK_SECONDS", "MARGIN"]
