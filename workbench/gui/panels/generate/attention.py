"""What the chosen generated token looked at: its context tokens shaded by attention weight and a
bar per context token, for a chosen layer and head (or the mean of the heads; the default, the
last layer's mean, is the engine's ``GeneratedToken.attention``)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from ... import theme
from ...widgets.attention.token_axis import TokenAxis
from ...widgets.plot_input import wheel_scrolls_page
from ...widgets.token_strip import TokenStrip
from .. import muted_label

MEAN = -1          # the head picker's "mean of heads"
HEAT_TO = (91, 155, 213)  # attention heat: white -> this blue at the row's largest weight


def heat_color(w: float, top: float) -> QtGui.QColor:
    t = 0.0 if top <= 0 else min(1.0, max(0.0, float(w) / top))
    return QtGui.QColor(*[round(255 + (c - 255) * t) for c in HEAT_TO])


class TokenAttention(QtWidgets.QGroupBox):
    """The card under the output. The page hands it the chosen token with ``show_token``; the
    layer and head pickers are filled from the first token with attention (``fill_pickers``) and
    redraw the card themselves."""

    def __init__(self, parent=None):
        super().__init__("What the chosen token looked at", parent)
        self.setObjectName("card")  # as panels.card() makes them
        self._layer = -1              # -1: the last layer
        self._head = MEAN
        self._shape = (0, 0)
        self._token = None            # the GeneratedToken shown, or None
        self._texts: list[str] = []   # the whole strip (prompt + generated) the token is part of
        self._ids: list[int] = []
        self._in_prompt = False       # a prompt chip was clicked

        al = QtWidgets.QVBoxLayout()
        self.setLayout(al)
        al.setContentsMargins(6, 6, 6, 6)
        pick = QtWidgets.QHBoxLayout()
        pick.setSpacing(8)
        pick.addWidget(QtWidgets.QLabel("Layer"))
        self.layer_combo = QtWidgets.QComboBox()
        self.layer_combo.setMinimumWidth(90)
        pick.addWidget(self.layer_combo)
        pick.addWidget(QtWidgets.QLabel("Head"))
        self.head_combo = QtWidgets.QComboBox()
        self.head_combo.setMinimumWidth(130)
        pick.addWidget(self.head_combo)
        pick.addStretch(1)
        al.addLayout(pick)
        self.caption = muted_label("Click a generated (coloured) token above.")
        al.addWidget(self.caption)
        self.heat = TokenStrip()
        self.heat_scroll = QtWidgets.QScrollArea()
        self.heat_scroll.setWidgetResizable(True)
        self.heat_scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.heat_scroll.setWidget(self.heat)
        self.heat_scroll.setMinimumHeight(40)
        self.heat_scroll.setMaximumHeight(110)
        al.addWidget(self.heat_scroll)
        self.bar_axis = TokenAxis("bottom", rotate=True, max_chars=10)
        self.bar_plot = pg.PlotWidget(axisItems={"bottom": self.bar_axis})
        self.bar_plot.setBackground(theme.BACKGROUND)
        self.bar_plot.setMenuEnabled(False)
        self.bar_plot.hideButtons()
        self.bar_plot.setMouseEnabled(x=False, y=False)
        wheel_scrolls_page(self.bar_plot, hint="")
        self.bar_plot.setMinimumHeight(150)
        left = self.bar_plot.getPlotItem().getAxis("left")
        for ax in (left, self.bar_axis):
            ax.setPen(pg.mkPen(theme.FAINT, width=1))
            ax.setTextPen(pg.mkPen(theme.FOREGROUND))
            ax.setTickFont(theme.font(1.0, size=9))
        left.setLabel("attention", color=theme.MUTED)
        left.enableAutoSIPrefix(False)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8, brush=pg.mkBrush(*HEAT_TO), pen=pg.mkPen(None))
        self.bar_plot.addItem(self.bars)
        al.addWidget(self.bar_plot, 1)

        self.layer_combo.currentIndexChanged.connect(self._on_layer)
        self.head_combo.currentIndexChanged.connect(self._on_head)

    # -- layer and head ------------------------------------------------------------------------

    def has_shape(self) -> bool:
        """The pickers are filled (a token with attention came since ``reset_shape``)."""
        return self._shape != (0, 0)

    def reset_shape(self) -> None:
        """A new generation: the pickers are filled again from its first token (the layer and
        head chosen stay chosen)."""
        self._shape = (0, 0)

    def fill_pickers(self, n_layer: int, n_head: int) -> None:
        self._shape = (n_layer, n_head)
        with QtCore.QSignalBlocker(self.layer_combo), QtCore.QSignalBlocker(self.head_combo):
            self.layer_combo.clear()
            self.layer_combo.addItems([f"layer {i}" for i in range(n_layer)])
            self.head_combo.clear()
            self.head_combo.addItems([f"head {h}" for h in range(n_head)] + ["mean of heads"])
            layer = n_layer - 1 if self._layer < 0 else min(self._layer, n_layer - 1)
            self.layer_combo.setCurrentIndex(layer)
            self.head_combo.setCurrentIndex(n_head if self._head == MEAN else min(self._head, n_head - 1))

    def set_head(self, layer: int, head: int) -> None:
        """Choose the layer and head (``MEAN`` = -1: the mean of the layer's heads)."""
        self._layer, self._head = layer, head
        if self._shape != (0, 0):
            L, H = self._shape
            with QtCore.QSignalBlocker(self.layer_combo), QtCore.QSignalBlocker(self.head_combo):
                self.layer_combo.setCurrentIndex(L - 1 if layer < 0 else min(layer, L - 1))
                self.head_combo.setCurrentIndex(H if head == MEAN else min(head, H - 1))
        self._draw()

    def _on_layer(self, i: int) -> None:
        if i >= 0:
            self._layer = i
            self._draw()

    def _on_head(self, i: int) -> None:
        if i >= 0:
            self._head = MEAN if i == self._shape[1] else i
            self._draw()

    # -- the token -----------------------------------------------------------------------------

    def show_token(self, token, texts: list[str], ids: list[int], in_prompt: bool = False) -> None:
        """Show what ``token`` (a ``GeneratedToken``, or None) looked at; ``texts`` and ``ids`` are
        the whole strip it is part of; ``in_prompt``: a prompt token was chosen (it has none)."""
        self._token, self._texts, self._ids, self._in_prompt = token, texts, ids, in_prompt
        self._draw()

    def row(self) -> np.ndarray | None:
        """The weights shown for the token, layer and head: one per context token."""
        tok = self._token
        if tok is None:
            return None
        if tok.attention_all is None:
            return None if tok.attention is None else np.asarray(tok.attention)
        a = tok.attention_all  # (n_layer, n_head, T)
        layer = a.shape[0] - 1 if self._layer < 0 else min(self._layer, a.shape[0] - 1)
        if self._head == MEAN:
            return a[layer].mean(axis=0)
        return a[layer, min(self._head, a.shape[1] - 1)]

    def context(self) -> list[str]:
        """The token's context tokens (what the row's weights are over)."""
        tok = self._token
        return [] if tok is None else self._texts[tok.context_start:tok.position]

    def _draw(self) -> None:
        tok = self._token
        row = self.row()
        if tok is None or row is None:
            self.heat.clear()
            self.bars.setOpts(x=[], height=[])
            self.bar_axis.set_tokens([])
            if self._in_prompt:
                self.caption.setText("That token is part of the prompt: the model read it but did not "
                                     "choose it. Click a generated (coloured) token.")
            else:
                self.caption.setText("Click a generated (coloured) token above.")
            return
        texts = self.context()
        ids = self._ids[tok.context_start:tok.position]
        top = float(np.max(row)) if len(row) else 0.0
        colors = [heat_color(w, top) for w in row]
        tips = [f"{t!r} (position {tok.context_start + j}): attention {w:.3f}"
                for j, (t, w) in enumerate(zip(texts, row))]
        self.heat.set_tokens(texts, ids, colors=colors, tooltips=tips, keep_selection=True)
        x = np.arange(len(row)) + 0.5
        self.bars.setOpts(x=x, height=np.asarray(row, dtype=float), width=0.8)
        self.bar_axis.set_tokens(texts)
        self.bar_plot.setXRange(0, max(1, len(row)), padding=0.01)
        self.bar_plot.setYRange(0, max(top, 1e-6) * 1.08, padding=0)
        L, H = self._shape
        layer = L - 1 if self._layer < 0 else min(self._layer, L - 1)
        heads = f"mean of {H} heads" if self._head == MEAN else f"head {self._head}"
        best = np.argsort(row)[::-1][:3]
        most = ", ".join(f"'{theme.visible_whitespace(texts[j])}' {row[j]:.2f}" for j in best)
        window = "" if tok.context_start == 0 else f" (the context window starts at position {tok.context_start})"
        self.caption.setText(
            f"'{theme.visible_whitespace(tok.text)}' (model's probability {tok.model_prob:.2f}) was chosen at "
            f"position {tok.position} from the {len(row)} tokens before it{window}. Layer {layer}, {heads}: "
            f"how much the last of them looked at each. Most: {most}.")

    def set_presentation(self, scale: float) -> None:
        self.heat.set_presentation(scale)
        self.heat_scroll.setMaximumHeight(int(110 * scale))
        for ax in (self.bar_plot.getPlotItem().getAxis("left"), self.bar_axis):
            ax.setTickFont(theme.font(scale, size=9))
