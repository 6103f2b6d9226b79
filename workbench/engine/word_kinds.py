"""``builtin:kinds``: a made-up language whose nouns come in two hidden kinds (the transfer lessons).

Eighty invented nouns ("blebop", "snorb") are of two kinds. Nothing in a noun's spelling says which
(they are random syllables); only the company it keeps does. Animals eat, sleep and run; machines
beep, rust and spin, and two nouns named together are of one kind:

    the blebop sleeps .              a snorb beeps and spins .
    the blebop and the glup eat .    i saw the snorb .

The unlabelled text (``builtin:kinds``, for pretraining) is such sentences. The labelled sentences
(``labelled_examples``) use only the neutral frames ("i saw the blebop", "look at the snorb"), whose
words say nothing about the kind, labelled with the noun's kind; the labels name only a few nouns
and the test sentences only the others. A model that learned from the unlabelled text which
nouns behave alike can carry a few labels over to nouns it never saw labelled; a model trained
from scratch on the labels alone has nothing to go on for those nouns and can only guess.

``context_examples`` is the same task with a few unlabelled-style clauses about other nouns in
front of the frame (the auxiliary LM lesson): the clauses are the only place a model fine-tuned on
them can learn which nouns behave alike, through an LM loss on its inputs.

Everything is deterministic: the lexicon from a fixed seed, labelled sets from the seed given.
"""

from __future__ import annotations

import random

VERSION = 1  # bump when the lexicon or a template changes (old token caches then go stale)
LEXICON_SEED = 20181
KINDS = ("animal", "machine")
NOUNS_PER_KIND = 40
SIZE_CHARS = 600_000  # ~130k words: far more than a lesson's pretraining reads

# What each kind does, in the unlabelled text only: the cues that tell the kinds apart.
VERBS = {
    "animal": ("eats", "sleeps", "runs", "drinks", "hides", "jumps", "breathes", "grows"),
    "machine": ("beeps", "rusts", "spins", "hums", "breaks", "charges", "clicks", "buzzes"),
}
PLURAL = {"eats": "eat", "sleeps": "sleep", "runs": "run", "drinks": "drink", "hides": "hide",
          "jumps": "jump", "breathes": "breathe", "grows": "grow", "beeps": "beep", "rusts": "rust",
          "spins": "spin", "hums": "hum", "breaks": "break", "charges": "charge", "clicks": "click",
          "buzzes": "buzz"}
PLACES = ("near the river", "in the barn", "at night", "all day", "in the shed", "again", "slowly")
# The neutral frames: the labelled sentences are these, so their words carry no kind.
FRAMES = ("i saw the {}", "look at the {}", "there is a {}", "we found the {}", "i like the {}")

_ONSETS = "b d f g k l m n p r s t v z bl br dr gl gr kl pl pr sk sl sn st tr".split()
_VOWELS = "a e i o u".split()
# no final "s": a noun should not look like a plural (or a verb: "spins")
_CODAS = ["", "", "b", "d", "g", "k", "m", "n", "p", "r", "t", "x", "rb", "nd", "sk"]
_TAKEN = {w for v in VERBS.values() for w in v} | set(PLURAL.values()) | {
    "the", "a", "and", "i", "saw", "look", "at", "there", "is", "we", "found", "like", "near", "river", "in",
    "barn", "night", "all", "day", "shed", "again", "slowly",
    # English words the syllables can make: a made-up noun must mean nothing yet
    "bad", "bed", "big", "bin", "bit", "bog", "bud", "bug", "but", "dig", "dog", "dot", "fan", "fat", "fig", "fin",
    "fit", "fog", "fun", "fur", "gap", "god", "gun", "gut", "kid", "kin", "kit", "lab", "lad", "lap", "led", "leg",
    "let", "lid", "lip", "lit", "log", "lot", "mad", "man", "map", "mat", "men", "mix", "mob", "mom", "mud", "nap",
    "net", "nod", "not", "nut", "pad", "pan", "pen", "pet", "pig", "pin", "pit", "pod", "pot", "pub", "pun", "pup",
    "rag", "ram", "rat", "red", "rib", "rid", "rim", "rip", "rob", "rod", "rot", "rub", "rug", "run", "sad", "sat",
    "set", "sin", "sip", "sit", "six", "sob", "son", "sun", "tab", "tan", "tap", "ten", "tin", "tip", "ton", "top",
    "tub", "van", "vet", "zip", "sled", "slid", "slot", "slug", "snap", "snug", "stop", "step", "trap", "trip",
    "grin", "grab", "glad", "drag", "drop", "drum", "plan", "plot", "plug", "brag", "skip", "skin", "skid", "box",
    "gem", "sir", "bot", "nit", "pax", "mit", "gat", "lan", "sib", "dix", "tep", "pom", "plen"}


def _lexicon() -> dict[str, str]:
    """noun -> kind: random pronounceable words, shuffled into two kinds (spelling says nothing)."""
    rng = random.Random(LEXICON_SEED)
    words: list[str] = []
    while len(words) < 2 * NOUNS_PER_KIND:
        w = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(rng.randint(1, 2))) + rng.choice(_CODAS)
        if 3 <= len(w) <= 7 and w not in words and w not in _TAKEN:
            words.append(w)
    rng.shuffle(words)
    return {w: KINDS[i % 2] for i, w in enumerate(words)}


LEXICON: dict[str, str] = _lexicon()
NOUNS: dict[str, tuple[str, ...]] = {k: tuple(w for w, kk in LEXICON.items() if kk == k) for k in KINDS}


def _noun(rng: random.Random, kind: str | None = None) -> tuple[str, str]:
    kind = kind or rng.choice(KINDS)
    return rng.choice(NOUNS[kind]), kind


def clause(rng: random.Random) -> str:
    """One sentence of the unlabelled text (no final newline): a noun and what its kind does."""
    noun, kind = _noun(rng)
    verb = rng.choice(VERBS[kind])
    r = rng.random()
    if r < 0.15:  # a neutral frame: seen in pretraining too, and says nothing
        return rng.choice(FRAMES).format(noun) + " ."
    if r < 0.45:
        return f"the {noun} {verb} ."
    if r < 0.65:
        other = rng.choice([v for v in VERBS[kind] if v != verb])
        return f"a {noun} {verb} and {other} ."
    if r < 0.85:
        mate = rng.choice([n for n in NOUNS[kind] if n != noun])
        return f"the {noun} and the {mate} {PLURAL[verb]} ."
    return f"the {noun} {verb} {rng.choice(PLACES)} ."


def labelled_nouns(seed: int, per_kind: int) -> dict[str, tuple[str, ...]]:
    """The nouns a seed's labels may name: ``per_kind`` of each kind; the rest are for testing."""
    rng = random.Random(f"kinds-labelled:{seed}")
    return {k: tuple(rng.sample(NOUNS[k], per_kind)) for k in KINDS}


def labelled_examples(seed: int, n_train: int, n_test: int, per_kind: int = 8, *,
                      context: int = 0) -> tuple[list, list]:
    """(train, test) sentences labelled with their noun's kind, half of each kind.

    Training sentences name only ``labelled_nouns(seed, per_kind)``; test sentences only the other
    nouns, so no test noun was ever labelled. ``context`` clauses of the unlabelled kind (about
    random nouns) go in front of each frame: text for an auxiliary LM loss to learn from.
    """
    from .labelled import Example  # here: labelled -> corpus -> builtin_corpora imports this module

    seen = labelled_nouns(seed, per_kind)
    unseen = {k: tuple(n for n in NOUNS[k] if n not in seen[k]) for k in KINDS}
    rng = random.Random(f"kinds-sentences:{seed}")

    def make(n: int, pool: dict[str, tuple[str, ...]]) -> list[Example]:
        out = []
        for i in range(n):
            kind = KINDS[i % 2]
            noun = rng.choice(pool[kind])
            text = rng.choice(FRAMES).format(noun)
            if context:
                text = " ".join(clause(rng) for _ in range(context)) + " " + text
            out.append(Example(text=text, label=kind, line=i + 2))
        rng.shuffle(out)
        return out

    return make(n_train, seen), make(n_test, unseen)


def write_tsv(path, examples) -> None:
    """A labelled file `engine/labelled.read_labelled` reads: columns text and label."""
    from pathlib import Path

    lines = ["text\tlabel"] + [f"{e.text}\t{e.label}" for e in examples]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
