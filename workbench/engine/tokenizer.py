"""Training, loading and saving tokenizers (a thin layer over Hugging Face ``tokenizers``).

Four kinds, all trained by streaming text pieces, all saved as a standard ``tokenizer.json``:

``char``
    One token per character seen in training (the most frequent ones when there are more than
    the vocabulary holds). Characters it never saw encode as ``<|unk|>``; everything else
    round-trips exactly. Built as a BPE model without merges, so encoding stays in Rust.
``bpe``
    Byte-level BPE as in GPT-2: every text is UTF-8 bytes, all 256 of them are in the vocabulary,
    so there is never an unknown token and every text round-trips exactly.
``wordpiece``
    BERT-style WordPiece (word-initial pieces, ``##`` continuation pieces, greedy longest match)
    on top of a byte-level pre-tokenizer instead of BERT's whitespace split, so that spaces, tabs
    and newlines survive and decoding is exact. Two changes to GPT-2's split make ``##``
    unambiguous and bound the work per word: ``#`` is always a word of its own (so a piece that
    starts with ``##`` is always a continuation, never a literal ``##``), and runs of letters,
    digits, punctuation or spaces are cut every 64 characters. Every byte seen in training is in
    the vocabulary both as a word-initial and as a ``##`` piece. A word that contains a byte
    never seen in training encodes as a single ``<|unk|>`` (the WordPiece rule).
``unigram``
    SentencePiece-style Unigram over a Metaspace split (spaces become ``▁`` and start a word; no
    ``▁`` is prepended to the text, so encodings of consecutive chunks concatenate exactly);
    runs of line breaks are words of their own, so no piece spans lines.
    Characters never seen in training encode as ``<|unk|>``. One character is normalised: a
    literal ``▁`` (U+2581) in the text decodes as a space.

Every kind reserves :data:`SPECIAL_TOKENS` as ids 0..6 in that order; they are matched whole in
text (``"<|endoftext|>"`` encodes as one id) and are never added by :meth:`Tokenizer.encode`.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenizers import AddedToken, Regex, decoders, models, pre_tokenizers, trainers
from tokenizers import Tokenizer as HFTokenizer

from .. import paths
from .errors import Cancelled, TokenizerError, did_you_mean
from .events import Status

if TYPE_CHECKING:
    from .config import Experiment
    from .corpus import Corpus

KINDS = ("char", "bpe", "wordpiece", "unigram")

# role -> token text. The order is the id order (0..6) in every tokenizer trained here. "eos" uses
# GPT-2's spelling so that a GPT-2 tokenizer.json finds its end-of-text token under the same role.
SPECIAL_TOKENS: dict[str, str] = {
    "pad": "<|pad|>",
    "bos": "<|bos|>",
    "eos": "<|endoftext|>",
    "mask": "<|mask|>",
    "delim": "<|delim|>",
    "extract": "<|extract|>",
    "unk": "<|unk|>",
}
_SPECIALS = list(SPECIAL_TOKENS.values())
_UNK = SPECIAL_TOKENS["unk"]

_PREFIX = "##"  # WordPiece continuation prefix
_METASPACE = "\u2581"  # "▁": the space marker of SentencePiece
_MAX_RUN = 64  # wordpiece: longest run of one character class in a pre-token

# GPT-2's split with '#' isolated and runs bounded (see the module docstring). The ByteLevel step
# after it then only maps bytes to printable characters.
_WORDPIECE_SPLIT = (
    r"'(?:[sdmt]|ll|ve|re)"
    rf"| ?\p{{L}}{{1,{_MAX_RUN}}}"
    rf"| ?\p{{N}}{{1,{_MAX_RUN}}}"
    rf"| ?[^\s\p{{L}}\p{{N}}#]{{1,{_MAX_RUN}}}"
    r"|#"
    rf"|\s{{1,{_MAX_RUN}}}(?!\S)|\s{{1,{_MAX_RUN}}}"
)
# A pre-token is at most 1 + _MAX_RUN characters of at most 4 UTF-8 bytes each; WordPiece turns
# longer words into <|unk|>, so its limit must not bite.
_WORDPIECE_MAX_WORD = 4 * (_MAX_RUN + 1)

# Characters streamed between two progress() calls. Small enough for a live display, large
# enough that the callback costs nothing. Tests lower it.
_PROGRESS_EVERY = 1 << 18


def _byte_level_table() -> dict[str, int]:
    """The printable character GPT-2's byte-level scheme uses for each byte -> that byte.

    Bytes that are printable Latin-1 characters stand for themselves; the others (controls,
    space, a few more) are moved, in byte order, to U+0100 and up.
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {chr(b): b for b in keep}
    moved = 0
    for b in range(256):
        if b not in keep:
            table[chr(256 + moved)] = b
            moved += 1
    return table


_BYTE_OF = _byte_level_table()


class Tokenizer:
    """A trained or loaded tokenizer: encodes text to ids and back.

    Wraps a ``tokenizers.Tokenizer``; ``kind`` says which of :data:`KINDS` it is (inferred from
    the model and pre-tokenizer when loaded). Encoding never adds special tokens; decoding keeps
    them, so ``decode(encode(text)) == text`` (within the limits the module docstring lists).
    """

    def __init__(self, hf: HFTokenizer, kind: str | None = None):
        """Wrap a ``tokenizers.Tokenizer``; its kind is inferred unless given."""
        self._hf = hf
        self._adopt(_inspect(json.loads(hf.to_str()), source="<tokenizer>"), kind)

    def _adopt(self, info: dict[str, Any], kind: str | None = None) -> None:
        self.kind: str = kind or info["kind"]
        self._byte_level: bool = info["byte_level"]
        self._prefix: str | None = info["prefix"]
        self._metaspace: str | None = info["metaspace"]
        self._added_ids = set(self._hf.get_added_tokens_decoder())

    def __repr__(self) -> str:
        return f"Tokenizer(kind={self.kind!r}, vocab_size={self.vocab_size})"

    # -- encoding ----------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return self._hf.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        return self._hf.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Encode many texts at once, in parallel in Rust (without the GIL).

        Encodings concatenate: joining the ids of consecutive chunks decodes to the joined text.
        """
        # encode_batch_fast skips character offsets, which nothing here needs (tokenizers >= 0.20)
        batch = getattr(self._hf, "encode_batch_fast", self._hf.encode_batch)
        return [e.ids for e in batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids``, special tokens included; ids outside the vocabulary are skipped."""
        return self._hf.decode([int(i) for i in ids], skip_special_tokens=False)

    def token_texts(self, ids: Sequence[int]) -> list[str]:
        """What each token stands for, for display: byte-level markers turned back into text
        (``Ġthe`` -> ``" the"``), ``##`` and ``▁`` markers removed or made spaces.

        A byte-level token that holds part of a multi-byte character shows the bytes it has as
        ``\\xNN``; an id outside the vocabulary shows as U+FFFD.
        """
        out = []
        for i in ids:
            i = int(i)
            token = self._hf.id_to_token(i)
            if token is None:
                out.append("\ufffd")
            elif i in self._added_ids:
                out.append(token)
            else:
                out.append(self._display(token))
        return out

    def _display(self, token: str) -> str:
        if self._prefix and token.startswith(self._prefix) and len(token) > len(self._prefix):
            token = token[len(self._prefix):]
        if self._byte_level:
            data = b"".join(bytes([_BYTE_OF[c]]) if c in _BYTE_OF else c.encode() for c in token)
            token = data.decode("utf-8", errors="backslashreplace")
        if self._metaspace:
            token = token.replace(self._metaspace, " ")
        return token

    # -- special tokens ----------------------------------------------------------------------

    def special_id(self, role: str) -> int:
        if role not in SPECIAL_TOKENS:
            raise TokenizerError(
                f"Unknown special token role {role!r}{did_you_mean(role, SPECIAL_TOKENS)}. "
                f"Roles: {', '.join(SPECIAL_TOKENS)}."
            )
        i = self._hf.token_to_id(SPECIAL_TOKENS[role])
        if i is None:
            raise TokenizerError(
                f"This {self.kind} tokenizer has no {SPECIAL_TOKENS[role]} token (role {role!r}); "
                f"add it with add_special_tokens([{role!r}])."
            )
        return i

    def add_special_tokens(self, roles: list[str]) -> list[int]:
        """Give the tokenizer the tokens of ``roles`` it lacks (appended after the last id;
        existing ids do not move). Returns the ids of all ``roles``, in order."""
        for role in roles:
            if role not in SPECIAL_TOKENS:
                self.special_id(role)  # raises the error that lists the roles
        missing = [SPECIAL_TOKENS[r] for r in roles if self._hf.token_to_id(SPECIAL_TOKENS[r]) is None]
        if missing:
            self._hf.add_special_tokens([_special(t) for t in dict.fromkeys(missing)])
            self._added_ids = set(self._hf.get_added_tokens_decoder())
        return [self.special_id(r) for r in roles]

    # -- files -------------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write ``tokenizer.json`` (a folder gets one inside it), atomically."""
        from .checkpoint import atomic_write_text  # one place for atomic writes

        path = Path(path)
        if path.is_dir():
            path = path / "tokenizer.json"
        atomic_write_text(path, self._hf.to_str(pretty=True))

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        """Read a tokenizer.json (or the one in a folder): ours, or a GPT-2-style one."""
        path = Path(path)
        if path.is_dir():
            path = path / "tokenizer.json"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise TokenizerError(f"{path}: no such file. Give the path of a tokenizer.json.") from None
        except UnicodeDecodeError as e:
            raise TokenizerError(f"{path}: not a tokenizer.json (not UTF-8 text at byte {e.start}).") from None
        except OSError as e:
            raise TokenizerError(f"{path}: cannot be read ({e.strerror}).") from None
        return cls._from_json(text, str(path))

    def to_str(self) -> str:
        return self._hf.to_str()

    @classmethod
    def from_str(cls, s: str) -> Tokenizer:
        return cls._from_json(s, "<string>")

    @classmethod
    def _from_json(cls, text: str, source: str) -> Tokenizer:
        what = f"{source}: not a tokenizer.json"
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise TokenizerError(f"{what} (invalid JSON at line {e.lineno}, column {e.colno}).") from None
        if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
            raise TokenizerError(f"{what} (it has no \"model\" section). Choose a file written by "
                                 f"the workbench or by Hugging Face tokenizers.")
        info = _inspect(data, source)
        try:
            hf = HFTokenizer.from_str(text)
        except Exception as e:  # tokenizers raises a bare Exception with serde's message
            raise TokenizerError(f"{what} that the tokenizers library can read ({e}).") from None
        tok = cls.__new__(cls)  # skip __init__: the JSON is parsed already (a GPT-2 file is 1 MB+)
        tok._hf = hf
        tok._adopt(info)
        return tok

    def fingerprint(self) -> str:
        """sha256 of the JSON form: equal tokenizers share token caches."""
        return hashlib.sha256(self.to_str().encode("utf-8")).hexdigest()


def _special(text: str) -> AddedToken:
    # normalized=False: matched in the raw text, before any normalizer could alter it
    return AddedToken(text, special=True, normalized=False)


def _nodes(node: Any) -> Iterator[dict]:
    """Every JSON object inside a pre-tokenizer or decoder description (Sequences nest)."""
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _nodes(v)
    elif isinstance(node, list):
        for v in node:
            yield from _nodes(v)


def _inspect(data: dict, source: str) -> dict[str, Any]:
    """Kind and display rules of a tokenizer.json: which markers its tokens carry."""
    model = data["model"]
    mtype = model.get("type") or ("BPE" if "merges" in model else None)
    parts = [*_nodes(data.get("pre_tokenizer")), *_nodes(data.get("decoder"))]
    byte_level = any(n.get("type") == "ByteLevel" for n in parts)
    # the space marker: a Metaspace step, or a decoder that replaces "▁" by " " (Llama-style)
    metaspace = next((n.get("replacement", _METASPACE) for n in parts if n.get("type") == "Metaspace"
                      or (n.get("type") == "Replace" and n.get("content") == " "
                          and n.get("pattern") == {"String": _METASPACE})), None)
    prefix = None
    if mtype == "BPE":
        # a BPE without merges or byte-level step is our char model; anything else is some BPE
        kind = "bpe" if byte_level or model.get("merges") else "char"
    elif mtype == "WordPiece":
        kind, prefix = "wordpiece", model.get("continuing_subword_prefix") or _PREFIX
    elif mtype == "Unigram":
        kind = "unigram"
    else:
        raise TokenizerError(f"{source}: a {mtype or 'unknown'} tokenizer model is not supported; "
                             f"the workbench uses BPE, WordPiece and Unigram tokenizers.")
    return {"kind": kind, "byte_level": byte_level, "prefix": prefix, "metaspace": metaspace}


# -- training --------------------------------------------------------------------------------


def min_vocab_size(kind: str) -> int:
    """The smallest vocab_size a kind accepts before seeing the corpus (wordpiece and unigram
    also need room for the corpus's alphabet, known only after reading it)."""
    _check_kind(kind)
    return len(_SPECIALS) + (256 if kind == "bpe" else 1)


def train_tokenizer(kind: str, vocab_size: int, texts: Iterable[str], *,
                    should_stop: Callable[[], bool] | None = None,
                    progress: Callable[[int], None] | None = None) -> Tokenizer:
    """Train a tokenizer of ``kind`` with at most ``vocab_size`` tokens on streamed ``texts``.

    ``texts`` is read once, piece by piece, and never held in memory as a whole. Between pieces
    ``should_stop()`` is asked and, when True, :class:`Cancelled` is raised; ``progress(chars)``
    gets the number of characters read so far now and then. For bpe, wordpiece and unigram both
    are called from a worker thread of the tokenizers library, so they must be thread-safe. After
    a stop the library still finishes its pass over what it has read (it cannot be interrupted),
    then the result is thrown away: nothing half-trained is returned or kept.
    """
    _check_kind(kind)
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
        raise TokenizerError(f"vocab_size must be a whole number, got {vocab_size!r}.")
    smallest = min_vocab_size(kind)
    if vocab_size < smallest:
        raise _too_small(kind, vocab_size, smallest, "the special tokens and " +
                         ("the 256 bytes" if kind == "bpe" else "at least one character"))
    feed = _Feed(texts, should_stop, progress, track_alphabet=(kind == "unigram"))
    if kind == "char":
        return _train_char(vocab_size, feed)

    hf, trainer = _new_trainable(kind, vocab_size)
    try:
        hf.train_from_iterator(feed, trainer)
    except BaseException as e:
        if feed.error is not None:
            raise feed.error  # ours (Cancelled) or the corpus's own error, unchanged
        if "not large enough to contain all chars" in str(e):
            raise _too_small(kind, vocab_size, _unigram_needs(feed), "the special tokens and "
                             "every character of the corpus") from None
        if type(e) is Exception or type(e).__name__ == "PanicException":
            raise TokenizerError(f"Training the {kind} tokenizer failed: {e}") from None
        raise
    feed.check_not_empty()

    if kind == "wordpiece":
        hf = _complete_wordpiece(hf, vocab_size)
    if kind == "unigram" and hf.get_vocab_size() > vocab_size:  # overshoots when the alphabet fills it
        raise _too_small(kind, vocab_size, _unigram_needs(feed), "the special tokens and every "
                         "character of the corpus")
    # Reading JSON back rounds some unigram scores in their last digit; settle them now, so that
    # this tokenizer and its saved copy have the same fingerprint (and share token caches).
    return Tokenizer(HFTokenizer.from_str(hf.to_str()), kind)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise TokenizerError(f"Unknown tokenizer kind {kind!r}{did_you_mean(str(kind), KINDS)}. "
                             f"Kinds: {', '.join(KINDS)}.")


def _too_small(kind: str, vocab_size: int, smallest: int, what: str) -> TokenizerError:
    return TokenizerError(f"vocab_size = {vocab_size} is too small for a {kind} tokenizer: {what} "
                          f"need {smallest}. Choose a vocab_size of at least {smallest} "
                          f"(more leaves room to learn longer tokens).")


class _Feed:
    """The text stream a trainer reads: counts characters, reports progress, obeys should_stop.

    An exception raised while reading (Cancelled, or the corpus's own error) is kept in
    ``error``, because the tokenizers library re-raises it only after it has finished training
    on what it got, and we want the original, not whatever the library says about it.
    """

    def __init__(self, texts: Iterable[str], should_stop, progress, track_alphabet: bool = False):
        self._texts = texts
        self._should_stop = should_stop
        self._progress = progress
        self.chars = 0
        self.error: BaseException | None = None
        self.alphabet: set[str] | None = set() if track_alphabet else None

    def __iter__(self) -> Iterator[str]:
        try:
            yield from self._pieces()
        except BaseException as e:
            self.error = e
            raise

    def _pieces(self) -> Iterator[str]:
        reported = 0
        for piece in self._texts:
            if self._should_stop is not None and self._should_stop():
                raise Cancelled("Tokenizer training was stopped.")
            self.chars += len(piece)
            if self.alphabet is not None:
                self.alphabet.update(piece)
            if self._progress is not None and self.chars - reported >= _PROGRESS_EVERY:
                reported = self.chars
                self._progress(reported)
            yield piece
        if self._progress is not None and self.chars > reported:
            self._progress(self.chars)

    def check_not_empty(self) -> None:
        if self.chars == 0:
            raise TokenizerError("No text to train the tokenizer on: the corpus is empty.")


def _unigram_needs(feed: _Feed) -> int:
    alphabet = set(feed.alphabet or ())
    if " " in alphabet:  # Metaspace turns spaces into the marker before the trainer sees them
        alphabet = (alphabet - {" "}) | {_METASPACE}
    # + 1: the trainer overshoots when specials + alphabet exactly fill vocab_size
    return len(_SPECIALS) + len(alphabet) + 1


def _train_char(vocab_size: int, feed: _Feed) -> Tokenizer:
    counts: Counter[str] = Counter()
    for piece in feed:
        counts.update(piece)
    feed.check_not_empty()
    # the most frequent characters (ties: lower code point), then numbered in code point order
    ranked = sorted(counts, key=lambda c: (-counts[c], c))
    chars = sorted(ranked[: vocab_size - len(_SPECIALS)])
    vocab = {t: i for i, t in enumerate([*_SPECIALS, *chars])}
    # BPE without merges is a character lookup done in Rust; with no pre-tokenizer the whole
    # text is one "word", split into characters only.
    hf = HFTokenizer(models.BPE(vocab=vocab, merges=[], unk_token=_UNK))
    hf.decoder = decoders.Fuse()  # join tokens as they are, without spaces
    hf.add_special_tokens([_special(t) for t in _SPECIALS])
    return Tokenizer(hf, "char")


def _new_trainable(kind: str, vocab_size: int) -> tuple[HFTokenizer, trainers.Trainer]:
    specials = [_special(t) for t in _SPECIALS]
    if kind == "bpe":
        hf = HFTokenizer(models.BPE())
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        hf.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, special_tokens=specials, show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes: nothing unknown
            min_frequency=2,  # a pair seen once is not a pattern
        )
    elif kind == "wordpiece":
        hf = HFTokenizer(models.WordPiece(unk_token=_UNK, max_input_chars_per_word=_WORDPIECE_MAX_WORD))
        hf.pre_tokenizer = _wordpiece_pre_tokenizer()
        hf.decoder = _wordpiece_decoder()
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size, special_tokens=specials, show_progress=False,
            continuing_subword_prefix=_PREFIX, min_frequency=2,
        )
    else:
        hf = HFTokenizer(models.Unigram())
        hf.pre_tokenizer = pre_tokenizers.Sequence([
            # line breaks end words, as in SentencePiece, which reads a line at a time: pieces
            # spanning lines are rare, and training on 8 KB pieces measured 4x faster with this
            pre_tokenizers.Split(Regex(r"[\r\n]+"), behavior="isolated"),
            # "never": no marker before the first word, so chunk encodings concatenate exactly
            pre_tokenizers.Metaspace(replacement=_METASPACE, prepend_scheme="never"),
        ])
        hf.decoder = decoders.Metaspace(replacement=_METASPACE, prepend_scheme="never")
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size, special_tokens=specials, unk_token=_UNK, show_progress=False,
        )
    return hf, trainer


def _wordpiece_pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_WORDPIECE_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])


def _wordpiece_decoder() -> decoders.Decoder:
    # '##' only ever starts a continuation piece (see _WORDPIECE_SPLIT), so strip it from every
    # token, the first included (the WordPiece decoder would also add spaces between words).
    return decoders.Sequence([decoders.Replace(Regex(rf"\A{_PREFIX}"), ""), decoders.ByteLevel()])


def _complete_wordpiece(hf: HFTokenizer, vocab_size: int) -> HFTokenizer:
    """Rebuild a trained WordPiece so that every byte it saw exists both word-initially and as a
    ``##`` continuation (the trainer only adds the forms it met, and a missing one would turn a
    whole word into <|unk|>). The last-learned pieces make room; WordPiece needs no merge chain,
    so dropping them breaks nothing."""
    vocab = hf.get_vocab()
    learned = sorted((t for t in vocab if t not in SPECIAL_TOKENS.values()), key=vocab.__getitem__)
    alphabet = sorted({t.removeprefix(_PREFIX) for t in learned if len(t.removeprefix(_PREFIX)) == 1})
    base = [*alphabet, *(_PREFIX + c for c in alphabet)]
    needed = len(_SPECIALS) + len(base)
    if needed > vocab_size:
        raise _too_small("wordpiece", vocab_size, needed,
                         f"the special tokens and the {len(alphabet)} bytes of the corpus, each as a "
                         f"word start and as a ## continuation,")
    base_set = set(base)
    longer = [t for t in learned if t not in base_set]
    tokens = [*_SPECIALS, *base, *longer[: vocab_size - needed]]
    out = HFTokenizer(models.WordPiece(
        vocab={t: i for i, t in enumerate(tokens)}, unk_token=_UNK,
        continuing_subword_prefix=_PREFIX, max_input_chars_per_word=_WORDPIECE_MAX_WORD,
    ))
    out.pre_tokenizer = _wordpiece_pre_tokenizer()
    out.decoder = _wordpiece_decoder()
    out.add_special_tokens([_special(t) for t in _SPECIALS])
    return out


def prepare_tokenizer(exp: Experiment, corpus: Corpus, *, reporter=None, should_stop=None) -> Tokenizer:
    """Load the configured tokenizer.json, or train one (cached by corpus and settings)."""
    tc = exp.tokenizer
    if tc.path:
        return Tokenizer.load(tc.path)
    key = hashlib.sha256(f"{corpus.fingerprint()}:{tc.kind}:{tc.vocab_size}".encode()).hexdigest()[:24]
    cached = paths.cache_dir() / "tokenizers" / f"{key}.json"
    if cached.exists():
        return Tokenizer.load(cached)
    report = reporter.report if reporter else (lambda e: None)
    report(Status(f"Training a {tc.kind} tokenizer (vocabulary {tc.vocab_size:,})"))
    tok = train_tokenizer(
        tc.kind, tc.vocab_size, (p.text for p in corpus.pieces(max_chars=8192)),
        should_stop=should_stop,
        progress=lambda chars: report(Status(f"Training a {tc.kind} tokenizer: {chars / 1e6:.1f} M characters")),
    )
    cached.parent.mkdir(parents=True, exist_ok=True)
    tok.save(cached)
    return tok
