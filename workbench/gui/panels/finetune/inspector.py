"""The inspector: the exact token sequence(s) a labelled task builds for a validation example."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from workbench.engine.errors import WorkbenchError

from ... import theme
from ...widgets.flow import WrapLabel
from ...widgets.token_strip import TokenStrip
from .. import muted_label

SPECIAL_LOOK = {  # role -> (shown text, fill, border)
    "bos": ("Start", "#c8e6c9", "#2e7d32"),
    "delim": ("Delim", "#ffe0b2", "#e8710a"),
    "extract": ("Extract", "#ffcdd2", "#c62828"),
}


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
        self.status.setStyleSheet(f"color: {theme.ERROR_COLOR};" if error else "")
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
