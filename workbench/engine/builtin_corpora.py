"""Corpora the project makes itself, so that demos and tests run on a fresh machine.

``builtin:toy`` mixes three short line-based tasks, chosen so that a tiny char-level GPT learns
them within a few thousand steps (a minute or two on a laptop CPU) and so that the way it solves
them can be seen in its attention maps:

    copy       dkgan>dkgan      each answer char looks back a fixed distance: an off-diagonal stripe
    reverse    dkgan<nagkd      each answer char looks one step further back: an anti-diagonal
    brackets   ({}[(|)])        each closer looks back at the opener it closes

The separator names the task (">" forward, "<" backward, "|" close), so the model knows what to
do from the first answer character on. Letters within a word are distinct: every letter then
appears once before the separator and a head can find "where was this letter" without ambiguity.
The tasks are also offered alone as ``builtin:copy``, ``builtin:reverse`` and ``builtin:brackets``.
``builtin:demo`` is the Demo's: copy lines of one fixed shape (``dkgan>dkgan``), learned in a few
hundred steps when training windows start at line starts (corpus.window_start = "line").

``builtin:stdlib`` is code: the .py files of the running interpreter's standard library.

Everything is deterministic (a fixed seed, sorted paths), and ``identity()`` names all that shapes
the text, so a corpus fingerprint (a token cache key) changes exactly when the text can change.
"""

from __future__ import annotations

import functools
import os
import platform
import random
import sysconfig
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import CorpusError, did_you_mean

# Bump when any generator or file selection below changes: old token caches then go stale.
VERSION = 1

LETTERS = "abcdefghijklmnop"  # small, so every letter is seen often and learned fast
# Short words: several lines fit in a 64-token context, and a 2-layer, 4-head, 64-wide GPT (lr 3e-3)
# learned copy and reverse (~90% of answers exact) in about 1750 steps of 32 x 64 tokens, or 2250
# steps of 16 x 64; words of 4 to 12 letters took longer. Brackets come first, within 1000 steps.
WORD_LENGTHS = (3, 8)
DEMO_LETTERS = 5  # the demo's copy lines: 12 characters with the newline, two to a 24-token context
OPENERS, CLOSERS = "([{", ")]}"
MAX_DEPTH = 4
BRACKET_STEPS = (3, 12)

SEED = 1234
SIZE_CHARS = 1_000_000  # ~1 MB: a minute of training on a laptop CPU sees a good share of it
CHUNK_CHARS = 1 << 16  # generated text is handed out in chunks of about this size

STDLIB_MAX_BYTES = 4_000_000
# Tests, GUI demos and data tables are not the code we want a model to learn from.
STDLIB_SKIP_DIRS = frozenset({
    "site-packages", "dist-packages", "__pycache__", "test", "tests", "idlelib", "turtledemo",
    "lib2to3",
    "encodings",  # mostly generated codec tables
    "pydoc_data",  # one 750 kB dump of the documentation as a string
})


# -- the toy tasks: each returns one line without its newline ------------------------------------


def _word(rng: random.Random) -> str:
    return "".join(rng.sample(LETTERS, rng.randint(*WORD_LENGTHS)))


def copy_line(rng: random.Random) -> str:
    word = _word(rng)
    return f"{word}>{word}"


def demo_line(rng: random.Random) -> str:
    """A copy line of a fixed shape (DEMO_LETTERS letters, ">", the same letters): with windows that
    start at line starts (corpus.window_start = "line") every answer letter's source is at a fixed
    position, which a 2-layer model learns within a few hundred steps."""
    word = "".join(rng.sample(LETTERS, DEMO_LETTERS))
    return f"{word}>{word}"


def reverse_line(rng: random.Random) -> str:
    word = _word(rng)
    return f"{word}<{word[::-1]}"


def brackets_line(rng: random.Random) -> str:
    """A random unfinished bracket string, then "|" and the closers that finish it."""
    text, stack = [], []
    for _ in range(rng.randint(*BRACKET_STEPS)):
        if stack and (len(stack) == MAX_DEPTH or rng.random() < 0.4):
            text.append(CLOSERS[OPENERS.index(stack.pop())])
        else:
            stack.append(rng.choice(OPENERS))
            text.append(stack[-1])
    if not stack:  # always leave something to close
        stack.append(rng.choice(OPENERS))
        text.append(stack[-1])
    closing = "".join(CLOSERS[OPENERS.index(b)] for b in reversed(stack))
    return "".join(text) + "|" + closing


def generate(tasks: tuple[Callable[[random.Random], str], ...], *, size_chars: int = SIZE_CHARS,
             seed: int = SEED) -> Iterator[str]:
    """Lines of randomly chosen tasks, lazily, in chunks of whole lines, until size_chars is reached."""
    rng = random.Random(seed)
    lines: list[str] = []
    chunk = total = 0
    while total < size_chars:
        line = rng.choice(tasks)(rng) + "\n"
        lines.append(line)
        chunk += len(line)
        total += len(line)
        if chunk >= CHUNK_CHARS:
            yield "".join(lines)
            lines.clear()
            chunk = 0
    if lines:
        yield "".join(lines)


# -- the standard library as a code corpus ------------------------------------------------------


@functools.cache
def stdlib_files(max_bytes: int = STDLIB_MAX_BYTES) -> tuple[Path, ...]:
    """The stdlib's .py files sorted by path, up to the first one that would pass max_bytes."""
    root = Path(sysconfig.get_paths()["stdlib"])
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in STDLIB_SKIP_DIRS]
        found += [Path(folder, n) for n in names if n.endswith(".py")]
    found.sort(key=lambda p: p.relative_to(root).as_posix())
    taken, total = [], 0
    for path in found:
        size = path.stat().st_size
        if total + size > max_bytes:
            break
        if size:  # empty __init__.py files are no documents
            taken.append(path)
            total += size
    if not taken:
        raise CorpusError(f"builtin:stdlib: no Python source files found under {root}; this Python "
                          f"seems to be installed without them. Use another corpus.")
    return tuple(taken)


# -- the registry ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class GeneratedCorpus:
    """Text made by a generator: one document, produced lazily."""

    name: str
    description: str
    tasks: tuple[Callable[[random.Random], str], ...]
    size_chars: int = SIZE_CHARS
    seed: int = SEED
    version: str = ""   # a generator module's own version (word_kinds.VERSION), part of the identity

    def chunks(self) -> Iterator[str]:
        return generate(self.tasks, size_chars=self.size_chars, seed=self.seed)

    def identity(self) -> str:
        tasks = ",".join(t.__name__ for t in self.tasks)
        own = f" {self.version}" if self.version else ""
        return f"{self.name} v{VERSION}{own} tasks={tasks} seed={self.seed} size={self.size_chars}"


@dataclass(frozen=True)
class StdlibCorpus:
    """Files of the standard library, each one document; read like any text file."""

    name: str
    description: str
    max_bytes: int = STDLIB_MAX_BYTES

    def files(self) -> tuple[Path, ...]:
        return stdlib_files(self.max_bytes)

    def identity(self) -> str:
        python = f"{platform.python_implementation()} {platform.python_version()}"
        return f"{self.name} v{VERSION} python={python} max_bytes={self.max_bytes}"


Builtin = GeneratedCorpus | StdlibCorpus

BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in (
        GeneratedCorpus("toy", "copy, reverse and bracket-closing lines mixed (~1 MB); the "
                        "char-level demo whose attention patterns are easy to see",
                        (copy_line, reverse_line, brackets_line)),
        GeneratedCorpus("demo", 'lines such as "dkgan>dkgan", always five letters (~1 MB): the Demo\'s corpus; '
                        "with windows at line starts a copy head forms within a few hundred steps", (demo_line,)),
        GeneratedCorpus("copy", 'lines such as "dkgan>dkgan" (~1 MB): attention looks back a '
                        "fixed distance", (copy_line,)),
        GeneratedCorpus("reverse", 'lines such as "dkgan<nagkd" (~1 MB): attention forms an '
                        "anti-diagonal", (reverse_line,)),
        GeneratedCorpus("brackets", 'lines such as "({}[(|)])" (~1 MB): close the open '
                        "brackets", (brackets_line,)),
        StdlibCorpus("stdlib", f"Python code from this interpreter's standard library "
                     f"(first {STDLIB_MAX_BYTES / 1e6:.0f} MB, tests left out)"),
    )
}


def get(name: str) -> Builtin:
    if name not in BUILTINS:
        raise CorpusError(f'"builtin:{name}": no such built-in corpus{did_you_mean(name, BUILTINS)}. '
                          f"Built-in corpora: {', '.join('builtin:' + n for n in BUILTINS)}.")
    return BUILTINS[name]


# -- in-context learning: every line carries its own key -> value mapping ----------------------
#
# ``builtin:icl`` lines look like ``c4 k1 c4 z7 k1 c4``: a handful of letters (keys), each given a
# random digit (its value) for this line only, then pairs drawn from them so that keys recur.
# The first value of a key cannot be predicted; every later one can, but only by looking back in
# the same line for the earlier occurrence of the key and copying what followed it: a model has
# to learn in context. ``evaluate.look_back_attention`` measures how a model does it: the share of
# a repeated key's attention on its earlier occurrences and on the values after them. (The 2-layer
# preset learns the lookup, 0.35 nats on a repeated key's value against 2.34 on a first one, with
# heads that look back to earlier copies of the key; a clean induction head, one that also copies
# in repeated random text, did not form in 16000 steps.)

ICL_KEYS = "abcdefghijklmnopqrstuvwxyz"
ICL_VALUES = "0123456789"
# Few keys and short lines: measured to get a 2-layer char model past its plateau (where it only
# guesses digits seen in the line) about twice as fast as 3-8 keys in lines of up to 32 pairs.
ICL_KEYS_PER_LINE = (2, 6)
ICL_PAIRS_PER_LINE = (6, 16)  # a line is at most 16 * 3 - 1 = 47 characters


def keyvalue_line(rng: random.Random) -> str:
    keys = rng.sample(ICL_KEYS, rng.randint(*ICL_KEYS_PER_LINE))
    value = {k: rng.choice(ICL_VALUES) for k in keys}
    pairs = (rng.choice(keys) for _ in range(rng.randint(*ICL_PAIRS_PER_LINE)))
    return " ".join(k + value[k] for k in pairs)


def icl_eval_examples(n: int, seed: int = 0, n_keys: int = 4, part: str = "test"):
    """``n`` labelled examples of one mapping unseen in training: text is a key, label its value.

    The mapping (``n_keys`` keys to distinct values) depends on ``seed`` only, so the ``part="demos"``
    and ``part="test"`` examples of a seed share it (each part draws its keys on its own). With k
    demonstrations the query's key is among them with probability 1 - (1 - 1/n_keys)^k, which a
    model that learned in context can exploit; the label set is the n_keys values, so chance is
    1 / n_keys.
    """
    from .labelled import Example

    if not 1 <= n_keys <= len(ICL_VALUES):
        raise CorpusError(f"builtin:icl evaluation: n_keys = {n_keys}; choose 1 to {len(ICL_VALUES)}.")
    rng = random.Random(f"icl-eval:{seed}")
    keys = rng.sample(ICL_KEYS, n_keys)
    value = dict(zip(keys, rng.sample(ICL_VALUES, n_keys)))
    rng = random.Random(f"icl-eval:{seed}:{part}")
    return [Example(text=k, label=value[k], line=i + 1) for i, k in enumerate(rng.choice(keys) for _ in range(n))]


BUILTINS["icl"] = GeneratedCorpus(
    "icl", 'lines such as "c4 k1 c4 z7 k1" (~2 MB), each with its own random key -> value '
    "mapping: only looking back in context predicts the values (induction heads)",
    (keyvalue_line,), size_chars=2 * SIZE_CHARS)


# -- transfer: nouns of two hidden kinds, told apart only by the company they keep (word_kinds.py) --

from . import word_kinds  # noqa: E402  (its own module: the lessons' language and labelled sets)

BUILTINS["kinds"] = GeneratedCorpus(
    "kinds", 'sentences such as "the blebop sleeps ." and "a snorb beeps and spins ." (~0.6 MB): 80 made-up '
    "nouns of two kinds (animals, machines) that only the verbs around them tell apart (the transfer lessons)",
    (word_kinds.clause,), size_chars=word_kinds.SIZE_CHARS, version=f"kinds-v{word_kinds.VERSION}")
