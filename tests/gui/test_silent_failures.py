"""No silent failures: every background job that fails says so on the page that asked for it, and
its traceback goes to the log. The Fine-tune page's "Start from" list lists real runs."""

import ast
import logging
from pathlib import Path

import pytest

import workbench.gui
from workbench import paths
from workbench.engine.config import Experiment
from workbench.gui.bridge import Job, JobSlot
from workbench.gui.panels.corpus_panel import CorpusPanel
from workbench.gui.panels.finetune.page import FinetunePanel

GUI = Path(workbench.gui.__file__).parent

TINY = ['corpus.paths=["builtin:toy"]', "tokenizer.kind=char", "model.n_layer=1", "model.n_head=2",
        "model.n_embd=16", "model.block_size=16", "training.batch_size=4", "training.max_steps=2",
        "training.threads=1", "training.eval_every=0", "training.attention_every=0", "training.warmup_steps=0"]


def _jobs_without_failure_handler(source: str, filename: str) -> list[str]:
    """Calls of JobSlot(...) without on_failed=, and Job(...) objects whose .failed is never connected
    in the function that makes them."""
    tree = ast.parse(source, filename)
    missing = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        text = ast.get_source_segment(source, fn) or ""
        for node in ast.walk(fn):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name == "JobSlot" and not any(k.arg == "on_failed" for k in node.keywords):
                missing.append(f"{filename}:{node.lineno} {name} without on_failed")
            elif name == "Job":
                if ".failed.connect(" not in text:
                    missing.append(f"{filename}:{node.lineno} Job whose failed signal is not connected")
    return missing


def test_every_background_job_in_the_gui_has_a_failure_handler():
    missing = []
    for path in sorted(GUI.rglob("*.py")):
        if path.name == "bridge.py":  # where Job and JobSlot are defined
            continue
        missing += _jobs_without_failure_handler(path.read_text(encoding="utf-8"), str(path.relative_to(GUI)))
    assert missing == []


def test_the_failure_check_finds_a_job_without_handler():
    bad = ("def f(self):\n    j = Job(g)\n    j.done.connect(h)\n"
           "    self.slot = JobSlot(self, 'load', on_done=self.y)\n")
    assert len(_jobs_without_failure_handler(bad, "x.py")) == 2


def test_a_failed_job_logs_its_traceback(qtbot, caplog):
    def boom(_state):
        raise RuntimeError("the disk is on fire")

    got = []
    with caplog.at_level(logging.WARNING, logger="workbench.gui"):
        slot = JobSlot(None, "boom", on_failed=lambda msg, details: got.append((msg, details)))
        slot.start(boom)
        assert slot.wait(10000)
    assert got and got[0][0] == "RuntimeError: the disk is on fire"
    assert "Traceback" in got[0][1]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "'boom' failed" in logged and "Traceback" in logged and "the disk is on fire" in logged


def test_start_from_lists_a_finished_runs_checkpoint(qtbot):
    from workbench.engine.trainer import Trainer

    run = paths.runs_dir() / "pre"
    assert Trainer(Experiment(name="pre").with_overrides(TINY), run_dir=run).run().status == "completed"
    panel = FinetunePanel()
    qtbot.addWidget(panel)
    panel.refresh_checkpoints()
    assert panel.wait_for_runs()
    items = [panel.checkpoint_combo.itemData(i) for i in range(panel.checkpoint_combo.count())]
    assert str(run) in items
    text = panel.checkpoint_combo.itemText(items.index(str(run)))
    assert text.startswith("pre ·") and "2 steps" in text


def test_start_from_says_why_the_runs_could_not_be_listed(qtbot, monkeypatch):
    import workbench.engine.runs as runs_mod

    def broken(_folder):
        raise PermissionError("permission denied: runs")

    monkeypatch.setattr(runs_mod, "list_runs", broken)
    panel = FinetunePanel()
    qtbot.addWidget(panel)
    panel.refresh_checkpoints()
    panel.wait_for_runs()
    text = panel.checkpoint_info.text()
    assert "Could not list the runs" in text and "permission denied: runs" in text
    assert str(paths.runs_dir()) in text
    assert panel.checkpoint_combo.count() == 1  # the list keeps "Random weights"


def test_corpus_rows_say_when_counting_failed(qtbot, monkeypatch, small_text):
    import workbench.gui.panels.corpus_panel as corpus_mod

    def broken(state, sources, *opts):
        raise MemoryError("out of memory while counting")

    monkeypatch.setattr(corpus_mod, "source_stats", broken)
    panel = CorpusPanel()
    qtbot.addWidget(panel)
    panel.add_paths([str(small_text)])
    qtbot.waitUntil(lambda: not panel.is_counting(), timeout=10000)
    error = panel.source_error(str(small_text))
    assert error and "could not be counted" in error and "out of memory while counting" in error
    assert "with errors" in panel.total_label.text()


@pytest.fixture(autouse=True)
def _no_jobs_left(qtbot):
    yield
    Job.shutdown_all(10000)


def test_the_window_says_on_the_training_page_when_torch_cannot_be_loaded(qtbot, tmp_path, monkeypatch):
    from PySide6 import QtCore

    import workbench.gui.window.main_window as mw

    def broken(_state):
        raise ImportError("libtorch_cpu.so: cannot open shared object file")

    monkeypatch.setattr(mw, "import_engine", broken)
    settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    w = mw.MainWindow(settings=settings)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.training.error.isVisibleTo(w.training), timeout=10000)
    text = w.training.error.text()
    assert "PyTorch could not be loaded" in text and "cannot open shared object file" in text
    assert "reinstall torch" in text and "PyTorch could not be loaded" in w.statusBar().currentMessage()
    w.confirm_close = False
