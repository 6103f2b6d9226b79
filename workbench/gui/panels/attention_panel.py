"""Attention panel: where each token looks, per layer and head, as the model trains.

The trainer records the attention of a fixed probe text every N steps (and on request); the
snapshots arrive through the bridge's one-slot mailbox. The big heatmap shows one head (or the
average of a layer's heads) with tokens on both axes; the grid beside it shows every head of
every layer, and clicking one selects it. Until the person picks a head, the page shows the most
telling one (``engine.patterns.telling_head``: the head whose attention does a task of the probe,
copy, reverse, brackets or the previous token) and says why. A timeline slider scrubs through
every snapshot of this run; for a finished run folder it reads the ``attention/`` snapshots from
disk (loaded only when shown).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtWidgets

from ..widgets.attention.grid import AttentionGrid
from ..widgets.attention.heatmap import AttentionHeatmap

from ..widgets.flow import FlowRow, ReflowSplitter, WrapLabel
from . import Panel, card, muted_label

MEAN = -1  # the head picker's "average of all heads"
HEATMAP_SHARE = 0.6  # of the page's smaller side: below that a projector shows no readable map
_STEP = re.compile(r"step_(\d+)\.safetensors$")


@dataclass
class Entry:
    step: int
    attention: np.ndarray | None = None  # (L, H, T, T)
    tokens: list[str] | None = None
    path: Path | None = None

    def load(self) -> None:
        if self.attention is None and self.path is not None:
            from workbench.engine.checkpoint import load_attention

            step, arr, tokens, _ids = load_attention(self.path)
            self.step, self.attention, self.tokens = step, arr, tokens


class AttentionPanel(Panel):
    title = "Attention"
    subtitle = ("Each row is a token of the probe text; the colours show which earlier tokens it looks at "
                "(bright = much attention). Heads specialise as training goes on: scrub the timeline to watch.")

    snapshotRequested = QtCore.Signal()
    probeTextApplied = QtCore.Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.entries: list[Entry] = []
        self._index = -1
        self._layer = 0
        self._head = 0
        self._run_dir: str | None = None
        self._active = False
        self._picked = False  # the person chose a head: automatic choices stop until the next run
        self.telling = None   # engine.patterns.TellingHead of the snapshot shown (None: nothing to score)

        # pickers and actions
        bar = FlowRow()  # wraps onto a second line on a narrow page (presentation mode)
        self.layer_combo = QtWidgets.QComboBox()
        self.layer_combo.setMinimumWidth(90)
        self.head_combo = QtWidgets.QComboBox()
        self.head_combo.setMinimumWidth(130)
        self.auto_levels = QtWidgets.QCheckBox("Stretch colours")
        self.auto_levels.setToolTip("Colours from 0 to the largest weight shown, instead of 0 to 1")
        self.sharpest_button = QtWidgets.QPushButton("Sharpest head")
        self.sharpest_button.setToolTip("Show the head whose tokens attend most sharply (the highest average "
                                        "of each row's largest weight): usually the most telling one")
        self.snapshot_button = QtWidgets.QPushButton("Snapshot now")
        self.snapshot_button.setToolTip("Record the attention at the next training step")
        self.snapshot_button.setEnabled(False)
        self.load_button = QtWidgets.QPushButton("Open a run's snapshots…")
        self.export_button = QtWidgets.QPushButton("Export PNG")
        bar.add(QtWidgets.QLabel("Layer"), self.layer_combo, QtWidgets.QLabel("Head"), self.head_combo,
                self.auto_levels, self.sharpest_button)
        bar.add_stretch()
        bar.add(self.snapshot_button, self.load_button, self.export_button)
        self.body.addWidget(bar)
        self.head_note = WrapLabel()  # which head is shown and why
        self.head_note.setObjectName("mutedLabel")
        self.body.addWidget(self.head_note)

        # the maps
        self.heatmap = AttentionHeatmap()
        self.grid = AttentionGrid()
        left, ll = card("One head")
        ll.setContentsMargins(6, 6, 6, 6)
        ll.addWidget(self.heatmap)
        right, rl = card("All heads (click one)")
        rl.setContentsMargins(6, 6, 6, 6)
        rl.addWidget(self.grid)
        self.splitter = ReflowSplitter()  # the grid goes below the heatmap on a narrow page
        self.splitter.setObjectName("attentionSplitter")
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setSizes([700, 460])
        self.stack = QtWidgets.QStackedWidget()
        self.empty = WrapLabel("No attention snapshots yet.\n\nStart a run (or press Demo): the first "
                                      "snapshot is taken before training begins, then every few steps.")
        self.empty.setObjectName("mutedLabel")
        self.empty.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.splitter)
        self.body.addWidget(self.stack, 1)

        # timeline
        tl = QtWidgets.QHBoxLayout()
        tl.setSpacing(8)
        tl.addWidget(QtWidgets.QLabel("Timeline"))
        self.timeline = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.timeline.setRange(0, 0)
        self.timeline.setEnabled(False)
        self.timeline.setPageStep(1)
        tl.addWidget(self.timeline, 1)
        self.step_label = QtWidgets.QLabel("—")
        self.step_label.setMinimumWidth(190)
        self.step_label.setObjectName("statValue")
        tl.addWidget(self.step_label)
        self.follow_check = QtWidgets.QCheckBox("Follow live")
        self.follow_check.setChecked(True)
        self.follow_check.setToolTip("Jump to each new snapshot as it arrives")
        tl.addWidget(self.follow_check)
        self.body.addLayout(tl)

        # probe text
        pl = QtWidgets.QHBoxLayout()
        pl.setSpacing(8)
        pl.addWidget(QtWidgets.QLabel("Probe text"))
        self.probe_edit = QtWidgets.QLineEdit()
        self.probe_edit.setPlaceholderText("empty: the start of the validation text")
        self.probe_edit.setToolTip("The text whose attention is recorded. Used by the next run; while "
                                   "training, Apply asks the run to switch to it at the next step.")
        pl.addWidget(self.probe_edit, 1)
        self.apply_probe = QtWidgets.QPushButton("Apply")
        pl.addWidget(self.apply_probe)
        self.body.addLayout(pl)
        # after the corpus changed: the probe text written for the earlier corpus was cleared (Undo)
        self.probe_note = QtWidgets.QWidget()
        self.probe_note.setObjectName("undoBar")
        nl = QtWidgets.QHBoxLayout(self.probe_note)
        nl.setContentsMargins(0, 0, 0, 0)
        self.probe_note_label = muted_label()
        self.probe_note_label.setWordWrap(True)
        self.probe_undo_button = QtWidgets.QPushButton("Undo")
        nl.addWidget(self.probe_note_label, 1)
        nl.addWidget(self.probe_undo_button)
        self.probe_note.hide()
        self.body.addWidget(self.probe_note)
        self.caption = muted_label()
        self.body.addWidget(self.caption)

        self.layer_combo.currentIndexChanged.connect(self._on_layer)
        self.head_combo.currentIndexChanged.connect(self._on_head)
        self.grid.headSelected.connect(self._pick)
        self.timeline.valueChanged.connect(self._scrubbed)
        self.follow_check.toggled.connect(self._follow_toggled)
        self.auto_levels.toggled.connect(self._on_levels)
        self.snapshot_button.clicked.connect(self.snapshotRequested)
        self.sharpest_button.clicked.connect(self.show_sharpest_head)
        self.apply_probe.clicked.connect(lambda: self.probeTextApplied.emit(self.probe_text()))
        self.probe_edit.returnPressed.connect(lambda: self.probeTextApplied.emit(self.probe_text()))
        self.load_button.clicked.connect(self._choose_run)
        self.export_button.clicked.connect(self._export_dialog)
        self._update_controls()

    # -- inputs -------------------------------------------------------------------------------

    def probe_text(self) -> str:
        return self.probe_edit.text()

    def set_probe_text(self, text: str) -> None:
        self.probe_edit.setText(text)

    def show_probe_note(self, message: str | None) -> None:
        """Say why the probe text changed, with an Undo button; None hides it."""
        self.probe_note_label.setText(message or "")
        self.probe_note.setVisible(bool(message))

    def follow_live(self) -> None:
        """A new run is watched live again, whatever the last run's timeline was left at."""
        self.follow_check.setChecked(True)

    def set_run_active(self, active: bool) -> None:
        self._active = active
        self.snapshot_button.setEnabled(active)
        self.load_button.setEnabled(not active)

    def reset(self) -> None:
        self.entries = []
        self._index = -1
        self._run_dir = None
        self._picked = False
        self.telling = None
        self._update_controls()

    def add_snapshot(self, snap, show: bool = False) -> None:
        """An events.AttentionSnapshot (from the bridge's mailbox). ``show``: the person asked for
        it, so it is shown even when the view does not follow the run."""
        entry = Entry(int(snap.step), np.asarray(snap.attention, dtype=np.float32), list(snap.tokens))
        steps = [e.step for e in self.entries]
        if entry.step in steps:
            i = steps.index(entry.step)
            self.entries[i] = entry
        else:
            self.entries.append(entry)
            self.entries.sort(key=lambda e: e.step)
            i = self.entries.index(entry)
        follow = show or self.follow_check.isChecked() or self._index < 0
        self._update_controls()
        if follow:
            self.show_index(i)

    def set_run_dir(self, run_dir: str) -> None:
        """The run wrote every snapshot to its attention/ folder: add those the mailbox skipped."""
        self._run_dir = run_dir
        from workbench.engine.checkpoint import list_attention

        shown = self.current()
        have = {e.step for e in self.entries}
        for path in list_attention(Path(run_dir) / "attention"):
            m = _STEP.search(path.name)
            if m and int(m.group(1)) not in have:
                self.entries.append(Entry(int(m.group(1)), path=path))
        self.entries.sort(key=lambda e: e.step)
        self._update_controls()
        if self.follow_check.isChecked() and self.entries:
            self.show_index(len(self.entries) - 1)
        elif shown is not None:
            self.show_index(self.entries.index(shown))  # the same snapshot, at its new place

    def load_run(self, run_dir: str) -> int:
        """Show the snapshots of a run folder (the newest first); returns how many."""
        self.reset()
        self.set_run_dir(run_dir)
        if self.entries:
            self.show_index(len(self.entries) - 1)
        return len(self.entries)

    def _choose_run(self) -> None:
        from workbench import paths

        start = str(paths.runs_dir()) if paths.runs_dir().exists() else ""
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Show the attention snapshots of a run", start)
        if folder:
            if self.load_run(folder) == 0:
                self.caption.setText(f"<span style='color:#c62828'>{folder} has no attention snapshots "
                                     f"(attention/step_*.safetensors).</span>")

    # -- showing ------------------------------------------------------------------------------

    def current(self) -> Entry | None:
        return self.entries[self._index] if 0 <= self._index < len(self.entries) else None

    def show_index(self, i: int) -> None:
        if not 0 <= i < len(self.entries):
            return
        entry = self.entries[i]
        try:
            entry.load()
        except Exception as e:  # a damaged file: say so, keep the rest working
            self.caption.setText(f"<span style='color:#c62828'>Cannot read {entry.path}: {e}</span>")
            return
        self._index = i
        with QtCore.QSignalBlocker(self.timeline):
            self.timeline.setValue(i)
        self._fill_pickers(entry.attention.shape[0], entry.attention.shape[1])
        self._choose_telling_head(entry)
        self._render()

    def _choose_telling_head(self, entry: Entry) -> None:
        """Score the heads on the probe; show the most telling one unless the person chose a head."""
        from workbench.engine.patterns import telling_head

        self.telling = telling_head(entry.attention, entry.tokens or [])
        if self.telling is not None and self.telling.clear and not self._picked:
            self._layer, self._head = self.telling.layer, self.telling.head
            with QtCore.QSignalBlocker(self.layer_combo), QtCore.QSignalBlocker(self.head_combo):
                self.layer_combo.setCurrentIndex(self._layer)
                self.head_combo.setCurrentIndex(self._head)

    def _head_note(self) -> str:
        from workbench.engine.patterns import CLEAR, LOOKS_AT

        t = self.telling
        if t is None:
            return ""
        what = f"layer {t.layer} head {t.head}: {t.task} score {t.score:.2f}"
        if not t.clear:
            return (f"No head does a task of the probe plainly yet (the best, {what}; {CLEAR:.2f} counts). "
                    f"Watch as training goes on.")
        share = f"{t.score:.0%} of its attention goes to {LOOKS_AT[t.task]}"
        if (self._layer, self._head) == (t.layer, t.head):
            chosen = "You chose" if self._picked else "Chosen for you, the most telling head:"
            return f"{chosen} {what} ({share})."
        return f"The most telling head is {what} ({share}); click it in the grid to see it."

    def _scrubbed(self, i: int) -> None:
        """The person moved the timeline (drag, click or keys): an older snapshot stays in view
        when new ones come, so Follow live goes off; moving back to the newest does not turn it on."""
        if i != len(self.entries) - 1 and self.follow_check.isChecked():
            self.follow_check.setChecked(False)
        self.show_index(i)

    def _follow_toggled(self, on: bool) -> None:
        if on and self.entries:
            self.show_index(len(self.entries) - 1)

    def _fill_pickers(self, L: int, H: int) -> None:
        if self.layer_combo.count() != L:
            with QtCore.QSignalBlocker(self.layer_combo):
                self.layer_combo.clear()
                self.layer_combo.addItems([f"layer {i}" for i in range(L)])
            self._layer = min(self._layer, L - 1)
            self.layer_combo.blockSignals(True)
            self.layer_combo.setCurrentIndex(self._layer)
            self.layer_combo.blockSignals(False)
        if self.head_combo.count() != H + 1:
            with QtCore.QSignalBlocker(self.head_combo):
                self.head_combo.clear()
                self.head_combo.addItems([f"head {h}" for h in range(H)] + ["average of the heads"])
            if self._head != MEAN:
                self._head = min(self._head, H - 1)
            self.head_combo.blockSignals(True)
            self.head_combo.setCurrentIndex(H if self._head == MEAN else self._head)
            self.head_combo.blockSignals(False)

    def _render(self) -> None:
        entry = self.current()
        if entry is None or entry.attention is None:
            return
        a = entry.attention
        L, H, T, _ = a.shape
        layer = min(self._layer, L - 1)
        if self._head == MEAN:
            m = a[layer].mean(axis=0)
            what = f"Layer {layer}, average of {H} heads"
        else:
            head = min(self._head, H - 1)
            m = a[layer, head]
            what = f"Layer {layer}, head {head}"
            self.grid.set_selected(layer, head)
        self.heatmap.set_attention(m, entry.tokens, title=f"{what} · step {entry.step:,}")
        self.grid.set_snapshot(a, entry.tokens)
        if self._head != MEAN:
            self.grid.set_selected(layer, min(self._head, H - 1))
        n = len(self.entries)
        self.step_label.setText(f"step {entry.step:,}  ({self._index + 1} of {n})")
        self.head_note.setText(self._head_note())
        self.head_note.setVisible(bool(self.head_note.text()))
        self.caption.setText(f"{what}: {T} probe tokens. Rows: the token that looks; columns: the tokens it "
                             f"looks at (only earlier ones: the model cannot see the future).")
        self.set_summary(f"step {entry.step:,} · {L}×{H} heads")

    def _update_controls(self) -> None:
        n = len(self.entries)
        self.stack.setCurrentIndex(1 if n else 0)
        with QtCore.QSignalBlocker(self.timeline):
            self.timeline.setRange(0, max(0, n - 1))
            self.timeline.setEnabled(n > 1)
            if 0 <= self._index < n:
                self.timeline.setValue(self._index)
        for w in (self.layer_combo, self.head_combo, self.export_button, self.auto_levels, self.sharpest_button):
            w.setEnabled(n > 0)
        if not n:
            self.step_label.setText("—")
            self.caption.setText("")
            self.head_note.hide()
            self.set_summary("")
        else:
            cur = self.current()
            if cur is not None:
                self.step_label.setText(f"step {cur.step:,}  ({self._index + 1} of {n})")

    def _on_layer(self, i: int) -> None:
        if i >= 0:
            self._layer, self._picked = i, True
            self._render()

    def _on_head(self, i: int) -> None:
        if i < 0:
            return
        entry = self.current()
        H = entry.attention.shape[1] if entry is not None and entry.attention is not None else 0
        self._head, self._picked = (MEAN if i == H else i), True
        self._render()

    def _pick(self, layer: int | None, head: int | None) -> None:
        """The person chose a head (the grid, Sharpest head): it stays shown as snapshots arrive."""
        if layer is not None:
            self._picked = True
            self.select_head(layer, head)

    def select_head(self, layer: int, head: int) -> None:
        self._layer, self._head = layer, head
        with QtCore.QSignalBlocker(self.layer_combo), QtCore.QSignalBlocker(self.head_combo):
            self.layer_combo.setCurrentIndex(layer)
            self.head_combo.setCurrentIndex(head)
        self._render()

    def sharpest_head(self) -> tuple[int, int] | None:
        """(layer, head) whose rows put the most weight on a single key, on average."""
        entry = self.current()
        if entry is None or entry.attention is None:
            return None
        score = entry.attention.max(axis=-1).mean(axis=-1)  # (L, H)
        layer, head = np.unravel_index(int(np.argmax(score)), score.shape)
        return int(layer), int(head)

    def show_sharpest_head(self) -> None:
        self._pick(*(self.sharpest_head() or (None, None)))

    def _on_levels(self, on: bool) -> None:
        self.heatmap.set_auto_levels(on)
        self.grid.set_auto_levels(on)

    def set_presentation(self, scale: float) -> None:
        self.heatmap.set_presentation(scale)
        self.grid.set_presentation(scale)

    def set_page_size(self, size: QtCore.QSize) -> None:
        """The heatmap takes HEATMAP_SHARE of the page's smaller side at least (with its labels
        and colour bar); where that leaves no room beside it the grid of heads goes below it
        (ReflowSplitter) and the page scrolls."""
        super().set_page_size(size)
        side = int(HEATMAP_SHARE * min(size.width(), size.height())) + 1
        if self.heatmap.minimumSize() != QtCore.QSize(side, side):
            self.heatmap.setMinimumSize(side, side)

    def _export_dialog(self) -> None:
        entry = self.current()
        name = f"attention_step{entry.step}.png" if entry else "attention.png"
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export the heatmap", name, "PNG image (*.png)")
        if path:
            self.heatmap.export_png(path)
