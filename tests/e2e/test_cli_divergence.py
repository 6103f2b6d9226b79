"""A diverging run on the command line: exit 1 with the step and a good checkpoint, then
`--resume RUN --from-step N` with a lower learning rate."""

import json

from .test_cli import TINY, workbench


def test_a_diverged_run_names_a_checkpoint_that_resume_from_step_continues(tmp_path):
    run = tmp_path / "run"
    r = workbench("train", "demo_toy", "--run-dir", str(run), "--set", "training.max_steps=20",
                  "--set", "training.checkpoint_every=10", *TINY)
    assert r.returncode == 0, r.stderr
    r = workbench("train", "--resume", str(run), "--set", "training.max_steps=300", "--set",
                  "training.learning_rate=10", "--set", "training.min_lr=10", "--set", "training.grad_clip=0")
    assert r.returncode == 1, r.stderr
    assert "diverged at step" in r.stderr and "Traceback" not in r.stderr
    good = int(r.stderr.split("--from-step ")[1].split()[0])
    assert good == 20  # the last checkpoint before the loss left its band (warmup or not)
    assert "superseded" in r.stderr  # where the checkpoints written out of the band went

    r = workbench("train", "--resume", str(run), "--from-step", str(good), "--set", "training.max_steps=30",
                  "--set", "training.learning_rate=1e-3", "--set", "training.min_lr=1e-4",
                  "--set", "training.grad_clip=1")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["status"] == "completed"
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["split"] == "train"]
    assert steps == list(range(1, 31))
    r = workbench("train", "--resume", str(run), "--from-step", "7")
    assert r.returncode == 2 and "no checkpoint of that step" in r.stderr and "20, 30" in r.stderr


def test_from_step_needs_resume_and_the_settings_list_the_divergence_rule(tmp_path):
    r = workbench("train", "demo_toy", "--from-step", "5")
    assert r.returncode == 2 and "--from-step N needs --resume" in r.stderr
    r = workbench("settings")
    assert r.returncode == 0 and "training.divergence_factor = 2.0" in r.stdout
    assert "training.divergence_steps = 20" in r.stdout
