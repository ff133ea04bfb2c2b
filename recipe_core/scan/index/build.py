"""`build_index`: decode every sample once (in a process pool) into a `ScanIndex`, reusing the
workspace cache for files that did not change since the last scan.

Where the files are decoded is pluggable (`features=`): the local process pool by default, Ray
Data for a cluster (`recipe_core.scan.ray_data`). Both run the same per-chunk function,
`features.index_chunk`, so both paths give the same rows.

`build_index` is a package-face call a script makes without a `Settings`: then it reads this
process's settings once (for torch.hub's cache, where network embedders' weights are)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from recipe_core.data.source import DatasetSource, resolve_path
from recipe_core.scan.cpus import usable_cpus
from recipe_core.scan.index import cache
from recipe_core.scan.index.embed import EMBEDDING_DIM
from recipe_core.scan.index.embedders import EmbeddingSpec, deep_embeddings, resolve_embedding
from recipe_core.scan.index.features import FEATURE_COLUMNS, ChunkFeatures
from recipe_core.scan.index.pool import run_chunks
from recipe_core.scan.index.schema import INDEX_COLUMNS, PIXEL_SIZE, Departed, ScanIndex
from recipe_core.settings import Settings, load_settings
from recipe_core.workspace import Workspace

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (files done, files to decode)
# (absolute paths, embedder, progress) -> (features, (N, D) embeddings) of the files, in order.
FeatureRunner = Callable[
    [Sequence[str], EmbeddingSpec, Progress | None], tuple[ChunkFeatures, np.ndarray]
]


def build_index(
    source: DatasetSource,
    *,
    workspace: Workspace | None = None,
    workers: int | None = None,
    embedding: str = "default",
    progress: Progress | None = None,
    device: str | None = None,
    features: FeatureRunner | None = None,
    settings: Settings | None = None,
) -> ScanIndex:
    """One `ScanIndex` row per sample of `source`, in `source.samples` order.

    `workers` processes decode files (None: one per CPU; 0 or 1: in this process). With a
    `workspace`, unchanged files (same path, size and mtime_ns) are taken from the newest cached
    scan of this dataset and only new or touched files are decoded; `ScanIndex.reused` counts the
    rows taken from the cache. `embedding` is "default" (the offline "pixels+hog" descriptor) or
    "resnet18" (torchvision weights already on disk; see `recipe_core.scan.index.embedders`).
    `device` is where a network embedder runs (None: CUDA when present, else CPU).
    `features` computes the rows of the files to decode (None: `local_features(workers,
    device)`, this machine's process pool); `workers` and `device` only shape that default.
    `settings` say where torch.hub's cache is (None: this process's, `load_settings()`).
    """
    settings = settings if settings is not None else load_settings()
    spec = resolve_embedding(embedding, torch_home=settings.torch_home)
    dataset_key = cache.dataset_key(source, spec.name)
    scans = workspace.scans if workspace is not None else None
    # The last scan is read (Parquet and mappings: the GIL released) while the files are
    # stat'ed (a Python loop): 0.08 s of a 50k rescan's index stage, beside 0.12 s.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="recipe-cache") as pool:
        latest = pool.submit(cache.load_latest, scans, dataset_key) if scans is not None else None
        files = stat_files(source)
        previous = latest.result() if latest is not None else None
    key = cache.stat_key(files, spec.name)
    if previous is not None and previous.stat_key == key:
        log.info("scan cache hit for %s: %d files unchanged", source.root, len(files))
        return _as_index(source, previous, spec, reused=len(files))
    reuse = _reusable_rows(files, previous)
    todo = np.flatnonzero(reuse < 0)
    log.info("decoding %d of %d files (the rest reused)", len(todo), len(files))
    paths = [_absolute(source.root, p) for p in files["path"].iloc[todo].tolist()]
    runner = features or local_features(workers=workers, device=device)
    fresh, fresh_embeddings = runner(paths, spec, progress)
    departed = _departed(previous, reuse)  # before _assemble patches the previous arrays
    table, embeddings, pixels = _assemble(files, previous, reuse, fresh, fresh_embeddings)
    fingerprint = cache.content_fingerprint(table, spec.name)
    scan = cache.CachedScan(table, embeddings, pixels, key, fingerprint)
    if scans is not None:
        cache.save_scan(scans, dataset_key, scan, embedding=spec.name, previous=previous,
                        reuse=reuse)  # fmt: skip
    index = _as_index(source, scan, spec, reused=len(files) - len(todo))
    return replace(index, departed=departed)


def local_features(*, workers: int | None = None, device: str | None = None) -> FeatureRunner:
    """The default runner: `index_chunk` in a local process pool of `workers` (None: one per
    CPU), then a network embedder (if chosen) on `device`."""

    def run(
        paths: Sequence[str], spec: EmbeddingSpec, progress: Progress | None
    ) -> tuple[ChunkFeatures, np.ndarray]:
        fresh = _concat(run_chunks(paths, workers=_workers(workers), progress=progress))
        if spec.offline:
            return fresh, fresh.embeddings
        return fresh, deep_embeddings(paths, spec, device=device)

    return run


def _absolute(root: Path, rel: str) -> str:
    """The file `rel` names under `root`, as `resolve_path` finds it (escapes, absolute
    paths), by prefix otherwise: pathlib's join per file was 0.5 s of a 50k-image scan."""
    if "\\x" in rel or os.path.isabs(rel):
        return os.fsdecode(resolve_path(root, rel))
    return os.path.join(os.fspath(root), "") + rel


def stat_files(source: DatasetSource) -> pd.DataFrame:
    """sample_id, path, label, split plus file_bytes and mtime_ns (-1 when stat fails)."""
    files = source.samples[["sample_id", "path", "label", "split"]].reset_index(drop=True)
    sizes, mtimes = [-1] * len(files), [-1] * len(files)
    prefix, stat, isabs = os.path.join(os.fspath(source.root), ""), os.stat, os.path.isabs
    for i, rel in enumerate(files["path"].tolist()):
        # the root's prefix and the path, unless it holds escapes (resolve_path: 2x the cost at
        # 50k) or is absolute; os.path.join and numpy item writes per file were half the time
        target = (
            resolve_path(source.root, rel) if "\\x" in rel else rel if isabs(rel) else prefix + rel
        )
        try:
            info = stat(target)
        except (OSError, ValueError):  # missing, dangling link, NUL in name: the decode says why
            continue
        sizes[i], mtimes[i] = info.st_size, info.st_mtime_ns
    return files.assign(
        file_bytes=np.array(sizes, dtype=np.int64), mtime_ns=np.array(mtimes, dtype=np.int64)
    )


def _workers(workers: int | None) -> int:
    return usable_cpus() if workers is None else max(0, workers)


def _reusable_rows(files: pd.DataFrame, previous: cache.CachedScan | None) -> np.ndarray:
    """(N,) row of `previous.table` to reuse for each file, or -1 to decode it."""
    if previous is None:
        return np.full(len(files), -1, dtype=np.int64)
    old = previous.table[["path", "file_bytes", "mtime_ns"]].reset_index(drop=True)
    old = old.assign(_row=np.arange(len(old)))
    merged = files[["path", "file_bytes", "mtime_ns"]].merge(
        old, on=["path", "file_bytes", "mtime_ns"], how="left"
    )
    merged.loc[files["file_bytes"].to_numpy() < 0, "_row"] = np.nan
    return merged["_row"].fillna(-1).to_numpy(dtype=np.int64)


def _departed(previous: cache.CachedScan | None, reuse: np.ndarray) -> Departed | None:
    """The previous scan's rows that no file of this scan reuses, copied (a few hundred rows
    for a 1 % rescan)."""
    if previous is None:
        return None
    gone = np.setdiff1d(np.arange(len(previous.table)), reuse[reuse >= 0])
    return Departed(
        byte_hash=previous.table["byte_hash"].to_numpy()[gone].astype(str),
        embeddings=np.array(previous.embeddings[gone], dtype=np.float32),
    )


def _concat(chunks: Sequence[ChunkFeatures]) -> ChunkFeatures:
    if not chunks:
        return ChunkFeatures(
            columns={c: np.array([]) for c in FEATURE_COLUMNS},
            embeddings=np.zeros((0, EMBEDDING_DIM), dtype=np.float32),
            pixels=np.zeros((0, PIXEL_SIZE, PIXEL_SIZE), dtype=np.uint8),
        )
    return ChunkFeatures(
        columns={c: np.concatenate([ch.columns[c] for ch in chunks]) for c in FEATURE_COLUMNS},
        embeddings=np.concatenate([ch.embeddings for ch in chunks]),
        pixels=np.concatenate([ch.pixels for ch in chunks]),
    )


def _assemble(
    files: pd.DataFrame,
    previous: cache.CachedScan | None,
    reuse: np.ndarray,
    fresh: ChunkFeatures,
    fresh_embeddings: np.ndarray,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The full table and arrays: reused rows from `previous`, decoded rows from `fresh`."""
    todo, kept = np.flatnonzero(reuse < 0), np.flatnonzero(reuse >= 0)
    parts = [pd.DataFrame(fresh.columns, index=todo)]
    if previous is not None and len(kept):
        rows = reuse[kept]
        parts.append(previous.table.iloc[rows][list(FEATURE_COLUMNS)].set_axis(kept))
        # The previous arrays were read for this scan alone: patched in place when the rows
        # line up (files edited, none added or removed), else gathered once. Filling zeros,
        # then scattering a gathered copy, moved the 144 MB of a 50k scan three times.
        if len(previous.embeddings) == len(files) and np.array_equal(rows, kept):
            embeddings, pixels = previous.embeddings, previous.pixels
        else:
            source_row = np.maximum(reuse, 0)
            embeddings, pixels = previous.embeddings[source_row], previous.pixels[source_row]
        embeddings[todo], pixels[todo] = fresh_embeddings, fresh.pixels
    else:
        embeddings = np.asarray(fresh_embeddings, dtype=np.float32)
        pixels = fresh.pixels
    # Skip empty parts: concatenating an empty frame would widen the columns' dtypes.
    features = pd.concat([p for p in parts if len(p)]).sort_index()
    table = pd.concat([files, features], axis=1)[list(INDEX_COLUMNS)]
    return table, embeddings, pixels


def _as_index(
    source: DatasetSource, scan: cache.CachedScan, spec: EmbeddingSpec, *, reused: int
) -> ScanIndex:
    return ScanIndex(
        source=source,
        table=scan.table,
        embeddings=scan.embeddings,
        pixels=scan.pixels,
        embedding_name=spec.name,
        fingerprint=scan.fingerprint,
        reused=reused,
    )
