"""Labelled datasets for fine-tuning and in-context evaluation: CSV, TSV and JSONL.

A column mapping says where each part of an example lives: ``text`` (and ``text_pair``), ``label``,
``score``, ``choices`` and ``answer``. JSONL fields may be dotted paths into nested objects
(``question.stem``); a choices field may hold a list of strings or of objects with a ``text``
(ARC's ``question.choices``). Errors name the file, the line and the column, and say what to do.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .corpus import flatten_fields
from .errors import CorpusError, did_you_mean


@dataclass(frozen=True)
class Columns:
    text: str = "text"
    text_pair: str = ""
    label: str = ""
    score: str = ""
    choices: tuple[str, ...] = ()   # several columns, or one column holding a list
    answer: str = ""
    answer_base: int = 0            # answers given as numbers count from this (COPA: 1)


@dataclass(frozen=True)
class Example:
    text: str
    text_pair: str | None = None
    label: str | None = None        # the raw label text, e.g. "1" or "entailment"
    score: float | None = None
    choices: tuple[str, ...] = ()
    answer: int | None = None       # index into choices
    line: int = 0                   # where it came from, for messages


@dataclass
class LabelledData:
    path: Path
    examples: list[Example]
    labels: list[str] = field(default_factory=list)  # label vocabulary, in class-index order

    def label_index(self, ex: Example) -> int:
        return self.labels.index(ex.label)


def read_labelled(path: str | Path, cols: Columns, labels: list[str] | None = None, *,
                  limit: int | None = None, quoting: str = "auto") -> LabelledData:
    """Read every example; ``labels`` fixes the label vocabulary (others are then an error).

    quoting (CSV/TSV): "csv" honours double quotes, "none" takes every character literally (GLUE's
    STS-B and MRPC files), "auto" tries "csv" and falls back to "none" when that finds a ragged row.
    """
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: no such file. Check the path of the labelled data.")
    suffix = path.suffix.lower()
    if suffix == ".jsonl" or suffix == ".json":
        rows = _jsonl_rows(path)
    elif suffix in (".csv", ".tsv", ".txt"):
        delimiter = "," if suffix == ".csv" else "\t"
        if quoting == "auto":
            try:
                for _ in _table_rows(path, delimiter, csv.QUOTE_MINIMAL):
                    pass
                quoting = "csv"
            except CorpusError:
                quoting = "none"
        rows = _table_rows(path, delimiter, csv.QUOTE_NONE if quoting == "none" else csv.QUOTE_MINIMAL)
    else:
        raise CorpusError(f"{path}: labelled data must be .csv, .tsv or .jsonl (got {suffix or 'no suffix'}).")
    examples = []
    for line, row in rows:
        examples.append(_example(row, cols, path, line))
        if limit and len(examples) >= limit:
            break
    if not examples:
        raise CorpusError(f"{path}: no examples in the file; it has a header but no rows.", exit_code=1)
    vocab = _label_vocab(examples, labels, path, cols)
    return LabelledData(path, examples, vocab)


def preview(path: str | Path, n: int = 20) -> tuple[list[str], list[dict[str, Any]]]:
    """(column names, the first ``n`` rows as {column: value}) of a CSV, TSV or JSONL file, read the
    way ``read_labelled`` reads it, so the names are the ones a task's columns can use: nested JSON
    objects become dotted keys ("question.stem"), lists stay values."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: no such file. Check the path of the labelled data.")
    suffix = path.suffix.lower()
    rows: list[dict[str, Any]] = []
    if suffix in (".jsonl", ".json"):
        for _line, row in _jsonl_rows(path):
            rows.append(flatten_fields(row))
            if len(rows) >= n:
                break
    elif suffix in (".csv", ".tsv", ".txt"):
        delimiter = "," if suffix == ".csv" else "\t"
        for quoting in (csv.QUOTE_MINIMAL, csv.QUOTE_NONE):  # as read_labelled's "auto", on the first rows
            rows = []
            try:
                for _line, row in _table_rows(path, delimiter, quoting):
                    rows.append(row)
                    if len(rows) >= n:
                        break
                break
            except CorpusError:
                if quoting == csv.QUOTE_NONE:
                    raise
        if not rows:  # a header and no rows: still name the columns
            with open(path, encoding="utf-8-sig", newline="") as f:
                return [h.strip() for h in next(csv.reader(f, delimiter=delimiter), [])], []
    else:
        raise CorpusError(f"{path}: labelled data must be .csv, .tsv or .jsonl (got {suffix or 'no suffix'}).")
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    return columns, rows


def split_examples(data: LabelledData, val_fraction: float, seed: int) -> tuple[LabelledData, LabelledData]:
    """A deterministic shuffle-and-cut into train and validation."""
    import random

    idx = list(range(len(data.examples)))
    random.Random(seed).shuffle(idx)
    n_val = max(1, int(len(idx) * val_fraction))
    val = [data.examples[i] for i in sorted(idx[:n_val])]
    train = [data.examples[i] for i in sorted(idx[n_val:])]
    return LabelledData(data.path, train, data.labels), LabelledData(data.path, val, data.labels)


# -- rows -------------------------------------------------------------------------------------


def _table_rows(path: Path, delimiter: str, quoting: int):
    with open(path, encoding="utf-8-sig", newline="") as f:  # -sig: drop a byte-order mark
        # strict: an unclosed quote is an error (and "auto" then reads the file without quoting)
        # instead of swallowing the rest of the file into one field
        reader = csv.reader(f, delimiter=delimiter, quoting=quoting, strict=quoting != csv.QUOTE_NONE)
        try:
            header = next(reader)
        except StopIteration:
            raise CorpusError(f"{path}: empty file; a header row naming the columns is needed.", exit_code=1) from None
        except UnicodeDecodeError as e:
            raise CorpusError(f"{path}: not UTF-8 (byte {e.start}); save the file as UTF-8.", exit_code=1) from None
        except csv.Error as e:
            raise CorpusError(f"{path}, line 1: the header row cannot be read ({e}). Check the quotes.",
                              exit_code=1) from None
        header = [h.strip() for h in header]
        try:
            for row in reader:
                line = reader.line_num
                if not row or row == [""]:
                    continue
                if len(row) != len(header):
                    raise CorpusError(f"{path}, line {line}: {len(row)} fields where the header has {len(header)} "
                                      f"({', '.join(header)}). Check for a stray "
                                      f"{'tab' if delimiter == chr(9) else 'comma'} or an unclosed quote.", exit_code=1)
                yield line, dict(zip(header, row))
        except UnicodeDecodeError as e:
            raise CorpusError(f"{path}: not UTF-8 near line {reader.line_num} (byte {e.start} of a chunk); "
                              f"save the file as UTF-8.", exit_code=1) from None
        except csv.Error as e:
            what = ("a quoted field is never closed before the end of the file" if "unexpected end" in str(e)
                    else str(e))
            raise CorpusError(f"{path}, line {reader.line_num}: {what}. Check the quotes.", exit_code=1) from None


def _jsonl_rows(path: Path):
    with open(path, "rb") as f:  # bytes: a bad byte is reported with its line, not as a traceback
        for line, raw in enumerate(f, 1):
            try:
                text = raw.decode("utf-8-sig" if line == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise CorpusError(f"{path}, line {line}: not UTF-8 (byte 0x{raw[e.start]:02x} at column "
                                  f"{e.start + 1}); save the file as UTF-8.", exit_code=1) from None
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as e:
                raise CorpusError(f"{path}, line {line}: not valid JSON ({e.msg} at column {e.colno}). "
                                  f"Each line must hold one JSON object.", exit_code=1) from None
            except RecursionError:
                raise CorpusError(f"{path}, line {line}: JSON nested too deeply to read.", exit_code=1) from None
            if not isinstance(row, dict):
                raise CorpusError(f"{path}, line {line}: a JSON {type(row).__name__}, not an object.", exit_code=1)
            yield line, row


def _get(row: dict, name: str, path: Path, line: int, what: str):
    node = row
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            have = list(node) if isinstance(node, dict) else []
            raise CorpusError(f"{path}, line {line}: no {what} column {name!r}{did_you_mean(part, have)}. "
                              f"Columns there: {', '.join(map(str, have)) or 'none'}.")
        node = node[part]
    return node


def _text(row, name, path, line, what) -> str:
    value = _get(row, name, path, line, what)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise CorpusError(f"{path}, line {line}: empty {what} in column {name!r}. Remove the row or fill it in.", exit_code=1)
    return str(value)


def _example(row: dict, cols: Columns, path: Path, line: int) -> Example:
    text = _text(row, cols.text, path, line, "text")
    pair = _text(row, cols.text_pair, path, line, "text_pair") if cols.text_pair else None
    label = None
    if cols.label:
        raw = _get(row, cols.label, path, line, "label")
        if raw is None or str(raw).strip() == "":
            raise CorpusError(f"{path}, line {line}: missing label in column {cols.label!r}.", exit_code=1)
        label = str(raw).strip()
    score = None
    if cols.score:
        raw = _get(row, cols.score, path, line, "score")
        try:
            score = float(raw)
        except (TypeError, ValueError, OverflowError):
            score = math.nan
        if not math.isfinite(score):  # "nan" and "inf" parse as floats but would make the loss NaN
            raise CorpusError(f"{path}, line {line}: score {raw!r} in column {cols.score!r} is not a finite "
                              f"number.", exit_code=1) from None
    choices, answer = (), None
    if cols.choices:
        choices, keys = _choices(row, cols, path, line)
        if cols.answer:
            answer = _answer(_get(row, cols.answer, path, line, "answer"), keys, cols, path, line, len(choices))
    return Example(text, pair, label, score, choices, answer, line)


def _choices(row, cols: Columns, path, line) -> tuple[tuple[str, ...], list[str]]:
    """The answer options and their keys (labels such as "A" where the data has them)."""
    if len(cols.choices) > 1:
        texts = tuple(_text(row, c, path, line, "choice") for c in cols.choices)
        return texts, [str(i + cols.answer_base) for i in range(len(texts))]
    value = _get(row, cols.choices[0], path, line, "choices")
    if not isinstance(value, list) or not value:
        raise CorpusError(f"{path}, line {line}: column {cols.choices[0]!r} should hold a list of answers.", exit_code=1)
    texts, keys = [], []
    for i, item in enumerate(value):
        if isinstance(item, dict):
            texts.append(str(item.get("text", "")))
            keys.append(str(item.get("label", i + cols.answer_base)))
        else:
            texts.append(str(item))
            keys.append(str(i + cols.answer_base))
    return tuple(texts), keys


def _answer(raw, keys: list[str], cols: Columns, path, line, n: int) -> int:
    key = str(raw).strip()
    if key in keys:
        return keys.index(key)
    raise CorpusError(f"{path}, line {line}: answer {key!r} in column {cols.answer!r} matches none of the "
                      f"choices ({', '.join(keys)}). Check answer_base ({cols.answer_base}) or the column.")


def _label_vocab(examples: list[Example], labels: list[str] | None, path: Path, cols: Columns) -> list[str]:
    if not cols.label:
        return []
    seen = sorted({e.label for e in examples}, key=_natural)
    if not labels:
        return seen
    labels = [str(x) for x in labels]
    for e in examples:
        if e.label not in labels:
            raise CorpusError(f"{path}, line {e.line}: unknown label {e.label!r} in column {cols.label!r}; "
                              f"the task's labels are {', '.join(labels)}. Add it to labels or fix the row.")
    return labels


def _natural(s: str):
    """Numbers in numeric order ("2" before "10"), then words."""
    try:
        return (0, float(s), "")
    except ValueError:
        return (1, 0.0, s)
