"""In-context (zero-, one- and few-shot) evaluation: a task learned from the prompt alone.

As in GPT-3 (Brown et al. 2020), a prompt is a task description, k solved examples (the
demonstrations, drawn from a pool such as a training split) and the query, joined by a separator::

    [description] SEP demo_1 SEP ... SEP demo_k SEP query

A demonstration is the template's ``input`` filled with an example, followed by ``answer`` filled
with its answer; the query is ``input`` alone. Each candidate answer (every label's verbalizer
word, or every choice of a multiple-choice example) is scored by the model's log-likelihood of
``answer`` filled with it, following the prompt; the best one is the prediction. Length
normalisation divides that sum by the candidate's number of tokens, so long answers are not
penalised for being long.

Each part of a prompt is encoded on its own and the ids joined, so every token belongs to exactly
one part; that is what lets :func:`demonstration_attention` say how much of the query's attention
goes to each demonstration. A prompt longer than the model's context keeps the query and as many
demonstrations as fit (those nearest the query); only if the query alone does not fit is the
prompt cut from the left.

For every k, a draw is one random choice and order of demonstrations, used for every query (so
the spread over draws shows how much the choice of demonstrations matters); the demonstrations of
a draw are nested across k (draw d with k = 2 starts with those of k = 1).
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

from .errors import Cancelled, ConfigError
from .generate import eval_mode
from .labelled import Columns, Example, read_labelled, split_examples
from .model import GPT
from .tokenizer import Tokenizer


@dataclass(frozen=True)
class PromptTemplate:
    input: str = "{text}\nAnswer:"   # fields: {text}, {text_pair}
    answer: str = " {answer}"         # field: {answer}, the verbalized label or a choice's text
    description: str = ""             # optional task description, the prompt's first part
    separator: str = "\n\n"

    def fill_input(self, ex: Example) -> str:
        try:
            return self.input.format(text=ex.text, text_pair=ex.text_pair or "")
        except (KeyError, IndexError, ValueError) as e:
            raise ConfigError(f"prompt template {self.input!r}: {e!r}; its fields are {{text}} and "
                              f"{{text_pair}} (write {{{{ and }}}} for literal braces).") from None

    def fill_answer(self, answer: str) -> str:
        try:
            return self.answer.format(answer=answer)
        except (KeyError, IndexError, ValueError) as e:
            raise ConfigError(f"answer template {self.answer!r}: {e!r}; its field is {{answer}}.") from None


def default_template(pair: bool = False, description: str = "") -> PromptTemplate:
    return PromptTemplate(input="{text}\n{text_pair}\nAnswer:" if pair else "{text}\nAnswer:",
                          description=description)


# The layout of builtin:icl lines ("c4 k1 c4 z"): the key is the input, the value the answer.
ICL_TEMPLATE = PromptTemplate(input="{text}", answer="{answer}", separator=" ")


# -- prompts --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    kind: str    # "description" | "demonstration" | "separator" | "query"
    index: int   # demonstrations: 0 = the first in the prompt; -1 for the other kinds
    start: int   # token span [start, end) in Prompt.ids
    end: int
    text: str = ""  # the part's text (decoded from its tokens for a part cut from the left)


@dataclass
class Prompt:
    text: str                    # exactly what the model reads (decoded from ids if it was cut)
    answers: list[str]           # the candidate continuations, template.answer filled
    gold: int | None             # index of the right answer
    demos_requested: int
    demos_used: int              # fewer than requested when the context could not hold them all
    ids: list[int] = field(default_factory=list)
    answer_ids: list[list[int]] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)
    cut_tokens: int = 0          # tokens cut from the start as a last resort

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class _Encoder:
    """Tokenizer.encode with a memory: demonstrations recur in every prompt of a draw."""

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer
        self.memo: dict[str, list[int]] = {}

    def __call__(self, text: str) -> list[int]:
        ids = self.memo.get(text)
        if ids is None:
            ids = self.memo[text] = self.tokenizer.encode(text)
        return ids


def build_prompt(template: PromptTemplate, demos: Sequence[tuple[Example, str]], query: Example,
                 answers: Sequence[str], *, gold: int | None = None, tokenizer: Tokenizer | _Encoder | None = None,
                 block_size: int | None = None) -> Prompt:
    """The prompt for ``query`` after ``demos`` (example, answer text) and its candidate ``answers``.

    Without a tokenizer only the text is built. With one, the ids and token spans are filled in and,
    given ``block_size``, the prompt is fitted so that prompt + the longest answer (minus its last
    token, which is never fed) fits the context.
    """
    conts = [template.fill_answer(a) for a in answers]
    demo_texts = [template.fill_input(ex) + template.fill_answer(a) for ex, a in demos]
    query_text = template.fill_input(query)

    def pieces(kept: list[str]) -> list[tuple[str, int, str]]:
        out = [("description", -1, template.description)] if template.description else []
        for i, d in enumerate(kept):
            out.append(("demonstration", i, d))
        out.append(("query", -1, query_text))
        # a separator between every two parts
        joined = []
        for p in out:
            if joined:
                joined.append(("separator", -1, template.separator))
            joined.append(p)
        return joined

    kept = list(demo_texts)
    if tokenizer is None:
        text = "".join(t for _, _, t in pieces(kept))
        return Prompt(text, conts, gold, len(demos), len(demos))

    encode = tokenizer if isinstance(tokenizer, _Encoder) else _Encoder(tokenizer)
    answer_ids = [encode(c) for c in conts]
    if any(not a for a in answer_ids):
        raise ConfigError(f"an answer encodes to no tokens ({conts!r}); check the verbalizer and the answer template.")
    room = block_size - max(len(a) for a in answer_ids) + 1 if block_size else math.inf
    if room < 1:
        raise ConfigError(f"the longest answer ({max(len(a) for a in answer_ids)} tokens) does not fit the "
                          f"model's context of {block_size} tokens.")
    while True:
        parts_text = pieces(kept)
        total = sum(len(encode(t)) for _, _, t in parts_text)
        if total <= room or not kept:
            break
        kept.pop(0)  # drop the demonstration farthest from the query
    if total == 0:
        raise ConfigError(f"the prompt for {query.text[:40]!r} encodes to no tokens; check the input template.")
    ids: list[int] = []
    parts: list[Part] = []
    for kind, index, text in parts_text:
        piece = encode(text)
        parts.append(Part(kind, index, len(ids), len(ids) + len(piece), text))
        ids += piece
    cut = max(0, len(ids) - room) if room != math.inf else 0
    text = "".join(t for _, _, t in parts_text)
    if cut:
        ids = ids[cut:]
        parts = [dataclasses.replace(p, start=p.start - cut, end=p.end - cut) if p.start >= cut
                 else Part(p.kind, p.index, 0, p.end - cut, encode.tokenizer.decode(ids[:p.end - cut]))
                 for p in parts if p.end > cut]
        text = encode.tokenizer.decode(ids)
    return Prompt(text, conts, gold, len(demos), len(kept), ids, answer_ids, parts, cut)


# -- tasks ----------------------------------------------------------------------------------------


@dataclass
class InContextTask:
    """What to evaluate: test examples, a pool to draw demonstrations from, and how to show them.

    Label tasks give ``labels`` (the candidate set, in order) and optionally a ``verbalizer`` (label
    -> word; a label without one is shown as it is). Multiple-choice examples carry their own
    ``choices`` and ``answer`` and need neither. Keep ``pool`` and ``test`` apart: a demonstration
    equal to the query gives its answer away.
    """

    test: list[Example]
    pool: list[Example]
    template: PromptTemplate = PromptTemplate()
    labels: list[str] = field(default_factory=list)
    verbalizer: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    # Texts like the training data, to look for induction heads in (``look_back_attention``),
    # and which tokens count (e.g. the keys); empty: not measured.
    look_back_texts: list[str] = field(default_factory=list)
    look_back_only: Callable[[str], bool] | None = None

    def __post_init__(self):
        if not self.test:
            raise ConfigError("in-context evaluation: no test examples.")
        if not self.multiple_choice:
            if not self.labels:
                raise ConfigError("in-context evaluation: the examples have neither labels nor choices.")
            words = [self.verbalize(label) for label in self.labels]
            if len(set(words)) < len(words):
                raise ConfigError(f"two labels have the same verbalizer word ({', '.join(words)}); "
                                  f"the model could not tell them apart.")
            for ex in [*self.test, *self.pool]:
                if ex.label not in self.labels:
                    raise ConfigError(f"example at line {ex.line} has label {ex.label!r}, not one of "
                                      f"{', '.join(self.labels)}.")

    @property
    def multiple_choice(self) -> bool:
        return bool(self.test[0].choices)

    def verbalize(self, label: str) -> str:
        return self.verbalizer.get(label, label)

    def answers(self, ex: Example) -> list[str]:
        """The candidates of an example, as words (before the answer template)."""
        return list(ex.choices) if self.multiple_choice else [self.verbalize(label) for label in self.labels]

    def gold(self, ex: Example) -> int:
        return ex.answer if self.multiple_choice else self.labels.index(ex.label)

    def demonstrations(self, k: int, draw: int) -> list[Example]:
        """The k demonstrations of a draw, in prompt order; those of k are a prefix of those of k + 1."""
        k = min(k, len(self.pool))
        rng = random.Random(f"{self.seed}:{draw}")
        chosen: list[int] = []
        seen: set[int] = set()
        while len(chosen) < k:  # sampling without replacement, one at a time, so draws nest
            i = rng.randrange(len(self.pool))
            if i not in seen:
                seen.add(i)
                chosen.append(i)
        return [self.pool[i] for i in chosen]

    def prompt(self, index: int, k: int, draw: int = 0, *, tokenizer: Tokenizer | _Encoder | None = None,
               block_size: int | None = None, demos: list[Example] | None = None) -> Prompt:
        """The exact prompt of test example ``index`` with k demonstrations of ``draw``."""
        query = self.test[index]
        demos = self.demonstrations(k, draw) if demos is None else demos
        pairs = [(d, self.answers(d)[self.gold(d)]) for d in demos]
        return build_prompt(self.template, pairs, query, self.answers(query), gold=self.gold(query),
                            tokenizer=tokenizer, block_size=block_size)

    def chance(self) -> float:
        return statistics.fmean(1.0 / len(self.answers(ex)) for ex in self.test)

    def majority(self) -> float:
        """Accuracy of always answering the most frequent gold index."""
        golds = [self.gold(ex) for ex in self.test]
        return max(golds.count(g) for g in set(golds)) / len(golds)


# -- scoring --------------------------------------------------------------------------------------


@torch.no_grad()
def score_prompts(model: GPT, prompts: Sequence[Prompt], *, length_norm: bool = False,
                  batch_tokens: int = 16384) -> list[list[float]]:
    """Log-likelihood of every candidate answer of every prompt (mean per token with length_norm).

    Rows (prompt + answer, minus the answer's last token) of many prompts go through the model
    together, padded on the right (harmless: attention is causal); rows are sorted by length so a
    batch wastes little on padding. Single-token answers share one row per prompt: the distribution
    after the prompt scores them all.
    """
    device = next(model.parameters()).device
    # rows: (input ids, [(prompt index, answer index, first target position, target ids)])
    rows: list[tuple[list[int], list[tuple[int, int, int, list[int]]]]] = []
    for p_i, p in enumerate(prompts):
        shared = []
        for a_i, a in enumerate(p.answer_ids):
            if len(a) == 1:
                shared.append((p_i, a_i, len(p.ids) - 1, a))
            else:
                rows.append((p.ids + a[:-1], [(p_i, a_i, len(p.ids) - 1, a)]))
        if shared:
            rows.append((list(p.ids), shared))
    scores = [[0.0] * len(p.answer_ids) for p in prompts]
    order = sorted(range(len(rows)), key=lambda r: -len(rows[r][0]))
    with eval_mode(model):
        i = 0
        while i < len(order):
            T = len(rows[order[i]][0])
            n = max(1, batch_tokens // T)
            batch = [rows[r] for r in order[i:i + n]]
            i += n
            x = torch.zeros(len(batch), T, dtype=torch.long)
            for b, (ids, _) in enumerate(batch):
                x[b, :len(ids)] = torch.tensor(ids)
            h, _ = model.hidden_states(x.to(device))  # (B, T, C)
            # gather only the positions whose next token is scored: the vocabulary matmul is the
            # costly part for a GPT-2-sized vocabulary
            where, targets, owners = [], [], []
            for b, (_, items) in enumerate(batch):
                for p_i, a_i, pos, ans in items:
                    for j, t in enumerate(ans):
                        where.append((b, pos + j))
                        targets.append(t)
                        owners.append((p_i, a_i))
            bi = torch.tensor([w[0] for w in where], device=device)
            ti = torch.tensor([w[1] for w in where], device=device)
            logp = F.log_softmax(model.lm_head(h[bi, ti]).float(), dim=-1)  # (N, V)
            picked = logp.gather(1, torch.tensor(targets, device=device).view(-1, 1)).view(-1).tolist()
            for (p_i, a_i), lp in zip(owners, picked):
                scores[p_i][a_i] += lp
    if length_norm:
        scores = [[s / len(a) for s, a in zip(row, p.answer_ids)] for row, p in zip(scores, prompts)]
    return scores


# -- attention to demonstrations ------------------------------------------------------------------


@dataclass
class DemoAttention:
    """Where the query's tokens look, as shares of their attention (each list sums to 1 over parts).

    ``share``: per part of the prompt (``parts`` order), averaged over the query's tokens, the
    layers and the heads. ``last``: the same for the query's last token alone (the one whose output
    predicts the answer). ``per_layer``: (n_layer, parts) averaged over tokens and heads.
    ``demonstrations``: the demonstrations' entries of ``share``, in prompt order.
    """

    parts: list[Part]
    share: list[float]
    last: list[float]
    per_layer: list[list[float]]
    demonstrations: list[float]

    def by_kind(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for p, s in zip(self.parts, self.share):
            out[p.kind] = out.get(p.kind, 0.0) + s
        return out


@torch.no_grad()
def demonstration_attention(model: GPT, prompt: Prompt) -> DemoAttention:
    """How much attention the query pays to each demonstration (and the other parts) of a prompt."""
    if not prompt.ids:
        raise ConfigError("demonstration_attention needs a prompt built with a tokenizer.")
    device = next(model.parameters()).device
    with eval_mode(model):
        _, att = model.attention_maps(torch.tensor([prompt.ids], device=device))  # (L, 1, H, T, T)
    att = att[:, 0].float().mean(1)  # (L, T, T) averaged over heads
    q = next(p for p in prompt.parts if p.kind == "query")
    rows = att[:, q.start:q.end, :]  # (L, Q, T): the query tokens' attention
    per_part = torch.stack([rows[:, :, p.start:p.end].sum(-1) for p in prompt.parts], -1)  # (L, Q, parts)
    per_layer = per_part.mean(1)  # (L, parts)
    share = per_layer.mean(0).tolist()
    last = per_part[:, -1, :].mean(0).tolist()
    demos = [s for p, s in zip(prompt.parts, share) if p.kind == "demonstration"]
    return DemoAttention(prompt.parts, share, last, per_layer.tolist(), demos)


@dataclass
class LookBack:
    """Per layer and head, (n_layer, n_head) lists: the mean attention that a token which occurred
    earlier in its text pays to its earlier occurrences (``same_token``) and to the tokens that
    followed them (``induction``: the head that copies what came next last time).
    ``positions``: how many repeated tokens were averaged."""

    same_token: list[list[float]]
    induction: list[list[float]]
    positions: int

    def strongest(self, which: str = "induction") -> tuple[int, int, float]:
        """(layer, head, score) of the head with the highest ``which`` score."""
        grid = getattr(self, which)
        return max(((l, h, v) for l, row in enumerate(grid) for h, v in enumerate(row)), key=lambda x: x[2])


@torch.no_grad()
def look_back_attention(model: GPT, tokenizer: Tokenizer, texts: Sequence[str],
                        only: Callable[[str], bool] | None = None) -> LookBack:
    """Where repeated tokens look: the diagnostic for induction heads (each text up to the model's
    context; a token counts when it already occurred earlier in the same window and, with
    ``only``, when ``only(token text)`` holds, e.g. the keys of the key -> value corpus)."""
    L, H = model.config.n_layer, model.config.n_head
    same = torch.zeros(L, H)
    induction = torch.zeros(L, H)
    n = 0
    device = next(model.parameters()).device
    cases = []  # (ids, counted query positions, (T, T) masks over keys: earlier occurrences, tokens after them)
    for text in texts:
        ids = tokenizer.encode(text)[:model.config.block_size]
        T = len(ids)
        texts_of = tokenizer.token_texts(ids) if only is not None else None
        seen: dict[int, list[int]] = {}
        # a repeated token may have several earlier occurrences: all copies carry the same cue
        earlier, after = torch.zeros(T, T), torch.zeros(T, T)
        rows = []
        for t, i in enumerate(ids):
            prev = [p for p in seen.get(i, []) if p + 1 < t]  # the token after must be earlier than t
            if prev and (only is None or only(texts_of[t])):
                rows.append(t)
                earlier[t, prev] = 1.0
                after[t, [p + 1 for p in prev]] = 1.0
            seen.setdefault(i, []).append(t)
        if rows:
            cases.append((ids, rows, earlier, after))
    with eval_mode(model):
        for start in range(0, len(cases), 64):
            batch = cases[start:start + 64]
            # right padding: causal attention keeps the real positions exactly as they are alone
            T = max(len(c[0]) for c in batch)
            idx = torch.tensor([c[0] + [c[0][-1]] * (T - len(c[0])) for c in batch], device=device)
            _, att = model.attention_maps(idx)  # (L, B, H, T, T)
            att = att.float().cpu()
            for b, (ids, rows, earlier, after) in enumerate(batch):
                a = att[:, b, :, rows, :len(ids)]  # (L, H, rows, T)
                same += (a * earlier[rows]).sum((-1, -2))
                induction += (a * after[rows]).sum((-1, -2))
                n += len(rows)
    if n == 0:
        raise ConfigError("look_back_attention: no token repeats within a window of these texts.")
    return LookBack((same / n).tolist(), (induction / n).tolist(), n)


# -- the evaluation -------------------------------------------------------------------------------


@dataclass
class KResult:
    k: int
    accuracy: float              # mean over draws
    std: float                   # sample standard deviation over draws (0 with one draw)
    accuracies: list[float]      # one per draw
    demos_used: float            # mean demonstrations per prompt after fitting the context
    fitted: int                  # prompts (over all draws) that lost demonstrations or were cut
    predictions: list[list[int]]  # [draw][example] the chosen answer index


@dataclass
class ICLResult:
    ks: list[int]
    draws: int
    length_norm: bool
    n_examples: int
    chance: float
    majority: float
    gold: list[int]
    results: list[KResult]
    template: dict
    labels: list[str]
    verbalizer: dict[str, str]
    seed: int
    attention: dict | None = None  # mean DemoAttention over some prompts at the largest k
    look_back: LookBack | None = None  # induction heads, when the task has look-back texts

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path, run: str, checkpoint_step: int, data: str) -> None:
        """The JSON file of ``workbench eval --out`` (the window's Save writes the same)."""
        from pathlib import Path

        from .checkpoint import atomic_write_json

        check_results_path(path)
        atomic_write_json(Path(path), {"run": str(run), "checkpoint_step": int(checkpoint_step), "data": data,
                                       **self.to_dict()})

    def look_back_line(self) -> str:
        """One sentence on the strongest look-back heads (empty when not measured)."""
        if self.look_back is None:
            return ""
        layer, head, score = self.look_back.strongest("induction")
        s_layer, s_head, s_score = self.look_back.strongest("same_token")
        return (f"look-back heads ({self.look_back.positions:,} repeated tokens): layer {layer} head {head} "
                f"gives {score:.2f} of its attention to the tokens after earlier occurrences (induction), "
                f"layer {s_layer} head {s_head} gives {s_score:.2f} to the earlier occurrences themselves")

    def table(self) -> str:
        lines = [f"{'k':>3}  {'accuracy':>8}  {'± std':>7}  {'demos':>6}  fitted"]
        for r in self.results:
            lines.append(f"{r.k:>3}  {r.accuracy:8.3f}  {r.std:7.3f}  {r.demos_used:6.2f}  {r.fitted}")
        lines.append(f"chance {self.chance:.3f}, majority class {self.majority:.3f}, {self.n_examples} examples, "
                     f"{self.draws} draws, {'mean' if self.length_norm else 'summed'} log-likelihood")
        return "\n".join(lines)


def check_results_path(path) -> None:
    """Results are written outside run folders, as a new file or over earlier results only."""
    from pathlib import Path

    from .ownership import check_output

    def earlier_results(p: Path) -> bool:
        try:
            if p.stat().st_size > 50_000_000:
                return False
            d = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(d, dict) and {"run", "checkpoint_step", "results"} <= d.keys()

    check_output(Path(path), "evaluation results", own_file=earlier_results)


def evaluate_in_context(model: GPT, tokenizer: Tokenizer, task: InContextTask,
                        ks: Sequence[int] = (0, 1, 2, 4, 8), draws: int = 5, *, length_norm: bool = False,
                        attention_examples: int = 0, batch_tokens: int = 16384,
                        progress: Callable[[int, int], None] | None = None,
                        should_stop: Callable[[], bool] | None = None) -> ICLResult:
    """Accuracy for every k over ``draws`` draws of demonstrations (k = 0 needs one draw only).

    attention_examples: also measure, for that many test examples at the largest k (draw 0), how
    the query's attention splits over the prompt's parts. ``progress(done, total)`` counts prompts;
    ``should_stop()`` is asked between batches and raises :class:`Cancelled`.
    """
    ks = sorted(set(int(k) for k in ks))
    if not ks or ks[0] < 0:
        raise ConfigError(f"k values {ks}: give one or more shot counts of 0 or more.")
    if draws < 1:
        raise ConfigError(f"draws = {draws}: at least one draw of demonstrations is needed.")
    if max(ks) > 0 and not task.pool:
        raise ConfigError("k > 0 needs demonstrations, but the demonstration pool is empty.")
    block = model.config.block_size
    encode = _Encoder(tokenizer)
    n = len(task.test)
    total = sum(n * (1 if k == 0 else draws) for k in ks)
    done = 0
    results = []
    for k in ks:
        accs, preds, used, fitted = [], [], 0, 0
        for d in range(1 if k == 0 else draws):
            if should_stop is not None and should_stop():
                raise Cancelled("In-context evaluation was stopped.")
            demos = task.demonstrations(k, d)
            prompts = [task.prompt(i, k, d, tokenizer=encode, block_size=block, demos=demos) for i in range(n)]
            scores = score_prompts(model, prompts, length_norm=length_norm, batch_tokens=batch_tokens)
            chosen = [max(range(len(s)), key=s.__getitem__) for s in scores]
            accs.append(sum(c == p.gold for c, p in zip(chosen, prompts)) / n)
            preds.append(chosen)
            used += sum(p.demos_used for p in prompts)
            fitted += sum(p.demos_used < p.demos_requested or p.cut_tokens > 0 for p in prompts)
            done += n
            if progress is not None:
                progress(done, total)
        if k == 0 and draws > 1:  # nothing to draw: every draw would be the same
            accs, preds = accs * draws, preds * draws
        results.append(KResult(k, statistics.fmean(accs), statistics.stdev(accs) if len(accs) > 1 else 0.0,
                               accs, used / (n * (1 if k == 0 else draws)), fitted, preds))
    result = ICLResult(ks, draws, length_norm, n, task.chance(), task.majority(),
                       [task.gold(ex) for ex in task.test], results, dataclasses.asdict(task.template),
                       list(task.labels), dict(task.verbalizer), task.seed)
    if attention_examples and ks[-1] > 0:
        result.attention = mean_demonstration_attention(model, task, ks[-1], attention_examples, encode)
    if task.look_back_texts:
        result.look_back = look_back_attention(model, tokenizer, task.look_back_texts, task.look_back_only)
    return result


def mean_demonstration_attention(model: GPT, task: InContextTask, k: int, examples: int,
                                 tokenizer: Tokenizer | _Encoder) -> dict:
    """DemoAttention averaged over the first ``examples`` test prompts of draw 0 with k
    demonstrations: the share of the query's attention per demonstration slot (first in the prompt
    first) and per kind of part. Prompts that had to drop demonstrations count when they kept as many
    as the first one did (the context holds that many), so slots stay comparable. ``same_input``
    compares a demonstration whose input equals the query's (for builtin:icl: the same key, where
    an induction head looks) with one whose input differs, as the mean share of one demonstration."""
    demos = task.demonstrations(k, 0)
    slots: list[float] = []
    kinds: dict[str, float] = {}
    same, other = [], []
    m = 0
    for i, query in enumerate(task.test):
        if m >= examples:
            break
        p = task.prompt(i, k, 0, tokenizer=tokenizer, block_size=model.config.block_size, demos=demos)
        if p.cut_tokens or (m and p.demos_used != len(slots)):
            continue
        a = demonstration_attention(model, p)
        slots = [s + x for s, x in zip(slots, a.demonstrations)] if m else list(a.demonstrations)
        for kind, x in a.by_kind().items():
            kinds[kind] = kinds.get(kind, 0.0) + x
        kept = demos[len(demos) - p.demos_used:]  # the ones nearest the query stay
        for d, x in zip(kept, a.demonstrations):
            (same if (d.text, d.text_pair) == (query.text, query.text_pair) else other).append(x)
        m += 1
    return {
        "k": len(slots), "examples": m,
        "demonstrations": [s / m for s in slots] if m else [],
        "kinds": {kind: x / m for kind, x in kinds.items()},
        "same_input": {"same": statistics.fmean(same) if same else None,
                       "other": statistics.fmean(other) if other else None},
    }


# -- a task from a labelled file ------------------------------------------------------------------


def labelled_icl_task(data, columns: Columns, *, labels: Sequence[str] | None = None,
                      verbalizer: dict[str, str] | None = None, template: PromptTemplate | None = None,
                      demos=None, limit: int | None = None, seed: int = 0) -> InContextTask:
    """An in-context task from a labelled CSV/TSV/JSONL file (``columns`` say where text, second text
    and label, or choices and answer, live).

    Demonstrations come from ``demos`` (a file with the same columns) or, without one, from a fifth
    of ``data`` held out by a seeded shuffle, so no query is its own demonstration; the rest are the
    test examples (the first ``limit`` of them when given). ``labels`` fixes the candidate set and
    its order (default: every label in the file); ``verbalizer`` maps labels to the words scored.
    The template defaults to ``default_template`` (one text or a pair).
    """
    verbalizer = dict(verbalizer or {})
    labels = list(labels) if labels else None
    table = read_labelled(data, columns, labels)
    if demos:
        pool = read_labelled(demos, columns, labels or table.labels or None)
        test = table
    else:
        pool, test = split_examples(table, 0.8, seed)
    test_examples = test.examples[:limit] if limit else test.examples
    template = template or default_template(pair=bool(columns.text_pair))
    return InContextTask(test_examples, pool.examples, template, [] if columns.choices else (labels or table.labels),
                         verbalizer, seed)


# -- the built-in in-context task -----------------------------------------------------------------


LOOK_BACK_LINES = 300  # key -> value lines to measure the look-back heads on (~1,800 repeated keys)


def builtin_icl_task(n: int = 200, seed: int = 0, n_keys: int = 4, pool: int = 64) -> InContextTask:
    """The evaluation that goes with ``builtin:icl``: one fresh key -> value mapping, keys as queries."""
    from .builtin_corpora import icl_eval_examples, keyvalue_line

    test = icl_eval_examples(n, seed, n_keys, part="test")
    demos = icl_eval_examples(pool, seed, n_keys, part="demos")
    labels = sorted({ex.label for ex in test + demos})
    rng = random.Random(f"icl-look-back:{seed}")
    lines = [keyvalue_line(rng) for _ in range(LOOK_BACK_LINES)]
    return InContextTask(test, demos, ICL_TEMPLATE, labels, {}, seed, look_back_texts=lines, look_back_only=str.isalpha)
