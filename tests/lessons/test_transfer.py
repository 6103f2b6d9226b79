"""The transfer lessons (pretraining, freezing, aux-lm) at their reduced size, on the made-up language
of engine/word_kinds.py: real runs of the engine, so the checks are about what training did."""

from __future__ import annotations

import pytest
import torch

from workbench import lessons
from workbench.engine import builtin_corpora, word_kinds
from workbench.engine.checkpoint import RunDir, load_checkpoint
from workbench.engine.corpus import Corpus
from workbench.engine.config import CorpusConfig
from workbench.lessons import Point, RunDone, run_lesson
from workbench.lessons import _transfer as T
from workbench.lessons.base import ConditionResult, LessonResult


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("lesson-cache")


@pytest.fixture
def shared_cache(module_cache, monkeypatch):
    """One cache for the module: the lessons share the pretrained model of a seed, as they do for a user."""
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(module_cache))
    return module_cache


# -- the language -------------------------------------------------------------------------------


def test_labelled_sentences_say_nothing_about_the_kind_and_test_nouns_were_never_labelled():
    train, test = word_kinds.labelled_examples(3, 200, 400, per_kind=8)
    noun = lambda e: e.text.split()[-1]  # noqa: E731
    assert {noun(e) for e in train}.isdisjoint({noun(e) for e in test})
    assert len({noun(e) for e in train}) == 16 and len({noun(e) for e in test}) > 50
    assert all(word_kinds.LEXICON[noun(e)] == e.label for e in train + test)
    assert sum(e.label == "animal" for e in train) == 100
    cues = {w for verbs in word_kinds.VERBS.values() for w in verbs} | set(word_kinds.PLURAL.values())
    assert not any(cues & set(e.text.split()) for e in train + test)  # only the noun differs
    assert word_kinds.labelled_examples(3, 200, 400) == (train, test)
    assert word_kinds.labelled_examples(4, 200, 400)[0] != train


def test_the_unlabelled_text_tells_the_kinds_apart_by_their_verbs():
    corpus = Corpus.from_config(CorpusConfig(paths=("builtin:kinds",)))
    text = "".join(p.text for p in corpus.pieces())[:200_000]
    verbs_of = {"animal": set(word_kinds.VERBS["animal"]), "machine": set(word_kinds.VERBS["machine"])}
    for line in text.splitlines()[:2000]:
        words = line.split()
        nouns = [w for w in words if w in word_kinds.LEXICON]
        assert nouns, line
        kind = word_kinds.LEXICON[nouns[0]]
        assert {word_kinds.LEXICON[n] for n in nouns} == {kind}, line  # nouns named together: one kind
        other = "machine" if kind == "animal" else "animal"
        assert not verbs_of[other] & set(words), line
    assert "kinds-v1" in builtin_corpora.get("kinds").identity()


# -- the lessons ----------------------------------------------------------------------------------


def _points(events, condition, series=""):
    return [e for e in events if isinstance(e, Point) and e.condition == condition and e.series == series]


def test_pretrained_beats_scratch_on_nouns_no_label_named(shared_cache):
    events = []
    r = run_lesson(lessons.get("pretraining"), "small", on_event=events.append)
    pre, scratch = r.conditions["pretrained"], r.conditions["scratch"]
    assert r.complete and len(pre.values) == 1
    assert pre.values[0] > scratch.values[0] + 0.15, r.to_json()
    assert scratch.values[0] < 0.7   # from scratch an unlabelled noun is a guess
    assert _points(events, "pretraining", T.LM_SERIES), "pretraining draws its LM loss"
    assert len(_points(events, "pretrained")) == T.Sizes(0, 60, 0, 0, eval_every=20).finetune_steps // 20
    assert "better by" in r.verdict()


def test_the_pretrained_model_is_cached_per_settings_and_seed(shared_cache, tmp_path):
    from workbench.lessons.base import RunContext

    ctx = RunContext("pretraining", "", 0, "small", tmp_path)
    first = T.pretrained(ctx, 120)  # made by the test above, or now
    again = T.pretrained(RunContext("pretraining", "", 0, "small", tmp_path / "b"), 120)
    assert again == first and not (tmp_path / "b" / "pretrain").exists()  # nothing trained the second time
    keys = {T._key(T.pretrain_experiment(seed, steps)) for seed, steps in ((0, 120), (1, 120), (0, 121))}
    assert len(keys) == 3


def test_freezing_head_only_leaves_the_pretrained_model_bitwise_equal(shared_cache, tmp_path):
    events = []
    r = run_lesson(lessons.get("freezing"), "small", workdir=tmp_path, on_event=events.append)
    assert r.complete
    pre = {k: v for k, v in load_checkpoint(RunDir.open(_pretrained_folder()).latest_checkpoint())[0].items()
           if k.startswith("model.") and not k.startswith("model.heads.")}

    def trunk(condition):
        folder = tmp_path / "seed0" / condition.replace(" ", "_") / "run"
        return load_checkpoint(RunDir.open(folder).latest_checkpoint())[0]

    head_only, full, gradual = trunk("head only"), trunk("full"), trunk("gradual")
    assert all(torch.equal(head_only[k], v) for k, v in pre.items())
    assert "model.heads.kind.weight" in head_only
    changed = lambda run: {k for k, v in pre.items() if not torch.equal(run[k], v)}  # noqa: E731
    assert any("transformer.h.0" in k for k in changed(full)) and any("wte" in k for k in changed(full))
    assert any("transformer.h.1" in k for k in changed(gradual))
    # accuracy against seconds: x grows with training time
    xs = [p.x for p in _points(events, "head only")]
    assert xs == sorted(xs) and xs[0] > 0
    assert all("seconds" in e.extra for e in events if isinstance(e, RunDone))
    assert "most accurate" in r.verdict()


def _pretrained_folder():
    """The cached pretrained run the lesson's prepare used (the only one in the cache at this size)."""
    from workbench import paths

    return paths.cache_dir() / "lessons" / f"pretrained-{T._key(T.pretrain_experiment(0, 120))}"


def test_aux_lm_trains_the_lm_loss_only_with_lambda(shared_cache):
    r = run_lesson(lessons.get("aux-lm"), "small")
    assert r.complete
    with_lm, without = r.conditions["lambda 0.5"].extras[0], r.conditions["lambda 0"].extras[0]
    assert "lm_loss_last" not in without
    assert with_lm["lm_loss_last"] < with_lm["lm_loss_first"]
    assert r.verdict().startswith("lambda 0.5 ")


def test_a_stop_ends_the_training_run_under_way(shared_cache):
    events = []

    def stop():
        return any(isinstance(e, Point) and e.condition == "pretrained" for e in events)

    r = run_lesson(lessons.get("pretraining"), "small", on_event=events.append, stop=stop)
    assert r.stopped and r.conditions["pretrained"].values == [] and r.conditions["scratch"].values == []
    assert len(_points(events, "pretrained")) == 1  # the run stopped at its first evaluation


# -- the closing words ----------------------------------------------------------------------------


def _result(lesson, values: dict[str, list[float]], seconds: dict[str, float] | None = None) -> LessonResult:
    conds = {}
    for name, vals in values.items():
        extra = {"seconds": seconds[name]} if seconds else {}
        conds[name] = ConditionResult(name, list(range(len(vals))), vals, [1.0] * len(vals), [extra] * len(vals))
    return LessonResult(lesson, "full", conds, 10.0)


def test_freezing_words_name_the_winner_and_its_cost():
    les = lessons.get("freezing")
    r = _result(les, {"head only": [0.6, 0.7, 0.65], "gradual": [1.0, 0.99, 1.0], "full": [0.98, 0.97, 0.99]},
                {"head only": 1.0, "gradual": 2.0, "full": 2.5})
    words = r.verdict()
    assert "gradual is the most accurate" in words and "head only trains fastest (50% of gradual's time" in words
    assert "gives up 0.347" in words


def test_aux_lm_words_say_when_the_effect_is_not_clear():
    les = lessons.get("aux-lm")
    assert "no clear difference" in _result(les, {"lambda 0.5": [0.8, 0.9, 0.7], "lambda 0": [0.85, 0.75, 0.8]}).verdict()
    assert "hurts" in _result(les, {"lambda 0.5": [0.5, 0.55, 0.5], "lambda 0": [0.9, 0.95, 1.0]}).verdict()
    clear = _result(les, {"lambda 0.5": [0.9, 0.95, 1.0], "lambda 0": [0.5, 0.55, 0.6]}).verdict()
    assert "better by 0.400" in clear and "no clear" not in clear
