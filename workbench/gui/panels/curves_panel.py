"""Curves panel: live training curves, like TensorBoard's scalars but inside the workbench.

A large loss plot (training loss per task, smoothed, with validation points) over three small
ones (learning rate, gradient norm, tokens/s), their x axes linked. Points arrive in batches from
the bridge and are only copied; the window's ~10 Hz timer calls ``refresh`` to redraw. An earlier
run can be overlaid (its metrics.jsonl), and the loss chart exported as PNG, SVG or CSV.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtWidgets

from workbench.curves import metric_curves

from ..widgets.plot.controls import CurveControls
from ..widgets.plot.loss_plot import LossPlot, MetricPlot
from ..widgets.flow import ReflowSplitter, WrapLabel
from . import Panel, muted_label


PLOTS = {"lr": "lr", "grad_norm": "grad", "tokens_per_s": "speed"}  # run-wide metric -> its small plot


def metrics_to_series(records: list[dict]) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """A run's metrics records -> {plot key: {series: {"step", "y", "tokens", "time"}}}: what the page
    shows of it, as it showed the run live. The loss plot gets every loss ("train/lm", "val/lm"),
    and a task's extra training losses as "train/TASK/METRIC" ("train/sent/task_loss"); the small
    plots the run-wide learning rate, gradient norm and speed."""
    out: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for metric, series in metric_curves(records).items():
        for name, c in series.items():
            if metric in PLOTS:
                plot, name = PLOTS[metric], metric
            elif metric == "loss":
                plot = "loss"
            elif name.startswith("train/") and metric not in ("accuracy", "ppl"):
                plot, name = "loss", f"{name}/{metric}"
            else:
                continue
            out.setdefault(plot, {})[name] = {k: np.asarray(c[k], dtype=np.float64)
                                              for k in ("step", "y", "tokens", "time")}
    return out


class CurvesPanel(Panel):
    title = "Curves"
    subtitle = ("Loss going down means the model is learning. Training loss is measured on the batch just "
                "trained on; validation loss (dots) on text it never trains on.")

    def __init__(self, parent=None):
        super().__init__(parent)
        self._best_val: tuple[float, int] | None = None
        self._last_train: float | None = None
        self._tasks: set[str] = set()

        # controls: the plots' own control row, plus comparing with an earlier run
        bar = QtWidgets.QHBoxLayout()
        bar.setSpacing(8)
        self.controls = CurveControls()
        self.controls.layout().setContentsMargins(0, 0, 0, 0)
        self.controls.set_state(0.6, "step", False)
        bar.addWidget(self.controls, 1)
        self.overlay_button = QtWidgets.QPushButton("Compare with a run…")
        self.overlay_button.setToolTip("Draw an earlier run's curves (dashed) behind this one: choose its run folder.")
        self.clear_overlays_button = QtWidgets.QPushButton("Clear comparison")
        self.clear_overlays_button.hide()
        bar.addWidget(self.overlay_button)
        bar.addWidget(self.clear_overlays_button)
        self.body.addLayout(bar)

        self.headline = WrapLabel()
        self.headline.setObjectName("headline")
        self.headline.setWordWrap(True)  # never wider than the page
        self.body.addWidget(self.headline)

        # plots
        self.loss_plot = LossPlot(title="Loss", y_label="loss", show_controls=False, smoothing=0.6)
        self.lr_plot = MetricPlot(title="Learning rate", y_label="")
        self.grad_plot = MetricPlot(title="Gradient norm", y_label="")
        self.speed_plot = MetricPlot(title="Tokens per second", y_label="")
        self.plots = {"loss": self.loss_plot, "lr": self.lr_plot, "grad": self.grad_plot, "speed": self.speed_plot}
        # not x-linked: pyqtgraph links views by screen position, which suits stacked plots,
        # not these side-by-side ones; each fits its own data
        self.grad_plot.set_smoothing(0.6)
        self.speed_plot.set_smoothing(0.6)

        bottom = ReflowSplitter()  # one above the other where they would be too narrow to read
        for p in (self.lr_plot, self.grad_plot, self.speed_plot):
            bottom.addWidget(p)
        self.splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        self.splitter.setObjectName("curvesSplitter")
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.loss_plot)
        self.splitter.addWidget(bottom)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([620, 240])
        self.bottom_splitter = bottom
        self.body.addWidget(self.splitter, 1)
        self.overlay_note = muted_label()
        self.body.addWidget(self.overlay_note)

        self.controls.smoothingChanged.connect(self.loss_plot.set_smoothing)
        self.controls.xAxisChanged.connect(self.set_x_axis)
        self.controls.logYChanged.connect(self.loss_plot.set_log_y)
        self.controls.exportRequested.connect(self._export_dialog)
        self.overlay_button.clicked.connect(self._choose_overlay)
        self.clear_overlays_button.clicked.connect(self.clear_overlays)
        self._update_headline()

    # -- data in -----------------------------------------------------------------------------

    def reset(self) -> None:
        for p in self.plots.values():
            p.clear()
        self._best_val = None
        self._last_train = None
        self._tasks = set()
        self._update_headline()
        self.refresh(force=True)

    def add_metrics(self, batch) -> None:
        """A curves.MetricsBatch (the bridge sends them)."""
        step, tok, t = batch.step, batch.tokens, batch.elapsed
        losses = batch.losses or {"lm": batch.loss}
        for task, y in losses.items():
            self._tasks.add(task)
            self.loss_plot.add_points(f"train/{task}", step, y, tok, t)
        if len(losses) > 1:
            self.loss_plot.add_points("train/total", step, batch.loss, tok, t)
        self.lr_plot.add_points("lr", step, batch.lr, tok, t)
        self.grad_plot.add_points("grad_norm", step, batch.grad_norm, tok, t)
        self.speed_plot.add_points("tokens_per_s", step, batch.tokens_per_s, tok, t)
        self._last_train = float(batch.loss[-1])
        self._update_headline()

    def add_eval(self, e) -> None:
        """An events.EvalResult."""
        for task, v in e.losses.items():
            self.loss_plot.add_points(f"val/{task}", e.step, v, e.tokens, e.elapsed)
            if self._best_val is None or v < self._best_val[0]:
                self._best_val = (float(v), int(e.step))
        self._update_headline()

    def load_run(self, run_dir: str | Path) -> int:
        """Show a run folder's metrics.jsonl as the current curves; returns the number of records."""
        from workbench.engine.checkpoint import read_metrics

        path = Path(run_dir) / "metrics.jsonl"
        self.reset()
        if not path.exists():
            return 0
        records = read_metrics(path)
        for plot_key, series in metrics_to_series(records).items():
            for name, d in series.items():
                self.plots[plot_key].add_points(name, d["step"], d["y"], d["tokens"], d["time"])
                if plot_key == "loss" and name.startswith("val/") and len(d["y"]):
                    i = int(np.nanargmin(d["y"]))
                    self._best_val = (float(d["y"][i]), int(d["step"][i]))
                if plot_key == "loss" and name.startswith("train/") and len(d["y"]):
                    self._last_train = float(d["y"][-1])
        self._update_headline()
        self.refresh(force=True)
        return len(records)

    # -- overlays ---------------------------------------------------------------------------

    def add_overlay_run(self, run_dir: str | Path) -> None:
        from workbench.engine.checkpoint import read_metrics

        path = Path(run_dir) / "metrics.jsonl"
        if not path.exists():
            raise FileNotFoundError(f"{run_dir} has no metrics.jsonl: choose a folder a training run wrote.")
        name = Path(run_dir).name
        for plot_key, series in metrics_to_series(read_metrics(path)).items():
            self.plots[plot_key].add_overlay(name, series)
        self.clear_overlays_button.show()
        self.overlay_note.setText("Dashed: " + ", ".join(self.loss_plot.overlay_names()))
        self.refresh(force=True)

    def clear_overlays(self) -> None:
        for p in self.plots.values():
            p.clear_overlays()
        self.clear_overlays_button.hide()
        self.overlay_note.setText("")

    def _choose_overlay(self) -> None:
        from workbench import paths

        start = str(paths.runs_dir()) if paths.runs_dir().exists() else ""
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Compare with the run in folder…", start)
        if folder:
            try:
                self.add_overlay_run(folder)
            except Exception as e:
                self.overlay_note.setText(f"<span style='color:#c62828'>{e}</span>")

    # -- view --------------------------------------------------------------------------------

    def refresh(self, force: bool = False) -> None:
        for p in self.plots.values():
            p.refresh(force)

    def set_x_axis(self, axis: str) -> None:
        for p in self.plots.values():
            p.set_x_axis(axis)
        self.controls.set_state(self.loss_plot.smoothing(), axis, self.loss_plot.log_y())

    def set_smoothing(self, weight: float) -> None:
        self.loss_plot.set_smoothing(weight)
        self.controls.set_state(weight, self.loss_plot.x_axis(), self.loss_plot.log_y())

    def set_presentation(self, scale: float) -> None:
        for p in self.plots.values():
            p.set_presentation(scale)
        self.controls.set_presentation(scale)

    def _update_headline(self) -> None:
        parts = []
        if self._last_train is not None:
            parts.append(f"training loss <b>{self._last_train:.3f}</b>")
        if self._best_val is not None:
            v, s = self._best_val
            parts.append(f"best validation loss <b>{v:.3f}</b> at step {s:,} "
                         f"(perplexity {np.exp(min(v, 50)):.2f})")
        self.headline.setText("   ·   ".join(parts) if parts else
                              "No run yet: press Start (or Demo) and the curves appear here as the model trains.")
        if self._best_val is not None:
            self.set_summary(f"val loss {self._best_val[0]:.3f}")
        elif self._last_train is not None:
            self.set_summary(f"loss {self._last_train:.3f}")
        else:
            self.set_summary("")

    def _export_dialog(self, kind: str) -> None:
        filters = {"png": "PNG image (*.png)", "svg": "SVG image (*.svg)", "csv": "CSV table (*.csv)"}
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export the loss chart", f"loss.{kind}", filters[kind])
        if path:
            self.export(kind, path)

    def export(self, kind: str, path: str | Path) -> None:
        if kind == "png":
            self.loss_plot.export_png(path)
        elif kind == "svg":
            self.loss_plot.export_svg(path)
        else:
            self.export_csv(path)

    def export_csv(self, path: str | Path) -> None:
        """Every curve (loss, lr, grad norm, tokens/s) in one table: series,step,tokens,time,value."""
        import csv
        import tempfile

        rows = []
        for p in self.plots.values():
            with tempfile.NamedTemporaryFile("r", suffix=".csv", delete=False) as tmp:
                name = tmp.name
            p.export_csv(name)
            with open(name, encoding="utf-8", newline="") as f:
                reader = csv.reader(f)
                header = next(reader)
                rows += list(reader)
            Path(name).unlink(missing_ok=True)
        with open(path, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(header if rows else ["series", "step", "tokens", "time", "value"])
            w.writerows(rows)
