"""Inside the model: switch heads off, read each layer's guess, follow one token through training.

Three views of one model and one probe text, computed by ``engine.interpret`` in background jobs:

- **Head knock-out**: a layer x head grid of how much the probe's loss rises when that head alone
  is zeroed (every head measured once, on Measure). Click heads to knock them out together: the
  probe's tokens are then coloured by how much worse (red) or better (blue) each prediction got,
  and their tooltips show the prediction before and after.
- **Layer by layer** (logit lens): for every position, what the residual stream after the
  embeddings and after each block would predict if it were the last layer; green cells are
  right (the token that really came next), the shade is the probability.
- **Across training**: one query token's attention row in every snapshot of the run, for a layer
  and head: the moment a head starts to look somewhere shows as a change of colour down the rows.

The model comes from a run folder (its latest checkpoint), like the Generate page, or from the
paused training run (the live model, borrowed through ``session.hold_live_model()`` for the few
forward passes a measurement takes).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from ..bridge import JobSlot, model_to_use
from ..jobs import inside as jobs
from ..jobs.models import load_checkpoint
from ..widgets.flow import FlowRow
from ..widgets.matrix_view import MatrixView
from ..widgets.token_strip import TokenStrip
from . import Panel, card, error_label, muted_label, show_error

WORSE = QtGui.QColor(229, 115, 115)    # a token the knock-out made harder to predict
BETTER = QtGui.QColor(100, 160, 220)   # ... easier
RIGHT = QtGui.QColor(200, 230, 201)    # logit lens: the layer's guess is the real next token
JOB_KINDS = ("load", "measure", "knock_out", "read_snapshots")


class InsidePanel(Panel):
    title = "Inside"
    subtitle = ("Switch attention heads off and see what the model loses; read what each layer would "
                "predict; follow one token's attention through training.")

    def __init__(self, parent=None):
        super().__init__(parent)
        self._session = None
        self._trained = None
        self._run_dir: str | None = None
        # One job of each kind: a newer one drops the result of the one before.
        self._jobs = {kind: JobSlot(self, f"inside {kind}", on_failed=functools.partial(self._job_failed, kind),
                                    on_ended=functools.partial(self._job_ended, kind)) for kind in JOB_KINDS}
        self._running: set[str] = set()      # kinds whose latest job has not ended yet
        self._result: dict | None = None     # the last measurement
        self._heads: set[tuple[int, int]] = set()
        self._knockout = None
        self._history = None
        self._scale = 1.0

        # -- model and probe ------------------------------------------------------------------
        box, bl = card("Model and probe text", QtWidgets.QVBoxLayout())
        row = FlowRow()  # wraps on a narrow page
        self.checkpoint_radio = QtWidgets.QRadioButton("Checkpoint")
        self.live_radio = QtWidgets.QRadioButton("Paused training run (live)")
        self.live_radio.setToolTip("The model of the run going on now, while it is paused")
        self.checkpoint_radio.setChecked(True)
        self.live_radio.setEnabled(False)
        group = QtWidgets.QButtonGroup(self)
        group.addButton(self.checkpoint_radio)
        group.addButton(self.live_radio)
        self.open_button = QtWidgets.QPushButton("Open run folder…")
        row.add(self.checkpoint_radio, self.live_radio, self.open_button)
        bl.addWidget(row)
        self.source_label = muted_label("No model yet: open a run folder (or pause a training run).")
        self.source_label.setWordWrap(True)
        bl.addWidget(self.source_label)
        prow = QtWidgets.QHBoxLayout()
        prow.addWidget(QtWidgets.QLabel("Probe text"))
        self.probe_edit = QtWidgets.QLineEdit()
        self.probe_edit.setPlaceholderText("the text to look at (empty: the run's own probe text)")
        prow.addWidget(self.probe_edit, 1)
        self.measure_button = QtWidgets.QPushButton("Measure")
        self.measure_button.setDefault(True)
        prow.addWidget(self.measure_button)
        bl.addLayout(prow)
        self.error = error_label()
        bl.addWidget(self.error)
        self.stale_label = muted_label()  # results of an earlier step of a model that has trained on
        self.stale_label.hide()
        bl.addWidget(self.stale_label)
        self.body.addWidget(box)

        self.tabs = QtWidgets.QTabWidget()
        self.body.addWidget(self.tabs, 1)

        # -- head knock-out -------------------------------------------------------------------
        ko = QtWidgets.QWidget()
        kl = QtWidgets.QVBoxLayout(ko)
        kl.addWidget(muted_label("Each cell: how much the probe's loss rises (nats) when that head alone is "
                                 "switched off (red: the model needs it). Click heads to switch them off "
                                 "together."))
        self.heads_view = MatrixView(colormap="diverging", levels=(-1.0, 1.0), value_format="{:.2f}",
                                     row_title="layer", col_title="head", colorbar_title="loss change",
                                     describe=self._describe_head, empty_text="Press Measure")
        self.heads_view.setMinimumHeight(160)
        self.heads_view.cellClicked.connect(self.toggle_head)
        kl.addWidget(self.heads_view, 2)
        self.knockout_label = muted_label("No head switched off.")
        kl.addWidget(self.knockout_label)
        self.clear_button = QtWidgets.QPushButton("Switch all back on")
        kl.addWidget(self.clear_button, 0, QtCore.Qt.AlignmentFlag.AlignLeft)
        self.probe_strip = TokenStrip()
        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        scroll.setWidget(self.probe_strip)
        scroll.setMinimumHeight(70)
        kl.addWidget(scroll, 1)
        self.tabs.addTab(ko, "Head knock-out")

        # -- logit lens -----------------------------------------------------------------------
        lens = QtWidgets.QWidget()
        ll = QtWidgets.QVBoxLayout(lens)
        ll.addWidget(muted_label("What each layer would predict after each token if it were the last one "
                                 "(the final LayerNorm and the output embedding applied to its residual "
                                 "stream). Green: the token that really came next; darker: more sure."))
        self.lens_table = QtWidgets.QTableWidget()
        self.lens_table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.lens_table.horizontalHeader().setDefaultSectionSize(56)
        ll.addWidget(self.lens_table, 1)
        self.tabs.addTab(lens, "Layer by layer")

        # -- across training ------------------------------------------------------------------
        hist = QtWidgets.QWidget()
        hl = QtWidgets.QVBoxLayout(hist)
        hl.addWidget(muted_label("Click a token of the run's probe text: its attention in every snapshot "
                                 "of the run, one row per snapshot, for the layer and head chosen."))
        self.history_strip = TokenStrip()
        hl.addWidget(self.history_strip)
        hrow = FlowRow()
        self.layer_combo = QtWidgets.QComboBox()
        self.head_combo = QtWidgets.QComboBox()
        hrow.add(QtWidgets.QLabel("Layer"), self.layer_combo, QtWidgets.QLabel("Head"), self.head_combo)
        hl.addWidget(hrow)
        self.history_view = MatrixView(colormap="sequential", levels=(0.0, 1.0), value_format="{:.2f}",
                                       row_title="step", col_title="key token", colorbar_title="attention",
                                       empty_text="Open a run with attention snapshots, then click a token")
        self.history_view.setMinimumHeight(160)
        hl.addWidget(self.history_view, 1)
        self.history_label = muted_label()
        hl.addWidget(self.history_label)
        self.tabs.addTab(hist, "Across training")

        self.open_button.clicked.connect(self._choose_run)
        self.measure_button.clicked.connect(self.measure)
        self.probe_edit.returnPressed.connect(self.measure)
        self.clear_button.clicked.connect(self.clear_heads)
        self.history_strip.tokenClicked.connect(self.show_history)
        self.layer_combo.currentIndexChanged.connect(lambda _i: self._draw_history())
        self.head_combo.currentIndexChanged.connect(lambda _i: self._draw_history())
        group.buttonToggled.connect(lambda *_a: self._source_changed())
        self._update_controls()

    # -- where the model comes from ----------------------------------------------------------

    def set_session(self, session) -> None:
        self._session = session
        session.stateChanged.connect(lambda _s: self._on_session())
        session.paused.connect(lambda *_a: self._on_session())

    def _on_session(self) -> None:
        """A paused run is the model to look at unless the person loaded another run's checkpoint."""
        if self.live_available() and not self.live_radio.isChecked():
            tm = self._trained
            other = tm is not None and Path(tm.path).parent.parent.resolve() != Path(self._session.run_dir).resolve()
            if not other and not self.is_busy():
                self.live_radio.setChecked(True)  # -> _source_changed
                return
        self._update_controls()

    def _source_changed(self) -> None:
        show_error(self.error, "")
        if self.live_radio.isChecked() and self._session is not None and self._session.run_dir:
            lent = self._session.live_model()
            if lent is not None:
                self._run_dir = str(self._session.run_dir)
                self._fill_history_pickers(lent[0].config.n_layer, lent[0].config.n_head)
                self._load_history_tokens()
        elif self._trained is not None:
            self._run_dir = str(self._trained.path.parent.parent)
            self._fill_history_pickers(self._trained.model.config.n_layer, self._trained.model.config.n_head)
            self._load_history_tokens()
        self._update_controls()

    def _default_probe(self) -> str:
        """The probe text of the run being looked at (a paused run keeps its current one in config.toml)."""
        if self.live_radio.isChecked() and self._session is not None and self._session.run_dir:
            from workbench.engine.config import load_experiment
            from workbench.engine.errors import WorkbenchError

            try:
                return load_experiment(Path(self._session.run_dir) / "config.toml").training.probe_text
            except (WorkbenchError, OSError):
                return ""
        return self._trained.experiment.training.probe_text if self._trained is not None else ""

    def live_available(self) -> bool:
        return self._session is not None and self._session.live_model() is not None

    def set_run(self, path: str | Path) -> None:
        """Load a run folder's latest checkpoint (in the background) and its snapshots' probe."""
        path = Path(path)
        self.checkpoint_radio.setChecked(True)
        self.source_label.setText(f"Loading {path}…")
        show_error(self.error, "")
        self._start("load", load_checkpoint, str(path), False, on_done=lambda tm: self._loaded(tm, path))
        self._update_controls()

    def trained(self):
        """The loaded checkpoint (``engine.loading.TrainedModel``) or None."""
        return self._trained

    def _loaded(self, trained, path: Path) -> None:
        self._trained = trained
        self._run_dir = str(trained.path.parent.parent)
        if not self.probe_edit.text():
            self.probe_edit.setText(trained.experiment.training.probe_text)
        self.set_summary(f"step {trained.step:,}")
        self._fill_history_pickers(trained.model.config.n_layer, trained.model.config.n_head)
        self._load_history_tokens()
        self._update_controls()

    def _choose_run(self) -> None:
        from workbench import paths

        start = str(paths.runs_dir()) if paths.runs_dir().exists() else ""
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Look inside a run's model", start)
        if folder:
            self.set_run(folder)

    def _hold(self):
        """(hold factory, lent) for the chosen source, or a message why there is no model."""
        return model_to_use(self._session, self._trained, live=self.live_radio.isChecked(),
                            loading="load" in self._running,
                            none_message="No model yet: open a run folder (or pause a training run).")

    # -- jobs ----------------------------------------------------------------------------------

    def _start(self, kind: str, fn, *args, on_done) -> None:
        """Run ``fn`` in the background; a newer job of the same kind supersedes this one (its
        result is dropped); a failure is shown on the page."""
        self._running.add(kind)
        self._jobs[kind].start(fn, *args, on_done=lambda value: self._job_done(kind, on_done, value))

    def _job_done(self, kind: str, on_done, value) -> None:
        self._running.discard(kind)
        on_done(value)
        self._update_controls()

    def _job_failed(self, kind: str, message: str, _details: str) -> None:
        self._running.discard(kind)
        show_error(self.error, f"Could not {kind.replace('_', ' ')}: {message}")
        if kind == "load":
            self.source_label.setText("No model loaded.")
        self._update_controls()

    def _job_ended(self, kind: str) -> None:
        if kind in self._running:  # cancelled from inside (neither result nor failure)
            self._running.discard(kind)
            self._update_controls()

    def is_busy(self) -> bool:
        return bool(self._running)

    def wait(self, msecs: int = 30000) -> bool:
        """Wait for the running jobs (tests and scripts), delivering their results."""
        deadline = QtCore.QDeadlineTimer(msecs)
        while self._running and not deadline.hasExpired():
            for kind in list(self._running):
                self._jobs[kind].wait(max(1, int(deadline.remainingTime())))
            QtWidgets.QApplication.processEvents()
        return not self._running

    # -- measuring -----------------------------------------------------------------------------

    def measure(self) -> bool:
        got = self._hold()
        if isinstance(got, str):
            show_error(self.error, got)
            return False
        hold, (model, tok, _) = got
        text = self.probe_edit.text() or self._default_probe()
        if not self.probe_edit.text() and text:
            self.probe_edit.setText(text)
        if len(tok.encode(text)) < 2:
            show_error(self.error, "Type a probe text of at least two tokens (this run has none of its own)."
                       if not text else "Type a probe text of at least two tokens.")
            return False
        show_error(self.error, "")
        self._heads.clear()
        self._start("measure", jobs.measure, hold, text, on_done=self._measured)
        self._update_controls()
        return True

    def _measured(self, result: dict) -> None:
        self._result = result
        self._result["source"] = "live" if self.live_radio.isChecked() else "checkpoint"
        self._knockout = result["base"]
        table = result["table"]
        L, H = table.delta.shape
        top = float(np.abs(table.delta).max()) or 1.0
        # reversed levels: a head whose removal raises the loss is red, like the tokens it then loses
        self.heads_view.set_levels((top, -top))
        self.heads_view.set_matrix(table.delta, [str(i) for i in range(L)], [str(h) for h in range(H)])
        layer, head, value = table.strongest()
        self.set_summary(f"step {result['step']:,} · head {layer}.{head} matters most")
        self.knockout_label.setText(
            f"Loss on the probe: {table.base_loss:.3f} nats over {table.positions} tokens. Head {layer}.{head} "
            f"matters most ({value:+.3f} nats without it). Click heads to switch them off.")
        self._draw_knockout()
        self._draw_lens(result["lens"])

    def toggle_head(self, layer: int, head: int) -> None:
        """Switch a head off (or back on) and measure the probe without the heads switched off."""
        if self._result is None:
            return
        self._heads ^= {(layer, head)}
        self._run_knockout()

    def clear_heads(self) -> None:
        if self._heads:
            self._heads.clear()
            self._run_knockout()

    def knocked_out_heads(self) -> list[tuple[int, int]]:
        return sorted(self._heads)

    def _run_knockout(self) -> None:
        got = self._hold()
        if isinstance(got, str):
            show_error(self.error, got)
            return
        self._start("knock_out", jobs.knock_out, got[0], self._result["ids"], sorted(self._heads),
                    on_done=self._knocked_out)
        self._update_controls()

    def _knocked_out(self, result) -> None:
        self._knockout = result
        self._draw_knockout()

    def _draw_knockout(self) -> None:
        r = self._knockout
        if r is None:
            return
        diff = r.losses - r.base_losses  # (T-1,): the change of predicting token i+1
        top = max(float(np.abs(diff).max()), 1e-6)
        colors, tips = [QtGui.QColor("#eeeeee")], [f"{r.tokens[0]!r}: the first token is not predicted"]
        for i, d in enumerate(diff):
            target = WORSE if d > 0 else BETTER
            share = min(1.0, abs(d) / top) if r.heads else 0.0
            c = QtGui.QColor("#f4f4f4")
            colors.append(QtGui.QColor(
                round(c.red() + (target.red() - c.red()) * share),
                round(c.green() + (target.green() - c.green()) * share),
                round(c.blue() + (target.blue() - c.blue()) * share)))
            tips.append(f"{r.tokens[i + 1]!r} after {r.tokens[i]!r}\nintact: predicts {r.base_top[i]!r}, "
                        f"loss {r.base_losses[i]:.3f}" + (f"\nswitched off: predicts {r.top[i]!r}, loss "
                                                          f"{r.losses[i]:.3f} ({d:+.3f})" if r.heads else ""))
        self.probe_strip.set_tokens(r.tokens, colors=colors, tooltips=tips)
        if r.heads:
            names = ", ".join(f"{l}.{h}" for l, h in r.heads)
            self.knockout_label.setText(
                f"Switched off: {names}. Loss {r.base_losses.mean():.3f} → {r.losses.mean():.3f} nats "
                f"({r.delta:+.3f}); {len(r.changed_predictions())} of {len(r.top)} predictions changed "
                f"(red: harder to predict, blue: easier).")
        self.heads_view.set_marked(r.heads)

    def _describe_head(self, i: int, j: int, value: float) -> str:
        state = "switched off" if (i, j) in self._heads else "on"
        return f"layer {i} head {j} ({state}): loss {value:+.3f} nats when switched off alone. Click to toggle."

    def _draw_lens(self, lens) -> None:
        t = self.lens_table
        rows = len(lens.top_texts)
        t.clear()
        t.setRowCount(rows)
        t.setColumnCount(len(lens.tokens))
        t.setVerticalHeaderLabels(["embeddings"] + [f"after layer {l}" for l in range(rows - 1)])
        t.setHorizontalHeaderLabels([repr(x)[1:-1] for x in lens.tokens])
        for r in range(rows):
            for c in range(len(lens.tokens)):
                guess = lens.top_texts[r][c]
                item = QtWidgets.QTableWidgetItem(repr(guess)[1:-1])
                p = float(lens.top_probs[r, c])
                right = c + 1 < len(lens.tokens) and guess == lens.tokens[c + 1]
                base = RIGHT if right else QtGui.QColor(230, 230, 230)
                shade = 0.35 + 0.65 * p
                item.setBackground(QtGui.QColor(round(255 - (255 - base.red()) * shade),
                                                round(255 - (255 - base.green()) * shade),
                                                round(255 - (255 - base.blue()) * shade)))
                tip = f"after {lens.tokens[c]!r}, layer row {r}: predicts {guess!r} ({p:.2f})"
                if c + 1 < len(lens.tokens):
                    tip += f"\nreal next token {lens.tokens[c + 1]!r}: {lens.next_probs[r, c]:.2f}"
                item.setToolTip(tip)
                t.setItem(r, c, item)

    def lens_texts(self) -> list[list[str]]:
        t = self.lens_table
        return [[t.item(r, c).text() for c in range(t.columnCount())] for r in range(t.rowCount())]

    # -- across training -----------------------------------------------------------------------

    def _fill_history_pickers(self, n_layer: int, n_head: int) -> None:
        for combo, n in ((self.layer_combo, n_layer), (self.head_combo, n_head)):
            combo.blockSignals(True)
            combo.clear()
            combo.addItems([str(i) for i in range(n)])
            combo.blockSignals(False)
        self.layer_combo.setCurrentIndex(n_layer - 1)

    def _load_history_tokens(self) -> None:
        """The run's latest snapshot's tokens, to click a query in."""
        from workbench.engine import checkpoint as ckpt

        files = ckpt.list_attention(Path(self._run_dir) / "attention") if self._run_dir else []
        if not files:
            self.history_strip.clear()
            self.history_label.setText("This run has no attention snapshots.")
            return
        _, _, tokens, ids = ckpt.load_attention(files[-1])
        self.history_strip.set_tokens(tokens, ids)
        self.history_label.setText(f"{len(files)} snapshots; click a token above.")

    def show_history(self, query: int) -> None:
        if not self._run_dir or query < 0:
            return
        self.history_strip.set_selected(query)
        self._start("read_snapshots", jobs.history, self._run_dir, query, on_done=self._got_history)

    def _got_history(self, hist) -> None:
        self._history = hist
        self._draw_history()

    def _draw_history(self) -> None:
        h = self._history
        if h is None:
            return
        layer, head = max(0, self.layer_combo.currentIndex()), max(0, self.head_combo.currentIndex())
        rows = h.rows[:, layer, head, :h.query + 1]  # causal: keys up to the query
        self.history_view.set_matrix(rows, [f"{s:,}" for s in h.steps],
                                     [repr(t)[1:-1] for t in h.tokens[:h.query + 1]])
        strongest = int(rows[-1].argmax())
        self.history_label.setText(
            f"Token {h.query} {h.tokens[h.query]!r}, layer {layer} head {head}: at step {h.steps[-1]:,} it looks "
            f"most at {h.tokens[strongest]!r} ({rows[-1, strongest]:.2f})"
            + (f"; {h.skipped} snapshots of another probe text left out" if h.skipped else "") + ".")

    # -- state -----------------------------------------------------------------------------------

    def current_step(self) -> int | None:
        """The step of the model the page would measure now."""
        if self.live_radio.isChecked():
            lent = self._session.live_model() if self._session is not None else None
            return lent[2] if lent else None
        return self._trained.step if self._trained is not None else None

    def _update_stale(self) -> None:
        r = self._result
        now = self.current_step()
        stale = r is not None and now is not None and now != r["step"]
        self.stale_label.setVisible(stale)
        if stale:
            self.stale_label.setText(f"These results are of step {r['step']:,}; the model is now at step {now:,}. "
                                     f"Press Measure to look at it again.")

    def _update_controls(self) -> None:
        live = self.live_available()
        self.live_radio.setEnabled(live)
        if not live and self.live_radio.isChecked():
            self.checkpoint_radio.setChecked(True)
        busy = "measure" in self._running or "load" in self._running
        self.measure_button.setEnabled(not busy)
        self.measure_button.setText("Measuring…" if "measure" in self._running else "Measure")
        if self.live_radio.isChecked():
            lent = self._session.live_model()
            self.source_label.setText(f"The paused run's model at step {lent[2]:,}" if lent else "")
        elif self._trained is not None:
            tm = self._trained
            self.source_label.setText(f"{tm.path.parent.parent.name} · step {tm.step:,} · "
                                      f"{tm.model.config.n_layer} layers x {tm.model.config.n_head} heads")
        self._update_stale()

    def set_presentation(self, scale: float) -> None:
        self._scale = scale
        for view in (self.heads_view, self.history_view):  # a few layers still get readable cells
            view.setMinimumHeight(int(160 * max(1.0, scale)))
        for w in (self.heads_view, self.history_view, self.probe_strip, self.history_strip):
            w.set_presentation(scale)
