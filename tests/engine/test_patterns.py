"""Pattern scores: where a head solving each built-in toy task must look, and how much a head does."""

import json

import numpy as np

from workbench.engine.patterns import PREVIOUS, expected_links, pattern_scores, probe_links
from workbench.engine.tokenizer import train_tokenizer

PROBE = "cfhk>cfhk\nbjd<djb\n([{(|)}])\n"


def test_links_point_at_the_letters_and_openers_each_task_needs():
    links = expected_links(PROBE)
    # copy: the query before answer letter j (the separator for j = 0) looks at letter j
    assert links["copy"] == [(4, 0), (5, 1), (6, 2), (7, 3)]
    # reverse on the second line (starts at 10): answer "djb" comes from word positions 2, 1, 0
    assert links["reverse"] == [(13, 12), (14, 11), (15, 10)]
    # brackets on the third line (starts at 18): "([{(" then "|" (at 22) closes ( { [ (
    assert links["brackets"] == [(22, 21), (23, 20), (24, 19), (25, 18)]
    assert links[PREVIOUS][:2] == [(1, 0), (2, 1)] and len(links[PREVIOUS]) == len(PROBE) - 1
    # a bracket line with closed pairs before the bar: only the open ones are closed after it
    assert expected_links("(()[|])")["brackets"] == [(4, 3), (5, 0)]
    assert "copy" not in expected_links("no tasks here")


def test_a_head_that_does_the_lookup_scores_one_and_the_others_do_not():
    links = expected_links(PROBE)
    T = len(PROBE)
    att = np.full((2, 3, T, T), 1.0 / T, dtype=np.float32)
    for q, k in links["copy"]:
        att[1, 2, q] = 0.0
        att[1, 2, q, k] = 1.0
    for q, k in links[PREVIOUS]:
        att[0, 1, q] = 0.0
        att[0, 1, q, k] = 1.0
    scores = pattern_scores(att, links)
    assert scores.scores["copy"].shape == (2, 3)
    assert scores.scores["copy"][1, 2] == 1.0 and scores.scores["copy"][0, 0] < 0.1
    assert scores.scores[PREVIOUS][0, 1] == 1.0
    task, layer, head, value = scores.best()
    assert value == 1.0 and (layer, head) in {(1, 2), (0, 1)}
    # a probe cropped to the context keeps only the links inside it
    cropped = pattern_scores(att[:, :, :8, :8], links)
    assert cropped.scores["copy"][1, 2] == 1.0 and "brackets" not in cropped.scores


def test_links_need_one_token_per_character():
    char = train_tokenizer("char", 64, [PROBE])
    assert probe_links(char, PROBE) == expected_links(PROBE)
    bpe = train_tokenizer("bpe", 300, [PROBE * 50])
    assert probe_links(bpe, PROBE) == {}


def test_bench_demo_times_both_levels_on_a_real_run(capsys):
    from workbench.cli import main

    tiny = ["model.n_layer=1", "model.n_embd=16", "model.n_head=2", "model.block_size=32", "training.batch_size=4",
            "training.eval_every=0", "training.attention_every=5", "training.checkpoint_every=0",
            "training.max_steps=40"]
    args = ["bench", "demo", "--limit", "120", "--loss", "10", "--pattern", "0.0"]
    for t in tiny:
        args += ["--set", t]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    # a loss below 10 nats after the first 10 steps; any head passes 0.0 at the first snapshot (step 0)
    assert out["loss_step"] == 10 and out["pattern_step"] == 0
    assert out["steps"] < 40                          # stopped once both were reached
    assert 0 < out["pattern_seconds"] <= out["loss_seconds"] < 120
    assert out["pattern_head"]["task"] in ("copy", "reverse", "brackets", "previous token")
    assert len(out["load_average"]) == 3 and out["cpu"]
    assert 0 < out["pattern_cpu_seconds"] <= out["loss_cpu_seconds"] and out["step_ms"] > 0
    # several seeds: each run's figures and the spread of the steps to each level
    assert main(args + ["--seeds", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["seed"] for r in out["runs"]] == out["seeds"] == [0, 1]
    assert out["loss_step"] == {"reached": "2 of 2", "median": 10, "min": 10, "max": 10}
    assert out["pattern_step"]["reached"] == "2 of 2" and out["pattern_step"]["max"] == 0


def test_the_demo_loss_level_is_below_what_a_model_that_does_not_copy_can_reach():
    import math

    from workbench.bench.demo import DEMO_LOSS_LEVEL, UNIFORM_LOSS
    from workbench.engine.builtin_corpora import DEMO_LETTERS, LETTERS

    # a window of two demo lines (24 characters, 23 targets): the first line's first letter is given,
    # the second's is a free guess; the other new letters are drawn without repeats; ">" and "\n" are
    # certain. Copying makes the answers certain; without it each answer letter is a guess among 16.
    new = sum(math.log(len(LETTERS) - i) for i in range(1, DEMO_LETTERS))
    copying = (2 * new + math.log(len(LETTERS))) / 23
    not_copying = copying + 2 * DEMO_LETTERS * math.log(len(LETTERS)) / 23
    assert UNIFORM_LOSS == math.log(18) and copying < DEMO_LOSS_LEVEL < not_copying


def test_the_telling_head_is_a_task_head_before_a_previous_token_head():
    from workbench.engine.patterns import CLEAR, telling_head

    links = expected_links(PROBE)
    T = len(PROBE)
    att = np.full((2, 3, T, T), 1.0 / T, dtype=np.float32)
    for q, k in links[PREVIOUS]:  # a perfect previous-token head
        att[0, 1, q] = 0.0
        att[0, 1, q, k] = 1.0
    tokens = list(PROBE)
    found = telling_head(att, tokens)
    assert (found.task, found.layer, found.head, found.clear) == (PREVIOUS, 0, 1, True)
    for q, k in links["copy"]:  # a copy head at 0.6 wins over the perfect previous-token head
        att[1, 2, q] = 0.4 / T
        att[1, 2, q, k] += 0.6
    found = telling_head(att, tokens)
    assert (found.task, found.layer, found.head) == ("copy", 1, 2) and found.score >= CLEAR and found.clear
    # nothing plain: the best head, marked not clear
    flat = np.full((2, 3, T, T), 1.0 / T, dtype=np.float32)
    found = telling_head(flat, tokens)
    assert found is not None and not found.clear and found.score < CLEAR
    # tokens of several characters (a BPE probe): no links, no telling head
    assert telling_head(att[:, :, :3, :3], ["cfh", "k>", "cfhk"]) is None
