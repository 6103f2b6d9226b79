"""Number formats a person reads, in one place for the engine's messages, the CLI and the window.
Imports neither Qt nor torch."""

from __future__ import annotations


def human_bytes(n: float) -> str:
    """1234567 -> "1.2 MB" (powers of 1000, as disks are sold)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} TB"
