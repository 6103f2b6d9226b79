"""What the Fine-tune page shows while a run trains."""

from __future__ import annotations

import math

from PySide6 import QtCore, QtGui, QtWidgets

from workbench.engine.freezing import layer_groups

from ...widgets import style
from .lanes import TRAIN_COLOR, group_label


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
        fm = QtGui.QFontMetricsF(style.font(s, size=9.0))
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
                       int(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter), group_label(g))
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
