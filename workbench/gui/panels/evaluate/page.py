"""The Evaluate page: in-context (zero-, one- and few-shot) evaluation of a trained model (issue #6).

As in GPT-3, a task is learned from the prompt alone: an optional task description, k solved
examples (demonstrations, drawn from a training split) and the query. Every label's verbalizer word
is scored by the model's log-likelihood after the prompt (optionally divided by its number of
tokens) and the best one is the answer. Accuracy is measured for several k, each over several
random draws (choice and order) of demonstrations: the mean and its spread.

Settings (left): the model (a run folder or checkpoint), the task (``task_form.TaskCard``: the
built-in key -> value task that goes with the ``icl_keyvalue`` preset, or a labelled CSV / TSV /
JSONL file with its text, second-text and label columns, the word each label is shown as, a
description and the prompt template), the k values, draws, number of test examples, length
normalisation.

Views (right):

- accuracy against k (``plot.AccuracyPlot``): the mean over draws with +-1 standard deviation error
  bars, each draw as a faint dot, lines for chance, the majority class and a fine-tuned reference
  (``reference.ReferenceRow``: a value typed in, or the best / last validation accuracy of the same
  task in a fine-tuned run's ``metrics.jsonl``, read by ``engine.runs.task_score``), a legend and a
  table of the numbers;
- the exact prompt of any test example for any k and draw (``prompt_view.PromptView``), its parts
  coloured (description, each demonstration with its answer in bold, the query), the candidates'
  scores, and a bar per demonstration (``plot.AttentionBars``): the share of the query's attention
  it receives (``demonstration_attention``).

The page only gathers settings and shows results: the task is built by
``engine.icl_task.build_icl_task`` from an ``ICLTaskSpec``, as ``workbench eval`` builds it; the
numbers come from ``evaluate_in_context``, the prompt from ``InContextTask.prompt``. Loading,
reading the task, evaluating, inspecting and reading a reference are the functions of
``workbench.gui.jobs.evaluate``, each kind run through its own ``bridge.JobSlot`` (a newer job
replaces the one before, whose result is dropped); evaluating reports progress and can be
cancelled. Errors (a bad file, a missing column, a bad template) are shown inline with the
engine's message.

API for the main window:

    panel.set_run(path)             a run folder or checkpoint .json; loaded in a background job
    panel.set_presentation(scale)   plots and prompt text for a projector
    panel.summaryChanged(str)       (Panel) "k=0 .25 → k=8 .65" after an evaluation
    panel.modelLoaded(str)          the checkpoint's path, once its model is loaded
    panel.evaluationFinished(object)  the engine's ICLResult
    panel.is_busy() / panel.cancel()  an evaluation is running / stop it (Job.shutdown_all on quit
                                      stops it too)

More entry points (used by tests and scripts): ``use_builtin_task(n_keys)``, ``set_data_file(path)``,
``set_column(role, name)``, ``set_verbalizer(label, word)``, ``set_template(...)``,
``set_ks(k_max, every)``, ``start_evaluation()``, ``inspect(index, k, draw)``,
``reference.set_value(value)``, ``reference.load(run)``, ``save_results(path)`` (the JSON of
``workbench eval --out``), ``plotted_points()``, ``wait_idle()``.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtWidgets

from workbench.engine.icl_task import ICLTaskSpec

from ... import theme
from ...bridge import JobSlot
from ...jobs.evaluate import EvalSpec, Inspection, check_task, inspect_prompt, run_evaluation
from ...jobs.models import load_checkpoint
from ...widgets.flow import ColumnScroll, FlowRow, ReflowSplitter, WrapLabel, labelled
from .. import Panel, card, error_label, muted_label, show_error
from .plot import AccuracyPlot, AttentionBars, short_acc
from .prompt_view import PARTS_KEY, PromptView, answers_html
from .reference import ReferenceRow
from .task_form import TaskCard


def ks_for(k_max: int, every: bool) -> list[int]:
    """The k values of an evaluation: 0..k_max, or 0, 1, 2, 4, ... up to k_max (k_max included)."""
    if every:
        return list(range(k_max + 1))
    ks, k = [0], 1
    while k < k_max:
        ks.append(k)
        k *= 2
    if k_max > 0:
        ks.append(k_max)
    return ks


class EvaluatePanel(Panel):
    title = "Evaluate"
    subtitle = ("In-context learning: can the model do a task from a few solved examples in its prompt, "
                "without training? Accuracy for 0, 1, 2, … demonstrations, each over several random draws.")

    modelLoaded = QtCore.Signal(str)
    evaluationFinished = QtCore.Signal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._scale = 1.0
        self._run_path = ""
        self._trained = None
        self._task = None                 # the engine task of the current settings (from check_task)
        self._result = None               # the last ICLResult
        self._result_meta: dict = {}
        self._result_spec: EvalSpec | None = None
        self._inspection: Inspection | None = None

        # one slot per kind of background job: a newer job replaces the one before, whose result is dropped
        self._load = JobSlot(self, "load model for evaluation", on_done=self._model_loaded,
                             on_failed=self._model_failed)
        self._check = JobSlot(self, "read in-context task", on_failed=self._check_failed)  # on_done: per spec
        self._eval = JobSlot(self, "in-context evaluation", on_progress=self._eval_progress,
                             on_failed=self._eval_failed, on_cancelled=self._eval_cancelled,
                             on_ended=self._eval_ended)
        self._inspect = JobSlot(self, "inspect prompt", on_done=self._inspect_done, on_failed=self._inspect_failed)

        self._check_timer = QtCore.QTimer(self, singleShot=True, interval=250)
        self._check_timer.timeout.connect(self._start_check)
        self._inspect_timer = QtCore.QTimer(self, singleShot=True, interval=120)
        self._inspect_timer.timeout.connect(self._start_inspect)

        settings = self._build_settings()
        views = self._build_views()
        split = ReflowSplitter()  # settings above the views on a narrow page
        split.addWidget(settings)
        split.addWidget(views)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setSizes([470, 830])
        self.splitter = split
        self.body.addWidget(split, 1)

        self._task_changed()
        self._eval_settings_changed()

    # ---- construction -----------------------------------------------------------------------

    def _build_settings(self) -> QtWidgets.QWidget:
        settings = QtWidgets.QWidget()
        left = QtWidgets.QVBoxLayout(settings)
        left.setContentsMargins(0, 0, 6, 0)
        left.setSpacing(8)

        box, lay = card("Model")
        row = QtWidgets.QHBoxLayout()
        self.run_edit = QtWidgets.QLineEdit()
        self.run_edit.setReadOnly(True)
        self.run_edit.setPlaceholderText("a run folder or a checkpoint")
        self.run_button = QtWidgets.QPushButton("Choose run…")
        self.run_button.setToolTip("A run folder (its latest checkpoint is used) or a checkpoint .json")
        self.run_button.clicked.connect(self._browse_run)
        row.addWidget(self.run_edit, 1)
        row.addWidget(self.run_button)
        lay.addLayout(row)
        self.model_info = muted_label("Choose a trained model: its weights and tokenizer are loaded.")
        lay.addWidget(self.model_info)
        left.addWidget(box)

        self.task_form = TaskCard()
        self.task_form.changed.connect(self._task_changed)
        left.addWidget(self.task_form)

        box, grid = card("Evaluation", QtWidgets.QGridLayout())
        self.kmax_spin = QtWidgets.QSpinBox()
        self.kmax_spin.setRange(0, 64)
        self.kmax_spin.setValue(8)
        self.kmax_spin.setToolTip("The largest number of demonstrations (prompts that do not fit the model's "
                                  "context keep the demonstrations nearest the query)")
        self.every_k = QtWidgets.QCheckBox("every k")
        self.every_k.setToolTip("Every k from 0 to the largest; off: 0, 1, 2, 4, 8, …")
        self.draws_spin = QtWidgets.QSpinBox()
        self.draws_spin.setRange(1, 100)
        self.draws_spin.setValue(5)
        self.draws_spin.setToolTip("Random draws (choice and order) of demonstrations per k: the spread shows how "
                                   "much the choice of demonstrations matters")
        self.examples_spin = QtWidgets.QSpinBox()
        self.examples_spin.setRange(0, 1_000_000)
        self.examples_spin.setSingleStep(50)
        self.examples_spin.setValue(200)
        self.examples_spin.setSpecialValueText("all")
        self.examples_spin.setToolTip("Test examples scored per draw (the first N)")
        self.seed_spin = QtWidgets.QSpinBox()
        self.seed_spin.setRange(0, 1_000_000)
        self.seed_spin.setToolTip("Seed of the draws (and of the built-in task's mapping)")
        self.attention_spin = QtWidgets.QSpinBox()
        self.attention_spin.setRange(0, 10_000)
        self.attention_spin.setValue(16)
        self.attention_spin.setToolTip("Also measure the query's attention per demonstration on this many prompts at "
                                       "the largest k (0: skip); drawn as diamonds over the bars")
        self.length_norm = QtWidgets.QCheckBox("Length-normalise answer scores")
        self.length_norm.setToolTip("Score a candidate by its mean log-likelihood per token instead of the sum, so "
                                    "answers of several tokens are not penalised for their length")
        for r, (label, w, label2, w2) in enumerate((("Largest k", self.kmax_spin, "", self.every_k),
                                                    ("Draws", self.draws_spin, "Seed", self.seed_spin),
                                                    ("Examples", self.examples_spin, "Attention prompts",
                                                     self.attention_spin))):
            grid.addWidget(QtWidgets.QLabel(label), r, 0)
            grid.addWidget(w, r, 1)
            if label2:
                grid.addWidget(QtWidgets.QLabel(label2), r, 2)
            grid.addWidget(w2, r, 3)
        grid.addWidget(self.length_norm, 3, 0, 1, 4)
        self.ks_label = muted_label()
        grid.addWidget(self.ks_label, 4, 0, 1, 4)
        left.addWidget(box)

        row = QtWidgets.QHBoxLayout()
        self.run_eval_button = QtWidgets.QPushButton("Evaluate")
        self.run_eval_button.setObjectName("primaryButton")
        self.run_eval_button.clicked.connect(self.start_evaluation)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.save_button = QtWidgets.QPushButton("Save JSON…")
        self.save_button.setToolTip("The results as JSON, as `workbench eval --out` writes them")
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self._save_dialog)
        row.addWidget(self.run_eval_button)
        row.addWidget(self.cancel_button)
        row.addStretch(1)
        row.addWidget(self.save_button)
        left.addLayout(row)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setFormat("%v / %m prompts")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.hide()
        left.addWidget(self.progress)
        self.status = muted_label()
        left.addWidget(self.status)
        self.error = error_label()
        self.error.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        left.addWidget(self.error)
        left.addStretch(1)

        for w in (self.kmax_spin, self.draws_spin):
            w.valueChanged.connect(self._eval_settings_changed)
        self.every_k.toggled.connect(self._eval_settings_changed)
        self.examples_spin.valueChanged.connect(self._task_changed)
        self.seed_spin.valueChanged.connect(self._task_changed)
        self.length_norm.toggled.connect(self._schedule_inspect)

        scroll = ColumnScroll()  # as wide as its content (with a vertical scroll bar): nothing cut
        scroll.setWidget(settings)
        scroll.setMinimumHeight(280)  # when it stands above the views (ReflowSplitter)
        self.settings_scroll = scroll
        return scroll

    def _build_views(self) -> QtWidgets.QWidget:
        # accuracy against k
        acc_box, acc_lay = card("Accuracy against k")
        self.plot = AccuracyPlot()
        self.reference = ReferenceRow(self.plot, lambda: "" if self.task_spec().builtin else self.task_spec().data)
        acc_lay.addWidget(self.reference)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.plot, 1)
        self.results_table = QtWidgets.QTableWidget(0, 4)
        self.results_table.setHorizontalHeaderLabels(["k", "acc.", "± std", "demos"])
        self.results_table.verticalHeader().hide()
        self.results_table.verticalHeader().setDefaultSectionSize(22)
        self.results_table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.results_table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.results_table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.results_table.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        self.results_table.setToolTip("demos: demonstrations per prompt that fit the context (mean). Click a row to "
                                      "see a prompt with that k.")
        self.results_table.setFixedWidth(200)
        self.results_table.itemSelectionChanged.connect(self._result_row_selected)
        row.addWidget(self.results_table)
        acc_lay.addLayout(row, 1)
        self.plot_caption = muted_label()
        acc_lay.addWidget(self.plot_caption)

        # one prompt
        pr_box, pr_lay = card("The prompt of one example")
        ctl = FlowRow()  # wraps on a narrow page
        self.example_spin = QtWidgets.QSpinBox()
        self.example_spin.setRange(1, 1)
        self.example_spin.setPrefix("example ")
        self.inspect_k = QtWidgets.QSpinBox()
        self.inspect_k.setRange(0, 64)
        self.inspect_k.setPrefix("k = ")
        self.draw_spin = QtWidgets.QSpinBox()
        self.draw_spin.setRange(1, 100)
        self.draw_spin.setPrefix("draw ")
        self.attention_mode = QtWidgets.QComboBox()
        self.attention_mode.addItem("all query tokens", "share")
        self.attention_mode.addItem("the query's last token", "last")
        self.attention_mode.setToolTip("Averaged over layers and heads: over every token of the query, or only its "
                                       "last one (whose output predicts the answer)")
        for w in (self.example_spin, self.inspect_k, self.draw_spin):
            ctl.add(w)
            w.valueChanged.connect(self._schedule_inspect)
        ctl.add_stretch()
        ctl.add(labelled("Attention of", self.attention_mode))
        self.attention_mode.currentIndexChanged.connect(self._show_attention)
        self.parts_key = QtWidgets.QLabel(PARTS_KEY)
        pr_lay.addWidget(ctl)
        psplit = ReflowSplitter()
        left = QtWidgets.QWidget()
        ll = QtWidgets.QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.setSpacing(4)
        self.prompt_view = PromptView()
        ll.addWidget(self.parts_key)
        ll.addWidget(self.prompt_view, 1)
        self.answers_label = WrapLabel()
        self.answers_label.setWordWrap(True)
        self.answers_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        ll.addWidget(self.answers_label)
        psplit.addWidget(left)
        self.attention_bars = AttentionBars()
        psplit.addWidget(self.attention_bars)
        psplit.setStretchFactor(0, 3)
        psplit.setStretchFactor(1, 2)
        psplit.setSizes([520, 360])
        pr_lay.addWidget(psplit, 1)

        views = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        views.setChildrenCollapsible(False)
        views.addWidget(acc_box)
        views.addWidget(pr_box)
        views.setStretchFactor(0, 1)
        views.setStretchFactor(1, 1)
        views.setSizes([400, 400])
        self.views_splitter = views
        return views

    # ---- the model ----------------------------------------------------------------------------

    def set_run(self, path: str | Path) -> None:
        """Load the model of a run folder (its latest checkpoint) or of a checkpoint .json."""
        path = str(path)
        self._run_path = path
        self.run_edit.setText(path)
        self.run_edit.setToolTip(path)
        self._trained = None
        self.model_info.setText("Loading the model…")
        self.model_info.setStyleSheet("")
        self._load.start(load_checkpoint, path, False, "auto")
        self._update_buttons()

    def run_path(self) -> str:
        return self._run_path

    def trained(self):
        return self._trained

    def _browse_run(self) -> None:
        from workbench import paths

        start = self._run_path or (str(paths.runs_dir()) if paths.runs_dir().exists() else str(Path.home()))
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Choose a run folder", start)
        if path:
            self.set_run(path)

    def _model_loaded(self, trained) -> None:
        self._trained = trained
        m = trained.model.config
        exp = trained.experiment
        device = next(trained.model.parameters()).device
        self.model_info.setText(
            f"{m.n_layer} blocks × {m.n_embd} wide, {m.n_head} heads, context {m.block_size} · "
            f"{exp.tokenizer.kind} tokenizer ({trained.tokenizer.vocab_size}) · step {trained.step:,} · {device}")
        self.modelLoaded.emit(str(trained.path))
        self._update_buttons()
        self._schedule_inspect()

    def _model_failed(self, message: str, _details: str) -> None:
        self.model_info.setText(f"<span style='color:{theme.ERROR_COLOR}'>{html.escape(message)}</span>")
        self._update_buttons()

    # ---- the task -----------------------------------------------------------------------------

    def use_builtin_task(self, n_keys: int = 4) -> None:
        self.task_form.use_builtin_task(n_keys)

    def set_data_file(self, path: str | Path, demos: str | Path | None = None) -> None:
        """Use a labelled file (and optionally a file of demonstrations)."""
        self.task_form.set_data_file(path, demos)

    def set_column(self, role: str, name: str) -> None:
        """role: text | text_pair | label."""
        self.task_form.set_column(role, name)

    def set_verbalizer(self, label: str, word: str) -> None:
        self.task_form.set_verbalizer(label, word)

    def set_template(self, **parts: str | None) -> None:
        """Template fields as the engine takes them (``TaskCard.set_template``)."""
        self.task_form.set_template(**parts)

    def task_spec(self) -> ICLTaskSpec:
        return self.task_form.spec(limit=self.examples_spin.value(), seed=self.seed_spin.value())

    def eval_spec(self) -> EvalSpec:
        return EvalSpec(task=self.task_spec(), ks=tuple(self.ks()), draws=self.draws_spin.value(),
                        length_norm=self.length_norm.isChecked(), attention=self.attention_spin.value())

    def set_ks(self, k_max: int, every: bool = False) -> None:
        self.kmax_spin.setValue(k_max)
        self.every_k.setChecked(every)

    def ks(self) -> list[int]:
        return ks_for(self.kmax_spin.value(), self.every_k.isChecked())

    def task(self):
        """The engine's task for the current settings (None until read, or when they are wrong)."""
        return self._task

    def task_message(self) -> str:
        """The error that stops the task from being read ("" when it reads)."""
        return self.task_form.message()

    def _task_changed(self, *_a) -> None:
        self._check_timer.start()

    def _start_check(self) -> None:
        self._check_timer.stop()
        spec = self.task_spec()
        self.task_form.reading()
        self._check.start(check_task, spec, on_done=lambda info: self._check_done(spec, info))

    def _check_done(self, spec: ICLTaskSpec, info: dict) -> None:
        self._task = info["task"]
        self.task_form.show_task(spec, info)
        self.plot.set_baselines(info["chance"], info["majority"])
        n = info["n_test"]
        self.example_spin.setRange(1, max(1, n))
        self.example_spin.setSuffix(f" of {n:,}")
        self._update_buttons()
        self._schedule_inspect()

    def _check_failed(self, message: str, _details: str) -> None:
        self._task = None
        self._inspect.cancel()  # an inspection under way shows the old settings: drop it
        self.task_form.show_failure(message)
        self.plot.set_baselines(None, None)
        self.prompt_view.set_plain("")
        self.answers_label.setText("")
        self.attention_bars.clear()
        self._update_buttons()

    def _eval_settings_changed(self, *_a) -> None:
        ks = self.ks()
        self.ks_label.setText("k = " + ", ".join(map(str, ks)))
        self.inspect_k.setMaximum(max(ks))
        self.draw_spin.setMaximum(self.draws_spin.value())
        self.plot.set_ks(ks)

    # ---- evaluation ---------------------------------------------------------------------------

    def is_busy(self) -> bool:
        return self._eval.is_running()

    def start_evaluation(self) -> None:
        if self.is_busy():
            return
        if self._trained is None:
            show_error(self.error, "Choose a model first (Choose run…)." if not self._run_path else
                       "The model is not loaded yet." if self._load.is_running()
                       else "The model could not be loaded; choose another run.")
            return
        show_error(self.error, "")
        spec = self.eval_spec()
        trained, run = self._trained, self._run_path
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.show()
        self.status.setText("Evaluating…")
        self._eval.start(run_evaluation, trained, spec, on_done=lambda r: self._eval_done(r, spec, trained, run))
        self._update_buttons()

    def cancel(self) -> None:
        if self._eval.is_running():
            self._eval.job.cancel()  # the job's own stop: it still says it was cancelled (JobSlot.cancel would not)
            self.status.setText("Stopping…")

    def _eval_progress(self, value) -> None:
        done, total = value
        self.progress.setRange(0, max(1, int(total)))
        self.progress.setValue(int(done))

    def _eval_done(self, out: dict, spec: EvalSpec, trained, run: str) -> None:
        result = out["result"]
        self._result, self._result_spec = result, spec
        self._result_meta = {"run": run, "checkpoint_step": trained.step, "data": spec.task.data}
        self.plot.set_result(result)
        self._fill_results(result)
        first, last = result.results[0], result.results[-1]
        self.set_summary(f"k={first.k} {short_acc(first.accuracy)} → k={last.k} {short_acc(last.accuracy)}")
        mode = "mean" if result.length_norm else "summed"
        fitted = sum(r.fitted for r in result.results)
        self.plot_caption.setText(
            f"{result.n_examples:,} test examples · {result.draws} draws per k · answers scored by {mode} "
            f"log-likelihood · chance {result.chance:.3f} · majority class {result.majority:.3f}"
            + (f" · {fitted:,} prompts lost demonstrations to the context" if fitted else "")
            + (f"\n{result.look_back_line().capitalize()}." if result.look_back else ""))
        self.status.setText(f"Done: {spec.task.data} with {Path(run).name or run} (step {trained.step:,}).")
        self.save_button.setEnabled(True)
        self.evaluationFinished.emit(result)
        self._schedule_inspect()

    def _eval_failed(self, message: str, _details: str) -> None:
        self.status.setText("")
        show_error(self.error, message)

    def _eval_cancelled(self) -> None:
        self.status.setText("Stopped." + (" The plot shows the last complete evaluation." if self._result else ""))

    def _eval_ended(self) -> None:
        self.progress.hide()
        self._update_buttons()

    def _fill_results(self, result) -> None:
        t = self.results_table
        t.setRowCount(len(result.results))
        for i, r in enumerate(result.results):
            for j, text in enumerate((str(r.k), f"{r.accuracy:.3f}", f"{r.std:.3f}", f"{r.demos_used:.1f}")):
                item = QtWidgets.QTableWidgetItem(text)
                item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
                if r.fitted and j == 3:
                    item.setToolTip(f"{r.fitted} prompts did not fit the context with all {r.k} demonstrations")
                t.setItem(i, j, item)

    def _result_row_selected(self) -> None:
        rows = {i.row() for i in self.results_table.selectedItems()}
        if rows and self._result is not None:
            self.inspect_k.setValue(self._result.results[min(rows)].k)

    def result(self):
        return self._result

    def plotted_points(self) -> dict[str, np.ndarray]:
        return self.plot.points()

    def save_results(self, path: str | Path) -> None:
        if self._result is None:
            raise RuntimeError("no results to save yet")
        m = self._result_meta
        self._result.save(path, m["run"], m["checkpoint_step"], m["data"])

    def _save_dialog(self) -> None:
        if self._result is None:
            return
        from workbench.engine.errors import WorkbenchError
        from workbench.engine.ownership import run_folder_around

        # beside the run folder, not inside it: a run folder is written by its training run only
        run = run_folder_around(Path(self._run_path)) if self._run_path else None
        start = str(run.parent / f"{run.name}-icl.json" if run else Path.home() / "icl.json")
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save the results", start, "JSON (*.json)")
        if path:
            try:
                self.save_results(path)
                self.status.setText(f"Saved {path}")
            except (OSError, WorkbenchError) as e:
                show_error(self.error, f"Could not write {path}: {e}")

    def _update_buttons(self) -> None:
        busy = self.is_busy()
        self.run_eval_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.save_button.setEnabled(self._result is not None)

    # ---- one prompt -------------------------------------------------------------------------

    def inspect(self, index: int, k: int, draw: int = 0) -> None:
        """Show test example ``index`` (0-based) with k demonstrations of ``draw`` (0-based)."""
        self.inspect_k.setMaximum(max(self.inspect_k.maximum(), k))
        self.draw_spin.setMaximum(max(self.draw_spin.maximum(), draw + 1))
        for w, v in ((self.example_spin, index + 1), (self.inspect_k, k), (self.draw_spin, draw + 1)):
            with QtCore.QSignalBlocker(w):
                w.setValue(v)
        self._start_inspect()

    def inspection(self) -> Inspection | None:
        return self._inspection

    def _schedule_inspect(self, *_a) -> None:
        self._inspect_timer.start()

    def _start_inspect(self) -> None:
        self._inspect_timer.stop()
        task = self._task
        if task is None:
            return
        index = min(self.example_spin.value() - 1, len(task.test) - 1)
        k, draw = self.inspect_k.value(), self.draw_spin.value() - 1
        if self._trained is None:  # text only: no tokenizer, no attention
            self._inspect.cancel()  # one under way (with a model before) is out of date
            try:
                p = task.prompt(index, k, draw)
            except Exception as e:  # a template error: the engine's message
                self.prompt_view.set_plain("")
                self.answers_label.setText(f"<span style='color:{theme.ERROR_COLOR}'>{html.escape(str(e))}</span>")
                return
            self._inspection = Inspection(index, k, draw, p, [])
            self.prompt_view.set_plain(p.text)
            self.answers_label.setText(answers_html(p, None, self.length_norm.isChecked()))
            self.attention_bars.clear()
            self.attention_bars.caption.setText("Choose a model to see where the query's attention goes.")
            return
        self._inspect.start(inspect_prompt, self._trained, task, index, k, draw, self.length_norm.isChecked())

    def _inspect_done(self, ins: Inspection) -> None:
        self._inspection = ins
        p = ins.prompt
        self.prompt_view.set_prompt([(q.kind, q.text, q.index) for q in p.parts], ins.demo_answers)
        self.answers_label.setText(answers_html(p, ins.scores, self.length_norm.isChecked()))
        self._show_attention()

    def _inspect_failed(self, message: str, _details: str) -> None:
        self._inspection = None
        self.prompt_view.set_plain("")
        self.answers_label.setText(f"<span style='color:{theme.ERROR_COLOR}'>{html.escape(message)}</span>")
        self.attention_bars.clear()

    def _show_attention(self, *_a) -> None:
        ins = self._inspection
        if ins is None or ins.attention is None:
            return
        a = ins.attention
        mode = self.attention_mode.currentData()
        shares = a.share if mode == "share" else a.last
        demos = [s for part, s in zip(a.parts, shares) if part.kind == "demonstration"]
        kinds: dict[str, float] = {}
        for part, s in zip(a.parts, shares):
            kinds[part.kind] = kinds.get(part.kind, 0.0) + s
        mean = None
        att = self._result.attention if self._result is not None else None
        if (att and att.get("examples") and mode == "share" and self._result_spec is not None
                and self._result_spec.task == self.task_spec() and ins.draw == 0 and ins.k == max(self._result.ks)
                and len(att["demonstrations"]) == len(demos)):
            mean = att["demonstrations"]
        self.attention_bars.set_values(demos, mean)
        who = "The query's tokens" if mode == "share" else "The query's last token"
        parts = ", ".join(f"{kind}s {share:.0%}" if kind in ("demonstration", "separator") else f"{kind} {share:.0%}"
                          for kind, share in kinds.items())
        text = f"{who} (mean over layers and heads) give: {parts}." if demos else \
            f"No demonstrations in this prompt (k = {ins.k}). {who} give: {parts}."
        if mean is not None:
            text += f" ◆ mean over {att['examples']} prompts of the evaluation."
        self.attention_bars.caption.setText(text)

    # ---- the rest of the Panel API --------------------------------------------------------

    def set_presentation(self, scale: float) -> None:
        self._scale = max(0.5, float(scale))
        self.plot.set_presentation(self._scale)
        self.attention_bars.set_presentation(self._scale)
        self.prompt_view.set_presentation(self._scale)

    def wait_idle(self, msecs: int = 60000) -> bool:
        """Tests and scripts: start pending work now and wait until every job of the page has
        ended and its results are shown."""
        import time

        deadline = time.monotonic() + msecs / 1000
        slots = (self._load, self._check, self._eval, self._inspect, self.reference.slot)
        while True:
            if self._check_timer.isActive():
                self._start_check()
            if self._inspect_timer.isActive():
                self._start_inspect()
            jobs = [slot.job for slot in slots]
            for slot in slots:  # delivers each latest job's result, whose handler may start more work
                if not slot.wait(max(1, int((deadline - time.monotonic()) * 1000))):
                    return False
            QtWidgets.QApplication.processEvents()
            if ([slot.job for slot in slots] == jobs and not self._check_timer.isActive()
                    and not self._inspect_timer.isActive()):
                return True
            if time.monotonic() > deadline:
                return False
