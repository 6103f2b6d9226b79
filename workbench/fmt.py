"""Number formats a person reads (sizes, counts, durations), in one place for the engine's messages, the CLI and the window.
Imports neither Qt nor torch."""

from __future__ import annotations


def human_bytes(n: float) -> str:
    """1234567 -> "1.2 MB" (powers of 1000, as disks are sold)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} TB"


def human_count(n: float) -> str:
    """1234 -> "1.2 k", 3_400_000 -> "3.4 M" (parameters, tokens, characters)."""
    n = float(n)
    for unit, div in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n:.0f}"


def fmt_duration(seconds: float) -> str:
    """75 -> "1:15", 3725 -> "1:02:05" (hours only when there are some; never negative)."""
    s = int(max(0, seconds))
    if s >= 3600:
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"
