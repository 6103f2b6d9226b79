"""Task balance panel: how a multi-task run shares its effort between the tasks.

Three views of the same run, fed by the bridge:

- the loss of every task (training, and validation as dots), one colour per task;
- the weight each task's loss gets in the total loss, over time (from ``TaskBalance`` events:
  fixed weights stay flat, uncertainty weighting and GradNorm move them);
- the gradient-conflict matrix: the cosine similarity between the tasks' gradients on the shared
  trunk (blue: the tasks push the shared weights the same way; red: they pull them apart), with
  a slider (and a play button) that scrubs through every snapshot the run has sent, beside the
  cosine of every pair of tasks over time (a dashed line marks the snapshot shown).

The panel copies what arrives (``on_step``, ``on_eval``, ``on_balance``) and draws on ``refresh``,
which the window calls from its ~10 Hz timer.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from workbench.curves import step_columns

from ..bridge import JobSlot
from ..jobs.balance import initial_weights
from .. import theme
from ..widgets.plot.loss_plot import LossPlot, MetricPlot
from ..widgets.matrix_view import MatrixView
from ..widgets.flow import Columns, ReflowSplitter, WrapLabel
from . import Panel, card, muted_label


def task_losses(losses: dict) -> dict:
    """The per-task entries of ``StepMetrics.losses`` ("lm", "mlm"), without the sub-metrics that
    some tasks add ("sent/task_loss", "sent/lm_loss")."""
    return {k: v for k, v in losses.items() if "/" not in k}


LEARNED_WEIGHTINGS = ("uncertainty", "gradnorm")  # their weights move; the others stay as they start


@dataclass(frozen=True)
class RunTasks:
    """What the run under way trains, from its experiment."""
    tasks: list[str]
    weighting: str
    sampling: str
    conflict_every: int


@dataclass(frozen=True)
class BalanceSnapshot:
    step: int
    tasks: list[str]
    weights: list[float]
    conflict: np.ndarray


class BalancePanel(Panel):
    title = "Task balance"
    subtitle = ("How a multi-task run shares its effort: each task's loss, the weight its loss gets, and whether "
                "the tasks' gradients push the shared layers the same way (blue) or pull them apart (red).")

    snapshotSelected = QtCore.Signal(int)  # index into snapshots()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.colors = theme.TaskColors()
        self._snapshots: list[BalanceSnapshot] = []
        self._follow = True  # the slider stays on the newest snapshot until moved
        self._run: RunTasks | None = None
        self._initial: list[float] | None = None  # the weights at step 0
        self._initial_error = ""
        self._weights = JobSlot(self, "initial task weights", on_done=self._got_initial_weights,
                                on_failed=self._initial_weights_failed)

        self.headline = WrapLabel()
        self.headline.setObjectName("headline")
        self.headline.setWordWrap(True)
        self.body.addWidget(self.headline)

        # top: losses and weights
        self.loss_plot = LossPlot(title="Loss per task", y_label="loss", show_controls=False, smoothing=0.6)
        self.weight_plot = MetricPlot(title="Weight of each task's loss", y_label="weight", legend=True)
        self.weight_plot.plot_item.getAxis("left").enableAutoSIPrefix(False)
        self.pairs_plot = MetricPlot(title="Cosine between each pair of tasks", y_label="cosine", legend=True)
        self.pairs_plot.plot_item.getAxis("left").enableAutoSIPrefix(False)
        self.pairs_plot.plot_item.addLine(y=0, pen=pg.mkPen("#c9ced6", width=1))
        self._marker = pg.InfiniteLine(angle=90, movable=False,
                                       pen=pg.mkPen(theme.FAINT, width=1, style=QtCore.Qt.PenStyle.DashLine))
        self._marker.hide()
        self.weight_plot.plot_item.addItem(self._marker, ignoreBounds=True)
        self._pair_marker = pg.InfiniteLine(angle=90, movable=False,
                                            pen=pg.mkPen(theme.FAINT, width=1, style=QtCore.Qt.PenStyle.DashLine))
        self._pair_marker.hide()
        self.pairs_plot.plot_item.addItem(self._pair_marker, ignoreBounds=True)
        top = ReflowSplitter()  # one above the other where they would be too narrow to read
        top.addWidget(self.loss_plot)
        top.addWidget(self.weight_plot)
        top.setSizes([600, 400])

        # bottom: the conflict matrix and its slider
        box, lay = card("Gradient conflict between the tasks")
        self.conflict_view = MatrixView(
            colormap="diverging", levels=(-1.0, 1.0), value_format="{:+.2f}", colorbar_title="cosine",
            describe=self._describe_conflict, max_cell=84.0,
            empty_text="The conflict matrix appears when a run with two or more tasks measures it "
                       "(every multitask.conflict_every steps; set it on the Tasks page).")
        self.play_button = QtWidgets.QToolButton()
        self.play_button.setText("▶")
        self.play_button.setCheckable(True)
        self.play_button.setToolTip("Play through the snapshots")
        self.slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setEnabled(False)
        self.slider.setToolTip("Drag to see the conflict matrix at an earlier step")
        self.slider_label = QtWidgets.QLabel("no snapshot yet")
        self.slider_label.setMinimumWidth(170)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.play_button)
        row.addWidget(self.slider, 1)
        row.addWidget(self.slider_label)
        how = muted_label(
            "Cosine similarity of two tasks' gradients on the shared layers: +1 they ask for the same change, "
            "0 they are unrelated, −1 they ask for opposite changes. Persistent red cells are what PCGrad and "
            "GradNorm are for.")
        side = Columns()
        side.add(self.pairs_plot, 1)
        side.add(self.conflict_view, 1)
        lay.addWidget(how)
        lay.addWidget(side, 1)
        lay.addLayout(row)

        self.splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(top)
        self.splitter.addWidget(box)
        self.splitter.setSizes([420, 420])
        self.body.addWidget(self.splitter, 1)

        self._play_timer = QtCore.QTimer(self)
        self._play_timer.setInterval(450)
        self._play_timer.timeout.connect(self._play_step)
        self.play_button.toggled.connect(self._toggle_play)
        self.slider.valueChanged.connect(self._on_slider)
        self._update_headline()

    # -- data in -----------------------------------------------------------------------------

    def begin_run(self, exp) -> None:
        """A run starts: the headline describes it at once, and the weights its tasks start with
        are drawn from step 0 on, before the first gradient-conflict measurement."""
        mt = exp.multitask
        self._run = RunTasks([t.task_name for t in exp.tasks], mt.weighting, mt.sampling, mt.conflict_every)
        self._initial, self._initial_error = None, ""
        self._update_headline()
        self._weights.cancel()  # a late answer for an earlier run is dropped
        if len(exp.tasks) > 1:
            self._weights.start(initial_weights, list(exp.tasks), mt)

    def wait_for_weights(self, msecs: int = 30000) -> bool:
        """Tests: wait until the starting weights are in."""
        return self._weights.wait(msecs)

    def _got_initial_weights(self, weights: list[float]) -> None:
        run = self._run
        if run is None or len(weights) != len(run.tasks):
            return
        self._initial = [float(w) for w in weights]
        if not self._snapshots:  # a measurement already drawn is later than step 0
            for task, w in zip(run.tasks, self._initial):
                self._style(self.weight_plot, task, task)
                self.weight_plot.add_points(task, 0, w)
        self._update_headline()

    def _initial_weights_failed(self, message: str, _details: str) -> None:
        self._initial_error = message
        self._update_headline()

    def reset(self) -> None:
        self._run, self._initial, self._initial_error = None, None, ""
        self.loss_plot.clear()
        self.weight_plot.clear()
        self.pairs_plot.clear()
        self.colors.clear()
        self._snapshots = []
        self._follow = True
        self.play_button.setChecked(False)
        with QtCore.QSignalBlocker(self.slider):
            self.slider.setRange(0, 0)
        self.slider.setEnabled(False)
        self.slider_label.setText("no snapshot yet")
        self.conflict_view.clear()
        self._marker.hide()
        self._pair_marker.hide()
        self._update_headline()
        self.refresh(force=True)

    def on_step(self, e) -> None:
        """``events.StepMetrics`` or a ``curves.MetricsBatch``."""
        c = step_columns(e)
        for task, y in task_losses(c.losses).items():
            self._style(self.loss_plot, f"train/{task}", task)
            self.loss_plot.add_points(f"train/{task}", c.step, y, c.tokens, c.elapsed)
        run = self._run
        if run is not None and self._initial is not None and run.weighting not in LEARNED_WEIGHTINGS:
            for task, w in zip(run.tasks, self._initial):  # these weights do not move: draw them up to now
                self.weight_plot.add_points(task, c.step[-1:], [w])

    def on_eval(self, e) -> None:
        """``events.EvalResult``: validation loss per task."""
        for task, v in task_losses(e.losses).items():
            self._style(self.loss_plot, f"val/{task}", task)
            self.loss_plot.add_points(f"val/{task}", e.step, v, e.tokens, e.elapsed)

    def on_balance(self, b) -> None:
        """``events.TaskBalance``: weights and the conflict matrix at one step."""
        snap = BalanceSnapshot(int(b.step), list(b.tasks), [float(w) for w in b.weights],
                               np.array(b.conflict, dtype=np.float64, copy=True))
        self._snapshots.append(snap)
        for task, w in zip(snap.tasks, snap.weights):
            self._style(self.weight_plot, task, task)
            self.weight_plot.add_points(task, snap.step, w)
        for i in range(len(snap.tasks)):
            for j in range(i + 1, len(snap.tasks)):
                if np.isfinite(snap.conflict[i, j]):  # NaN: not measured at this step (a task had no batch)
                    self.pairs_plot.add_points(f"{snap.tasks[i]} · {snap.tasks[j]}", snap.step, snap.conflict[i, j])
        n = len(self._snapshots)
        self.slider.setEnabled(n > 1)
        with QtCore.QSignalBlocker(self.slider):
            self.slider.setRange(0, n - 1)
        if self._follow or n == 1:
            with QtCore.QSignalBlocker(self.slider):
                self.slider.setValue(n - 1)
            self._show(n - 1)
        else:
            self._update_slider_label()
        self._update_headline()

    def snapshots(self) -> list[BalanceSnapshot]:
        return list(self._snapshots)

    def selected_index(self) -> int:
        return self.slider.value() if self._snapshots else -1

    def select(self, index: int) -> None:
        """Show snapshot ``index`` (as dragging the slider there does)."""
        self.slider.setValue(int(index))

    # -- view --------------------------------------------------------------------------------

    def refresh(self, force: bool = False) -> None:
        self.loss_plot.refresh(force)
        self.weight_plot.refresh(force)
        self.pairs_plot.refresh(force)

    def set_presentation(self, scale: float) -> None:
        self.loss_plot.set_presentation(scale)
        self.weight_plot.set_presentation(scale)
        self.pairs_plot.set_presentation(scale)
        self.conflict_view.set_presentation(scale)

    def _style(self, plot: LossPlot, series: str, task: str) -> None:
        if series not in plot.series_names():
            plot.set_series_style(series, color=self.colors(task))

    def _on_slider(self, value: int) -> None:
        self._follow = value == len(self._snapshots) - 1
        self._show(value)

    def _show(self, index: int) -> None:
        if not 0 <= index < len(self._snapshots):
            return
        s = self._snapshots[index]
        self.conflict_view.set_matrix(s.conflict, s.tasks)
        for marker in (self._marker, self._pair_marker):
            marker.setPos(s.step)
            marker.show()
        self._update_slider_label()
        self.snapshotSelected.emit(index)

    def _update_slider_label(self) -> None:
        n = len(self._snapshots)
        if not n:
            self.slider_label.setText("no snapshot yet")
            return
        i = self.slider.value()
        self.slider_label.setText(f"step {self._snapshots[i].step:,}  ·  snapshot {i + 1} of {n}")

    def _toggle_play(self, on: bool) -> None:
        self.play_button.setText("❚❚" if on else "▶")
        if on:
            if self.slider.value() >= self.slider.maximum():
                self.slider.setValue(0)
            self._play_timer.start()
        else:
            self._play_timer.stop()

    def _play_step(self) -> None:
        if self.slider.value() >= self.slider.maximum():
            self.play_button.setChecked(False)
            return
        self.slider.setValue(self.slider.value() + 1)

    def _run_headline(self) -> str:
        """The headline before the first measurement: what the run under way trains and how."""
        run = self._run
        if run is None:
            return ("Train two or more tasks (Tasks page) to see how they share the model. "
                    "Loss curves per task appear here as soon as a run starts.")
        if len(run.tasks) == 1:
            return (f"This run trains one task ({run.tasks[0]}): there is nothing to balance. Train two or more "
                    f"tasks (Tasks page) to see how they share the model.")
        parts = [f"<b>{len(run.tasks)} tasks</b>: {', '.join(run.tasks)}", f"weighting {run.weighting}"
                 + (f", one task per step ({run.sampling} sampling)" if run.sampling != "all" else "")]
        if self._initial is not None:
            weights = ", ".join(f"{t} {w:.2f}" for t, w in zip(run.tasks, self._initial))
            parts.append(f"weights at the start: {weights}" + (" (learned from here on)"
                                                                if run.weighting in LEARNED_WEIGHTINGS else ""))
        elif self._initial_error:
            parts.append(f"<span style='color:{theme.ERROR_COLOR}'>the starting weights could not be worked out: "
                         f"{html.escape(self._initial_error)}</span>")
        if run.conflict_every:
            parts.append(f"weights and gradient conflicts are measured every {run.conflict_every:,} steps "
                         f"(multitask.conflict_every)")
        else:
            parts.append("gradient conflicts are not measured (multitask.conflict_every = 0)")
        return "   ·   ".join(parts)

    def _describe_conflict(self, i: int, j: int, v: float) -> str:
        rows, cols = self.conflict_view.labels()
        if not np.isfinite(v):
            return (f"{rows[i]} and {cols[j]}: not measured at this step (with one task drawn per step, "
                    f"only the drawn task has a gradient)")
        if i == j:
            return f"{rows[i]} with itself: always +1"
        word = ("agree" if v > 0.1 else "conflict" if v < -0.1 else "are nearly unrelated")
        return f"{rows[i]} and {cols[j]} {word}: cosine {v:+.3f}"

    def _update_headline(self) -> None:
        if not self._snapshots:
            self.headline.setText(self._run_headline())
            run = self._run
            self.set_summary("" if run is None else f"{len(run.tasks)} task{'s' if len(run.tasks) != 1 else ''}")
            return
        s = self._snapshots[-1]
        n = len(s.tasks)
        parts = [f"<b>{n} tasks</b> at step {s.step:,}"]
        iu = np.triu_indices(n, 1)
        measured = np.isfinite(s.conflict[iu]) if n > 1 else np.zeros(0, dtype=bool)
        if n > 1 and not measured.any():
            parts.append("no pair of tasks measured at this step (one task drawn per step)")
            self.set_summary("")
        elif n > 1:
            iu = (iu[0][measured], iu[1][measured])
            vals = s.conflict[iu]
            lo, hi = int(np.argmin(vals)), int(np.argmax(vals))
            a, b = iu[0][hi], iu[1][hi]
            parts.append(f"most in agreement: {s.tasks[a]} and {s.tasks[b]} ({vals[hi]:+.2f})")
            a, b = iu[0][lo], iu[1][lo]
            word = "most in conflict" if vals[lo] < 0 else "least related"
            parts.append(f"{word}: {s.tasks[a]} and {s.tasks[b]} ({vals[lo]:+.2f})")
            self.set_summary(f"min cos {vals[lo]:+.2f}")
        weights = ", ".join(f"{t} {w:.2f}" for t, w in zip(s.tasks, s.weights))
        parts.append(f"weights: {weights}")
        self.headline.setText("   ·   ".join(parts))
