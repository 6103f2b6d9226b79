"""Fine-tune panel: adapt a pretrained model to a labelled task, choosing what stays frozen.

The settings (left) are the ``[[tasks]]`` entry of the labelled task and the ``[finetune]`` table
of the experiment: a checkpoint to start from, a labelled dataset and which of its columns hold the
text, second text, label, score or answers, the task kind (GPT-1's input transformations), the
auxiliary LM weight lambda, augmentation, and the freezing strategy.

The views (right) show what those settings mean and what the run does with them:

- the freezing plan as lanes, one per layer group (embeddings at the bottom, then block 0 ..
  block L-1, ln_f, the heads at the top) across the steps of the run, grey where the group is
  frozen and coloured where it trains, with its learning-rate multiplier written in. The lanes are
  computed by the engine's own ``FreezePlan`` and ``discriminative_scales``: the picture is the
  plan that runs. While training, a line marks the current step and triangles mark where the
  trainer actually changed what trains (``FreezeChanged``);
- during training: the loss (task loss and auxiliary LM loss), the validation metrics (accuracy,
  F1, MSE, Pearson...), the gradient norm of every layer group and the confusion matrix;
- the inspector: the exact token sequence(s) the task builds for a chosen validation example, with
  the start, delimiter and extract tokens marked, built by the engine's task from the checkpoint's
  tokenizer (in a background thread: it reads the whole dataset);
- a preview of the dataset's first rows.

The form for the labelled dataset is ``dataset_form.DatasetForm`` (shared with the Tasks and
Evaluate pages). This module also holds ``experiment_sections`` / ``load_experiment_into``: how
the Tasks and Fine-tune pages together make an experiment.
"""

from __future__ import annotations

import dataclasses
import html
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from workbench.engine.config import (
    LABELLED_KINDS,
    ConfigError,
    FinetuneConfig,
    StageConfig,
    TaskConfig,
    TrainingConfig,
    from_dict,
)
from workbench.engine.errors import WorkbenchError

from ..widgets import style
from ..widgets.loss_plot import LossPlot, MetricPlot
from ..widgets.matrix_view import MatrixView
from ..widgets.token_strip import TokenStrip
from ..widgets.flow import ColumnScroll, FlowRow, ReflowSplitter, WrapLabel
from . import ERROR_COLOR, Panel, SciSpinBox, card, error_label, field_help, muted_label, plain, show_error, spin_value
from workbench.curves import step_columns
from .dataset_form import COLUMN_ROLES, DatasetForm, DatasetPreview, check_labelled

FREEZE_LOOK = [
    ("none", "Everything trains"),
    ("head_only", "Head only (linear probe)"),
    ("bottom_n", "Freeze the bottom N blocks"),
    ("gradual", "Gradual unfreezing (ULMFiT)"),
    ("stages", "A plan of stages"),
]

SPECIAL_LOOK = {  # role -> (shown text, fill, border)
    "bos": ("Start", "#c8e6c9", "#2e7d32"),
    "delim": ("Delim", "#ffe0b2", "#e8710a"),
    "extract": ("Extract", "#ffcdd2", "#c62828"),
}

TRAIN_COLOR = "#4e79a7"
TRAIN_LIGHT = "#cddcec"
FROZEN_COLOR = "#eceef1"
FROZEN_HATCH = "#d3d7dd"
NOW_COLOR = "#e15759"
CURVE_COLORS = {"loss": style.SERIES_COLORS[0], "task loss": style.SERIES_COLORS[1],
                "aux LM loss": style.SERIES_COLORS[2], "accuracy": style.SERIES_COLORS[0],
                "f1": style.SERIES_COLORS[1], "mse": style.SERIES_COLORS[3], "pearson": style.SERIES_COLORS[4],
                "spearman": style.SERIES_COLORS[5]}

# =============================================================================================
# the freezing plan as lanes


@dataclass(frozen=True)
class LaneSegment:
    start: int          # first step (0-based optimizer step)
    end: int            # one past the last step
    trainable: bool
    lr: float           # learning-rate multiplier of the group (discriminative x stage)


class _GroupStub:
    """Stands in for the GPT in ``discriminative_scales``: one parameter name per layer group, named
    as the model names them (so ``group_of`` sorts them exactly as it sorts the real ones)."""

    def __init__(self, n_layer: int):
        self.names = (["transformer.wte.weight", "transformer.wpe.weight"]
                      + [f"transformer.h.{i}.attn.c_attn.weight" for i in range(n_layer)]
                      + ["transformer.ln_f.weight", "heads.task.weight"])

    def named_parameters(self):
        return [(n, None) for n in self.names]


def lane_groups(n_layer: int) -> list[str]:
    """Layer groups from the bottom of the model to the top."""
    return ["embeddings", *[f"block.{i}" for i in range(n_layer)], "ln_f", "heads"]


def change_points(cfg: FinetuneConfig, n_layer: int, max_steps: int) -> list[int]:
    """Steps where the plan may change what trains or its learning rate (0 included)."""
    pts = {0}
    if cfg.freeze == "gradual":
        pts |= {k * cfg.unfreeze_every for k in range(1, n_layer + 2)}
    elif cfg.freeze == "stages":
        end = 0
        for st in cfg.stages:
            end += st.steps
            pts.add(end)
    elif cfg.freeze not in ("none", "head_only", "bottom_n"):
        pts |= set(range(min(max_steps, 20000)))  # an unknown strategy: look at every step
    return sorted(p for p in pts if 0 <= p < max(1, max_steps))


def plan_lanes(cfg: FinetuneConfig, n_layer: int, max_steps: int, base_lr: float = 1e-3
               ) -> dict[str, list[LaneSegment]]:
    """group -> its segments over steps 0..max_steps, from the engine's FreezePlan and
    discriminative_scales (the same calls the trainer makes)."""
    from workbench.engine.freezing import FreezePlan, discriminative_scales, group_of

    plan = FreezePlan(cfg, n_layer)
    scales: dict[str, float] = {}
    for name, s in discriminative_scales(_GroupStub(n_layer), cfg, n_layer).items():
        scales[group_of(name)] = s
    groups = lane_groups(n_layer)
    pts = change_points(cfg, n_layer, max_steps) + [max(1, max_steps)]
    lanes: dict[str, list[LaneSegment]] = {g: [] for g in groups}
    for a, b in zip(pts, pts[1:]):
        trainable = plan.trainable(a)
        mult = plan.lr_multiplier(a, base_lr)
        for g in groups:
            seg = LaneSegment(a, b, g in trainable, scales.get(g, 1.0) * mult)
            prev = lanes[g][-1] if lanes[g] else None
            if prev and prev.trainable == seg.trainable and math.isclose(prev.lr, seg.lr) and prev.end == a:
                lanes[g][-1] = LaneSegment(prev.start, b, prev.trainable, prev.lr)
            else:
                lanes[g].append(seg)
    return lanes


def describe_plan(cfg: FinetuneConfig, n_layer: int, max_steps: int) -> str:
    """The plan in a sentence or two."""
    L = n_layer
    if cfg.freeze == "none":
        text = "Every layer trains from the first step."
    elif cfg.freeze == "head_only":
        text = "Only the task head trains: a linear probe on the pretrained model's features."
    elif cfg.freeze == "bottom_n":
        n = min(cfg.freeze_n, L)
        text = (f"The embeddings and the lowest {n} block{'s' if n != 1 else ''} stay frozen; "
                f"the {L - n} block{'s' if L - n != 1 else ''} above them, ln_f and the head train.")
    elif cfg.freeze == "gradual":
        k = cfg.unfreeze_every
        all_at = (L + 1) * k
        text = (f"The head and ln_f train first; every {k:,} steps one more block thaws, from the top down; "
                + (f"from step {all_at:,} everything trains, embeddings included."
                   if all_at < max_steps else f"the embeddings would thaw at step {all_at:,}, after the run ends."))
    else:
        n = len(cfg.stages)
        text = f"{n} stage{'s' if n != 1 else ''}, each with its own trainable layers and learning rate."
    if cfg.discriminative:
        f = cfg.lr_factor
        text += (f" Discriminative rates: each block gets ×{f:.3g} of the rate of the block above "
                 f"(block 0: ×{f ** (L - 1):.2g}, embeddings ×{f ** L:.2g}).")
    return text


class FreezeLaneView(QtWidgets.QWidget):
    """One lane per layer group across the steps of the run: frozen (grey, hatched) or training
    (blue, lighter for a smaller learning-rate multiplier, the multiplier written in).

    ``set_plan(cfg, n_layer, max_steps, base_lr)``; while training ``set_current_step(step)`` and
    ``add_change(step, description)`` (from ``FreezeChanged``).
    """

    def __init__(self, parent=None):
        super().__init__(parent)
        self._cfg = FinetuneConfig()
        self._n_layer = 4
        self._max_steps = 2000
        self._base_lr = 1e-3
        self._lanes: dict[str, list[LaneSegment]] | None = None
        self._error = ""
        self._current: int | None = None
        self._changes: list[tuple[int, str]] = []
        self._loading = False
        self._scale = 1.0
        self.setMouseTracking(True)
        self.setMinimumHeight(150)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Expanding)

    # -- API --------------------------------------------------------------------------------

    def set_plan(self, cfg: FinetuneConfig, n_layer: int, max_steps: int, base_lr: float = 1e-3) -> None:
        if (cfg, int(n_layer), int(max_steps)) != (self._cfg, self._n_layer, self._max_steps):
            self.clear_run()  # the current step and the changes were drawn on another plan
        self._cfg, self._n_layer, self._max_steps, self._base_lr = cfg, int(n_layer), int(max_steps), base_lr
        self._compute()

    def current_step(self) -> int | None:
        """The step the run has reached on this plan (the marker), or None."""
        return self._current

    def marker_label(self) -> str:
        return "" if self._current is None else f"step {self._current:,}"

    def plan(self) -> tuple[FinetuneConfig, int, int]:
        return self._cfg, self._n_layer, self._max_steps

    def lanes(self) -> dict[str, list[LaneSegment]]:
        return dict(self._lanes or {})

    def groups(self) -> list[str]:
        return lane_groups(self._n_layer)

    def segment_at(self, group: str, step: int) -> LaneSegment | None:
        for seg in (self._lanes or {}).get(group, []):
            if seg.start <= step < seg.end:
                return seg
        segs = (self._lanes or {}).get(group, [])
        return segs[-1] if segs and step >= segs[-1].end else None

    def is_trainable(self, group: str, step: int) -> bool:
        seg = self.segment_at(group, step)
        return bool(seg and seg.trainable)

    def lr_multiplier(self, group: str, step: int) -> float:
        seg = self.segment_at(group, step)
        return seg.lr if seg else float("nan")

    def set_current_step(self, step: int | None) -> None:
        if step != self._current:
            self._current = step
            self.update()

    def add_change(self, step: int, description: str) -> None:
        self._changes.append((int(step), description))
        self.update()

    def clear_run(self) -> None:
        self._current = None
        self._changes = []
        self.update()

    def error(self) -> str:
        return self._error

    def set_presentation(self, scale: float) -> None:
        self._scale = max(0.5, float(scale))
        self.update()

    def export_png(self, path, scale: float = 2.0) -> None:
        from ..widgets.export import save_png

        save_png(self, path, scale)

    # -- computing ---------------------------------------------------------------------------

    def _compute(self) -> None:
        if "workbench.engine.freezing" not in sys.modules and "torch" not in sys.modules:
            # the engine's freezing module imports torch: load it in the background, not here
            if not self._loading:
                self._loading = True
                from ..bridge import run_job

                run_job(_import_freezing, on_done=lambda _r: self._loaded(), on_failed=self._load_failed,
                        parent=self, name="import freezing")
            self.update()
            return
        try:
            self._lanes = plan_lanes(self._cfg, self._n_layer, self._max_steps, self._base_lr)
            self._error = ""
        except (WorkbenchError, ValueError, IndexError) as e:
            self._lanes, self._error = None, str(e)
        self.updateGeometry()
        self.update()

    def _loaded(self) -> None:
        self._loading = False
        self._compute()

    def _load_failed(self, message: str, _details: str) -> None:
        # no retry: importing the engine failed for a reason a retry would meet again
        self._lanes, self._error = None, f"The freezing plan cannot be worked out: {message}"
        self.update()

    # -- geometry ---------------------------------------------------------------------------

    def _metrics(self) -> dict:
        s = self._scale
        font = style.font(s, size=9.0)
        fm = QtGui.QFontMetricsF(font)
        groups = self.groups()
        label_w = max(fm.horizontalAdvance(_group_label(g)) for g in groups) + 14 * s
        header = fm.height() + 10 * s
        axis = fm.height() + 12 * s
        legend = fm.height() + 10 * s
        right = 14 * s
        avail = self.height() - header - axis - legend - 4 * s
        lane_h = max(6.0, min(34.0 * s, avail / len(groups)))
        x0, x1 = label_w, self.width() - right
        return {"font": font, "fm": fm, "x0": x0, "x1": x1, "y0": header, "lane_h": lane_h,
                "groups": groups, "label_w": label_w, "axis_y": header + lane_h * len(groups)}

    def _x(self, step: float, m: dict) -> float:
        return m["x0"] + (m["x1"] - m["x0"]) * step / max(1, self._max_steps)

    def _lane_rect(self, index_from_top: int, m: dict) -> QtCore.QRectF:
        return QtCore.QRectF(m["x0"], m["y0"] + index_from_top * m["lane_h"], m["x1"] - m["x0"], m["lane_h"])

    def sizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(600, int(80 + 26 * len(self.groups())))

    def group_at(self, pos) -> tuple[str, int] | None:
        """(group, step) under a widget position, or None."""
        m = self._metrics()
        p = QtCore.QPointF(pos)
        if not (m["x0"] <= p.x() < m["x1"]) or not (m["y0"] <= p.y() < m["axis_y"]):
            return None
        top = list(reversed(m["groups"]))
        i = int((p.y() - m["y0"]) // m["lane_h"])
        step = int((p.x() - m["x0"]) / (m["x1"] - m["x0"]) * self._max_steps)
        return top[min(i, len(top) - 1)], min(step, self._max_steps - 1)

    # -- painting ---------------------------------------------------------------------------

    def paintEvent(self, _event):
        p = QtGui.QPainter(self)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QtGui.QPainter.RenderHint.TextAntialiasing)
        p.fillRect(self.rect(), QtGui.QColor(style.BACKGROUND))
        m = self._metrics()
        fm, s = m["fm"], self._scale
        p.setFont(m["font"])
        if self._lanes is None:
            p.setPen(QtGui.QColor(ERROR_COLOR if self._error else style.FAINT))
            p.drawText(self.rect().adjusted(12, 12, -12, -12),
                       int(QtCore.Qt.AlignmentFlag.AlignCenter | QtCore.Qt.TextFlag.TextWordWrap),
                       self._error or "Working out the plan…")
            p.end()
            return
        top = list(reversed(m["groups"]))
        hatch = QtGui.QBrush(QtGui.QColor(FROZEN_HATCH), QtCore.Qt.BrushStyle.BDiagPattern)
        # stage bands in the header
        if self._cfg.freeze == "stages" and self._cfg.stages:
            start = 0
            for i, st in enumerate(self._cfg.stages):
                end = start + st.steps if i < len(self._cfg.stages) - 1 else self._max_steps
                if start >= self._max_steps:
                    break
                xa, xb = self._x(start, m), self._x(min(end, self._max_steps), m)
                r = QtCore.QRectF(xa, 2 * s, xb - xa, m["y0"] - 4 * s)
                p.setPen(QtCore.Qt.PenStyle.NoPen)
                p.setBrush(QtGui.QColor("#f1f4f8" if i % 2 == 0 else "#e6ebf2"))
                p.drawRoundedRect(r.adjusted(1, 0, -1, 0), 3 * s, 3 * s)
                p.setPen(QtGui.QColor(style.MUTED))
                lr = f" · lr {st.learning_rate:.2g}" if st.learning_rate > 0 else ""
                text = fm.elidedText(f"stage {i + 1}{lr}", QtCore.Qt.TextElideMode.ElideRight, int(r.width() - 6))
                p.drawText(r, int(QtCore.Qt.AlignmentFlag.AlignCenter), text)
                start = end
        self._paint_legend(p, m, hatch)
        gap = max(1.0, 2.0 * s) if m["lane_h"] > 10 else 0.5
        for i, g in enumerate(top):
            lane = self._lane_rect(i, m)
            p.setPen(QtGui.QColor(style.FOREGROUND))
            p.drawText(QtCore.QRectF(0, lane.top(), m["label_w"] - 8 * s, lane.height()),
                       int(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter), _group_label(g))
            for seg in self._lanes.get(g, []):
                xa, xb = self._x(seg.start, m), self._x(min(seg.end, self._max_steps), m)
                r = QtCore.QRectF(xa + 0.5, lane.top() + gap / 2, max(1.0, xb - xa - 1), lane.height() - gap)
                p.setPen(QtCore.Qt.PenStyle.NoPen)
                if seg.trainable:
                    col = _lr_color(seg.lr)
                    p.setBrush(col)
                    p.drawRoundedRect(r, 3 * s, 3 * s)
                    text = _fmt_mult(seg.lr)
                    dark = (0.299 * col.red() + 0.587 * col.green() + 0.114 * col.blue()) < 150
                    p.setPen(QtGui.QColor("#ffffff" if dark else style.FOREGROUND))
                else:
                    p.setBrush(QtGui.QColor(FROZEN_COLOR))
                    p.drawRoundedRect(r, 3 * s, 3 * s)
                    p.setBrush(hatch)
                    p.drawRoundedRect(r, 3 * s, 3 * s)
                    text = "frozen"
                    p.setPen(QtGui.QColor("#8a9099"))
                if fm.horizontalAdvance(text) + 8 * s < r.width() and fm.height() <= r.height() + 2:
                    p.drawText(r, int(QtCore.Qt.AlignmentFlag.AlignCenter), text)
        # step axis
        ay = m["axis_y"] + 2 * s
        p.setPen(QtGui.QPen(QtGui.QColor("#c9ced6"), 1))
        p.drawLine(QtCore.QPointF(m["x0"], ay), QtCore.QPointF(m["x1"], ay))
        p.setPen(QtGui.QColor(style.MUTED))
        for t in _nice_ticks(self._max_steps, max(2, int((m["x1"] - m["x0"]) / (70 * s)))):
            x = self._x(t, m)
            p.drawLine(QtCore.QPointF(x, ay), QtCore.QPointF(x, ay + 3 * s))
            label = f"{t:,}"
            w = fm.horizontalAdvance(label)
            x_text = min(max(x - w / 2, m["x0"] - 4), m["x1"] - w + 4)
            p.drawText(QtCore.QPointF(x_text, ay + 3 * s + fm.ascent() + 1), label)
        p.drawText(QtCore.QRectF(0, ay, m["label_w"] - 8 * s, fm.height() + 6 * s),
                   int(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter), "step")
        # what the run did: changes and the current step
        p.setPen(QtCore.Qt.PenStyle.NoPen)
        p.setBrush(QtGui.QColor(style.FOREGROUND))
        for step, _desc in self._changes:
            x = self._x(step, m)
            y = m["y0"] - 1
            tri = QtGui.QPolygonF([QtCore.QPointF(x - 4 * s, y - 6 * s), QtCore.QPointF(x + 4 * s, y - 6 * s),
                                   QtCore.QPointF(x, y)])
            p.drawPolygon(tri)
        if self._current is not None:
            x = self._x(min(self._current, self._max_steps), m)
            p.setPen(QtGui.QPen(QtGui.QColor(NOW_COLOR), 2 * s))
            p.drawLine(QtCore.QPointF(x, m["y0"] - 2), QtCore.QPointF(x, m["axis_y"]))
            label = self.marker_label()
            w = fm.horizontalAdvance(label) + 8 * s
            bx = min(max(x - w / 2, m["x0"]), m["x1"] - w)
            r = QtCore.QRectF(bx, m["axis_y"] + 3 * s, w, fm.height() + 4 * s)
            p.setPen(QtCore.Qt.PenStyle.NoPen)
            p.setBrush(QtGui.QColor(NOW_COLOR))
            p.drawRoundedRect(r, 3 * s, 3 * s)
            p.setPen(QtGui.QColor("#ffffff"))
            p.drawText(r, int(QtCore.Qt.AlignmentFlag.AlignCenter), label)
        p.end()

    def _paint_legend(self, p: QtGui.QPainter, m: dict, hatch: QtGui.QBrush) -> None:
        """Swatches under the axis: training, frozen, a change the run made, the current step."""
        fm, s = m["fm"], self._scale
        y = m["axis_y"] + fm.height() + 16 * s
        h = fm.height() * 0.8
        x = m["x0"]
        items = [("train", "trains (× its learning-rate multiplier)"), ("frozen", "frozen"),
                 ("change", "the run changed what trains")]
        for kind, text in items:
            if kind == "change" and not self._changes:
                continue
            r = QtCore.QRectF(x, y + (fm.height() - h) / 2, 1.8 * h, h)
            p.setPen(QtCore.Qt.PenStyle.NoPen)
            if kind == "train":
                p.setBrush(QtGui.QColor(TRAIN_COLOR))
                p.drawRoundedRect(r, 2, 2)
            elif kind == "frozen":
                p.setBrush(QtGui.QColor(FROZEN_COLOR))
                p.drawRoundedRect(r, 2, 2)
                p.setBrush(hatch)
                p.drawRoundedRect(r, 2, 2)
            elif kind == "change":
                p.setBrush(QtGui.QColor(style.FOREGROUND))
                c = r.center()
                p.drawPolygon(QtGui.QPolygonF([QtCore.QPointF(c.x() - 4 * s, c.y() - 4 * s),
                                               QtCore.QPointF(c.x() + 4 * s, c.y() - 4 * s),
                                               QtCore.QPointF(c.x(), c.y() + 3 * s)]))
            else:
                p.setPen(QtGui.QPen(QtGui.QColor(NOW_COLOR), 2 * s))
                p.drawLine(QtCore.QPointF(r.center().x(), r.top() - 2), QtCore.QPointF(r.center().x(), r.bottom() + 2))
            p.setPen(QtGui.QColor(style.MUTED))
            p.drawText(QtCore.QPointF(r.right() + 5 * s, y + fm.ascent()), text)
            x = r.right() + 5 * s + fm.horizontalAdvance(text) + 16 * s

    def event(self, ev):
        if ev.type() == QtCore.QEvent.Type.ToolTip:
            hit = self.group_at(ev.pos())
            if hit and self._lanes:
                g, step = hit
                seg = self.segment_at(g, step)
                if seg:
                    what = f"trains, learning rate × {seg.lr:.3g}" if seg.trainable else "frozen"
                    QtWidgets.QToolTip.showText(
                        ev.globalPos(), f"{_group_label(g)} · steps {seg.start:,}–{seg.end - 1:,}: {what}", self)
                    return True
            QtWidgets.QToolTip.hideText()
            ev.ignore()
            return True
        return super().event(ev)


def _import_freezing(_state) -> bool:
    import workbench.engine.freezing  # noqa: F401  (imports torch)

    return True


def _group_label(g: str) -> str:
    return f"block {g.split('.')[1]}" if g.startswith("block.") else g


def _fmt_mult(v: float) -> str:
    if abs(v - 1.0) < 1e-9:
        return "×1"
    return f"×{v:.2g}" if v >= 0.01 else f"×{v:.1e}"


def _lr_color(mult: float) -> QtGui.QColor:
    """Strong blue for the full rate, lighter as the multiplier shrinks (two decades to the lightest)."""
    t = 0.0 if mult >= 1 else min(1.0, -math.log10(max(mult, 1e-12)) / 2.0)
    a, b = QtGui.QColor(TRAIN_COLOR), QtGui.QColor(TRAIN_LIGHT)
    mix = lambda x, y: int(round(x + (y - x) * t))  # noqa: E731
    return QtGui.QColor(mix(a.red(), b.red()), mix(a.green(), b.green()), mix(a.blue(), b.blue()))


def _nice_ticks(top: int, max_ticks: int) -> list[int]:
    if top <= 0:
        return [0]
    raw = top / max(1, max_ticks)
    mag = 10 ** math.floor(math.log10(max(raw, 1)))
    step = next(f * mag for f in (1, 2, 2.5, 5, 10) if f * mag >= raw)
    step = max(1, int(step))
    return list(range(0, top + 1, step))


# =============================================================================================
# stages editor


STAGE_PRESETS = ["heads", "heads, ln_f", "heads, ln_f, top:1", "heads, ln_f, top:2", "heads, ln_f, blocks", "all",
                 "blocks", "embeddings"]


class StagesEditor(QtWidgets.QWidget):
    """A small table of stages: steps, what trains, learning rate (0: the run's)."""

    changed = QtCore.Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.table = QtWidgets.QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Steps", "What trains", "Learning rate"])
        self.table.verticalHeader().setDefaultSectionSize(30)
        self.table.horizontalHeader().setSectionResizeMode(1, QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.table.setColumnWidth(0, 80)
        self.table.setColumnWidth(2, 100)
        self.table.setToolTip(field_help(FinetuneConfig, "stages"))
        self.table.setMinimumHeight(130)
        self.add_button = QtWidgets.QPushButton("Add stage")
        self.remove_button = QtWidgets.QPushButton("Remove last")
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.table)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.add_button)
        row.addWidget(self.remove_button)
        row.addStretch(1)
        lay.addLayout(row)
        self.add_button.clicked.connect(lambda: self.add_stage(StageConfig(steps=100, trainable=("all",))))
        self.remove_button.clicked.connect(self.remove_last)

    def stages(self) -> tuple[StageConfig, ...]:
        out = []
        for i in range(self.table.rowCount()):
            steps = self.table.cellWidget(i, 0).value()
            text = self.table.cellWidget(i, 1).currentText()
            trainable = tuple(t.strip() for t in text.replace(";", ",").split(",") if t.strip())
            lr = self.table.cellWidget(i, 2).value()
            out.append(StageConfig(steps=steps, trainable=trainable or ("all",), learning_rate=lr))
        return tuple(out)

    def set_stages(self, stages) -> None:
        with QtCore.QSignalBlocker(self):
            self.table.setRowCount(0)
            for st in stages:
                self.add_stage(st, emit=False)
        self.changed.emit()

    def add_stage(self, st: StageConfig, emit: bool = True) -> None:
        i = self.table.rowCount()
        self.table.insertRow(i)
        steps = QtWidgets.QSpinBox()
        steps.setRange(1, 10_000_000)
        steps.setSingleStep(50)
        steps.setValue(st.steps)
        steps.setToolTip(field_help(StageConfig, "steps"))
        what = QtWidgets.QComboBox()
        what.setEditable(True)
        what.addItems(STAGE_PRESETS)
        what.setCurrentText(", ".join(st.trainable))
        what.setToolTip(field_help(StageConfig, "trainable"))
        lr = SciSpinBox(minimum=0.0, maximum=10.0)
        lr.setValue(st.learning_rate)
        lr.setSpecialValueText("run's")
        lr.setToolTip(field_help(StageConfig, "learning_rate"))
        for w in (steps, lr):
            w.valueChanged.connect(lambda *_: self.changed.emit())
        what.currentTextChanged.connect(lambda *_: self.changed.emit())
        self.table.setCellWidget(i, 0, steps)
        self.table.setCellWidget(i, 1, what)
        self.table.setCellWidget(i, 2, lr)
        if emit:
            self.changed.emit()

    def remove_last(self) -> None:
        if self.table.rowCount():
            self.table.removeRow(self.table.rowCount() - 1)
            self.changed.emit()


def default_stages(max_steps: int) -> tuple[StageConfig, ...]:
    """A ULMFiT-like three-stage plan sized to the run: head, then the top blocks, then all."""
    a = max(1, max_steps // 5)
    return (StageConfig(steps=a, trainable=("heads",)),
            StageConfig(steps=a, trainable=("heads", "ln_f", "top:2")),
            StageConfig(steps=max(1, max_steps - 2 * a), trainable=("all",)))


# =============================================================================================
# during training: gradient norms per layer group


class GradNormStrip(QtWidgets.QWidget):
    """One horizontal bar per layer group (heads at the top, embeddings at the bottom, as in the
    lanes): the gradient norm of the latest measurement. Groups without a gradient (frozen) say so."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._groups: list[str] = lane_groups(4)
        self._norms: dict[str, float] = {}
        self._step: int | None = None
        self._scale = 1.0
        self.setMinimumSize(220, 140)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Expanding)

    def set_groups(self, groups: list[str]) -> None:
        """Layer groups from the bottom up (``lane_groups(n_layer)``)."""
        self._groups = list(groups)
        self.update()

    def set_norms(self, norms: dict[str, float], step: int | None = None) -> None:
        self._norms = {k: float(v) for k, v in norms.items()}
        self._groups += [g for g in self._norms if g not in self._groups and g != "other"]
        self._step = step
        self.update()

    def clear(self) -> None:
        self._norms, self._step = {}, None
        self.update()

    def bars(self) -> dict[str, float]:
        """group -> the value its bar shows."""
        return {g: self._norms[g] for g in self._groups if g in self._norms}

    def bar_rects(self) -> dict[str, QtCore.QRectF]:
        return {g: r for g, (r, _) in self._layout().items() if g in self._norms}

    def set_presentation(self, scale: float) -> None:
        self._scale = max(0.5, float(scale))
        self.update()

    def _layout(self) -> dict[str, tuple[QtCore.QRectF, QtCore.QRectF]]:
        s = self._scale
        fm = QtGui.QFontMetricsF(style.font(s, size=9.0))
        top = list(reversed(self._groups))
        label_w = max(fm.horizontalAdvance(_group_label(g)) for g in top) + 12 * s if top else 0
        value_w = fm.horizontalAdvance("0.0000e+00") * 0.75
        head = fm.height() + 6 * s
        h = max(6.0, min(26.0 * s, (self.height() - head - 4 * s) / max(1, len(top))))
        vmax = max(self._norms.values(), default=0.0) or 1.0
        x0, x1 = label_w, self.width() - value_w - 10 * s
        out = {}
        for i, g in enumerate(top):
            lane = QtCore.QRectF(0, head + i * h, self.width(), h)
            v = self._norms.get(g)
            w = (x1 - x0) * (v / vmax) if v is not None and math.isfinite(v) else 0.0
            out[g] = (QtCore.QRectF(x0, lane.top() + h * 0.18, max(1.0, w), h * 0.64), lane)
        return out

    def paintEvent(self, _event):
        p = QtGui.QPainter(self)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QtGui.QColor(style.BACKGROUND))
        s = self._scale
        font = style.font(s, size=9.0)
        p.setFont(font)
        fm = QtGui.QFontMetricsF(font)
        p.setPen(QtGui.QColor(style.MUTED))
        head = "Gradient norm per layer group" + (f" at step {self._step:,}" if self._step is not None else "")
        p.drawText(QtCore.QRectF(6 * s, 0, self.width(), fm.height() + 4 * s),
                   int(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter), head)
        if not self._norms:
            p.setPen(QtGui.QColor(style.FAINT))
            p.drawText(self.rect().adjusted(10, 20, -10, -10),
                       int(QtCore.Qt.AlignmentFlag.AlignCenter | QtCore.Qt.TextFlag.TextWordWrap),
                       "Measured every 10th step while training: which layers are learning, and how hard.")
            p.end()
            return
        for g, (bar, lane) in self._layout().items():
            p.setPen(QtGui.QColor(style.FOREGROUND))
            p.drawText(QtCore.QRectF(0, lane.top(), bar.left() - 6 * s, lane.height()),
                       int(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter), _group_label(g))
            v = self._norms.get(g)
            if v is None:
                p.setPen(QtGui.QColor(style.FAINT))
                p.drawText(QtCore.QRectF(bar.left() + 4 * s, lane.top(), 200, lane.height()),
                           int(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter),
                           "frozen (no gradient)")
                continue
            color = style.SERIES_COLORS[1] if g == "heads" else TRAIN_COLOR
            p.setPen(QtCore.Qt.PenStyle.NoPen)
            p.setBrush(QtGui.QColor(color))
            p.drawRoundedRect(bar, 2 * s, 2 * s)
            p.setPen(QtGui.QColor(style.MUTED))
            p.drawText(QtCore.QRectF(bar.right() + 5 * s, lane.top(), 120 * s, lane.height()),
                       int(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter), f"{v:.3g}")
        p.end()


# =============================================================================================
# the inspector: the exact tokens the task builds


class MarkedTokenStrip(TokenStrip):
    """A token strip whose start, delimiter and extract tokens are marked: a colour of their own,
    a strong border, and their role as text ("Start", "Delim", "Extract")."""

    def __init__(self, parent=None, **kwargs):
        super().__init__(parent, **kwargs)
        self._roles: list[str | None] = []

    def set_sequence(self, ids: list[int], texts: list[str], special: dict[int, str]) -> None:
        """``special``: token id -> role ("bos", "delim", "extract")."""
        roles = [special.get(int(i)) for i in ids]
        shown = [SPECIAL_LOOK[r][0] if r else t for r, t in zip(roles, texts)]
        self._roles = roles
        self.set_tokens(shown, ids)

    def roles(self) -> list[str | None]:
        return list(self._roles)

    def _color(self, i: int) -> QtGui.QColor:
        if i < len(self._roles) and self._roles[i]:
            return QtGui.QColor(SPECIAL_LOOK[self._roles[i]][1])
        return super()._color(i)

    def paintEvent(self, event):
        super().paintEvent(event)
        if not any(self._roles):
            return
        p = QtGui.QPainter(self)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        p.setBrush(QtCore.Qt.BrushStyle.NoBrush)
        for role, rect in zip(self._roles, self.box_rects()):
            if role:
                p.setPen(QtGui.QPen(QtGui.QColor(SPECIAL_LOOK[role][2]), 2.0 * self._scale))
                p.drawRoundedRect(rect.adjusted(1, 1, -1, -1), 5 * self._scale, 5 * self._scale)
        p.end()


class InputInspector(QtWidgets.QWidget):
    """Pick a validation example; see the token sequence(s) the task feeds the model for it."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._task = None
        self._tokenizer = None
        self._special: dict[int, str] = {}
        self.strips: list[MarkedTokenStrip] = []
        self.captions: list[QtWidgets.QLabel] = []

        top = QtWidgets.QHBoxLayout()
        top.addWidget(QtWidgets.QLabel("Validation example"))
        self.index_spin = QtWidgets.QSpinBox()
        self.index_spin.setRange(1, 1)
        self.index_spin.setToolTip("Which validation example to show (1 = the first)")
        top.addWidget(self.index_spin)
        self.count_label = QtWidgets.QLabel("")
        self.count_label.setObjectName("mutedLabel")
        top.addWidget(self.count_label)
        top.addStretch(1)
        legend = QtWidgets.QLabel("  ".join(
            f"<span style='background:{fill}; border:1px solid {border}; padding:1px 6px;'>&nbsp;{text}&nbsp;</span>"
            for text, fill, border in SPECIAL_LOOK.values()))
        legend.setTextFormat(QtCore.Qt.TextFormat.RichText)
        legend.setToolTip("Start: begins every input · Delim: separates two texts · Extract: the head reads the "
                          "model's last hidden state here")
        top.addWidget(legend)
        self.status = muted_label("Choose a pretrained model and a dataset to see the exact tokens the model reads.")
        self.example_label = WrapLabel()
        self.example_label.setWordWrap(True)
        self.example_label.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.example_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.seq_box = QtWidgets.QWidget()
        self.seq_layout = QtWidgets.QVBoxLayout(self.seq_box)
        self.seq_layout.setContentsMargins(0, 0, 0, 0)
        self.seq_layout.setSpacing(4)
        self.how = muted_label()
        self.seq_layout.addWidget(self.how)
        self.seq_layout.addStretch(1)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        scroll.setWidget(self.seq_box)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addLayout(top)
        lay.addWidget(self.status)
        lay.addWidget(self.example_label)
        lay.addWidget(scroll, 1)
        self.index_spin.valueChanged.connect(lambda v: self.show_example(v - 1))

    def set_message(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(f"color: {ERROR_COLOR};" if error else "")
        self.status.setVisible(bool(text))

    def set_task(self, task, tokenizer) -> None:
        """A built labelled task (``engine.tasks.build_task``) and its tokenizer; None clears."""
        self._task, self._tokenizer = task, tokenizer
        if task is None:
            self._clear_strips()
            self.how.setText("")
            self.example_label.setText("")
            self.count_label.setText("")
            return
        self._special = {}
        for role in ("bos", "delim", "extract"):
            try:
                self._special[tokenizer.special_id(role)] = role
            except WorkbenchError:
                pass
        n = len(task.examples["val"])
        with QtCore.QSignalBlocker(self.index_spin):
            self.index_spin.setRange(1, max(1, n))
        self.count_label.setText(f"of {n:,}")
        self.set_message("")
        self.show_example(self.index_spin.value() - 1)

    def task(self):
        return self._task

    def example_count(self) -> int:
        return len(self._task.examples["val"]) if self._task is not None else 0

    def show_example(self, index: int) -> None:
        task = self._task
        if task is None or not task.examples["val"]:
            return
        index = max(0, min(index, len(task.examples["val"]) - 1))
        if self.index_spin.value() != index + 1:
            with QtCore.QSignalBlocker(self.index_spin):
                self.index_spin.setValue(index + 1)
        enc = task.examples["val"][index]
        ex = task.texts["val"][index]
        seqs = task.sequences(enc)
        self.example_label.setText(self._describe(task, ex, enc))
        self._clear_strips()
        captions = self._captions(task, enc, len(seqs))
        for k, ids in enumerate(seqs):
            cap = QtWidgets.QLabel(f"{captions[k]}  ·  {len(ids)} tokens"
                                   + ("  (cut to fit the context)" if len(ids) >= task.ctx.block_size else ""))
            cap.setObjectName("mutedLabel")
            strip = MarkedTokenStrip(show_ids=True)
            strip.set_sequence(list(ids), self._tokenizer.token_texts(ids), self._special)
            at = self.seq_layout.indexOf(self.how)
            self.seq_layout.insertWidget(at, cap)
            self.seq_layout.insertWidget(at + 1, strip)
            self.captions.append(cap)
            self.strips.append(strip)
        self.how.setText(self._how(task))

    @staticmethod
    def _how(task) -> str:
        kind = task.kind
        if task.regression:
            out = "a number (trained with the squared error)"
        elif kind == "multiple_choice":
            out = "one score per answer; a softmax over the answers picks one"
        else:
            out = f"{len(task.labels)} class scores ({', '.join(map(str, task.labels[:6]))})"
        both = ("Both orderings go through the model and their states at Extract are added; "
                if kind == "similarity" else "")
        return (f"The model reads each sequence left to right. {both}A linear head reads the last hidden state, at "
                f"the Extract token, and gives {out}. The auxiliary LM loss predicts every next token of the same "
                f"sequences.")

    def _clear_strips(self) -> None:
        for w in self.captions + self.strips:
            self.seq_layout.removeWidget(w)
            w.hide()
            w.setParent(None)
            w.deleteLater()
        self.captions, self.strips = [], []

    @staticmethod
    def _esc(text: str) -> str:
        return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))

    def _describe(self, task, ex, enc) -> str:
        e = self._esc
        kind = task.kind
        parts = []
        if kind == "multiple_choice":
            parts.append(f"<b>context</b> {e(ex.text)}")
            for i, c in enumerate(ex.choices):
                mark = " ✓" if i == enc.target else ""
                parts.append(f"<b>answer {i + 1}{mark}</b> {e(c)}")
        else:
            parts.append(f"<b>{'premise' if kind == 'entailment' else 'text'}</b> {e(ex.text)}")
            if ex.text_pair is not None:
                parts.append(f"<b>{'hypothesis' if kind == 'entailment' else 'second text'}</b> {e(ex.text_pair)}")
            if task.regression:
                parts.append(f"<b>target</b> {enc.target:g}")
            else:
                parts.append(f"<b>label</b> {e(str(task.labels[enc.target]))}")
        return "<br>".join(parts)

    @staticmethod
    def _captions(task, enc, n: int) -> list[str]:
        kind = task.kind
        if kind == "similarity":
            return ["Ordering 1: first text, then second", "Ordering 2: second text, then first "
                    "(the two final states are added)"]
        if kind == "multiple_choice":
            return [f"Answer {i + 1}" + (" ✓ (the right one)" if i == enc.target else "") for i in range(n)]
        if kind == "entailment":
            return ["Start + premise + Delim + hypothesis + Extract"] * n
        return ["Start + text + Extract"] * n


# =============================================================================================
# the panel


def list_checkpoints(_state, runs_dir) -> list:
    """The job: runs under ``runs_dir`` that have a checkpoint to start from (engine.runs summaries)."""
    from workbench.engine.runs import list_runs

    out = []
    for r in list_runs(Path(runs_dir)):
        ck = Path(r.path) / "checkpoints"
        if ck.is_dir() and any(ck.glob("*.json")):
            out.append(r)
    return out


class FinetunePanel(Panel):
    title = "Fine-tune"
    subtitle = ("Adapt a pretrained model to a labelled task: choose the model, the data and what stays frozen. "
                "The lanes show which layers train at every step of the run.")

    changed = QtCore.Signal()
    enabledChanged = QtCore.Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._max_steps = TrainingConfig().max_steps
        self._n_layer = 4
        self._base_lr = TrainingConfig().learning_rate
        self._ckpt_n_layer: int | None = None
        self._base_task = TaskConfig(kind="classification", label="label")
        self._base_ft = FinetuneConfig()
        self._job = None
        self._runs_job = None
        self._runs: dict = {}
        self._following = True  # the run under way fine-tunes: its events belong on this page
        self._listed = False
        self._job_gen = 0
        self._check_key = None
        self._best: tuple[str, float, int] | None = None
        self._seen_step = False
        self._last_metrics: dict[str, float] = {}
        self._tasks: set[str] = set()
        self._keys: dict[int, dict[str, str]] = {}  # plot -> {curve: colour}, for the key above the plots

        self.enable_box = QtWidgets.QCheckBox("Fine-tune a model on a labelled task")
        self.enable_box.setObjectName("enableFinetune")
        enable_row = FlowRow()  # the note goes under the box on a narrow page
        enable_row.add(self.enable_box, muted_label("(off: the run pretrains with the tasks of the Tasks page)"))
        self.body.addWidget(enable_row)

        # ---- left: settings ---------------------------------------------------------------
        settings = QtWidgets.QWidget()
        left = QtWidgets.QVBoxLayout(settings)
        left.setContentsMargins(0, 0, 6, 0)
        left.setSpacing(8)

        box, lay = card("Start from")
        row = QtWidgets.QHBoxLayout()
        self.checkpoint_combo = QtWidgets.QComboBox()
        self.checkpoint_combo.setToolTip(field_help(FinetuneConfig, "init"))
        self.checkpoint_combo.setSizeAdjustPolicy(
            QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.checkpoint_combo.setMinimumContentsLength(20)
        self.refresh_button = QtWidgets.QToolButton()
        self.refresh_button.setText("↻")
        self.refresh_button.setToolTip("Look for new runs")
        self.browse_button = QtWidgets.QPushButton("Browse…")
        self.browse_button.setToolTip("A run folder (its latest checkpoint) or a checkpoint .json")
        row.addWidget(self.checkpoint_combo, 1)
        row.addWidget(self.refresh_button)
        row.addWidget(self.browse_button)
        lay.addLayout(row)
        self.checkpoint_info = muted_label()
        lay.addWidget(self.checkpoint_info)
        left.addWidget(box)

        box, lay = card("Labelled data")
        self.dataset = DatasetForm()
        lay.addWidget(self.dataset)
        left.addWidget(box)

        box, grid = card("Objective", QtWidgets.QGridLayout())
        self.lm_weight = QtWidgets.QDoubleSpinBox()
        self.lm_weight.setRange(0.0, 10.0)
        self.lm_weight.setSingleStep(0.1)
        self.lm_weight.setDecimals(2)
        self.lm_weight.setToolTip(field_help(TaskConfig, "lm_weight"))
        lab = QtWidgets.QLabel("Auxiliary LM weight λ")
        lab.setToolTip(self.lm_weight.toolTip())
        grid.addWidget(lab, 0, 0)
        grid.addWidget(self.lm_weight, 0, 1)
        grid.addWidget(muted_label("L = L_task + λ·L_LM (GPT-1: 0.5; 0: off)"), 0, 2, 1, 2)
        self.aug: dict[str, QtWidgets.QDoubleSpinBox] = {}
        for k, (name, text) in enumerate((("aug_token_dropout", "Token dropout"), ("aug_delete", "Delete a token"),
                                          ("aug_swap", "Swap neighbours"), ("aug_mask", "Mask a token"))):
            w = QtWidgets.QDoubleSpinBox()
            w.setRange(0.0, 0.5)
            w.setSingleStep(0.02)
            w.setDecimals(2)
            w.setToolTip(field_help(TaskConfig, name))
            lab = QtWidgets.QLabel(text)
            lab.setToolTip(w.toolTip())
            grid.addWidget(lab, 1 + k // 2, 2 * (k % 2))
            grid.addWidget(w, 1 + k // 2, 2 * (k % 2) + 1)
            self.aug[name] = w
        aug_note = muted_label("Augmentation applies to training batches only; each number is a chance per token.")
        grid.addWidget(aug_note, 3, 0, 1, 4)
        left.addWidget(box)

        box, form = card("What trains", QtWidgets.QFormLayout())
        self.freeze_combo = QtWidgets.QComboBox()
        for key, text in FREEZE_LOOK:
            self.freeze_combo.addItem(text, key)
        self.freeze_combo.setToolTip(field_help(FinetuneConfig, "freeze"))
        form.addRow("Strategy", self.freeze_combo)
        self.freeze_n = QtWidgets.QSpinBox()
        self.freeze_n.setRange(0, 96)
        self.freeze_n.setToolTip(field_help(FinetuneConfig, "freeze_n"))
        self.freeze_n_label = QtWidgets.QLabel("Frozen blocks")
        form.addRow(self.freeze_n_label, self.freeze_n)
        self.unfreeze_every = QtWidgets.QSpinBox()
        self.unfreeze_every.setRange(1, 10_000_000)
        self.unfreeze_every.setSingleStep(10)
        self.unfreeze_every.setToolTip(field_help(FinetuneConfig, "unfreeze_every"))
        self.unfreeze_label = QtWidgets.QLabel("Thaw a block every")
        form.addRow(self.unfreeze_label, self.unfreeze_every)
        drow = QtWidgets.QHBoxLayout()
        self.discriminative = QtWidgets.QCheckBox("Discriminative learning rates, factor")
        self.discriminative.setToolTip(field_help(FinetuneConfig, "discriminative"))
        self.lr_factor = QtWidgets.QDoubleSpinBox()
        self.lr_factor.setRange(0.01, 1.0)
        self.lr_factor.setDecimals(3)
        self.lr_factor.setSingleStep(0.05)
        self.lr_factor.setToolTip(field_help(FinetuneConfig, "lr_factor"))
        drow.addWidget(self.discriminative)
        drow.addWidget(self.lr_factor)
        drow.addStretch(1)
        form.addRow(drow)
        self.stages_editor = StagesEditor()
        form.addRow(self.stages_editor)
        left.addWidget(box)
        self.error = error_label()
        left.addWidget(self.error)
        left.addStretch(1)

        self.settings_scroll = ColumnScroll()  # as wide as its content: nothing cut at the right
        self.settings_scroll.setWidget(settings)
        for combo in settings.findChildren(QtWidgets.QComboBox):
            combo.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
        self.settings_scroll.setMinimumHeight(280)  # when it stands above the views (ReflowSplitter)
        self.settings = settings

        # ---- right: views -----------------------------------------------------------------
        plan_box, plan_lay = card("Freezing plan")
        self.lanes = FreezeLaneView()
        self.plan_caption = muted_label()
        plan_lay.addWidget(self.lanes, 1)
        plan_lay.addWidget(self.plan_caption)

        self.tabs = QtWidgets.QTabWidget()
        training = QtWidgets.QWidget()
        tl = QtWidgets.QGridLayout(training)
        tl.setContentsMargins(4, 6, 4, 4)
        tl.setSpacing(6)
        self.headline = WrapLabel()
        self.headline.setObjectName("headline")
        self.headline.setWordWrap(True)
        # small plots: a key above them instead of legends over the curves
        self.loss_plot = LossPlot(title="Loss", y_label="loss", show_controls=False, smoothing=0.6, legend=False)
        self.metric_plot = MetricPlot(title="Validation metrics", y_label="", legend=False)
        self.curve_key = WrapLabel()
        self.curve_key.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.curve_key.setWordWrap(True)
        self.grad_strip = GradNormStrip()
        self.confusion_view = MatrixView(
            colormap="sequential", levels=None, value_format="{:.0f}", row_title="true class",
            col_title="predicted", describe=self._describe_confusion, max_cell=72.0,
            empty_text="The confusion matrix appears after the first evaluation of a classification task.")
        tl.addWidget(self.headline, 0, 0, 1, 2)
        tl.addWidget(self.curve_key, 1, 0, 1, 2)
        tl.addWidget(self.loss_plot, 2, 0)
        tl.addWidget(self.metric_plot, 2, 1)
        tl.addWidget(self.grad_strip, 3, 0)
        tl.addWidget(self.confusion_view, 3, 1)
        tl.setRowStretch(2, 3)
        tl.setRowStretch(3, 2)
        self.inspector = InputInspector()
        self.preview = DatasetPreview()
        self.tabs.addTab(self.inspector, "Inspector")
        self.tabs.addTab(training, "Training")
        self.tabs.addTab(self.preview, "Data preview")
        self.training_tab = training

        right = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        right.setChildrenCollapsible(False)
        right.addWidget(plan_box)
        right.addWidget(self.tabs)
        right.setStretchFactor(0, 2)
        right.setStretchFactor(1, 3)
        right.setSizes([300, 460])
        self.right_splitter = right

        split = ReflowSplitter()  # settings above the views on a narrow page
        split.addWidget(self.settings_scroll)
        split.addWidget(right)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setSizes([460, 900])
        self.splitter = split
        self.body.addWidget(split, 1)

        # ---- wiring ----------------------------------------------------------------------
        self._check_timer = QtCore.QTimer(self)
        self._check_timer.setSingleShot(True)
        self._check_timer.setInterval(400)
        self._check_timer.timeout.connect(self._start_check)
        self.enable_box.toggled.connect(self._enabled_toggled)
        self.checkpoint_combo.currentIndexChanged.connect(self._checkpoint_changed)
        self.refresh_button.clicked.connect(self.refresh_checkpoints)
        self.browse_button.clicked.connect(self._browse_checkpoint)
        self.dataset.changed.connect(self._settings_changed)
        self.dataset.previewChanged.connect(self._update_preview)
        self.lm_weight.valueChanged.connect(self._settings_changed)
        for w in self.aug.values():
            w.valueChanged.connect(self._settings_changed)
        self.freeze_combo.currentIndexChanged.connect(self._freeze_changed)
        for w in (self.freeze_n, self.unfreeze_every):
            w.valueChanged.connect(self._settings_changed)
        self.discriminative.toggled.connect(self._settings_changed)
        self.lr_factor.valueChanged.connect(self._settings_changed)
        self.stages_editor.changed.connect(self._settings_changed)

        self.checkpoint_combo.addItem("Random weights (train from scratch)", "")
        self.set_config(self._base_task, self._base_ft, enabled=False)
        self._update_headline()

    # -- configuration ---------------------------------------------------------------------

    def is_enabled(self) -> bool:
        return self.enable_box.isChecked()

    def set_enabled(self, on: bool) -> None:
        self.enable_box.setChecked(bool(on))

    def to_config(self) -> tuple[TaskConfig, FinetuneConfig]:
        """(the labelled task's ``[[tasks]]`` entry, the ``[finetune]`` table)."""
        task = self.dataset.task_config(self._base_task)
        task = dataclasses.replace(task, lm_weight=spin_value(self.lm_weight, self._base_task.lm_weight),
                                   **{k: spin_value(w, getattr(self._base_task, k)) for k, w in self.aug.items()})
        freeze = self.freeze_combo.currentData()
        ft = dataclasses.replace(
            self._base_ft, init=self.checkpoint(), freeze=freeze, freeze_n=self.freeze_n.value(),
            unfreeze_every=self.unfreeze_every.value(), discriminative=self.discriminative.isChecked(),
            lr_factor=spin_value(self.lr_factor, self._base_ft.lr_factor),
            stages=self.stages_editor.stages() if freeze == "stages" else self._base_ft.stages)
        return task, ft

    def set_config(self, task: TaskConfig | None, finetune: FinetuneConfig, *, enabled: bool | None = None) -> None:
        """Fill the form. ``task`` None keeps the current dataset settings; ``enabled`` None leaves
        the on/off switch as it is."""
        if task is not None:
            self._base_task = task
            self.dataset.set_task_config(task)
            with QtCore.QSignalBlocker(self.lm_weight):
                self.lm_weight.setValue(task.lm_weight)
            for k, w in self.aug.items():
                with QtCore.QSignalBlocker(w):
                    w.setValue(getattr(task, k))
        self._base_ft = finetune
        self.set_checkpoint(finetune.init)
        widgets = (self.freeze_combo, self.freeze_n, self.unfreeze_every, self.discriminative, self.lr_factor)
        blockers = [QtCore.QSignalBlocker(w) for w in widgets]
        self.freeze_combo.setCurrentIndex(max(0, self.freeze_combo.findData(finetune.freeze)))
        self.freeze_n.setValue(finetune.freeze_n)
        self.unfreeze_every.setValue(finetune.unfreeze_every)
        self.discriminative.setChecked(finetune.discriminative)
        self.lr_factor.setValue(finetune.lr_factor)
        del blockers
        with QtCore.QSignalBlocker(self.stages_editor):
            self.stages_editor.set_stages(finetune.stages)
        if enabled is not None:
            with QtCore.QSignalBlocker(self.enable_box):
                self.enable_box.setChecked(enabled)
            self._apply_enabled()
        self._settings_changed()

    def set_run_shape(self, *, max_steps: int | None = None, n_layer: int | None = None,
                      learning_rate: float | None = None) -> None:
        """The run's length, the model's depth and learning rate (from the Training and Model pages);
        a chosen checkpoint decides the depth itself."""
        if max_steps is not None:
            self._max_steps = int(max_steps)
        if n_layer is not None:
            self._n_layer = int(n_layer)
        if learning_rate is not None:
            self._base_lr = float(learning_rate)
        self._update_plan()

    def n_layer(self) -> int:
        return self._ckpt_n_layer or self._n_layer

    def checkpoint(self) -> str:
        return self.checkpoint_combo.currentData() or ""

    def set_checkpoint(self, path: str) -> None:
        path = str(path or "")
        i = self.checkpoint_combo.findData(path)
        if i < 0:
            self._add_checkpoint_item(path, Path(path).name)
            i = self.checkpoint_combo.findData(path)
        self.checkpoint_combo.setCurrentIndex(i)

    def validate(self) -> str:
        """The engine's message for what is wrong with these settings, or ""."""
        task, ft = self.to_config()
        try:
            from_dict({"tasks": [plain(task)], "finetune": plain(ft)}, source="the Fine-tune page")
        except ConfigError as e:
            return str(e).replace("the Fine-tune page: ", "")
        return ""

    def set_editable(self, editable: bool) -> None:
        self.settings.setEnabled(editable and self.is_enabled())
        self.enable_box.setEnabled(editable)

    # -- checkpoints -------------------------------------------------------------------------

    def refresh_checkpoints(self) -> None:
        """List the runs with a checkpoint (in the background: reading them imports torch)."""
        from workbench import paths

        from ..bridge import run_job

        self._runs_job = run_job(list_checkpoints, paths.runs_dir(), parent=self, name="list runs",
                                 on_done=self._fill_checkpoints, on_failed=self._list_failed)

    def _list_failed(self, message: str, _details: str) -> None:
        """The list keeps what it had; the line under it says why no runs are listed."""
        from workbench import paths

        self.checkpoint_info.setText(f"<span style='color:{ERROR_COLOR}'>Could not list the runs in "
                                     f"{html.escape(str(paths.runs_dir()))}: {html.escape(message)}</span>")

    def wait_for_runs(self, msecs: int = 30000) -> bool:
        """Tests and scripts: wait until the run list is filled in."""
        return self._runs_job.wait(msecs) if self._runs_job is not None else True

    def _fill_checkpoints(self, runs: list) -> None:
        from workbench.engine.runs import format_started

        current = self.checkpoint()
        with QtCore.QSignalBlocker(self.checkpoint_combo):
            self.checkpoint_combo.clear()
            self.checkpoint_combo.addItem("Random weights (train from scratch)", "")
            self._runs = {}
            for r in runs:
                text = f"{r.name} · {r.model} · {r.steps:,} steps · {format_started(r.started)}"
                self._runs[str(r.path)] = r
                self.checkpoint_combo.addItem(text, str(r.path))
            if current and self.checkpoint_combo.findData(current) < 0:
                self.checkpoint_combo.addItem(Path(current).name, current)
            self.checkpoint_combo.setCurrentIndex(max(0, self.checkpoint_combo.findData(current)))
        self._checkpoint_changed()

    def showEvent(self, event):
        if not self._listed:
            self._listed = True
            self.refresh_checkpoints()
        super().showEvent(event)

    def _add_checkpoint_item(self, path: str, text: str) -> None:
        with QtCore.QSignalBlocker(self.checkpoint_combo):
            self.checkpoint_combo.addItem(text or path, path)

    def _browse_checkpoint(self) -> None:
        from workbench import paths

        start = str(paths.runs_dir()) if paths.runs_dir().exists() else str(Path.home())
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Choose a run folder to start from", start)
        if folder:
            self.set_checkpoint(folder)

    def _checkpoint_changed(self, *_a) -> None:
        path = self.checkpoint()
        self._ckpt_n_layer = None
        if not path:
            self.checkpoint_info.setText("The model starts from random weights with the Model and Tokenizer "
                                         "pages' settings: the baseline that shows what pretraining adds.")
        else:
            try:
                from workbench.engine.config import load_experiment

                p = Path(path)
                run = p if p.is_dir() else p.parent.parent  # a checkpoint .json sits in RUN/checkpoints/
                exp = load_experiment(run / "config.toml")
                m = exp.model
                self._ckpt_n_layer = m.n_layer
                r = self._runs.get(path)
                first = exp.tasks[0].task_name if exp.tasks else ""
                extra = f" · validation loss {r.val[first]:.3f}" if r and first in r.val else ""
                self.checkpoint_info.setText(
                    f"{m.n_layer} blocks × {m.n_embd} wide, {m.n_head} heads, context {m.block_size} · "
                    f"{exp.tokenizer.kind} tokenizer{extra}. Its tokenizer and shape are used.")
            except (WorkbenchError, OSError) as e:
                self.checkpoint_info.setText(f"<span style='color:{ERROR_COLOR}'>{e}</span>")
        self._settings_changed()

    # -- reacting to edits --------------------------------------------------------------------

    def _enabled_toggled(self, on: bool) -> None:
        self._apply_enabled()
        self.enabledChanged.emit(on)
        self._settings_changed()

    def _apply_enabled(self) -> None:
        self.settings.setEnabled(self.is_enabled())

    def _freeze_changed(self) -> None:
        if self.freeze_combo.currentData() == "stages" and not self.stages_editor.stages():
            with QtCore.QSignalBlocker(self.stages_editor):
                self.stages_editor.set_stages(default_stages(self._max_steps))
        self._settings_changed()

    def _settings_changed(self, *_a) -> None:
        freeze = self.freeze_combo.currentData()
        self.freeze_n.setVisible(freeze == "bottom_n")
        self.freeze_n_label.setVisible(freeze == "bottom_n")
        self.unfreeze_every.setVisible(freeze == "gradual")
        self.unfreeze_label.setVisible(freeze == "gradual")
        self.stages_editor.setVisible(freeze == "stages")
        self.lr_factor.setEnabled(self.discriminative.isChecked())
        self.freeze_n.setMaximum(max(0, self.n_layer()))
        show_error(self.error, self.validate() if self.is_enabled() else "")
        self._update_plan()
        self._update_data_status()
        self._check_timer.start()
        if not self._last_metrics or not self._following:
            self._update_headline()  # the summary describes the setup until a run has numbers
        self.changed.emit()

    def _update_plan(self) -> None:
        _task, ft = self.to_config()
        if ft.freeze == "stages" and not ft.stages:
            ft = dataclasses.replace(ft, stages=default_stages(self._max_steps))
        n = self.n_layer()
        self.lanes.set_plan(ft, n, self._max_steps, self._base_lr)
        self.grad_strip.set_groups(lane_groups(n))
        shape = "from the checkpoint" if self._ckpt_n_layer else "from the Model page"
        self.plan_caption.setText(f"{describe_plan(ft, n, self._max_steps)}  ({n} blocks {shape}, "
                                  f"{self._max_steps:,} steps from the Training page.)")

    def _update_preview(self) -> None:
        task = self.dataset.task_config()
        used = {}
        for role in COLUMN_ROLES:
            v = getattr(task, role)
            for c in (v if isinstance(v, tuple) else (v,)):
                if c:
                    used.setdefault(c, role.replace("_", " "))
        self.preview.set_rows(self.dataset.columns(), self.dataset.rows(), used)

    def _update_data_status(self) -> None:
        err = self.dataset.preview_error()
        if err:
            self.dataset.status.setText(f"<span style='color:{ERROR_COLOR}'>{err}</span>")

    # -- background check / inspector ---------------------------------------------------------

    def _start_check(self) -> None:
        task, ft = self.to_config()
        if not task.train:
            self.inspector.set_task(None, None)
            self.inspector.set_message("Choose a labelled dataset (and a pretrained model) to see the exact "
                                       "tokens the model reads.")
            return
        key = (plain(task), ft.init)
        if key == self._check_key:
            return
        self._check_key = key
        from ..bridge import run_job

        self._job_gen += 1
        gen = self._job_gen
        self.dataset.status.setText("Reading the data…")
        self.inspector.set_message("Building the inputs…")
        self._job = run_job(check_labelled, task, ft.init, parent=self, name="check labelled data",
                            on_done=lambda r: self._check_done(gen, r),
                            on_failed=lambda msg, _d: self._check_failed(gen, msg))

    def wait_for_check(self, msecs: int = 30000) -> bool:
        """Tests: finish a pending check now."""
        if self._check_timer.isActive():
            self._check_timer.stop()
            self._start_check()
        return self._job.wait(msecs) if self._job is not None else True

    def _check_done(self, gen: int, r: dict) -> None:
        if gen != self._job_gen:
            return
        what = "labels: " + ", ".join(r["labels"][:12]) if r["labels"] else (
            "a number to predict" if r["regression"] else "")
        self.dataset.status.setText(f"{r['n_train']:,} training · {r['n_val']:,} validation examples"
                                    + (f" · {what}" if what else ""))
        self.dataset.status.setStyleSheet("")
        if r["task"] is not None:
            self.inspector.set_task(r["task"], r["tokenizer"])
        else:
            self.inspector.set_task(None, None)
            self.inspector.set_message("From scratch there is no tokenizer yet (the run trains one): choose a "
                                       "pretrained model to see the exact tokens.")

    def _check_failed(self, gen: int, message: str) -> None:
        if gen != self._job_gen:
            return
        message = message.split(": ", 1)[1] if message.split(": ", 1)[0].endswith("Error") else message
        self.dataset.status.setText(f"<span style='color:{ERROR_COLOR}'>{message}</span>")
        self.inspector.set_task(None, None)
        self.inspector.set_message(message, error=True)

    # -- training events ----------------------------------------------------------------------

    def end_run(self) -> None:
        """The run ended: a pretraining run left nothing here, so the page shows its setup again."""
        if not self._following:
            self._following = True
            self._update_headline()

    def begin_run(self, finetuning: bool, *, resume: bool = False) -> None:
        """A run starts (the window calls this). Only a run that fine-tunes (this page switched on)
        is shown here; a pretraining run's losses and metrics belong to the Curves page."""
        if not resume:
            self.reset()
        self._following = bool(finetuning)
        self._update_headline()

    def reset(self) -> None:
        self.loss_plot.clear()
        self.metric_plot.clear()
        self.grad_strip.clear()
        self.confusion_view.clear()
        self.lanes.clear_run()
        self._best = None
        self._seen_step = False
        self._last_metrics = {}
        self._tasks = set()
        self._keys = {}
        self.curve_key.setText("")
        self._update_headline()
        self.refresh(force=True)

    def _add(self, plot: LossPlot, split: str, task: str, what: str, step, y, tokens, elapsed) -> None:
        series = self._series(split, task, what)
        key = series.split("/", 1)[1]  # "loss", or "sent loss" when there are several tasks
        keys = self._keys.setdefault(id(plot), {})
        if key not in keys:
            used = set(keys.values())
            color = CURVE_COLORS.get(key) or next(
                (c for c in style.SERIES_COLORS if c not in used), style.SERIES_COLORS[len(keys) % 10])
            keys[key] = color
            self._update_key()
        if series not in plot.series_names():
            plot.set_series_style(series, color=keys[key])
        plot.add_points(series, step, y, tokens, elapsed)

    def _update_key(self) -> None:
        def items(plot):
            return "  ".join(f"<span style='color:{c}'>━</span> {w}" for w, c in self._keys.get(id(plot), {}).items())

        parts = []
        if self._keys.get(id(self.loss_plot)):
            parts.append(f"<b>Loss</b> {items(self.loss_plot)}  <span style='color:{style.MUTED}'>(dots: "
                         f"validation)</span>")
        if self._keys.get(id(self.metric_plot)):
            parts.append(f"<b>Metrics</b> {items(self.metric_plot)}")
        self.curve_key.setText("      ".join(parts))

    def _series(self, split: str, task: str, what: str = "loss") -> str:
        """Curve names: "train/loss", "train/task loss", "val/accuracy"... with the task's name in them
        only when the run has several tasks."""
        return f"{split}/{what}" if len(self._tasks) <= 1 else f"{split}/{task} {what}"

    def on_step(self, e) -> None:
        """``events.StepMetrics`` or a ``bridge.MetricsBatch``."""
        if not self._following:
            return
        c = step_columns(e)
        self._tasks |= {k for k in c.losses if "/" not in k}
        for name, y in c.losses.items():
            task, _, what = name.partition("/")
            if what in ("lm_loss", "task_loss"):
                series = self._series("train", task, "aux LM loss" if what == "lm_loss" else "task loss")
            elif what:
                continue
            else:
                series = self._series("train", task)
            self._add(self.loss_plot, "train", task, series.split("/", 1)[1].removeprefix(f"{task} "),
                      c.step, y, c.tokens, c.elapsed)
        step = int(c.step[-1])
        self.lanes.set_current_step(step)
        if c.group_grad_norms:
            self.grad_strip.set_norms(c.group_grad_norms, step)
        if not self._seen_step:
            self._seen_step = True
            self.tabs.setCurrentWidget(self.training_tab)

    def on_eval(self, e) -> None:
        """``events.EvalResult``: validation loss, metrics and confusion matrix."""
        if not self._following:
            return
        self._tasks |= set(e.losses)
        for task, v in e.losses.items():
            self._add(self.loss_plot, "val", task, "loss", e.step, v, e.tokens, e.elapsed)
        for name, v in e.metrics.items():
            task, _, what = name.partition("/")
            if what in ("ppl", "task_loss", "lm_loss") or not what:
                continue
            self._add(self.metric_plot, "val", task, what, e.step, v, e.tokens, e.elapsed)
            self._last_metrics[name] = float(v)
            if what in ("accuracy", "pearson") and (self._best is None or v > self._best[1]):
                self._best = (name, float(v), int(e.step))
        if e.confusion:
            task = next(iter(e.confusion))
            m = np.asarray(e.confusion[task])
            names = list(e.labels.get(task, [str(i) for i in range(m.shape[0])]))
            rows = m.sum(axis=1, keepdims=True)
            share = np.divide(m, rows, out=np.zeros(m.shape, dtype=np.float64), where=rows > 0)
            self.confusion_view.set_levels((0.0, 1.0))
            self.confusion_view.set_matrix(m, names, names, colour_values=share)
        self._update_headline(e.step)

    def on_freeze(self, e) -> None:
        """``events.FreezeChanged``: the trainer changed what trains."""
        if not self._following:
            return
        self.lanes.add_change(e.step, e.description)
        self.plan_caption.setText(f"Step {e.step:,}: now training {e.description} "
                                  f"({e.n_trainable:,} parameters).")

    def refresh(self, force: bool = False) -> None:
        self.loss_plot.refresh(force)
        self.metric_plot.refresh(force)

    def set_presentation(self, scale: float) -> None:
        for w in (self.loss_plot, self.metric_plot, self.grad_strip, self.confusion_view, self.lanes):
            w.set_presentation(scale)

    def _describe_confusion(self, i: int, j: int, v: float) -> str:
        rows, cols = self.confusion_view.labels()
        total = self.confusion_view.matrix()[i].sum()
        share = f" ({v / total:.0%} of the true {rows[i]})" if total else ""
        if i == j:
            return f"{int(v)} examples of {rows[i]} classified correctly{share}"
        return f"{int(v)} examples of {rows[i]} taken for {cols[j]}{share}"

    def _update_headline(self, step: int | None = None) -> None:
        metrics = self._last_metrics
        if not self._following:
            self.headline.setText("The run under way pretrains (fine-tuning is off): its curves are on the Curves "
                                  "page. Switch fine-tuning on here to adapt a trained model to a labelled task.")
            self.set_summary("off" if not self.is_enabled() else "on, next run")
            return
        if not metrics:
            self.headline.setText("Start a run: the task's loss, its validation metrics, the gradient of every "
                                  "layer group and the confusion matrix appear here.")
            self.set_summary(self._setup_summary())
            return
        parts = [f"{k.split('/', 1)[1]} <b>{v:.3f}</b>" for k, v in metrics.items()]
        text = f"Step {step:,}: " + " · ".join(parts) if step is not None else " · ".join(parts)
        if self._best is not None:
            name, v, s = self._best
            text += f"   (best {name.split('/', 1)[1]} {v:.3f} at step {s:,})"
        self.headline.setText(text)
        k, v = next(iter(metrics.items()))
        self.set_summary(f"{k.split('/', 1)[1]} {v:.3f}")

    def _setup_summary(self) -> str:
        """The sidebar line before a fine-tuning run has numbers: what the page is set to."""
        if not self.is_enabled():
            return "off"
        path = self.checkpoint()
        return f"from {Path(path).name}" if path else "from random weights"


# =============================================================================================
# how the Tasks and Fine-tune pages make one experiment


def experiment_sections(tasks_panel, finetune_panel) -> dict:
    """``Experiment.replace(**experiment_sections(...))``: the tasks, multitask and finetune sections.

    Fine-tuning on: the run trains the Fine-tune page's labelled task from its checkpoint, with its
    freezing plan. Off: the run trains the Tasks page's tasks, from random weights.
    """
    tasks, multitask = tasks_panel.to_config()
    if finetune_panel is not None and finetune_panel.is_enabled():
        task, ft = finetune_panel.to_config()
        return {"tasks": (task,), "multitask": multitask, "finetune": ft}
    return {"tasks": tasks, "multitask": multitask, "finetune": FinetuneConfig()}


def load_experiment_into(exp, tasks_panel, finetune_panel) -> None:
    """Fill both pages from an experiment. Fine-tuning is switched on for an experiment that starts
    from a checkpoint or trains a single labelled task."""
    tasks_panel.set_config(exp.tasks, exp.multitask)
    labelled = [t for t in exp.tasks if t.kind in LABELLED_KINDS]
    on = bool(labelled) and (bool(exp.finetune.init) or len(exp.tasks) == 1)
    finetune_panel.set_config(labelled[0] if labelled else None, exp.finetune, enabled=on)
    finetune_panel.set_run_shape(max_steps=exp.training.max_steps, n_layer=exp.model.n_layer,
                                 learning_rate=exp.training.learning_rate)
    if hasattr(tasks_panel, "set_finetune_note"):
        tasks_panel.set_finetune_note(finetune_panel.is_enabled())


__all__ = [
    "DatasetForm", "DatasetPreview", "FinetunePanel", "FreezeLaneView", "GradNormStrip", "InputInspector",
    "LaneSegment", "MarkedTokenStrip", "StagesEditor", "describe_plan", "experiment_sections",
    "lane_groups", "load_experiment_into", "plan_lanes",
]
