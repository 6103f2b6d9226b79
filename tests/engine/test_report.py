"""Reports of runs (engine.report, its pictures in engine.report_figures, and `workbench report`): real
tiny runs, real files, read back."""

import base64
import csv
import html
import io
import json
import math
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

from workbench.cli import main as cli_main
from workbench.engine import checkpoint as ckpt
from workbench.engine.config import Experiment
from workbench.engine.errors import CheckpointError, ConfigError
from workbench.curves import metric_curves
from workbench.engine.report import export_report, generate_samples
from workbench.engine.report_figures import Line, svg_attention, svg_line_chart
from workbench.fmt import short_label
from workbench.palette import ATTENTION_COLORMAP, ATTENTION_MASK
from workbench.engine.runs import summarize
from workbench.engine.trainer import Trainer

SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"
TINY = ['corpus.paths=["builtin:toy"]', "tokenizer.kind=char", "model.n_layer=2", "model.n_head=2", "model.n_embd=32",
        "model.block_size=32", "training.batch_size=8", "training.learning_rate=3e-3", "training.min_lr=3e-4",
        "training.warmup_steps=2", "training.eval_batches=2", "training.threads=1"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny real runs on the builtin toy corpus, made once for the module: a plain LM run with
    attention snapshots and a checkpoint, and a multi-task run (LM + continuity) without either."""
    root = tmp_path_factory.mktemp("report-runs")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("WORKBENCH_DATA_DIR", str(root / "data"))
            mp.setenv("WORKBENCH_CACHE_DIR", str(root / "cache"))
            lm = Experiment(name="toy-lm").with_overrides(TINY + [
                "training.max_steps=8", "training.eval_every=4", "training.attention_every=4",
                "training.checkpoint_every=8"])
            mt = Experiment(name="toy-mt").with_overrides(TINY + [
                "training.max_steps=6", "training.eval_every=3", "training.attention_every=0",
                "training.checkpoint_every=100", 'tasks=[{kind="causal_lm"}, {kind="continuity", weight=0.5}]'])
            for name, exp in (("lm", lm), ("mt", mt)):
                result = Trainer(exp, run_dir=root / "runs" / name).run()
                assert result.status == "completed", result.message
    finally:
        torch.set_num_threads(threads)
    return {"lm": root / "runs" / "lm", "mt": root / "runs" / "mt", "root": root}


def svg_texts(root: ET.Element) -> list[str]:
    return [t.text for t in root.iter(f"{SVG}text") if t.text]


def head_images(root: ET.Element) -> dict[tuple[int, int], np.ndarray]:
    """The heatmap's cells per (layer, head): the embedded PNGs (ids "UID-lLAYERhHEAD") as RGB arrays."""
    out = {}
    for img in root.iter(f"{SVG}image"):
        m = re.fullmatch(r".*-l(\d+)h(\d+)", img.get("id", ""))
        if m:
            head, data = img.get(XLINK + "href").split(",", 1)
            assert head == "data:image/png;base64"
            out[int(m[1]), int(m[2])] = np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))
    return out


def token_labels(root: ET.Element) -> tuple[list[str], list[str]]:
    """A heatmap's token labels as the SVG holds them, in order: (queries, right-aligned beside the
    rows; keys, turned upright above the columns)."""
    queries, keys = [], []
    for t in root.iter(f"{SVG}text"):
        if "rotate(-90)" in (t.get("transform") or ""):
            if not re.fullmatch(r"layer \d+", t.text):
                keys.append(t.text)
        elif "text-anchor: end" in (t.get("style") or ""):
            queries.append(t.text)
    return queries, keys


def as_record(row: dict[str, str], like: dict) -> dict:
    """A CSV row back as a metrics record: empty cells are absent keys, numbers are numbers."""
    out = {}
    for k, v in row.items():
        if v == "":
            continue
        out[k] = v if isinstance(like.get(k), str) else float(v)
    return out


# -- the folder report ---------------------------------------------------------------------------


def test_folder_report_has_config_metrics_plots_attention_and_summary(runs, tmp_path):
    run = runs["lm"]
    out = export_report(run, tmp_path / "report", fmt="folder")
    assert out == tmp_path / "report"
    assert (out / "config.toml").read_bytes() == (run / "config.toml").read_bytes()
    assert not (out / "samples.txt").exists()

    # metrics.csv: one row per metrics.jsonl record, every key a column, values exact
    records = ckpt.read_metrics(run / "metrics.jsonl")
    rows = list(csv.DictReader((out / "metrics.csv").open(encoding="utf-8")))
    assert len(rows) == len(records) == 8 + 2  # 8 training steps, validation at steps 4 and 8
    header = next(csv.reader((out / "metrics.csv").open(encoding="utf-8")))
    assert set(header) == set().union(*records) and header[:4] == ["step", "split", "task", "loss"]
    for row, rec in zip(rows, records):
        assert as_record(row, rec) == rec

    # one chart per metric, valid SVG, with its legend
    plots = {p.stem: ET.parse(p).getroot() for p in (out / "plots").glob("*.svg")}
    assert {"loss", "lr", "grad_norm", "tokens_per_s", "ppl"} <= set(plots)
    assert {"train/lm", "val/lm"} <= set(svg_texts(plots["loss"]))
    assert "Loss" in svg_texts(plots["loss"]) and "train" in svg_texts(plots["lr"])
    assert all(root.tag == f"{SVG}svg" for root in plots.values())

    # attention snapshots at steps 0, 4, 8: one heatmap per layer and head
    snaps = sorted((out / "attention").glob("*.svg"))
    assert [p.name for p in snaps] == [p.with_suffix(".svg").name for p in ckpt.list_attention(run / "attention")]
    assert [p.name for p in snaps] == ["step_0000000.svg", "step_0000004.svg", "step_0000008.svg"]
    last = ET.parse(snaps[-1]).getroot()
    heads = head_images(last)
    assert sorted(heads) == [(0, 0), (0, 1), (1, 0), (1, 1)]  # layers x heads, each one PNG
    _step, arr, tokens, _ids = ckpt.load_attention(ckpt.list_attention(run / "attention")[-1])
    assert all(png.shape[0] == png.shape[1] and png.shape[0] % len(tokens) == 0 for png in heads.values())
    texts = svg_texts(last)
    assert {"layer 0", "layer 1", "head 0", "head 1"} <= set(texts)  # numbered from 0, as in the window
    assert "layer 2" not in texts and "head 2" not in texts

    summary = json.loads((out / "summary.json").read_text())
    assert summary == json.loads(json.dumps(summarize(run).to_dict(), default=str))
    assert summary["status"] == "completed" and summary["steps"] == 8

    index = (out / "index.html").read_text()
    for link in ("plots/loss.svg", "attention/step_0000008.svg", 'href="metrics.csv"', 'href="config.toml"',
                 'href="summary.json"'):
        assert link in index
    # exporting again into the same folder replaces the earlier report
    assert export_report(run, out, fmt="folder") == out


def test_html_report_is_one_self_contained_file(runs, tmp_path):
    run = runs["lm"]
    out = export_report(run, tmp_path / "toy.html", samples=["ab", "(["], sample_tokens=20)
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    # nothing outside the file: every link is a data: URI
    links = re.findall(r'(?:src|href)="([^"#][^"]*)"', text)
    assert links and all(link.startswith("data:") for link in links)
    # the config's values, every line of config.toml
    for line in (run / "config.toml").read_text().splitlines():
        assert html.escape(line) in text
    assert "2 layers, 2 heads, width 32, context 32" in text
    # the charts and the heatmaps inline, each a valid SVG document
    svgs = [ET.fromstring(s) for s in re.findall(r"<svg .*?</svg>", text, flags=re.S)]
    titles = [svg_texts(s)[0] for s in svgs]
    assert {"Loss", "Learning rate", "Perplexity", "Attention at step 8"} <= set(titles)
    loss = svgs[titles.index("Loss")]
    assert {"train/lm", "val/lm"} <= set(svg_texts(loss))
    ids = re.findall(r'\bid="([^"]+)"', text)
    assert len(ids) == len(set(ids))  # one page: every chart's ids its own
    # the metrics table rides along as a download
    data = re.search(r'href="data:text/csv;base64,([^"]+)"', text).group(1)
    rows = list(csv.DictReader(io.StringIO(base64.b64decode(data).decode("utf-8"))))
    assert len(rows) == len(ckpt.read_metrics(run / "metrics.jsonl"))
    # samples: the final checkpoint's continuation, the same every time (seeded)
    samples = generate_samples(run, ["ab", "(["], max_tokens=20)
    assert samples == generate_samples(run, ["ab", "(["], max_tokens=20)
    for prompt, continuation in samples:
        assert html.escape(prompt) + "</b>" + html.escape(continuation) in text
    # a folder as --out: the file goes inside, named after the run
    assert export_report(run, tmp_path) == tmp_path / "lm-report.html"


def test_multitask_report_plots_each_task_and_its_accuracy(runs, tmp_path):
    run = runs["mt"]
    out = export_report(run, tmp_path / "mt", fmt="folder", samples=["ab"], sample_tokens=8)
    loss = ET.parse(out / "plots" / "loss.svg").getroot()
    assert {"train/total", "train/lm", "train/continuity", "val/lm", "val/continuity"} <= set(svg_texts(loss))
    acc = ET.parse(out / "plots" / "accuracy.svg").getroot()
    assert {"train/continuity", "val/continuity"} <= set(svg_texts(acc))
    assert not (out / "attention").exists()  # the run took no snapshots
    assert "--- prompt: 'ab'" in (out / "samples.txt").read_text()

    records = ckpt.read_metrics(run / "metrics.jsonl")
    curves = metric_curves(records)
    train_acc = [r["accuracy"] for r in records if r.get("split") == "train" and r.get("task") == "continuity"]
    val_acc = [r["accuracy"] for r in records if r.get("split") == "val" and r.get("task") == "continuity"]
    assert curves["accuracy"]["train/continuity"]["y"] == train_acc and len(train_acc) == 6
    assert curves["accuracy"]["val/continuity"]["y"] == val_acc
    assert curves["accuracy"]["val/continuity"]["step"] == [3.0, 6.0]
    assert curves["lr"]["train"]["y"] == [r["lr"] for r in records if "lr" in r]
    assert all(math.isnan(t) for t in curves["loss"]["train/lm"]["tokens"])  # per-task lines carry no x but step


# -- errors ---------------------------------------------------------------------------------------


def test_bad_input_says_which_file_and_what_to_do(runs, tmp_path):
    with pytest.raises(CheckpointError, match="not a run folder") as e:
        export_report(tmp_path, tmp_path / "r.html")
    assert str(tmp_path) in str(e.value)

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copy(runs["lm"] / "config.toml", fresh)
    with pytest.raises(CheckpointError, match="no metrics yet") as e:
        export_report(fresh, tmp_path / "r.html")
    assert str(fresh / "metrics.jsonl") in str(e.value)
    (fresh / "metrics.jsonl").write_text("")
    with pytest.raises(CheckpointError, match="empty"):
        export_report(fresh, tmp_path / "r.html")

    with pytest.raises(ConfigError, match="html, folder"):
        export_report(runs["lm"], tmp_path / "r.pdf", fmt="pdf")
    with pytest.raises(CheckpointError, match="no such folder"):
        export_report(runs["lm"], tmp_path / "missing" / "r.html")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="not empty"):
        export_report(runs["lm"], busy, fmt="folder")
    assert (busy / "notes.txt").read_text() == "mine"

    no_ckpt = tmp_path / "no-ckpt"
    shutil.copytree(runs["lm"], no_ckpt, ignore=shutil.ignore_patterns("step_*.json"))
    with pytest.raises(CheckpointError, match="no checkpoint to generate samples from"):
        export_report(no_ckpt, tmp_path / "r.html", samples=["ab"])
    assert export_report(no_ckpt, tmp_path / "r.html").is_file()  # without samples it needs none


# -- the command line -----------------------------------------------------------------------------


def test_cli_report_writes_the_report_and_exits_with_the_right_code(runs, tmp_path, capsys):
    out = tmp_path / "cli.html"
    assert cli_main(["report", str(runs["lm"]), "--out", str(out)]) == 0
    assert out.is_file() and capsys.readouterr().out.strip() == str(out)

    folder = tmp_path / "cli-folder"
    assert cli_main(["report", str(runs["lm"]), "--out", str(folder), "--format", "folder",
                     "--sample", "ab", "--max-tokens", "5"]) == 0
    assert (folder / "index.html").is_file() and (folder / "samples.txt").is_file()
    capsys.readouterr()

    assert cli_main(["report", str(tmp_path), "--out", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a run folder" in err and str(tmp_path) in err
    with pytest.raises(SystemExit) as e:  # --out is required: argparse's own usage error
        cli_main(["report", str(runs["lm"])])
    assert e.value.code == 2


def test_listing_runs_and_reporting_do_not_import_torch_or_a_window(runs, tmp_path):
    """The report draws with matplotlib's SVG backend alone: no torch, no Qt, no pyplot (whose
    default backend could open a window)."""
    code = (
        "import sys; from workbench.engine.runs import list_runs; from workbench.cli import main; "
        f"runs = list_runs({str(runs['root'] / 'runs')!r}); assert len(runs) == 2, runs; "
        f"rc = main(['report', {str(runs['lm'])!r}, '--out', {str(tmp_path / 'r.html')!r}]); "
        "print(rc, 'torch' in sys.modules, any(m.startswith(('PySide6', 'pyqtgraph', 'matplotlib.pyplot')) "
        "for m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[-3:] == ["0", "False", "False"]
    # the heatmaps were drawn in that process too: the probe's tokens beside and above the cells, as text
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    svgs = [ET.fromstring(s) for s in re.findall(r"<svg .*?</svg>", page, flags=re.S)]
    heatmap = next(s for s in svgs if svg_texts(s)[0] == "Attention at step 8")
    _step, _arr, tokens, _ids = ckpt.load_attention(ckpt.list_attention(runs["lm"] / "attention")[-1])
    assert len(tokens) > 16  # a probe the old report left unlabelled
    assert token_labels(heatmap) == ([short_label(t) for t in tokens],) * 2


# -- the chart writer -----------------------------------------------------------------------------


def svg_paths(root: ET.Element) -> dict[str, str]:
    """The data lines of a chart by their group id ("T-v-line0", "T-v-line0-raw"): their path data."""
    return {g.get("id"): p.get("d") for g in root.iter(f"{SVG}g") if "-line" in (g.get("id") or "")
            for p in g.iter(f"{SVG}path")}


def test_chart_writer_legend_log_scale_gaps_and_markers():
    svg = svg_line_chart([Line("a", [1, 2, 3, 4], [10, 1, float("nan"), 0.1]),
                          Line("b", [1, 2], [-1, 5], markers=True)], title="T", y_label="v", log_y=True)
    root = ET.fromstring(svg)
    texts = svg_texts(root)
    assert texts[0] == "T" and {"a", "b", "v (log scale)"} <= set(texts)
    assert {"0.1", "1", "10"} <= set(texts)  # decade ticks on the log axis
    assert svg_paths(root)["T-v-line0"].count("M") == 2  # the NaN breaks the line in two
    # b's one positive point as a dot (-1 has no place on a log axis), and one beside its legend entry
    round_marks = {p.get("id") for p in root.iter(f"{SVG}path") if p.get("id") and " C " in p.get("d", "")}
    dots = [u for u in root.iter(f"{SVG}use") if u.get(XLINK + "href", "").lstrip("#") in round_marks]
    assert len(dots) == 1 + 1
    empty = ET.fromstring(svg_line_chart([Line("a", [], [])], title="E"))
    assert "no data" in svg_texts(empty)


def test_a_long_noisy_curve_is_thinned_to_its_extremes_and_smoothed(tmp_path):
    """3000 steps (more than the chart has pixels): the report draws each column's extremes of the
    faint raw line, so the lowest and highest loss stay visible, and a smoothed line over them."""
    steps = list(range(1, 3001))
    y = [3.0 + (0.5 if s % 7 == 0 else 0.0) - s / 3000 for s in steps]
    y[1234] = 9.0
    svg = svg_line_chart([Line("train/lm", steps, y, smooth=0.6)], title="Loss", y_label="loss")
    root = ET.fromstring(svg)
    paths = svg_paths(root)
    raw, smooth = paths["Loss-loss-line0-raw"], paths["Loss-loss-line0"]
    assert 10 < raw.count("L") < 1500 and 10 < smooth.count("L") < 1500  # thinned, not 3000 points
    ys = [float(v) for v in re.findall(r"[ML] [-\d.]+ ([-\d.]+)", raw)]
    # SVG y is an affine map of the loss: the first point sits where it does between the spike (top)
    # and the lowest loss (bottom) only if both extremes were kept
    assert (ys[0] - min(ys)) / (max(ys) - min(ys)) == pytest.approx((9.0 - y[0]) / (9.0 - min(y)), abs=1e-4)
    assert "train/lm" in svg_texts(root)


# -- the attention heatmaps -----------------------------------------------------------------------


def test_heatmap_labels_the_tokens_as_text_and_masks_only_a_causal_triangle():
    """Each head's cells in the window's colour map (one PNG each), the cells above the diagonal of
    a causal head in the window's mask grey (a bidirectional head keeps its colours there), the
    tokens as text with their whitespace visible, long ones cut."""
    tokens = ["a", " ", "b\n", "<|unk|>", "internationalisation", "c"]
    T = len(tokens)
    rng = np.random.default_rng(0)
    att = rng.random((2, 2, T, T)).astype(np.float32)
    att[:, :, np.triu_indices(T, 1)[0], np.triu_indices(T, 1)[1]] = 0.0
    att[1, 1] = rng.random((T, T))  # a bidirectional head: weights above the diagonal too
    att /= att.sum(-1, keepdims=True)
    root = ET.fromstring(svg_attention(att, tokens, step=7, uid="u"))

    assert svg_texts(root)[0] == "Attention at step 7"
    want = ["a", "·", "b↵", "<|unk|>", "internation…", "c"]  # 12 characters at most
    assert token_labels(root) == (want, want)
    assert {"layer 0", "layer 1", "head 0", "head 1", "0", "0.5", "1"} <= set(svg_texts(root))  # and a colour bar

    viridis = matplotlib.colormaps[ATTENTION_COLORMAP]
    mask = tuple(int(ATTENTION_MASK[i:i + 2], 16) for i in (1, 3, 5))
    heads = head_images(root)
    assert sorted(heads) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for (layer, head), png in heads.items():
        k = png.shape[0] // T
        for i in range(T):
            for j in range(T):
                cell = png[i * k + k // 2, j * k + k // 2]
                if j > i and (layer, head) != (1, 1):
                    assert tuple(cell) == mask, (layer, head, i, j)
                else:
                    want_rgb = np.round(np.array(viridis(float(att[layer, head, i, j]))[:3]) * 255)
                    assert np.abs(cell - want_rgb).max() <= 2, (layer, head, i, j, cell, want_rgb)


def test_a_long_probe_is_labelled_every_few_tokens():
    """120 tokens in a 1-layer, 1-head grid: too many for a label each, so every stride-th token is
    labelled (a round stride, from the first), queries and keys alike, so the labels still read as
    the text; a short probe labels every token."""
    tokens = [f"w{i}" for i in range(120)]
    att = np.tril(np.ones((1, 1, 120, 120), np.float32))
    queries, keys = token_labels(ET.fromstring(svg_attention(att / att.sum(-1, keepdims=True), tokens, step=1)))
    stride = int(queries[1][1:])
    assert 1 < stride <= 10 and queries == keys == tokens[::stride]
    short = np.tril(np.ones((1, 1, 12, 12), np.float32))
    assert token_labels(ET.fromstring(svg_attention(short, tokens[:12], step=1))) == (tokens[:12], tokens[:12])


@pytest.mark.parametrize("lo, hi", [(8.9, 11.5), (3.1, 4.4)])
def test_a_log_axis_within_one_decade_still_has_labelled_ticks(lo, hi):
    """A perplexity from 11.5 down to 8.9 (or 4.4 to 3.1) holds at most one 1-2-5 tick: the axis
    then gets round numbers between its ends, as the report's charts had before matplotlib."""
    svg = svg_line_chart([Line("val/lm", [100, 200, 300, 400], [hi, 10.0 if lo < 10 < hi else hi * 0.9, lo * 1.05, lo],
                               markers=True)], title="Perplexity", y_label="perplexity", log_y=True)
    numbers = [float(t) for t in svg_texts(ET.fromstring(svg)) if re.fullmatch(r"\d+(\.\d+)?", t)]
    y_ticks = [v for v in numbers if v < 100]  # the x axis is labelled in hundreds
    assert len(y_ticks) >= 3, y_ticks
    assert all(lo * 0.9 <= v <= hi * 1.1 for v in y_ticks), y_ticks
