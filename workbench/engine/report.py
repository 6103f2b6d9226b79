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

The charts and heatmaps are drawn by matplotlib (engine/report_figures.py: its SVG backend, no
window, no Qt): vector files, small and sharp at any size, text kept as text.

Nothing here imports Qt, and nothing imports torch unless samples are asked for.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..curves import ROW_KEYS, RUN_LEVEL, X_KEYS, curve_order, metric_curves, metric_title
from ..fmt import fmt_duration
from . import checkpoint as ckpt
from .errors import CheckpointError, ConfigError, WorkbenchError
from .ownership import check_output
from .report_figures import metric_chart, svg_attention

FORMATS = ("html", "folder")

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"  # the page's (CSS)


# =============================================================================================
# attention snapshots, metrics table, samples


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
                     "and head, at a few steps of the run (brighter = more weight; grey: later tokens, which a causal "
                     "model cannot look at).</p>")
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
