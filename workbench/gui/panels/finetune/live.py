"""What the Fine-tune page shows while a run trains: the Training tab (``TrainingViews``: the loss,
the validation metrics, the gradient norm of every layer group, the confusion matrix) and its
gradient-norm strip."""

from __future__ import annotations

import math

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from workbench.engine.freezing import layer_groups

from ... import theme
from ...widgets.flow import WrapLabel
from ...widgets.plot.loss_plot import LossPlot, MetricPlot
from ...widgets.matrix_view import MatrixView
from .lanes import TRAIN_COLOR, group_label

CURVE_COLORS = {"loss": theme.SERIES_COLORS[0], "task loss": theme.SERIES_COLORS[1],
                "aux LM loss": theme.SERIES_COLORS[2], "accuracy": theme.SERIES_COLORS[0],
                "f1": theme.SERIES_COLORS[1], "mse": theme.SERIES_COLORS[3], "pearson": theme.SERIES_COLORS[4],
                "spearman": theme.SERIES_COLORS[5]}


class TrainingViews(QtWidgets.QWidget):
    """The Training tab: a headline (the page writes it), the key of the curves, the loss (task loss
    and auxiliary LM loss) and validation-metric plots, the gradient norm of every layer group and
    the confusion matrix. ``add_steps`` / ``add_eval`` take the run's numbers; ``reset`` forgets them."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._best: tuple[str, float, int] | None = None
        self._last_metrics: dict[str, float] = {}
        self._tasks: set[str] = set()
        self._keys: dict[int, dict[str, str]] = {}  # plot -> {curve: colour}, for the key above the plots
        # the stylesheet's tab-page background reaches a QWidget subclass only with this attribute
        self.setAttribute(QtCore.Qt.WidgetAttribute.WA_StyledBackground, True)
        tl = QtWidgets.QGridLayout(self)
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

    def metrics(self) -> dict[str, float]:
        """The latest validation metrics ("sent/accuracy" -> value), in the order they came."""
        return dict(self._last_metrics)

    def best(self) -> tuple[str, float, int] | None:
        """(metric, value, step) of the best accuracy or Pearson correlation so far."""
        return self._best

    def reset(self) -> None:
        self.loss_plot.clear()
        self.metric_plot.clear()
        self.grad_strip.clear()
        self.confusion_view.clear()
        self._best = None
        self._last_metrics = {}
        self._tasks = set()
        self._keys = {}
        self.curve_key.setText("")

    def add_steps(self, c) -> None:
        """Training losses and gradient norms: ``step_columns`` of a ``StepMetrics`` or a batch."""
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
        if c.group_grad_norms:
            self.grad_strip.set_norms(c.group_grad_norms, int(c.step[-1]))

    def add_eval(self, e) -> None:
        """``events.EvalResult``: validation loss, metrics and confusion matrix."""
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

    def refresh(self, force: bool = False) -> None:
        self.loss_plot.refresh(force)
        self.metric_plot.refresh(force)

    def set_presentation(self, scale: float) -> None:
        for w in (self.loss_plot, self.metric_plot, self.grad_strip, self.confusion_view):
            w.set_presentation(scale)

    def _add(self, plot: LossPlot, split: str, task: str, what: str, step, y, tokens, elapsed) -> None:
        series = self._series(split, task, what)
        key = series.split("/", 1)[1]  # "loss", or "sent loss" when there are several tasks
        keys = self._keys.setdefault(id(plot), {})
        if key not in keys:
            used = set(keys.values())
            color = CURVE_COLORS.get(key) or next(
                (c for c in theme.SERIES_COLORS if c not in used), theme.SERIES_COLORS[len(keys) % 10])
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
            parts.append(f"<b>Loss</b> {items(self.loss_plot)}  <span style='color:{theme.MUTED}'>(dots: "
                         f"validation)</span>")
        if self._keys.get(id(self.metric_plot)):
            parts.append(f"<b>Metrics</b> {items(self.metric_plot)}")
        self.curve_key.setText("      ".join(parts))

    def _series(self, split: str, task: str, what: str = "loss") -> str:
        """Curve names: "train/loss", "train/task loss", "val/accuracy"... with the task's name in them
        only when the run has several tasks."""
        return f"{split}/{what}" if len(self._tasks) <= 1 else f"{split}/{task} {what}"

    def _describe_confusion(self, i: int, j: int, v: float) -> str:
        rows, cols = self.confusion_view.labels()
        total = self.confusion_view.matrix()[i].sum()
        share = f" ({v / total:.0%} of the true {rows[i]})" if total else ""
        if i == j:
            return f"{int(v)} examples of {rows[i]} classified correctly{share}"
        return f"{int(v)} examples of {rows[i]} taken for {cols[j]}{share}"


class GradNormStrip(QtWidgets.QWidget):
    """One horizontal bar per layer group (heads at the top, embeddings at the bottom, as in the
    lanes): the gradient norm of the latest measurement. Groups without a gradient (frozen) say so."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._groups: list[str] = layer_groups(4)
        self._norms: dict[str, float] = {}
        self._step: int | None = None
        self._scale = 1.0
        self.setMinimumSize(220, 140)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Expanding)

    def set_groups(self, groups: list[str]) -> None:
        """Layer groups from the bottom up (``layer_groups(n_layer)``)."""
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
        fm = QtGui.QFontMetricsF(theme.font(s, size=9.0))
        top = list(reversed(self._groups))
        label_w = max(fm.horizontalAdvance(group_label(g)) for g in top) + 12 * s if top else 0
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
        p.fillRect(self.rect(), QtGui.QColor(theme.BACKGROUND))
        s = self._scale
        font = theme.font(s, size=9.0)
        p.setFont(font)
        fm = QtGui.QFontMetricsF(font)
        p.setPen(QtGui.QColor(theme.MUTED))
        head = "Gradient norm per layer group" + (f" at step {self._step:,}" if self._step is not None else "")
        p.drawText(QtCore.QRectF(6 * s, 0, self.width(), fm.height() + 4 * s),
                   int(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter), head)
        if not self._norms:
            p.setPen(QtGui.QColor(theme.FAINT))
            p.drawText(self.rect().adjusted(10, 20, -10, -10),
                       int(QtCore.Qt.AlignmentFlag.AlignCenter | QtCore.Qt.TextFlag.TextWordWrap),
                       "Measured every 10th step while training: which layers are learning, and how hard.")
            p.end()
            return
        for g, (bar, lane) in self._layout().items():
            p.setPen(QtGui.QColor(theme.FOREGROUND))
            p.drawText(QtCore.QRectF(0, lane.top(), bar.left() - 6 * s, lane.height()),
                       int(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter), group_label(g))
            v = self._norms.get(g)
            if v is None:
                p.setPen(QtGui.QColor(theme.FAINT))
                p.drawText(QtCore.QRectF(bar.left() + 4 * s, lane.top(), 200, lane.height()),
                           int(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter),
                           "frozen (no gradient)")
                continue
            color = theme.SERIES_COLORS[1] if g == "heads" else TRAIN_COLOR
            p.setPen(QtCore.Qt.PenStyle.NoPen)
            p.setBrush(QtGui.QColor(color))
            p.drawRoundedRect(bar, 2 * s, 2 * s)
            p.setPen(QtGui.QColor(theme.MUTED))
            p.drawText(QtCore.QRectF(bar.right() + 5 * s, lane.top(), 120 * s, lane.height()),
                       int(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter), f"{v:.3g}")
        p.end()
