"""Scans on a Ray cluster: the per-file decode, statistics and embedding map runs on Ray Data.

    scan("data/", executor="ray", ray_address="10.0.0.5:6379")   # or `recipe scan --executor ray`

Only the map over files moves to the cluster: each Ray Data batch runs `features.index_chunk`,
the very function the local process pool runs, and the driver reassembles the rows in order,
so the index, the cache and the issues (found locally by `find_issues`) are the same as a local
scan's. A network embedder ("resnet18") runs as a second map on GPU workers when the cluster
has GPUs.

Shared filesystem: workers open the dataset files by the driver's absolute paths, so every node
must mount the dataset at the same path (NFS, a cluster volume, or one machine). A worker that
cannot see the dataset folder fails the scan with a `DatasetError` that says so (the driver
checks each batch: an error raised inside a worker would reach it wrapped in Ray's own).

Connecting goes through `recipe_core.cluster.connection` (a running cluster only, never from the
Streamlit process).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from recipe_core.cluster.connection import gcs_address, import_ray, ray_session
from recipe_core.errors import ConfigError, DatasetError
from recipe_core.scan.index.build import FeatureRunner, Progress, local_features
from recipe_core.scan.index.embedders import EmbeddingSpec, deep_embeddings
from recipe_core.scan.index.features import FEATURE_COLUMNS, ChunkFeatures, index_chunk

log = logging.getLogger(__name__)

RAY_BATCH = 256  # files per Ray Data batch (and block): the local pool's MAX_CHUNK
EMBED_BATCH = 64  # images per forward pass of a network embedder on a worker


def ray_features(address: str, *, root: str, batch_size: int = RAY_BATCH) -> FeatureRunner:
    """A `build_index(features=...)` runner that decodes on the Ray cluster at `address`;
    `root` is the dataset folder every worker must be able to read."""
    address = gcs_address(address)
    if batch_size < 1:
        raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}.")

    def run(
        paths: Sequence[str], spec: EmbeddingSpec, progress: Progress | None
    ) -> tuple[ChunkFeatures, np.ndarray]:
        if not paths:  # all rows from the cache: nothing to send (the empty shapes as local)
            return local_features(workers=0)(paths, spec, progress)
        with ray_session(address):
            return _run_on_ray(paths, spec, root=root, batch_size=batch_size, progress=progress)

    return run


def _run_on_ray(
    paths: Sequence[str], spec: EmbeddingSpec, *, root: str, batch_size: int,
    progress: Progress | None,
) -> tuple[ChunkFeatures, np.ndarray]:  # fmt: skip
    ray = import_ray()  # Any: Ray's stubs do not type keyword-only batch functions
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # Recipe reports progress itself (`progress`)
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # per-dataset INFO banners
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    rows = pd.DataFrame({"row": np.arange(len(paths), dtype=np.int64), "path": list(paths)})
    # One block per batch: Ray Data maps blocks in parallel, batches within a block in series.
    blocks = [rows.iloc[i : i + batch_size] for i in range(0, len(rows), batch_size)]
    ds = ray.data.from_pandas(blocks).map_batches(
        features_batch, fn_kwargs={"root": root}, batch_size=batch_size,
        batch_format="numpy", num_cpus=1, **_task_pool(ray, cpus),
    )  # fmt: skip
    if not spec.offline:
        gpus = float(ray.cluster_resources().get("GPU", 0))
        log.info("network embedder on %s", "GPU workers" if gpus else "CPU workers (no GPUs)")
        ds = ds.map_batches(
            embed_batch, fn_kwargs={"spec": spec}, batch_size=batch_size,
            batch_format="numpy", num_gpus=1 if gpus else 0,
        )  # fmt: skip
    batches, done = [], 0
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        check_batch(batch, root=root)
        batches.append(batch)
        done += len(batch["row"])
        if progress is not None:
            progress(done, len(paths))
    return _collect(batches, len(paths))


def features_batch(batch: dict[str, np.ndarray], *, root: str) -> dict[str, np.ndarray]:
    """A Ray Data batch {row, path} -> {row, FEATURE_COLUMNS..., embedding, pixels}, computed
    by `index_chunk` (the local pool's function), plus which host ran it and whether that host
    sees the dataset folder (checked by the driver: see `check_batch`)."""
    chunk = index_chunk([str(p) for p in batch["path"]])
    n = len(batch["row"])
    return {"row": batch["row"], **chunk.columns, "embedding": chunk.embeddings,
            "pixels": chunk.pixels, "host": np.full(n, socket.gethostname(), dtype=object),
            "root_seen": np.full(n, os.path.isdir(root))}  # fmt: skip


def check_batch(batch: dict[str, np.ndarray], *, root: str) -> None:
    """DatasetError when the worker that made `batch` could not see the dataset folder: its
    rows would otherwise read as a dataset full of missing (`corrupt`) files."""
    if bool(np.all(batch["root_seen"])):
        return
    hosts = sorted({str(h) for h in batch["host"]})
    raise DatasetError(
        f"The Ray worker on {', '.join(hosts)} cannot read the dataset folder {root}. Ray "
        "scans read files by path: mount the dataset at the same path on every node (a shared "
        "filesystem), or scan locally (--executor local)."
    )


def embed_batch(batch: dict[str, np.ndarray], *, spec: EmbeddingSpec) -> dict[str, np.ndarray]:
    """Replace the batch's embeddings by the network embedder's, on this worker's GPU if it
    was given one (Ray sets CUDA_VISIBLE_DEVICES), else its CPU."""
    paths = [str(p) for p in batch["path"]]
    return {**batch, "embedding": deep_embeddings(paths, spec, batch_size=EMBED_BATCH)}


def _task_pool(ray: Any, size: int) -> dict[str, Any]:
    """map_batches' option for up to `size` tasks at once (`compute=` since Ray 2.51)."""
    strategy = getattr(ray.data, "TaskPoolStrategy", None)
    return {"compute": strategy(size=size)} if strategy else {"concurrency": size}


def _collect(batches: list[dict[str, np.ndarray]], n: int) -> tuple[ChunkFeatures, np.ndarray]:
    """Rows back in input order, with the local pool's dtypes (Arrow may widen strings)."""
    rows = np.concatenate([b["row"] for b in batches])
    if len(rows) != n or not np.array_equal(np.sort(rows), np.arange(n)):
        raise DatasetError(
            f"The Ray scan returned {len(rows)} rows for {n} files. Re-run the scan; if it "
            "happens again, scan locally (--executor local)."
        )
    order = np.argsort(rows, kind="stable")
    reference = index_chunk([]).columns  # empty columns carry the dtypes
    columns = {
        c: np.concatenate([b[c] for b in batches])[order].astype(reference[c].dtype)
        for c in FEATURE_COLUMNS
    }
    embeddings = np.concatenate([b["embedding"] for b in batches])[order].astype(np.float32)
    pixels = np.concatenate([b["pixels"] for b in batches])[order].astype(np.uint8)
    # build_index reads the embeddings returned beside the chunk (a network embedder's, if any).
    return ChunkFeatures(columns=columns, embeddings=embeddings, pixels=pixels), embeddings
