"""Reading and checking corpora: text files, folders, JSONL, CSV/TSV and built-in corpora.

A corpus is a list of sources read in the order given. A source holds documents: a text file is
one document, a JSONL record is one, a CSV/TSV row is one. ``Corpus.pieces`` streams every
document as pieces of bounded size, so nothing downstream ever holds a whole file: a 200 MB file
on a single line once took 16 GB in the BPE trainer when handed over in one string.

Files are read as UTF-8 in binary chunks through an incremental decoder, which lets an error name
the exact byte offset of the first bad byte. Line endings become "\\n" and a leading byte order
mark is dropped, so a file saved on Windows gives the same text (and tokens) as one saved on Linux.
Every problem is raised as a ``CorpusError`` that names the file (and line, byte or field) and
says what to do about it.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import builtin_corpora
from .builtin_corpora import Builtin, GeneratedCorpus
from .errors import CorpusError, did_you_mean

if TYPE_CHECKING:
    from .config import CorpusConfig

# File kinds by suffix. A file named on its own with another suffix is read as text; in a folder
# only these are taken, so that images, archives and the like are skipped without complaint.
KINDS = {".txt": "text", ".md": "text", ".rst": "text", ".py": "text",
         ".jsonl": "jsonl", ".csv": "csv", ".tsv": "tsv"}
BUILTIN_PREFIX = "builtin:"
ENCODING_ERRORS = ("strict", "replace")
READ_BYTES = 1 << 16
# Bump when the rules that turn bytes into text change (newlines, BOM, fields): caches go stale.
READER_VERSION = 1


@dataclass(frozen=True)
class SourceStats:
    """What one source holds. ``bytes`` are as stored on disk (UTF-8 for generated text);
    ``chars`` and ``lines`` count the text the corpus yields, i.e. what a tokenizer sees."""

    source: str  # as the user gave it: a path or "builtin:NAME"
    kind: str  # "text" | "jsonl" | "csv" | "tsv" | "folder" | "builtin"
    files: int
    bytes: int
    chars: int
    lines: int
    documents: int


@dataclass(frozen=True)
class CorpusStats:
    sources: tuple[SourceStats, ...]

    @property
    def files(self) -> int:
        return sum(s.files for s in self.sources)

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.sources)

    @property
    def chars(self) -> int:
        return sum(s.chars for s in self.sources)

    @property
    def lines(self) -> int:
        return sum(s.lines for s in self.sources)

    @property
    def documents(self) -> int:
        return sum(s.documents for s in self.sources)


@dataclass(frozen=True)
class Piece:
    text: str  # never empty
    new_document: bool  # True for the first piece of each document


@dataclass(frozen=True)
class _Source:
    spec: str  # as the user gave it
    kind: str
    path: Path | None = None
    builtin: Builtin | None = None


def builtin_names() -> list[str]:
    return list(builtin_corpora.BUILTINS)


def describe_builtin(name: str) -> str:
    """One line for the GUI and the CLI; takes "toy" or "builtin:toy"."""
    b = builtin_corpora.get(name.removeprefix(BUILTIN_PREFIX))
    return f"{BUILTIN_PREFIX}{b.name}: {b.description}"


class Corpus:
    """Files, folders and built-in corpora, read in the order given.

    Missing paths and unknown built-ins fail here, at once; problems inside a file fail when it is
    read (``pieces``, ``stats``), with the file and line or byte offset in the message.
    """

    def __init__(self, paths: Sequence[str], *, glob: str = "**/*", text_field: str = "text",
                 encoding_errors: str = "strict"):
        if isinstance(paths, (str, Path)):  # one path given bare, not in a list
            paths = [paths]
        if not paths:
            raise CorpusError('No corpus given: add a file or folder, or "builtin:toy".')
        if encoding_errors not in ENCODING_ERRORS:
            raise CorpusError(f'corpus.encoding_errors = "{encoding_errors}" is not one of '
                              f'"strict", "replace"{did_you_mean(encoding_errors, ENCODING_ERRORS)}.')
        self.glob = glob
        self.text_field = text_field
        self.encoding_errors = encoding_errors
        self._sources = tuple(self._resolve(str(p)) for p in paths)

    @classmethod
    def from_config(cls, cfg: CorpusConfig) -> Corpus:
        return cls(cfg.paths, glob=cfg.glob, text_field=cfg.text_field,
                   encoding_errors=cfg.encoding_errors)

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(s.spec for s in self._sources)

    def __repr__(self) -> str:
        return f"Corpus({list(self.sources)!r})"

    # -- public reading ------------------------------------------------------------------------

    def pieces(self, max_chars: int = 1 << 20) -> Iterator[Piece]:
        """Every document of every source in order, each cut into pieces of at most max_chars.

        Holds at most about max_chars of text plus one read buffer, except that a single JSONL
        record or CSV row is parsed whole.
        """
        if max_chars < 1:
            raise ValueError(f"max_chars must be at least 1, got {max_chars}")
        for source in self._sources:
            yield from self._source_pieces(source, max_chars)

    def stats(self) -> CorpusStats:
        """Counts for every source; reads everything once, streaming."""
        return CorpusStats(tuple(self._source_stats(s) for s in self._sources))

    def fingerprint(self) -> str:
        """A hex sha256 that changes whenever the text this corpus yields can change: a cache key.

        Files count by name (relative to their folder) and content, not by where they lie, so a
        corpus moved or copied elsewhere keeps its caches. Built-ins count by their identity
        (name, version, generator settings), without reading them.
        """
        h = hashlib.sha256()

        def add(*fields) -> None:
            h.update(("\x1f".join(map(str, fields)) + "\n").encode())

        add("corpus", READER_VERSION, self.text_field, self.encoding_errors)
        for source in self._sources:
            if source.builtin is not None:
                add("builtin", source.builtin.identity())
                continue
            add("source", source.kind)
            root = source.path if source.kind == "folder" else source.path.parent
            for path in self._files(source):
                add("file", path.relative_to(root).as_posix(), _file_sha256(path))
        return h.hexdigest()

    # -- sources -------------------------------------------------------------------------------

    def _resolve(self, spec: str) -> _Source:
        if spec.startswith(BUILTIN_PREFIX):
            return _Source(spec, "builtin", builtin=builtin_corpora.get(spec[len(BUILTIN_PREFIX):]))
        path = Path(spec).expanduser()
        if path.is_dir():
            self._folder_files(path)  # an empty folder fails now, not halfway through training
            return _Source(spec, "folder", path)
        if path.is_file():
            if path.stat().st_size == 0:
                raise CorpusError(f"{path}: the file is empty. Put text in it or remove it from the corpus.")
            return _Source(spec, _kind(path), path)
        raise CorpusError(f"{spec}: no such file or folder. Check the path (a relative path starts "
                          f"from {Path.cwd()}), or use a built-in corpus such as builtin:toy.")

    def _folder_files(self, root: Path) -> list[Path]:
        """Readable files under root that match the glob, sorted so every run reads them alike."""
        try:
            matches = root.glob(self.glob)
            files = [p for p in matches if p.suffix.lower() in KINDS and p.is_file()
                     and not _hidden(p, root) and p.stat().st_size > 0]
        except (ValueError, NotImplementedError) as e:  # an empty or absolute pattern
            raise CorpusError(f'corpus.glob = "{self.glob}" is not a usable pattern ({e}). '
                              f'Use a relative one such as "**/*" or "**/*.txt".') from None
        if not files:
            raise CorpusError(
                f'{root}: no readable file matches corpus.glob = "{self.glob}". Files taken from a '
                f"folder end in {' '.join(KINDS)} and are not empty or hidden. Add such files, "
                f'or change the glob (for example "**/*.txt").')
        return sorted(files, key=lambda p: p.relative_to(root).as_posix())

    def _files(self, source: _Source) -> Sequence[Path]:
        if source.kind == "folder":
            return self._folder_files(source.path)
        if source.path is not None:
            return [source.path]
        if isinstance(source.builtin, GeneratedCorpus):
            return []
        return source.builtin.files()

    def _documents(self, source: _Source) -> Iterator[Iterable[str]]:
        """Each document as an iterable of text chunks (one chunk for a record or a row)."""
        if isinstance(source.builtin, GeneratedCorpus):
            yield source.builtin.chunks()
        else:
            for path in self._files(source):
                kind = _kind(path) if source.kind in ("folder", "builtin") else source.kind
                if kind == "text":
                    yield self._decode(path)
                elif kind == "jsonl":
                    yield from ((text,) for text in self._jsonl_texts(path))
                else:
                    yield from ((text,) for text in self._table_texts(path, kind))

    def _source_pieces(self, source: _Source, max_chars: int) -> Iterator[Piece]:
        empty = True
        for document in self._documents(source):
            first = True
            for text in _split(document, max_chars):
                yield Piece(text, first)
                first = empty = False
        if empty:
            hint = (f' Check that "{self.text_field}" is the field that holds the text '
                    f"(corpus.text_field)." if source.kind in ("jsonl", "csv", "tsv", "folder") else "")
            raise CorpusError(f"{source.spec}: no text found, every document is empty.{hint}")

    def _source_stats(self, source: _Source) -> SourceStats:
        files = self._files(source)
        size = sum(p.stat().st_size for p in files)
        chars = lines = documents = 0
        last = "\n"
        for piece in self._source_pieces(source, 1 << 20):
            if piece.new_document:
                documents += 1
                lines += last != "\n"  # the previous document ended inside a line
            chars += len(piece.text)
            lines += piece.text.count("\n")
            last = piece.text[-1]
            if not files:  # generated text: its size is its UTF-8 encoding
                size += len(piece.text.encode())
        lines += last != "\n"
        return SourceStats(source.spec, source.kind, len(files), size, chars, lines, documents)

    # -- files ---------------------------------------------------------------------------------

    def _decode(self, path: Path) -> Iterator[str]:
        """The text of a file in chunks, read in binary and decoded incrementally."""
        utf8 = codecs.getincrementaldecoder("utf-8")(errors=self.encoding_errors)
        decoder = io.IncrementalNewlineDecoder(utf8, translate=True)  # \r\n and \r -> \n
        offset = 0  # bytes handed to the decoder so far
        with _open(path) as f:
            while True:
                chunk = f.read(READ_BYTES)
                if offset == 0 and b"\0" in chunk:
                    raise CorpusError(
                        f"{path}: looks binary (it holds NUL bytes), not text. Remove it from the "
                        f"corpus; if it is UTF-16 text, save it as UTF-8.")
                # The decoder may still hold the first bytes of a character cut by the last chunk.
                held = len(utf8.getstate()[0])
                try:
                    text = decoder.decode(chunk, final=not chunk)
                except UnicodeDecodeError as e:
                    raise CorpusError(
                        f"{path}: not valid UTF-8 at byte {offset - held + e.start} "
                        f"(0x{e.object[e.start]:02x}). Save the file as UTF-8, or set "
                        f'corpus.encoding_errors = "replace" to read on with U+FFFD in place '
                        f"of bad bytes.") from None
                if offset == 0:
                    text = text.removeprefix("\ufeff")  # a byte order mark is no text
                offset += len(chunk)
                if text:
                    yield text
                if not chunk:
                    return

    def _jsonl_texts(self, path: Path) -> Iterator[str]:
        for number, line in enumerate(_lines(self._decode(path)), start=1):
            if not line.strip():
                continue
            where = f"{path}, line {number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise CorpusError(f"{where}: not valid JSON ({e.msg}, column {e.colno}). Each line "
                                  f"of a .jsonl file must hold one JSON object.") from None
            except RecursionError:
                raise CorpusError(f"{where}: JSON nested too deeply to read.") from None
            text = _field(record, self.text_field, where)
            if text:
                yield text

    def _table_texts(self, path: Path, kind: str) -> Iterator[str]:
        # Rows with long texts (whole articles) pass the csv module's default 128 kB field limit.
        csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
        if kind == "tsv":
            # TSV has no quoting: a field may start with a quote it never closes (as in GLUE's
            # STS-B). Fields that a CSV writer wrapped in quotes (as in GLUE's RTE) are unwrapped.
            rows = csv.reader(_lines(self._decode(path)), delimiter="\t", quoting=csv.QUOTE_NONE)
            unquote = _unquote
        else:
            # strict: a quote that is never closed is an error, not the rest of the file as one field
            rows = csv.reader(_lines(self._decode(path)), dialect="excel", strict=True)
            unquote = str
        end = 0  # the line the last whole row ended on
        try:
            header = [unquote(name).strip() for name in next(rows, [])]
            if self.text_field not in header:
                raise CorpusError(
                    f'{path}: no column "{self.text_field}"{did_you_mean(self.text_field, header)}. '
                    f"Its header row names: {', '.join(header) or '(nothing)'}. Set "
                    f"corpus.text_field to the column that holds the text.")
            column = header.index(self.text_field)
            end = rows.line_num
            for row in rows:
                start, end = end + 1, rows.line_num  # a quoted field may span several lines
                if not row:
                    continue
                if len(row) != len(header):
                    raise CorpusError(
                        f"{path}, line {start}: this row has {len(row)} fields but the header has "
                        f"{len(header)} ({', '.join(header)}). "
                        + ("Check the tabs on this line." if kind == "tsv" else
                           "Check the commas and quotes on this line and the ones before it "
                           "(a quote that opens a field must close it)."))
                if row[column]:
                    yield unquote(row[column])
        except csv.Error as e:
            if "unexpected end of data" in str(e):  # strict mode at the end of the file
                raise CorpusError(f"{path}, line {end + 1}: a quoted field opened in this row is never closed, so "
                                  f"the rest of the file ({rows.line_num - end} lines) would be one field. "
                                  f"Close the quote, or double a quote meant as text (\"\").",
                                  exit_code=1) from None
            raise CorpusError(f"{path}, line {rows.line_num}: {e}. Check the quotes on this line.",
                              exit_code=1) from None


# -- helpers -------------------------------------------------------------------------------------


def _kind(path: Path) -> str:
    return KINDS.get(path.suffix.lower(), "text")


def _hidden(path: Path, root: Path) -> bool:
    """Inside a dot-folder (.git, .venv) or a dot-file itself."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _open(path: Path):
    try:
        return open(path, "rb")
    except OSError as e:
        raise CorpusError(f"{path}: cannot be read ({e.strerror}). Check that it exists and that "
                          f"you may read it.") from None


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with _open(path) as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _lines(chunks: Iterable[str]) -> Iterator[str]:
    """Lines with their "\\n", however the chunks cut them. Only "\\n" ends a line: JSON text may
    hold U+2028 and friends, which str.splitlines would also split at."""
    pending: list[str] = []
    for chunk in chunks:
        start = 0
        while (end := chunk.find("\n", start)) != -1:
            pending.append(chunk[start:end + 1])
            yield "".join(pending)
            pending.clear()
            start = end + 1
        if start < len(chunk):
            pending.append(chunk[start:])
    if pending:
        yield "".join(pending)


def _split(chunks: Iterable[str], max_chars: int) -> Iterator[str]:
    """Regroup one document's chunks into pieces of at most max_chars (never empty)."""
    parts: list[str] = []
    size = 0
    for chunk in chunks:
        parts.append(chunk)
        size += len(chunk)
        if size <= max_chars:
            continue
        text, start = "".join(parts), 0
        while len(text) - start > max_chars:
            cut = _cut(text, start, start + max_chars)
            yield text[start:cut]
            start = cut
        parts, size = [text[start:]], len(text) - start
    if size:
        yield "".join(parts)


def _cut(text: str, start: int, end: int) -> int:
    """Where to end a piece in text[start:end]: after its last newline, else before its last
    space (the next piece then starts " word", as a word does mid-text), else at end."""
    newline = text.rfind("\n", start, end)
    if newline != -1:
        return newline + 1
    space = text.rfind(" ", start + 1, end)
    if space != -1:
        return space
    return end


def _unquote(field: str) -> str:
    """A field wrapped in quotes, inner quotes doubled, unwrapped; any other comes back as it is."""
    inner = field[1:-1]
    if len(field) >= 2 and field[0] == field[-1] == '"' and '"' not in inner.replace('""', ""):
        return inner.replace('""', '"')
    return field


def _field(record, name: str, where: str) -> str:
    """The text of a JSONL record's field; "a.b" reaches into nested objects."""
    if not isinstance(record, dict):
        raise CorpusError(f'{where}: expected a JSON object such as {{"{name}": "..."}}, '
                          f"found {_json_type(record)}.")
    if name in record:
        value = record[name]
    else:
        value = record
        for key in name.split("."):
            if not isinstance(value, dict) or key not in value:
                fields = list(flatten_fields(record, objects=True))
                raise CorpusError(
                    f'{where}: no field "{name}"{did_you_mean(name, fields)}. This record has: '
                    f"{', '.join(fields) or '(no fields)'}. Set corpus.text_field to the one "
                    f'that holds the text ("a.b" reaches into nested objects).')
            value = value[key]
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    inner = (f" Its fields: {', '.join(flatten_fields(value, name + '.', objects=True))}."
             if isinstance(value, dict) else "")
    raise CorpusError(f'{where}: field "{name}" holds {_json_type(value)}, not text.{inner} Set '
                      f"corpus.text_field to a field that holds text.")


def flatten_fields(record: dict, prefix: str = "", *, objects: bool = False) -> dict[str, Any]:
    """A JSON object's fields, nested objects reached into: {"a": {"b": 1}, "c": 2} -> {"a.b": 1,
    "c": 2} (with ``objects``, the nested objects too: {"a": {...}, "a.b": 1, "c": 2}). The names
    are what corpus.text_field and a labelled file's columns accept."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            if objects:
                out[prefix + key] = value
            out.update(flatten_fields(value, f"{prefix}{key}.", objects=objects))
        else:
            out[prefix + key] = value
    return out


def _json_type(value) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true/false"
    if value is None:
        return "null"
    return "a number"
