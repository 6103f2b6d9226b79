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
