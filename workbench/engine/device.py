"""Which device and precision a run uses, and what this machine offers."""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from .config import ALL_GPUS, check_device_name
from .errors import ConfigError
from .model import GPTConfig, model_stats


@dataclass(frozen=True)
class DeviceInfo:
    id: str        # what training.device accepts: "cpu", "cuda:0", "mps"
    label: str     # for a person: "NVIDIA H100 80GB HBM3 (cuda:0, 79.1 GiB)"


def detect_devices() -> list[DeviceInfo]:
    """Devices PyTorch can train on here, best first; with more than one CUDA GPU also ALL_GPUS (one
    process per GPU under torchrun, which only the window's Start resolves)."""
    found = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            found.append(DeviceInfo(f"cuda:{i}", f"{p.name} (cuda:{i}, {p.total_memory / 2**30:.1f} GiB)"))
        n = torch.cuda.device_count()
        if n > 1:  # after the single GPUs: "auto" (the first entry) stays one device
            found.append(DeviceInfo(ALL_GPUS, f"all {n} GPUs (torchrun)"))
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append(DeviceInfo("mps", "Apple GPU (mps)"))
    found.append(DeviceInfo("cpu", f"CPU ({os.cpu_count()} cores)"))
    return found


def resolve_device(name: str, setting: str = "training.device") -> torch.device:
    """The torch device for auto, cpu, cuda, cuda:N or mps; ``setting`` names where the value came
    from (a setting or a command-line option) in the messages."""
    check_device_name(name, setting)
    if name == "auto":
        return torch.device(detect_devices()[0].id)
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"{setting} = {name!r}, but PyTorch sees no CUDA GPU here "
                              f"(torch {torch.__version__}). Use \"auto\" or \"cpu\".")
        idx = int(name.split(":")[1]) if ":" in name else 0
        if idx >= torch.cuda.device_count():
            raise ConfigError(f"{setting} = {name!r}, but only {torch.cuda.device_count()} CUDA "
                              f"device(s) exist (cuda:0 .. cuda:{torch.cuda.device_count() - 1}).")
        return torch.device("cuda", idx)
    if name == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ConfigError(f'{setting} = "mps", but no Apple GPU is available. Use "auto" or "cpu".')
        return torch.device("mps")
    return torch.device("cpu")


# -- memory ---------------------------------------------------------------------------------------


def device_memory(device: torch.device) -> int | None:
    """Bytes of memory a run on ``device`` can use at most (a GPU's total, the CPU's RAM or the
    container's limit); None where unknown."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    if device.type != "cpu":
        return None
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not on this platform
        return None
    try:  # a container's memory limit (cgroup v2) is the real ceiling
        limit = open("/sys/fs/cgroup/memory.max").read().strip()
        if limit.isdigit():
            total = min(total, int(limit))
    except OSError:
        pass
    return total


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def check_fits_memory(config: GPTConfig, batch_size: int, device: torch.device) -> None:
    """Refuse, before anything is allocated, a model and batch that cannot fit the device even by a
    lower estimate (weights, gradients and AdamW moments, plus activations without attention scores)."""
    total = device_memory(device)
    if total is None:
        return
    st = model_stats(config)
    per_seq = st.activation_bytes(config, 1, scores=False)
    need = st.train_state_bytes + per_seq * batch_size
    if need <= total:
        return
    where = (f"{describe_device(device)} has {_gib(total)}" if device.type != "cpu"
             else f"this machine has {_gib(total)} of memory")
    size = (f"{st.params:,} parameters (n_layer {config.n_layer}, n_embd {config.n_embd}, "
            f"vocabulary {config.vocab_size:,}, block_size {config.block_size})")
    if st.train_state_bytes >= total:
        raise ConfigError(f"The model has {size}: its weights, gradients and AdamW state alone take "
                          f"{_gib(st.train_state_bytes)}, and {where}. Make the model smaller "
                          f"(model.n_layer, model.n_embd, tokenizer.vocab_size).")
    fits = (total - st.train_state_bytes) // per_seq
    raise ConfigError(f"training.batch_size = {batch_size:,} does not fit in memory: with the model's {size} one "
                      f"training step needs at least {_gib(need)} and {where}. Use training.batch_size "
                      f"<= {fits:,} (training.grad_accum_steps gives a larger effective batch), or a "
                      f"smaller model (model.block_size, model.n_embd, model.n_layer).")


def is_out_of_memory(e: BaseException) -> bool:
    """An allocation that failed: torch's OutOfMemoryError, numpy's MemoryError, or the CPU
    allocator's RuntimeError."""
    if isinstance(e, (MemoryError, getattr(torch, "OutOfMemoryError", MemoryError))):
        return True
    text = str(e)
    return isinstance(e, RuntimeError) and any(
        s in text for s in ("not enough memory", "DefaultCPUAllocator", "out of memory", "can't allocate memory"))


def out_of_memory_message(e: BaseException, step: int, exp, model=None) -> str:
    """What to lower when training ran out of memory at ``step`` (``model``: the GPT, once built)."""
    tc, m = exp.training, exp.model
    size = (f"{model.num_params() / 1e6:,.1f} M parameters" if model is not None else
            f"n_layer {m.n_layer}, n_embd {m.n_embd}")
    first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
    return (f"Out of memory at step {step} with training.batch_size = {tc.batch_size:,}, "
            f"model.block_size = {m.block_size:,} and a model of {size} ({first}). Lower "
            f"training.batch_size (training.grad_accum_steps keeps the effective batch), "
            f"model.block_size or the model's size.")


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


@dataclass(frozen=True)
class Precision:
    name: str                     # fp32 | bf16 | fp16
    dtype: torch.dtype | None     # autocast dtype, None for fp32
    use_scaler: bool              # fp16 needs loss scaling

    def autocast(self, device: torch.device):
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.dtype)


def resolve_precision(name: str, device: torch.device) -> Precision:
    """auto: bf16 where the GPU supports it, fp16 with a grad scaler on other GPUs, fp32 on CPU (a
    run's "auto" goes through speed.configure, which may measure bf16 faster on a CPU with bf16
    instructions). Asked for by name, every precision works on every device (fp16 always with a
    grad scaler)."""
    if name == "auto":
        if device.type == "cuda":
            name = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        elif device.type == "mps":
            name = "fp16"
        else:
            name = "fp32"
    if name == "fp32":
        return Precision("fp32", None, False)
    # fp16 on the CPU (torch's CPU autocast + GradScaler("cpu")) is slower than fp32 there; it exists so
    # the loss-scaling path can be exercised without a GPU.
    if name == "bf16":
        return Precision("bf16", torch.bfloat16, False)
    return Precision("fp16", torch.float16, True)
