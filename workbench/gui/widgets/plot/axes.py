"""Axes of the curve plot with readable numbers: 12k and 1.5M steps, m:ss time, 1-2-5 log ticks."""

from __future__ import annotations

import math

import pyqtgraph as pg


def _compact(v: float) -> str:
    """1234 -> '1.2k', 2_500_000 -> '2.5M'."""
    av = abs(v)
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if av >= scale:
            s = f"{v / scale:.3g}"
            return s + unit
    if float(v).is_integer():
        return f"{int(v)}"
    return f"{v:.3g}"


def clock_label(seconds: float, spacing: float) -> str:
    seconds = float(seconds)
    sign = "-" if seconds < 0 else ""
    s = abs(seconds)
    if spacing < 1:
        return f"{sign}{s:.3g}s"
    h, rem = divmod(int(round(s)), 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{sign}{h}:{m:02d}:{sec:02d}" if spacing < 60 else f"{sign}{h}:{m:02d}"
    return f"{sign}{m}:{sec:02d}"


_TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
               43200, 86400]


class XAxis(pg.AxisItem):
    """Bottom axis that writes steps and tokens compactly (12k, 1.5M) and time as m:ss."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mode = "step"
        self.enableAutoSIPrefix(False)

    def tickSpacing(self, minVal, maxVal, size):
        if self.mode != "time" or maxVal - minVal < 2:
            return super().tickSpacing(minVal, maxVal, size)
        target = (maxVal - minVal) / max(2.0, size / 90.0)
        major = next((s for s in _TIME_STEPS if s >= target), None)
        if major is None:
            major = 86400 * math.ceil(target / 86400)
        minor = next((s for s in reversed(_TIME_STEPS) if s < major and major % s == 0
                      and major / s <= 6), major / 2)
        return [(major, 0), (minor, 0)]

    def tickValues(self, minVal, maxVal, size):
        levels = super().tickValues(minVal, maxVal, size)
        if self.logMode or self.mode == "time":
            return levels
        # Steps and tokens are whole numbers: zoomed to a single point (one validation of each run)
        # the default ticks 199.8, 200, 200.2 would all read "200".
        whole = [(sp, [v for v in vals if float(v).is_integer()]) for sp, vals in levels if sp >= 1]
        whole = [(sp, vals) for sp, vals in whole if vals]
        if not whole:
            inside = [float(v) for v in range(math.ceil(minVal), math.floor(maxVal) + 1)]
            whole = [(1.0, inside)] if inside else []
        return whole

    def tickStrings(self, values, scale, spacing):
        if self.logMode:
            return super().tickStrings(values, scale, spacing)
        if self.mode == "time":
            return [clock_label(v, spacing) for v in values]
        return [_compact(v) for v in values]


class YAxis(pg.AxisItem):
    """Left axis: compact numbers (12k), scientific notation for small ones (6e-4), and in
    log mode plain values at 1-2-5 steps (0.5, 1, 2, 5) instead of powers of ten."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # the tick labels are written here; pyqtgraph's own prefix turned an accuracy axis into
        # "600, 800" with "(x0.001)" after the axis name
        self.enableAutoSIPrefix(False)

    def tickValues(self, minVal, maxVal, size):
        if not self.logMode:
            return super().tickValues(minVal, maxVal, size)
        lo, hi = sorted((minVal, maxVal))
        decades = hi - lo
        max_ticks = max(2, int(size / 26))
        for mantissas in ([1, 2, 3, 4, 5, 6, 8], [1, 1.5, 2, 3, 5, 7], [1, 2, 5], [1, 3], [1]):
            values = [math.log10(m) + k for k in range(int(math.floor(lo)) - 1,
                                                       int(math.ceil(hi)) + 1)
                      for m in mantissas]
            values = [v for v in values if lo <= v <= hi]
            if len(values) <= max_ticks:
                break
        if len(values) > max_ticks:  # many decades: every k-th one
            step = math.ceil(decades / max_ticks)
            values = [float(k) for k in range(int(math.ceil(lo)), int(math.floor(hi)) + 1)
                      if k % step == 0]
        return [(1.0, values)]

    def tickStrings(self, values, scale, spacing):
        if self.logMode:
            out = []
            for v in values:
                x = 10.0**v
                out.append(f"{x:.3g}" if 1e-3 <= abs(x) < 1e5 else _sci(x))
            return out
        big = max((abs(v) for v in values), default=0.0)
        if 0 < big < 1e-2:
            return ["0" if v == 0 else _sci(v) for v in values]
        if spacing >= 1000:
            return [_compact(v) for v in values]
        return super().tickStrings(values, scale, spacing)


def _sci(v: float) -> str:
    """6e-04 -> '6e-4', 1.5e-05 -> '1.5e-5'."""
    mant, exp = f"{v:.2g}".split("e") if "e" in f"{v:.2g}" else (f"{v:.2g}", None)
    if exp is None:
        mant, exp = f"{v:.1e}".split("e")
    mant = mant.rstrip("0").rstrip(".") if "." in mant else mant
    return f"{mant}e{int(exp)}"
