"""`workbench lesson` in-process (a test lesson registered for the test): the list, a run's lines and
table, --json as the only thing on stdout, exit codes for a bad name, a failing lesson and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal

import pytest

from workbench import lessons
from workbench.cli import main

from .toy import toy_lesson


@pytest.fixture
def registered(monkeypatch):
    """Register lessons for one test: ``registered(lesson, ...)``."""
    def register(*items):
        monkeypatch.setattr(lessons, "all_lessons", lambda: {les.name: les for les in items})
    return register


def test_the_list_names_every_lesson_with_title_budget_and_claim(registered, capsys):
    registered(toy_lesson("toy"), toy_lesson("other", title="Another", claim="Other claim.", budget_s=150))
    assert main(["lesson"]) == 0
    out = capsys.readouterr().out
    assert "toy" in out and "Toy lesson (about 1 min" in out and "Pretrained beats scratch." in out
    assert "other" in out and "Another (about 2.5 min" in out and "Other claim." in out
    assert main(["lesson", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [x["name"] for x in listed] == ["toy", "other"] and listed[1]["budget_seconds"] == 150


def test_a_run_prints_the_claim_each_run_the_table_effect_and_verdict(registered, capsys):
    registered(toy_lesson())
    assert main(["lesson", "toy"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "claim: Pretrained beats scratch." in out
    assert "  scratch      seed 1     0.6000" in out and out.count("  seed 1\n") == 2   # the numeric extras
    runs = [line.split() for line in lines if line.startswith("  pretrained ") or line.startswith("  scratch ")]
    assert [(r[0], r[2], r[3]) for r in runs] == [("pretrained", "0", "0.9000"), ("scratch", "0", "0.5000"),
                                                  ("pretrained", "1", "0.8000"), ("scratch", "1", "0.6000"),
                                                  ("pretrained", "2", "0.8500"), ("scratch", "2", "0.5500")]
    assert sum(line.startswith("  pretraining ") for line in lines) == 3   # one prepare per seed
    row = next(line for line in lines if line.startswith("pretrained "))
    assert "0.8500 ± 0.0500" in row and "0.9000  0.8000  0.8500" in row
    assert "effect (pretrained - scratch): +0.3000" in out
    assert "every seed agrees" in out


def test_json_is_the_only_thing_on_stdout(registered, capsys):
    registered(toy_lesson())
    assert main(["lesson", "toy", "--json", "--size", "small"]) == 0
    captured = capsys.readouterr()
    j = json.loads(captured.out)                       # one object, nothing else
    assert j["conditions"]["pretrained"]["values"] == [0.9, 0.8]   # small: 2 seeds
    assert j["conditions"]["scratch"]["mean"] == pytest.approx(0.55)
    assert j["effect"] == pytest.approx(0.3) and j["seconds"] >= 0 and j["complete"] is True
    assert "pretrained" in captured.err                # the run lines went to stderr


def test_seeds_and_keep(registered, capsys, tmp_path):
    registered(toy_lesson())
    keep = tmp_path / "runs"
    assert main(["lesson", "toy", "--seeds", "1", "--json", "--keep", str(keep)]) == 0
    j = json.loads(capsys.readouterr().out)
    assert j["conditions"]["pretrained"]["seeds"] == [0]
    assert (keep / "seed0" / "pretrained").is_dir() and (keep / "seed0" / "pretraining").is_dir()
    # a folder that already holds something is refused before anything runs
    assert main(["lesson", "toy", "--keep", str(keep)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["lesson", "toy", "--keep", str(keep / "seed0" / "pretrained" / "x")]) == 0  # new: made
    (tmp_path / "file").write_text("x")
    assert main(["lesson", "toy", "--keep", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_unknown_name_exits_2_with_the_names(registered, capsys):
    registered(toy_lesson("toy"), toy_lesson("other"))
    assert main(["lesson", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no lesson named 'nope'" in err and "toy, other" in err
    with pytest.raises(SystemExit) as e:
        main(["lesson", "toy", "--size", "huge"])
    assert e.value.code == 2


def test_a_failing_lesson_exits_1_and_says_where(registered, capsys):
    registered(toy_lesson(fail_at=("scratch", 1)))
    assert main(["lesson", "toy"]) == 1
    captured = capsys.readouterr()
    assert "lesson 'toy' failed in scratch, seed 1: RuntimeError: the toy broke on purpose" in captured.err
    assert "3 runs had finished" in captured.err
    assert captured.out.count("\n  pretrained ") == 2   # what finished was printed as it finished


def test_ctrl_c_stops_and_prints_what_finished(registered, capsys):
    def interrupt(ctx):
        if (ctx.condition, ctx.seed) == ("scratch", 1):
            os.kill(os.getpid(), signal.SIGINT)   # the user presses Ctrl-C during this run

    registered(toy_lesson(on_run=interrupt))
    before = signal.getsignal(signal.SIGINT)
    assert main(["lesson", "toy"]) == 130
    captured = capsys.readouterr()
    assert "stopping the lesson" in captured.err
    assert "stopped: 3 runs had finished" in captured.out
    row = next(line for line in captured.out.splitlines() if line.startswith("pretrained "))
    assert "0.9000  0.8000" in row                      # both pretrained runs, the stopped scratch not
    assert "effect (pretrained - scratch)" in captured.out
    assert signal.getsignal(signal.SIGINT) is before   # the handler is given back
