"""``workbench bench gpu``: GPT-2 124M training throughput and MFU on one CUDA GPU.

The shape is GPT-2 small as nanoGPT trains it (12 layers, 12 heads, width 768, block 1024, vocabulary
50304: 50257 padded to a multiple of 64), trained on random tokens with bf16 autocast and fused
AdamW, eager and then compiled (``torch.compile``). Throughput comes from the median step (a warm-up
first; for the compiled model the warm-up holds the compile), and MFU is model FLOP/s (the engine's
own ``model_stats`` count: 6N + attention) over the GPU's dense bf16 peak from a small table of
known cards; for a card not in the table MFU is None and the achieved TFLOP/s still print.

``tiny=True`` with ``device="cpu"`` is for tests only: a 2-layer model that runs on any machine, so
the JSON's keys can be checked without a GPU. Its figures mean nothing.
"""

from __future__ import annotations

import statistics
import time

import torch

from workbench.engine.errors import ConfigError
from workbench.engine.model import GPT, GPTConfig, model_stats

GPT2_SHAPE = GPTConfig(vocab_size=50304, n_layer=12, n_head=12, n_embd=768, block_size=1024, dropout=0.0, bias=True)
TINY_SHAPE = GPTConfig(vocab_size=256, n_layer=2, n_head=2, n_embd=32, block_size=32, dropout=0.0, bias=True)

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s from the vendors' data sheets, matched in order
# against torch.cuda.get_device_name (so "H100 PCIe" is tried before "H100").
PEAK_BF16_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100", 989.0),   # SXM
    ("H200", 989.0),
    ("A100", 312.0),
    ("L4", 121.0),
)

NO_CUDA = "no CUDA GPU: this benchmark needs one (torch.cuda.is_available() is False)"


def peak_bf16_tflops(device_name: str) -> float | None:
    """The card's dense bf16 peak, or None when it is not in the table."""
    for key, peak in PEAK_BF16_TFLOPS:
        if key.lower() in device_name.lower():
            return peak
    return None


def flops_per_token(config: GPTConfig) -> int:
    """Training FLOPs per token (forward + backward), the count MFU divides by: the engine's own."""
    return model_stats(config).flops_per_token


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _step_seconds(model, config: GPTConfig, device: torch.device, batch: int, steps: int, warmup: int) -> list[float]:
    """Seconds of each measured training step: random tokens, bf16 autocast, fused AdamW."""
    opt = torch.optim.AdamW(model.parameters(), lr=6e-4, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randint(0, config.vocab_size, (batch, config.block_size), device=device, generator=gen)
    y = torch.randint(0, config.vocab_size, (batch, config.block_size), device=device, generator=gen)
    times = []
    for step in range(warmup + steps):
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16):
            _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        _sync(device)
        if step >= warmup:
            times.append(time.perf_counter() - t0)
    return times


def bench_gpu(device: str = "cuda", steps: int = 20, warmup: int = 5, batch: int = 16,
              compile: str = "both", tiny: bool = False) -> dict:
    """Tokens/s and MFU of the GPT-2 124M shape, eager and compiled. Raises ConfigError without CUDA."""
    from workbench.engine.device import resolve_device

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(NO_CUDA)
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise ConfigError(f"bench gpu --device {device!r}: use cuda, cuda:N (or cpu with --tiny, for testing)")
    if device == "cpu" and not tiny:
        raise ConfigError("bench gpu --device cpu runs only with --tiny (a test of the command, not a measurement)")
    dev = resolve_device(device, "bench gpu --device")  # cuda:N beyond the cards: a message naming them
    config = TINY_SHAPE if tiny else GPT2_SHAPE
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    peak = peak_bf16_tflops(name) if dev.type == "cuda" else None
    fpt = flops_per_token(config)
    tokens = batch * config.block_size
    torch.manual_seed(0)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    modes = {"both": ("eager", "compiled"), "on": ("compiled",), "off": ("eager",)}[compile]
    out: dict = {
        "bench": "gpu", "device": str(dev), "device_name": name, "tiny": tiny,
        "shape": {"n_layer": config.n_layer, "n_head": config.n_head, "n_embd": config.n_embd,
                  "block_size": config.block_size, "vocab_size": config.vocab_size},
        "params": None, "batch_size": batch, "tokens_per_step": tokens, "flops_per_token": fpt,
        "peak_bf16_tflops": peak, "torch": torch.__version__, "steps": steps, "warmup": warmup,
        "eager": None, "compiled": None,
    }
    for mode in modes:
        model = GPT(config).to(dev)
        out["params"] = model.num_params()
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        t0 = time.perf_counter()
        run = torch.compile(model) if mode == "compiled" else model
        times = _step_seconds(run, config, dev, batch, steps, warmup)
        warm_s = time.perf_counter() - t0 - sum(times)
        med = statistics.median(times)
        tflops = fpt * tokens / med / 1e12
        out[mode] = {
            "tokens_per_s": round(tokens / med, 1),
            "step_ms": round(1000 * med, 2),
            "achieved_tflops": round(tflops, 3),
            "mfu": round(tflops / peak, 4) if peak else None,
            "warmup_seconds": round(warm_s, 1),  # the compile, for the compiled model
            "max_memory_gb": round(torch.cuda.max_memory_allocated(dev) / 1e9, 2) if dev.type == "cuda" else None,
        }
        del run, model
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    if out["eager"] and out["compiled"]:
        out["compile_speedup"] = round(out["compiled"]["tokens_per_s"] / out["eager"]["tokens_per_s"], 3)
    return out
