"""Per-user limits of a hosted dashboard: one budget of running jobs (training runs, check
jobs and scans together), steps per run, images per scan, seconds per check job.

Who started a job is recorded in its folder (`owner.json`, see recipe_core.jobs.owners), so
the count of a user's running jobs comes from the job folders themselves, the single source
of truth, and survives a server restart. Every refusal is audited as `limit_refused`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from recipe_core.errors import RecipeError
from recipe_core.hosting.access import User
from recipe_core.hosting.audit import AuditLog
from recipe_core.hosting.config import LimitsConfig
from recipe_core.jobs import owners

if TYPE_CHECKING:
    from recipe_core.jobs.active import ActiveJob

MAX_TEXT = 1000  # characters of a free-text field (run name, note): longer ones are refused
KIND_NAMES = {"run": "training run", "checks": "check job", "scan": "scan", "see": "capture"}


class LimitExceeded(RecipeError):
    """A request over one of the operator's per-user limits."""


def record_owner(run_dir: str | os.PathLike[str], user: User) -> None:
    """Note who started the run (counted by `check_concurrent` through jobs.owners)."""
    owners.record_owner(run_dir, user.email)


def check_steps(steps: int, user: User, limits: LimitsConfig, audit: AuditLog) -> None:
    if steps > limits.max_steps:
        _refuse(
            user,
            audit,
            f"steps={steps}",
            f"{steps:,} steps is over this dashboard's limit of {limits.max_steps:,} per "
            "run. Lower the steps, or ask the operator to raise [limits] max_steps.",
        )


def check_scan_size(
    n_images: int, dataset: str, user: User, limits: LimitsConfig, audit: AuditLog
) -> None:
    if n_images > limits.max_scan_images:
        _refuse(
            user,
            audit,
            dataset,
            f"This dataset has {n_images:,} images, over this dashboard's scan limit of "
            f"{limits.max_scan_images:,}. Scan a smaller subset, or ask the operator to "
            "raise [limits] max_scan_images (or run `recipe scan` from a terminal).",
        )


def check_concurrent(
    running: Iterable[ActiveJob], user: User, limits: LimitsConfig, audit: AuditLog
) -> None:
    """Refuse a new job when `user` already has max_concurrent_jobs running: training runs,
    check jobs, scans and captures all count against the one budget."""
    mine = [f"{KIND_NAMES.get(j.kind, j.kind)} {j.job_id}" for j in running
            if j.owner == user.email]  # fmt: skip
    if len(mine) >= limits.max_concurrent_jobs:
        _refuse(
            user,
            audit,
            f"running={len(mine)}",
            f"You already have {len(mine)} running job(s) ({', '.join(mine)}); this dashboard "
            f"allows {limits.max_concurrent_jobs} per user, training runs, check jobs and scans "
            "together. Wait for one to finish or cancel one, then start again.",
        )


def check_check_seconds(
    max_seconds: float | None, user: User, limits: LimitsConfig, audit: AuditLog
) -> None:
    """Refuse a check job's time budget that is missing or over [limits] max_check_seconds."""
    cap = limits.max_check_seconds
    if max_seconds is None or max_seconds > cap:
        asked = (
            "No time budget was given"
            if max_seconds is None
            else f"A time budget of {max_seconds:g} s is over this dashboard's limit"
        )
        _refuse(
            user,
            audit,
            f"max_seconds={max_seconds}",
            f"{asked}: a check job here may run at most {cap:,} s. Give a budget between 1 and "
            f"{cap:,} s, or ask the operator to raise [limits] max_check_seconds.",
        )


def check_text(value: str, field: str, user: User, audit: AuditLog) -> str:
    """A free-text field's value, refused when longer than MAX_TEXT characters."""
    if len(value) > MAX_TEXT:
        _refuse(
            user,
            audit,
            f"{field}: {len(value):,} characters",
            f"The {field} is {len(value):,} characters long; at most {MAX_TEXT:,} are "
            "accepted. Shorten it.",
        )
    return value


def _refuse(user: User, audit: AuditLog, target: str, message: str) -> None:
    audit.record(
        user.email,
        user.role or "",
        "limit_refused",
        target=target,
        outcome="denied",
        detail=message,
    )
    raise LimitExceeded(message)
