"""A run folder written before metrics rows named their metric (tests/old_run.py) opens on the
Curves page and compares on the Runs page, as a run written today does."""

import numpy as np

from tests.old_run import TRAIN_ACCURACY, write_old_run
from workbench import paths
from workbench.gui.panels.curves_panel import CurvesPanel
from workbench.gui.panels.runs_panel import RunsPanel


def test_an_old_run_opens_on_the_curves_page(qtbot, tmp_path):
    run = write_old_run(tmp_path / "old")
    page = CurvesPanel()
    qtbot.addWidget(page)
    assert page.load_run(run) == 16  # the old file's 20 lines: a task's accuracy joins its task's row
    assert set(page.loss_plot.series_names()) == {"train/total", "train/lm", "train/continuity", "val/lm",
                                                  "val/continuity"}
    lm = page.loss_plot.series_data("train/lm")["train/lm"]
    assert lm["step"].tolist() == [1, 2, 3, 4] and lm["y"].tolist() == [4.2, 3.8, 3.4, 3.2]
    assert page.lr_plot.series_data("lr")["lr"]["y"].tolist() == [0.001, 0.002, 0.002, 0.001]
    assert np.allclose(page.loss_plot.series_data("val/continuity")["val/continuity"]["y"], [0.67, 0.62])
    assert "best validation loss <b>0.620</b> at step 4" in page.headline.text()


def test_an_old_run_compares_on_the_runs_page(qtbot):
    run = write_old_run(paths.runs_dir() / "old")
    page = RunsPanel()
    qtbot.addWidget(page)
    page.refresh()
    assert page.wait_for_list()
    page.select_runs([run])
    assert {"loss|train/continuity", "accuracy|train/continuity", "accuracy|val/continuity"} <= set(page.metric_keys())
    page.set_metric("accuracy|train/continuity")
    assert page.plot.series_data()["old"]["y"].tolist() == TRAIN_ACCURACY
