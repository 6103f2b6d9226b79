"""Where a head that solves a built-in toy task must look, and how much a head does.

The demo corpus (``builtin:toy``) holds three line tasks whose solutions are visible in attention:

    previous   any text        each token looks at the one before it (the first pattern to form)
    copy       cfhkam>cfhkam   the query before answer letter j looks at letter j of the word
    reverse    bjdpge<egpdjb   ... at letter L-1-j of the word
    brackets   ([{(|)}])       the query before each closer looks at the opener it closes

``expected_links(text)`` finds those lines in a probe text and lists the (query, key) character
positions a solving head attends along; ``pattern_scores(attention, links)`` is, per task, layer
and head, the mean attention weight on those keys (1.0: the head does exactly the task's lookup).
The scores need one token per character (the demo's char tokenizer); other tokenizers get none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .builtin_corpora import CLOSERS, OPENERS

TASKS = ("copy", "reverse", "brackets")
PREVIOUS = "previous token"  # every token looking at the one before it: the first head most models grow
CLEAR = 0.5  # a head with at least half its attention on the keys its task needs shows the task plainly
# what a head with a high score looks at, in words (for the Attention page's note)
LOOKS_AT = {"copy": "the letter each answer letter copies", "reverse": "the letter each reversed letter takes",
            "brackets": "the opener each closer closes", PREVIOUS: "the token just before"}


def expected_links(text: str) -> dict[str, list[tuple[int, int]]]:
    """(query position, key position) pairs per task, positions counted in characters of ``text``;
    ``PREVIOUS`` links every position to the one before it."""
    links: dict[str, list[tuple[int, int]]] = {t: [] for t in TASKS}
    links[PREVIOUS] = [(q, q - 1) for q in range(1, len(text))]
    start = 0
    for line in text.split("\n"):
        for sep, task in ((">", "copy"), ("<", "reverse")):
            word, s, answer = line.partition(sep)
            if s and word and answer and len(answer) <= len(word) and word.isalpha():
                at = start + len(word)  # the separator's position
                L = len(word)
                for j in range(len(answer)):
                    key = j if task == "copy" else L - 1 - j
                    links[task].append((at + j, start + key))
        head, bar, closers = line.partition("|")
        if bar and head and set(head + closers) <= set(OPENERS + CLOSERS):
            stack: list[int] = []
            for i, ch in enumerate(head):
                if ch in OPENERS:
                    stack.append(i)
                elif stack:
                    stack.pop()
            at = start + len(head)  # the bar's position
            for j in range(min(len(closers), len(stack))):
                links["brackets"].append((at + j, start + stack[-1 - j]))
        start += len(line) + 1
    return {t: v for t, v in links.items() if v}


@dataclass
class PatternScores:
    """``scores[task]`` is (n_layer, n_head): the mean attention on the task's expected keys."""

    scores: dict[str, np.ndarray]

    def best(self) -> tuple[str, int, int, float] | None:
        """(task, layer, head, score) of the head that does its task best; None without tasks."""
        best = None
        for task, grid in self.scores.items():
            layer, head = np.unravel_index(int(np.argmax(grid)), grid.shape)
            if best is None or grid[layer, head] > best[3]:
                best = (task, int(layer), int(head), float(grid[layer, head]))
        return best


def pattern_scores(attention: np.ndarray, links: dict[str, list[tuple[int, int]]]) -> PatternScores:
    """attention: (n_layer, n_head, T, T) of the probe; links from ``expected_links`` (pairs past T
    are dropped, as the probe is cropped to the context)."""
    T = attention.shape[-1]
    out = {}
    for task, pairs in links.items():
        pairs = [(q, k) for q, k in pairs if q < T and k < T]
        if pairs:
            q, k = np.array(pairs).T
            out[task] = attention[:, :, q, k].mean(-1)
    return PatternScores(out)


def probe_links(tokenizer, text: str) -> dict[str, list[tuple[int, int]]]:
    """The links of ``text`` when ``tokenizer`` gives one token per character (kind "char" and
    every character known), else {}."""
    if getattr(tokenizer, "kind", None) != "char" or len(tokenizer.encode(text)) != len(text):
        return {}
    return expected_links(text)


@dataclass(frozen=True)
class TellingHead:
    """The head that shows a task of the probe most plainly, and whether it passes CLEAR."""

    task: str
    layer: int
    head: int
    score: float
    clear: bool


def telling_head(attention: np.ndarray, tokens: list[str], level: float = CLEAR) -> TellingHead | None:
    """The most telling head of a snapshot: the best head of a task (copy, reverse, brackets) when
    one reaches ``level``, else the best previous-token head when it does (the pattern that forms
    first, and the least interesting), else the best head of all, marked not clear. None when the
    probe's tokens are not single characters (the links need them) or it holds nothing to score."""
    if not tokens or any(len(t) != 1 for t in tokens):
        return None
    scores = pattern_scores(attention, expected_links("".join(tokens))).scores
    if not scores:
        return None

    def best(tasks) -> TellingHead | None:
        found = None
        for task in tasks:
            if task in scores:
                grid = scores[task]
                layer, head = np.unravel_index(int(np.argmax(grid)), grid.shape)
                value = float(grid[layer, head])
                if found is None or value > found.score:
                    found = TellingHead(task, int(layer), int(head), value, value >= level)
        return found

    for tasks in (TASKS, (PREVIOUS,)):
        found = best(tasks)
        if found is not None and found.clear:
            return found
    return best((*TASKS, PREVIOUS))
