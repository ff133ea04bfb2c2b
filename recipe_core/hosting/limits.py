"""Per-user limits of a hosted dashboard: concurrent jobs, steps per run, images per scan.

Who started a run is recorded beside it (`<run dir>/owner.json`, {"user": e-mail}), so the
count of a user's unfinished runs comes from the run directories themselves, the single
source of truth, and survives a server restart. Every refusal is audited as `limit_refused`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from recipe_core.errors import RecipeError
from recipe_core.hosting.access import User
from recipe_core.hosting.audit import AuditLog
from recipe_core.hosting.config import LimitsConfig
from recipe_core.runs import RunStatus

OWNER_FILE = "owner.json"
MAX_TEXT = 1000  # characters of a free-text field (run name, note): longer ones are refused


class LimitExceeded(RecipeError):
    """A request over one of the operator's per-user limits."""


def record_owner(run_dir: str | os.PathLike[str], user: User) -> None:
    """Note who started the run (read back by `run_owner`)."""
    Path(run_dir, OWNER_FILE).write_text(json.dumps({"user": user.email}) + "\n")


def run_owner(run_dir: str | os.PathLike[str]) -> str | None:
    try:
        value = json.loads(Path(run_dir, OWNER_FILE).read_text())["user"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return str(value)


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
    statuses: Iterable[RunStatus], runs_root: Path, user: User, limits: LimitsConfig,
    audit: AuditLog,
) -> None:  # fmt: skip
    """Refuse a new run when `user` already has max_concurrent_jobs unfinished runs."""
    mine = [s.run_id for s in statuses
            if not s.finished and run_owner(runs_root / s.run_id) == user.email]  # fmt: skip
    if len(mine) >= limits.max_concurrent_jobs:
        _refuse(
            user,
            audit,
            f"running={len(mine)}",
            f"You already have {len(mine)} unfinished run(s) ({', '.join(mine)}); this "
            f"dashboard allows {limits.max_concurrent_jobs} per user. Wait for one to "
            "finish or cancel one, then start again.",
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
