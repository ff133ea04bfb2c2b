"""The job model's vocabulary: one state set and one progress record for scans, checks and runs.

A training run keeps its state in the run directory's status.json (`runs.RunStatus.state`); a
scan or check job keeps it in its folder's progress.json (`JobProgress.state`). Both are a
`JobState`, so the app, the CLI and scripts judge every kind of job with the same words.
This module is the base of `recipe_core.jobs`: the run directory (`recipe_core.runs`) and the
training loop import it, and it imports nothing of Recipe.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class JobState(StrEnum):
    MISSING = "missing"  # no record yet: never started (scan and check jobs)
    QUEUED = "queued"  # recorded, its process not running yet (runs)
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"  # the record is unreadable (a corrupt status.json): not judged, not ended

    @property
    def finished(self) -> bool:
        return self in FINISHED_STATES


FINISHED_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


class JobCancelled(BaseException):
    """Raised in a job process asked to stop (SIGTERM). A BaseException, like
    KeyboardInterrupt, so a broad `except Exception` in between cannot swallow it."""


@dataclass(frozen=True)
class JobProgress:
    """What a scan or check worker reports in progress.json, rewritten at every heartbeat."""

    state: JobState
    stage: str = ""  # what the worker does now: a scan's "start" | "index" | "issues" | "write"
    done: int = 0  # items finished in this stage (files, checks)
    total: int = 0  # items in this stage (0 = not known yet)
    current: str = ""  # the item being worked on (the check running now)
    message: str = ""  # the error, when failed or cancelled
    pid: int = 0  # worker process id
    started: float = 0.0  # unix seconds
    updated: float = 0.0  # unix seconds of the last heartbeat

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", JobState(self.state))  # raises on an unknown state

    @property
    def finished(self) -> bool:
        return self.state.finished

    @property
    def fraction(self) -> float:
        """done / total in [0, 1]; 1 once succeeded."""
        if self.state == JobState.SUCCEEDED:
            return 1.0
        return min(1.0, self.done / self.total) if self.total else 0.0
