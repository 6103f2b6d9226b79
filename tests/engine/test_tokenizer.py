"""Tokenizers: training by streaming, exact round trips, special tokens, files, cancelling."""

from __future__ import annotations

import json
import re

import pytest
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers

from workbench.engine import tokenizer as tokmod
from workbench.engine.errors import Cancelled, CorpusError, TokenizerError
from workbench.engine.tokenizer import KINDS, SPECIAL_TOKENS, Tokenizer, train_tokenizer

PROSE = """\
The workbench trains small language models. A tokenizer cuts text into pieces, and the model
learns which piece comes next. Short words such as "the", "and" and "of" come back again and
again; longer ones are built from parts: train-ing, token-izer, work-bench.

Café owners in Zürich and Málaga serve crème brûlée; the naïve coöperative façade is rosé.
Σωκράτης said: γνῶθι σεαυτόν.  Two  spaces,   three   spaces, and a tab\there.
日本語のテキストも少し。東京と京都。 Arrows → and ← and emoji 🙂 🚀 too.
Why? The quick brown fox jumps over the lazy dog! Numbers: 0 1 2 3 4 5 6 7 8 9, 2024-06-30.

"""

CODE = """\
def tokenize(text, vocab):
\t# split on spaces, keep the pieces
\tpieces = text.split(" ")
\tfor i, piece in enumerate(pieces):
\t\tif piece not in vocab:  ## unknown
\t\t\tpieces[i] = "<unk>"
\treturn pieces

class Counter:
    def __init__(self):
        self.counts = {}   # word -> count

    def add(self, word):
        self.counts[word] = self.counts.get(word, 0) + 1
###x a##b #include <stdio.h>
"""

CORPUS = (PROSE + CODE) * 3  # some repetition, so that pairs and pieces recur
LINES = CORPUS.splitlines(keepends=True)

# Text not in the corpus, made only of characters the corpus has (char, wordpiece and unigram map
# unseen characters to <|unk|>; bpe never does).
UNSEEN = ('Then the owner of the café said:  "no".\n\n\tdef count(words):\n\t\treturn len(words)  # ok\n'
          "   leading spaces, trailing tab\t\nΣωκράτης → 東京 🙂 ## #a a#b ###\n")

VOCAB = {"char": 512, "bpe": 400, "wordpiece": 400, "unigram": 300}


def pieces(text=CORPUS, size=300):
    """Stream text in pieces, as the corpus module does."""
    for i in range(0, len(text), size):
        yield text[i:i + size]


@pytest.fixture(scope="module")
def trained():
    return {kind: train_tokenizer(kind, VOCAB[kind], pieces()) for kind in KINDS}


def test_unseen_text_uses_only_seen_characters():
    assert set(UNSEEN) <= set(CORPUS)


# -- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_on_unseen_text(trained, kind):
    tok = trained[kind]
    for text in [UNSEEN, "", " ", "\n", "\n\n\n", "a  b", "  x", "x  ", "\t\t", CORPUS]:
        ids = tok.encode(text)
        assert tok.decode(ids) == text, (kind, text)
        assert all(0 <= i < tok.vocab_size for i in ids)


@pytest.mark.parametrize("kind", KINDS)
def test_chunk_encodings_concatenate(trained, kind):
    # the token cache encodes line by line and joins the ids
    tok = trained[kind]
    lines = UNSEEN.splitlines(keepends=True)
    ids = [i for row in tok.encode_batch(lines) for i in row]
    assert tok.decode(ids) == UNSEEN
    assert tok.encode_batch(lines) == [tok.encode(line) for line in lines]


def test_bpe_round_trips_any_text(trained):
    tok = trained["bpe"]
    text = "never seen: ✓ ∑ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \x00\x7f \r\n 😀👍🏽 ﷺ"
    assert tok.decode(tok.encode(text)) == text
    assert tok.special_id("unk") not in tok.encode(text)


def test_char_keeps_the_most_frequent_characters():
    text = "aaaa bbb cc d\n"
    tok = train_tokenizer("char", len(SPECIAL_TOKENS) + 3, [text])
    assert tok.vocab_size == len(SPECIAL_TOKENS) + 3
    assert tok.decode(tok.encode("ab a")) == "ab a"
    unk = tok.special_id("unk")
    assert tok.encode("cd") == [unk, unk]  # kept: 'a' (4 times), 'b' and ' ' (3 times each)
    assert tok.encode("abc") == [tok.encode("a")[0], tok.encode("b")[0], unk]


def test_char_is_one_token_per_character(trained):
    tok = trained["char"]
    text = "Zürich\t日本 🙂\n"
    assert len(tok.encode(text)) == len(text)
    assert tok.token_texts(tok.encode(text)) == list(text)


def test_wordpiece_keeps_hashes_apart_from_continuations(trained):
    tok = trained["wordpiece"]
    for text in ["#", "##", "###", "a##b", "## x", "x##", "#include", "####\n##"]:
        assert tok.decode(tok.encode(text)) == text
    # a word holding a byte the corpus never had becomes one <|unk|>, as WordPiece does
    unk = tok.special_id("unk")
    ids = tok.encode("the ŵord is")  # ŵ is a letter the corpus lacks: " ŵord" is one word
    assert ids.count(unk) == 1
    assert tok.decode(ids) == "the<|unk|> is"


def test_wordpiece_long_runs_do_not_become_unknown(trained):
    tok = trained["wordpiece"]
    text = " " * 500 + "x" * 300 + "9" * 200 + "." * 150 + "\n" * 100
    ids = tok.encode(text)
    assert tok.special_id("unk") not in ids
    assert tok.decode(ids) == text


def test_unigram_normalises_only_the_metaspace_character(trained):
    tok = trained["unigram"]
    assert tok.decode(tok.encode("a\u2581b")) == "a b"  # documented: a literal ▁ comes back as a space
    assert tok.decode(tok.encode("a b")) == "a b"


@pytest.mark.parametrize("kind", ["char", "wordpiece", "unigram"])
def test_unseen_characters_become_unk(trained, kind):
    tok = trained[kind]
    assert tok.special_id("unk") in tok.encode("a ✓ b")


# -- special tokens ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_special_tokens_are_the_first_ids_in_order(trained, kind):
    tok = trained[kind]
    assert list(SPECIAL_TOKENS) == ["pad", "bos", "eos", "mask", "delim", "extract", "unk"]
    for i, role in enumerate(SPECIAL_TOKENS):
        assert tok.special_id(role) == i
        assert tok.token_texts([i]) == [SPECIAL_TOKENS[role]]
    text = "question<|delim|>answer<|endoftext|>\n<|pad|><|pad|> x<|mask|>y <|extract|>"
    ids = tok.encode(text)
    for role in ("delim", "eos", "pad", "mask", "extract"):
        assert tok.special_id(role) in ids
    assert ids.count(tok.special_id("pad")) == 2
    assert tok.decode(ids) == text


def test_unknown_role_lists_the_roles(trained):
    with pytest.raises(TokenizerError, match=r'did you mean "mask".*pad, bos, eos'):
        trained["bpe"].special_id("masc")


@pytest.mark.parametrize("kind", KINDS)
def test_add_special_tokens_appends_missing_roles(trained, kind):
    tok = trained[kind]
    # a tokenizer that lacks "mask": rename its token everywhere in the JSON, ids unchanged
    lacking = Tokenizer.from_str(tok.to_str().replace("<|mask|>", "<|old_mask|>"))
    with pytest.raises(TokenizerError, match="add_special_tokens"):
        lacking.special_id("mask")
    size = lacking.vocab_size
    before = lacking.encode(UNSEEN)
    assert lacking.add_special_tokens(["eos", "mask"]) == [tok.special_id("eos"), size]
    assert lacking.vocab_size == size + 1
    assert lacking.encode(UNSEEN) == before
    assert size in lacking.encode("a<|mask|>b")
    assert lacking.decode(lacking.encode("a<|mask|>b")) == "a<|mask|>b"
    assert lacking.add_special_tokens(["mask"]) == [size]  # already there: nothing changes
    assert lacking.vocab_size == size + 1


def _gpt2_style(tmp_path):
    """A small tokenizer.json shaped like GPT-2's: byte-level BPE, only <|endoftext|> special."""
    hf = HFTokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    hf.train_from_iterator(LINES, trainer)
    path = tmp_path / "tokenizer.json"
    hf.save(str(path))
    return path, hf


def test_gpt2_style_file_loads_and_gets_missing_specials(tmp_path):
    path, hf = _gpt2_style(tmp_path)
    tok = Tokenizer.load(path)
    assert tok.kind == "bpe"
    assert tok.encode(UNSEEN) == hf.encode(UNSEEN).ids
    assert tok.decode(tok.encode(UNSEEN)) == UNSEEN
    assert tok.special_id("eos") == hf.token_to_id("<|endoftext|>")
    with pytest.raises(TokenizerError, match=r"no <\|pad\|> token"):
        tok.special_id("pad")
    size = tok.vocab_size
    assert tok.add_special_tokens(["pad", "bos"]) == [size, size + 1]
    assert tok.encode(UNSEEN) == hf.encode(UNSEEN).ids
    tok.save(tmp_path / "grown.json")
    again = Tokenizer.load(tmp_path / "grown.json")
    assert again.special_id("pad") == size and again.vocab_size == size + 2


# -- sizes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_vocab_size_is_respected(trained, kind):
    assert trained[kind].vocab_size <= VOCAB[kind]
    small = {"char": 40, "bpe": 270, "wordpiece": 260, "unigram": 150}[kind]
    tok = train_tokenizer(kind, small, pieces())
    assert tok.vocab_size <= small
    assert tok.decode(tok.encode(UNSEEN)) == UNSEEN or kind == "char"


@pytest.mark.parametrize("kind", KINDS)
def test_too_small_vocab_names_the_smallest_that_works(kind):
    with pytest.raises(TokenizerError, match=r"at least (\d+)") as err:
        train_tokenizer(kind, 8 if kind != "char" else 7, pieces())
    smallest = int(re.search(r"at least (\d+)", str(err.value)).group(1))
    tok = train_tokenizer(kind, smallest, pieces())
    assert tok.vocab_size <= smallest
    if kind in ("wordpiece", "unigram"):  # sizes that depend on the corpus: exactly the smallest
        with pytest.raises(TokenizerError, match=f"at least {smallest}"):
            train_tokenizer(kind, smallest - 1, pieces())
    assert tok.decode(tok.encode(UNSEEN)) == UNSEEN or kind == "char"


def test_bad_kind_and_empty_corpus():
    with pytest.raises(TokenizerError, match='did you mean "bpe"'):
        train_tokenizer("bpee", 500, pieces())
    for kind in KINDS:
        with pytest.raises(TokenizerError, match="empty"):
            train_tokenizer(kind, 500, iter([]))


# -- display -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_token_texts_are_readable_and_join_to_the_text(trained, kind):
    tok = trained[kind]
    text = "Then the owner said:  no\n\tdef count(words):  # ok\n"
    texts = tok.token_texts(tok.encode(text))
    assert "".join(texts) == text
    assert not any(t.startswith("##") or "Ġ" in t or "\u2581" in t or "Ċ" in t for t in texts)
    if kind == "bpe":  # word pieces carry their leading space
        assert any(len(t) > 1 and t[0] == " " and t[1:].isalpha() for t in texts)
    if kind == "unigram":  # ▁ is shown as the space it stands for
        assert any(t.startswith(" ") for t in texts)
    if kind == "wordpiece":  # some piece continues a word and is shown without its ##
        conts = [t for t, i in zip(texts, tok.encode(text)) if tok._hf.id_to_token(i).startswith("##")]
        assert conts and all(not c.startswith("#") for c in conts)


def test_token_texts_of_odd_ids(trained):
    tok = trained["bpe"]
    assert tok.token_texts([tok.vocab_size + 5]) == ["\ufffd"]
    # a byte-level token holding part of a character shows its bytes
    b = tok._hf.token_to_id("ð")  # byte 0xF0 alone: the start of a 4-byte character
    assert tok.token_texts([b]) == ["\\xf0"]


def test_byte_level_table_matches_the_library():
    assert set(tokmod._BYTE_OF) == set(pre_tokenizers.ByteLevel.alphabet())
    assert sorted(tokmod._BYTE_OF.values()) == list(range(256))
    for ch in [" ", "\n", "\t", "a", "é"]:
        [(mapped, _)] = pre_tokenizers.ByteLevel(add_prefix_space=False).pre_tokenize_str(ch)
        assert bytes(tokmod._BYTE_OF[c] for c in mapped) == ch.encode()


# -- files -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_save_and_load(trained, kind, tmp_path):
    tok = trained[kind]
    tok.save(tmp_path / "tokenizer.json")
    again = Tokenizer.load(tmp_path / "tokenizer.json")
    assert again.kind == kind
    assert again.vocab_size == tok.vocab_size
    assert again.encode(UNSEEN) == tok.encode(UNSEEN)
    assert again.fingerprint() == tok.fingerprint()
    assert Tokenizer.load(tmp_path).encode(UNSEEN) == tok.encode(UNSEEN)  # a folder holding one
    # the file is plain Hugging Face format
    hf = HFTokenizer.from_file(str(tmp_path / "tokenizer.json"))
    assert hf.encode(UNSEEN, add_special_tokens=False).ids == tok.encode(UNSEEN)
    assert hf.decode(tok.encode(UNSEEN), skip_special_tokens=False) == UNSEEN
    assert Tokenizer.from_str(tok.to_str()).encode(UNSEEN) == tok.encode(UNSEEN)


def test_fingerprints_differ_between_tokenizers(trained):
    prints = {trained[k].fingerprint() for k in KINDS}
    assert len(prints) == len(KINDS)
    assert all(re.fullmatch(r"[0-9a-f]{64}", p) for p in prints)


def test_bad_files_name_the_file(tmp_path):
    cases = {
        "garbage.json": "this is not json",
        "other.json": json.dumps({"name": "not a tokenizer"}),
        "broken.json": json.dumps({"model": {"type": "BPE", "vocab": "oops"}}),
        "wordlevel.json": json.dumps({"model": {"type": "WordLevel", "vocab": {}}}),
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_text(content)
        with pytest.raises(TokenizerError, match=re.escape(str(path))):
            Tokenizer.load(path)
    (tmp_path / "latin1.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(TokenizerError, match="latin1.json"):
        Tokenizer.load(tmp_path / "latin1.json")
    with pytest.raises(TokenizerError, match="missing.json"):
        Tokenizer.load(tmp_path / "missing.json")
    with pytest.raises(TokenizerError, match="<string>"):
        Tokenizer.from_str("{}")


# -- streaming, progress, cancelling -----------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_progress_reports_growing_character_counts(kind, monkeypatch):
    monkeypatch.setattr(tokmod, "_PROGRESS_EVERY", 400)
    seen = []
    train_tokenizer(kind, VOCAB[kind], pieces(), progress=seen.append)
    assert len(seen) >= 5
    assert all(a < b for a, b in zip(seen, seen[1:]))
    assert seen[-1] == len(CORPUS)


@pytest.mark.parametrize("kind", KINDS)
def test_should_stop_cancels_cleanly(kind):
    asked = []
    read = []

    def stream():
        for p in pieces():
            read.append(p)
            yield p

    def should_stop():
        asked.append(1)
        return len(asked) > 5

    with pytest.raises(Cancelled):
        train_tokenizer(kind, VOCAB[kind], stream(), should_stop=should_stop)
    assert len(read) == 6  # stopped reading at once: the stream was not drained
    # nothing is left half-done: the next training works as if the first had not happened
    tok = train_tokenizer(kind, VOCAB[kind], pieces())
    assert tok.decode(tok.encode(UNSEEN)) == UNSEEN
    assert tok.vocab_size == train_tokenizer(kind, VOCAB[kind], pieces()).vocab_size


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_training_is_deterministic(kind):
    # (wordpiece and unigram may break ties differently from run to run: the library's hash maps)
    assert train_tokenizer(kind, VOCAB[kind], pieces()).to_str() == \
        train_tokenizer(kind, VOCAB[kind], pieces()).to_str()


@pytest.mark.parametrize("kind", KINDS)
def test_errors_of_the_corpus_pass_through_unchanged(kind):
    def broken():
        yield CORPUS[:500]
        raise CorpusError("book.txt: not UTF-8 at byte 12")

    with pytest.raises(CorpusError, match="book.txt"):
        train_tokenizer(kind, VOCAB[kind], broken())


@pytest.mark.parametrize("kind", KINDS)
def test_training_reads_the_stream_lazily(kind):
    # should_stop() runs once per piece, right after that piece is taken: had the texts been
    # gathered into a list first, every check would see them all consumed
    consumed = 0
    at_checks = []

    def stream():
        nonlocal consumed
        for p in pieces(CORPUS * 3, size=100):
            consumed += 1
            yield p

    def should_stop():
        at_checks.append(consumed)
        return False

    tok = train_tokenizer(kind, VOCAB[kind], stream(), should_stop=should_stop)
    assert at_checks == list(range(1, consumed + 1))
    assert tok.decode(tok.encode(UNSEEN)) == UNSEEN
