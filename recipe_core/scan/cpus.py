"""How many CPUs the scan may use, and a thread map for its numpy work.

The detectors' heavy steps are numpy calls that release the GIL while they run (matrix
products, partitions, reductions over large arrays), so threads share them out across cores
without the start-up and copying cost of processes: the neighbour search's cells and the
pixel check's chunks are independent and run on every usable CPU.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask), not the host's count."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def thread_map(fn: Callable[[T], R], items: Iterable[T], *, threads: int | None = None) -> list[R]:
    """[fn(item) for item in items], on up to `threads` threads (None: usable_cpus()); in
    order. One thread, or a single item, runs in the caller's thread."""
    work = list(items)
    n = min(len(work), threads or usable_cpus())
    if n <= 1:
        return [fn(item) for item in work]
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="recipe-scan") as pool:
        return list(pool.map(fn, work))
