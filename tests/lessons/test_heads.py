"""The heads lesson at reduced size: the demo model's copy head forms, the moment is marked, and
the loss on the answer letters falls around it while the loss on the new letters does not."""

from __future__ import annotations

import json

import torch

from workbench import lessons
from workbench.engine.tokenizer import train_tokenizer
from workbench.lessons.base import Mark, Point, run_lesson
from workbench.lessons.heads import ANSWER, NEW, _masks


def test_answer_and_new_letters_are_told_apart_by_the_lines_separator():
    tok = train_tokenizer("char", 64, ["abcdefghijklmnop>\n"])
    text = "abcde>abcde\nfghij>fghij\n"
    answer, new = _masks(torch.tensor([tok.encode(text)]), tok)
    # target t is character t + 1: answers are the letters after ">", new ones the letters before it
    assert [text[t + 1] for t in range(len(text) - 1) if answer[0, t]] == list("abcdefghij")
    assert [text[t + 1] for t in range(len(text) - 1) if new[0, t]] == list("bcdefghij")


def test_the_heads_lesson_marks_the_forming_and_the_answer_letters_fall(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    assert "heads" in lessons.names()
    events = []
    r = run_lesson(lessons.get("heads"), "small", on_event=events.append)
    assert r.complete
    marks = [e for e in events if isinstance(e, Mark)]
    (extra,) = r.conditions[ANSWER].extras
    assert len(marks) == 1 and "copy head forms" in marks[0].text and marks[0].x == extra["formed_step"]
    # the training loss is drawn every step, the two halves and the copy score at every measurement
    series = {e.series for e in events if isinstance(e, Point)}
    assert series == {"", ANSWER, NEW, "copy score"}
    steps = [e.x for e in events if isinstance(e, Point) and e.series == ""]
    assert steps == list(range(1, len(steps) + 1)) and steps[-1] == extra["steps_trained"]
    # the copy head makes the answer letters predictable; the new letters stay random
    answer, new = r.conditions[ANSWER].values[0], r.conditions[NEW].values[0]
    assert answer > 1.0 and abs(new) < 0.3
    out = r.to_json()
    assert out["effect"] == round(answer - new, 4) and not out["seeds_overlap"]
    assert "copy head formed in 1 of 1 seed" in out["verdict"]
    json.dumps(out)
