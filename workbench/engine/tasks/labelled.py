"""Labelled tasks with GPT-1's input transformations (Radford et al. 2018, figure 1).

Every input is one token sequence through the unchanged trunk; a linear head reads the final
hidden state at the ``extract`` token:

  classification   bos text extract                          -> head -> class logits
  regression       bos text extract                          -> head -> a number (MSE)
  entailment       bos premise delim hypothesis extract      -> head -> class logits
  similarity       bos A delim B extract  +  bos B delim A extract  (hidden states added) -> head
                   (classes with label = ..., a number with score = ...)
  multiple_choice  bos context delim answer_i extract, for every i -> head -> one score each,
                   softmax over the answers

The objective is L_task + lm_weight * L_LM, the LM loss taken on the same input tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ConfigError
from ..labelled import Columns, Example, LabelledData, read_labelled, split_examples
from .base import Task, TaskOutput

EVAL_LIMIT = 2000  # validation examples scored per evaluation (the whole set when smaller)


@dataclass
class Encoded:
    """One example as token ids: its parts, and its target."""
    parts: list[list[int]]       # text / text+pair / context+each choice, unwrapped
    target: float | int          # class index, choice index, or score


class LabelledTask(Task):
    regression = False  # predicts a number (MSE) instead of classes

    def __init__(self, cfg, ctx):
        super().__init__(cfg, ctx)
        cols = Columns(text=cfg.text, text_pair=cfg.text_pair, label=cfg.label if not self._by_score() else "",
                       score=cfg.score if self._by_score() else "", choices=cfg.choices, answer=cfg.answer,
                       answer_base=cfg.answer_base)
        train = read_labelled(cfg.train, cols, list(cfg.labels) or None)
        if cfg.val:
            val = read_labelled(cfg.val, cols, train.labels or None)
        else:
            train, val = split_examples(train, cfg.val_fraction or 0.1, seed=0)
        if cfg.max_examples:
            train = LabelledData(train.path, train.examples[: cfg.max_examples], train.labels)
        self.labels = train.labels
        if not self.regression and self.kind != "multiple_choice" and len(self.labels) < 2:
            raise ConfigError(f"{cfg.train}: the {self.kind} task found only the label(s) {self.labels}; "
                              f"a classifier needs two or more.")
        tok = ctx.tokenizer
        self.bos, self.delim, self.extract = (tok.special_id(r) for r in ("bos", "delim", "extract"))
        self.pad, self.unk, self.mask = (tok.special_id(r) for r in ("pad", "unk", "mask"))
        self.examples = {"train": self._encode(train.examples), "val": self._encode(val.examples)}
        self.texts = {"train": train.examples, "val": val.examples}

    def _by_score(self) -> bool:
        return self.regression

    # -- encoding ----------------------------------------------------------------------------

    def _encode(self, examples: list[Example]) -> list[Encoded]:
        tok = self.ctx.tokenizer
        out = []
        firsts = tok.encode_batch([e.text for e in examples])
        pairs = tok.encode_batch([e.text_pair or "" for e in examples]) if self.cfg.text_pair else None
        for n, (e, first) in enumerate(zip(examples, firsts)):
            if self.kind == "multiple_choice":
                parts = [first] + tok.encode_batch([" " + c for c in e.choices])
                target = e.answer
            else:
                parts = [first] + ([pairs[n]] if pairs is not None else [])
                target = e.score if self.regression else self.labels.index(e.label)
            out.append(Encoded(parts, target))
        return out

    def sequences(self, enc: Encoded) -> list[list[int]]:
        """The input transformation: the token sequences of one example (a head reads each)."""
        budget = self.ctx.block_size
        if self.kind in ("classification", "regression"):
            return [[self.bos, *enc.parts[0][: budget - 2], self.extract]]
        if self.kind == "entailment":
            a, b = _fit_pair(enc.parts[0], enc.parts[1], budget - 3)
            return [[self.bos, *a, self.delim, *b, self.extract]]
        if self.kind == "similarity":
            a, b = _fit_pair(enc.parts[0], enc.parts[1], budget - 3)
            return [[self.bos, *a, self.delim, *b, self.extract], [self.bos, *b, self.delim, *a, self.extract]]
        seqs = []  # multiple choice: the context keeps its end, nearest the answer
        for answer in enc.parts[1:]:
            ans = answer[: budget // 2]
            ctx = enc.parts[0][-(budget - 3 - len(ans)):] if budget - 3 - len(ans) > 0 else []
            seqs.append([self.bos, *ctx, self.delim, *ans, self.extract])
        return seqs

    def _augment(self, ids: list[int], gen: torch.Generator) -> list[int]:
        cfg = self.cfg
        if not (cfg.aug_token_dropout or cfg.aug_delete or cfg.aug_swap or cfg.aug_mask) or len(ids) < 2:
            return ids
        r = torch.rand(len(ids), 4, generator=gen).tolist()
        out = []
        for tok, (pd, pdel, pswap, pmask) in zip(ids, r):
            if pdel < cfg.aug_delete:
                continue
            out.append(self.unk if pd < cfg.aug_token_dropout else self.mask if pmask < cfg.aug_mask else tok)
        for i in range(len(out) - 1):
            if r[i][2] < cfg.aug_swap:
                out[i], out[i + 1] = out[i + 1], out[i]
        return out or ids[:1]

    # -- batches -----------------------------------------------------------------------------

    def collate(self, encs: list[Encoded], gen: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """x (N, T) padded right; lengths (N,); targets for the auxiliary LM; the task's targets.
        N = examples x sequences per example (2 for similarity, n_choices for multiple choice)."""
        seqs, per = [], []
        for enc in encs:
            if gen is not None:  # augmentation: training batches only
                enc = Encoded([self._augment(p, gen) for p in enc.parts], enc.target)
            s = self.sequences(enc)
            per.append(len(s))
            seqs += s
        width = max(per)
        if self.kind == "multiple_choice":  # pad every example to the same number of choices
            padded = []
            for i, n in enumerate(per):
                chunk = seqs[sum(per[:i]): sum(per[:i]) + n]
                padded += chunk + [chunk[-1]] * (width - n)
            seqs = padded
        T = max(len(s) for s in seqs)
        x = torch.full((len(seqs), T), self.pad, dtype=torch.long)
        for i, s in enumerate(seqs):
            x[i, : len(s)] = torch.tensor(s)
        lengths = torch.tensor([len(s) for s in seqs])
        mask = torch.arange(T)[None, :] < lengths[:, None]          # (N, T) True on real tokens
        lm_targets = torch.full_like(x, -100)
        lm_targets[:, :-1] = torch.where(mask[:, 1:], x[:, 1:], torch.full_like(x[:, 1:], -100))
        batch = {"x": x, "lengths": lengths, "mask": mask, "lm_targets": lm_targets,
                 "choices": torch.tensor([[j < n for j in range(width)] for n in per])}
        dtype = torch.float32 if self.regression else torch.long
        batch["target"] = torch.tensor([e.target for e in encs], dtype=dtype)
        return batch

    def sample(self, split, batch_size, gen):
        pool = self.examples[split] or self.examples["train"]
        idx = torch.randint(len(pool), (batch_size,), generator=gen).tolist()
        return self.collate([pool[i] for i in idx], gen if split == "train" else None)

    # -- model -------------------------------------------------------------------------------

    def build_head(self):
        out = 1 if (self.regression or self.kind == "multiple_choice") else len(self.labels)
        return nn.Linear(self.ctx.n_embd, out)

    def predict(self, model, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(predictions: logits (B, classes|choices) or numbers (B,), final hidden states (N, T, C))."""
        # Right padding under causal attention: a real token only sees tokens before it, never the
        # padding after the sequence, so no padding mask is needed (and SDPA keeps its is_causal
        # fast path). The padded positions' states are never read: the head reads the last real one.
        h, _ = model.hidden_states(batch["x"])
        feat = h[torch.arange(h.size(0), device=h.device), batch["lengths"] - 1]  # (N, C) at extract
        B = batch["target"].size(0)
        if self.kind == "similarity":
            feat = feat.view(B, 2, -1).sum(1)                     # both orderings, added
        out = self.head(model)(feat).float()
        if self.kind == "multiple_choice":
            scores = out.view(B, -1)                              # (B, n_choices)
            return scores.masked_fill(~batch["choices"], float("-inf")), h
        if self.regression:
            return out.view(B), h
        return out, h

    def forward(self, model, batch):
        return self._output(model, batch, *self.predict(model, batch))

    def _output(self, model, batch, pred, h) -> TaskOutput:
        """Loss and metrics from one pass of the trunk (its predictions and hidden states)."""
        if self.regression:
            task_loss = F.mse_loss(pred, batch["target"])
            metrics = {"mse": task_loss.detach()}
        else:
            task_loss = F.cross_entropy(pred, batch["target"])
            metrics = {"accuracy": (pred.argmax(-1) == batch["target"]).float().mean().detach()}
        metrics["task_loss"] = task_loss.detach()
        loss = task_loss
        if self.cfg.lm_weight > 0:
            logits = model.lm_head(h)
            lm = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), batch["lm_targets"].view(-1),
                                 ignore_index=-100)
            metrics["lm_loss"] = lm.detach()
            loss = task_loss + self.cfg.lm_weight * lm
        return TaskOutput(loss, metrics)

    @torch.no_grad()
    def evaluate(self, model, batch_size: int, device) -> tuple[float, dict[str, float]]:
        """Loss and metrics over the validation set in order (up to EVAL_LIMIT examples)."""
        pool = self.examples["val"][:EVAL_LIMIT]
        preds, targets, total = [], [], 0.0
        for i in range(0, len(pool), batch_size):
            batch = {k: v.to(device) for k, v in self.collate(pool[i:i + batch_size]).items()}
            p, h = self.predict(model, batch)  # one pass of the trunk gives both loss and predictions
            total += self._output(model, batch, p, h).loss.item() * batch["target"].size(0)
            preds.append(p.cpu())
            targets.append(batch["target"].cpu())
        if self.kind == "multiple_choice":  # batches are as wide as their longest list of answers
            width = max(p.size(1) for p in preds)
            preds = [F.pad(p, (0, width - p.size(1)), value=float("-inf")) for p in preds]
        pred, target = torch.cat(preds), torch.cat(targets)
        self.last_confusion = None if self.regression else self.confusion(pred, target)
        return total / len(pool), self.metrics(pred, target)

    def confusion(self, pred: torch.Tensor, target: torch.Tensor):
        """(classes, classes) counts, rows = true class, columns = predicted."""
        import numpy as np

        n = pred.size(-1)
        m = np.zeros((n, n), dtype=np.int64)
        np.add.at(m, (target.numpy(), pred.argmax(-1).numpy()), 1)
        return m

    def class_names(self) -> list[str]:
        if self.kind == "multiple_choice":
            width = max(len(e.parts) - 1 for e in self.examples["val"] or self.examples["train"])
            return [f"choice {i + 1}" for i in range(width)]
        return list(self.labels)

    def metrics(self, pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        if self.regression:
            return {"mse": float(F.mse_loss(pred, target)), "pearson": _pearson(pred, target),
                    "spearman": _pearson(_ranks(pred), _ranks(target))}
        guess = pred.argmax(-1)
        out = {"accuracy": float((guess == target).float().mean())}
        if self.kind != "multiple_choice" and len(self.labels) == 2:  # F1 of the second label
            tp = float(((guess == 1) & (target == 1)).sum())
            fp = float(((guess == 1) & (target == 0)).sum())
            fn = float(((guess == 0) & (target == 1)).sum())
            out["f1"] = 2 * tp / max(1.0, 2 * tp + fp + fn)
        return out


class Classification(LabelledTask):
    kind = "classification"


class Entailment(LabelledTask):
    kind = "entailment"


class Similarity(LabelledTask):
    kind = "similarity"

    def __init__(self, cfg, ctx):
        self.regression = bool(cfg.score) and not cfg.label
        super().__init__(cfg, ctx)


class MultipleChoice(LabelledTask):
    kind = "multiple_choice"


class Regression(LabelledTask):
    kind = "regression"
    regression = True


def _fit_pair(a: list[int], b: list[int], budget: int) -> tuple[list[int], list[int]]:
    """Trim the longer of two segments first until both fit ``budget`` tokens."""
    a, b = list(a), list(b)
    while len(a) + len(b) > budget:
        if len(a) >= len(b):
            a.pop()
        else:
            b.pop()
    return a, b


def _pearson(x: torch.Tensor, y: torch.Tensor) -> float:
    x, y = x.double() - x.double().mean(), y.double() - y.double().mean()
    den = math.sqrt(float((x * x).sum() * (y * y).sum()))
    return float((x * y).sum()) / den if den > 0 else 0.0


def _ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks 0..n-1; tied values share the mean of the ranks they span (Spearman's convention)."""
    _, inverse, counts = torch.unique(x, return_inverse=True, return_counts=True)
    # unique() sorts, so the tie group g spans the ranks start_g .. start_g + count_g - 1
    starts = torch.cumsum(counts, 0) - counts
    return (starts + (counts - 1) / 2.0).double()[inverse]
