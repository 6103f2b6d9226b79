from tests.engine.test_trainer import tiny_experiment
from workbench.engine.runs import config_diff, list_runs
from workbench.engine.trainer import Trainer


def test_runs_are_listed_with_their_results_and_configs_compared(small_text, tmp_path):
    a = tiny_experiment(small_text, max_steps=6, eval_every=3, attention_every=0)
    b = a.with_overrides(["model.n_layer=1", "training.learning_rate=1e-3", "training.max_steps=8"])
    Trainer(a, run_dir=tmp_path / "runs" / "a").run()
    Trainer(b, run_dir=tmp_path / "runs" / "b").run()
    (tmp_path / "runs" / "not-a-run").mkdir()
    runs = {r.path.name: r for r in list_runs(tmp_path / "runs")}
    assert set(runs) == {"a", "b"}
    ra = runs["a"]
    assert ra.status == "completed" and ra.steps == 6 and ra.tasks == ["lm"]
    assert ra.model.startswith("2x32") and "lm" in ra.val and ra.val["lm"] > 0
    diff = {k: (x, y) for k, x, y in config_diff(tmp_path / "runs" / "a", tmp_path / "runs" / "b")}
    assert diff == {"model.n_layer": (2, 1), "training.learning_rate": (3e-3, 1e-3), "training.max_steps": (6, 8)}


def test_task_score_reads_the_best_or_last_accuracy_of_the_matching_task(tmp_path):
    import json

    import pytest

    from workbench.engine.config import Experiment, TaskConfig
    from workbench.engine.errors import CheckpointError
    from workbench.engine.runs import task_score

    run = tmp_path / "ft"
    (run / "checkpoints").mkdir(parents=True)
    sst, other = tmp_path / "sst.tsv", tmp_path / "other.tsv"
    Experiment().replace(tasks=(
        TaskConfig(kind="classification", name="other", train=str(other), label="label"),
        TaskConfig(kind="classification", name="sst", train=str(sst), label="label"),
    )).save(run / "config.toml")
    lines = [{"step": 1, "split": "train", "task": "sst", "loss": 0.7, "accuracy": 0.99},  # train: ignored
             {"step": 10, "split": "val", "task": "other", "loss": 0.6, "accuracy": 0.55},
             {"step": 10, "split": "val", "task": "sst", "loss": 0.6, "accuracy": 0.70},
             {"step": 20, "split": "val", "task": "sst", "loss": 0.5, "accuracy": 0.85},
             {"step": 30, "split": "val", "task": "sst", "loss": 0.5, "accuracy": 0.80}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"step": 4')  # torn line

    best = task_score(run, data=sst)
    assert (best.task, best.value, best.step, best.which) == ("sst", 0.85, 20, "best")
    last = task_score(run, data=sst, which="last")
    assert (last.value, last.step) == (0.80, 30)
    assert task_score(run).task == "other"  # no data file: the first task with an accuracy
    assert task_score(run, task="sst", which="last").value == 0.80
    assert task_score(run, data=tmp_path / "elsewhere" / "sst.tsv").task == "sst"  # same file name elsewhere
    (run / "checkpoints" / "step_0000030.json").write_text("{}")
    assert task_score(run / "checkpoints" / "step_0000030.json", data=sst).value == 0.85  # a checkpoint: its run
    with pytest.raises(CheckpointError, match="no validation f1"):
        task_score(run, metric="f1")
    with pytest.raises(CheckpointError, match="'nope'"):
        task_score(run, task="nope")


def test_a_diverged_run_is_listed_as_diverged_until_it_is_resumed(small_text, tmp_path):
    import math

    import torch

    from workbench.engine import checkpoint as ckpt
    from workbench.engine.events import ListReporter, StepMetrics
    from workbench.engine.report import metric_curves
    from workbench.engine.trainer import saved_experiment

    exp = tiny_experiment(small_text, max_steps=12, eval_every=0, attention_every=0, checkpoint_every=3)
    trainer = Trainer(exp, run_dir=tmp_path / "runs" / "d")

    class Poison(ListReporter):
        def report(self, e):
            super().report(e)
            if isinstance(e, StepMetrics) and e.step == 5:
                with torch.no_grad():
                    trainer.state.model.transformer.wpe.weight.fill_(math.nan)

    assert trainer.run(reporter=Poison()).status == "diverged"
    (run,) = list_runs(tmp_path / "runs")
    assert run.status == "diverged" and run.steps == 5
    records = ckpt.read_metrics(run.path / "metrics.jsonl")
    assert records[-1]["event"] == "diverged" and "step 6" in records[-1]["message"]
    assert set(metric_curves(records)) == set(metric_curves(records[:-1]))  # the report ignores the line
    Trainer(saved_experiment(run.path), resume=run.path, from_step=3).run()
    (run,) = list_runs(tmp_path / "runs")
    assert run.status == "completed" and run.steps == 12


def test_a_report_folder_beside_the_runs_is_not_listed_as_a_run(small_text, tmp_path):
    from workbench.engine.report import export_report

    runs = tmp_path / "runs"
    assert Trainer(tiny_experiment(small_text, max_steps=2, eval_every=0, attention_every=0),
                   run_dir=runs / "a").run().status == "completed"
    export_report(runs / "a", runs / "a-report", fmt="folder")
    assert (runs / "a-report" / "config.toml").is_file()   # a report holds the run's config too
    assert [r.path.name for r in list_runs(runs)] == ["a"]
