"""How many CPUs the scan may use, and a thread map for its numpy work.

The detectors' heavy steps are numpy calls that release the GIL while they run (matrix
products, partitions, reductions over large arrays), so threads share them out across cores
without the start-up and copying cost of processes: the neighbour search's cells and the
pixel check's chunks are independent and run on every usable CPU.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, TypeVar

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


class Background:
    """Work run on one thread beside the caller's (a cache write while the detectors run),
    waited for at `wait()` or on leaving a `with` block, where its first error is raised."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recipe-background")
        self._futures: list[Future[Any]] = []

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._futures.append(self._pool.submit(fn, *args, **kwargs))

    def wait(self) -> None:
        self._pool.shutdown(wait=True)
        for future in self._futures:
            future.result()

    def __enter__(self) -> Background:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            self.wait()
        else:  # the caller's error stands; the work still ends before the caller goes on
            self._pool.shutdown(wait=True)
