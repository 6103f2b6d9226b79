"""A run folder written before metrics rows named their metric (tests/old_run.py) still opens:
in the report, in `workbench runs`, and through the one metrics reader."""

import csv
import json
import xml.etree.ElementTree as ET

from tests.old_run import TRAIN_ACCURACY, VAL_ACCURACY, write_old_run
from workbench.cli import main as cli_main
from workbench.engine import checkpoint as ckpt
from workbench.engine.report import export_report
from workbench.engine.runs import task_score

SVG = "{http://www.w3.org/2000/svg}"


def texts(path) -> set[str]:
    return {t.text for t in ET.parse(path).getroot().iter(f"{SVG}text") if t.text}


def test_an_old_run_folder_reads_in_the_current_form(tmp_path):
    run = write_old_run(tmp_path / "old")
    rows = ckpt.read_metrics(run / "metrics.jsonl")
    assert [r["accuracy"] for r in rows if r["split"] == "train" and "accuracy" in r] == TRAIN_ACCURACY
    assert all("/" not in r["task"] for r in rows)
    assert task_score(run).value == max(VAL_ACCURACY)


def test_an_old_run_folder_opens_in_the_report(tmp_path):
    run = write_old_run(tmp_path / "old")
    out = export_report(run, tmp_path / "report", fmt="folder")
    assert {"train/continuity", "val/continuity"} <= texts(out / "plots" / "accuracy.svg")
    loss = texts(out / "plots" / "loss.svg")
    assert {"train/total", "train/lm", "train/continuity", "val/lm", "val/continuity"} <= loss
    assert not any("accuracy" in t for t in loss)  # the accuracy is not drawn as a loss
    table = list(csv.DictReader((out / "metrics.csv").open(encoding="utf-8")))
    assert [float(r["accuracy"]) for r in table if r["split"] == "train" and r["accuracy"]] == TRAIN_ACCURACY
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "train accuracy · continuity" in index and "val accuracy · continuity" in index  # the results table


def test_an_old_run_folder_is_listed_by_workbench_runs(tmp_path, capsys):
    write_old_run(tmp_path / "runs" / "old")
    assert cli_main(["runs", "--dir", str(tmp_path / "runs"), "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["name"] == "old-mt" and listed["status"] == "completed" and listed["steps"] == 4
    assert listed["val"] == {"lm": 3.5, "lm/ppl": 33.1, "continuity": 0.62, "continuity/accuracy": 0.7}
    assert listed["damaged"] == []
    assert cli_main(["runs", "--dir", str(tmp_path / "runs")]) == 0
    assert "old" in capsys.readouterr().out
