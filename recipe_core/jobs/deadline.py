"""A worker's own deadline: the server-side cap on how long a job may run.

    with deadline(600, "The checks ran past ... [limits] max_check_seconds ..."):
        run_the_checks()        # JobTimedOut(message) is raised in here after 600 s

SIGALRM raises JobTimedOut in the main thread at the deadline, so the job records "failed" with
the message (its ProgressReporter does). A detached worker stuck inside one long C call never
returns to Python to see the signal: with `kill_group` a watchdog thread then kills the
worker's whole process group GRACE_S later (never set it in a process that does not lead its
own group, such as a script running a job in-process), and its progress reads failed once the
heartbeat is stale.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

GRACE_S = 30.0  # after the deadline: time to raise, record "failed" and exit before SIGKILL


class JobTimedOut(BaseException):
    """Raised in a job process that ran past its deadline. A BaseException, like JobCancelled,
    so a check's `except Exception` (which isolates one check's crash) cannot swallow it."""


@contextmanager
def deadline(seconds: float | None, message: str, *, kill_group: bool = False) -> Iterator[None]:
    """Raise JobTimedOut(message) in the block once `seconds` of wall time passed (None: no
    deadline); with `kill_group`, SIGKILL this process group GRACE_S after that if the block
    still runs. Main thread only, as Python's signal handlers are."""
    if seconds is None:
        yield
        return

    def expire(signum: int, frame: FrameType | None) -> None:
        raise JobTimedOut(message)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    done = threading.Event()
    if kill_group:
        threading.Thread(target=_kill_after, args=(seconds + GRACE_S, done), daemon=True).start()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        done.set()


def _kill_after(seconds: float, done: threading.Event) -> None:
    """The last resort: SIGKILL our own process group unless the block ended in time."""
    if not done.wait(seconds):
        os.killpg(os.getpgrp(), signal.SIGKILL)
