"""`run_all`: every check of the recipe, cheapest first, each isolated from the others."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn

from recipe_core.checks.batch_stats import check_batch_stats
from recipe_core.checks.capacity import check_capacity
from recipe_core.checks.context import (
    CheckContext,
    LossFn,
    OptimizerFactory,
    OutOfTime,
    SkipCheck,
    UserCodeError,
)
from recipe_core.checks.dependence import check_batch_independence, check_causal_dependence
from recipe_core.checks.determinism import check_eval_determinism, check_reproducibility
from recipe_core.checks.examples import check_example_gradients
from recipe_core.checks.fitting import check_input_independent, check_overfit
from recipe_core.checks.init import check_init_well, check_loss_at_init
from recipe_core.checks.labels import check_labels_and_outputs
from recipe_core.checks.layers import check_layer_statistics
from recipe_core.checks.leakage import check_too_good
from recipe_core.checks.learning import check_gradient_flow, check_optimizer_sanity
from recipe_core.checks.loss import check_loss_function
from recipe_core.checks.result import CheckReport, CheckResult, verdict
from recipe_core.checks.train_eval import check_train_eval_gap
from recipe_core.data.pipeline import Pipeline
from recipe_core.errors import ConfigError, RecipeError

log = logging.getLogger(__name__)

Check = Callable[[CheckContext], CheckResult]
Progress = Callable[[int, int, str], None]  # (checks done, checks in all, check starting now)

# Explicit registry, in run order: cheap forward-only checks first, so a short time budget
# still gets them; training-based checks last.
CHECKS: dict[str, Check] = {
    "labels_and_outputs": check_labels_and_outputs,
    "batch_stats": check_batch_stats,
    "loss_function": check_loss_function,
    "loss_at_init": check_loss_at_init,
    "init_well": check_init_well,
    "example_gradients": check_example_gradients,
    "gradient_flow": check_gradient_flow,
    "layer_statistics": check_layer_statistics,
    "eval_determinism": check_eval_determinism,
    "train_eval_gap": check_train_eval_gap,
    "batch_independence": check_batch_independence,
    "causal_dependence": check_causal_dependence,
    "reproducibility": check_reproducibility,
    "optimizer_sanity": check_optimizer_sanity,
    "input_independent_baseline": check_input_independent,
    "too_good_to_be_true": check_too_good,
    "overfit_one_batch": check_overfit,
    "capacity_ladder": check_capacity,
}


def run_all(
    model: nn.Module | Callable[[], nn.Module],
    loader: Iterable[Any],
    loss_fn: LossFn,
    *,
    task: str = "classification",
    num_classes: int | None = None,
    optimizer: OptimizerFactory | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    max_seconds: float | None = None,
    progress: Progress | None = None,
    only: Sequence[str] | None = None,
    val_loader: Iterable[Any] | None = None,
) -> CheckReport:
    """Run the recipe's sanity checks on a model, a loader of (x, y) and a loss.

    `model` is an nn.Module (deep-copied; never trained in place) or a zero-argument factory
    (torch's RNG is seeded with `seed` before each call; a factory that also takes `width=`
    enables the capacity ladder). `optimizer` is a `params -> Optimizer` factory (default Adam
    3e-4). `num_classes` is what you declare; it is verified against labels and outputs. `task`
    is classification | regression | sequence (causal, time on dim 1) | multilabel (multi-hot
    targets shaped like the outputs, one sigmoid per label). `val_loader`, when
    given, supplies the held-out batches (else the last batches read are held out). Work is
    budgeted in steps and samples, so a busy machine gets the same report, later. `max_seconds`
    gives each check an equal share of the time left; a check it stops warns with what it
    measured, checks it never reached are skipped ("time budget"), and `report.cut_short`
    names both. `only` runs a subset by name.
    Raises ConfigError on invalid arguments; everything found in your setup is a CheckResult.
    """
    names = _select(only)
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):  # the caller's RNG stream is left untouched
        ctx = CheckContext(
            model, loader, loss_fn, task=task, num_classes=num_classes, optimizer=optimizer,
            device=device, seed=seed, max_seconds=max_seconds, val_loader=val_loader,
        )  # fmt: skip
        results, seconds, cut_short = [], {}, []
        for i, name in enumerate(names):
            if progress is not None:
                progress(i, len(names), name)
            start = time.monotonic()
            results.append(run_check(ctx, name, remaining=len(names) - i))
            seconds[name] = time.monotonic() - start
            if ctx.ran_short:
                cut_short.append(name)
            log.info("check %s: %s (%.1fs)", name, results[-1].status, seconds[name])
    if progress is not None:
        progress(len(names), len(names), "")
    return CheckReport(tuple(results), seconds, str(ctx.device), seed, tuple(cut_short))


def check_pipeline(
    pipeline: Pipeline,
    *,
    device: str | torch.device | None = None,
    seed: int = 0,
    max_seconds: float | None = None,
    progress: Progress | None = None,
    only: Sequence[str] | None = None,
) -> CheckReport:
    """`run_all` on the user's own pipeline: its model, loss, optimizer and task, batches from
    its `train_loader` (through `to_xy`), held-out batches from its `val_loader`."""
    return run_all(
        pipeline.model, pipeline.train_batches(), pipeline.loss_fn, task=pipeline.task,
        num_classes=pipeline.num_classes, optimizer=pipeline.optimizer, device=device,
        seed=seed, max_seconds=max_seconds, progress=progress, only=only,
        val_loader=pipeline.val_batches(),
    )  # fmt: skip


def run_check(ctx: CheckContext, name: str, *, remaining: int = 1) -> CheckResult:
    """One check, isolated: a skip, a failure of the user's code, or a Recipe bug ("error")
    becomes its result instead of stopping the others. With max_seconds set, the check gets an
    equal share of the time left for it and the `remaining - 1` checks after it."""
    ctx.start_check(remaining)
    if ctx.seconds_left() <= 0:
        ctx.ran_short = True
        return verdict(name, "skip", "time budget: max_seconds ran out before this check")
    try:
        return CHECKS[name](ctx)
    except OutOfTime as cut:
        return cut_short(name, cut)
    except SkipCheck as reason:
        return verdict(name, "skip", f"Skipped: {reason}.")
    except UserCodeError as error:
        return verdict(
            name, "fail",
            f"Your code raised while this check ran it on real batches: {error}. Setups that "
            "train correctly run this without errors.",
            observed=str(error), expected="no exception",
            fix="Reproduce it with one batch from the loader and fix the failing call.",
            evidence={"traceback": error.traceback},
        )  # fmt: skip
    except RecipeError:
        raise
    except Exception as error:  # a bug in Recipe must not hide the other checks
        log.exception("check %s crashed", name)
        return verdict(
            name,
            "error",
            f"Recipe crashed in this check ({type(error).__name__}: {error}). This is a bug "
            "in Recipe, not in your code; please report it with the setup that caused it.",
            observed=f"{type(error).__name__}: {error}",
        )


def cut_short(name: str, cut: OutOfTime) -> CheckResult:
    """A check that max_seconds stopped before it measured enough to decide: a warning, since
    an undecided check is not a pass (the report lists it in `cut_short`)."""
    return verdict(
        name, "warn",
        f"max_seconds cut this check short: {cut}. It had not measured enough to decide, and "
        "an undecided check is not a pass. Without max_seconds every check is budgeted in "
        "steps and samples and ends on its own.",
        observed=f"stopped after {cut.share:.3g} s", expected="a verdict",
        fix="Raise max_seconds (or leave it unset) and run the checks again.",
    )  # fmt: skip


def _select(only: Sequence[str] | None) -> list[str]:
    if only is None:
        return list(CHECKS)
    unknown = [n for n in only if n not in CHECKS]
    if unknown:
        raise ConfigError(f"Unknown checks {unknown}. Valid checks: {', '.join(CHECKS)}.")
    return [n for n in CHECKS if n in only]
