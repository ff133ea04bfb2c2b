"""The server-side check around every mutating action of the dashboard.

    guard = Guard(user, AuditLog(ws.root / "audit.jsonl"), limits)
    with guard.acting("cancel_run", run_id):
        executor.cancel(...)

`acting` checks the role first (AccessDenied + a "denied" entry), then runs the block and
records "ok", or "error" with the message when the block raised a RecipeError. Limit checks
inside the block raise LimitExceeded, which is recorded once, as `limit_refused`. The app
hides what a role may not do; this is what holds when a hidden control is reached anyway.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from recipe_core.errors import RecipeError, RunError
from recipe_core.hosting.access import User, require
from recipe_core.hosting.audit import AuditLog
from recipe_core.hosting.config import LimitsConfig
from recipe_core.hosting.limits import (
    LimitExceeded,
    check_check_seconds,
    check_concurrent,
    check_steps,
    check_text,
)
from recipe_core.jobs.active import ActiveJob

# the running jobs of the workspace, listed only when a limit applies (the local app lists none)
RunningJobs = Callable[[], Iterable[ActiveJob]]

RUN_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}")  # a run folder's name, never a path


@dataclass(frozen=True)
class Guard:
    user: User
    audit: AuditLog
    limits: LimitsConfig | None = None  # None: the local app, where the user is the operator

    @contextmanager
    def acting(self, action: str, target: str) -> Iterator[None]:
        require(self.user, action, target=target, audit=self.audit)
        try:
            yield
        except LimitExceeded:
            raise  # already audited as limit_refused
        except RecipeError as error:
            self._record(action, target, "error", str(error))
            raise
        self._record(action, target, "ok", "")

    def check_run(self, *, steps: int, name: str | None, running: RunningJobs) -> None:
        """The per-user limits a new run must pass (none in the local app)."""
        if name is not None:
            check_text(name, "run name", self.user, self.audit)
        if self.limits is not None:
            check_steps(steps, self.user, self.limits, self.audit)
        self.check_job(running)

    def check_job(self, running: RunningJobs) -> None:
        """The one per-user budget every new job (run, check job, scan, capture) must fit in."""
        if self.limits is not None:
            check_concurrent(running(), self.user, self.limits, self.audit)

    def check_seconds(self, max_seconds: float | None) -> float | None:
        """A check job's hard deadline, s: [limits] max_check_seconds, after refusing a time
        budget over it (or none at all); None in the local app."""
        if self.limits is None:
            return None
        check_check_seconds(max_seconds, self.user, self.limits, self.audit)
        return float(self.limits.max_check_seconds)

    def path_refused(self, typed: str, message: str) -> None:
        self._record("path_refused", typed, "denied", message)

    def _record(self, action: str, target: str, outcome: str, detail: str) -> None:
        self.audit.record(self.user.email, self.user.role or "", action, target=target,
                          outcome=outcome, detail=detail)  # fmt: skip


def checked_run_id(run_id: str) -> str:
    """A run id from the browser: a single folder name, or RunError."""
    if RUN_ID.fullmatch(run_id) is None or set(run_id) == {"."}:
        raise RunError(
            f"Invalid run id {run_id[:200]!r}: a run id is one folder name of the workspace's "
            "runs/ (letters, digits, '.', '_', '-'). Pick a run from the list."
        )
    return run_id
