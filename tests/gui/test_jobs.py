"""The pages' background jobs (workbench.gui.jobs) called directly, without Qt: each is a plain
function of a JobState-like object, so what a page shows can be checked at its source."""

from __future__ import annotations

import contextlib
import json
import os
import shutil

import pytest
import torch

from tests.gui.test_generate_panel import PROMPT, tiny_run  # noqa: F401 - the fixture
from workbench.engine.config import MultitaskConfig, TaskConfig
from workbench.engine.errors import Cancelled
from workbench.engine.generate import SamplingSettings, generate
from workbench.engine.loading import load_trained
from workbench.gui.jobs import balance, corpus, generate as gen_jobs, models, runs


class State:
    """What a job sees of its JobState: a stop flag and progress, recorded."""

    def __init__(self, stop_after: int | None = None):
        self.sent: list = []
        self.stop_after = stop_after  # should_stop() turns true once this many values were sent

    def should_stop(self) -> bool:
        return self.stop_after is not None and len(self.sent) >= self.stop_after

    def check(self) -> None:
        if self.should_stop():
            raise Cancelled("cancelled")

    def progress(self, value) -> None:
        self.sent.append(value)


def test_stream_tokens_sends_the_engines_tokens_one_by_one_in_order(tiny_run):  # noqa: F811
    tm = load_trained(tiny_run)
    settings = SamplingSettings(max_tokens=20, temperature=1.0, seed=3, stop_at_eos=False)
    ids = tm.tokenizer.encode(PROMPT)
    expected = list(generate(tm.model, tm.tokenizer, ids, settings, attention="all"))
    lent = (tm.model, tm.tokenizer, tm.step)
    state, out = State(), []
    n = gen_jobs.stream_tokens(state, lambda: contextlib.nullcontext(lent), ids, settings, "all", out)
    assert n == 20 == len(out)
    assert [t.id for t in state.sent] == [t.id for t in out] == [t.id for t in expected]
    assert out[0].attention_all is not None  # every layer and head, for the page's pickers

    # Stop after 5 tokens: the job ends as cancelled, the 5 tokens sent
    state, out = State(stop_after=5), []
    with pytest.raises(Cancelled):
        gen_jobs.stream_tokens(state, lambda: contextlib.nullcontext(lent), ids, settings, "all", out)
    assert [t.id for t in state.sent] == [t.id for t in out] == [t.id for t in expected[:5]]

    # a paused run that resumed lends no model any more: the job ends as cancelled
    with pytest.raises(Cancelled):
        gen_jobs.stream_tokens(State(), lambda: contextlib.nullcontext(None), ids, settings)


def test_load_checkpoint_reads_the_run_on_the_cpu(tiny_run):  # noqa: F811
    tm = models.load_checkpoint(State(), str(tiny_run))
    assert tm.step == 3 and next(tm.model.parameters()).device == torch.device("cpu")


def test_list_all_runs_lists_each_run_once_newest_first_and_stops_when_asked(tiny_run, tmp_path):  # noqa: F811
    base, other = tmp_path / "runs", tmp_path / "elsewhere"
    for folder, name, when in ((base, "old", 1_000_000), (base, "new", 2_000_000), (other, "lone", 1_500_000)):
        shutil.copytree(tiny_run, folder / name)
        os.utime(folder / name / "config.toml", (when, when))
    (base / "notes").mkdir()  # not a run
    # the lone run is added on its own; "new" is added again though its folder is listed
    listed = runs.list_all_runs(State(), [str(base)], [str(other / "lone"), str(base / "new"), str(base / "notes")])
    assert [r.path.name for r in listed] == ["new", "lone", "old"]
    with pytest.raises(Cancelled):
        runs.list_all_runs(State(stop_after=0), [str(base)], [])


def test_source_stats_reports_each_source_on_its_own_row(tmp_path):
    good = tmp_path / "notes.jsonl"
    good.write_text("\n".join(json.dumps({"meta": {"title": f"t{i}"}, "text": "ab\ncd"}) for i in range(3)) + "\n")
    missing = tmp_path / "gone.txt"
    state = State()
    corpus.source_stats(state, [str(good), str(missing)], "*.txt", "text", "strict")
    (spec, stats, error, fields), (spec2, stats2, error2, _) = state.sent
    assert spec == str(good) and error is None and stats.documents == 3 and stats.kind == "jsonl"
    assert fields == ["meta.title", "text"]  # nested fields, as the field picker offers them
    assert spec2 == str(missing) and stats2 is None and error2
    # an unchanged file is not counted twice; a stop ends the job before the next source
    again = State(stop_after=1)
    corpus.source_stats(again, [str(good), str(missing)], "*.txt", "text", "strict")
    assert again.sent == state.sent[:1]


def test_preview_text_marks_where_each_document_starts(tmp_path):
    f = tmp_path / "docs.jsonl"
    f.write_text(json.dumps({"text": "first"}) + "\n" + json.dumps({"text": "second"}) + "\n")
    text = corpus.preview_text(State(), str(f), "*.txt", "text", "strict")
    assert text.startswith("first") and text.endswith("second") and "next document" in text
    assert corpus.preview_text(State(), str(f), "*.txt", "text", "strict", max_chars=3) == "fir"


def test_initial_weights_are_the_engines_weighting_at_step_0():
    tasks = [TaskConfig(kind="causal_lm", weight=2.0), TaskConfig(kind="masked_lm", weight=0.5)]
    assert balance.initial_weights(State(), tasks, MultitaskConfig(weighting="fixed")) == pytest.approx([2.0, 0.5])
    assert balance.initial_weights(State(), tasks, MultitaskConfig(weighting="average")) == pytest.approx([0.5, 0.5])
