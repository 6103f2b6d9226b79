"""A run as a report a person can keep or share: one self-contained HTML file, or a folder.

``export_report(run_dir, out, fmt="folder")`` writes::

    index.html          everything below on one page (plots and heatmaps linked)
    config.toml         the exact experiment the run trained with
    summary.json        settings and results (engine.runs.RunSummary)
    metrics.csv         every metrics.jsonl record, one row each, every key a column
    plots/NAME.svg      one chart per metric (loss, accuracy, perplexity, learning rate, ...)
    attention/step_NNNNNNN.svg   attention of the probe text, every layer and head, at up to 4
                        snapshots spread from the first to the last (``attention_snapshots``)
    samples.txt         text the final checkpoint generates from the given prompts (optional)

``fmt="html"`` writes one ``.html`` file with the same content, the charts and heatmaps inline
and the metrics table as a download link, so it can be mailed or opened anywhere.

The charts are drawn by matplotlib (its SVG backend, no window, no Qt): vector files, small and
sharp at any size, text kept as text. A curve of many points is thinned to each pixel column's
minimum and maximum first (``curves.thin``, the live plot's rule), so a 100k-step run's chart
stays a few hundred kB. Attention heatmaps are SVG written here, the T x T cells of each head one
embedded PNG (encoded with zlib): 32 k ``<rect>`` elements per snapshot would make megabytes.

Nothing here imports Qt, and nothing imports torch unless samples are asked for.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import os
import re
import shutil
import struct
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from xml.sax.saxutils import escape as _esc

import matplotlib
import numpy as np
from matplotlib import ticker
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

from ..curves import ROW_KEYS, RUN_LEVEL, X_KEYS, curve_order, ema_smooth, ema_weight_for, metric_curves, metric_title, thin
from ..fmt import fmt_duration
from . import checkpoint as ckpt
from .errors import CheckpointError, ConfigError, WorkbenchError
from .ownership import check_output

FORMATS = ("html", "folder")

# Tableau 10, the palette of the window's plots (gui/theme.py), so a report looks the same.
PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1",
           "#76b7b2", "#9c755f", "#ff9da7", "#edc948", "#bab0ac"]
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
TEXT, MUTED, GRID, FRAME = "#2b2b2b", "#6b6b6b", "#ececec", "#b8b8b8"
FONT_SIZE, DPI = 9, 100  # points; 760 x 380 pixels is 7.6 x 3.8 inches
# the charts' matplotlib settings: text stays text, in FONT's named fonts where the reader has them
# (matplotlib lays it out with the first it finds here, at the latest DejaVu Sans, which it ships)
RC = {"svg.fonttype": "none", "font.family": "sans-serif",
      "font.sans-serif": ["Segoe UI", "Roboto", "Helvetica", "Arial", "DejaVu Sans"]}

# viridis (the window's attention colour map) at 0, 0.1, ..., 1
VIRIDIS = ["#440154", "#482475", "#414487", "#355f8d", "#2a788e", "#21918c",
           "#22a884", "#44bf70", "#7ad151", "#bddf26", "#fde725"]

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
    ax.set_facecolor("#ffffff")
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


_AUTO_ID = re.compile(r' id="(?:figure|axes|patch|text|legend|line2d|xtick|ytick|matplotlib\.axis)_\d+"')


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
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, facecolor="#ffffff")
    ax = fig.add_subplot()
    _style_axes(ax, log_y)
    if title:  # first, so that it is the chart's first text (its name in the page)
        ax.set_title(title, loc="left", fontsize=FONT_SIZE + 2, fontweight="bold", color=TEXT, zorder=0)
    columns = width // 4  # min/max pairs: the envelope keeps 1 to 4 per column of this count, enough on a ~560 px plot
    drawn = False
    for i, ln in enumerate(lines):
        if log_y:
            ln = replace(ln, y=np.where(np.asarray(ln.y, dtype=np.float64) > 0, ln.y, np.nan))
        drawn = _draw(ax, ln, ln.color or PALETTE[i % len(PALETTE)], columns, f"{uid}-line{i}") or drawn
    if not drawn:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color=MUTED)
        ax.set_xticks([])
        ax.set_yticks([])
    elif any(ln.label for ln in lines):
        legend = ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize=FONT_SIZE,
                           handlelength=2.2, borderaxespad=0.0)
        for text in legend.get_texts():
            text.set_color(TEXT)
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
            colors[key] = PALETTE[len(colors) % len(PALETTE)]
        val = split != "train"
        smooth = 0.0 if val or metric == "lr" else 0.6  # a schedule is exact: smoothing would only lag it
        lines.append(Line(name, c["step"], c["y"], colors[key], markers=val, smooth=smooth, dashed=val))
    return svg_line_chart(lines, title=metric_title(metric), x_label="step", y_label=metric_title(metric).lower(),
                          log_y=metric in LOG_METRICS, width=width, height=height, uid=metric)


# =============================================================================================
# attention heatmaps


def _text_width(text: str, size: float) -> float:
    return 0.58 * size * len(text)  # close enough for a sans-serif at this size


def _png(rgb: np.ndarray) -> bytes:
    """An 8-bit RGB PNG of an (h, w, 3) uint8 array."""
    h, w, _ = rgb.shape
    rows = np.concatenate([np.zeros((h, 1), np.uint8), rgb.reshape(h, w * 3)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), 9)) + chunk(b"IEND", b""))


def _viridis(values: np.ndarray) -> np.ndarray:
    """Values in 0..1 -> uint8 RGB by viridis (linear between the 11 stops)."""
    stops = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in VIRIDIS], dtype=np.float64)
    v = np.clip(np.nan_to_num(values, nan=0.0), 0.0, 1.0) * (len(stops) - 1)
    i = np.minimum(v.astype(int), len(stops) - 2)
    f = (v - i)[..., None]
    return np.round(stops[i] * (1 - f) + stops[i + 1] * f).astype(np.uint8)


def _token_text(tok: str) -> str:
    return tok.replace("\n", "⏎").replace("\t", "⇥").replace(" ", "·") or "∅"


def svg_attention(attention: np.ndarray, tokens: Sequence[str], *, step: int, title: str = "",
                  uid: str = "a") -> str:
    """A grid of heatmaps, one per layer (rows) and head (columns): row i of a head is where
    query token i looks (weights 0..1, viridis, as in the window's attention panel). Layers and
    heads are numbered from 0, as everywhere in the workbench."""
    att = np.asarray(attention, dtype=np.float32)
    if att.ndim == 3:
        att = att[None]
    n_layer, n_head, T, _ = att.shape
    k = max(1, math.ceil(150 / T))  # screen pixels per token, whole: no resampling blur
    cell = T * k
    labels = k >= 9
    lab_w = 0
    if labels:
        lab_w = int(max((_text_width(_token_text(t), 10) for t in tokens), default=0)) + 8
    gap, ml, mt = 14, 64 + lab_w, 44 + lab_w
    cbar_w = 64
    width = ml + n_head * (cell + gap) + cbar_w
    height = mt + n_layer * (cell + gap) + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
           f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="{_esc(FONT)}" '
           f'font-size="11">',
           f"<title>{_esc(title or f'attention at step {step}')}</title>",
           f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
           f'<text x="10" y="20" font-size="14" font-weight="600" fill="{TEXT}">'
           f"{_esc(title or f'Attention at step {step:,}')}</text>"]
    for h in range(n_head):
        x = ml + h * (cell + gap)
        out.append(f'<text x="{x + cell / 2}" y="{mt - 8 - lab_w}" text-anchor="middle" fill="{MUTED}">'
                   f"head {h}</text>")
    for layer in range(n_layer):
        y = mt + layer * (cell + gap)
        out.append(f'<text transform="translate({ml - 10 - lab_w} {y + cell / 2}) rotate(-90)" '
                   f'text-anchor="middle" fill="{MUTED}">layer {layer}</text>')
        for h in range(n_head):
            x = ml + h * (cell + gap)
            rgb = np.repeat(np.repeat(_viridis(att[layer, h]), k, axis=0), k, axis=1)
            data = base64.b64encode(_png(rgb)).decode("ascii")
            out.append(f'<image x="{x}" y="{y}" width="{cell}" height="{cell}" '
                       f'style="image-rendering:pixelated" href="data:image/png;base64,{data}" '
                       f'xlink:href="data:image/png;base64,{data}"><title>layer {layer}, head {h}'
                       f"</title></image>")
            out.append(f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="none" stroke="{FRAME}"/>')
    if labels:  # query tokens left of the first column, key tokens above the first row
        for i, tok in enumerate(tokens[:T]):
            t = _esc(_token_text(tok))
            out.append(f'<text x="{ml - 4}" y="{mt + i * k + k / 2 + 3.5:.1f}" text-anchor="end" '
                       f'font-size="10" fill="{TEXT}">{t}</text>')
            out.append(f'<text transform="translate({ml + i * k + k / 2 + 3.5:.1f} {mt - 4}) rotate(-90)" '
                       f'font-size="10" fill="{TEXT}">{t}</text>')
    # colour bar 0..1
    bx, by, bh = width - cbar_w + 12, mt, min(cell * n_layer + gap * (n_layer - 1), 220)
    gid = f"viridis-{uid}"
    stops = "".join(f'<stop offset="{i / 10:.1f}" stop-color="{c}"/>' for i, c in enumerate(VIRIDIS))
    out.append(f'<defs><linearGradient id="{gid}" x1="0" y1="1" x2="0" y2="0">{stops}</linearGradient></defs>')
    out.append(f'<rect x="{bx}" y="{by}" width="12" height="{bh}" fill="url(#{gid})" stroke="{FRAME}"/>')
    for v in (0.0, 0.5, 1.0):
        yy = by + bh - v * bh
        out.append(f'<text x="{bx + 16}" y="{yy + 4:.1f}" fill="{MUTED}">{v:g}</text>')
    caption = f"query (rows) attends to key (columns); probe text: {_token_text(''.join(tokens[:T]))}"
    fit = int((width - 20) / _text_width("x", 11))
    if len(caption) > fit:
        caption = caption[:fit - 1] + "…"
    out.append(f'<text x="10" y="{height - 14}" fill="{MUTED}">{_esc(caption)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def pick_snapshots(paths: Sequence[Path], limit: int) -> list[Path]:
    """At most ``limit`` snapshots spread evenly from the first to the last (both kept)."""
    paths = list(paths)
    if limit <= 0 or not paths:
        return []
    if len(paths) <= limit:
        return paths
    if limit == 1:
        return [paths[-1]]
    idx = sorted({round(i * (len(paths) - 1) / (limit - 1)) for i in range(limit)})
    return [paths[i] for i in idx]


# =============================================================================================
# metrics table, samples


def metrics_columns(records: Sequence[dict]) -> list[str]:
    """Every key of the records: step, split, task, loss first, the rest in order of appearance."""
    cols = [c for c in ("step", "split", "task", "loss") if any(c in r for r in records)]
    for r in records:
        cols += [k for k in r if k not in cols]
    return cols


def write_metrics_csv(records: Sequence[dict], stream) -> None:
    """One row per record; a key a record lacks is an empty cell; floats in full precision."""
    cols = metrics_columns(records)
    w = csv.writer(stream, lineterminator="\n")
    w.writerow(cols)
    for r in records:
        w.writerow(["" if r.get(c) is None else json.dumps(r[c]) if isinstance(r[c], (list, dict)) else r[c]
                    for c in cols])


SAMPLING = {"temperature": 0.8, "top_k": 50, "top_p": 0.95, "seed": 0}  # the report's samples, fixed
SAMPLING_NOTE = "temperature 0.8, top-k 50, top-p 0.95, seed 0"


def generate_samples(run_dir: Path, prompts: Sequence[str], *, max_tokens: int = 200) -> list[tuple[str, str]]:
    """(prompt, continuation) from the run's latest checkpoint, on the CPU, with the fixed
    ``SAMPLING`` settings: the same report twice gives the same text."""
    run = ckpt.RunDir.open(run_dir)
    if not run.checkpoint_steps():
        raise CheckpointError(f"{run.checkpoints}: no checkpoint to generate samples from. Export the report "
                              f"without samples, or train the run until it saves a checkpoint.")
    from .generate import SamplingSettings, generate_text  # torch loads here, only for samples
    from .loading import load_trained

    trained = load_trained(run.path, "cpu", with_heads=False)
    settings = SamplingSettings(max_tokens=max_tokens, **SAMPLING)
    return [(prompt, generate_text(trained.model, trained.tokenizer, prompt, settings)) for prompt in prompts]


# =============================================================================================
# the report


@dataclass
class _Content:
    run: ckpt.RunDir
    summary: dict
    config_text: str
    settings: list[tuple[str, str]]
    records: list[dict]
    charts: list[tuple[str, str, str]]           # (file stem, title, svg)
    attention: list[tuple[int, str]]             # (step, svg)
    samples: list[tuple[str, str]]
    step_of_checkpoint: int | None


def _settings_rows(run_path: Path) -> list[tuple[str, str]]:
    from .config import load_experiment

    try:
        exp = load_experiment(run_path / "config.toml")
    except WorkbenchError:
        return []
    m, t, tr = exp.model, exp.tokenizer, exp.training
    tasks = ", ".join(f"{task.task_name} ({task.kind}, weight {task.weight:g})" for task in exp.tasks)
    rows = [
        ("corpus", ", ".join(exp.corpus.paths) or "-"),
        ("tokenizer", f"{t.kind}, vocabulary {t.vocab_size:,}" + (f", from {t.path}" if t.path else "")),
        ("model", f"{m.n_layer} layers, {m.n_head} heads, width {m.n_embd}, context {m.block_size}, "
                  f"dropout {m.dropout:g}"),
        ("tasks", tasks),
        ("training", f"{tr.max_steps:,} steps, batch {tr.batch_size} x {tr.grad_accum_steps}, learning rate "
                     f"{tr.learning_rate:g} → {tr.min_lr:g}, warmup {tr.warmup_steps}, weight decay "
                     f"{tr.weight_decay:g}, seed {tr.seed}"),
    ]
    if len(exp.tasks) > 1:
        rows.append(("multi-task", f"sampling {exp.multitask.sampling}, weighting {exp.multitask.weighting}"))
    if exp.finetune.init:
        rows.append(("fine-tuned from", f"{exp.finetune.init} (freeze {exp.finetune.freeze})"))
    return rows


def _collect(run_dir: str | Path, *, samples: Sequence[str] | None = None, sample_tokens: int = 200,
            attention_snapshots: int = 4, progress: Callable[[str], None] | None = None) -> _Content:
    from .runs import summarize

    say = progress or (lambda _msg: None)
    run = ckpt.RunDir.open(Path(run_dir))
    if not run.metrics.is_file():
        raise CheckpointError(f"{run.metrics}: no metrics yet, so there is nothing to report. Export the run once "
                              f"it has trained at least one step, or choose another run.")
    records = ckpt.read_metrics(run.metrics)
    if not records:
        raise CheckpointError(f"{run.metrics}: the file is empty: the run has not finished a step yet. Export it "
                              f"once it has trained, or choose another run.")
    say("reading the run")
    summary = summarize(run.path).to_dict()
    curves = metric_curves(records)
    colors: dict[str, str] = {}
    charts = []
    for metric in curve_order(curves):
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", metric)
        charts.append((stem, metric_title(metric), metric_chart(metric, curves[metric], colors=colors)))
    say("drawing attention")
    attention = []
    for path in pick_snapshots(ckpt.list_attention(run.attention), attention_snapshots):
        try:
            step, arr, tokens, _ids = ckpt.load_attention(path)
        except Exception as e:  # a snapshot torn by a crash: say so, keep the rest of the report
            raise CheckpointError(f"{path}: cannot read this attention snapshot ({e}); delete it and export "
                                  f"again.") from None
        attention.append((step, svg_attention(arr, tokens, step=step, uid=f"s{step}")))
    out_samples: list[tuple[str, str]] = []
    if samples:
        say("generating samples")
        out_samples = generate_samples(run.path, list(samples), max_tokens=sample_tokens)
    steps = run.checkpoint_steps()
    return _Content(run, summary, run.config.read_text(encoding="utf-8"), _settings_rows(run.path), records,
                    charts, attention, out_samples, steps[-1] if steps else None)


CSS = """
body { font-family: %s; color: #2b2b2b; background: #f6f6f4; margin: 0; }
main { max-width: 1080px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 10px; }
.muted { color: #6b6b6b; }
.card { background: #fff; border: 1px solid #e2e2de; border-radius: 8px; padding: 14px 18px; margin: 12px 0; }
table { border-collapse: collapse; width: 100%%; }
th, td { text-align: left; padding: 5px 10px 5px 0; border-bottom: 1px solid #eeeeea; vertical-align: top; }
th { font-weight: 600; white-space: nowrap; width: 1%%; padding-right: 24px; }
td.num { font-variant-numeric: tabular-nums; }
pre { background: #fafaf8; border: 1px solid #eeeeea; border-radius: 6px; padding: 10px 12px; overflow-x: auto;
      white-space: pre-wrap; font-size: 13px; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 12px; }
.plots figure, figure { margin: 0; }
.plots figure:first-child { grid-column: 1 / -1; }  /* the loss, full width */
svg, img { max-width: 100%%; height: auto; }
.files a { margin-right: 16px; }
details summary { cursor: pointer; font-weight: 600; }
footer { margin-top: 36px; font-size: 12px; color: #8a8a8a; }
""" % FONT


def _html(c: _Content, *, inline: bool) -> str:
    s = c.summary
    e = html.escape
    title = f"{s['name']} - GPT Workbench report"
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime(s["started"]))
    head = (f"{e(s['status'])} · step {s['steps']:,} of {s['max_steps']:,} · started {started} · "
            f"training time {fmt_duration(s['seconds'])}")
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{REPORT_MARK}"
             f"<title>{e(title)}</title><style>{CSS}</style></head><body><main>",
             f"<h1>{e(s['name'])}</h1><div class=\"muted\">{head}</div>",
             f"<div class=\"muted\">{e(str(c.run.path))}</div>"]
    if s.get("error"):
        parts.append(f"<p style=\"color:#c62828\">{e(s['error'])}</p>")

    # results
    rows = []
    last_train = {}  # "lm" (a loss) or "cls/accuracy", as summary["val"] names them
    for r in c.records:
        if r.get("split") == "train":
            task = str(r.get("task", "lm"))
            last_train.update({task if k == "loss" else f"{task}/{k}": v for k, v in r.items()
                               if k not in X_KEYS + ROW_KEYS + RUN_LEVEL and isinstance(v, (int, float))
                               and not isinstance(v, bool)})
    for split, values in (("train", last_train), ("val", s["val"])):
        for key, v in values.items():  # "lm" (a loss) or "cls/accuracy"
            task, _, metric = key.partition("/")
            rows.append((f"{split} {metric_title(metric or 'loss').lower()} · {task}", v))
    if s.get("best"):
        rows.append(("best (early stopping)", json.dumps(s["best"])))
    parts.append("<h2>Results</h2><div class=\"card\"><table>")
    parts += [f"<tr><th>{e(k)}</th><td class=\"num\">{(f'{v:.4f}' if isinstance(v, float) else e(str(v)))}</td></tr>"
              for k, v in rows]
    parts.append(f"<tr><th>metric records</th><td class=\"num\">{len(c.records):,}</td></tr></table></div>")

    # settings
    parts.append("<h2>Settings</h2><div class=\"card\"><table>")
    parts += [f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in c.settings]
    parts.append("</table><details style=\"margin-top:10px\"><summary>config.toml (every setting)</summary>"
                 f"<pre>{e(c.config_text)}</pre></details></div>")

    # curves
    parts.append("<h2>Curves</h2><div class=\"plots\">")
    for stem, name, svg in c.charts:
        body = svg if inline else f'<img src="plots/{e(stem)}.svg" alt="{e(name)}">'
        parts.append(f"<figure class=\"card\">{body}</figure>")
    parts.append("</div>")
    parts.append("<p class=\"muted\">Training values are drawn faint and smoothed (exponential moving average "
                 "0.6); validation values are the dots. Every number is in metrics.csv.</p>")

    # attention
    if c.attention:
        parts.append("<h2>Attention</h2><p class=\"muted\">Where each token of the probe text looks, per layer "
                     "and head, at a few steps of the run (brighter = more weight).</p>")
        for step, svg in c.attention:
            body = svg if inline else f'<img src="attention/step_{step:07d}.svg" alt="step {step}">'
            parts.append(f"<figure class=\"card\">{body}</figure>")

    # samples
    if c.samples:
        parts.append(f"<h2>Samples</h2><p class=\"muted\">From the checkpoint at step {c.step_of_checkpoint:,}; "
                     f"{SAMPLING_NOTE}.</p>")
        for prompt, text in c.samples:
            parts.append(f"<div class=\"card\"><pre><b>{e(prompt)}</b>{e(text)}</pre></div>")

    # files
    buf = io.StringIO()
    write_metrics_csv(c.records, buf)
    if inline:
        csv_link = "data:text/csv;base64," + base64.b64encode(buf.getvalue().encode("utf-8")).decode("ascii")
        parts.append(f"<h2>Data</h2><div class=\"card files\"><a download=\"metrics.csv\" href=\"{csv_link}\">"
                     f"metrics.csv</a> every metric record ({len(c.records):,} rows)</div>")
    else:
        links = ["config.toml", "metrics.csv", "summary.json"] + (["samples.txt"] if c.samples else [])
        parts.append("<h2>Files</h2><div class=\"card files\">"
                     + "".join(f'<a href="{f}">{f}</a>' for f in links) + "</div>")
    parts.append(f"<footer>Exported by GPT Workbench on {time.strftime('%Y-%m-%d %H:%M')}.</footer>")
    parts.append("</main></body></html>\n")
    return "\n".join(parts)


def _samples_text(c: _Content) -> str:
    head = f"# from the checkpoint at step {c.step_of_checkpoint}; {SAMPLING_NOTE}\n"
    return head + "".join(f"\n--- prompt: {p!r}\n{p}{t}\n" for p, t in c.samples)


def _write(path: Path, text: str) -> None:
    """Write through a temporary file beside ``path`` (no half-written report after a crash), with
    the ordinary permissions of a new file: a report is made to be shared."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:  # a full disk, a read-only folder: a message naming the file
        tmp.unlink(missing_ok=True)
        raise ckpt.write_error(path, e) from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


REPORT_MARK = '<meta name="generator" content="GPT Workbench report">'
_OLD_REPORT_MARK = b"Exported by GPT Workbench on "  # the footer of reports written before REPORT_MARK


def is_report(path: Path) -> bool:
    """An HTML file this module wrote (it may be replaced by a new report; anything else is kept)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
            f.seek(max(0, os.fstat(f.fileno()).st_size - 4096))
            tail = f.read()
    except OSError:
        return False
    return REPORT_MARK.encode() in head or _OLD_REPORT_MARK in tail


def export_report(run_dir: str | Path, out: str | Path, *, samples: Sequence[str] | None = None, fmt: str = "html",
                  sample_tokens: int = 200, attention_snapshots: int = 4,
                  progress: Callable[[str], None] | None = None) -> Path:
    """Write the report of the run in ``run_dir`` to ``out``; returns the file or folder written.

    fmt "html": ``out`` is the .html file (or an existing folder: ``NAME-report.html`` inside it); an
    existing file is replaced only when it is an earlier report (``is_report``).
    fmt "folder": ``out`` is a new or empty folder, or an earlier report's folder (replaced).
    Never inside a run folder: a run folder is written by its training run only.
    ``samples``: prompts to continue with the final checkpoint (loads torch; optional).
    """
    if fmt not in FORMATS:
        raise ConfigError(f"report format {fmt!r}: use one of {', '.join(FORMATS)}.")
    out = Path(out)
    if fmt == "folder":
        check_output(out, "report", own_folder=lambda p: is_report(p / "index.html"))
    else:
        if out.is_dir():
            out = out / f"{Path(run_dir).name}-report.html"
        check_output(out, "report", own_file=is_report)
    if not out.parent.is_dir():
        raise CheckpointError(f"{out.parent}: no such folder; create it or choose another place for the report.")
    c = _collect(run_dir, samples=samples, sample_tokens=sample_tokens, attention_snapshots=attention_snapshots,
                progress=progress)
    if progress:
        progress("writing the report")
    if fmt == "html":
        _write(out, _html(c, inline=True))
        return out
    for sub in ("plots", "attention"):
        if (out / sub).is_dir():
            shutil.rmtree(out / sub)  # an earlier report's files: replaced, not mixed
    (out / "plots").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(c.run.config, out / "config.toml")
    _write(out / "summary.json", json.dumps(c.summary, indent=1, default=str))
    buf = io.StringIO()
    write_metrics_csv(c.records, buf)
    _write(out / "metrics.csv", buf.getvalue())
    for stem, _name, svg in c.charts:
        _write(out / "plots" / f"{stem}.svg", svg)
    if c.attention:
        (out / "attention").mkdir(exist_ok=True)
        for step, svg in c.attention:
            _write(out / "attention" / f"step_{step:07d}.svg", svg)
    (out / "samples.txt").unlink(missing_ok=True)
    if c.samples:
        _write(out / "samples.txt", _samples_text(c))
    _write(out / "index.html", _html(c, inline=False))
    return out
