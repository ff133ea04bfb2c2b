"""Run `index_chunk` over many files: in a process pool for big scans, in-process for small ones.

Start method: "fork" on Linux, the platform's default elsewhere (spawn on macOS and Windows).
Fork starts workers in milliseconds and never re-imports the caller's main module, so a script
without an `if __name__ == "__main__":` guard (or a notebook) works; spawn and forkserver would
re-run such a script in every worker. Forking a process that holds other threads is safe here
because a worker only decodes and runs numpy: it takes no lock another thread could hold.
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
import sys
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from recipe_core.errors import DatasetError
from recipe_core.scan.index.features import ChunkFeatures, index_chunk

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
            with warnings.catch_warnings():  # Python >= 3.12 warns on any fork with threads
                warnings.filterwarnings("ignore", "This process .* is multi-threaded")
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
            "A scan worker process died: a decoder crashed, the machine ran out of memory, or "
            "(outside Linux) the calling script lacks an `if __name__ == '__main__':` guard. "
            "Re-run with workers=1 (--workers 1) to scan in one process."
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
    if sys.platform.startswith("linux"):
        return mp.get_context("fork")
    return mp.get_context()
