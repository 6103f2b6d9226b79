"""Generation playground: type a prompt, sample a continuation, and see where each token looked.

The model comes from one of two places, and the page always says which one is in use:

- a **checkpoint**: a run folder (its latest checkpoint) or a checkpoint file, chosen with the
  buttons or given with ``set_run(path)``, loaded on the CPU by ``jobs.models.load_checkpoint``
  in a background job, so the window never freezes;
- the **live model of a paused run**: the ``TrainingSession`` handed over with
  ``set_session(session)``. Generation runs only while the run is paused. Each token is computed
  inside ``session.hold_live_model()``, so when the person presses Resume the worker waits for
  the token under way (one forward pass), the generation job ends itself (the model is no longer
  lent), and the page cancels it on the session's ``stateChanged`` too.

Tokens are sampled by ``jobs.generate.stream_tokens`` in a background job, which appends each
``GeneratedToken`` to the page's buffer (``_stream``) and signals it; the page shows them at the
chosen pace (``PACES``: 20 tokens a second by default, so that one sees the model write; the model
is not slowed, and the text is the same at any pace), or, at "as fast as possible", redraws the
token strip at most every ``FLUSH_MS`` milliseconds. Prompt tokens are grey chips, generated tokens
are coloured by the model's own probability of them (orange = unlikely, blue = likely; the tooltip
has the numbers). Clicking a generated token shows what it looked at (``attention.TokenAttention``).

What the main window uses: ``set_session(session)`` once (the page follows the session's
``stateChanged`` and ``paused``), ``set_run(path)`` (e.g. a run that finished), ``set_presentation``;
the sidebar shows ``summary()``, e.g. "step 2,000 · 120 tokens". Scripts and tests: ``wait(msecs)``
(loading and generating), ``generate()``, ``stop()``, ``generated_tokens()``, ``select_token(i)``,
``attention_row()``, ``settings()``, ``validate()``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from ... import theme
from ...bridge import JobSlot, model_to_use
from ...jobs.generate import stream_tokens
from ...jobs.models import load_checkpoint
from ...widgets.token_strip import TokenStrip
from ...widgets.flow import FlowRow, WrapLabel
from .. import Panel, card, error_label, human_count, muted_label, show_error
from .attention import TokenAttention
from .sampling import SamplingFields

FLUSH_MS = 60      # streamed tokens are drawn at most this often
# A small model writes 200 tokens in well under a second: too fast to see it write. The page shows
# them at a pace (display only; the model is not slowed): 20 a second reads like someone typing.
PACES = (0, 5, 10, 20, 50, 100)  # tokens shown per second; 0: as they come
DEFAULT_PACE = 20
PROMPT_COLOR = "#e4e4e4"
# the model's probability of a generated token: 0 -> orange, 0.5 -> light grey, 1 -> blue (pastels)
PROB_STOPS = ((0.0, (253, 205, 160)), (0.5, (238, 238, 238)), (1.0, (180, 211, 240)))



def prob_color(p: float) -> QtGui.QColor:
    """The chip colour of a token the model gave probability ``p``."""
    p = min(1.0, max(0.0, float(p)))
    for (p0, c0), (p1, c1) in zip(PROB_STOPS, PROB_STOPS[1:]):
        if p <= p1:
            t = (p - p0) / (p1 - p0)
            return QtGui.QColor(*[round(a + (b - a) * t) for a, b in zip(c0, c1)])
    return QtGui.QColor(*PROB_STOPS[-1][1])


class GeneratePanel(Panel):
    """The generation playground (see the module docstring for what the main window wires).

    Needs from the main window only ``set_session(session)``; it then follows the session itself:
    ``stateChanged`` (leaving "paused" cancels a generation on the live model) and ``paused``
    (the live model becomes available once the worker is blocked)."""

    title = "Generate"
    subtitle = ("Give the model a beginning and let it continue, one token at a time. Click a generated "
                "token to see which earlier tokens it looked at.")

    def __init__(self, parent=None):
        super().__init__(parent)
        self._session = None
        self._trained = None          # engine.loading.TrainedModel of the checkpoint source
        # One job of each kind: a new load (generation) drops the result of the one before.
        self._loader = JobSlot(self, "load checkpoint", on_done=self._loaded, on_failed=self._load_failed)
        self._sampler = JobSlot(self, "generate", on_progress=self._on_token,
                                on_done=lambda n: self._ended("done", n),
                                on_cancelled=lambda: self._ended("cancelled", None),
                                on_failed=lambda msg, _d: self._ended("failed", msg))
        self._loading = ""            # the path being loaded, until its model (or failure) is in
        self._sampling = False        # the model is generating, until the job's end is handled
        self._job_source = ""         # "checkpoint" / "live" of the running generation
        self._cancel_reason = ""
        self._stream: list = []       # every GeneratedToken of the running job, appended by its thread
        self._texts: list[str] = []   # prompt + generated, as shown
        self._ids: list[int] = []
        self._n_prompt = 0
        self._tokens: list = []       # GeneratedToken of each generated chip
        self._used = ""               # what produced the output shown ("checkpoint step 3 ...")
        self._used_step = 0
        self._selected = -1
        self._scale = 1.0
        self._settings = None
        self._message = ""            # the last problem that is not a setting (loading, starting, failing)
        self._flush_timer = QtCore.QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(FLUSH_MS)
        self._flush_timer.timeout.connect(self._flush)
        self._end: tuple | None = None   # how the job ended, while its tokens are still being shown
        self._limit: int | None = None   # Stop: no more tokens than this are shown
        self._pace_timer = QtCore.QTimer(self)
        self._pace_timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self._pace_timer.timeout.connect(self._pace_tick)

        # -- the model ------------------------------------------------------------------------
        model_box, ml = card("Model", QtWidgets.QVBoxLayout())
        row = FlowRow()  # wraps on a narrow page
        self.checkpoint_radio = QtWidgets.QRadioButton("Checkpoint")
        self.checkpoint_radio.setToolTip("A finished (or stopped) run: its latest checkpoint, or a checkpoint file")
        self.live_radio = QtWidgets.QRadioButton("Paused training run (live)")
        self.live_radio.setToolTip("The model of the run going on now, while it is paused: see what it has "
                                   "learnt so far. Resume stops a generation first.")
        self.checkpoint_radio.setChecked(True)
        self.live_radio.setEnabled(False)
        self.source_group = QtWidgets.QButtonGroup(self)
        self.source_group.addButton(self.checkpoint_radio)
        self.source_group.addButton(self.live_radio)
        row.add(self.checkpoint_radio, self.live_radio)
        row.add_stretch()
        self.open_run_button = QtWidgets.QPushButton("Open run folder…")
        self.open_file_button = QtWidgets.QPushButton("Open checkpoint file…")
        row.add(self.open_run_button, self.open_file_button)
        ml.addWidget(row)
        self.source_label = WrapLabel()
        self.source_label.setObjectName("statValue")
        self.source_label.setWordWrap(True)
        self.source_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        ml.addWidget(self.source_label)
        self.body.addWidget(model_box)

        # -- prompt and settings --------------------------------------------------------------
        gen_box, gl = card("Prompt and sampling", QtWidgets.QVBoxLayout())
        self.prompt_edit = QtWidgets.QPlainTextEdit()
        self.prompt_edit.setPlaceholderText("Type the beginning of a text (empty: start from <|endoftext|>). "
                                            "Ctrl+Enter generates.")
        self.prompt_edit.setTabChangesFocus(True)
        fm = self.prompt_edit.fontMetrics()
        self.prompt_edit.setFixedHeight(int(fm.lineSpacing() * 3.2 + 12))
        gl.addWidget(self.prompt_edit)
        fields = FlowRow(spacing=12)  # wraps on a narrow page, a label stays with its field
        self.sampling = SamplingFields(on_change=self._update_controls)
        self.fields = self.sampling.fields
        for row_widget in self.sampling.rows:
            fields.add(row_widget)
        pace_tip = ("How fast the tokens appear. The model generates as fast as it can; the page shows its "
                    "tokens at this pace so that a person (or an audience) can follow them one by one. Display "
                    "only: the text is the same at any pace.")
        self._pace_label = QtWidgets.QLabel("Pace")
        self._pace_label.setToolTip(pace_tip)
        self.pace_combo = QtWidgets.QComboBox()
        self.pace_combo.setObjectName("gen_pace")
        self.pace_combo.setToolTip(pace_tip)
        for tps in PACES:
            self.pace_combo.addItem(f"{tps:g} tokens/s" if tps else "as fast as possible", tps)
        self.pace_combo.setCurrentIndex(self.pace_combo.findData(DEFAULT_PACE))
        self.pace_combo.currentIndexChanged.connect(self._pace_changed)
        self._pace_changed()
        self.eos_check = self.sampling.eos_check
        fields.add(self.eos_check)
        fields.add_stretch()
        self.generate_button = QtWidgets.QPushButton("Generate")
        self.generate_button.setDefault(True)
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.stop_button.setEnabled(False)
        fields.add(self.generate_button, self.stop_button)
        gl.addWidget(fields)
        self.error = error_label()
        gl.addWidget(self.error)
        self.body.addWidget(gen_box)

        # -- output ---------------------------------------------------------------------------
        self.output_box, ol = card("Output")
        ol.setContentsMargins(6, 6, 6, 6)
        self.strip = TokenStrip()
        self.out_scroll = QtWidgets.QScrollArea()
        self.out_scroll.setWidgetResizable(True)
        self.out_scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.out_scroll.setWidget(self.strip)
        self.out_scroll.setMinimumHeight(90)
        ol.addWidget(self.out_scroll, 1)
        self.status_label = muted_label()
        status_row = QtWidgets.QHBoxLayout()  # the pace sits by the output it paces
        status_row.addWidget(self.status_label, 1)
        status_row.addWidget(self._pace_label)
        status_row.addWidget(self.pace_combo)
        ol.addLayout(status_row)

        # -- attention of the chosen token ----------------------------------------------------
        self.attention = TokenAttention()

        self.splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.output_box)
        self.splitter.addWidget(self.attention)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([300, 400])
        self.body.addWidget(self.splitter, 1)

        # -- connections ----------------------------------------------------------------------
        self.generate_button.clicked.connect(self.generate)
        self.stop_button.clicked.connect(self.stop)
        self.open_run_button.clicked.connect(self._choose_run)
        self.open_file_button.clicked.connect(self._choose_file)
        self.source_group.buttonToggled.connect(lambda *_a: self._update_controls())
        self.strip.tokenClicked.connect(self.select_token)
        self.out_scroll.verticalScrollBar().rangeChanged.connect(self._follow_end)
        # Ctrl+Enter in the prompt generates. Not a QShortcut: the window's Start has Ctrl+Return
        # too, and two shortcuts on one key are ambiguous, so neither fired
        self.prompt_edit.installEventFilter(self)
        self._update_controls()

    def eventFilter(self, obj, event) -> bool:
        if obj is self.prompt_edit and event.type() in (QtCore.QEvent.Type.ShortcutOverride,
                                                        QtCore.QEvent.Type.KeyPress):
            enter = event.key() in (QtCore.Qt.Key.Key_Return, QtCore.Qt.Key.Key_Enter)
            ctrl = event.modifiers() & ~QtCore.Qt.KeyboardModifier.KeypadModifier \
                == QtCore.Qt.KeyboardModifier.ControlModifier
            if enter and ctrl:
                event.accept()  # the override claims the key from the window's shortcuts
                if event.type() == QtCore.QEvent.Type.KeyPress:
                    self.generate()
                return event.type() == QtCore.QEvent.Type.KeyPress
        return super().eventFilter(obj, event)

    # =========================================================================================
    # where the model comes from

    def set_session(self, session) -> None:
        """The main window's ``TrainingSession``: its paused run's model can be used here."""
        if self._session is not None:
            with contextlib.suppress(RuntimeError, TypeError):
                self._session.stateChanged.disconnect(self.on_session_state)
            with contextlib.suppress(RuntimeError, TypeError):
                self._session.paused.disconnect(self._on_paused)
        self._session = session
        if session is not None:
            session.stateChanged.connect(self.on_session_state)
            session.paused.connect(self._on_paused)
            self.on_session_state(session.state)
        else:
            self._update_controls()

    def on_session_state(self, state: str) -> None:
        """The session's state changed. Leaving "paused" stops a generation on the live model."""
        if state != "paused" and self._sampling and self._job_source == "live":
            self._cancel_reason = "the run went on training"
            self._sampler.job.cancel()  # asked to stop, not forgotten: its end (cancelled) follows
        self._on_paused()

    def _on_paused(self, *_args) -> None:
        live = self.live_available()
        if live and self._trained is None and not self.is_generating():
            self.live_radio.setChecked(True)  # nothing else to generate from: use the run
        self._update_controls()

    def live_available(self) -> bool:
        return self._session is not None and self._session.live_model() is not None

    def source(self) -> str:
        """"live" or "checkpoint": the source the next Generate uses."""
        return "live" if self.live_radio.isChecked() else "checkpoint"

    def set_source(self, source: str) -> None:
        (self.live_radio if source == "live" else self.checkpoint_radio).setChecked(True)

    def set_run(self, path: str | Path) -> None:
        """Load a run folder (its latest checkpoint) or a checkpoint file, in the background."""
        if self.is_generating() and self._job_source == "checkpoint":
            self._cancel_reason = "another model is being loaded"
            self.stop()
        self.source_label.setText(f"Loading {path}…")
        self._message = ""
        self.checkpoint_radio.setChecked(True)
        self._loading = str(path)
        self._loader.start(load_checkpoint, str(path))
        self._update_controls()

    def _loaded(self, trained) -> None:
        self._trained = trained
        self._loading = ""
        self.set_summary(f"step {trained.step:,}")
        self._update_controls()

    def _load_failed(self, message: str, _details: str) -> None:
        path, self._loading = self._loading, ""
        self._message = f"Could not load {path}: {message}"
        self._update_controls()

    def trained(self):
        """The loaded checkpoint (``engine.loading.TrainedModel``) or None."""
        return self._trained

    def _choose_run(self) -> None:
        from workbench import paths

        start = str(paths.runs_dir()) if paths.runs_dir().exists() else ""
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Generate with a run's latest checkpoint", start)
        if folder:
            self.set_run(folder)

    def _choose_file(self) -> None:
        from workbench import paths

        start = str(paths.runs_dir()) if paths.runs_dir().exists() else ""
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Generate with a checkpoint", start,
                                                        "Checkpoints (*.json *.safetensors)")
        if path:
            self.set_run(path)

    def _describe_checkpoint(self) -> str:
        tm = self._trained
        if tm is None:
            return ""
        run = tm.path.parent.parent
        return (f"{run.name} · step {tm.step:,} · {human_count(tm.model.num_params())} parameters · "
                f"{tm.path.name}")

    # =========================================================================================
    # settings

    def settings(self):
        """The sampling settings typed in; raises ConfigError naming the setting when one is wrong."""
        return self.sampling.settings()

    def set_settings(self, settings) -> None:
        """Fill the fields from a ``SamplingSettings``."""
        self.sampling.set_settings(settings)

    def validate(self) -> str:
        """"" when the settings are fine, else the message (and the field is outlined in red)."""
        return self.sampling.validate()

    # =========================================================================================
    # generating

    def is_generating(self) -> bool:
        """A generation is under way, or its tokens are still being shown at the pace."""
        return self._sampling or self._end is not None

    def _model_for(self, source: str):
        """(hold context-manager factory, (model, tokenizer, step)) for the source, or a message."""
        return model_to_use(self._session, self._trained, live=source == "live", loading=self._loading,
                            none_message="No model yet: open a run folder or a checkpoint (or pause a training run).")

    def generate(self) -> bool:
        """Start generating with the prompt and settings typed in; False (and a message) when it
        cannot start."""
        if self.is_generating():
            return False
        message = self.validate()
        if message:
            show_error(self.error, message)
            return False
        self._message = ""
        settings = self.settings()
        source = self.source()
        found = self._model_for(source)
        if isinstance(found, str):
            self._message = found
            show_error(self.error, found)
            return False
        hold, (model, tokenizer, step) = found
        prompt = self.prompt_edit.toPlainText()
        ids = tokenizer.encode(prompt) if prompt else []
        if not ids:
            from workbench.engine.errors import TokenizerError

            try:
                ids = [tokenizer.special_id("eos")]
            except TokenizerError:
                self._message = ("The prompt is empty and this tokenizer has no <|endoftext|> to start from: "
                                 "type a few characters.")
                show_error(self.error, self._message)
                return False
        show_error(self.error, "")
        # the output starts again: the prompt's tokens as grey chips
        self._flush_timer.stop()
        self._pace_timer.stop()
        self._end, self._limit = None, None
        self._stream = []
        self._ids = list(ids)
        self._texts = list(tokenizer.token_texts(ids))
        self._n_prompt = len(ids)
        self._tokens = []
        self._selected = -1
        self.attention.reset_shape()
        if source == "live":
            run = getattr(self._session, "run_dir", None)
            self._used = f"the live model at step {step:,}" + (f" ({Path(run).name})" if run else "")
        else:
            self._used = f"checkpoint {self._trained.path.parent.parent.name}, step {step:,}"
        self._used_step = step
        self.output_box.setTitle(f"Output · from {'live model' if source == 'live' else 'checkpoint'}, "
                                 f"step {step:,}")
        self._redraw_strip()
        self._show_attention()
        self._cancel_reason = ""
        self._job_source = source
        self._settings = settings
        self._sampling = True
        self._sampler.start(stream_tokens, hold, list(ids), settings, "all", self._stream)
        self.status_label.setText(f"Generating with {self._used}…")
        self._update_controls()
        return True

    def stop(self) -> None:
        """Stop the generation under way: the tokens shown so far stay, the rest is dropped."""
        if not self.is_generating():
            return
        self._cancel_reason = self._cancel_reason or "stopped"
        self._limit = len(self._tokens)
        if self._sampling:
            self._sampler.job.cancel()  # asked to stop, not forgotten: _ended follows
        else:  # generated already, still being shown at the pace
            self._end = ("cancelled", None)
            self._finish()

    def wait(self, msecs: int = 30000) -> bool:
        """Tests and scripts: wait for a load and a generation under way, and draw what came
        (at once, whatever the pace)."""
        ok = True
        for slot in (self._loader, self._sampler):
            ok = slot.wait(msecs) and ok
        self._reveal(None)
        if self._end is not None and not self._sampling:
            self._finish()
        return ok

    # -- the pace: the model generates as fast as it can; the page shows the tokens at the pace

    def pace(self) -> float:
        """Tokens shown per second (0: as they come)."""
        return float(self.pace_combo.currentData() or 0)

    def set_pace(self, tokens_per_s: float) -> None:
        i = self.pace_combo.findData(tokens_per_s)
        if i < 0:
            self.pace_combo.addItem(f"{tokens_per_s:g} tokens/s", tokens_per_s)
            i = self.pace_combo.count() - 1
        self.pace_combo.setCurrentIndex(i)

    def _pace_changed(self, *_a) -> None:
        pace = self.pace()
        if pace > 0:
            self._pace_timer.setInterval(max(1, round(1000 / pace)))
        elif self.is_generating():  # as fast as possible: show what is waiting now
            self._pace_timer.stop()
            self._reveal(None)
            if self._end is not None:
                self._finish()

    def _waiting(self) -> int:
        """Tokens generated (and not dropped by Stop) that are not shown yet."""
        n = len(self._stream) if self._limit is None else min(len(self._stream), self._limit)
        return max(0, n - len(self._tokens))

    def _on_token(self, _tok) -> None:
        """A token was sampled: draw it, with any others that came meanwhile, within FLUSH_MS, or
        the next one at the pace."""
        if not self._sampling:
            return
        if self.pace() <= 0:
            if not self._flush_timer.isActive():
                self._flush_timer.start()
        elif not self._pace_timer.isActive():
            self._pace_tick()
            self._pace_timer.start()

    def _pace_tick(self) -> None:
        if self._waiting():
            self._reveal(1)
        elif self._end is not None:
            self._finish()
        else:
            self._pace_timer.stop()  # waiting for the model: the next token restarts the clock

    def _ended(self, how: str, value) -> None:
        self._sampling = False
        if self._limit is not None and how == "done":
            how = "cancelled"  # Stop came as the last token did: what is shown is what was asked for
        self._end = (how, value)
        if self.pace() <= 0 or not self._waiting() or how == "failed":
            self._reveal(None)
            self._finish()
        elif not self._pace_timer.isActive():
            self._pace_timer.start()
        self._update_controls()

    def _finish(self) -> None:
        """The generation has ended and every token it made (up to a Stop) is shown."""
        self._pace_timer.stop()
        self._flush_timer.stop()
        how, value = self._end or ("done", None)
        self._end = None  # (a Stop's limit stays until the next generation: late tokens are not shown)
        n = len(self._tokens)
        eos = ""
        if self._tokens and self._tokens[-1].text == "<|endoftext|>" and self._settings.stop_at_eos:
            eos = " (the model ended the text)"
        if how == "done":
            self.status_label.setText(f"{n:,} tokens from {self._used}{eos}. Click a coloured token to see "
                                      f"where it looked; the colour is the model's probability of it "
                                      f"(orange: unlikely, blue: likely).")
        elif how == "cancelled":
            why = self._cancel_reason or "the model is not available any more"
            self.status_label.setText(f"Stopped after {n:,} tokens: {why}. From {self._used}.")
        else:
            self.status_label.setText(f"Failed after {n:,} tokens.")
            self._message = f"Generation failed: {value}"
        self._cancel_reason = ""
        self.set_summary(f"step {self._used_step:,} · {n:,} tokens")
        self._update_controls()

    def _flush(self) -> None:
        self._reveal(None)

    def _reveal(self, count: int | None) -> None:
        """Show ``count`` more of the generated tokens (None: all that are waiting)."""
        self._flush_timer.stop()
        k = self._waiting() if count is None else min(count, self._waiting())
        if k <= 0:
            return
        start = len(self._tokens)
        new = self._stream[start:start + k]
        for tok in new:
            self._tokens.append(tok)
            self._ids.append(tok.id)
            self._texts.append(tok.text)
        first = new[0]
        if first.attention_all is not None and not self.attention.has_shape():
            self.attention.fill_pickers(*first.attention_all.shape[:2])
        self._redraw_strip()
        if self._sampling:
            self.status_label.setText(f"Generating with {self._used}… {len(self._tokens):,} tokens")
        elif self._end is not None:
            self.status_label.setText(f"Showing the tokens at {self.pace():g} a second: {len(self._tokens):,} of "
                                      f"{len(self._stream) if self._limit is None else self._limit:,} "
                                      f"(all generated) from {self._used}. Pace 'as fast as possible' "
                                      f"shows the rest.")

    def _follow_end(self, _lo: int, hi: int) -> None:
        """While tokens stream in, keep the newest in view."""
        if self.is_generating():
            self.out_scroll.verticalScrollBar().setValue(hi)

    def _redraw_strip(self) -> None:
        colors, tips = [], []
        n = len(self._texts)
        for i in range(n):
            if i < self._n_prompt:
                colors.append(PROMPT_COLOR)
                tips.append(f"prompt token {i + 1} of {self._n_prompt}\nid {self._ids[i]}\ntext {self._texts[i]!r}")
            else:
                tok = self._tokens[i - self._n_prompt]
                colors.append(prob_color(tok.model_prob))
                tips.append(f"generated token {i - self._n_prompt + 1} (position {tok.position})\n"
                            f"id {tok.id}\ntext {tok.text!r}\n"
                            f"model's probability {tok.model_prob:.3f}\n"
                            f"probability after temperature/top-k/top-p {tok.prob:.3f}\n"
                            f"click: what it looked at")
        self.strip.set_tokens(self._texts, self._ids, colors=colors, tooltips=tips, keep_selection=True)
        if 0 <= self._selected < n:
            self.strip.set_selected(self._selected)

    # =========================================================================================
    # output and attention

    def generated_tokens(self) -> list:
        """The ``GeneratedToken``s shown (drawn so far)."""
        return list(self._tokens)

    def prompt_count(self) -> int:
        return self._n_prompt

    def output_ids(self) -> list[int]:
        return list(self._ids)

    def select_token(self, index: int) -> None:
        """Show what the token at strip position ``index`` (prompt included) looked at."""
        if not 0 <= index < len(self._texts):
            return
        self._selected = index
        self.strip.set_selected(index)
        self._show_attention()

    def selected_token(self):
        i = self._selected - self._n_prompt
        return self._tokens[i] if 0 <= i < len(self._tokens) else None

    def set_head(self, layer: int, head: int) -> None:
        """Choose the layer and head (``MEAN`` = -1: the mean of the layer's heads)."""
        self.attention.set_head(layer, head)

    def attention_row(self) -> np.ndarray | None:
        """The weights shown for the chosen token, layer and head: one per context token."""
        return self.attention.row()

    def attention_tokens(self) -> list[str]:
        """The context tokens of the chosen token (what the row's weights are over)."""
        return self.attention.context()

    def _show_attention(self) -> None:
        self.attention.show_token(self.selected_token(), self._texts, self._ids,
                                  in_prompt=0 <= self._selected < self._n_prompt)

    # =========================================================================================

    def _update_controls(self, *_args) -> None:
        generating = self.is_generating()
        live = self.live_available()
        self.live_radio.setEnabled(live or self.source() == "live")
        message = self.validate()
        source = self.source()
        ready = (live if source == "live" else self._trained is not None)
        self.generate_button.setEnabled(not generating and ready)
        self.stop_button.setEnabled(generating)
        self.open_run_button.setEnabled(not (generating and self._job_source == "checkpoint"))
        self.open_file_button.setEnabled(self.open_run_button.isEnabled())
        show_error(self.error, message or self._message)
        # which model is in use
        if source == "live":
            if live:
                step = self._session.live_model()[2]
                text = f"In use: the live model of the paused run, step {step:,}."
            elif self._session is not None and self._session.state in ("running", "preparing"):
                text = "In use: the live model, but the run is training: pause it to generate."
            else:
                text = "In use: the live model, but no run is paused. Pause a run, or choose Checkpoint."
        elif self._loading:
            text = self.source_label.text()
        elif self._trained is not None:
            text = f"In use: checkpoint {self._describe_checkpoint()}"
        else:
            text = "No checkpoint loaded: open a run folder or a checkpoint file."
            if live:
                text += " (A paused run's live model is available.)"
        self.source_label.setText(text)
        self.source_label.setStyleSheet(f"color: {theme.MUTED};" if not ready else "")

    def set_presentation(self, scale: float) -> None:
        self._scale = scale
        self.strip.set_presentation(scale)
        self.attention.set_presentation(scale)
        # a few lines of output at the larger font: the page scrolls rather than squeeze them
        self.out_scroll.setMinimumHeight(int(90 * scale * scale))

