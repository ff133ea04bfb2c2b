"""The scan cache in the workspace: finished indexes keyed by a content fingerprint.

    <workspace>/scans/<content fingerprint>/index.parquet   the table (INDEX_COLUMNS)
                                           /embeddings.npy  (N, D) float32
                                           /pixels.npy      (N, 32, 32) uint8
                                           /meta.json       embedder, fingerprints, format
    <workspace>/scans/latest/<dataset key>.json             newest scan of one dataset root
    <workspace>/scans/memo/<dataset key>.npz                the detectors' work on its files

A scan first looks up the dataset's newest scan: if no file was added, removed or touched (same
paths, sizes and mtime_ns) it is returned as-is; otherwise its rows for unchanged files are reused
and only the rest are decoded. A damaged cache is a cache miss (logged), never an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recipe_core.data.source import DatasetSource
from recipe_core.scan.index.schema import INDEX_COLUMNS

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when features change meaning: older cached scans are then ignored
TEXT_COLUMNS = ("path", "label", "split")


@dataclass(frozen=True)
class CachedScan:
    table: pd.DataFrame  # INDEX_COLUMNS
    embeddings: np.ndarray  # (N, D) float32
    pixels: np.ndarray  # (N, 32, 32) uint8
    stat_key: str  # fingerprint of (path, label, split, size, mtime_ns) when it was made
    fingerprint: str  # content fingerprint


def dataset_key(source: DatasetSource, embedding: str) -> str:
    """Names the 'latest' pointer of one dataset root scanned with one embedder."""
    text = f"{source.layout}\0{source.root}\0{embedding}\0{CACHE_FORMAT}"
    return _hash(os.fsencode(text))


def stat_key(table: pd.DataFrame, embedding: str) -> str:
    """Cheap fingerprint from file metadata: changes whenever a file is added, removed, relabelled
    or touched. `table` has path, label, split, file_bytes, mtime_ns."""
    cols = [table[c].astype(str).tolist() for c in (*TEXT_COLUMNS, "file_bytes", "mtime_ns")]
    return _hash_rows(cols, f"{embedding}\0{CACHE_FORMAT}")


def content_fingerprint(table: pd.DataFrame, embedding: str) -> str:
    """Fingerprint of what the scan saw: relative paths, labels, splits and file-byte hashes."""
    cols = [table[c].astype(str).tolist() for c in (*TEXT_COLUMNS, "byte_hash")]
    return _hash_rows(cols, f"{embedding}\0{CACHE_FORMAT}")


def load_latest(scans: Path, key: str) -> CachedScan | None:
    """The newest cached scan for a dataset key, or None (absent or unreadable)."""
    pointer = scans / "latest" / f"{key}.json"
    try:
        meta = json.loads(pointer.read_text())
        folder = scans / meta["fingerprint"]
        table = pd.read_parquet(folder / "index.parquet")
        embeddings = np.load(folder / "embeddings.npy")
        pixels = np.load(folder / "pixels.npy")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring unreadable scan cache %s: %s", pointer, exc)
        return None
    if not len(table) == len(embeddings) == len(pixels) or list(table.columns) != list(
        INDEX_COLUMNS
    ):
        log.warning("ignoring inconsistent scan cache %s", pointer)
        return None
    return CachedScan(table, embeddings, pixels, str(meta["stat_key"]), str(meta["fingerprint"]))


def memo_path(scans: Path, source: DatasetSource, embedding: str) -> Path:
    """Where the detectors' memo of this dataset root and embedder lives
    (`recipe_core.scan.issues.memo`)."""
    return scans / "memo" / f"{dataset_key(source, embedding)}.npz"


def save_scan(scans: Path, key: str, scan: CachedScan, *, embedding: str) -> Path:
    """Write the scan under its fingerprint (atomically), point the dataset key at it, and
    delete the scan it replaces unless another dataset key still points there."""
    scans.mkdir(parents=True, exist_ok=True)
    folder = scans / scan.fingerprint
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=scans))
    scan.table.to_parquet(tmp / "index.parquet", index=False)
    np.save(tmp / "embeddings.npy", scan.embeddings)
    np.save(tmp / "pixels.npy", scan.pixels)
    meta = {"format": CACHE_FORMAT, "embedding": embedding, "rows": len(scan.table)}
    (tmp / "meta.json").write_text(json.dumps(meta) + "\n")
    _swap_in(tmp, folder)
    pointer_file = scans / "latest" / f"{key}.json"
    replaced = _pointed_fingerprint(pointer_file)
    pointer = {"fingerprint": scan.fingerprint, "stat_key": scan.stat_key}
    _write_atomic(pointer_file, json.dumps(pointer) + "\n")
    if replaced not in ("", scan.fingerprint) and replaced not in _all_pointed(scans):
        shutil.rmtree(scans / replaced, ignore_errors=True)  # unbounded growth otherwise
    return folder


def _swap_in(tmp: Path, folder: Path) -> None:
    """Move `tmp` to `folder`, replacing an older copy (same content, older file metadata)."""
    try:
        os.replace(tmp, folder)
        return
    except OSError:
        pass
    trash = Path(tempfile.mkdtemp(prefix=".old-", dir=folder.parent))
    try:
        os.replace(folder, trash / "scan")
        os.replace(tmp, folder)
    except OSError:  # another process swapped first: its copy is as good as ours
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(trash, ignore_errors=True)


def _pointed_fingerprint(pointer: Path) -> str:
    try:
        return str(json.loads(pointer.read_text())["fingerprint"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def _all_pointed(scans: Path) -> set[str]:
    return {_pointed_fingerprint(p) for p in (scans / "latest").glob("*.json")}


def _hash_rows(columns: list[list[str]], salt: str) -> str:
    digest = hashlib.blake2b(salt.encode(), digest_size=16)
    for row in zip(*columns, strict=True):
        digest.update("\0".join(row).encode() + b"\n")
    return digest.hexdigest()


def _hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
