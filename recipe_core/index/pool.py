"""Run `index_chunk` over many files: in a process pool for big scans, in-process for small ones.

Start method: "fork" when the caller runs a single thread (a script, the CLI: fastest, and it
never re-imports the caller's main module, so scripts without a `__main__` guard work); otherwise
"forkserver" (a Streamlit server holds threads, and forking a threaded process can deadlock).
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from recipe_core.errors import DatasetError
from recipe_core.index.features import ChunkFeatures, index_chunk

log = logging.getLogger(__name__)

MAX_CHUNK = 256  # files per task: large enough to batch numpy work, small enough to balance
MIN_POOL_FILES = 512  # below this a pool's start-up costs more than it saves


def run_chunks(
    paths: Sequence[str], *, workers: int, progress: Callable[[int, int], None] | None = None
) -> list[ChunkFeatures]:
    """Features of `paths` in order, as one `ChunkFeatures` per chunk."""
    total = len(paths)
    if workers <= 1 or total < MIN_POOL_FILES:
        return _run_here(paths, progress)
    size = min(MAX_CHUNK, math.ceil(total / (workers * 4)))
    chunks = [list(paths[i : i + size]) for i in range(0, total, size)]
    results: list[ChunkFeatures | None] = [None] * len(chunks)
    done = 0
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=_context()) as pool:
            futures: dict[Future[ChunkFeatures], int] = {
                pool.submit(index_chunk, chunk): i for i, chunk in enumerate(chunks)
            }
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                done += len(chunks[futures[future]])
                if progress is not None:
                    progress(done, total)
    except BrokenProcessPool as exc:
        raise DatasetError(
            "A scan worker process died (a decoder crashed or the machine ran out of memory). "
            "Re-run with --workers 1 to find the file that crashes it, or with fewer workers."
        ) from exc
    return [r for r in results if r is not None]


def _run_here(
    paths: Sequence[str], progress: Callable[[int, int], None] | None
) -> list[ChunkFeatures]:
    out = []
    for start in range(0, len(paths), MAX_CHUNK):
        out.append(index_chunk(paths[start : start + MAX_CHUNK]))
        if progress is not None:
            progress(min(start + MAX_CHUNK, len(paths)), len(paths))
    return out


def _context() -> mp.context.BaseContext:
    methods = mp.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return mp.get_context("fork")
    if "forkserver" in methods:
        context = mp.get_context("forkserver")
        context.set_forkserver_preload(["recipe_core.index.features"])
        return context
    return mp.get_context("spawn")
