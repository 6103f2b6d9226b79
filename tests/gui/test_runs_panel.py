"""The Runs panel over real tiny runs in the test's data dir (tests/conftest.py points it to tmp)."""

import shutil
from pathlib import Path

import pytest
import torch
from PySide6 import QtCore, QtGui

from workbench import paths
from workbench.engine import checkpoint as ckpt
from workbench.engine.config import Experiment
from workbench.engine.runs import config_diff, summarize
from workbench.engine.trainer import Trainer
from workbench.gui.panels.runs_panel import RunsPanel
from workbench.gui.panels.runs_table import COLUMNS
from workbench.gui import theme

BASE = ['corpus.paths=["builtin:toy"]', "tokenizer.kind=char", "model.n_layer=2", "model.n_head=2",
        "model.n_embd=32", "model.block_size=32", "training.batch_size=8", "training.learning_rate=3e-3",
        "training.min_lr=3e-4", "training.warmup_steps=2", "training.eval_batches=2", "training.threads=1",
        "training.max_steps=6", "training.eval_every=3", "training.attention_every=0",
        "training.checkpoint_every=100"]


@pytest.fixture(scope="module")
def made_runs(tmp_path_factory):
    """Three tiny real runs, trained once: a, b (another learning rate and depth), c (longer)."""
    root = tmp_path_factory.mktemp("panel-runs")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("WORKBENCH_CACHE_DIR", str(root / "cache"))
            for name, extra in (("run-a", []), ("run-b", ["training.learning_rate=1e-3", "model.n_layer=1"]),
                                ("run-c", ["training.max_steps=9"])):
                exp = Experiment(name=name).with_overrides(BASE + extra)
                assert Trainer(exp, run_dir=root / name).run().status == "completed"
    finally:
        torch.set_num_threads(threads)
    return root


@pytest.fixture
def runs_dir(made_runs):
    """The three runs copied into this test's data dir (runs/), as the window would find them."""
    base = paths.runs_dir()
    for name in ("run-a", "run-b", "run-c"):
        shutil.copytree(made_runs / name, base / name)
    return base


@pytest.fixture
def panel(qtbot, runs_dir):
    p = RunsPanel()
    qtbot.addWidget(p)
    p.resize(1300, 850)
    p.refresh()
    assert p.wait_for_list()
    return p


def cell(panel: RunsPanel, name: str, column: str) -> str:
    for row in range(panel.table.rowCount()):
        if panel.table.item(row, 0).text() == name:
            return panel.table.item(row, COLUMNS.index(column)).text()
    raise KeyError(name)


def records(run: Path) -> list[dict]:
    return ckpt.read_metrics(run / "metrics.jsonl")


def test_the_table_lists_the_runs_of_the_data_dir_with_settings_and_results(panel, runs_dir):
    assert panel.table.rowCount() == 3
    assert {r.path.name for r in panel.runs()} == {"run-a", "run-b", "run-c"}
    assert panel.summary() == "3 runs"
    assert panel.folders()[0] == str(runs_dir)
    a = summarize(runs_dir / "run-a")
    assert cell(panel, "run-a", "status") == "completed"
    assert cell(panel, "run-a", "steps") == "6 / 6" and cell(panel, "run-c", "steps") == "9 / 9"
    assert cell(panel, "run-b", "model").startswith("1x32")
    assert cell(panel, "run-a", "tokenizer") == a.tokenizer and cell(panel, "run-a", "tasks") == "lm"
    assert cell(panel, "run-a", "val loss") == f"{a.val['lm']:.4f}"
    assert f"lm ppl {a.val['lm/ppl']:.4g}" in cell(panel, "run-a", "metrics")

    # a run finishing elsewhere is added; a refresh keeps the selection
    other = runs_dir.parent / "elsewhere" / "run-d"
    shutil.copytree(runs_dir / "run-a", other)
    panel.select_runs([runs_dir / "run-b"])
    panel.add_run(other)
    assert panel.wait_for_list()
    assert panel.table.rowCount() == 4 and panel.summary() == "4 runs"
    assert panel.selected_paths() == [str(runs_dir / "run-b")]
    panel.add_folder(runs_dir.parent / "empty")  # a folder with no runs adds none
    assert panel.wait_for_list() and panel.table.rowCount() == 4


def test_selecting_two_runs_shows_the_settings_that_differ(panel, runs_dir):
    a, b = runs_dir / "run-a", runs_dir / "run-b"
    panel.select_runs([a, b])
    order = panel.selected_paths()  # table order (newest first)
    expected = config_diff(order[0], order[1])
    assert {k for k, _, _ in expected} == {"model.n_layer", "name", "training.learning_rate"}
    assert panel.diff_rows() == expected
    shown = [tuple(panel.diff_table.item(r, c).text() for c in range(3)) for r in range(panel.diff_table.rowCount())]
    assert [row[0] for row in shown] == [k for k, _, _ in expected]
    assert [(row[1], row[2]) for row in shown] == [(f"{x:g}" if isinstance(x, float) else str(x),
                                                   f"{y:g}" if isinstance(y, float) else str(y))
                                                  for _, x, y in expected]
    assert [panel.diff_table.horizontalHeaderItem(c).text() for c in (1, 2)] == [Path(p).name for p in order]

    # every setting, the differing ones highlighted
    panel.diff_all.setChecked(True)
    n = panel.diff_table.rowCount()
    assert n > 40
    keys = [panel.diff_table.item(r, 0).text() for r in range(n)]
    no_brush = QtCore.Qt.BrushStyle.NoBrush
    marked = {keys[r] for r in range(n) if panel.diff_table.item(r, 0).background().style() != no_brush}
    assert marked == {k for k, _, _ in expected}

    panel.select_runs([a])
    assert panel.diff_rows() == [] and panel.diff_table.rowCount() == 0


def test_the_overlay_draws_one_curve_per_selected_run_in_its_colour(panel, runs_dir):
    chosen = [runs_dir / n for n in ("run-a", "run-b", "run-c")]
    panel.select_runs(chosen)
    assert panel.metric_key() == "loss|val/lm"
    assert {"loss|val/lm", "loss|train/lm", "ppl|val/lm", "lr|train"} <= set(panel.metric_keys())
    data = panel.plot.series_data()
    assert set(data) == {"run-a", "run-b", "run-c"}
    for run in chosen:
        val = [r for r in records(run) if r["split"] == "val"]
        assert data[run.name]["step"].tolist() == [r["step"] for r in val]
        assert data[run.name]["y"].tolist() == [r["loss"] for r in val]

    colors = {}
    for run in chosen:
        color = panel.run_color(run)
        pen = panel.plot._series[run.name].main_curve.opts["pen"]
        assert QtGui.QPen(pen).color().name() == QtGui.QColor(color).name()
        colors[run.name] = color
    assert len(set(colors.values())) == 3
    assert set(colors.values()) == set(theme.SERIES_COLORS[:3])

    panel.set_metric("loss|train/lm")
    data = panel.plot.series_data()
    for run in chosen:
        train = [r for r in records(run) if r["split"] == "train"]
        assert data[run.name]["y"].tolist() == [r["loss"] for r in train]
        assert data[run.name]["tokens"].tolist() == [r["tokens"] for r in train]
        assert panel.run_color(run) == colors[run.name]  # the colour stays with the run

    panel.select_runs(chosen[:1])
    assert panel.metric_key() == "loss|train/lm"  # the chosen metric stays chosen
    assert panel.plot.series_names() == ["run-a"]


def test_export_writes_the_report_and_says_where(panel, runs_dir, tmp_path, qtbot):
    run = runs_dir / "run-a"
    panel.select_runs([run])
    assert panel.export_button.isEnabled()
    out = tmp_path / "a.html"
    with qtbot.waitSignal(panel.exported, timeout=60000) as sig:
        panel.export(run, out, "html", samples=[])
    assert sig.args == [str(out)]
    assert out.is_file() and "run-a" in out.read_text()
    assert str(out) in panel.message.text()

    folder = tmp_path / "a-report"
    with qtbot.waitSignal(panel.exported, timeout=60000):
        panel.export(run, folder, "folder", samples=[])
    assert (folder / "index.html").is_file() and (folder / "metrics.csv").is_file()

    panel.export(run, tmp_path / "missing" / "a.html", "html", samples=[])
    assert panel.wait_for_export()
    assert "no such folder" in panel.error.text() and not panel.error.isHidden()

    panel.select_runs([run, runs_dir / "run-b"])
    assert not panel.export_button.isEnabled()


def test_double_click_asks_the_window_to_open_the_run(panel, runs_dir, qtbot):
    panel.show()
    qtbot.waitExposed(panel)
    row = next(r for r in range(panel.table.rowCount()) if panel.table.item(r, 0).text() == "run-b")
    rect = panel.table.visualItemRect(panel.table.item(row, 0))
    with qtbot.waitSignal(panel.openRunRequested, timeout=2000) as sig:
        # an item view takes a double click on the item the press before it chose (as a real one has)
        qtbot.mouseClick(panel.table.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.mouseDClick(panel.table.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=rect.center())
    assert sig.args == [str(runs_dir / "run-b")]


def test_damaged_runs_are_listed_marked_and_the_others_as_usual(panel, runs_dir):
    from tests.engine.test_run_folders import damaged_runs

    expected = damaged_runs(runs_dir)
    panel.refresh()
    assert panel.wait_for_list()
    assert panel.table.rowCount() == 3 + len(expected) + 1 and not panel.error.isVisible()
    assert cell(panel, "run-a", "status") == "completed"
    for name, where in expected.items():
        assert cell(panel, name, "status").endswith("· damaged"), name
        row = next(r for r in range(panel.table.rowCount()) if panel.table.item(r, 0).text() == name)
        assert where in panel.table.item(row, COLUMNS.index("status")).toolTip()
