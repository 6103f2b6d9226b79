"""corpus.window_start: context windows anywhere (the default, unchanged) or at line starts."""

import numpy as np
import pytest
import torch

from workbench.engine.config import ConfigError, Experiment
from workbench.engine.corpus import Corpus
from workbench.engine.data import TokenData, build_token_cache, line_end_ids
from workbench.engine.errors import DataError
from workbench.engine.tokenizer import train_tokenizer


@pytest.fixture
def cached(tmp_path):
    """Lines of varying length (so line starts are not a fixed stride) in two documents, encoded."""
    rng = np.random.default_rng(0)
    lines = ["".join(rng.choice(list("abcdefgh"), size=rng.integers(3, 15))) for _ in range(400)]
    (tmp_path / "a.txt").write_text("\n".join(lines[:200]) + "\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("\n".join(lines[200:]) + "\n", encoding="utf-8")
    corpus = Corpus([str(tmp_path / "a.txt"), str(tmp_path / "b.txt")])
    tok = train_tokenizer("char", 64, (p.text for p in corpus.pieces()))
    return tok, build_token_cache(corpus, tok, tmp_path / "cache")


def test_line_windows_start_right_after_a_line_break(cached):
    tok, cache = cached
    tokens = np.asarray(cache.array())
    newline, eos = tok.encode("\n")[0], tok.special_id("eos")
    data = TokenData.from_cache(cache, 0.1, 16, line_end_ids(tok))
    assert set(line_end_ids(tok)) == {newline, eos}
    gen = torch.Generator().manual_seed(0)
    for split, base in (("train", 0), ("val", len(data.train))):
        text = np.lib.stride_tricks.sliding_window_view(np.asarray(data.split(split)), 16)
        firsts = set()
        for _ in range(20):
            x, y = data.batch(split, 8, gen)
            assert x.shape == y.shape == (8, 16) and torch.equal(x[:, 1:], y[:, :-1])
            for row in x.numpy():
                # where the window lies in the corpus (random letters: one place): after a line break
                at = base + int(np.flatnonzero((text == row).all(axis=1))[0])
                firsts.add(at)
                assert at == 0 or tokens[at - 1] in (newline, eos)
        assert len(firsts) > (60 if split == "train" else 20)  # many different lines, not one
    # the second document's first line starts after the end-of-text token and is a window start
    second = int(np.flatnonzero(tokens == eos)[0]) + 1
    assert second in data.starts["train"]


def test_windows_anywhere_are_the_old_batches_bit_for_bit(cached):
    _tok, cache = cached
    assert Experiment().corpus.window_start == "anywhere"
    data = TokenData.from_cache(cache, 0.1, 16)  # what the trainer builds for "anywhere"
    train = np.asarray(data.train)
    gen, old = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    for _ in range(5):
        x, y = data.batch("train", 8, gen)
        # the batch as drawn before the option existed: one randint over every start, a gather
        ix = torch.randint(len(train) - 16, (8,), generator=old).numpy()
        window = torch.from_numpy(train[ix[:, None] + np.arange(17)].astype(np.int64))
        assert torch.equal(x, window[:, :-1]) and torch.equal(y, window[:, 1:])
    assert torch.equal(gen.get_state(), old.get_state())  # the generator moved exactly as before


def test_line_windows_need_line_breaks_that_leave_room_for_a_window(tmp_path):
    (tmp_path / "one.txt").write_text("x" * 3000 + "\n" + "y" * 20, encoding="utf-8")
    corpus = Corpus([str(tmp_path / "one.txt")])
    tok = train_tokenizer("char", 64, ["xy\n"])
    cache = build_token_cache(corpus, tok, tmp_path / "cache")
    assert list(TokenData.from_cache(cache, 0.0, 16, line_end_ids(tok)).starts["train"]) == [0, 3001]
    # a window of 64 fits after the corpus start only: every window would be the same text
    with pytest.raises(DataError, match=r'corpus.window_start = "line": no line break .* model.block_size'):
        TokenData.from_cache(cache, 0.0, 64, line_end_ids(tok))


def test_window_start_is_checked_by_name():
    assert Experiment().with_overrides(["corpus.window_start=line"]).corpus.window_start == "line"
    with pytest.raises(ConfigError, match=r"corpus.window_start = 'lines' is not one of 'anywhere', 'line'"):
        Experiment().with_overrides(["corpus.window_start=lines"])
