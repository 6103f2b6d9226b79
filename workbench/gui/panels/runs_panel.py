"""Runs panel: every run on disk with its settings and results, compared side by side.

A table of the runs under the data dir's ``runs/`` folder (and any folder the user adds), listed
in a background job (summarising a run reads its whole metrics.jsonl). Selecting runs overlays
their curves for one chosen metric (validation loss, training loss, accuracy, ... per task) in
one plot, a colour per run, the same colour as the swatch beside its name. Selecting exactly two
shows the settings that differ between them. The selected run can be exported as a report
(engine.report: one HTML file or a folder), also in a background job.

What the window uses: ``refresh()``, ``add_run(path)`` (a run just finished), ``add_folder(path)``,
``set_presentation(scale)``, and the signal ``openRunRequested(str)`` (a run was double-clicked:
show it in the curves and attention pages).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from ..bridge import JobSlot
from ..jobs.runs import export_run_report, list_all_runs
from .. import theme
from ..widgets.plot.loss_plot import LossPlot
from ..widgets.flow import ElidedLabel, FlowRow, ReflowSplitter, WrapLabel
from . import Panel, card, error_label, muted_label, show_error
from .runs_table import RunsTable

CAVEAT_COLOR = "#b26a00"
# Curves measured per token: runs with different tokenizers give them in different units (a BPE
# token holds several characters), so such curves are not comparable.
PER_TOKEN_METRICS = ("loss", "ppl", "lm_loss", "tokens_per_s")


def _fmt_value(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v)
    return str(v)


class RunsPanel(Panel):
    title = "Runs"
    subtitle = ("Every run with its settings and results. Select several to overlay their curves, two to see "
                "the settings that differ; double-click one to open it in the Curves and Attention pages.")

    openRunRequested = QtCore.Signal(str)
    followRunRequested = QtCore.Signal(str)  # watch a run another process trains, live
    listed = QtCore.Signal()            # the table was filled (after refresh / add_run)
    exported = QtCore.Signal(str)       # a report was written: its path

    def __init__(self, parent=None):
        super().__init__(parent)
        self._folders: list[str] = []
        self._extra: list[str] = []
        self._runs: list = []
        self._lister = JobSlot(self, "list runs", on_done=self._fill, on_failed=self._list_failed,
                               on_ended=self._list_ended)
        self._exporter = JobSlot(self, "export report", on_done=self._exported, on_failed=self._export_failed,
                                 on_ended=self._update_buttons)
        self._pending_refresh = False
        self._listing = False
        self._curves_cache: dict[str, tuple[tuple, dict]] = {}
        self._metric_key: str | None = None

        # -- tool row ------------------------------------------------------------------------
        bar = FlowRow()  # wraps on a narrow page
        self.refresh_button = QtWidgets.QPushButton("Refresh")
        self.refresh_button.setToolTip("List the runs again (new runs, runs still training).")
        self.add_folder_button = QtWidgets.QPushButton("Add folder…")
        self.add_folder_button.setToolTip("Also list the runs in another folder (one that holds run folders), "
                                          "or a single run folder.")
        self.count_label = ElidedLabel(mode=QtCore.Qt.TextElideMode.ElideMiddle)  # a long folder: … and a tooltip
        self.count_label.setObjectName("mutedLabel")
        self.follow_button = QtWidgets.QPushButton("Follow live")
        self.follow_button.setToolTip("Watch the selected run, which another process is training, live on the "
                                      "Curves, Attention and Task balance pages; Pause and Stop then act on it.")
        bar.add(self.refresh_button, self.add_folder_button, self.follow_button, self.count_label)
        bar.add_stretch()
        self.sample_edit = QtWidgets.QLineEdit()
        self.sample_edit.setPlaceholderText("prompt for a text sample")
        self.sample_edit.setToolTip("With a prompt, the report includes text the run's final checkpoint "
                                    "generates from it (seed 0, so the same every time).")
        self.sample_edit.setFixedWidth(230)
        self.export_button = QtWidgets.QPushButton("Export report…")
        self.export_button.setObjectName("primaryButton")
        self.export_button.setToolTip("Write the selected run as a report: settings, results, curves, attention "
                                      "snapshots, metrics table.")
        menu = QtWidgets.QMenu(self.export_button)
        self.export_html_action = menu.addAction("As one HTML file…", lambda: self._export_dialog("html"))
        self.export_folder_action = menu.addAction("As a folder of files (SVG, CSV)…",
                                                   lambda: self._export_dialog("folder"))
        self.export_button.setMenu(menu)
        bar.add(self.sample_edit, self.export_button)
        self.body.addWidget(bar)

        # -- the table -----------------------------------------------------------------------
        self.table = RunsTable()
        self.empty_label = muted_label()
        table_box = QtWidgets.QWidget()
        tl = QtWidgets.QVBoxLayout(table_box)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.setSpacing(4)
        tl.addWidget(self.table, 1)
        tl.addWidget(self.empty_label)

        # -- overlay of curves ---------------------------------------------------------------
        curves_box, cl = card("Curves of the selected runs")
        row = QtWidgets.QHBoxLayout()
        row.addWidget(QtWidgets.QLabel("Metric"))
        self.metric_combo = QtWidgets.QComboBox()
        self.metric_combo.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.metric_combo.setToolTip("Which curve to compare: validation or training loss, accuracy, perplexity, "
                                     "... of each task.")
        row.addWidget(self.metric_combo)
        row.addStretch(1)
        cl.addLayout(row)
        self.plot = LossPlot(title="", y_label="", show_controls=True, smoothing=0.6)
        self.plot.setMinimumHeight(220)
        cl.addWidget(self.plot, 1)
        self.curves_note = muted_label("Select runs in the table to compare their curves.")
        cl.addWidget(self.curves_note)
        self.caveat = QtWidgets.QLabel()
        self.caveat.setObjectName("caveatLabel")
        self.caveat.setWordWrap(True)
        self.caveat.setStyleSheet(f"color: {CAVEAT_COLOR};")
        self.caveat.hide()
        cl.addWidget(self.caveat)

        # -- diff of two configs -------------------------------------------------------------
        diff_box, dl = card("Settings that differ")
        self.diff_all = QtWidgets.QCheckBox("Show every setting")
        self.diff_all.setToolTip("List all settings; the ones that differ stay highlighted.")
        dl.addWidget(self.diff_all)
        self.diff_table = QtWidgets.QTableWidget(0, 3)
        self.diff_table.setObjectName("diffTable")
        self.diff_table.setHorizontalHeaderLabels(["Setting", "A", "B"])
        self.diff_table.verticalHeader().hide()
        self.diff_table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.diff_table.setShowGrid(False)
        self.diff_table.setWordWrap(False)
        dh = self.diff_table.horizontalHeader()
        dh.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Interactive)
        dh.setSectionResizeMode(1, QtWidgets.QHeaderView.ResizeMode.Stretch)
        dh.setSectionResizeMode(2, QtWidgets.QHeaderView.ResizeMode.Stretch)
        dh.resizeSection(0, 190)
        # run names share their start (demo-toy-2026…) and differ at the end: keep both ends
        dh.setTextElideMode(QtCore.Qt.TextElideMode.ElideMiddle)
        dh.setMinimumSectionSize(60)
        self.diff_table.verticalHeader().setDefaultSectionSize(24)
        dl.addWidget(self.diff_table, 1)
        self.diff_note = muted_label("Select two runs to see the settings that differ between them.")
        dl.addWidget(self.diff_note)

        lower = ReflowSplitter()  # the diff goes below the curves on a narrow page
        lower.addWidget(curves_box)
        lower.addWidget(diff_box)
        lower.setStretchFactor(0, 3)
        lower.setStretchFactor(1, 2)
        lower.setSizes([780, 520])
        self.lower_splitter = lower
        self.splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(table_box)
        self.splitter.addWidget(lower)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        self.body.addWidget(self.splitter, 1)

        self.message = WrapLabel()
        self.message.setObjectName("exportMessage")
        self.message.setWordWrap(True)
        self.message.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.message.setOpenExternalLinks(True)
        self.message.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextBrowserInteraction)
        self.message.hide()
        self.error = error_label()
        self.body.addWidget(self.message)
        self.body.addWidget(self.error)

        self.refresh_button.clicked.connect(self.refresh)
        self.follow_button.clicked.connect(self._follow_selected)
        self.add_folder_button.clicked.connect(self._choose_folder)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.horizontalHeader().sortIndicatorChanged.connect(lambda *_a: self._selection_changed())  # colours follow table order
        self.table.cellDoubleClicked.connect(self._double_clicked)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.metric_combo.currentIndexChanged.connect(self._metric_changed)
        self.diff_all.toggled.connect(lambda _on: self._update_diff())
        self._update_buttons()
        self.set_summary("")

    # -- the list ----------------------------------------------------------------------------

    def folders(self) -> list[str]:
        """The folders listed: the data dir's runs/ first, then those the user added."""
        from workbench import paths

        base = str(paths.runs_dir())
        return [base] + [f for f in self._folders if f != base]

    def places(self) -> list[str]:
        """Where the listed runs are read from: the listed folders, then each run added on its own
        (a run just trained, a run folder added) that is not directly in one of those folders."""
        out = self.folders()
        listed = {os.path.realpath(f) for f in out}
        for run in self._extra:
            if os.path.realpath(Path(run).parent) not in listed and run not in out:
                out.append(run)
        return out

    def add_folder(self, path: str | Path) -> None:
        """List the runs in ``path`` too (a folder of runs, or one run folder)."""
        path = str(Path(path))
        if (Path(path) / "config.toml").is_file():
            self.add_run(path)
            return
        if path not in self._folders:
            self._folders.append(path)
        self.refresh()

    def add_run(self, path: str | Path) -> None:
        """Show this run (e.g. one that just finished), wherever it lives, and refresh the list."""
        path = str(Path(path))
        if path not in self._extra:
            self._extra.append(path)
        self.refresh()

    def refresh(self) -> None:
        """List the runs again, in the background; the selection is kept."""
        if self._listing:
            self._pending_refresh = True
            return
        self._pending_refresh = False
        self._listing = True
        self.refresh_button.setEnabled(False)
        self.count_label.setText("listing runs…")
        self._lister.start(list_all_runs, self.folders(), list(self._extra))

    def is_listing(self) -> bool:
        """A listing job is under way (until its result is in the table)."""
        return self._listing

    def wait_for_list(self, msecs: int = 30000) -> bool:
        """Tests and scripts: wait until the table is filled in."""
        deadline = QtCore.QDeadlineTimer(msecs)
        while self._listing or self._pending_refresh:
            if not self._lister.wait(max(1, deadline.remainingTime())):
                return False
            QtCore.QCoreApplication.processEvents()
            if deadline.hasExpired():
                return False
        return True

    def _list_ended(self) -> None:
        self._listing = False
        self.refresh_button.setEnabled(True)
        if self._pending_refresh:
            self.refresh()

    def _list_failed(self, message: str, _details: str) -> None:
        self.count_label.setText("")
        show_error(self.error, f"Could not list the runs: {message}")

    def runs(self) -> list:
        """The RunSummary of every listed run, newest first."""
        return list(self._runs)

    def _fill(self, runs: list) -> None:
        show_error(self.error, "")
        self._runs = runs
        self.table.fill(runs)
        n = len(runs)
        places = self.places()
        more = len(places) - 1
        where = places[0] + (f" and {more} more folder{'s' if more != 1 else ''}" if more else "")
        self.count_label.setText(f"{n} run{'s' if n != 1 else ''} in {where}")
        self.count_label.setToolTip("\n".join(places))
        self.empty_label.setText("" if n else "No runs yet. Train one (the Training page, or `workbench train "
                                 "demo_toy`), or add a folder that holds runs.")
        self.empty_label.setVisible(not n)
        self.set_summary(f"{n} run{'s' if n != 1 else ''}" if n else "no runs")
        self._curves_cache = {k: v for k, v in self._curves_cache.items() if k in {str(r.path) for r in runs}}
        self._selection_changed()
        self.listed.emit()

    def _row_path(self, row: int) -> str:
        return self.table.row_path(row)

    # -- selection ---------------------------------------------------------------------------

    def selected_paths(self) -> list[str]:
        """Paths of the selected runs, in table order."""
        return self.table.selected_paths()

    def select_runs(self, paths: list[str | Path]) -> None:
        """Select exactly these runs (by folder), as a click would."""
        self.table.select_paths({str(Path(p)) for p in paths})
        self._selection_changed()

    def run_color(self, path: str | Path) -> str | None:
        """The colour of a selected run's curve (and of the swatch beside its name)."""
        paths = self.selected_paths()
        p = str(Path(path))
        return theme.SERIES_COLORS[paths.index(p) % len(theme.SERIES_COLORS)] if p in paths else None

    def _selection_changed(self) -> None:
        paths = self.selected_paths()
        self.table.set_swatches(self.run_color)
        self._update_metric_choices()
        self._update_overlay()
        self._update_diff()
        self._update_buttons()
        if len(paths) > 1:
            self.set_summary(f"{len(self._runs)} runs, {len(paths)} selected")
        elif self._runs:
            self.set_summary(f"{len(self._runs)} run{'s' if len(self._runs) != 1 else ''}")

    def _training_selected(self) -> str | None:
        """The one selected run, when a process trains it now (so there is something to follow)."""
        paths = self.selected_paths()
        if len(paths) != 1:
            return None
        run = next((r for r in self._runs if str(r.path) == paths[0]), None)
        return paths[0] if run is not None and run.status in ("training", "paused") else None

    def _follow_selected(self) -> None:
        path = self._training_selected()
        if path:
            self.followRunRequested.emit(path)

    def _update_buttons(self) -> None:
        follow = self._training_selected()
        self.follow_button.setEnabled(follow is not None)
        self.follow_button.setToolTip(
            "Watch the selected run, which another process is training, live on the Curves, Attention and Task "
            "balance pages; Pause and Stop then act on it." if follow else
            "Select a run that is training now (status: training) to follow it live.")
        one = len(self.selected_paths()) == 1
        busy = self._exporter.is_running()
        self.export_button.setEnabled(one and not busy)
        self.export_button.setToolTip("Write the selected run as a report: settings, results, curves, attention "
                                      "snapshots, metrics table." if one else "Select one run to export it.")

    def _double_clicked(self, row: int, _col: int) -> None:
        path = self._row_path(row)
        if path:
            self.openRunRequested.emit(path)

    def _context_menu(self, pos: QtCore.QPoint) -> None:
        row = self.table.rowAt(pos.y())
        if row < 0:
            return
        path = self._row_path(row)
        menu = QtWidgets.QMenu(self)
        menu.addAction("Open in the Curves and Attention pages", lambda: self.openRunRequested.emit(path))
        if self._training_selected() == path:
            menu.addAction("Follow live (another process trains it)", lambda: self.followRunRequested.emit(path))
        if self.export_button.isEnabled():
            menu.addAction("Export report as HTML…", lambda: self._export_dialog("html"))
            menu.addAction("Export report as a folder…", lambda: self._export_dialog("folder"))
        menu.addAction("Copy folder path", lambda: QtWidgets.QApplication.clipboard().setText(path))
        menu.exec(self.table.viewport().mapToGlobal(pos))

    # -- curves ------------------------------------------------------------------------------

    def curves_of(self, path: str) -> dict:
        """curves.metric_curves of a run, read once and cached until its metrics change."""
        from workbench.engine.checkpoint import read_metrics
        from workbench.curves import metric_curves

        mfile = Path(path) / "metrics.jsonl"
        try:
            st = mfile.stat()
            key = (st.st_mtime_ns, st.st_size)
        except OSError:
            return {}
        hit = self._curves_cache.get(path)
        if hit is not None and hit[0] == key:
            return hit[1]
        curves = metric_curves(read_metrics(mfile))
        self._curves_cache[path] = (key, curves)
        return curves

    def metric_keys(self) -> list[str]:
        """The choices of the metric box, as "metric|series" ("loss|val/lm")."""
        return [self.metric_combo.itemData(i) for i in range(self.metric_combo.count())]

    def metric_key(self) -> str | None:
        return self._metric_key

    def set_metric(self, key: str) -> None:
        i = self.metric_combo.findData(key)
        if i < 0:
            raise ValueError(f"{key!r} is not among {self.metric_keys()}")
        self.metric_combo.setCurrentIndex(i)

    def _update_metric_choices(self) -> None:
        from workbench.curves import curve_label, curve_order

        found: dict[str, set[str]] = {}
        for p in self.selected_paths():
            for metric, series in self.curves_of(p).items():
                found.setdefault(metric, set()).update(series)
        keys = []
        for metric in curve_order(found):
            for s in sorted(found[metric], key=lambda s: (not s.startswith("val"), s)):
                keys.append((f"{metric}|{s}", curve_label(metric, s)))
        current = self._metric_key
        with QtCore.QSignalBlocker(self.metric_combo):
            self.metric_combo.clear()
            for key, label in keys:
                self.metric_combo.addItem(label, key)
            i = self.metric_combo.findData(current) if current else -1
            self.metric_combo.setCurrentIndex(max(0, i) if keys else -1)
        if keys:
            self._metric_key = self.metric_combo.currentData()

    def _metric_changed(self, _i: int) -> None:
        self._metric_key = self.metric_combo.currentData()
        self._update_overlay()

    def _update_overlay(self) -> None:
        from workbench.curves import curve_label

        self.plot.clear()
        paths = self.selected_paths()
        key = self.metric_combo.currentData()
        self._show_caveat(paths, key)
        if not paths or not key:
            self.curves_note.setText("Select runs in the table to compare their curves." if not paths
                                     else "The selected runs have no metrics yet.")
            self.plot.refresh(force=True)
            return
        metric, series = key.split("|", 1)
        missing = []
        for p in paths:
            c = self.curves_of(p).get(metric, {}).get(series)
            name = Path(p).name
            if c is None:
                missing.append(name)
                continue
            val = not series.startswith("train")
            self.plot.set_series_style(name, color=self.run_color(p), symbol="o" if val else None, smooth=not val,
                                       width=2.0)
            self.plot.add_points(name, c["step"], c["y"], c["tokens"], c["time"])
        self.plot.set_y_label(curve_label(metric, series))
        self.plot.reset_view()
        self.plot.refresh(force=True)
        note = f"{curve_label(metric, series)} of {len(paths) - len(missing)} run(s), coloured as in the table."
        if missing:
            note += " Not in: " + ", ".join(missing) + "."
        self.curves_note.setText(note)

    def tokenizer_caveat(self, paths: list[str], key: str | None) -> str:
        """A warning when the curve ``key`` is a per-token number and the runs tokenize differently."""
        if not key or len(paths) < 2:
            return ""
        metric, series = key.split("|", 1)
        if metric not in PER_TOKEN_METRICS:
            return ""
        summaries = {str(r.path): r for r in self._runs}
        have = [p for p in paths if p in summaries and self.curves_of(p).get(metric, {}).get(series) is not None]
        if metric == "loss":  # a labelled task's loss is per example: the same unit whatever the tokenizer
            task = series.partition("/")[2]
            have = [p for p in have if self._is_per_token_task(p, task)]
        kinds = {summaries[p].tokenizer for p in have}
        if len(kinds) < 2:
            return ""
        which = "; ".join(f"{Path(p).name}: {summaries[p].tokenizer}" for p in have)
        return (f"⚠ Not the same unit: these runs use different tokenizers ({which}). A {metric.replace('_', ' ')} "
                f"per token of one is not one of the other (a BPE token holds several characters, a char token "
                f"one), so the curves are not directly comparable. Compare runs with the same tokenizer, or a "
                f"labelled task's accuracy.")

    def _is_per_token_task(self, path: str, task: str) -> bool:
        from workbench.engine.config import LABELLED_KINDS, load_experiment
        from workbench.engine.errors import WorkbenchError

        try:
            tasks = load_experiment(Path(path) / "config.toml").tasks
        except WorkbenchError:
            return True
        kind = next((t.kind for t in tasks if t.task_name == task), "")
        return kind not in LABELLED_KINDS

    def _show_caveat(self, paths: list[str], key: str | None) -> None:
        text = self.tokenizer_caveat(paths, key)
        self.caveat.setText(text)
        self.caveat.setVisible(bool(text))

    # -- diff ---------------------------------------------------------------------------------

    def diff_rows(self) -> list[tuple[str, object, object]]:
        """The (setting, A, B) rows of the settings that differ (what config_diff gives)."""
        return list(getattr(self, "_diff", []))

    def _update_diff(self) -> None:
        from workbench.engine.config import flatten, load_experiment
        from workbench.engine.errors import WorkbenchError
        from workbench.engine.runs import config_diff

        paths = self.selected_paths()
        self._diff = []
        self.diff_table.setRowCount(0)
        if len(paths) != 2:
            self.diff_note.setText("Select two runs to see the settings that differ between them."
                                   if len(paths) < 2 else "Select exactly two runs to compare their settings.")
            self.diff_table.setHorizontalHeaderLabels(["Setting", "A", "B"])
            return
        a, b = paths
        self.diff_table.setHorizontalHeaderLabels(["Setting", Path(a).name, Path(b).name])
        for col, path in ((1, a), (2, b)):  # narrow columns elide the name: the tooltip has all of it
            self.diff_table.horizontalHeaderItem(col).setToolTip(str(path))
        try:
            self._diff = config_diff(a, b)
            rows = self._diff
            if self.diff_all.isChecked():
                fa = flatten(load_experiment(Path(a) / "config.toml").to_dict())
                fb = flatten(load_experiment(Path(b) / "config.toml").to_dict())
                rows = [(k, fa.get(k), fb.get(k)) for k in sorted(fa.keys() | fb.keys())]
        except WorkbenchError as e:
            self.diff_note.setText(f"<span style='color:{theme.ERROR_COLOR}'>{e}</span>")
            return
        differ = {k for k, _, _ in self._diff}
        tint = QtGui.QColor(theme.HIGHLIGHT)
        tint.setAlpha(28)
        bold = self.diff_table.font()
        bold.setBold(True)
        self.diff_table.setRowCount(len(rows))
        for i, (k, x, y) in enumerate(rows):
            for col, text in enumerate((k, _fmt_value(x), _fmt_value(y))):
                it = QtWidgets.QTableWidgetItem(text)
                it.setToolTip(text)
                if k in differ:
                    it.setBackground(tint)
                    if col == 0:
                        it.setFont(bold)
                self.diff_table.setItem(i, col, it)
        n = len(self._diff)
        self.diff_note.setText("The two runs have the same settings." if not n else
                               f"{n} setting{'s differ' if n != 1 else ' differs'}" + (" (highlighted)."
                                                                               if self.diff_all.isChecked() else "."))

    # -- export -------------------------------------------------------------------------------

    def _export_dialog(self, fmt: str) -> None:
        paths = self.selected_paths()
        if len(paths) != 1:
            return
        run = Path(paths[0])
        start = str(Path.home())
        if fmt == "html":
            out, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export the run as one HTML file",
                                                           str(Path(start) / f"{run.name}-report.html"),
                                                           "HTML page (*.html)")
            if not out:
                return
            if not out.lower().endswith((".html", ".htm")):
                out += ".html"
        else:
            parent = QtWidgets.QFileDialog.getExistingDirectory(
                self, "Export the run as a folder: choose where the report folder goes", start)
            if not parent:
                return
            out = str(Path(parent) / f"{run.name}-report")
        self.export(run, out, fmt)

    def export(self, run_dir: str | Path, out: str | Path, fmt: str = "html", samples: list[str] | None = None):
        """Write the report of ``run_dir`` to ``out`` in a background job (engine.report.export_report);
        the message row says where it went. Returns the Job."""
        if samples is None:
            prompt = self.sample_edit.text()
            samples = [prompt.replace("\\n", "\n")] if prompt.strip() else []
        show_error(self.error, "")
        self.message.setText(f"Exporting {Path(run_dir).name}…")
        self.message.show()
        name = Path(run_dir).name
        job = self._exporter.start(export_run_report, str(run_dir), str(out), fmt, list(samples),
                                   on_progress=lambda m: self.message.setText(f"Exporting {name}: {m}…"))
        self._update_buttons()
        return job

    def wait_for_export(self, msecs: int = 60000) -> bool:
        return self._exporter.wait(msecs)

    def _exported(self, path: str) -> None:
        url = QtCore.QUrl.fromLocalFile(path).toString()
        kind = "folder" if Path(path).is_dir() else "file"
        self.message.setText(f"Report written to <a href='{url}'>{path}</a> ({kind}; click to open).")
        self.message.show()
        self.exported.emit(path)

    def _export_failed(self, message: str, _details: str) -> None:
        self.message.hide()
        show_error(self.error, f"The report was not written: {message}")

    # -- view ---------------------------------------------------------------------------------

    def set_presentation(self, scale: float) -> None:
        self.plot.set_presentation(scale)
        # the columns fit the larger header text once the new fonts are in (next event loop turn)
        QtCore.QTimer.singleShot(0, self, self.table.resizeColumnsToContents)

    def _choose_folder(self) -> None:
        start = self.folders()[0] if Path(self.folders()[0]).exists() else str(Path.home())
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "List the runs in folder…", start)
        if folder:
            self.add_folder(folder)

    def showEvent(self, event) -> None:
        if self._lister.job is None:  # listed once on first show; Refresh and new runs list again
            self.refresh()
        super().showEvent(event)
