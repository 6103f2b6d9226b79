"""Tokenizer panel: how text becomes tokens.

Training runs in a background job through ``tokenizer.prepare_tokenizer`` (the trainer's too), which caches
the result by corpus and settings: a tokenizer trained here is the one the next training run
finds, and one trained by a run shows here without training again. A sample text, editable,
shows each token as a coloured box (``TokenStrip``), with characters per token and how much of
the vocabulary a sample of the corpus uses.
"""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from workbench.engine.config import CorpusConfig, TokenizerConfig

from .. import theme
from ..bridge import JobSlot
from ..jobs.tokenizer import TrainedTokenizer, train_for_panel
from ..widgets.token_strip import TokenStrip
from ..widgets.flow import Columns
from . import Panel, card, error_label, field_help, muted_label, show_error

KIND_LABELS = {
    "char": "Characters — one token per character",
    "bpe": "Byte-level BPE — GPT-2 style subwords",
    "wordpiece": "WordPiece — BERT style subwords",
    "unigram": "Unigram — SentencePiece style subwords",
}
DEFAULT_SAMPLE = "The quick brown fox jumps over the lazy dog.\nabcde>abcde  fghij<jihgf  ({[]})"


class TokenizerPanel(Panel):
    title = "Tokenizer"
    subtitle = ("The model reads tokens, not letters. Choose how text is cut into tokens and how many "
                "different tokens there may be, then see how a text splits.")

    configChanged = QtCore.Signal()
    vocabChanged = QtCore.Signal(int, bool)   # vocabulary size, known (trained) or only configured

    def __init__(self, parent=None):
        super().__init__(parent)
        self._corpus_cfg = CorpusConfig()
        self._corpus_ok = True
        self._trainer = JobSlot(self, "tokenizer", on_progress=lambda msg: self.progress_label.setText(str(msg)),
                                on_done=self._trained, on_failed=lambda msg, _d: show_error(self.error, msg),
                                on_cancelled=lambda: self.progress_label.setText("Cancelled."),
                                on_ended=self._job_ended)
        self._training: tuple | None = None   # the settings being trained for, until the job's end
        self._result: TrainedTokenizer | None = None
        self._trained_for: tuple | None = None
        self._path = ""
        self.auto_train = True

        top = Columns()  # side by side, or one above the other on a narrow page
        self.body.addWidget(top)

        box, form = card("Settings", QtWidgets.QFormLayout())
        form.setLabelAlignment(QtCore.Qt.AlignmentFlag.AlignRight)
        self.kind_combo = QtWidgets.QComboBox()
        for kind, label in KIND_LABELS.items():
            self.kind_combo.addItem(label, kind)
        self.kind_combo.setToolTip(field_help(TokenizerConfig, "kind"))
        self.vocab_spin = QtWidgets.QSpinBox()
        self.vocab_spin.setRange(16, 262144)
        self.vocab_spin.setSingleStep(128)
        self.vocab_spin.setGroupSeparatorShown(True)
        self.vocab_spin.setToolTip(field_help(TokenizerConfig, "vocab_size"))
        form.addRow("Kind", self.kind_combo)
        form.addRow("Vocabulary size", self.vocab_spin)
        file_row = QtWidgets.QHBoxLayout()
        self.path_label = muted_label("trained on the corpus")
        self.load_button = QtWidgets.QPushButton("Use a file…")
        self.load_button.setToolTip(field_help(TokenizerConfig, "path"))
        self.clear_path_button = QtWidgets.QPushButton("Train instead")
        self.clear_path_button.hide()
        self.load_button.clicked.connect(self._choose_file)
        self.clear_path_button.clicked.connect(lambda: self._set_path(""))
        file_row.addWidget(self.path_label, 1)
        file_row.addWidget(self.load_button)
        file_row.addWidget(self.clear_path_button)
        form.addRow("Tokenizer", file_row)
        buttons = QtWidgets.QHBoxLayout()
        self.train_button = QtWidgets.QPushButton("Train tokenizer")
        self.train_button.setObjectName("primaryButton")
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.train_button.clicked.connect(self.train)
        self.cancel_button.clicked.connect(self.cancel)
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        form.addRow(buttons)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(8)
        self.progress.hide()
        self.progress_label = muted_label()
        form.addRow(self.progress)
        form.addRow(self.progress_label)
        self.error = error_label()
        form.addRow(self.error)
        top.add(box, 1)

        box, grid = card("Result", QtWidgets.QGridLayout())
        grid.setHorizontalSpacing(18)
        self.result_labels = {}
        for i, (key, text) in enumerate((("vocab", "Vocabulary"), ("cpt", "Characters per token"),
                                         ("used", "Vocabulary used"), ("tokens", "Corpus sample"))):
            name = QtWidgets.QLabel(text)
            name.setObjectName("statName")
            val = QtWidgets.QLabel("—")
            val.setObjectName("statValue")
            grid.addWidget(name, i, 0)
            grid.addWidget(val, i, 1)
            self.result_labels[key] = val
        grid.setColumnStretch(1, 1)
        self.stale_label = muted_label()
        grid.addWidget(self.stale_label, 4, 0, 1, 2)
        grid.setRowStretch(5, 1)
        top.add(box, 1)

        box, lay = card("Try it: how does this text split?")
        self.sample_edit = QtWidgets.QPlainTextEdit(DEFAULT_SAMPLE)
        self.sample_edit.setMaximumHeight(90)
        self.sample_edit.setPlaceholderText("Type or paste any text…")
        lay.addWidget(self.sample_edit)
        self.strip = TokenStrip()
        area = QtWidgets.QScrollArea()
        area.setWidgetResizable(True)
        area.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        area.setWidget(self.strip)
        lay.addWidget(area, 1)
        row = QtWidgets.QHBoxLayout()
        self.sample_stats = muted_label()
        row.addWidget(self.sample_stats, 1)
        self.show_ids = QtWidgets.QCheckBox("Show token ids")
        self.same_color = QtWidgets.QCheckBox("Same token, same colour")
        self.show_ids.toggled.connect(self.strip.set_show_ids)
        self.same_color.toggled.connect(lambda on: self.strip.set_color_mode("id" if on else "alternate"))
        row.addWidget(self.show_ids)
        row.addWidget(self.same_color)
        lay.addLayout(row)
        self.body.addWidget(box, 1)

        self._sample_timer = QtCore.QTimer(self, singleShot=True, interval=120)
        self._sample_timer.timeout.connect(self._update_sample)
        self.sample_edit.textChanged.connect(self._sample_timer.start)
        self.kind_combo.currentIndexChanged.connect(self._settings_changed)
        self.vocab_spin.valueChanged.connect(self._settings_changed)
        self.set_config(TokenizerConfig())

    # -- config ------------------------------------------------------------------------------

    def config(self) -> TokenizerConfig:
        return TokenizerConfig(kind=self.kind_combo.currentData(), vocab_size=self.vocab_spin.value(), path=self._path)

    def set_config(self, cfg: TokenizerConfig) -> None:
        with QtCore.QSignalBlocker(self.kind_combo), QtCore.QSignalBlocker(self.vocab_spin):
            self.kind_combo.setCurrentIndex(max(0, self.kind_combo.findData(cfg.kind)))
            self.vocab_spin.setValue(cfg.vocab_size)
        self._set_path(cfg.path, emit=False)
        self._settings_changed()

    def set_corpus(self, cfg: CorpusConfig, ok: bool = True) -> None:
        """The corpus the tokenizer is (to be) trained on; ok=False while it has errors."""
        self._corpus_cfg, self._corpus_ok = cfg, ok
        self._update_stale()

    def set_sample_text(self, text: str) -> None:
        if text:
            self.sample_edit.setPlainText(text)

    def tokenizer(self):
        return None if self._result is None else self._result.tokenizer

    def _key(self) -> tuple:
        return (self._corpus_cfg.paths, self._corpus_cfg.glob, self._corpus_cfg.text_field,
                self._corpus_cfg.encoding_errors, self.config())

    def is_stale(self) -> bool:
        return self._trained_for != self._key()

    def _set_path(self, path: str, emit: bool = True) -> None:
        self._path = path
        self.path_label.setText(path or "trained on the corpus")
        self.path_label.setToolTip(path)
        self.clear_path_button.setVisible(bool(path))
        self.kind_combo.setEnabled(not path)
        self.vocab_spin.setEnabled(not path)
        if emit:
            self._settings_changed()

    def _choose_file(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Use a tokenizer.json", "", "Tokenizer (*.json)")
        if path:
            self._set_path(path)

    def _settings_changed(self, *_a) -> None:
        if self._result is None:
            self.vocabChanged.emit(self.vocab_spin.value(), False)
        self._update_stale()
        self.configChanged.emit()

    def _update_stale(self) -> None:
        if self._result is None:
            self.stale_label.setText("Not trained yet. Training a run also trains it (and caches it).")
        elif self.is_stale():
            self.stale_label.setText("<span style='color:#b26a00'>The settings or the corpus changed since this "
                                     "tokenizer was trained: train it again to see the new one.</span>")
        else:
            self.stale_label.setText("Up to date: the next training run uses this tokenizer.")
        self.train_button.setEnabled(self._training is None and self._corpus_ok and getattr(self, "_editable", True))
        self._update_summary()

    def _update_summary(self) -> None:
        kind = self.kind_combo.currentData()
        if self._result is not None and not self.is_stale():
            self.set_summary(f"{kind} · {self._result.vocab_size:,} tokens")
        else:
            self.set_summary(f"{kind} · up to {self.vocab_spin.value():,}")

    # -- training ----------------------------------------------------------------------------

    def train(self) -> None:
        if self._training is not None:
            return
        show_error(self.error, "")
        self._training = self._key()
        self.progress.show()
        self.progress_label.setText("Starting…")
        self.train_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self._trainer.start(train_for_panel, self._corpus_cfg, self.config())

    def cancel(self) -> None:
        if self._training is not None:
            self._trainer.job.cancel()  # asked to stop, not forgotten: "Cancelled." and its end follow
            self.progress_label.setText("Cancelling…")

    def is_training(self) -> bool:
        return self._training is not None

    def _job_ended(self) -> None:
        self._training = None
        self.progress.hide()
        self.cancel_button.setEnabled(False)
        self._update_stale()

    def _trained(self, result: TrainedTokenizer) -> None:
        self._result = result
        self._trained_for = self._training
        self.progress_label.setText("")
        L = self.result_labels
        L["vocab"].setText(f"<b>{result.vocab_size:,}</b> tokens ({result.kind})")
        cpt = result.sample_chars / max(1, result.sample_tokens)
        L["cpt"].setText(f"<b>{cpt:.2f}</b> on the corpus sample")
        L["used"].setText(f"{result.sample_distinct:,} of {result.vocab_size:,} "
                          f"({100 * result.sample_distinct / max(1, result.vocab_size):.0f}%) appear in the sample")
        L["tokens"].setText(f"{result.sample_chars:,} characters → {result.sample_tokens:,} tokens")
        self.vocabChanged.emit(result.vocab_size, True)
        self._update_sample()
        self._update_stale()

    def showEvent(self, e) -> None:
        super().showEvent(e)
        if (self.auto_train and self._training is None and self._corpus_ok and self.is_stale()
                and getattr(self, "_editable", True)):
            QtCore.QTimer.singleShot(50, self.train)

    # -- the sample --------------------------------------------------------------------------

    def _update_sample(self) -> None:
        tok = self.tokenizer()
        text = self.sample_edit.toPlainText()
        if tok is None:
            self.strip.set_tokens([], [])
            self.sample_stats.setText("Train the tokenizer to see how this text splits.")
            return
        ids = tok.encode(text)
        self.strip.set_tokens(tok.token_texts(ids), ids)
        unk = sum(1 for t in tok.token_texts(ids) if t == "<|unk|>")
        extra = f"  ·  <span style='color:{theme.ERROR_COLOR}'>{unk} unknown</span>" if unk else ""
        self.sample_stats.setText(f"{len(text):,} characters → {len(ids):,} tokens  ·  "
                                  f"{len(text) / max(1, len(ids)):.2f} characters per token  ·  "
                                  f"{len(set(ids)):,} distinct{extra}")

    def set_editable(self, editable: bool) -> None:
        self._editable = editable
        self.kind_combo.setEnabled(editable and not self._path)
        self.vocab_spin.setEnabled(editable and not self._path)
        for w in (self.load_button, self.clear_path_button):
            w.setEnabled(editable)
        self._update_stale()

    def set_presentation(self, scale: float) -> None:
        self.strip.set_presentation(scale)

    def shutdown(self) -> None:
        self._trainer.cancel()
