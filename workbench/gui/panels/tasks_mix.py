"""The drawing on the Tasks page: one shared trunk, a head per task, and what one training step
does with them (which tasks it trains, how their losses are weighted)."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from workbench.engine.config import MultitaskConfig, TaskConfig

from .. import theme

SAMPLING_LOOK = [
    ("all", "Every task, every step"),
    ("proportional", "One task per step, drawn by weight"),
    ("temperature", "One task per step, by weight^(1/T)"),
    ("round_robin", "One task per step, in turn"),
]
WEIGHTING_LOOK = [
    ("fixed", "Fixed: the weights above"),
    ("average", "Average: equal weights"),
    ("uncertainty", "Uncertainty: learned (Kendall 2018)"),
    ("gradnorm", "GradNorm: balance gradient sizes (Chen 2018)"),
    ("pcgrad", "PCGrad: remove conflicts (Yu 2020)"),
]


def sampling_shares(tasks, cfg: MultitaskConfig) -> list[float]:
    """Chance that a step trains each task (1 for every task when all train every step); the
    rule of ``engine.multitask.TaskSampler``, for display."""
    n = len(tasks)
    if not n:
        return []
    if cfg.sampling == "all" or n == 1:
        return [1.0] * n
    if cfg.sampling == "round_robin":
        return [1.0 / n] * n
    w = [max(0.0, t.weight) for t in tasks]
    if cfg.sampling == "temperature":
        w = [x ** (1.0 / cfg.temperature) if x > 0 else 0.0 for x in w]
    total = sum(w)
    return [x / total for x in w] if total > 0 else [1.0 / n] * n


class TaskMixDiagram(QtWidgets.QWidget):
    """One shared trunk, a head per task, and what a training step does with them."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._tasks: list[TaskConfig] = []
        self._cfg = MultitaskConfig()
        self._colors: list[str] = []
        self.setMinimumSize(320, 360)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Expanding)

    def set_mix(self, tasks: list[TaskConfig], cfg: MultitaskConfig, colors: list[str]) -> None:
        self._tasks, self._cfg, self._colors = list(tasks), cfg, list(colors)
        self.update()

    def head_text(self, t: TaskConfig) -> str:
        if t.kind in ("causal_lm", "masked_lm"):
            return "LM head (tied to the embeddings)"
        if t.kind == "continuity":
            return "linear head: follows / not"
        return "linear head at the Extract token"

    def weight_text(self, i: int) -> str:
        cfg, t = self._cfg, self._tasks[i]
        if cfg.sampling != "all" and len(self._tasks) > 1 and cfg.weighting in ("fixed", "average"):
            return "loss × 1"
        return {"fixed": f"loss × {t.weight:g}", "average": f"loss × 1/{len(self._tasks)}",
                "uncertainty": "weight learned", "gradnorm": "weight learned",
                "pcgrad": "loss × 1, projected"}.get(cfg.weighting, "")

    def input_text(self, t: TaskConfig) -> str:
        if t.kind == "causal_lm":
            return "corpus text; target: each next token"
        if t.kind == "masked_lm":
            return f"corpus text, {t.mask_prob:.0%} of tokens hidden"
        if t.kind == "continuity":
            return "A + Delim + B; B follows A half the time"
        from pathlib import Path

        return f"Start + text + Extract from {Path(t.train).name or 'a dataset'}"

    def paintEvent(self, _event):
        p = QtGui.QPainter(self)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QtGui.QPainter.RenderHint.TextAntialiasing)
        w, h = self.width(), self.height()
        base = QtGui.QFont(self.font())
        base.setPointSizeF(base.pointSizeF() * max(1.0, min(1.25, h / 600, w / 420)))  # fill a large card
        bold = QtGui.QFont(base)
        bold.setBold(True)
        small = QtGui.QFont(base)
        small.setPointSizeF(base.pointSizeF() * 0.9)
        fm = QtGui.QFontMetricsF(base)
        sfm = QtGui.QFontMetricsF(small)
        line = fm.height()
        n = len(self._tasks)
        margin = 14.0
        top_left = int(QtCore.Qt.AlignmentFlag.AlignTop | QtCore.Qt.AlignmentFlag.AlignLeft)
        wrap = top_left | int(QtCore.Qt.TextFlag.TextWordWrap)
        left_mid = int(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter)
        muted = QtGui.QColor("#5b6270")
        if not n:
            p.setPen(QtGui.QColor(theme.FAINT))
            p.drawText(self.rect(), int(QtCore.Qt.AlignmentFlag.AlignCenter), "Add a task to see the set-up")
            p.end()
            return
        shares = sampling_shares(self._tasks, self._cfg)
        drawn = self._cfg.sampling != "all" and n > 1
        hw = (w - 2 * margin - (n - 1) * 8) / n

        def wrapped(text: str) -> float:
            return sfm.boundingRect(QtCore.QRectF(0, 0, hw - 16, 1000), wrap, text).height()

        head_h = line * 2.5 + 12 + max(wrapped(self.head_text(t)) for t in self._tasks)
        input_h = line * 1.4 + max(wrapped(self.input_text(t)) for t in self._tasks)
        total_h, trunk_h = line * 2.5, line * 2.6
        step_h = line * (1.6 + (n if drawn else 1) * 1.3)
        content = total_h + head_h + trunk_h + input_h + step_h
        gap = max(line * 1.2, min(line * 3.0, (h - 2 * margin - content) / 5))
        y = max(margin, (h - content - 4 * gap) / 2)
        inner_w = w - 2 * margin
        colors = [QtGui.QColor(self._colors[i] if i < len(self._colors) else theme.SERIES_COLORS[i % 10])
                  for i in range(n)]
        xs = [margin + i * (hw + 8) for i in range(n)]
        centers = [x + hw / 2 for x in xs]
        arrow = QtGui.QColor("#8a8f98")

        def box(r, pen, fill, radius=7):
            p.setPen(QtGui.QPen(pen, 1.3))
            p.setBrush(fill)
            p.drawRoundedRect(r, radius, radius)

        def arrows(y_from, y_to):
            p.setPen(QtGui.QPen(arrow, 1.4))
            p.setBrush(arrow)
            for cx in centers:
                _arrow(p, cx, y_from, y_to)

        # total loss
        r = QtCore.QRectF(margin, y, inner_w, total_h)
        box(r, QtGui.QColor("#c9ced6"), QtGui.QColor("#f7f8fa"), 8)
        weighting = dict(WEIGHTING_LOOK).get(self._cfg.weighting, self._cfg.weighting)
        p.setFont(bold)
        p.setPen(QtGui.QColor(theme.FOREGROUND))
        p.drawText(r.adjusted(10, 5, -10, 0), top_left, "Total loss")
        p.setFont(small)
        p.setPen(muted)
        p.drawText(r.adjusted(10, 5 + line * 1.1, -10, 0), top_left,
                   sfm.elidedText(f"one number, one backward pass · {weighting}", QtCore.Qt.TextElideMode.ElideRight,
                                  inner_w - 20))
        y_total_bottom = y + total_h
        y += total_h + gap
        # heads
        for i, t in enumerate(self._tasks):
            r = QtCore.QRectF(xs[i], y, hw, head_h)
            fill = QtGui.QColor(colors[i])
            fill.setAlphaF(0.13)
            box(r, colors[i], fill)
            p.setFont(bold)
            p.setPen(QtGui.QColor(theme.FOREGROUND))
            p.drawText(r.adjusted(8, 5, -8, 0), top_left,
                       QtGui.QFontMetricsF(bold).elidedText(t.task_name, QtCore.Qt.TextElideMode.ElideRight, hw - 16))
            p.setFont(small)
            p.setPen(muted)
            p.drawText(r.adjusted(8, 5 + line * 1.15, -8, -line * 1.2), wrap, self.head_text(t))
            p.setPen(QtGui.QColor(theme.FOREGROUND))
            bottom_left = int(QtCore.Qt.AlignmentFlag.AlignBottom | QtCore.Qt.AlignmentFlag.AlignLeft)
            p.drawText(r.adjusted(8, 0, -8, -5), bottom_left, self.weight_text(i))
        arrows(y, y_total_bottom + 2)
        y_heads_bottom = y + head_h
        y += head_h + gap
        # trunk
        arrows(y, y_heads_bottom + 2)
        r = QtCore.QRectF(margin, y, inner_w, trunk_h)
        box(r, QtGui.QColor("#e0b98a"), QtGui.QColor("#fdf0e1"), 8)
        p.setFont(bold)
        p.setPen(QtGui.QColor(theme.FOREGROUND))
        p.drawText(r.adjusted(10, 5, -10, 0), top_left, "Shared transformer trunk")
        p.setFont(small)
        p.setPen(muted)
        p.drawText(r.adjusted(10, 5 + line * 1.1, -10, 0), top_left, "embeddings and blocks: every task trains them")
        y_trunk_bottom = y + trunk_h
        y += trunk_h + gap
        # inputs
        arrows(y, y_trunk_bottom + 2)
        for i, t in enumerate(self._tasks):
            r = QtCore.QRectF(xs[i], y, hw, input_h)
            box(r, QtGui.QColor("#d5dbe3"), QtGui.QColor("#ffffff"))
            p.setFont(small)
            p.setPen(QtGui.QColor(colors[i]).darker(130))
            p.drawText(r.adjusted(8, 4, -8, 0), top_left, "its batch")
            p.setPen(muted)
            p.drawText(r.adjusted(8, 4 + line, -8, -3), wrap, self.input_text(t))
        y += input_h + gap
        # one step
        p.setFont(bold)
        p.setPen(QtGui.QColor(theme.FOREGROUND))
        sampling = dict(SAMPLING_LOOK).get(self._cfg.sampling, self._cfg.sampling)
        p.drawText(QtCore.QRectF(margin, y, inner_w, line * 1.3), left_mid,
                   QtGui.QFontMetricsF(bold).elidedText(f"Each step: {sampling[0].lower() + sampling[1:]}",
                                                        QtCore.Qt.TextElideMode.ElideRight, inner_w))
        y += line * 1.5
        p.setFont(small)
        if not drawn:
            p.setPen(muted)
            p.drawText(QtCore.QRectF(margin, y, inner_w, line * 1.3), left_mid,
                       f"{n} forward and backward pass{'es' if n > 1 else ''} per step, one batch per task")
        else:
            label_w = max(QtGui.QFontMetricsF(small).horizontalAdvance(t.task_name) for t in self._tasks) + 10
            bar_w = inner_w - label_w - 50
            for i, (t, share) in enumerate(zip(self._tasks, shares)):
                yy = y + i * line * 1.3
                p.setPen(QtGui.QColor(theme.FOREGROUND))
                p.drawText(QtCore.QRectF(margin, yy, label_w, line * 1.1), left_mid, t.task_name)
                p.setPen(QtCore.Qt.PenStyle.NoPen)
                p.setBrush(QtGui.QColor("#eceef1"))
                p.drawRoundedRect(QtCore.QRectF(margin + label_w, yy + line * 0.2, bar_w, line * 0.75), 3, 3)
                p.setBrush(colors[i])
                p.drawRoundedRect(QtCore.QRectF(margin + label_w, yy + line * 0.2, max(2.0, bar_w * share),
                                                line * 0.75), 3, 3)
                p.setPen(muted)
                p.drawText(QtCore.QRectF(margin + label_w + bar_w + 6, yy, 44, line * 1.1), left_mid, f"{share:.0%}")
        p.end()


def _arrow(p: QtGui.QPainter, x: float, y_from: float, y_to: float) -> None:
    """A vertical arrow from y_from up (or down) to y_to."""
    p.drawLine(QtCore.QPointF(x, y_from), QtCore.QPointF(x, y_to + (5 if y_to < y_from else -5)))
    d = 5 if y_to < y_from else -5
    p.drawPolygon(QtGui.QPolygonF([QtCore.QPointF(x - 4, y_to + d), QtCore.QPointF(x + 4, y_to + d),
                                   QtCore.QPointF(x, y_to)]))
