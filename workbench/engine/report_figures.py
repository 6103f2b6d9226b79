"""The report's pictures, drawn by matplotlib (``Figure`` and its SVG backend: no pyplot, no window,
no Qt): a chart per metric (``metric_chart``, ``svg_line_chart``) and a grid of attention heatmaps
per snapshot (``svg_attention``). Each is a complete SVG document with its text kept as text and
its element ids kept apart by ``uid``, so that a page can inline many (engine/report.py).

A curve of many points is thinned to each pixel column's minimum and maximum first
(``curves.thin``, the live plot's rule), so a 100k-step run's chart stays a few hundred kB. A
heatmap is an ``imshow`` per head without interpolation: its T x T cells one embedded PNG, a few
whole pixels a cell. Colours, the attention colour map and its mask grey are the window's
(workbench/palette.py).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import matplotlib
import numpy as np
from matplotlib import ticker
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..curves import ema_smooth, ema_weight_for, metric_title, thin
from ..fmt import label_stride, short_label, visible_whitespace
from ..palette import ATTENTION_COLORMAP, ATTENTION_MASK, BACKGROUND, FOREGROUND, MUTED, SERIES_COLORS

GRID, FRAME = "#ececec", "#b8b8b8"  # the text, series and attention colours are the window's (palette.py)
FONT_SIZE, DPI = 9, 100  # points; 760 x 380 pixels is 7.6 x 3.8 inches
# matplotlib's settings: text stays text, in the report page's named fonts where the reader has them
# (matplotlib lays it out with the first it finds here, at the latest DejaVu Sans, which it ships)
RC = {"svg.fonttype": "none", "font.family": "sans-serif",
      "font.sans-serif": ["Segoe UI", "Roboto", "Helvetica", "Arial", "DejaVu Sans"]}

LABEL_POINTS = (6.0, 8.0)  # a heatmap's token labels shrink to fit down to 6 points, and are thinned below

LOG_METRICS = ("ppl",)


# =============================================================================================
# line charts (matplotlib, SVG)


@dataclass
class Line:
    """One series of a chart. ``smooth`` (0..1) draws the raw values faint and a debiased
    exponential moving average (TensorBoard's smoothing, ``curves.ema_smooth``) over them;
    ``markers`` draws dots."""

    label: str
    x: Sequence[float]
    y: Sequence[float]
    color: str = ""
    markers: bool = False
    smooth: float = 0.0
    dashed: bool = False


def _compact(v: float, _pos=None) -> str:
    """Tick text: 12k, 1.5M, 0.25, 3e-05."""
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:g}M"
    if a >= 1e4:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def _style_axes(ax, log_y: bool) -> None:
    """The window's plain look: a light frame, horizontal and vertical grid lines, muted ticks."""
    ax.set_facecolor(BACKGROUND)
    for spine in ax.spines.values():
        spine.set_color(FRAME)
    ax.grid(True, color=GRID, linewidth=1)
    ax.set_axisbelow(True)
    ax.tick_params(colors=MUTED, labelsize=FONT_SIZE, length=4, which="major")
    ax.tick_params(which="minor", length=0)
    if log_y:
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(_compact))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(_compact))
    ax.xaxis.set_major_locator(ticker.MaxNLocator(8, steps=[1, 2, 2.5, 5, 10]))


def _draw(ax, ln: Line, color: str, columns: int, gid: str) -> bool:
    """One line (faint raw values and the smoothed curve, or dots), its SVG groups named ``gid``
    and ``gid``-raw; False when it has no data."""
    x = np.asarray(ln.x, dtype=np.float64)
    y = np.asarray(ln.y, dtype=np.float64)
    ok = np.isfinite(x)
    x, y = x[ok], y[ok]
    if x.size == 0:
        return False
    dash = (0, (6, 4)) if ln.dashed else "-"
    label = ln.label or "_nolegend_"
    if ln.smooth > 0 and x.size >= 10:
        idx = thin(y, columns)  # each pixel column's extremes: the faint line looks the same, costs less
        ax.plot(x[idx], y[idx], color=color, alpha=0.25, linewidth=0.75, linestyle=dash, gid=f"{gid}-raw")
        y, _ = ema_smooth(y, ema_weight_for(ln.smooth, y.size))
    idx = thin(y, columns)
    marker = dict(marker="o", markersize=5, markeredgecolor="#ffffff", markeredgewidth=0.75) \
        if ln.markers or x.size == 1 else {}
    ax.plot(x if marker else x[idx], y if marker else y[idx], color=color, linewidth=1.5 if x.size > 1 else 0,
            linestyle=dash, label=label, solid_joinstyle="round", solid_capstyle="round", gid=gid, **marker)
    return True


_AUTO_ID = re.compile(r' id="[A-Za-z][\w.]*_\d+"')  # figure_1, line2d_3, LineCollection_1, matplotlib.axis_2


def _svg(fig, uid: str) -> str:
    """The figure as an SVG document, its ids unique per ``uid``, without the XML prolog (it is inlined)."""
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": uid}):
        FigureCanvasSVG(fig).print_svg(buf, metadata={"Date": None, "Creator": "GPT Workbench"})
    text = buf.getvalue()
    # matplotlib names every group (figure_1, line2d_3, ...) the same in each chart; nothing refers to
    # those ids, and in a page of inlined charts they would repeat
    return _AUTO_ID.sub("", text[text.index("<svg"):])


def svg_line_chart(lines: Sequence[Line], *, title: str = "", x_label: str = "step", y_label: str = "",
                   log_y: bool = False, width: int = 760, height: int = 380, uid: str = "") -> str:
    """A complete SVG document: the lines over plain axes, with a legend right of the plot (one
    entry per label). ``uid`` keeps its element ids apart from other charts inlined in the same
    HTML page."""
    uid = uid or re.sub(r"\W+", "-", title + "-" + y_label)
    with matplotlib.rc_context(RC):
        return _svg(_line_figure(lines, title, x_label, y_label, log_y, width, height, uid), uid)


def _line_figure(lines: Sequence[Line], title: str, x_label: str, y_label: str, log_y: bool, width: int,
                 height: int, uid: str) -> Figure:
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, facecolor=BACKGROUND)
    ax = fig.add_subplot()
    _style_axes(ax, log_y)
    if title:  # first, so that it is the chart's first text (its name in the page)
        ax.set_title(title, loc="left", fontsize=FONT_SIZE + 2, fontweight="bold", color=FOREGROUND, zorder=0)
    columns = width // 4  # min/max pairs: the envelope keeps 1 to 4 per column of this count, enough on a ~560 px plot
    drawn = False
    for i, ln in enumerate(lines):
        if log_y:
            ln = replace(ln, y=np.where(np.asarray(ln.y, dtype=np.float64) > 0, ln.y, np.nan))
        drawn = _draw(ax, ln, ln.color or SERIES_COLORS[i % len(SERIES_COLORS)], columns, f"{uid}-line{i}") or drawn
    if not drawn:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color=MUTED)
        ax.set_xticks([])
        ax.set_yticks([])
    elif any(ln.label for ln in lines):
        legend = ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize=FONT_SIZE,
                           handlelength=2.2, borderaxespad=0.0)
        for text in legend.get_texts():
            text.set_color(FOREGROUND)
    if log_y and drawn:
        lo, hi = ax.get_ylim()
        if sum(lo <= v <= hi for v in ax.get_yticks()) < 2:
            # within one decade 1-2-5 steps leave one label or none (a perplexity of 9 to 12):
            # round numbers between the ends, still placed on the log scale
            ax.yaxis.set_major_locator(ticker.MaxNLocator(6, steps=[1, 2, 2.5, 5, 10]))
    ax.set_xlabel(x_label, color=MUTED, fontsize=FONT_SIZE)
    ax.set_ylabel(y_label + (" (log scale)" if log_y and y_label else ""), color=MUTED, fontsize=FONT_SIZE)
    # margins in pixels from the longest tick text and legend label: matplotlib's layout engines
    # would measure every text again, most of what a chart costs
    px = FONT_SIZE * DPI / 72
    lo, hi = ax.get_ylim()
    ticks = [_compact(v) for v in ax.get_yticks() if lo <= v <= hi] if drawn else []
    labels = [ln.label for ln in lines if ln.label] if drawn else []
    ml = 34 + max((_text_width(s, px) for s in ticks), default=0)
    mr = 16 + (max(_text_width(s, px) for s in labels) + 50 if labels else 0)
    mt, mb = (30 if title else 14), 44
    fig.subplots_adjust(left=ml / width, right=1 - min(mr, width / 2) / width, top=1 - mt / height,
                        bottom=mb / height)
    return fig


def metric_chart(metric: str, series: dict[str, dict[str, list[float]]], *, width: int = 760,
                 height: int = 380, colors: dict[str, str] | None = None) -> str:
    """The chart of one metric of one run: a line per series, coloured by task (train and val of a
    task share a colour; validation is drawn with dots), training values smoothed."""
    colors = dict(colors or {})
    lines = []
    for name, c in sorted(series.items(), key=lambda kv: (kv[0].startswith("val"), kv[0])):
        split, _, task = name.partition("/")
        key = task or name
        if key not in colors:
            colors[key] = SERIES_COLORS[len(colors) % len(SERIES_COLORS)]
        val = split != "train"
        smooth = 0.0 if val or metric == "lr" else 0.6  # a schedule is exact: smoothing would only lag it
        lines.append(Line(name, c["step"], c["y"], colors[key], markers=val, smooth=smooth, dashed=val))
    return svg_line_chart(lines, title=metric_title(metric), x_label="step", y_label=metric_title(metric).lower(),
                          log_y=metric in LOG_METRICS, width=width, height=height, uid=metric)


# =============================================================================================
# attention heatmaps


def _text_width(text: str, size: float) -> float:
    return 0.58 * size * len(text)  # close enough for a sans-serif at this size


def _is_causal(m: np.ndarray) -> bool:
    """Square, and every weight above the diagonal exactly 0: the window's rule for masking."""
    return m.shape[0] == m.shape[1] >= 2 and not np.any(np.triu(m, k=1))


def _label_fit(px_per_token: float) -> tuple[float, int]:
    """(points, stride) of the token labels, by the window's rule (widgets/attention/token_axis.py):
    every token is labelled, its text shrunk to fit its cell down to LABEL_POINTS[0]; below that
    every stride-th token (``fmt.label_stride``)."""
    line = DPI / 72  # a label of this many points is a row of this many pixels high
    size = min(LABEL_POINTS[1], max(LABEL_POINTS[0], px_per_token / line))
    return size, label_stride(size * line, px_per_token)


def svg_attention(attention: np.ndarray, tokens: Sequence[str], *, step: int, title: str = "",
                  uid: str = "a") -> str:
    """A grid of heatmaps, one per layer (rows) and head (columns): row i of a head is where
    query token i looks (weights 0..1 in the window's colour map, the causal triangle in its mask
    grey), the tokens beside the rows and above the columns, a colour bar right of the grid.
    Layers and heads are numbered from 0, as everywhere in the workbench."""
    att = np.asarray(attention, dtype=np.float32)
    att = att if att.ndim == 4 else att[None]
    with matplotlib.rc_context(RC):
        return _svg(_attention_figure(att, tokens, title or f"Attention at step {step:,}", uid), uid)


def _attention_figure(att: np.ndarray, tokens: Sequence[str], title: str, uid: str) -> Figure:
    n_layer, n_head, T, _ = att.shape
    labels = [short_label(t) for t in tokens[:T]] + [""] * (T - len(tokens[:T]))
    # whole pixels per token: at least 150 a head, at most what a label needs, the grid ~960 wide
    k = max(math.ceil(150 / T), min(10, (960 - 200) // (n_head * T)))
    size, stride = _label_fit(k)
    shown = range(0, T, stride)
    lab_w = max(_text_width(labels[i], size * DPI / 72) for i in shown) + 8
    cell, gap = T * k, 14
    ml, mt, mr, mb = 36 + lab_w, 50 + lab_w, 72, 36
    grid_w, grid_h = n_head * cell + (n_head - 1) * gap, n_layer * cell + (n_layer - 1) * gap
    width, height = ml + grid_w + mr, mt + grid_h + mb
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, facecolor=BACKGROUND)

    def box(x: float, y: float, w: float, h: float) -> list[float]:  # pixels from the top left
        return [x / width, 1 - (y + h) / height, w / width, h / height]

    def text(x: float, y: float, s: str, **kw) -> None:
        fig.text(x / width, 1 - y / height, s, **{"color": MUTED, "fontsize": FONT_SIZE, **kw})

    # the title first (zorder): it is the SVG's first text, the heatmap's name in the page
    text(10, 20, title, color=FOREGROUND, fontsize=FONT_SIZE + 2,
         fontweight="bold", zorder=-1)
    # one axes for the grid (an axes per head costs more than its image), in token units: head h's
    # columns from h * (T + g), layer l's rows from l * (T + g)
    ax = fig.add_axes(box(ml, mt, grid_w, grid_h), frame_on=False)
    g = gap / k
    ax.set_xlim(0, n_head * (T + g) - g)
    ax.set_ylim(n_layer * (T + g) - g, 0)
    cmap = matplotlib.colormaps[ATTENTION_COLORMAP].with_extremes(bad=ATTENTION_MASK)
    upper = np.triu(np.ones((T, T), dtype=bool), k=1)
    for layer in range(n_layer):
        y = layer * (T + g)
        text(ml - lab_w - 14, mt + y * k + cell / 2, f"layer {layer}", rotation=90, ha="center", va="center")
        for h in range(n_head):
            x = h * (T + g)
            m = att[layer, h]
            m = np.ma.masked_array(m, mask=upper) if _is_causal(m) else m
            # k pixels a token in the PNG too: a viewer that smooths images (rsvg, some browsers ignore
            # the pixelated style) blurs only the edge of each cell, not the whole matrix
            m = np.repeat(np.repeat(m, k, axis=0), k, axis=1)
            ax.imshow(m, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="none", extent=(x, x + T, y + T, y),
                      gid=f"{uid}-l{layer}h{h}")
            ax.add_patch(Rectangle((x, y), T, T, fill=False, edgecolor=FRAME, linewidth=1))
    for h in range(n_head):
        text(ml + h * (cell + gap) + cell / 2, mt - lab_w - 12, f"head {h}", ha="center", va="baseline")
    ax.set_aspect("auto")
    # the tokens as text (an axis's ticks would cost ten times more), 3 pixels off the first head of
    # the first layer: queries left of its rows, keys above its columns
    ax.set_xticks([])
    ax.set_yticks([])
    style = {"color": FOREGROUND, "fontsize": size, "clip_on": False}
    for i in shown:
        ax.text(i + 0.5, -3 / k, labels[i], rotation=90, ha="center", va="bottom", **style)
        ax.text(-3 / k, i + 0.5, labels[i], ha="right", va="center", **style)
    # the colour bar, 0..1 (the levels are fixed: one snapshot compares with the next)
    cax = fig.add_axes(box(ml + grid_w + 16, mt, 12, min(grid_h, 220)))
    bar = fig.colorbar(ScalarMappable(Normalize(0.0, 1.0), cmap), cax=cax, ticks=[0.0, 0.5, 1.0], format="%g")
    bar.outline.set_edgecolor(FRAME)
    cax.tick_params(length=3, color=FRAME, labelcolor=MUTED, labelsize=FONT_SIZE)
    caption = f"query (rows) attends to key (columns); probe text: {visible_whitespace(''.join(tokens[:T]))}"
    fit = int((width - 20) / _text_width("x", FONT_SIZE * DPI / 72))
    text(10, height - 12, caption if len(caption) <= fit else caption[:fit - 1] + "…")
    return fig
