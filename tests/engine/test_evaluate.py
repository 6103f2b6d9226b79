import json
import math

import pytest
import torch

from workbench.engine import builtin_corpora
from workbench.engine.corpus import Corpus
from workbench.engine.errors import ConfigError
from workbench.engine.evaluate import (ICL_TEMPLATE, InContextTask, PromptTemplate, build_prompt, builtin_icl_task,
                                       demonstration_attention, evaluate_in_context, look_back_attention,
                                       score_prompts)
from workbench.engine.labelled import Example
from workbench.engine.model import GPT, GPTConfig
from workbench.engine.tokenizer import train_tokenizer

SENTIMENT = PromptTemplate(input="Review: {text}\nSentiment:", answer=" {answer}",
                           description="Is each review positive or negative?", separator="\n\n")
VERBALIZER = {"0": "negative", "1": "positive"}
POOL = [Example("a joy to watch", label="1"), Example("dull and slow", label="0"),
        Example("the best film this year", label="1"), Example("I walked out", label="0")]
TEST = [Example("loved every minute", label="1"), Example("a waste of time", label="0"),
        Example("great cast", label="1"), Example("boring", label="0")]


@pytest.fixture(scope="module")
def char_tok():
    text = ("".join(e.text for e in POOL + TEST) + SENTIMENT.description
            + "Review: Sentiment:\nabcdefghijklmnopqrstuvwxyz?0123456789")
    return train_tokenizer("char", 100, [text])


def sentiment_task(**kw):
    return InContextTask(TEST, POOL, SENTIMENT, ["0", "1"], VERBALIZER, **kw)


def test_prompts_are_built_exactly_as_specified_for_0_1_and_3_shots():
    query = Example("a waste of time", label="0")
    demos = [(POOL[0], "positive"), (POOL[1], "negative"), (POOL[2], "positive")]
    answers = ["negative", "positive"]

    p0 = build_prompt(SENTIMENT, [], query, answers, gold=0)
    assert p0.text == "Is each review positive or negative?\n\nReview: a waste of time\nSentiment:"
    assert p0.answers == [" negative", " positive"] and p0.demos_used == 0

    p1 = build_prompt(SENTIMENT, demos[:1], query, answers)
    assert p1.text == ("Is each review positive or negative?\n\n"
                       "Review: a joy to watch\nSentiment: positive\n\n"
                       "Review: a waste of time\nSentiment:")

    p3 = build_prompt(SENTIMENT, demos, query, answers)
    assert p3.text == ("Is each review positive or negative?\n\n"
                       "Review: a joy to watch\nSentiment: positive\n\n"
                       "Review: dull and slow\nSentiment: negative\n\n"
                       "Review: the best film this year\nSentiment: positive\n\n"
                       "Review: a waste of time\nSentiment:")

    # without a description the prompt starts with the first demonstration
    bare = PromptTemplate(input="{text} =>", answer=" {answer}", separator="\n")
    assert build_prompt(bare, demos[:1], query, answers).text == "a joy to watch => positive\na waste of time =>"
    # pairs fill {text_pair}
    pair = PromptTemplate(input="{text}\nQuestion: {text_pair}?\nAnswer:")
    ex = Example("The cat sat.", text_pair="Did it sit", label="yes")
    assert build_prompt(pair, [], ex, ["yes", "no"]).text == "The cat sat.\nQuestion: Did it sit?\nAnswer:"


def test_task_prompts_use_nested_reproducible_draws(char_tok):
    task = sentiment_task()
    d3 = task.demonstrations(3, 0)
    assert task.demonstrations(1, 0) == d3[:1] and task.demonstrations(3, 0) == d3
    assert len(set(map(id, d3))) == 3  # without replacement
    assert any(task.demonstrations(3, d) != d3 for d in range(1, 6))  # draws differ
    p = task.prompt(1, 3, 0)
    expected = build_prompt(SENTIMENT, [(d, VERBALIZER[d.label]) for d in d3], TEST[1],
                            ["negative", "positive"], gold=0)
    assert p.text == expected.text and p.gold == 0
    # with a tokenizer every part's tokens decode to its text and the parts tile the prompt
    p = task.prompt(1, 3, 0, tokenizer=char_tok)
    assert char_tok.decode(p.ids) == p.text
    assert [q.kind for q in p.parts] == ["description", "separator", "demonstration", "separator", "demonstration",
                                         "separator", "demonstration", "separator", "query"]
    assert p.parts[0].start == 0 and p.parts[-1].end == len(p.ids)
    assert all(a.end == b.start for a, b in zip(p.parts, p.parts[1:]))
    assert char_tok.decode(p.ids[p.parts[-1].start:]) == "Review: a waste of time\nSentiment:"


def test_long_prompts_drop_the_farthest_demonstrations_then_cut_from_the_left(char_tok):
    task = sentiment_task()
    full = task.prompt(0, 3, 0, tokenizer=char_tok)
    longest = max(len(a) for a in full.answer_ids)
    fitted = task.prompt(0, 3, 0, tokenizer=char_tok, block_size=len(full.ids) - 5)
    assert fitted.demos_requested == 3 and fitted.demos_used < 3 and fitted.cut_tokens == 0
    assert len(fitted.ids) + longest - 1 <= len(full.ids) - 5
    assert fitted.text.endswith("Review: loved every minute\nSentiment:")
    kept = [p for p in fitted.parts if p.kind == "demonstration"]
    last_demo = task.demonstrations(3, 0)[-1]  # the one next to the query stays
    assert char_tok.decode(fitted.ids[kept[-1].start:kept[-1].end]).startswith(f"Review: {last_demo.text}\n")

    tiny = task.prompt(0, 3, 0, tokenizer=char_tok, block_size=30)
    assert tiny.demos_used == 0 and tiny.cut_tokens > 0
    assert len(tiny.ids) + longest - 1 == 30 and tiny.text == char_tok.decode(tiny.ids)
    assert tiny.text.endswith("minute\nSentiment:")
    assert tiny.parts[-1].kind == "query" and tiny.parts[-1].end == len(tiny.ids)


def constant_model(tokenizer, probs: dict[str, float]) -> GPT:
    """A GPT whose next-token distribution is the same everywhere: ``probs`` on the given characters,
    the rest spread thinly over the other tokens."""
    torch.manual_seed(0)
    V = tokenizer.vocab_size
    model = GPT(GPTConfig(vocab_size=V, n_layer=1, n_head=1, n_embd=8, block_size=256)).eval()
    rest = (1.0 - sum(probs.values())) / (V - len(probs))
    logits = torch.full((V,), math.log(rest))
    for ch, p in probs.items():
        (i,) = tokenizer.encode(ch)
        logits[i] = math.log(p)
    with torch.no_grad():
        model.transformer.ln_f.weight.zero_()  # every position's final state is ln_f.bias = e_0 ...
        model.transformer.ln_f.bias.zero_()
        model.transformer.ln_f.bias[0] = 1.0
        model.transformer.wte.weight[:, 0] = logits  # ... so the (tied) output logits are column 0
    return model


@pytest.mark.parametrize("preferred", ["0", "1"])
def test_scoring_picks_the_label_the_model_is_rigged_to_prefer(char_tok, preferred):
    task = InContextTask(TEST, POOL, SENTIMENT, ["0", "1"], {"0": "x", "1": "y"})
    model = constant_model(char_tok, {"x": 0.6 if preferred == "0" else 0.05, "y": 0.6 if preferred == "1" else 0.05,
                                      " ": 0.3})
    result = evaluate_in_context(model, char_tok, task, ks=[0, 2], draws=2)
    want = sum(ex.label == preferred for ex in TEST) / len(TEST)
    assert [r.accuracy for r in result.results] == [want, want]
    assert all(p == int(preferred) for r in result.results for draw in r.predictions for p in draw)
    assert result.chance == 0.5 and result.results[0].std == 0.0
    json.dumps(result.to_dict())  # plain data all the way down


def test_length_normalisation_changes_the_choice_between_short_and_long_answers(char_tok):
    # p(a) = 0.4, p(b) = 0.5: "a" has the larger sum (-0.92 vs 3 * -0.69), "bbb" the larger mean
    template = PromptTemplate(input="{text} =", answer="{answer}")
    task = InContextTask(TEST, POOL, template, ["0", "1"], {"0": "a", "1": "bbb"})
    model = constant_model(char_tok, {"a": 0.4, "b": 0.5})
    prompt = task.prompt(0, 0, tokenizer=char_tok, block_size=256)
    (summed,) = score_prompts(model, [prompt])
    (mean,) = score_prompts(model, [prompt], length_norm=True)
    assert summed == pytest.approx([math.log(0.4), 3 * math.log(0.5)], abs=1e-4)
    assert mean == pytest.approx([math.log(0.4), math.log(0.5)], abs=1e-4)
    by_sum = evaluate_in_context(model, char_tok, task, ks=[0], draws=1)
    by_mean = evaluate_in_context(model, char_tok, task, ks=[0], draws=1, length_norm=True)
    assert set(by_sum.results[0].predictions[0]) == {0} and set(by_mean.results[0].predictions[0]) == {1}


def test_batched_scoring_equals_one_prompt_at_a_time(char_tok):
    torch.manual_seed(1)
    model = GPT(GPTConfig(vocab_size=char_tok.vocab_size, n_layer=2, n_head=2, n_embd=16, block_size=256)).eval()
    task = InContextTask(TEST, POOL, SENTIMENT, ["0", "1", "2"], {"0": "no", "1": "yes", "2": "t"})
    prompts = [task.prompt(i, k, 0, tokenizer=char_tok, block_size=256) for i in range(4) for k in (0, 2)]
    batched = score_prompts(model, prompts, batch_tokens=100_000)
    small = score_prompts(model, prompts, batch_tokens=120)  # a few rows per forward pass
    assert sum(batched, []) == pytest.approx(sum(small, []), abs=1e-4)
    # against a plain full forward pass of prompt + answer
    p = prompts[3]
    for a_i, ans in enumerate(p.answer_ids):
        x = torch.tensor([p.ids + ans])
        logp = torch.log_softmax(model(x)[0][0], -1)
        want = sum(logp[len(p.ids) - 1 + j, t].item() for j, t in enumerate(ans))
        assert batched[3][a_i] == pytest.approx(want, abs=1e-4)


def test_demonstration_attention_splits_the_query_attention_over_the_parts(char_tok):
    torch.manual_seed(2)
    model = GPT(GPTConfig(vocab_size=char_tok.vocab_size, n_layer=2, n_head=2, n_embd=16, block_size=256)).eval()
    p = sentiment_task().prompt(0, 3, 0, tokenizer=char_tok, block_size=256)
    a = demonstration_attention(model, p)
    assert len(a.demonstrations) == 3 and len(a.share) == len(p.parts)
    assert sum(a.share) == pytest.approx(1.0, abs=1e-5) and sum(a.last) == pytest.approx(1.0, abs=1e-5)
    assert len(a.per_layer) == 2 and all(sum(row) == pytest.approx(1.0, abs=1e-5) for row in a.per_layer)
    assert set(a.by_kind()) == {"description", "separator", "demonstration", "query"}


def test_bad_settings_are_reported_in_words():
    with pytest.raises(ConfigError, match="same verbalizer word"):
        InContextTask(TEST, POOL, SENTIMENT, ["0", "1"], {"0": "meh", "1": "meh"})
    with pytest.raises(ConfigError, match="text_pair"):
        PromptTemplate(input="{text} {premise}").fill_input(TEST[0])


def test_icl_corpus_is_deterministic_and_keeps_each_lines_mapping():
    corpus = builtin_corpora.BUILTINS["icl"]
    first = next(corpus.chunks())
    assert first == next(corpus.chunks())
    other = "".join(builtin_corpora.generate(corpus.tasks, size_chars=20_000, seed=7))
    assert other == "".join(builtin_corpora.generate(corpus.tasks, size_chars=20_000, seed=7))
    assert other[:2000] != first[:2000]
    repeats = 0
    for line in first.splitlines()[:300]:
        seen = {}
        for pair in line.split(" "):
            key, value = pair
            assert key in builtin_corpora.ICL_KEYS and value in builtin_corpora.ICL_VALUES
            repeats += key in seen
            assert seen.setdefault(key, value) == value  # a key keeps its value within its line
    assert repeats > 1000
    piece = next(Corpus(["builtin:icl"]).pieces(max_chars=4096))
    assert first.startswith(piece.text)


def test_icl_eval_set_shares_one_mapping_between_demonstrations_and_queries():
    test = builtin_corpora.icl_eval_examples(50, seed=3, part="test")
    demos = builtin_corpora.icl_eval_examples(20, seed=3, part="demos")
    assert test == builtin_corpora.icl_eval_examples(50, seed=3, part="test")
    mapping = {e.text: e.label for e in test}
    assert len(mapping) == 4 and len(set(mapping.values())) == 4
    assert all(mapping.get(e.text, e.label) == e.label for e in demos)
    assert {e.text: e.label for e in builtin_corpora.icl_eval_examples(50, seed=4)} != mapping
    task = builtin_icl_task(n=10, seed=3)
    assert task.template == ICL_TEMPLATE and task.chance() == 0.25
    d = task.demonstrations(2, 0)
    assert task.prompt(0, 2, 0).text == f"{d[0].text}{d[0].label} {d[1].text}{d[1].label} {task.test[0].text}"


def test_the_eval_command_prints_a_table_and_writes_json(tmp_path, capsys):
    from workbench.cli import main
    from workbench.engine.gpt2_interop import export_gpt2, import_gpt2

    tok = train_tokenizer("char", 64, [builtin_corpora.ICL_KEYS + builtin_corpora.ICL_VALUES + " \n"])
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_embd=16, block_size=32))
    run = import_gpt2(export_gpt2(model, tok, tmp_path / "hf"), tmp_path / "run")
    out = tmp_path / "icl.json"
    assert main(["eval", str(run), "--data", "builtin:icl", "--k", "0,2,12", "--draws", "2", "--limit", "20",
                 "--attention", "3", "--show-prompt", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "query attention per demonstration" in printed
    result = json.loads(out.read_text())
    assert result["ks"] == [0, 2, 12] and len(result["results"][1]["accuracies"]) == 2
    assert result["results"][2]["demos_used"] < 12  # 12 demonstrations do not fit 32 tokens
    # a labelled file: the demonstration pool is held out of it
    data = tmp_path / "data.tsv"
    data.write_text("sentence\tlabel\n" + "".join(f"{w}\t{i % 2}\n" for i, w in enumerate("abcdefghijklmnopqrst")))
    assert main(["eval", str(run), "--data", str(data), "--text", "sentence", "--label", "label",
                 "--verbalizer", "0=x,1=y", "--template", r"{text}\n", "--answer-template", "{answer}",
                 "--k", "0,1", "--draws", "2", "--attention", "0"]) == 0
    assert "16 examples" in capsys.readouterr().out


def test_prompt_parts_carry_their_own_text(char_tok):
    task = sentiment_task()
    p = task.prompt(1, 3, 0, tokenizer=char_tok)
    assert "".join(q.text for q in p.parts) == p.text
    assert all(char_tok.decode(p.ids[q.start:q.end]) == q.text for q in p.parts)
    assert p.parts[2].text == f"Review: {task.demonstrations(3, 0)[0].text}\nSentiment: " + \
        VERBALIZER[task.demonstrations(3, 0)[0].label]
    cut = task.prompt(0, 3, 0, tokenizer=char_tok, block_size=30)  # cut from the left: decoded
    assert cut.cut_tokens > 0 and "".join(q.text for q in cut.parts) == cut.text
    assert all(char_tok.decode(cut.ids[q.start:q.end]) == q.text for q in cut.parts)


def test_labelled_icl_task_holds_out_demonstrations_and_names_missing_columns(tmp_path):
    from workbench.engine.errors import CorpusError
    from workbench.engine.evaluate import default_template, labelled_icl_task
    from workbench.engine.labelled import Columns

    data = tmp_path / "data.tsv"
    data.write_text("sentence\tlabel\n" + "".join(f"{w}\t{i % 2}\n" for i, w in enumerate("abcdefghijklmnopqrst")))
    task = labelled_icl_task(data, Columns(text="sentence", label="label"), verbalizer={"0": "x", "1": "y"})
    assert len(task.test) == 16 and len(task.pool) == 4  # a fifth held out for demonstrations
    assert not {e.line for e in task.test} & {e.line for e in task.pool}
    assert task.labels == ["0", "1"] and task.verbalize("1") == "y" and task.template == default_template()
    assert len(labelled_icl_task(data, Columns(text="sentence", label="label"), limit=5).test) == 5
    demos = tmp_path / "demos.tsv"
    demos.write_text("sentence\tlabel\nzz\t1\n")
    other = labelled_icl_task(data, Columns(text="sentence", label="label"), labels=["1", "0"], demos=demos)
    assert len(other.test) == 20 and [e.text for e in other.pool] == ["zz"] and other.labels == ["1", "0"]
    with pytest.raises(CorpusError, match="'sentense'"):
        labelled_icl_task(data, Columns(text="sentense", label="label"))


def test_look_back_attention_finds_the_earlier_occurrence_and_the_token_after_it(char_tok):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=char_tok.vocab_size, n_layer=2, n_head=2, n_embd=16, block_size=32)).eval()
    # zero queries and keys: every head spreads its attention evenly over the positions so far,
    # so position t gives 1 / (t + 1) to each earlier token, whichever the layer
    for block in model.transformer.h:
        with torch.no_grad():
            block.attn.c_attn.weight[:32].zero_()
            block.attn.c_attn.bias[:32].zero_()
    # repeats: a at 3 (earlier: 0), b at 4 (earlier: 1), b at 6 (earlier: 1 and 4), a at 7 (earlier: 0 and 3);
    # each earlier occurrence counts, and so does the token after it
    text = "ab1ab2ba"
    lb = look_back_attention(model, char_tok, [text])
    expected = (1 / 4 + 1 / 5 + 2 / 7 + 2 / 8) / 4  # same weight for the occurrences and the tokens after them
    assert lb.positions == 4
    assert torch.allclose(torch.tensor(lb.same_token), torch.full((2, 2), expected), atol=1e-5)
    assert torch.allclose(torch.tensor(lb.induction), torch.full((2, 2), expected), atol=1e-5)
    only_a = look_back_attention(model, char_tok, [text], only=lambda t: t == "a")
    assert only_a.positions == 2 and abs(only_a.induction[0][0] - (1 / 4 + 2 / 8) / 2) < 1e-5
    with pytest.raises(ConfigError, match="no token repeats"):
        look_back_attention(model, char_tok, ["abc"])
