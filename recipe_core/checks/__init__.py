"""The recipe's sanity checks as pure functions: `run_all(model, loader, loss_fn, ...)` returns a
`CheckReport` of `CheckResult`s (pass | warn | fail | skip | error), never touching your model."""

from __future__ import annotations

from recipe_core.checks.result import STATUSES, CheckReport, CheckResult
from recipe_core.checks.runner import CHECKS, check_pipeline, run_all, run_check
from recipe_core.data.pipeline import default_optimizer

__all__ = [
    "CHECKS",
    "STATUSES",
    "CheckReport",
    "CheckResult",
    "check_pipeline",
    "default_optimizer",
    "run_all",
    "run_check",
]
