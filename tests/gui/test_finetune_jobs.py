"""The Fine-tune page's background work, called directly (no Qt): what "Start from" lists and what
the data check reports."""

import shutil
import subprocess
import sys

import pytest

from workbench.engine.config import Experiment, TaskConfig
from workbench.engine.errors import Cancelled, CorpusError
from workbench.gui.jobs.finetune import check_labelled, list_checkpoints


class State:
    """Stands in for bridge.JobState: a job that may be asked to stop."""

    def __init__(self, stop=False):
        self.stop = stop

    def should_stop(self):
        return self.stop

    def check(self):
        if self.stop:
            raise Cancelled("cancelled")

    def progress(self, _value):
        pass


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    from workbench.engine.trainer import Trainer

    runs = tmp_path_factory.mktemp("runs")
    exp = Experiment(name="pre").with_overrides([
        'corpus.paths=["builtin:toy"]', "tokenizer.kind=char", "model.n_layer=1", "model.n_head=2",
        "model.n_embd=16", "model.block_size=32", "training.batch_size=4", "training.max_steps=2",
        "training.threads=1", "training.eval_every=0", "training.attention_every=0", "training.warmup_steps=0"])
    assert Trainer(exp, run_dir=runs / "pre").run().status == "completed"
    return runs / "pre"


def test_the_jobs_module_loads_no_qt():
    code = ("import sys, workbench.gui.jobs.finetune; "
            "print([m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph', 'torch'))])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


def test_start_from_lists_only_runs_with_a_checkpoint(pretrained):
    runs = pretrained.parent
    started = runs / "started"  # a run that stopped before its first checkpoint
    (started / "checkpoints").mkdir(parents=True)
    for name in ("config.toml", "tokenizer.json"):
        shutil.copy(pretrained / name, started / name)
    (runs / "notes").mkdir()
    assert [r.path for r in list_checkpoints(State(), runs)] == [pretrained]
    assert list_checkpoints(State(), runs / "nowhere") == []


def labelled(tmp_path, rows):
    path = tmp_path / "data.tsv"
    path.write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows))
    return TaskConfig(kind="classification", name="sent", train=str(path), text="sentence", label="label")


def test_the_data_check_reads_every_row_and_builds_the_task_of_a_checkpoint(tmp_path, pretrained):
    cfg = labelled(tmp_path, [(f"the cat sat {i}", "yes" if i % 3 else "no") for i in range(40)])
    r = check_labelled(State(), cfg, "")
    assert (r["n_train"], r["n_val"], sorted(r["labels"]), r["regression"]) == (36, 4, ["no", "yes"], False)
    assert r["task"] is None  # from scratch: no tokenizer to build the inputs with
    r = check_labelled(State(), cfg, str(pretrained))
    assert r["task"].kind == "classification" and len(r["task"].examples["val"]) == 4
    from workbench.engine.tokenizer import Tokenizer

    run_tok = Tokenizer.load(pretrained / "tokenizer.json")  # the checkpoint's own tokenizer and context
    assert r["block_size"] == 32 and r["tokenizer"].encode("the cat sat") == run_tok.encode("the cat sat")
    with pytest.raises(Cancelled):
        check_labelled(State(stop=True), cfg, str(pretrained))
    # a bad row far down the file is found now, named as the run would name it
    bad = labelled(tmp_path, [("fine", "yes")] * 30 + [("", "no")])
    with pytest.raises(CorpusError, match="line 32"):
        check_labelled(State(), bad, "")
