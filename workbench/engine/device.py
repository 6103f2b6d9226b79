"""Which device and precision a run uses, and what this machine offers."""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from .errors import ConfigError


@dataclass(frozen=True)
class DeviceInfo:
    id: str        # what training.device accepts: "cpu", "cuda:0", "mps"
    label: str     # for a person: "NVIDIA H100 80GB HBM3 (cuda:0, 79.1 GiB)"


def detect_devices() -> list[DeviceInfo]:
    """Devices PyTorch can train on here, best first."""
    found = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            found.append(DeviceInfo(f"cuda:{i}", f"{p.name} (cuda:{i}, {p.total_memory / 2**30:.1f} GiB)"))
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append(DeviceInfo("mps", "Apple GPU (mps)"))
    found.append(DeviceInfo("cpu", f"CPU ({os.cpu_count()} cores)"))
    return found


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device(detect_devices()[0].id)
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"training.device = {name!r}, but PyTorch sees no CUDA GPU here "
                              f"(torch {torch.__version__}). Use \"auto\" or \"cpu\".")
        idx = int(name.split(":")[1]) if ":" in name else 0
        if idx >= torch.cuda.device_count():
            raise ConfigError(f"training.device = {name!r}, but only {torch.cuda.device_count()} CUDA "
                              f"device(s) exist (cuda:0 .. cuda:{torch.cuda.device_count() - 1}).")
        return torch.device("cuda", idx)
    if name == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ConfigError('training.device = "mps", but no Apple GPU is available. Use "auto" or "cpu".')
        return torch.device("mps")
    return torch.device("cpu")


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
    """auto: bf16 where the GPU supports it, fp16 with a grad scaler on other GPUs, fp32 on CPU.
    Asked for by name, every precision works on every device (fp16 always with a grad scaler)."""
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
