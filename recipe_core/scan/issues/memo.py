"""What one scan's detectors computed, kept so the next scan of the dataset redoes only what
changed files change.

A detector's work falls in four kinds, each memoised by what it depends on:

* per-image numbers (quality's pixel percentiles and blur effect, the image statistics): by
  the image's content, the hash of its file bytes -- a thumbnail depends on nothing else;
* pixel checks of near-duplicate candidate pairs: by the two images' contents, in order;
* the neighbour graph: by (path, content) per row. A kept row keeps its neighbour list minus
  the rows that changed, merged with its nearest among the added or changed rows; rows that
  lost too many neighbours are searched again (`recipe_core.scan.issues.graph_update`);
* the label ridge's per-fold sums: by (content, class, fold) per term, the departed terms
  taken away and the new ones added (`recipe_core.scan.issues.ridge_memo`).

Splits and the near-duplicate threshold are inputs of the cheap steps after these, which
always rerun. The memo lives in `<workspace>/scans/memo/<dataset key>.memo` (`write_arrays`:
raw arrays behind a JSON header, read by mapping), one per dataset root and embedder, and holds
only what the last scan used. A missing, damaged or foreign memo is an empty one: it changes how
long a scan takes, never what it finds (beyond the approximate search's own tolerance).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from recipe_core.scan.issues._common import first_in_runs

log = logging.getLogger(__name__)

MEMO_FORMAT = 3  # bump when a memoised value changes meaning: older memos are then ignored
_FORMAT_KEY = "_format"
MAGIC = b"RECIPE-MEMO\n"
ALIGN = 64  # bytes: every array starts at a multiple
_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant (golden ratio): mixes two keys

Compute = Callable[[np.ndarray], np.ndarray]


def content_keys(table: pd.DataFrame) -> np.ndarray:
    """(N,) uint64: the first 64 bits of each row's byte hash (0 where the file was unreadable)."""
    return hash_keys(table["byte_hash"])


def hash_keys(byte_hash: pd.Series | np.ndarray) -> np.ndarray:
    """`content_keys` of hex byte hashes."""
    hashes = (byte_hash if isinstance(byte_hash, pd.Series) else pd.Series(byte_hash)).astype(str)
    ok = (hashes.str.len() >= 16).to_numpy()
    keys = np.zeros(len(hashes), dtype=np.uint64)
    if ok.any():
        text = "".join(hashes[ok].str.slice(0, 16))
        keys[ok] = np.frombuffer(bytes.fromhex(text), dtype=">u8").astype(np.uint64)
    return keys


def row_identities(table: pd.DataFrame, content: np.ndarray) -> np.ndarray:
    """(N,) uint64 naming (path, content): a file moved or edited is a new graph row."""
    ids = table["sample_id"].to_numpy().astype(np.int64).view(np.uint64)
    with np.errstate(over="ignore"):
        out: np.ndarray = ids * _MIX ^ content
    return out


def pair_keys(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """(P,) uint64 naming ordered pairs of content keys."""
    with np.errstate(over="ignore"):
        out: np.ndarray = (first * _MIX + second) * _MIX ^ (second >> np.uint64(29))
    return out


def lookup(stored: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """(len(keys),) int64 positions of `keys` in the sorted `stored`, -1 where absent.

    The keys are searched in sorted order: a binary search of each random key reads memory
    far from the last one, and sorting them first took 180k pair keys from 24 ms to 7."""
    if len(stored) == 0:
        return np.full(len(keys), -1, dtype=np.int64)
    order = np.argsort(keys)
    ordered = keys[order]
    at = np.minimum(np.searchsorted(stored, ordered), len(stored) - 1)
    pos = np.empty(len(keys), dtype=np.int64)
    pos[order] = np.where(stored[at] == ordered, at, -1)
    return pos


def first_of_each(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct, first): the sorted distinct `keys` and where each first occurs, as
    `np.unique(keys, return_index=True)` gives them, from an unstable sort and each run's
    least position (NumPy's stable sort for that was 13 ms per 180k keys, 0.09 s a memo)."""
    order = np.argsort(keys)
    ordered = keys[order]
    if len(keys) == 0:
        return ordered, order
    starts = np.flatnonzero(first_in_runs(ordered))
    return ordered[starts], np.minimum.reduceat(order, starts)


def write_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """`arrays` in one file, replaced atomically: MAGIC, the header's length (8 bytes, little
    endian), a JSON header (name, dtype, shape, offset per array), then each array's bytes
    at an offset aligned to ALIGN. Unlike an .npz it is read by mapping (`read_arrays`) and
    carries no CRC: an npz's CRC was computed on every write and checked on every read, 0.1 s of
    a 50k rescan's 55 MB memo, with a copy of each array on top."""
    entries: list[dict[str, object]] = []
    offsets: list[int] = []
    blobs: list[np.ndarray] = []
    offset = end = 0
    for name, array in arrays.items():
        data = np.asarray(array, order="C")  # keeps a 0-d array 0-d
        if data.dtype.hasobject:
            raise TypeError(f"memo array {name!r} holds Python objects: only plain arrays")
        entries.append({"name": name, "dtype": data.dtype.str, "shape": list(data.shape),
                        "offset": offset})  # fmt: skip
        blobs.append(data)
        offsets.append(offset)
        end = offset + data.nbytes  # the file ends with the last array's last byte
        offset += -(-data.nbytes // ALIGN) * ALIGN
    header = json.dumps({"arrays": entries}).encode()
    start = -(-(len(MAGIC) + 8 + len(header)) // ALIGN) * ALIGN
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".memo-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + len(header).to_bytes(8, "little") + header)
            for at, data in zip(offsets, blobs, strict=True):
                f.seek(start + at)
                data.tofile(f)  # raw bytes in C order, no copy
            f.truncate(start + end)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays `write_arrays` wrote to `path`, each mapped copy-on-write (pages are read as
    they are touched; a write stays in this process). ValueError for a file that is not one,
    cut short, or with a malformed header."""
    with open(path, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            raise ValueError("not a Recipe issue memo (its first bytes differ)")
        length = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(length))
        size = os.fstat(f.fileno()).st_size
    start = -(-(len(MAGIC) + 8 + length) // ALIGN) * ALIGN
    out: dict[str, np.ndarray] = {}
    whole = np.memmap(path, dtype=np.uint8, mode="c") if size > start else None
    for entry in header["arrays"]:
        dtype, shape = np.dtype(entry["dtype"]), tuple(int(n) for n in entry["shape"])
        if dtype.hasobject:
            raise ValueError(f"memo array {entry['name']!r} declares Python objects")
        begin = start + int(entry["offset"])
        nbytes = dtype.itemsize * int(np.prod(shape))
        if begin + nbytes > size:
            raise ValueError(f"memo array {entry['name']!r} runs past the end of the file")
        raw = (
            whole[begin : begin + nbytes] if whole is not None and nbytes else np.zeros(0, np.uint8)
        )
        out[str(entry["name"])] = np.asarray(raw).view(dtype).reshape(shape)
    return out


class IssueMemo:
    """The previous scan's memo (read) and this scan's (written), over one index's rows."""

    def __init__(self, table: pd.DataFrame, stored: dict[str, np.ndarray] | None = None) -> None:
        self.content = content_keys(table)
        self.identity = row_identities(table, self.content)
        self._old = stored or {}
        self._new: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        self._arrays: dict[str, np.ndarray] = {}
        self.reused: dict[str, int] = {}  # name -> values taken from the old memo
        self.computed: dict[str, int] = {}  # name -> values computed by this scan

    @classmethod
    def load(cls, path: Path, table: pd.DataFrame) -> IssueMemo:
        """The memo at `path` for an index with `table`; an empty one when it is missing, from
        another format, or unreadable (logged)."""
        try:
            stored = read_arrays(path)
        except FileNotFoundError:
            return cls(table)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("issue memo %s is unreadable (%s): every detector runs in full", path, exc)
            return cls(table)
        fmt = stored.pop(_FORMAT_KEY, np.zeros(0))
        if fmt.shape != (1,) or int(fmt[0]) != MEMO_FORMAT:
            return cls(table)
        return cls(table, stored)

    def save(self, path: Path) -> None:
        """Write what this scan used (atomically; a failure is logged, the scan stands)."""
        arrays: dict[str, np.ndarray] = {_FORMAT_KEY: np.array([MEMO_FORMAT]), **self._arrays}
        for name, parts in self._new.items():
            keys = np.concatenate([k for k, _ in parts])
            values = np.concatenate([v for _, v in parts])
            keys, first = first_of_each(keys)
            arrays[f"{name}.keys"], arrays[f"{name}.values"] = keys, values[first]
        try:
            write_arrays(path, arrays)
            if path.suffix == ".memo":  # the memo as format 1 wrote it, beside
                path.with_suffix(".npz").unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not write the issue memo %s (%s): the next scan runs in full",
                        path, exc)  # fmt: skip

    def per_image(self, name: str, rows: np.ndarray, compute: Compute) -> np.ndarray:
        """`compute(rows)` -> (len(rows), ...), taken from the old memo where a row's content
        was seen before; `compute` gets only the rest (possibly none)."""
        return self._keyed(name, self.content[rows], rows, compute)

    def per_pair(self, name: str, a: np.ndarray, b: np.ndarray, compute: Compute) -> np.ndarray:
        """`compute(positions)` -> (len(positions), ...) for the pairs (a[p], b[p]), memoised by
        the two contents in order; `compute` gets positions into a and b."""
        keys = pair_keys(self.content[a], self.content[b])
        return self._keyed(name, keys, np.arange(len(a)), compute)

    def stored(self, name: str) -> np.ndarray | None:
        """An array saved whole by the previous scan (see `keep`), or None."""
        return self._old.get(name)

    def keep(self, name: str, array: np.ndarray) -> None:
        """Save `array` whole for the next scan (e.g. the neighbour graph)."""
        self._arrays[name] = array

    def _keyed(
        self, name: str, keys: np.ndarray, items: np.ndarray, compute: Compute
    ) -> np.ndarray:
        old_keys = self._old.get(f"{name}.keys", np.zeros(0, dtype=np.uint64))
        old_values = self._old.get(f"{name}.values")
        pos = lookup(old_keys, keys) if old_values is not None else np.full(len(keys), -1)
        miss = pos < 0
        fresh = np.asarray(compute(items[miss]))
        if old_values is not None and fresh.shape[1:] != old_values.shape[1:]:
            pos, miss = np.full(len(keys), -1), np.ones(len(keys), dtype=bool)  # another shape
            fresh = np.asarray(compute(items))
        out = np.empty((len(keys), *fresh.shape[1:]), dtype=fresh.dtype)
        out[miss] = fresh
        if old_values is not None:
            out[~miss] = old_values[pos[~miss]]
        self.reused[name] = self.reused.get(name, 0) + int((~miss).sum())
        self.computed[name] = self.computed.get(name, 0) + int(miss.sum())
        self._new.setdefault(name, []).append((keys, out))
        return out
