"""The Corpus page's jobs: count each source (statistics, and the field names of a JSONL/CSV
file for the field picker) and read the start of one for the preview."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from workbench.engine.corpus import BUILTIN_PREFIX, KINDS, Corpus, flatten_fields

PREVIEW_CHARS = 2000

# Statistics already counted in this process: (spec, glob, field, errors, file signature) -> result.
# Built-in corpora are deterministic; a file counts again when its size or time changes.
_STATS_CACHE: dict[tuple, tuple] = {}


def _signature(spec: str):
    if spec.startswith(BUILTIN_PREFIX):
        return "builtin"
    p = Path(spec).expanduser()
    if p.is_file():
        st = p.stat()
        return (st.st_size, st.st_mtime_ns)
    return None  # folders (their files may change unseen) and missing paths: count every time


def source_stats(state, sources: list[str], glob: str, text_field: str, errors: str) -> None:
    """For each source: progress((spec, SourceStats | None, error | None, fields)). Runs in a job."""
    for spec in sources:
        if state.should_stop():
            return
        sig = _signature(spec)
        key = (spec, glob, text_field, errors, sig)
        if sig is not None and key in _STATS_CACHE:
            state.progress(_STATS_CACHE[key])
            continue
        fields = detect_fields(spec)
        try:
            stats = Corpus([spec], glob=glob, text_field=text_field, encoding_errors=errors).stats().sources[0]
            item = (spec, stats, None, fields)
        except Exception as e:  # CorpusError in words; anything else still belongs on the row
            item = (spec, None, str(e) or type(e).__name__, fields)
        if sig is not None and not state.should_stop():
            _STATS_CACHE[key] = item
        state.progress(item)


def preview_text(state, spec: str, glob: str, text_field: str, errors: str,
                 max_chars: int = PREVIEW_CHARS) -> str:
    """The first max_chars characters of a source, documents separated by a marker line."""
    corpus = Corpus([spec], glob=glob, text_field=text_field, encoding_errors=errors)
    out, size = [], 0
    for piece in corpus.pieces(max_chars=max_chars):
        if state.should_stop():
            break
        if piece.new_document and out:
            out.append("\n──────── next document ────────\n")
        take = piece.text[: max_chars - size]
        out.append(take)
        size += len(take)
        if size >= max_chars:
            break
    return "".join(out)


def detect_fields(spec: str) -> list[str]:
    """Field names of a JSONL file's first record or a CSV/TSV header (for the field picker)."""
    if spec.startswith(BUILTIN_PREFIX):
        return []
    path = Path(spec).expanduser()
    kind = KINDS.get(path.suffix.lower())
    if not path.is_file() or kind not in ("jsonl", "csv", "tsv"):
        return []
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as f:
            if kind == "jsonl":
                for line in f:
                    if line.strip():
                        record = json.loads(line)
                        return list(flatten_fields(record)) if isinstance(record, dict) else []
                return []
            header = next(csv.reader(f, delimiter="\t" if kind == "tsv" else ","), [])
            return [h.strip().strip('"') for h in header if h.strip()]
    except Exception:
        return []

