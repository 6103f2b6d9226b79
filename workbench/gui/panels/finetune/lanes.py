"""The freezing plan as lanes: one per layer group across the steps of the run.

The lanes are the engine's own plan (``engine.freezing.FreezePlan.group_segments``, the calls the
trainer makes), so the picture is the plan that runs; this module only draws it.
"""

from __future__ import annotations

import math

from PySide6 import QtCore, QtGui, QtWidgets

from workbench.engine.config import FinetuneConfig
from workbench.engine.errors import WorkbenchError
from workbench.engine.freezing import FreezePlan, GroupSegment, layer_groups

from ... import theme

TRAIN_COLOR = "#4e79a7"
TRAIN_LIGHT = "#cddcec"
FROZEN_COLOR = "#eceef1"
FROZEN_HATCH = "#d3d7dd"
NOW_COLOR = "#e15759"


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
        self._plan = FreezePlan(self._cfg, self._n_layer)
        self._lanes: dict[str, list[GroupSegment]] | None = None
        self._error = ""
        self._current: int | None = None
        self._changes: list[tuple[int, str]] = []
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

    def lanes(self) -> dict[str, list[GroupSegment]]:
        return dict(self._lanes or {})

    def groups(self) -> list[str]:
        return layer_groups(self._n_layer)

    def description(self) -> str:
        """The plan in plain words (the engine's ``describe_plan``)."""
        return self._plan.describe_plan(self._max_steps)

    def segment_at(self, group: str, step: int) -> GroupSegment | None:
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
        from ...widgets.export import save_png

        save_png(self, path, scale)

    # -- computing ---------------------------------------------------------------------------

    def _compute(self) -> None:
        self._plan = FreezePlan(self._cfg, self._n_layer)
        try:
            self._lanes = self._plan.group_segments(self._max_steps, self._base_lr)
            self._error = ""
        except (WorkbenchError, ValueError, IndexError) as e:  # e.g. a stage's "top:x" as it is typed
            self._lanes, self._error = None, str(e)
        self.updateGeometry()
        self.update()

    # -- geometry ---------------------------------------------------------------------------

    def _metrics(self) -> dict:
        s = self._scale
        font = theme.font(s, size=9.0)
        fm = QtGui.QFontMetricsF(font)
        groups = self.groups()
        label_w = max(fm.horizontalAdvance(group_label(g)) for g in groups) + 14 * s
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
        p.fillRect(self.rect(), QtGui.QColor(theme.BACKGROUND))
        m = self._metrics()
        fm, s = m["fm"], self._scale
        p.setFont(m["font"])
        if self._lanes is None:
            p.setPen(QtGui.QColor(theme.ERROR_COLOR if self._error else theme.FAINT))
            p.drawText(self.rect().adjusted(12, 12, -12, -12),
                       int(QtCore.Qt.AlignmentFlag.AlignCenter | QtCore.Qt.TextFlag.TextWordWrap),
                       self._error or "Working out the plan…")
            p.end()
            return
        top = list(reversed(m["groups"]))
        hatch = QtGui.QBrush(QtGui.QColor(FROZEN_HATCH), QtCore.Qt.BrushStyle.BDiagPattern)
        # stage bands in the header
        for span in self._plan.stage_spans(self._max_steps):
            xa, xb = self._x(span.start, m), self._x(span.end, m)
            r = QtCore.QRectF(xa, 2 * s, xb - xa, m["y0"] - 4 * s)
            p.setPen(QtCore.Qt.PenStyle.NoPen)
            p.setBrush(QtGui.QColor("#f1f4f8" if span.index % 2 == 0 else "#e6ebf2"))
            p.drawRoundedRect(r.adjusted(1, 0, -1, 0), 3 * s, 3 * s)
            p.setPen(QtGui.QColor(theme.MUTED))
            lr = f" · lr {span.learning_rate:.2g}" if span.learning_rate > 0 else ""
            text = fm.elidedText(f"stage {span.index + 1}{lr}", QtCore.Qt.TextElideMode.ElideRight, int(r.width() - 6))
            p.drawText(r, int(QtCore.Qt.AlignmentFlag.AlignCenter), text)
        self._paint_legend(p, m, hatch)
        gap = max(1.0, 2.0 * s) if m["lane_h"] > 10 else 0.5
        for i, g in enumerate(top):
            lane = self._lane_rect(i, m)
            p.setPen(QtGui.QColor(theme.FOREGROUND))
            p.drawText(QtCore.QRectF(0, lane.top(), m["label_w"] - 8 * s, lane.height()),
                       int(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter), group_label(g))
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
                    p.setPen(QtGui.QColor("#ffffff" if dark else theme.FOREGROUND))
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
        p.setPen(QtGui.QColor(theme.MUTED))
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
        p.setBrush(QtGui.QColor(theme.FOREGROUND))
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
                p.setBrush(QtGui.QColor(theme.FOREGROUND))
                c = r.center()
                p.drawPolygon(QtGui.QPolygonF([QtCore.QPointF(c.x() - 4 * s, c.y() - 4 * s),
                                               QtCore.QPointF(c.x() + 4 * s, c.y() - 4 * s),
                                               QtCore.QPointF(c.x(), c.y() + 3 * s)]))
            else:
                p.setPen(QtGui.QPen(QtGui.QColor(NOW_COLOR), 2 * s))
                p.drawLine(QtCore.QPointF(r.center().x(), r.top() - 2), QtCore.QPointF(r.center().x(), r.bottom() + 2))
            p.setPen(QtGui.QColor(theme.MUTED))
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
                        ev.globalPos(), f"{group_label(g)} · steps {seg.start:,}–{seg.end - 1:,}: {what}", self)
                    return True
            QtWidgets.QToolTip.hideText()
            ev.ignore()
            return True
        return super().event(ev)


def group_label(g: str) -> str:
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
