"""Token caches on disk and context-window batches drawn from them.

A corpus is encoded once per tokenizer into a flat array of token ids (uint16 when the vocabulary
fits, else uint32), stored in the cache dir under a key made from the corpus and tokenizer
fingerprints, and memory-mapped: a 1 GB corpus never has to sit in memory. Documents are separated
by the end-of-text token. The last ``val_fraction`` of the tokens is the validation split.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .checkpoint import atomic_write_json, write_error
from .errors import Cancelled, DataError, TokenizerError
from .ownership import pid_alive, try_lock

CACHE_VERSION = 1


@dataclass(frozen=True)
class TokenCache:
    path: Path          # the .bin file
    n_tokens: int
    dtype: str
    documents: int

    def array(self) -> np.memmap:
        return np.memmap(self.path, dtype=self.dtype, mode="r", shape=(self.n_tokens,))


def cache_key(corpus_fingerprint: str, tokenizer_fingerprint: str) -> str:
    h = hashlib.sha256(f"{CACHE_VERSION}:{corpus_fingerprint}:{tokenizer_fingerprint}".encode())
    return h.hexdigest()[:24]


# A cache being written: ".KEY.bin.PID.tmp", flock-ed by its writer for as long as it writes: a temp
# file whose lock can be taken and whose pid is gone belongs to a writer that ended (kill -9, a crash).
CACHE_TEMP = re.compile(r"^\.[0-9a-f]{24}\.bin\.\d+\.tmp$")
_OLD_CACHE_TEMP = re.compile(r"^[0-9a-f]{24}\.tmp(\d+)$")  # the name before: KEY.tmpPID


def remove_cache_leftovers(folder: Path) -> list[Path]:
    """Delete the temp files of cache writers that have ended; a live writer's file is kept."""
    removed = []
    for p in Path(folder).iterdir() if Path(folder).is_dir() else ():
        old = _OLD_CACHE_TEMP.match(p.name)
        if old:
            dead = not pid_alive(int(old.group(1)))
        elif CACHE_TEMP.match(p.name):
            try:
                with open(p, "rb") as f:
                    got = try_lock(f.fileno())  # closing the file drops the lock again
            except OSError:
                continue
            # both: the lock proves no writer is at work; the pid covers the instant between a
            # writer's open() and its lock
            dead = got is not False and not pid_alive(int(p.name.split(".")[3]))
        else:
            continue
        if dead:
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def build_token_cache(corpus, tokenizer, cache_root: Path, *,
                      progress: Callable[[int, int], None] | None = None,
                      should_stop: Callable[[], bool] | None = None) -> TokenCache:
    """Encode ``corpus`` with ``tokenizer`` into ``cache_root/tokens/KEY.bin`` unless already there.

    progress(chars_done, tokens_done) is called after each piece; should_stop() is checked between
    pieces and cancels cleanly (no half-written cache is left behind).
    """
    folder = Path(cache_root) / "tokens"
    key = cache_key(corpus.fingerprint(), tokenizer.fingerprint())
    bin_path, meta_path = folder / f"{key}.bin", folder / f"{key}.json"
    if meta_path.exists() and bin_path.exists():
        cache = _open_cache(bin_path, meta_path, tokenizer.vocab_size)
        if cache is not None:
            return cache
        # derived data that does not fit: encode again (the files are replaced atomically)
    folder.mkdir(parents=True, exist_ok=True)
    remove_cache_leftovers(folder)
    dtype = np.uint16 if tokenizer.vocab_size <= 65536 else np.uint32
    eos = tokenizer.special_id("eos")
    tmp = folder / f".{key}.bin.{os.getpid()}.tmp"  # CACHE_TEMP; locked while written
    n_tokens = chars = documents = 0
    try:
        with open(tmp, "wb") as f:
            try_lock(f.fileno())
            for piece in corpus.pieces():
                if should_stop is not None and should_stop():
                    raise Cancelled("encoding the corpus was cancelled")
                if piece.new_document:
                    if documents:
                        f.write(np.array([eos], dtype=dtype).tobytes())
                        n_tokens += 1
                    documents += 1
                # Encode line by line in one batch call: the tokenizer parallelises over the batch.
                lines = piece.text.splitlines(keepends=True)
                ids = [i for row in tokenizer.encode_batch(lines) for i in row]
                f.write(np.asarray(ids, dtype=dtype).tobytes())
                n_tokens += len(ids)
                chars += len(piece.text)
                if progress is not None:
                    progress(chars, n_tokens)
            f.write(np.array([eos], dtype=dtype).tobytes())  # close the last document
            n_tokens += 1
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, bin_path)
    except OSError as e:  # a full disk: say which cache could not be written, and how much room is left
        tmp.unlink(missing_ok=True)
        raise write_error(bin_path, e) from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    atomic_write_json(meta_path, {"n_tokens": n_tokens, "dtype": np.dtype(dtype).name, "documents": documents,
                                  "chars": chars})
    return TokenCache(bin_path, n_tokens, np.dtype(dtype).name, documents)


def _open_cache(bin_path: Path, meta_path: Path, vocab_size: int) -> TokenCache | None:
    """The cache if its index and tokens are whole and every id fits the tokenizer, else None
    (a torn index, a cut .bin, or tokens from another tokenizer: the caller encodes again)."""
    try:
        meta = json.loads(meta_path.read_bytes().decode("utf-8"))
        n, dtype, documents = int(meta["n_tokens"]), np.dtype(meta["dtype"]).name, int(meta["documents"])
    except (OSError, ValueError, KeyError, TypeError, RecursionError):  # JSONDecodeError is a ValueError
        return None
    if dtype not in ("uint16", "uint32") or n < 1 or bin_path.stat().st_size != n * np.dtype(dtype).itemsize:
        return None
    cache = TokenCache(bin_path, n, dtype, documents)
    tokens, step = cache.array(), 1 << 24
    for start in range(0, n, step):  # in slices: a big cache is never all in memory
        if int(tokens[start:start + step].max()) >= vocab_size:
            return None
    return cache


WINDOW_STARTS = ("anywhere", "line")  # corpus.window_start


def line_end_ids(tokenizer) -> list[int]:
    """Ids of the tokens after which a line starts: those whose text ends with a line break, and
    the end-of-text token between documents. The cache encodes each line on its own, so a line
    break always ends a token."""
    texts = tokenizer.token_texts(range(tokenizer.vocab_size))
    ends = {i for i, t in enumerate(texts) if t.endswith("\n")}
    try:
        ends.add(tokenizer.special_id("eos"))
    except TokenizerError:  # a tokenizer.json of one's own without it: line breaks only
        pass
    return sorted(ends)


def line_starts(tokens: np.ndarray, ends: list[int], chunk: int = 1 << 24) -> np.ndarray:
    """Positions of the tokens that start a line (0 and every position after a line-end id), in
    slices so that a big memory-mapped cache is never in memory at once."""
    found = [np.zeros(1, dtype=np.int64)]
    ends_arr = np.asarray(ends, dtype=np.int64)
    for start in range(0, len(tokens) - 1, chunk):
        part = np.asarray(tokens[start:min(start + chunk, len(tokens) - 1)])
        found.append(np.flatnonzero(np.isin(part, ends_arr)).astype(np.int64) + start + 1)
    return np.concatenate(found)


class TokenData:
    """Train and validation splits of one token cache, and random context windows from them.

    ``line_ends`` (ids from ``line_end_ids``; corpus.window_start = "line") makes every window start
    at a line start, so the positions of a line's parts are the same in every window: a model then
    learns a copy that depends on where a letter stands in its line within a few hundred steps (the
    demo). Without it a window starts at any token."""

    def __init__(self, tokens: np.ndarray, val_fraction: float, block_size: int,
                 line_ends: list[int] | None = None):
        n = len(tokens)
        n_val = int(n * val_fraction)
        self.train = tokens[: n - n_val]
        self.val = tokens[n - n_val:] if n_val else tokens[:0]
        self.block_size = block_size
        need = block_size + 1
        if len(self.train) < need:
            raise DataError(
                f"The corpus gives {len(self.train):,} training tokens ({n:,} in all); one context window "
                f"needs {need:,} (model.block_size + 1). Add text, or lower model.block_size."
            )
        if n_val and len(self.val) < need:
            raise DataError(
                f"The validation split has {len(self.val):,} tokens (corpus.val_fraction = {val_fraction} of "
                f"{n:,}); one context window needs {need:,}. Raise corpus.val_fraction, add text, or lower "
                f"model.block_size."
            )
        self.starts: dict[str, np.ndarray] | None = None  # per split: where a window may start
        if line_ends is not None:
            self.starts = self._window_starts(tokens, n - n_val, line_ends)

    def _window_starts(self, tokens: np.ndarray, n_train: int, line_ends: list[int]) -> dict[str, np.ndarray]:
        starts = line_starts(tokens, line_ends)
        out = {}
        for name, lo, data in (("train", 0, self.train), ("val", n_train, self.val)):
            s = starts[(starts >= lo) & (starts < lo + len(data))] - lo
            out[name] = s[s <= len(data) - self.block_size - 1]  # a whole window (and its target) fits
        if len(out["train"]) < 2:  # only the corpus start: every window would be the same text
            raise DataError(f'corpus.window_start = "line": no line break in the training text has a whole window '
                            f'(model.block_size + 1 = {self.block_size + 1:,} tokens) after it ({len(starts) - 1:,} '
                            f'line breaks in {len(tokens):,} tokens), so every window would be the same. Set '
                            f'corpus.window_start = "anywhere", use a corpus with line breaks, or lower '
                            f'model.block_size.')
        if len(self.val) and not len(out["val"]):
            out["val"] = np.zeros(1, dtype=np.int64)  # no line start in a short held-out tail: its own start
        return out

    @classmethod
    def from_cache(cls, cache: TokenCache, val_fraction: float, block_size: int,
                   line_ends: list[int] | None = None) -> "TokenData":
        return cls(cache.array(), val_fraction, block_size, line_ends)

    def split(self, name: str) -> np.ndarray:
        data = self.val if name == "val" else self.train
        return data if len(data) else self.train  # no held-out data: validate on training text

    def batch(self, split: str, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Random windows: x (B, T) int64 and y = x shifted left by one (B, T)."""
        data = self.split(split)
        T = self.block_size
        if self.starts is None:
            ix = torch.randint(len(data) - T, (batch_size,), generator=generator).numpy()
        else:  # line starts only (of the split the windows come from)
            starts = self.starts["val" if split == "val" and len(self.val) else "train"]
            ix = starts[torch.randint(len(starts), (batch_size,), generator=generator).numpy()]
        # One fancy-index gather from the memmap: (B, T+1) in a single numpy call.
        window = data[ix[:, None] + np.arange(T + 1)].astype(np.int64)
        xy = torch.from_numpy(window)
        return xy[:, :-1].contiguous(), xy[:, 1:].contiguous()
