"""Model panel: the shape of the GPT (layers, heads, width, context, dropout) and what it costs.

Parameter count, memory and FLOPs per token come from ``engine.model.model_stats`` and
``ModelStats.activation_bytes``, computed from the settings alone (no model is built). That
module imports torch, which takes a second or two, so the numbers appear once the window has
loaded torch in the background (``enable_stats``); the form itself is usable at once.
"""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from workbench.engine.config import ModelConfig

from .. import theme
from ..widgets.flow import Columns
from . import Panel, card, error_label, field_help, human_bytes, human_count, muted_label, show_error


class ArchitectureDiagram(QtWidgets.QWidget):
    """A small drawing of the decoder stack with the current sizes written on it."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.cfg = ModelConfig()
        self.vocab = 128
        self.setMinimumSize(300, 360)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Preferred, QtWidgets.QSizePolicy.Policy.Expanding)

    def set_model(self, cfg: ModelConfig, vocab: int) -> None:
        self.cfg, self.vocab = cfg, vocab
        self.update()

    def paintEvent(self, _event) -> None:
        p = QtGui.QPainter(self)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        _draw_text = p.drawText

        def draw_text(rect, flags, text):  # elide what does not fit the box
            width = int(rect.width())
            _draw_text(rect, flags, p.fontMetrics().elidedText(text, QtCore.Qt.TextElideMode.ElideRight, width))

        c = self.cfg
        w, h = self.width(), self.height()
        f = QtGui.QFont(self.font())
        small = QtGui.QFont(f)
        small.setPointSizeF(f.pointSizeF() * 0.85)
        bold = QtGui.QFont(f)
        bold.setBold(True)
        fm = QtGui.QFontMetrics(f)
        line = fm.height()
        bw = min(w - 30, 380)
        x0 = (w - bw) / 2
        ok = c.n_head > 0 and c.n_embd % c.n_head == 0
        hs = c.n_embd // c.n_head if ok else c.n_embd / max(1, c.n_head)

        boxes = [
            ("Tokens in", f"up to {c.block_size} tokens of context", "#eef1f5", None),
            ("Embeddings", f"token {self.vocab}×{c.n_embd} + position {c.block_size}×{c.n_embd}", "#dbe7f3", None),
            ("Transformer block", "", "#fdf0e1", "block"),
            ("LayerNorm + output head", f"{c.n_embd} → {self.vocab} logits (tied to the embedding)", "#dbe7f3", None),
            ("Next-token probabilities", f"softmax over {self.vocab} tokens", "#eef1f5", None),
        ]
        gap = line * 0.9
        simple_h = line * 2.6
        block_h = line * 7.4
        total = simple_h * 4 + block_h + gap * 4
        y = max(6.0, (h - total) / 2)
        arrow_pen = QtGui.QPen(QtGui.QColor("#8a8f98"), 1.6)
        centers = []
        for title, text, color, kind in boxes:
            bh = block_h if kind == "block" else simple_h
            rect = QtCore.QRectF(x0, y, bw, bh)
            if kind == "block":  # a stack of cards: the block repeats n_layer times
                for k in (2, 1):
                    if c.n_layer > k:
                        shadow = rect.translated(5 * k, -5 * k)
                        p.setPen(QtGui.QPen(QtGui.QColor("#e0b98a"), 1))
                        p.setBrush(QtGui.QColor("#fbe4c7"))
                        p.drawRoundedRect(shadow, 8, 8)
            p.setPen(QtGui.QPen(QtGui.QColor("#b9c2cf") if kind != "block" else QtGui.QColor("#e0b98a"), 1))
            p.setBrush(QtGui.QColor(color))
            p.drawRoundedRect(rect, 8, 8)
            p.setPen(QtGui.QColor("#2b2b2b"))
            if kind == "block":
                p.setFont(bold)
                draw_text(rect.adjusted(10, 6, -10, 0), QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignTop,
                           f"Transformer block  × {c.n_layer}")
                inner_w = bw - 28
                sub = [
                    ("LayerNorm → masked self-attention",
                     f"{c.n_head} heads × {hs if isinstance(hs, int) else f'{hs:.1f}'} channels"
                     + ("" if ok else "  (must divide!)"), "#ffffff"),
                    ("LayerNorm → MLP", f"{c.n_embd} → {4 * c.n_embd} → {c.n_embd} (GELU)", "#ffffff"),
                ]
                sy = y + line * 1.7
                for stitle, stext, scol in sub:
                    srect = QtCore.QRectF(x0 + 14, sy, inner_w, line * 2.5)
                    p.setPen(QtGui.QPen(QtGui.QColor(theme.ERROR_COLOR) if (not ok and "heads" in stext) else QtGui.QColor("#e0b98a"), 1))
                    p.setBrush(QtGui.QColor(scol))
                    p.drawRoundedRect(srect, 6, 6)
                    p.setPen(QtGui.QColor("#2b2b2b"))
                    p.setFont(f)
                    draw_text(srect.adjusted(8, 3, -8, 0), QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignTop, stitle)
                    p.setFont(small)
                    p.setPen(QtGui.QColor(theme.ERROR_COLOR) if (not ok and "heads" in stext) else QtGui.QColor("#5b6270"))
                    draw_text(srect.adjusted(8, 0, -8, -3), QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignBottom, stext)
                    sy += line * 2.8
            else:
                p.setFont(bold)
                draw_text(rect.adjusted(10, 4, -10, 0), QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignTop, title)
                p.setFont(small)
                p.setPen(QtGui.QColor("#5b6270"))
                draw_text(rect.adjusted(10, 0, -10, -5), QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignBottom, text)
            centers.append((y, y + bh))
            y += bh + gap
        p.setPen(arrow_pen)
        p.setBrush(QtGui.QColor("#8a8f98"))
        cx = x0 + bw / 2
        for (_, bottom), (top, _) in zip(centers, centers[1:]):
            p.drawLine(QtCore.QPointF(cx, bottom + 2), QtCore.QPointF(cx, top - 4))
            tri = QtGui.QPolygonF([QtCore.QPointF(cx - 4, top - 8), QtCore.QPointF(cx + 4, top - 8),
                                   QtCore.QPointF(cx, top - 2)])
            p.drawPolygon(tri)
        p.end()


class ModelPanel(Panel):
    title = "Model"
    subtitle = ("The shape of the GPT: how many transformer blocks, how many attention heads, how wide "
                "and how long a context. Sizes and costs update as you type.")

    configChanged = QtCore.Signal()
    validityChanged = QtCore.Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._stats_fn = None       # (GPTConfig, model_stats) once torch is loaded
        self._vocab = 128
        self._vocab_known = False
        self._batch = 12
        self._tokens_per_run = 0
        self._valid = True
        self._bias = True

        row = Columns(spacing=14)  # side by side, or one above the other on a narrow page
        self.body.addWidget(row, 1)
        left_pane = QtWidgets.QWidget()
        left = QtWidgets.QVBoxLayout(left_pane)
        left.setContentsMargins(0, 0, 0, 0)
        left.setSpacing(10)
        row.add(left_pane, 3)

        box, form = card("Shape", QtWidgets.QFormLayout())
        form.setLabelAlignment(QtCore.Qt.AlignmentFlag.AlignRight)
        form.setHorizontalSpacing(14)
        self.n_layer = self._spin(1, 96, "n_layer")
        self.n_head = self._spin(1, 128, "n_head")
        self.n_embd = self._spin(8, 16384, "n_embd")
        self.n_embd.setSingleStep(16)
        self.block_size = self._spin(2, 32768, "block_size")
        self.block_size.setSingleStep(32)
        self.dropout = QtWidgets.QDoubleSpinBox()
        self.dropout.setRange(0.0, 0.9)
        self.dropout.setSingleStep(0.05)
        self.dropout.setDecimals(2)
        self.dropout.setToolTip(field_help(ModelConfig, "dropout"))
        self.dropout.valueChanged.connect(self._changed)
        self.dropout.setMaximumWidth(180)
        form.addRow("Layers (n_layer)", self.n_layer)
        form.addRow("Heads per layer (n_head)", self.n_head)
        form.addRow("Width (n_embd)", self.n_embd)
        form.addRow("Context (block_size)", self.block_size)
        form.addRow("Dropout", self.dropout)
        self.error = error_label()
        form.addRow(self.error)
        left.addWidget(box)

        box, grid = card("Size and cost", QtWidgets.QGridLayout())
        grid.setHorizontalSpacing(18)
        grid.setVerticalSpacing(6)
        self.stat_labels: dict[str, QtWidgets.QLabel] = {}
        rows = [
            ("params", "Parameters"),
            ("non_emb", "  without embeddings"),
            ("weights", "Weights (fp32)"),
            ("train_mem", "Training memory"),
            ("flops", "Training FLOPs per token"),
            ("step_flops", "FLOPs per optimizer step"),
            ("tokens_per_param", "Planned tokens per parameter"),
        ]
        for i, (key, text) in enumerate(rows):
            name = QtWidgets.QLabel(text)
            name.setObjectName("statName")
            val = QtWidgets.QLabel("…")
            val.setObjectName("statValue")
            val.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
            val.setWordWrap(True)
            grid.addWidget(name, i, 0, QtCore.Qt.AlignmentFlag.AlignTop)
            grid.addWidget(val, i, 1)
            self.stat_labels[key] = val
        grid.setColumnStretch(1, 1)
        self.stats_note = muted_label("")
        grid.addWidget(self.stats_note, len(rows), 0, 1, 2)
        left.addWidget(box)
        left.addStretch(1)

        box, lay = card("Architecture")
        self.diagram = ArchitectureDiagram()
        lay.addWidget(self.diagram)
        row.add(box, 2)

        self.set_config(ModelConfig())

    def _spin(self, lo: int, hi: int, name: str) -> QtWidgets.QSpinBox:
        s = QtWidgets.QSpinBox()
        s.setRange(lo, hi)
        s.setGroupSeparatorShown(True)
        s.setToolTip(field_help(ModelConfig, name))
        s.valueChanged.connect(self._changed)
        s.setMinimumWidth(110)
        s.setMaximumWidth(180)
        return s

    # -- config --------------------------------------------------------------------------------

    def config(self) -> ModelConfig:
        return ModelConfig(n_layer=self.n_layer.value(), n_head=self.n_head.value(), n_embd=self.n_embd.value(),
                           block_size=self.block_size.value(), dropout=round(self.dropout.value(), 4),
                           bias=self._bias)

    def set_config(self, cfg: ModelConfig) -> None:
        self._bias = cfg.bias
        for w, v in ((self.n_layer, cfg.n_layer), (self.n_head, cfg.n_head), (self.n_embd, cfg.n_embd),
                     (self.block_size, cfg.block_size), (self.dropout, cfg.dropout)):
            with QtCore.QSignalBlocker(w):
                w.setValue(v)
        self._changed()

    def set_editable(self, editable: bool) -> None:
        for w in (self.n_layer, self.n_head, self.n_embd, self.block_size, self.dropout):
            w.setEnabled(editable)

    def is_valid(self) -> bool:
        return self._valid

    # -- inputs from other panels -----------------------------------------------------------

    def set_vocab_size(self, n: int, known: bool = True) -> None:
        """known: from a trained tokenizer (else the configured upper bound)."""
        self._vocab, self._vocab_known = int(n), known
        self._update_stats()

    def set_training(self, batch_size: int, tokens_per_run: int) -> None:
        self._batch, self._tokens_per_run = int(batch_size), int(tokens_per_run)
        self._update_stats()

    def enable_stats(self) -> None:
        """Called once torch is loaded (engine.model imports it)."""
        from workbench.engine.model import GPTConfig, model_stats

        self._stats_fn = (GPTConfig, model_stats)
        self._update_stats()

    # -- updates -----------------------------------------------------------------------------------

    def _changed(self, *_args) -> None:
        e, h = self.n_embd.value(), self.n_head.value()
        valid = e % h == 0
        if valid:
            show_error(self.error, "")
        else:
            lo = e - e % h
            options = sorted({v for v in (lo, lo + h) if v >= 8})
            near = sorted(sorted((d for d in range(1, min(e, 128) + 1) if e % d == 0), key=lambda d: abs(d - h))[:2])
            show_error(self.error,
                       f"Width {e} cannot be split evenly into {h} heads: each head gets n_embd / n_head "
                       f"channels. Try a width of {' or '.join(map(str, options))}, or "
                       f"{' or '.join(map(str, near))} heads. Training is disabled until this is fixed.")
        for w in (self.n_embd, self.n_head):  # colour only: a border or background would restyle the arrows
            w.setStyleSheet("" if valid else f"color: {theme.ERROR_COLOR}; font-weight: 600;")
        if valid != self._valid:
            self._valid = valid
            self.validityChanged.emit(valid)
        self._update_stats()
        self.configChanged.emit()

    def _update_stats(self) -> None:
        cfg = self.config()
        self.diagram.set_model(cfg, self._vocab)
        if not self._valid:
            for lab in self.stat_labels.values():
                lab.setText("—")
            self.set_summary("invalid: n_embd % n_head")
            return
        if self._stats_fn is None:
            self.stats_note.setText("Loading PyTorch to compute the sizes…")
            self.set_summary(f"{cfg.n_layer} layers × {cfg.n_embd} wide")
            return
        GPTConfig, model_stats = self._stats_fn
        g = GPTConfig.from_model_config(cfg, self._vocab)
        st = model_stats(g)
        act = st.activation_bytes(g, self._batch)
        L = self.stat_labels
        L["params"].setText(f"<b>{human_count(st.params)}</b>  ({st.params:,})")
        emb = st.params - st.non_embedding_params
        L["non_emb"].setText(f"{human_count(st.non_embedding_params)}  (embeddings {human_count(emb)})")
        L["weights"].setText(human_bytes(st.param_bytes))
        L["train_mem"].setText(
            f"≈ {human_bytes(st.train_state_bytes + act)}  "
            f"<span style='color:#6b6b6b'>(weights + gradients + AdamW {human_bytes(st.train_state_bytes)}, "
            f"activations {human_bytes(act)} at batch {self._batch})</span>")
        L["flops"].setText(f"{human_count(st.flops_per_token)}FLOP  "
                           f"<span style='color:#6b6b6b'>(forward {human_count(st.forward_flops_per_token)}FLOP)</span>")
        step_tokens = self._batch * cfg.block_size
        L["step_flops"].setText(f"{human_count(st.flops_per_token * step_tokens)}FLOP  "
                                f"<span style='color:#6b6b6b'>({step_tokens:,} tokens per micro-batch)</span>")
        if self._tokens_per_run:
            ratio = self._tokens_per_run / max(1, st.params)
            hint = ("" if ratio >= 5 else "  <span style='color:#6b6b6b'>(few: the model will see little data)</span>")
            L["tokens_per_param"].setText(f"{ratio:,.1f}  <span style='color:#6b6b6b'>"
                                          f"({human_count(self._tokens_per_run)} tokens planned)</span>{hint}")
        else:
            L["tokens_per_param"].setText("—")
        vocab_note = ("from the trained tokenizer" if self._vocab_known
                      else "the tokenizer's configured maximum; train it for the exact number")
        self.stats_note.setText(f"Vocabulary {self._vocab:,} ({vocab_note}). Memory is a rough estimate for fp32.")
        self.set_summary(f"{human_count(st.params)} parameters")
