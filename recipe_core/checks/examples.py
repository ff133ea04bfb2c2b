"""Per-example gradient share: does every example the loss scores badly still get a gradient?

A loss that clamps per-example losses at a maximum, masks out "hard" examples or keeps only the
k easiest ones gives the confidently wrong examples exactly zero gradient: training silently
stops learning from the examples it gets most wrong, and the loss curve looks fine. Constructed
outputs make half of a real batch confidently wrong (the rest confidently right), and the
gradient of the user's own loss_fn with respect to each example's output says whether it still
learns from them. Examples a loss ignores whatever the output (padding with ignore_index, a
class weight of 0) are not counted: only those that get a gradient while the output is
undecided and lose it once they are wrong.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch

from recipe_core.batch import IGNORE_INDEX
from recipe_core.checks.context import CheckContext, SkipCheck, UserCodeError
from recipe_core.checks.loss import init_pairs
from recipe_core.checks.result import CheckResult, verdict
from recipe_core.checks.targets import (
    Targets,
    in_space,
    perfect_output,
    prior_output,
    require,
    uniform_output,
)

MAX_EXAMPLES = 64  # examples of the first batch looked at
HARD_MARGINS = (0.5, 8.0)  # logit margins (target std for values) of the wrong examples, spread
EASY_MARGIN = 4.0  # logit margin of the confidently right examples
ZERO = 1e-7  # a gradient this small relative to the largest is no gradient
FAIL_SHARE = 0.25  # this share of the wrong examples starved: most of the hard tail is ignored


def check_example_gradients(ctx: CheckContext) -> CheckResult:
    t = require(ctx, loss=True)
    if t.space == "probs":
        raise SkipCheck("the loss takes probabilities, and confidently wrong outputs are "
                        "constructed as logits")  # fmt: skip
    out, y = (v[:MAX_EXAMPLES] for v in init_pairs(ctx)[0])
    b = int(out.shape[0])
    if b < 4 or (t.kind == "classes" and t.width < 2):
        raise SkipCheck("needs at least 4 examples and 2 classes in the first batch")
    if t.kind == "values" and y.numel() != out.numel():
        raise SkipCheck(f"outputs {tuple(out.shape)} and targets {tuple(y.shape)} differ in size")
    hard = torch.arange(b, device=out.device) % 2 == 1
    margins = _margins(hard)
    undecided = example_gradients(ctx, _undecided(out, y, t), y)
    wrong = _constructed(out, y, t, hard, margins)
    graded = example_gradients(ctx, wrong, y)
    scale = max(float(undecided.max()), float(graded.max()))
    if scale == 0:
        raise SkipCheck("no example gets any gradient from the loss (see gradient_flow)")
    counted = hard & (undecided > ZERO * scale)
    if not bool(counted.any()):
        raise SkipCheck("the examples made wrong get no gradient even when undecided "
                        "(all padding or weight 0)")  # fmt: skip
    starved = counted & (graded <= ZERO * scale)
    alone = _losses_alone(ctx, wrong, y)
    evidence: dict[str, object] = {
        "margins": margins.tolist(), "wrong": hard.tolist(), "counted": counted.tolist(),
        "gradient_norm": graded.tolist(), "gradient_norm_undecided": undecided.tolist(),
        "loss_alone": alone,
    }  # fmt: skip
    starved_losses = [v for v, s in zip(alone, starved.tolist(), strict=True) if s]
    return _verdict(counted, starved, graded, margins, scale, starved_losses, evidence)


def example_gradients(ctx: CheckContext, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B,) norm of d loss_fn(out, y) / d out[i], per example i."""
    leaf = out.detach().clone().requires_grad_(True)
    loss = ctx.loss(leaf, y)
    try:
        (grad,) = torch.autograd.grad(loss, leaf, allow_unused=True)
    except RuntimeError as error:
        raise UserCodeError("backward through loss_fn", error) from error
    if grad is None:
        return torch.zeros(out.shape[0])
    norms: torch.Tensor = grad.detach().reshape(out.shape[0], -1).norm(dim=1)
    return norms.double().cpu()


def _margins(hard: torch.Tensor) -> torch.Tensor:
    """(B,) margin per example: the wrong ones spread from barely to absurdly wrong."""
    margins = torch.full(hard.shape, EASY_MARGIN, dtype=torch.float64)
    spread = np.geomspace(*HARD_MARGINS, int(hard.sum()))
    margins[hard.cpu()] = torch.from_numpy(spread)
    return margins


def _undecided(out: torch.Tensor, y: torch.Tensor, t: Targets) -> torch.Tensor:
    """Outputs that commit to nothing: zero logits, or the target mean for values."""
    return prior_output(out, y, t) if t.kind == "values" else uniform_output(out, t)


def _constructed(
    out: torch.Tensor, y: torch.Tensor, t: Targets, hard: torch.Tensor, margins: torch.Tensor
) -> torch.Tensor:
    """Confidently right outputs, and confidently wrong ones where `hard`, one margin each."""
    scale = margins.to(out).reshape(-1, *([1] * (out.ndim - 1)))
    rows = hard.reshape(-1, *([1] * (out.ndim - 1)))
    if t.kind == "values":
        target = y.reshape(out.shape).to(out.dtype)
        spread = target.std().clamp_min(1e-3)
        return torch.where(rows, target + scale * spread, target)
    logits = replace(t, space="logits")
    right = perfect_output(out, y, logits, 1.0, True)
    wrong = perfect_output(out, _wrong_targets(y, t), logits, 1.0, True)
    return in_space(torch.where(rows, wrong, right) * scale, t)


def _wrong_targets(y: torch.Tensor, t: Targets) -> torch.Tensor:
    """Another class for each label (padding kept), flipped bits, or soft targets rolled."""
    if t.kind == "classes":
        return torch.where(y == IGNORE_INDEX, y, (y + 1) % t.width)
    if t.soft:
        return y.roll(1, dims=t.class_dim if y.ndim > 1 else 0)
    return 1 - y


def _losses_alone(ctx: CheckContext, out: torch.Tensor, y: torch.Tensor) -> list[float]:
    """loss_fn on each example alone (NaN where the loss is not defined for one example)."""
    values = []
    with torch.no_grad():
        for i in range(out.shape[0]):
            try:
                values.append(float(ctx.loss(out[i : i + 1], y[i : i + 1])))
            except UserCodeError:
                values.append(math.nan)
    return values


def _verdict(
    counted: torch.Tensor, starved: torch.Tensor, graded: torch.Tensor, margins: torch.Tensor,
    scale: float, starved_losses: list[float], evidence: dict[str, object],
) -> CheckResult:  # fmt: skip
    n, m = int(starved.sum()), int(counted.sum())
    expected = f"every wrong example gets a gradient (> {ZERO:g} of the largest)"
    if n == 0:
        smallest = float(graded[counted].min()) / scale
        return verdict(
            "example_gradients", "pass",
            f"All {m} confidently wrong examples still get a gradient from the loss (the "
            f"smallest {smallest:.2g} of the largest): it learns most from what it gets most "
            "wrong. Examples it ignores by design (padding, weight 0) were not counted.",
            observed=f"0 of {m} wrong examples without gradient", expected=expected,
            evidence=evidence,
        )  # fmt: skip
    finite = [v for v in starved_losses if math.isfinite(v)]
    losses = f", loss alone {min(finite):.3g} .. {max(finite):.3g}" if finite else ""
    if finite and max(finite) == 0:
        losses = ", each scored 0 by the loss (masked out)"
    first = float(margins[starved].min())
    return verdict(
        "example_gradients", "fail" if n >= FAIL_SHARE * m else "warn",
        f"{n} of {m} confidently wrong examples get exactly zero gradient from the loss (from "
        f"margin {first:.3g} on{losses}), though they get one while the output is undecided: "
        "the loss stops learning from an example once it is wrong enough. A per-example loss "
        "clamped at a maximum, a mask on high-loss examples, or keeping only the k easiest "
        "does this, and the loss curve still looks healthy.",
        observed=f"{n} of {m} wrong examples ({n / m:.0%}) without gradient{losses}",
        expected=expected, evidence=evidence,
        fix="Average the loss over every example (no clamp(max=...), no mask on the loss value, "
        "no top-k of the easiest). To keep outliers from blowing up a step, clip gradients "
        "(torch.nn.utils.clip_grad_norm_) or use a loss that down-weights without zeroing "
        "(Huber, focal). Drop hard examples only on purpose (noisy labels), and inspect them.",
    )  # fmt: skip
