"""Evaluate panel: in-context (zero-, one- and few-shot) evaluation of a trained model (issue #6).

As in GPT-3, a task is learned from the prompt alone: an optional task description, k solved
examples (demonstrations, drawn from a training split) and the query. Every label's verbalizer word
is scored by the model's log-likelihood after the prompt (optionally divided by its number of
tokens) and the best one is the answer. Accuracy is measured for several k, each over several
random draws (choice and order) of demonstrations: the mean and its spread.

Settings (left): the model (a run folder or checkpoint), the task (the built-in key -> value task
that goes with the ``icl_keyvalue`` preset, or a labelled CSV / TSV / JSONL file with its text,
second-text and label columns, the word each label is shown as, a description and the prompt
template), the k values, draws, number of test examples, length normalisation.

Views (right):

- accuracy against k: the mean over draws with +-1 standard deviation error bars, each draw as a
  faint dot, lines for chance, the majority class and a fine-tuned reference (a value typed in, or
  the best / last validation accuracy of the same task in a fine-tuned run's ``metrics.jsonl``,
  read by ``engine.runs.task_score``), a legend and a table of the numbers;
- the exact prompt of any test example for any k and draw, its parts coloured (description,
  each demonstration with its answer in bold, the query), the candidates' scores, and a bar per
  demonstration: the share of the query's attention it receives (``demonstration_attention``).

The panel only gathers settings and shows results: the task is the engine's ``InContextTask``
(``builtin_icl_task`` / ``labelled_icl_task``), the numbers come from ``evaluate_in_context``, the
prompt from ``InContextTask.prompt`` (``build_prompt``). Loading, reading the data, evaluating and
inspecting run in bridge ``Job``s; evaluating reports progress and can be cancelled. Errors (a bad
file, a missing column, a bad template) are shown inline with the engine's message.

API for the main window:

    panel.set_run(path)             a run folder or checkpoint .json; loaded in a background Job
    panel.set_presentation(scale)   plots and prompt text for a projector
    panel.summaryChanged(str)       (Panel) "k=0 .25 → k=8 .65" after an evaluation
    panel.modelLoaded(str)          the checkpoint's path, once its model is loaded
    panel.evaluationFinished(object)  the engine's ICLResult
    panel.is_busy() / panel.cancel()  an evaluation is running / stop it (Job.shutdown_all on quit
                                      stops it too)

More entry points (used by tests and scripts): ``use_builtin_task(n_keys)``, ``set_data_file(path)``,
``set_column(role, name)``, ``set_verbalizer(label, word)``, ``set_ks(k_max, every)``,
``start_evaluation()``, ``inspect(index, k, draw)``, ``set_reference(value)``,
``load_reference(run)``, ``save_results(path)`` (the JSON of ``workbench eval --out``),
``plotted_points()``, ``wait_idle()``.
"""

from __future__ import annotations

import dataclasses
import html
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from ...widgets import style
from ...widgets.plot_input import wheel_scrolls_page
from ...widgets.flow import ColumnScroll, FlowRow, ReflowSplitter, WrapLabel, labelled
from .. import ERROR_COLOR, Panel, card, error_label, muted_label, show_error
from ..dataset_form import DatasetPreview, guess_columns, preview_rows

ROLES = ("text", "text_pair", "label")
ROLE_TITLES = {"text": "Text column", "text_pair": "Second text (optional)", "label": "Label column"}
NONE = "(none)"

CURVE_COLOR = style.SERIES_COLORS[0]
CHANCE_COLOR = "#8a8a8a"
MAJORITY_COLOR = style.SERIES_COLORS[6]
FINETUNED_COLOR = style.SERIES_COLORS[2]
DEMO_FILLS = ("#cfe3f7", "#fde2c4")      # demonstration backgrounds, alternating
DEMO_BARS = ("#4e79a7", "#f28e2b")       # the same demonstrations' bars
QUERY_FILL = "#fff0a6"
DESCRIPTION_FILL = "#eeeeee"
ANSWER_INK = "#174a17"
MEAN_MARK = style.SERIES_COLORS[3]


def ks_for(k_max: int, every: bool) -> list[int]:
    """The k values of an evaluation: 0..k_max, or 0, 1, 2, 4, ... up to k_max (k_max included)."""
    if every:
        return list(range(k_max + 1))
    ks, k = [0], 1
    while k < k_max:
        ks.append(k)
        k *= 2
    if k_max > 0:
        ks.append(k_max)
    return ks


def short_acc(x: float) -> str:
    """0.25 -> ".25" (1.0 -> "1.00"), for the sidebar summary."""
    s = f"{x:.2f}"
    return s[1:] if s.startswith("0") else s


def escape_field(text: str) -> str:
    """A template as typed in a one-line field: line breaks and tabs as \\n and \\t."""
    return text.replace("\n", "\\n").replace("\t", "\\t")


def unescape_field(text: str) -> str:
    return text.replace("\\n", "\n").replace("\\t", "\t")


# =============================================================================================
# what runs in the background (no Qt below this line until the widgets)


@dataclass(frozen=True)
class TaskSpec:
    """Everything that decides the task; plain data, made on the GUI thread."""

    source: str = "builtin"                 # builtin | file
    n_keys: int = 4                         # builtin
    path: str = ""                          # file
    demos: str = ""                         # file of demonstrations (default: hold out a fifth of path)
    text: str = "text"
    text_pair: str = ""
    label: str = "label"
    verbalizer: tuple[tuple[str, str], ...] = ()
    description: str = ""
    input: str = ""                         # "" = the engine's default template
    answer: str = ""
    separator: str = ""
    limit: int = 200                        # test examples (0: all)
    seed: int = 0

    def data_name(self) -> str:
        """What ``workbench eval --data`` would say."""
        if self.source == "builtin":
            return "builtin:icl" if self.n_keys == 4 else f"builtin:icl:{self.n_keys}"
        return self.path


@dataclass(frozen=True)
class EvalSpec:
    task: TaskSpec
    ks: tuple[int, ...] = (0, 1, 2, 4, 8)
    draws: int = 5
    length_norm: bool = False
    attention: int = 16                     # prompts for the mean attention per demonstration


def build_task(spec: TaskSpec):
    """The engine's InContextTask for the settings."""
    from workbench.engine.errors import ConfigError
    from workbench.engine.evaluate import PromptTemplate, builtin_icl_task, default_template, labelled_icl_task
    from workbench.engine.labelled import Columns

    if spec.source == "builtin":
        return builtin_icl_task(n=spec.limit or 200, seed=spec.seed, n_keys=spec.n_keys)
    if not spec.path:
        raise ConfigError("Choose a labelled data file (.csv, .tsv or .jsonl), or the built-in key → value task.")
    if not spec.text or not spec.label:
        raise ConfigError("Choose the text column and the label column of the data file.")
    base = default_template(pair=bool(spec.text_pair), description=spec.description)
    template = PromptTemplate(input=spec.input or base.input, answer=spec.answer or base.answer,
                              description=spec.description, separator=spec.separator or base.separator)
    cols = Columns(text=spec.text, text_pair=spec.text_pair, label=spec.label)
    return labelled_icl_task(spec.path, cols, verbalizer=dict(spec.verbalizer), template=template,
                             demos=spec.demos or None, limit=spec.limit or None, seed=spec.seed)


def check_task(state, spec: TaskSpec) -> dict:
    """Job: build the task (reads the whole file, so every error shows now) and describe it."""
    from workbench.engine.evaluate import default_template

    task = build_task(spec)
    state.check()
    golds = [task.gold(ex) for ex in task.test]
    return {"task": task, "labels": list(task.labels), "counts": [golds.count(i) for i in range(len(task.labels))],
            "n_test": len(task.test), "n_pool": len(task.pool), "chance": task.chance(), "majority": task.majority(),
            "default": dataclasses.asdict(default_template(pair=bool(spec.text_pair)))}


def load_model(state, path: str):
    """Job: the model and tokenizer of a run folder or checkpoint, on the best device here."""
    from workbench.engine.device import resolve_device
    from workbench.engine.loading import load_trained

    trained = load_trained(path, resolve_device("auto"), with_heads=False)
    return trained


def run_evaluation(state, trained, spec: EvalSpec) -> dict:
    """Job: ``evaluate_in_context`` with progress ((done, total) prompts) and cancellation."""
    import torch

    from workbench.engine.evaluate import evaluate_in_context

    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))  # leave a core to the window
    task = build_task(spec.task)
    state.check()
    result = evaluate_in_context(trained.model, trained.tokenizer, task, spec.ks, spec.draws,
                                 length_norm=spec.length_norm, attention_examples=spec.attention,
                                 progress=lambda done, total: state.progress((done, total)),
                                 should_stop=state.should_stop)
    return {"result": result, "task": task}


@dataclass
class Inspection:
    index: int
    k: int
    draw: int
    prompt: Any                      # engine Prompt
    demo_answers: list[str]          # the answer text that ends each demonstration kept, in order
    attention: Any = None            # engine DemoAttention (None without a model)
    scores: list[float] | None = None


def inspect_prompt(state, trained, task, index: int, k: int, draw: int, length_norm: bool) -> Inspection:
    """Job: the exact prompt of one example, how the model scores its candidates and where the
    query's attention goes."""
    from workbench.engine.evaluate import demonstration_attention, score_prompts

    prompt = task.prompt(index, k, draw, tokenizer=trained.tokenizer, block_size=trained.model.config.block_size)
    demos = task.demonstrations(k, draw)
    kept = demos[len(demos) - prompt.demos_used:]
    answers = [task.template.fill_answer(task.answers(d)[task.gold(d)]) for d in kept]
    state.check()
    attention = demonstration_attention(trained.model, prompt)
    scores = score_prompts(trained.model, [prompt], length_norm=length_norm)[0]
    return Inspection(index, k, draw, prompt, answers, attention, scores)


def read_reference(state, run: str, data: str, which: str):
    """Job: the fine-tuned accuracy of the matching task in a run's metrics.jsonl."""
    from workbench.engine.runs import task_score

    return task_score(Path(run), metric="accuracy", which=which, data=data or None)


def shown_template(text: str) -> str:
    """A template part in a placeholder: escapes visible, a lone space named."""
    return "(a space)" if text == " " else escape_field(text)


# =============================================================================================
# views


def _style_axes(item: pg.PlotItem, scale: float, left: str, bottom: str) -> None:
    css = {"color": style.MUTED, "font-size": f"{9.5 * scale:.1f}pt"}
    for name in ("left", "bottom"):
        ax = item.getAxis(name)
        ax.setPen(pg.mkPen(style.MUTED, width=1))
        ax.setTextPen(pg.mkPen(style.FOREGROUND))
        ax.setTickFont(style.font(scale, size=9))
        ax.setStyle(tickTextOffset=int(round(4 * scale)), tickLength=int(round(-5 * scale)))
        ax.enableAutoSIPrefix(False)
    item.getAxis("left").setWidth(int(round(52 * scale)))
    item.setLabel("left", left, **css)
    item.setLabel("bottom", bottom, **css)
    item.showGrid(x=False, y=True, alpha=style.GRID_ALPHA)


def _style_legend(legend: pg.LegendItem, scale: float) -> None:
    legend.setBrush(pg.mkBrush(255, 255, 255, 225))
    legend.setPen(pg.mkPen(221, 221, 221))
    legend.setLabelTextColor(style.FOREGROUND)
    legend.setLabelTextSize(f"{9 * scale:.1f}pt")


class AccuracyPlot(QtWidgets.QWidget):
    """Accuracy against k: the mean over draws with error bars (one standard deviation), every
    draw as a faint dot, and horizontal reference lines (chance, majority class, fine-tuned)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._scale = 1.0
        self.view = pg.PlotWidget(background=style.BACKGROUND)
        self.view.setMenuEnabled(False)
        self.view.setMinimumHeight(200)
        wheel_scrolls_page(self.view, reset=self.reset_view)
        self.item = self.view.getPlotItem()
        self.item.hideButtons()
        self.legend = self.item.addLegend(offset=(6, 2), colCount=2)  # in a band above accuracy 1
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.view)

        self.draw_dots = pg.ScatterPlotItem(size=6, pen=None, brush=pg.mkBrush(style.qcolor(CURVE_COLOR, 0.35)),
                                            name="one draw of demonstrations")
        self.error_bars = pg.ErrorBarItem(x=np.zeros(0), y=np.zeros(0), top=np.zeros(0), bottom=np.zeros(0),
                                          beam=0.0, pen=pg.mkPen(CURVE_COLOR, width=1.6))
        self.curve = pg.PlotDataItem([], [], pen=pg.mkPen(CURVE_COLOR, width=2.2), symbol="o", symbolSize=8,
                                     symbolBrush=CURVE_COLOR, symbolPen=pg.mkPen("w", width=1), name="in-context")
        self.chance_line = pg.PlotDataItem([], [], pen=pg.mkPen(CHANCE_COLOR, width=1.5,
                                                                style=QtCore.Qt.PenStyle.DashLine), name="chance")
        self.majority_line = pg.PlotDataItem([], [], pen=pg.mkPen(MAJORITY_COLOR, width=1.5,
                                                                  style=QtCore.Qt.PenStyle.DotLine),
                                             name="majority class")
        self.finetuned_line = pg.PlotDataItem([], [], pen=pg.mkPen(FINETUNED_COLOR, width=2,
                                                                   style=QtCore.Qt.PenStyle.DashDotLine),
                                              name="fine-tuned")
        for it in (self.chance_line, self.majority_line, self.finetuned_line, self.draw_dots, self.error_bars,
                   self.curve):
            self.item.addItem(it)
        self._ks: list[int] = [0, 1, 2, 4, 8]
        self._chance: float | None = None
        self._majority: float | None = None
        self._finetuned: tuple[float, str] | None = None
        self._has_result = False
        self.item.getAxis("left").setTicks([[(v / 5, f"{v / 5:.1f}") for v in range(6)]])
        self._band_timer = QtCore.QTimer(self, singleShot=True, interval=0)
        self._band_timer.timeout.connect(self._fit_band)
        self.item.getViewBox().sigResized.connect(self._band_timer.start)
        self.item.setYRange(0, 1.25, padding=0)
        self._apply_style()
        self._update_lines()

    # -- API --------------------------------------------------------------------------------

    def set_ks(self, ks: list[int]) -> None:
        """The x extent before a result is shown."""
        if not self._has_result:
            self._ks = list(ks) or [0]
            self._update_lines()

    def set_result(self, result) -> None:
        """An engine ICLResult."""
        ks = np.array([r.k for r in result.results], dtype=float)
        means = np.array([r.accuracy for r in result.results])
        stds = np.array([r.std for r in result.results])
        self.curve.setData(ks, means)
        self.curve.opts["name"] = f"mean of {result.draws} draw{'s' if result.draws != 1 else ''} ± 1 std"
        self.error_bars.setData(x=ks, y=means, top=stds, bottom=stds, beam=0.0)
        dx = np.concatenate([np.full(len(r.accuracies), r.k, dtype=float) for r in result.results])
        dy = np.concatenate([np.array(r.accuracies, dtype=float) for r in result.results])
        self.draw_dots.setData(dx, dy)
        self._ks = [int(k) for k in ks]
        self._has_result = True
        self._chance, self._majority = float(result.chance), float(result.majority)
        self._update_lines()
        self._relabel()

    def clear_result(self) -> None:
        self.curve.setData([], [])
        self.error_bars.setData(x=np.zeros(0), y=np.zeros(0), top=np.zeros(0), bottom=np.zeros(0))
        self.draw_dots.setData([], [])
        self._has_result = False
        self._update_lines()

    def set_baselines(self, chance: float | None, majority: float | None) -> None:
        """Chance and majority class of the task (before a result arrives)."""
        if not self._has_result:
            self._chance, self._majority = chance, majority
            self._update_lines()

    def set_reference(self, value: float | None, label: str = "") -> None:
        self._finetuned = None if value is None else (float(value), label)
        self._update_lines()

    def reference(self) -> float | None:
        """The fine-tuned line's height as drawn (None when hidden)."""
        _x, y = self.finetuned_line.getData()
        return None if y is None or len(y) == 0 else float(y[0])

    def points(self) -> dict[str, np.ndarray]:
        """What is drawn: k, the means (curve), the error bars' half-heights above and below."""
        x, y = self.curve.getData()
        o = self.error_bars.opts
        return {"k": np.asarray(x if x is not None else []), "mean": np.asarray(y if y is not None else []),
                "bar_x": np.asarray(o["x"]), "bar_y": np.asarray(o["y"]), "top": np.asarray(o["top"]),
                "bottom": np.asarray(o["bottom"])}

    def legend_names(self) -> list[str]:
        return [label.text for _sample, label in self.legend.items]

    def set_presentation(self, scale: float) -> None:
        self._scale = max(0.5, float(scale))
        self._apply_style()

    def export_png(self, path, scale: float = 2.0) -> None:
        from ...widgets.export import save_png

        save_png(self.view, path, scale)

    # -- internals --------------------------------------------------------------------------

    def _span(self) -> tuple[float, float]:
        lo, hi = min(self._ks), max(self._ks)
        pad = max(0.4, 0.04 * (hi - lo))
        return lo - pad, hi + pad

    def _update_lines(self) -> None:
        x0, x1 = self._span()
        for line, value in ((self.chance_line, self._chance), (self.majority_line, self._majority),
                            (self.finetuned_line, self._finetuned[0] if self._finetuned else None)):
            if value is None:
                line.setData([], [])
            else:
                line.setData([x0, x1], [value, value])
        self.item.setXRange(x0, x1, padding=0)
        ticks = [(k, str(k)) for k in self._ks] if len(self._ks) <= 24 else None
        self.item.getAxis("bottom").setTicks([ticks] if ticks else None)
        self._relabel()

    def _relabel(self) -> None:
        names = {self.chance_line: f"chance {short_acc(self._chance)}" if self._chance is not None else "chance",
                 self.majority_line: (f"majority class {short_acc(self._majority)}" if self._majority is not None
                                      else "majority class"),
                 self.finetuned_line: (f"fine-tuned {short_acc(self._finetuned[0])}"
                                       + (f" ({self._finetuned[1]})" if self._finetuned[1] else "")
                                       if self._finetuned else "fine-tuned")}
        self.legend.clear()
        if self._has_result:
            self.legend.addItem(self.curve, self.curve.opts["name"])
            self.legend.addItem(self.draw_dots, "one draw")
        for line in (self.chance_line, self.majority_line, self.finetuned_line):
            _x, y = line.getData()
            if y is not None and len(y):
                self.legend.addItem(line, names[line])
        _style_legend(self.legend, self._scale)
        self._band_timer.start()

    def reset_view(self) -> None:
        """Back to the whole k range and accuracy 0..1 (double-click; Ctrl+wheel zooms)."""
        if self._ks:
            self._update_lines()
            self._fit_band()

    def _fit_band(self) -> None:
        """Room above accuracy 1 for the legend, so it never hides a point: the y range grows
        until the band above 1.02 is as tall as the legend."""
        vb_h = self.item.getViewBox().height()
        if vb_h <= 0:
            return
        f = min(0.6, (self.legend.boundingRect().height() + 6) / vb_h)
        self.item.setYRange(-0.05, (1.02 + 0.05 * f) / (1 - f), padding=0)

    def _apply_style(self) -> None:
        _style_axes(self.item, self._scale, "accuracy", "k  (demonstrations in the prompt)")
        self.item.getAxis("bottom").setStyle(tickTextOffset=int(round(4 * self._scale)))
        self.curve.setSymbolSize(8 * self._scale)
        self.draw_dots.setSize(6 * self._scale)
        _style_legend(self.legend, self._scale)


class AttentionBars(QtWidgets.QWidget):
    """One bar per demonstration (first in the prompt on the left): the share of the query's
    attention it receives; optional diamonds for the mean over many prompts."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._scale = 1.0
        self.view = pg.PlotWidget(background=style.BACKGROUND)
        self.view.setMenuEnabled(False)
        self.view.setMinimumHeight(150)
        wheel_scrolls_page(self.view, hint="")
        self.item = self.view.getPlotItem()
        self.item.hideButtons()
        self.item.setMouseEnabled(x=False, y=False)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.65)
        self.mean_marks = pg.ScatterPlotItem(symbol="d", size=9, pen=pg.mkPen("w", width=1),
                                             brush=pg.mkBrush(MEAN_MARK))
        self.item.addItem(self.bars)
        self.item.addItem(self.mean_marks)
        self.caption = muted_label()
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.caption)
        self._values: list[float] = []
        self._apply_style()

    def set_values(self, values: list[float], mean: list[float] | None = None) -> None:
        self._values = [float(v) for v in values]
        n = len(values)
        x = np.arange(1, n + 1, dtype=float)
        brushes = [pg.mkBrush(DEMO_BARS[i % 2]) for i in range(n)]
        # (pyqtgraph 0.14's BarGraphItem fails on an empty list of pens or brushes)
        self.bars.setOpts(x=x, height=np.array(self._values), width=0.65, pen=pg.mkPen(None),
                          brushes=brushes or None, brush=pg.mkBrush(DEMO_BARS[0]))
        if mean is not None and len(mean) == n:
            self.mean_marks.setData(x, np.array(mean, dtype=float))
        else:
            self.mean_marks.setData([], [])
        top = max([*self._values, *(mean or []), 0.05])
        self.item.setYRange(0, top * 1.12, padding=0)
        self.item.setXRange(0.4, max(1, n) + 0.6, padding=0)
        self.item.getAxis("bottom").setTicks([[(i + 1, str(i + 1)) for i in range(n)]] if n <= 32 else None)

    def values(self) -> list[float]:
        return list(self._values)

    def clear(self) -> None:
        self.set_values([])
        self.caption.setText("")

    def set_presentation(self, scale: float) -> None:
        self._scale = max(0.5, float(scale))
        self._apply_style()

    def _apply_style(self) -> None:
        _style_axes(self.item, self._scale, "share of the query's attention", "demonstration (1 = first)")


class PromptView(QtWidgets.QTextEdit):
    """The exact text the model reads, its parts coloured."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setReadOnly(True)
        self.setLineWrapMode(QtWidgets.QTextEdit.LineWrapMode.WidgetWidth)
        self._scale = 1.0
        self._apply_font()

    def set_prompt(self, parts: list[tuple[str, str, int]], demo_answers: list[str] | None = None) -> None:
        """``parts``: (kind, text, index) in order; demonstrations end with ``demo_answers[index]``."""
        self.clear()
        cur = self.textCursor()
        base = QtGui.QTextCharFormat()
        base.setForeground(QtGui.QColor(style.FOREGROUND))
        answers = demo_answers or []
        for kind, text, index in parts:
            fmt = QtGui.QTextCharFormat(base)
            if kind == "description":
                fmt.setBackground(QtGui.QColor(DESCRIPTION_FILL))
                fmt.setFontItalic(True)
                fmt.setForeground(QtGui.QColor(style.MUTED))
            elif kind == "demonstration":
                fmt.setBackground(QtGui.QColor(DEMO_FILLS[index % 2]))
                fmt.setToolTip(f"demonstration {index + 1}")
            elif kind == "query":
                fmt.setBackground(QtGui.QColor(QUERY_FILL))
                fmt.setFontWeight(QtGui.QFont.Weight.Bold)
                fmt.setToolTip("the query: the model continues from here")
            answer = answers[index] if kind == "demonstration" and 0 <= index < len(answers) else ""
            if answer and text.endswith(answer) and len(answer) < len(text):
                cur.insertText(text[:-len(answer)], fmt)
                afmt = QtGui.QTextCharFormat(fmt)
                afmt.setFontWeight(QtGui.QFont.Weight.Bold)
                afmt.setForeground(QtGui.QColor(ANSWER_INK))
                afmt.setToolTip(f"demonstration {index + 1}: its answer")
                cur.insertText(answer, afmt)
            else:
                cur.insertText(text, fmt)
        self.moveCursor(QtGui.QTextCursor.MoveOperation.End)
        self.ensureCursorVisible()

    def set_plain(self, text: str) -> None:
        self.clear()
        self.textCursor().insertText(text)

    def set_presentation(self, scale: float) -> None:
        self._scale = max(0.5, float(scale))
        self._apply_font()

    def _apply_font(self) -> None:
        self.document().setDefaultFont(style.font(self._scale, size=11.5, mono=True))


class ColumnCombo(QtWidgets.QComboBox):
    """A column of the data file: picked from the file's columns, or typed (dotted JSON paths)."""

    def __init__(self, optional: bool = False, parent=None):
        super().__init__(parent)
        self.setEditable(True)
        self.setInsertPolicy(QtWidgets.QComboBox.InsertPolicy.NoInsert)
        self.optional = optional
        self.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(10)

    def value(self) -> str:
        t = self.currentText().strip()
        return "" if t == NONE else t

    def set_value(self, name: str) -> None:
        self.setCurrentText(name or (NONE if self.optional else ""))

    def set_columns(self, columns: list[str]) -> None:
        current = self.currentText()
        with QtCore.QSignalBlocker(self):
            self.clear()
            if self.optional:
                self.addItem(NONE)
            self.addItems(columns)
            self.setCurrentText(current)


# =============================================================================================
# the panel


class EvaluatePanel(Panel):
    title = "Evaluate"
    subtitle = ("In-context learning: can the model do a task from a few solved examples in its prompt, "
                "without training? Accuracy for 0, 1, 2, … demonstrations, each over several random draws.")

    modelLoaded = QtCore.Signal(str)
    evaluationFinished = QtCore.Signal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._scale = 1.0
        self._run_path = ""
        self._trained = None
        self._task = None                 # the engine task of the current settings (from check_task)
        self._task_info: dict | None = None
        self._result = None               # the last ICLResult
        self._result_meta: dict = {}
        self._result_spec: EvalSpec | None = None
        self._inspection: Inspection | None = None
        self._jobs: dict[str, Any] = {}
        self._gen = {"load": 0, "check": 0, "inspect": 0, "reference": 0}
        self._reference_run = ""
        self._reference_label = "typed"
        self._file_template: dict[str, str] = {}
        self._verbalizer: dict[str, str] = {}
        self._columns: list[str] = []
        self._rows: list[dict] = []

        self._check_timer = QtCore.QTimer(self, singleShot=True, interval=250)
        self._check_timer.timeout.connect(self._start_check)
        self._inspect_timer = QtCore.QTimer(self, singleShot=True, interval=120)
        self._inspect_timer.timeout.connect(self._start_inspect)

        settings = self._build_settings()
        views = self._build_views()
        split = ReflowSplitter()  # settings above the views on a narrow page
        split.addWidget(settings)
        split.addWidget(views)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setSizes([470, 830])
        self.splitter = split
        self.body.addWidget(split, 1)

        self._source_changed()
        self._eval_settings_changed()

    # ---- construction -----------------------------------------------------------------------

    def _build_settings(self) -> QtWidgets.QWidget:
        settings = QtWidgets.QWidget()
        left = QtWidgets.QVBoxLayout(settings)
        left.setContentsMargins(0, 0, 6, 0)
        left.setSpacing(8)

        box, lay = card("Model")
        row = QtWidgets.QHBoxLayout()
        self.run_edit = QtWidgets.QLineEdit()
        self.run_edit.setReadOnly(True)
        self.run_edit.setPlaceholderText("a run folder or a checkpoint")
        self.run_button = QtWidgets.QPushButton("Choose run…")
        self.run_button.setToolTip("A run folder (its latest checkpoint is used) or a checkpoint .json")
        self.run_button.clicked.connect(self._browse_run)
        row.addWidget(self.run_edit, 1)
        row.addWidget(self.run_button)
        lay.addLayout(row)
        self.model_info = muted_label("Choose a trained model: its weights and tokenizer are loaded.")
        lay.addWidget(self.model_info)
        left.addWidget(box)

        box, form = card("Task", QtWidgets.QFormLayout())
        form.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.source_combo = QtWidgets.QComboBox()
        self.source_combo.addItem("Built-in: key → value lookup", "builtin")
        self.source_combo.addItem("Labelled data file", "file")
        self.source_combo.setToolTip("The built-in task goes with the icl_keyvalue preset: every prompt uses one "
                                     "fresh key → value mapping, so only the demonstrations can teach it. A "
                                     "labelled file: CSV, TSV or JSONL with a text and a label column.")
        form.addRow("Task", self.source_combo)
        self.keys_spin = QtWidgets.QSpinBox()
        self.keys_spin.setRange(1, 10)
        self.keys_spin.setValue(4)
        self.keys_spin.setToolTip("Keys in the mapping (and values to choose from: chance is 1 / keys)")
        self.keys_label = QtWidgets.QLabel("Keys")
        form.addRow(self.keys_label, self.keys_spin)

        self.file_edit, file_row = self._file_row("Choose labelled data")
        self.file_label = QtWidgets.QLabel("Data file")
        form.addRow(self.file_label, file_row)
        self.demos_edit, demos_row = self._file_row("Choose the demonstrations' file")
        self.demos_edit.setPlaceholderText("none: a fifth of the data file")
        self.demos_edit.setToolTip("Demonstrations are drawn from this file (same columns), e.g. a training "
                                   "split; without it a fifth of the data file is held out for them.")
        self.demos_label = QtWidgets.QLabel("Demonstrations")
        form.addRow(self.demos_label, demos_row)
        self.columns: dict[str, ColumnCombo] = {}
        self.column_labels: dict[str, QtWidgets.QLabel] = {}
        for role in ROLES:
            combo = ColumnCombo(optional=role == "text_pair")
            combo.set_value({"text": "text", "label": "label"}.get(role, ""))
            combo.currentTextChanged.connect(self._column_changed)
            lab = QtWidgets.QLabel(ROLE_TITLES[role])
            form.addRow(lab, combo)
            self.columns[role], self.column_labels[role] = combo, lab
        self.preview = DatasetPreview()
        self.preview.setFixedHeight(120)
        form.addRow(self.preview)
        self.data_status = muted_label()
        form.addRow(self.data_status)
        self.task_error = error_label()
        form.addRow(self.task_error)
        for lab in (self.data_status, self.task_error):  # file names and labels are not markup
            lab.setTextFormat(QtCore.Qt.TextFormat.PlainText)

        self.verbalizer_table = QtWidgets.QTableWidget(0, 3)
        self.verbalizer_table.setHorizontalHeaderLabels(["Label", "Shown as (verbalizer)", "Test examples"])
        self.verbalizer_table.verticalHeader().hide()
        self.verbalizer_table.verticalHeader().setDefaultSectionSize(22)
        h = self.verbalizer_table.horizontalHeader()
        h.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        h.setSectionResizeMode(1, QtWidgets.QHeaderView.ResizeMode.Stretch)
        h.setSectionResizeMode(2, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        self.verbalizer_table.setFixedHeight(110)
        self.verbalizer_table.setToolTip("The word each label is scored as. Double-click a word to change it.")
        self.verbalizer_table.itemChanged.connect(self._verbalizer_edited)
        form.addRow(self.verbalizer_table)

        self.template_fields: dict[str, QtWidgets.QLineEdit] = {}
        for key, title, tip in (
                ("description", "Description", "A task description put before the demonstrations (optional)"),
                ("input", "Input template", "How an example is shown: {text} and {text_pair}; \\n for a line break"),
                ("answer", "Answer template", "How its answer follows: {answer} is the label's word"),
                ("separator", "Separator", "Between description, demonstrations and query; \\n for a line break")):
            edit = QtWidgets.QLineEdit()
            edit.setToolTip(tip)
            edit.textChanged.connect(self._task_changed)
            form.addRow(title, edit)
            self.template_fields[key] = edit
        left.addWidget(box)

        box, grid = card("Evaluation", QtWidgets.QGridLayout())
        self.kmax_spin = QtWidgets.QSpinBox()
        self.kmax_spin.setRange(0, 64)
        self.kmax_spin.setValue(8)
        self.kmax_spin.setToolTip("The largest number of demonstrations (prompts that do not fit the model's "
                                  "context keep the demonstrations nearest the query)")
        self.every_k = QtWidgets.QCheckBox("every k")
        self.every_k.setToolTip("Every k from 0 to the largest; off: 0, 1, 2, 4, 8, …")
        self.draws_spin = QtWidgets.QSpinBox()
        self.draws_spin.setRange(1, 100)
        self.draws_spin.setValue(5)
        self.draws_spin.setToolTip("Random draws (choice and order) of demonstrations per k: the spread shows how "
                                   "much the choice of demonstrations matters")
        self.examples_spin = QtWidgets.QSpinBox()
        self.examples_spin.setRange(0, 1_000_000)
        self.examples_spin.setSingleStep(50)
        self.examples_spin.setValue(200)
        self.examples_spin.setSpecialValueText("all")
        self.examples_spin.setToolTip("Test examples scored per draw (the first N)")
        self.seed_spin = QtWidgets.QSpinBox()
        self.seed_spin.setRange(0, 1_000_000)
        self.seed_spin.setToolTip("Seed of the draws (and of the built-in task's mapping)")
        self.attention_spin = QtWidgets.QSpinBox()
        self.attention_spin.setRange(0, 10_000)
        self.attention_spin.setValue(16)
        self.attention_spin.setToolTip("Also measure the query's attention per demonstration on this many prompts at "
                                       "the largest k (0: skip); drawn as diamonds over the bars")
        self.length_norm = QtWidgets.QCheckBox("Length-normalise answer scores")
        self.length_norm.setToolTip("Score a candidate by its mean log-likelihood per token instead of the sum, so "
                                    "answers of several tokens are not penalised for their length")
        for r, (label, w, label2, w2) in enumerate((("Largest k", self.kmax_spin, "", self.every_k),
                                                    ("Draws", self.draws_spin, "Seed", self.seed_spin),
                                                    ("Examples", self.examples_spin, "Attention prompts",
                                                     self.attention_spin))):
            grid.addWidget(QtWidgets.QLabel(label), r, 0)
            grid.addWidget(w, r, 1)
            if label2:
                grid.addWidget(QtWidgets.QLabel(label2), r, 2)
            grid.addWidget(w2, r, 3)
        grid.addWidget(self.length_norm, 3, 0, 1, 4)
        self.ks_label = muted_label()
        grid.addWidget(self.ks_label, 4, 0, 1, 4)
        left.addWidget(box)

        row = QtWidgets.QHBoxLayout()
        self.run_eval_button = QtWidgets.QPushButton("Evaluate")
        self.run_eval_button.setObjectName("primaryButton")
        self.run_eval_button.clicked.connect(self.start_evaluation)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.save_button = QtWidgets.QPushButton("Save JSON…")
        self.save_button.setToolTip("The results as JSON, as `workbench eval --out` writes them")
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self._save_dialog)
        row.addWidget(self.run_eval_button)
        row.addWidget(self.cancel_button)
        row.addStretch(1)
        row.addWidget(self.save_button)
        left.addLayout(row)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setFormat("%v / %m prompts")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.hide()
        left.addWidget(self.progress)
        self.status = muted_label()
        left.addWidget(self.status)
        self.error = error_label()
        self.error.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        left.addWidget(self.error)
        left.addStretch(1)

        self.source_combo.currentIndexChanged.connect(self._source_changed)
        self.keys_spin.valueChanged.connect(self._task_changed)
        for w in (self.kmax_spin, self.draws_spin):
            w.valueChanged.connect(self._eval_settings_changed)
        self.every_k.toggled.connect(self._eval_settings_changed)
        self.examples_spin.valueChanged.connect(self._task_changed)
        self.seed_spin.valueChanged.connect(self._task_changed)
        self.length_norm.toggled.connect(self._schedule_inspect)

        scroll = ColumnScroll()  # as wide as its content (with a vertical scroll bar): nothing cut
        scroll.setWidget(settings)
        scroll.setMinimumHeight(280)  # when it stands above the views (ReflowSplitter)
        self.settings_scroll = scroll
        return scroll

    def _file_row(self, title: str):
        edit = QtWidgets.QLineEdit()
        button = QtWidgets.QPushButton("Browse…")

        def browse():
            start = edit.text() or self.file_edit.text() or str(Path.home())
            path, _ = QtWidgets.QFileDialog.getOpenFileName(
                self, title, start, "Labelled data (*.csv *.tsv *.jsonl *.json *.txt);;All files (*)")
            if path:
                edit.setText(path)
                edit.editingFinished.emit()

        button.clicked.connect(browse)
        edit.editingFinished.connect(self._file_changed)
        row = QtWidgets.QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(edit, 1)
        row.addWidget(button)
        w = QtWidgets.QWidget()
        w.setLayout(row)
        return edit, w

    def _build_views(self) -> QtWidgets.QWidget:
        # accuracy against k
        acc_box, acc_lay = card("Accuracy against k")
        ref = QtWidgets.QHBoxLayout()
        self.reference_box = QtWidgets.QCheckBox("Fine-tuned reference")
        self.reference_box.setToolTip("The accuracy a model fine-tuned on the same task reached: type it, or read "
                                      "it from a fine-tuned run")
        self.reference_spin = QtWidgets.QDoubleSpinBox()
        self.reference_spin.setRange(0.0, 1.0)
        self.reference_spin.setDecimals(3)
        self.reference_spin.setSingleStep(0.01)
        self.reference_button = QtWidgets.QPushButton("From a run…")
        self.reference_button.setToolTip("Read the validation accuracy of the same task from a fine-tuned run's "
                                         "metrics.jsonl")
        self.reference_which = QtWidgets.QComboBox()
        self.reference_which.addItem("best", "best")
        self.reference_which.addItem("last", "last")
        self.reference_which.setToolTip("The run's best validation accuracy, or its last one")
        self.reference_info = muted_label()
        ref.addWidget(self.reference_box)
        ref.addWidget(self.reference_spin)
        ref.addWidget(self.reference_button)
        ref.addWidget(self.reference_which)
        ref.addWidget(self.reference_info, 1)
        acc_lay.addLayout(ref)
        row = QtWidgets.QHBoxLayout()
        self.plot = AccuracyPlot()
        row.addWidget(self.plot, 1)
        self.results_table = QtWidgets.QTableWidget(0, 4)
        self.results_table.setHorizontalHeaderLabels(["k", "acc.", "± std", "demos"])
        self.results_table.verticalHeader().hide()
        self.results_table.verticalHeader().setDefaultSectionSize(22)
        self.results_table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.results_table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.results_table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.results_table.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        self.results_table.setToolTip("demos: demonstrations per prompt that fit the context (mean). Click a row to "
                                      "see a prompt with that k.")
        self.results_table.setFixedWidth(200)
        self.results_table.itemSelectionChanged.connect(self._result_row_selected)
        row.addWidget(self.results_table)
        acc_lay.addLayout(row, 1)
        self.plot_caption = muted_label()
        acc_lay.addWidget(self.plot_caption)

        self.reference_box.toggled.connect(self._reference_edited)
        self.reference_spin.valueChanged.connect(self._reference_typed)
        self.reference_button.clicked.connect(self._browse_reference)
        self.reference_which.currentIndexChanged.connect(self._reread_reference)

        # one prompt
        pr_box, pr_lay = card("The prompt of one example")
        ctl = FlowRow()  # wraps on a narrow page
        self.example_spin = QtWidgets.QSpinBox()
        self.example_spin.setRange(1, 1)
        self.example_spin.setPrefix("example ")
        self.inspect_k = QtWidgets.QSpinBox()
        self.inspect_k.setRange(0, 64)
        self.inspect_k.setPrefix("k = ")
        self.draw_spin = QtWidgets.QSpinBox()
        self.draw_spin.setRange(1, 100)
        self.draw_spin.setPrefix("draw ")
        self.attention_mode = QtWidgets.QComboBox()
        self.attention_mode.addItem("all query tokens", "share")
        self.attention_mode.addItem("the query's last token", "last")
        self.attention_mode.setToolTip("Averaged over layers and heads: over every token of the query, or only its "
                                       "last one (whose output predicts the answer)")
        for w in (self.example_spin, self.inspect_k, self.draw_spin):
            ctl.add(w)
            w.valueChanged.connect(self._schedule_inspect)
        ctl.add_stretch()
        ctl.add(labelled("Attention of", self.attention_mode))
        self.attention_mode.currentIndexChanged.connect(self._show_attention)
        key = (f"<span style='background:{DESCRIPTION_FILL}'>&nbsp;description&nbsp;</span> "
               f"<span style='background:{DEMO_FILLS[0]}'>&nbsp;demonstration&nbsp;</span>"
               f"<span style='background:{DEMO_FILLS[1]}'>&nbsp;…&nbsp;</span> "
               f"<b style='color:{ANSWER_INK}'>answer</b> "
               f"<b style='background:{QUERY_FILL}'>&nbsp;query&nbsp;</b>")
        self.parts_key = QtWidgets.QLabel(key)
        pr_lay.addWidget(ctl)
        psplit = ReflowSplitter()
        left = QtWidgets.QWidget()
        ll = QtWidgets.QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.setSpacing(4)
        self.prompt_view = PromptView()
        ll.addWidget(self.parts_key)
        ll.addWidget(self.prompt_view, 1)
        self.answers_label = WrapLabel()
        self.answers_label.setWordWrap(True)
        self.answers_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        ll.addWidget(self.answers_label)
        psplit.addWidget(left)
        self.attention_bars = AttentionBars()
        psplit.addWidget(self.attention_bars)
        psplit.setStretchFactor(0, 3)
        psplit.setStretchFactor(1, 2)
        psplit.setSizes([520, 360])
        pr_lay.addWidget(psplit, 1)

        views = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        views.setChildrenCollapsible(False)
        views.addWidget(acc_box)
        views.addWidget(pr_box)
        views.setStretchFactor(0, 1)
        views.setStretchFactor(1, 1)
        views.setSizes([400, 400])
        self.views_splitter = views
        return views

    # ---- the model ----------------------------------------------------------------------------

    def set_run(self, path: str | Path) -> None:
        """Load the model of a run folder (its latest checkpoint) or of a checkpoint .json."""
        from ...bridge import run_job

        path = str(path)
        self._run_path = path
        self.run_edit.setText(path)
        self.run_edit.setToolTip(path)
        self._trained = None
        self.model_info.setText("Loading the model…")
        self.model_info.setStyleSheet("")
        self._gen["load"] += 1
        gen = self._gen["load"]
        self._jobs["load"] = run_job(load_model, path, parent=self, name="load model for evaluation",
                                     on_done=lambda t: self._model_loaded(gen, t),
                                     on_failed=lambda msg, _d: self._model_failed(gen, msg))
        self._update_buttons()

    def run_path(self) -> str:
        return self._run_path

    def trained(self):
        return self._trained

    def _browse_run(self) -> None:
        from workbench import paths

        start = self._run_path or (str(paths.runs_dir()) if paths.runs_dir().exists() else str(Path.home()))
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Choose a run folder", start)
        if path:
            self.set_run(path)

    def _model_loaded(self, gen: int, trained) -> None:
        if gen != self._gen["load"]:
            return
        self._trained = trained
        m = trained.model.config
        exp = trained.experiment
        device = next(trained.model.parameters()).device
        self.model_info.setText(
            f"{m.n_layer} blocks × {m.n_embd} wide, {m.n_head} heads, context {m.block_size} · "
            f"{exp.tokenizer.kind} tokenizer ({trained.tokenizer.vocab_size}) · step {trained.step:,} · {device}")
        self.modelLoaded.emit(str(trained.path))
        self._update_buttons()
        self._schedule_inspect()

    def _model_failed(self, gen: int, message: str) -> None:
        if gen != self._gen["load"]:
            return
        self.model_info.setText(f"<span style='color:{ERROR_COLOR}'>{html.escape(message)}</span>")
        self._update_buttons()

    # ---- the task -----------------------------------------------------------------------------

    def use_builtin_task(self, n_keys: int = 4) -> None:
        self.source_combo.setCurrentIndex(self.source_combo.findData("builtin"))
        self.keys_spin.setValue(n_keys)

    def set_data_file(self, path: str | Path, demos: str | Path | None = None) -> None:
        """Use a labelled file (and optionally a file of demonstrations)."""
        self.source_combo.setCurrentIndex(self.source_combo.findData("file"))
        self.file_edit.setText(str(path))
        if demos is not None:
            self.demos_edit.setText(str(demos))
        self._file_changed()

    def set_column(self, role: str, name: str) -> None:
        """role: text | text_pair | label."""
        self.columns[role].set_value(name)

    def set_verbalizer(self, label: str, word: str) -> None:
        self._verbalizer[str(label)] = word
        self._fill_verbalizer()
        self._task_changed()

    def set_template(self, *, description: str | None = None, input: str | None = None,
                     answer: str | None = None, separator: str | None = None) -> None:
        """Template fields as the engine takes them (real line breaks; None: leave as it is)."""
        for key, value in (("description", description), ("input", input), ("answer", answer),
                           ("separator", separator)):
            if value is not None:
                self.template_fields[key].setText(escape_field(value))

    def task_spec(self) -> TaskSpec:
        source = self.source_combo.currentData()
        f = {k: unescape_field(e.text()) for k, e in self.template_fields.items()}
        return TaskSpec(source=source, n_keys=self.keys_spin.value(), path=self.file_edit.text().strip(),
                        demos=self.demos_edit.text().strip(), text=self.columns["text"].value(),
                        text_pair=self.columns["text_pair"].value(), label=self.columns["label"].value(),
                        verbalizer=tuple(sorted((k, v) for k, v in self._verbalizer.items() if v)),
                        description=f["description"], input=f["input"], answer=f["answer"],
                        separator=f["separator"], limit=self.examples_spin.value(), seed=self.seed_spin.value())

    def eval_spec(self) -> EvalSpec:
        return EvalSpec(task=self.task_spec(), ks=tuple(self.ks()), draws=self.draws_spin.value(),
                        length_norm=self.length_norm.isChecked(), attention=self.attention_spin.value())

    def set_ks(self, k_max: int, every: bool = False) -> None:
        self.kmax_spin.setValue(k_max)
        self.every_k.setChecked(every)

    def ks(self) -> list[int]:
        return ks_for(self.kmax_spin.value(), self.every_k.isChecked())

    def task(self):
        """The engine's task for the current settings (None until read, or when they are wrong)."""
        return self._task

    def task_message(self) -> str:
        """The error that stops the task from being read ("" when it reads)."""
        return self.task_error.text() if not self.task_error.isHidden() else ""

    def _source_changed(self) -> None:
        file = self.source_combo.currentData() == "file"
        for w in (self.keys_spin, self.keys_label):
            w.setVisible(not file)
        for w in (self.file_label, self.file_edit.parentWidget(), self.demos_label, self.demos_edit.parentWidget(),
                  self.preview, *self.columns.values(), *self.column_labels.values()):
            w.setVisible(file)
        for key, e in self.template_fields.items():  # the built-in task has its own template
            with QtCore.QSignalBlocker(e):
                if not file and e.isEnabled():
                    self._file_template[key] = e.text()
                    e.setText("")
                elif file and not e.isEnabled():
                    e.setText(self._file_template.get(key, ""))
            e.setEnabled(file)
        self.verbalizer_table.setEnabled(file)
        self.preview.setVisible(file and bool(self._columns))
        self._task_changed()

    def _file_changed(self) -> None:
        path = self.file_edit.text().strip()
        self._columns, self._rows = [], []
        message = ""
        if path:
            try:
                self._columns, self._rows = preview_rows(path)
            except Exception as e:  # the engine's message (no such file, bad JSON...), shown inline
                message = str(e)
        for combo in self.columns.values():
            combo.set_columns(self._columns)
        if self._columns:
            guess = guess_columns(self._columns, self._rows)
            for role in ROLES:
                combo = self.columns[role]
                if combo.value() not in self._columns:
                    with QtCore.QSignalBlocker(combo):
                        combo.set_value(guess.get(role, ""))
        self._update_preview()
        if message:
            show_error(self.task_error, message)
        self._task_changed()

    def _update_preview(self) -> None:
        used = {self.columns[r].value(): r.replace("_", " ") for r in ROLES if self.columns[r].value()}
        self.preview.set_rows(self._columns, self._rows[:20], used)
        self.preview.setVisible(self.source_combo.currentData() == "file" and bool(self._columns))

    def _column_changed(self, *_a) -> None:
        self._update_preview()
        self._task_changed()

    def _verbalizer_edited(self, item: QtWidgets.QTableWidgetItem) -> None:
        if item.column() != 1:
            return
        label = self.verbalizer_table.item(item.row(), 0).data(QtCore.Qt.ItemDataRole.UserRole)
        word = item.text()
        if word and word != label:
            self._verbalizer[label] = word
        else:
            self._verbalizer.pop(label, None)
            if not word:
                with QtCore.QSignalBlocker(self.verbalizer_table):
                    item.setText(label)
        self._task_changed()

    def _fill_verbalizer(self) -> None:
        info = self._task_info
        labels = info["labels"] if info else []
        counts = info["counts"] if info else []
        t = self.verbalizer_table
        with QtCore.QSignalBlocker(t):
            t.setRowCount(len(labels))
            for i, label in enumerate(labels):
                a = QtWidgets.QTableWidgetItem(label)
                a.setData(QtCore.Qt.ItemDataRole.UserRole, label)
                a.setFlags(a.flags() & ~QtCore.Qt.ItemFlag.ItemIsEditable)
                b = QtWidgets.QTableWidgetItem(self._verbalizer.get(label) or label)
                b.setToolTip(f"the word scored for label {label!r} (empty: the label itself)")
                c = QtWidgets.QTableWidgetItem(f"{counts[i]:,}" if i < len(counts) else "")
                c.setFlags(c.flags() & ~QtCore.Qt.ItemFlag.ItemIsEditable)
                c.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
                for j, it in enumerate((a, b, c)):
                    t.setItem(i, j, it)

    def _task_changed(self, *_a) -> None:
        self._check_timer.start()

    def _start_check(self) -> None:
        from ...bridge import run_job

        self._check_timer.stop()
        spec = self.task_spec()
        self._gen["check"] += 1
        gen = self._gen["check"]
        self.data_status.setText("Reading the task…")
        self._jobs["check"] = run_job(check_task, spec, parent=self, name="read in-context task",
                                      on_done=lambda r: self._check_done(gen, spec, r),
                                      on_failed=lambda msg, _d: self._check_failed(gen, msg))

    def _check_done(self, gen: int, spec: TaskSpec, info: dict) -> None:
        if gen != self._gen["check"]:
            return
        self._task, self._task_info = info["task"], info
        show_error(self.task_error, "")
        labels = info["labels"]
        what = (f"labels: {', '.join(labels[:10])}{' …' if len(labels) > 10 else ''}") if labels else ""
        self.data_status.setText(f"{info['n_test']:,} test examples · {info['n_pool']:,} to draw demonstrations "
                                 f"from · {what}")
        d = info["default"]
        if spec.source == "file":
            for key in ("input", "answer", "separator"):
                self.template_fields[key].setPlaceholderText(f"default: {shown_template(d[key])}")
            self.template_fields["description"].setPlaceholderText("none")
        else:
            t = dataclasses.asdict(self._task.template)
            for key, e in self.template_fields.items():
                with QtCore.QSignalBlocker(e):
                    e.setPlaceholderText(shown_template(t[key]) if t[key] else "none")
        self._fill_verbalizer()
        self.plot.set_baselines(info["chance"], info["majority"])
        n = info["n_test"]
        self.example_spin.setRange(1, max(1, n))
        self.example_spin.setSuffix(f" of {n:,}")
        self._update_buttons()
        self._schedule_inspect()

    def _check_failed(self, gen: int, message: str) -> None:
        if gen != self._gen["check"]:
            return
        self._task, self._task_info = None, None
        self._gen["inspect"] += 1  # an inspection under way shows the old settings: drop it
        self.data_status.setText("")
        show_error(self.task_error, message)
        self._fill_verbalizer()
        self.plot.set_baselines(None, None)
        self.prompt_view.set_plain("")
        self.answers_label.setText("")
        self.attention_bars.clear()
        self._update_buttons()

    def _eval_settings_changed(self, *_a) -> None:
        ks = self.ks()
        self.ks_label.setText("k = " + ", ".join(map(str, ks)))
        self.inspect_k.setMaximum(max(ks))
        self.draw_spin.setMaximum(self.draws_spin.value())
        self.plot.set_ks(ks)

    # ---- evaluation ---------------------------------------------------------------------------

    def is_busy(self) -> bool:
        job = self._jobs.get("eval")
        return job is not None and job.is_running()

    def start_evaluation(self) -> None:
        from ...bridge import run_job

        if self.is_busy():
            return
        if self._trained is None:
            show_error(self.error, "Choose a model first (Choose run…)." if not self._run_path else
                       "The model is not loaded yet." if "load" in self._jobs and self._jobs["load"].is_running()
                       else "The model could not be loaded; choose another run.")
            return
        show_error(self.error, "")
        spec = self.eval_spec()
        trained, run = self._trained, self._run_path
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.show()
        self.status.setText("Evaluating…")
        self._jobs["eval"] = run_job(
            run_evaluation, trained, spec, parent=self, name="in-context evaluation",
            on_progress=self._eval_progress, on_done=lambda r: self._eval_done(r, spec, trained, run),
            on_failed=self._eval_failed, on_cancelled=self._eval_cancelled, on_ended=self._eval_ended)
        self._update_buttons()

    def cancel(self) -> None:
        job = self._jobs.get("eval")
        if job is not None and job.is_running():
            job.cancel()
            self.status.setText("Stopping…")

    def _eval_progress(self, value) -> None:
        done, total = value
        self.progress.setRange(0, max(1, int(total)))
        self.progress.setValue(int(done))

    def _eval_done(self, out: dict, spec: EvalSpec, trained, run: str) -> None:
        result = out["result"]
        self._result, self._result_spec = result, spec
        self._result_meta = {"run": run, "checkpoint_step": trained.step, "data": spec.task.data_name()}
        self.plot.set_result(result)
        self._fill_results(result)
        first, last = result.results[0], result.results[-1]
        self.set_summary(f"k={first.k} {short_acc(first.accuracy)} → k={last.k} {short_acc(last.accuracy)}")
        mode = "mean" if result.length_norm else "summed"
        fitted = sum(r.fitted for r in result.results)
        self.plot_caption.setText(
            f"{result.n_examples:,} test examples · {result.draws} draws per k · answers scored by {mode} "
            f"log-likelihood · chance {result.chance:.3f} · majority class {result.majority:.3f}"
            + (f" · {fitted:,} prompts lost demonstrations to the context" if fitted else "")
            + (f"\n{result.look_back_line().capitalize()}." if result.look_back else ""))
        self.status.setText(f"Done: {spec.task.data_name()} with {Path(run).name or run} (step {trained.step:,}).")
        self.save_button.setEnabled(True)
        self.evaluationFinished.emit(result)
        self._schedule_inspect()

    def _eval_failed(self, message: str, _details: str) -> None:
        self.status.setText("")
        show_error(self.error, message)

    def _eval_cancelled(self) -> None:
        self.status.setText("Stopped." + (" The plot shows the last complete evaluation." if self._result else ""))

    def _eval_ended(self) -> None:
        self.progress.hide()
        self._update_buttons()

    def _fill_results(self, result) -> None:
        t = self.results_table
        t.setRowCount(len(result.results))
        for i, r in enumerate(result.results):
            for j, text in enumerate((str(r.k), f"{r.accuracy:.3f}", f"{r.std:.3f}", f"{r.demos_used:.1f}")):
                item = QtWidgets.QTableWidgetItem(text)
                item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
                if r.fitted and j == 3:
                    item.setToolTip(f"{r.fitted} prompts did not fit the context with all {r.k} demonstrations")
                t.setItem(i, j, item)

    def _result_row_selected(self) -> None:
        rows = {i.row() for i in self.results_table.selectedItems()}
        if rows and self._result is not None:
            self.inspect_k.setValue(self._result.results[min(rows)].k)

    def result(self):
        return self._result

    def plotted_points(self) -> dict[str, np.ndarray]:
        return self.plot.points()

    def save_results(self, path: str | Path) -> None:
        if self._result is None:
            raise RuntimeError("no results to save yet")
        m = self._result_meta
        self._result.save(path, m["run"], m["checkpoint_step"], m["data"])

    def _save_dialog(self) -> None:
        if self._result is None:
            return
        from workbench.engine.errors import WorkbenchError
        from workbench.engine.ownership import run_folder_around

        # beside the run folder, not inside it: a run folder is written by its training run only
        run = run_folder_around(Path(self._run_path)) if self._run_path else None
        start = str(run.parent / f"{run.name}-icl.json" if run else Path.home() / "icl.json")
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save the results", start, "JSON (*.json)")
        if path:
            try:
                self.save_results(path)
                self.status.setText(f"Saved {path}")
            except (OSError, WorkbenchError) as e:
                show_error(self.error, f"Could not write {path}: {e}")

    def _update_buttons(self) -> None:
        busy = self.is_busy()
        self.run_eval_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.save_button.setEnabled(self._result is not None)

    # ---- one prompt -------------------------------------------------------------------------

    def inspect(self, index: int, k: int, draw: int = 0) -> None:
        """Show test example ``index`` (0-based) with k demonstrations of ``draw`` (0-based)."""
        self.inspect_k.setMaximum(max(self.inspect_k.maximum(), k))
        self.draw_spin.setMaximum(max(self.draw_spin.maximum(), draw + 1))
        for w, v in ((self.example_spin, index + 1), (self.inspect_k, k), (self.draw_spin, draw + 1)):
            with QtCore.QSignalBlocker(w):
                w.setValue(v)
        self._start_inspect()

    def inspection(self) -> Inspection | None:
        return self._inspection

    def _schedule_inspect(self, *_a) -> None:
        self._inspect_timer.start()

    def _start_inspect(self) -> None:
        from ...bridge import run_job

        self._inspect_timer.stop()
        task = self._task
        if task is None:
            return
        index = min(self.example_spin.value() - 1, len(task.test) - 1)
        k, draw = self.inspect_k.value(), self.draw_spin.value() - 1
        self._gen["inspect"] += 1
        gen = self._gen["inspect"]
        if self._trained is None:  # text only: no tokenizer, no attention
            try:
                p = task.prompt(index, k, draw)
            except Exception as e:  # a template error: the engine's message
                self.prompt_view.set_plain("")
                self.answers_label.setText(f"<span style='color:{ERROR_COLOR}'>{html.escape(str(e))}</span>")
                return
            self._inspection = Inspection(index, k, draw, p, [])
            self.prompt_view.set_plain(p.text)
            self.answers_label.setText(self._answers_html(p, None))
            self.attention_bars.clear()
            self.attention_bars.caption.setText("Choose a model to see where the query's attention goes.")
            return
        self._jobs["inspect"] = run_job(
            inspect_prompt, self._trained, task, index, k, draw, self.length_norm.isChecked(), parent=self,
            name="inspect prompt", on_done=lambda r: self._inspect_done(gen, r),
            on_failed=lambda msg, _d: self._inspect_failed(gen, msg))

    def _inspect_done(self, gen: int, ins: Inspection) -> None:
        if gen != self._gen["inspect"]:
            return
        self._inspection = ins
        p = ins.prompt
        self.prompt_view.set_prompt([(q.kind, q.text, q.index) for q in p.parts], ins.demo_answers)
        self.answers_label.setText(self._answers_html(p, ins.scores))
        self._show_attention()

    def _inspect_failed(self, gen: int, message: str) -> None:
        if gen != self._gen["inspect"]:
            return
        self._inspection = None
        self.prompt_view.set_plain("")
        self.answers_label.setText(f"<span style='color:{ERROR_COLOR}'>{html.escape(message)}</span>")
        self.attention_bars.clear()

    def _answers_html(self, p, scores: list[float] | None) -> str:
        pick = max(range(len(scores)), key=scores.__getitem__) if scores else None
        items = []
        for i, a in enumerate(p.answers):
            text = html.escape(repr(a), quote=False)
            if i == p.gold:
                text = f"<b style='color:{ANSWER_INK}'>{text} ✓</b>"
            if scores:
                text += f" <span style='color:{style.MUTED}'>{scores[i]:.2f}</span>"
            if i == pick:
                text = f"<u>{text}</u>"
            items.append(text)
        fit = ""
        if p.demos_used < p.demos_requested:
            fit = f" Only {p.demos_used} of {p.demos_requested} demonstrations fit the context."
        if p.cut_tokens:
            fit += f" {p.cut_tokens} tokens were cut from the start."
        head = f"{len(p.ids):,} tokens. " if p.ids else ""
        if scores:
            verdict = "right" if pick == p.gold else "wrong"
            norm = "mean" if self.length_norm.isChecked() else "summed"
            head += (f"The model picks <u>{html.escape(repr(p.answers[pick]), quote=False)}</u> ({verdict}; {norm} "
                     f"log-likelihoods below). ")
        n = len(items)
        shown = " · ".join(items[:40]) + (" · …" if n > 40 else "")
        return f"{head}Candidates (✓ right): {shown}.{fit}"

    def _show_attention(self, *_a) -> None:
        ins = self._inspection
        if ins is None or ins.attention is None:
            return
        a = ins.attention
        mode = self.attention_mode.currentData()
        shares = a.share if mode == "share" else a.last
        demos = [s for part, s in zip(a.parts, shares) if part.kind == "demonstration"]
        kinds: dict[str, float] = {}
        for part, s in zip(a.parts, shares):
            kinds[part.kind] = kinds.get(part.kind, 0.0) + s
        mean = None
        att = self._result.attention if self._result is not None else None
        if (att and att.get("examples") and mode == "share" and self._result_spec is not None
                and self._result_spec.task == self.task_spec() and ins.draw == 0 and ins.k == max(self._result.ks)
                and len(att["demonstrations"]) == len(demos)):
            mean = att["demonstrations"]
        self.attention_bars.set_values(demos, mean)
        who = "The query's tokens" if mode == "share" else "The query's last token"
        parts = ", ".join(f"{kind}s {share:.0%}" if kind in ("demonstration", "separator") else f"{kind} {share:.0%}"
                          for kind, share in kinds.items())
        text = f"{who} (mean over layers and heads) give: {parts}." if demos else \
            f"No demonstrations in this prompt (k = {ins.k}). {who} give: {parts}."
        if mean is not None:
            text += f" ◆ mean over {att['examples']} prompts of the evaluation."
        self.attention_bars.caption.setText(text)

    # ---- the fine-tuned reference -----------------------------------------------------------

    def set_reference(self, value: float | None, label: str = "typed") -> None:
        """A fine-tuned accuracy to draw as a line (None: no line)."""
        with QtCore.QSignalBlocker(self.reference_box), QtCore.QSignalBlocker(self.reference_spin):
            self.reference_box.setChecked(value is not None)
            if value is not None:
                self.reference_spin.setValue(float(value))
        self._reference_label = label
        self.plot.set_reference(value, label if label != "typed" else "")

    def load_reference(self, run: str | Path) -> None:
        """Read the fine-tuned accuracy of the matching task from a run's metrics.jsonl."""
        from ...bridge import run_job

        self._reference_run = str(run)
        spec = self.task_spec()
        data = spec.path if spec.source == "file" else ""
        which = self.reference_which.currentData()
        self._gen["reference"] += 1
        gen = self._gen["reference"]
        self.reference_info.setText("Reading the run's metrics…")
        self._jobs["reference"] = run_job(read_reference, str(run), data, which, parent=self,
                                          name="read fine-tuned accuracy",
                                          on_done=lambda s: self._reference_done(gen, s),
                                          on_failed=lambda msg, _d: self._reference_failed(gen, msg))

    def _reference_done(self, gen: int, score) -> None:
        if gen != self._gen["reference"]:
            return
        name = Path(score.run).name
        self.set_reference(score.value, f"{score.which}, {name}")
        self.reference_info.setText(f"{score.which} validation accuracy of task {score.task!r} in {name}, "
                                    f"step {score.step:,}")
        self.reference_info.setToolTip(str(score.run))

    def _reference_failed(self, gen: int, message: str) -> None:
        if gen != self._gen["reference"]:
            return
        self.reference_info.setText(f"<span style='color:{ERROR_COLOR}'>{html.escape(message)}</span>")

    def _browse_reference(self) -> None:
        from workbench import paths

        start = self._reference_run or (str(paths.runs_dir()) if paths.runs_dir().exists() else str(Path.home()))
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Choose a fine-tuned run", start)
        if path:
            self.load_reference(path)

    def _reread_reference(self) -> None:
        if self._reference_run:
            self.load_reference(self._reference_run)

    def _reference_edited(self, on: bool) -> None:
        label = self._reference_label if self._reference_label != "typed" else ""
        self.plot.set_reference(self.reference_spin.value() if on else None, label)

    def _reference_typed(self, value: float) -> None:
        self._reference_label = "typed"
        self.reference_info.setText("typed in")
        with QtCore.QSignalBlocker(self.reference_box):
            self.reference_box.setChecked(True)
        self.plot.set_reference(value, "")

    # ---- the rest of the Panel API --------------------------------------------------------

    def set_presentation(self, scale: float) -> None:
        self._scale = max(0.5, float(scale))
        self.plot.set_presentation(self._scale)
        self.attention_bars.set_presentation(self._scale)
        self.prompt_view.set_presentation(self._scale)

    def wait_idle(self, msecs: int = 60000) -> bool:
        """Tests and scripts: start pending work now and wait until every job of the panel has
        ended and its results are shown."""
        import time

        from ...bridge import Job

        deadline = time.monotonic() + msecs / 1000
        while True:
            if self._check_timer.isActive():
                self._start_check()
            if self._inspect_timer.isActive():
                self._start_inspect()
            pending = [j for j in self._jobs.values() if j in Job._alive]
            if not pending:
                QtWidgets.QApplication.processEvents()
                if not self._check_timer.isActive() and not self._inspect_timer.isActive():
                    return True
                continue
            left = int((deadline - time.monotonic()) * 1000)
            if left <= 0:
                return False
            for j in pending:
                j.wait(max(1, left))  # emits its done / failed / cancelled signal here


__all__ = ["AccuracyPlot", "AttentionBars", "EvalSpec", "EvaluatePanel", "Inspection", "PromptView", "TaskSpec",
           "build_task", "ks_for"]
