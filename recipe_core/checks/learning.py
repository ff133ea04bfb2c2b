"""Can it learn at all? Gradients reach and move every weight; the optimizer does not diverge."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from recipe_core.checks.context import CheckContext
from recipe_core.checks.result import CheckResult, verdict
from recipe_core.checks.targets import require
from recipe_core.checks.training import real_trainer

SANITY_STEPS = 40  # optimizer steps watched for divergence


PROBLEMS = {  # finding -> how it reads in the summary
    "no_grad": "get no gradient",
    "nonfinite_grad": "get NaN/Inf gradients",
    "not_in_optimizer": "are not in the optimizer",
    "kept_after_zero_grad": "keep their gradient after optimizer.zero_grad() (it piles up)",
    "never_updated": f"never change in {SANITY_STEPS} optimizer steps",
}


def check_gradient_flow(ctx: CheckContext) -> CheckResult:
    require(ctx, loss=True)
    model = ctx.build().train()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if not trainable:
        return verdict(
            "gradient_flow", "fail",
            "The model has no trainable parameters (requires_grad is False everywhere), so "
            "nothing can learn.", observed="0 trainable tensors", expected="> 0",
            fix="Unfreeze the layers you mean to train (p.requires_grad_(True)).",
        )  # fmt: skip
    found, norms = _gradient_findings(ctx, model, trainable)
    bad = sorted({name for names in found.values() for name in names})
    evidence = {"grad_norm": norms, **found}
    observed = f"{len(trainable) - len(bad)}/{len(trainable)} trainable tensors learn"
    expected = "every trainable tensor gets a finite gradient and is updated"
    if bad:
        return verdict(
            "gradient_flow", "fail",
            "Backprop does not reach every weight: " + "; ".join(_flow_problems(found)) + ". "
            "Those weights stay at their init forever (a .detach(), .item()/.numpy() round trip, "
            "no_grad in forward, all-zero init, or an optimizer built on the wrong parameters).",
            observed=observed, expected=expected, evidence=evidence,
            fix="Remove the detach/no_grad on the path to the loss, initialise weights randomly "
            "(not all zeros) and build the optimizer from model.parameters().",
        )  # fmt: skip
    return verdict(
        "gradient_flow", "pass",
        f"All {len(trainable)} trainable tensors get a finite gradient from the loss, are in "
        f"the optimizer, and move within {SANITY_STEPS} steps.",
        observed=observed, expected=expected, evidence=evidence,
    )  # fmt: skip


def _gradient_findings(
    ctx: CheckContext, model: nn.Module, trainable: dict[str, nn.Parameter]
) -> tuple[dict[str, list[str]], dict[str, float]]:
    """Trainable tensors by problem (keys of PROBLEMS), and every gradient's norm."""
    x, y = ctx.train_batches[0]
    loss = ctx.loss(ctx.forward(model, x), y)
    if loss.requires_grad:
        ctx.backward(loss)
    optimizer = ctx.optimizer(model)
    in_opt = {id(p) for group in optimizer.param_groups for p in group["params"]}
    norms = {n: float(p.grad.norm()) for n, p in trainable.items() if p.grad is not None}
    optimizer.zero_grad()
    found = {
        "no_grad": [n for n in trainable if n not in norms],
        "nonfinite_grad": [n for n, v in norms.items() if not math.isfinite(v)],
        "not_in_optimizer": [n for n, p in trainable.items() if id(p) not in in_opt],
        "kept_after_zero_grad": [n for n, p in trainable.items()
                                 if id(p) in in_opt and p.grad is not None and bool(p.grad.any())],
    }  # fmt: skip
    if not any(found.values()):
        found["never_updated"] = _unchanged(ctx)
    return found, norms


def _unchanged(ctx: CheckContext) -> list[str]:
    """Weight matrices/kernels of the shared training run still exactly at their init. Bias
    vectors are exempt: a bias feeding BatchNorm has a ~0 gradient by design, and plain SGD
    moves it by less than float32 can represent."""
    trainer = real_trainer(ctx)
    trainer.run_to(SANITY_STEPS)
    if trainer.stopped:
        return []
    fresh = dict(ctx.build().named_parameters())
    return [
        n
        for n, p in trainer.model.named_parameters()
        if p.requires_grad and p.ndim >= 2 and n in fresh and torch.equal(p, fresh[n])
    ]


def _flow_problems(found: dict[str, list[str]]) -> list[str]:
    problems = []
    for key, names in found.items():
        if names:
            shown = ", ".join(names[:4]) + (" ..." if len(names) > 4 else "")
            problems.append(f"{len(names)} tensors {PROBLEMS[key]} ({shown})")
    return problems


def check_optimizer_sanity(ctx: CheckContext) -> CheckResult:
    require(ctx, loss=True)
    trainer = real_trainer(ctx)
    losses = trainer.run_to(SANITY_STEPS)
    # Compare whole passes over the same batches: single-batch losses differ by batch alone.
    window = max(1, min(len(ctx.train_batches), SANITY_STEPS // 2))
    end = SANITY_STEPS // window * window
    first = _untrained_pass_loss(ctx, window)
    last = float(np.mean(losses[end - window : end])) if len(losses) >= end else math.nan
    diverged = trainer.divergence.found  # the training loops' rule: a run would fail there too
    evidence = {"loss": losses, "first_pass_mean": first, "last_pass_mean": last,
                "diverged_at_step": None if diverged is None else diverged.step}  # fmt: skip
    observed = f"mean loss per pass {first:.4g} (untrained) -> {last:.4g} after {len(losses)} steps"
    expected = "finite, not rising above its start"
    if diverged is not None or last > 1.5 * first + 1e-3:
        default = " (Adam 3e-4, the safe default)" if ctx.uses_default_optimizer else ""
        what = (
            f"diverges {diverged.describe()}"
            if diverged is not None
            else f"rises instead of falling within {len(losses)} steps ({first:.3g} -> {last:.3g})"
        )
        return verdict(
            "optimizer_sanity", "fail",
            f"With this optimizer{default} the loss {what}. The learning rate is far too high, "
            "gradients accumulate (zero_grad missing), or the loss is numerically unstable; a "
            "training run would fail the same way.",
            observed=observed, expected=expected, evidence=evidence,
            fix="Lower the learning rate by 10x (Adam at 3e-4 is a safe start), keep a constant "
            "LR until things work, and clip gradients if spikes remain.",
        )  # fmt: skip
    return verdict(
        "optimizer_sanity", "pass",
        f"Over {len(losses)} steps the loss stays finite and its mean over the training batches "
        f"goes from {first:.3g} to {last:.3g}: the optimizer and learning rate are sane.",
        observed=observed, expected=expected, evidence=evidence,
    )  # fmt: skip


def _untrained_pass_loss(ctx: CheckContext, window: int) -> float:
    """Mean loss of the fresh model over the first `window` training batches (train mode)."""
    model = ctx.build().train()
    torch.manual_seed(ctx.seed)
    with torch.no_grad():
        losses = [float(ctx.loss(ctx.forward(model, x), y)) for x, y in ctx.train_batches[:window]]
    return float(np.mean(losses))
