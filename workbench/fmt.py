"""Formats a person reads (sizes, counts, durations, text with its whitespace made visible), in one
place for the engine's messages, the CLI, the report and the window. Imports neither Qt nor torch."""

from __future__ import annotations

import math


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


def fmt_about(seconds: float) -> str:
    """A rough length of time, as a budget is said: 45 -> "about 45 s", 150 -> "about 2.5 min"."""
    if seconds < 60:
        return f"about {seconds:.0f} s"
    minutes = seconds / 60
    return f"about {minutes:.0f} min" if abs(minutes - round(minutes)) < 0.05 else f"about {minutes:.1f} min"


# ---------------------------------------------------------------------------------------------
# whitespace made visible (tokens in the window's views and the report's heatmaps)

WHITESPACE_MARKS = {
    " ": "·",
    "\n": "↵",
    "\t": "→",
    "\r": "␍",
    "\u00a0": "⍽",  # no-break space
    "\f": "␌",
    "\v": "␋",
}


def visible_runs(text: str) -> list[tuple[str, bool]]:
    """Split ``text`` into runs of (display text, is_marker).

    Whitespace and control characters become visible markers (``·`` space, ``↵`` newline,
    ``→`` tab, ``\\x07`` for other control characters); the empty string becomes ``∅``.
    """
    if text == "":
        return [("∅", True)]
    runs: list[tuple[str, bool]] = []
    for ch in text:
        mark = WHITESPACE_MARKS.get(ch)
        if mark is None and (ord(ch) < 32 or ord(ch) == 127):
            mark = f"\\x{ord(ch):02x}"
        piece, is_mark = (mark, True) if mark is not None else (ch, False)
        if runs and runs[-1][1] == is_mark:
            runs[-1] = (runs[-1][0] + piece, is_mark)
        else:
            runs.append((piece, is_mark))
    return runs


def visible_whitespace(text: str) -> str:
    """``text`` with whitespace and control characters replaced by visible markers."""
    return "".join(piece for piece, _ in visible_runs(text))


def short_label(text: str, max_chars: int = 12) -> str:
    """A token as an axis label: whitespace visible, long tokens cut with an ellipsis."""
    s = visible_whitespace(text)
    return s if len(s) <= max_chars else s[: max_chars - 1] + "…"


LABEL_STRIDES = (1, 2, 3, 4, 5, 8, 10, 16, 20, 25, 32, 50, 64, 100, 128, 200, 256, 500, 1000)


def label_stride(need: float, pitch: float) -> int:
    """Label every n-th of a row of items ``pitch`` apart, each label needing ``need`` (the same
    unit): the smallest round n that makes room. The window's token axes and the report's
    heatmaps thin their labels by it."""
    n = max(1, math.ceil(need / max(pitch, 1e-9) - 1e-9))  # 1e-9: a label that fits exactly fits
    return next((s for s in LABEL_STRIDES if s >= n), n)
