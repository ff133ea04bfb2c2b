"""The loss itself: can it reach zero, is it right at init, and what init would be right.

"Verify loss @ init ... -log(1/n_classes)" and "init well" (the recipe). The references are the
user's own loss_fn evaluated on the label prior / target mean, so any reduction, class weight or
label smoothing is accounted for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from recipe_core.checks.context import CheckContext, SkipCheck, UserCodeError, WorkKey
from recipe_core.checks.result import CheckResult, verdict
from recipe_core.checks.targets import (
    MARGINS,
    Targets,
    outputs_are_probabilities,
    perfect_output,
    prior_output,
    require,
    uniform_output,
)

INIT_BATCHES = 4  # batches averaged for the loss at init


@dataclass(frozen=True)
class InitLosses:
    model: float  # the fresh model's loss, mean over batches
    prior: float  # loss of predicting the label prior / target mean (the right init)
    uniform: float  # loss of all-zero outputs (a 'balanced' init)


INIT_PAIRS: WorkKey[list[tuple[torch.Tensor, torch.Tensor]]] = WorkKey("init_pairs")


def init_pairs(ctx: CheckContext) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(output, y) of one fresh model on the first few batches, in train mode, no grad."""

    def make() -> list[tuple[torch.Tensor, torch.Tensor]]:
        model = ctx.build().train()
        with torch.no_grad():
            return [(ctx.forward(model, x), y) for x, y in ctx.batches[:INIT_BATCHES]]

    return ctx.cache.get(INIT_PAIRS, make)


def mean_loss(ctx: CheckContext, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    with torch.no_grad():
        return float(np.mean([float(ctx.loss(out, y)) for out, y in pairs]))


def reference_loss(ctx: CheckContext, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """loss_fn on constructed outputs (logits of the prior, ...). A loss that rejects logits
    (BCELoss wants probabilities) gives no reference: the check is skipped, not failed."""
    try:
        return mean_loss(ctx, pairs)
    except UserCodeError as error:
        raise SkipCheck(
            f"loss_fn rejects constructed logits ({error}); it seems to expect probabilities"
        ) from error


def init_losses(ctx: CheckContext, t: Targets) -> InitLosses:
    pairs = init_pairs(ctx)
    return InitLosses(
        model=mean_loss(ctx, pairs),
        prior=reference_loss(ctx, [(prior_output(out, y, t), y) for out, y in pairs]),
        uniform=reference_loss(ctx, [(uniform_output(out, t), y) for out, y in pairs]),
    )


def margin_sweep(
    ctx: CheckContext, out: torch.Tensor, y: torch.Tensor, t: Targets
) -> dict[str, list[float]]:
    """Loss of ever more confident correct outputs, for both one-hot families (NaN where the
    loss rejects the outputs, e.g. BCELoss given values outside [0, 1])."""

    def at(margin: float, centred: bool) -> float:
        try:
            return float(ctx.loss(perfect_output(out, y, t, margin, centred), y))
        except UserCodeError:
            return math.nan

    with torch.no_grad():
        return {
            family: [at(m, centred) for m in MARGINS]
            for family, centred in (("centred", True), ("onehot", False))
        }


def loss_floor(ctx: CheckContext, out: torch.Tensor, y: torch.Tensor, t: Targets) -> float:
    """The lowest loss outputs can reach on (out, y): the target of 'overfit one batch'."""
    if t.kind == "values":
        if y.numel() != out.numel():
            return 0.0
        with torch.no_grad():
            return float(ctx.loss(perfect_output(out, y, t, 1.0, False), y))
    finite = [v for vs in margin_sweep(ctx, out, y, t).values() for v in vs if math.isfinite(v)]
    return min(finite) if finite else 0.0


def check_loss_function(ctx: CheckContext) -> CheckResult:
    """Confident correct outputs must drive the loss to (near) its minimum; the loss must not
    saturate above zero (softmax on probabilities) or go negative (NLL on raw scores)."""
    t = require(ctx, loss=True)
    out, y = init_pairs(ctx)[0]
    if t.kind == "probs" and t.soft and not _sums_to_one(t):
        return _unnormalised_soft_targets(t)
    if t.kind == "values" or t.space == "probs":
        return _perfect_loss_function(ctx, out, y, t)
    sweep = margin_sweep(ctx, out, y, t)
    uniform = reference_loss(ctx, [(uniform_output(out, t), y)])
    finite = {f: c for f, c in sweep.items() if all(math.isfinite(v) for v in c)}
    if not finite:
        raise SkipCheck("loss_fn rejects confident logits; it seems to expect probabilities")
    curve = min(finite.values(), key=min)
    floor = min(curve)
    evidence = {"margins": list(MARGINS), **sweep, "uniform_loss": uniform}
    observed = f"loss {uniform:.4g} at zero logits, {floor:.4g} at best confident correct logits"
    flat = floor >= 0.9 * uniform
    if flat or floor < -1e-6 or (floor > 0.1 * uniform and curve[-1] <= floor + 1e-6 * abs(floor)):
        if t.kind == "probs" and not t.soft and not flat and floor >= -1e-6:
            return _softmax_on_multi_hot(t, floor, uniform, observed, evidence)
        return _broken_loss(floor, uniform, observed, evidence)  # flat, negative, still falling
    clipped = float((out == 0).float().mean())
    if 0.3 < clipped < 1 and float(out.min()) >= 0 and not outputs_are_probabilities(out, t):
        return verdict(
            "loss_function", "fail",
            f"{clipped:.0%} of the model's logits are exactly 0 and none is negative: a ReLU "
            "(or clamp) sits after the last layer. Logits need both signs; clipped ones stop "
            "getting gradient, so those classes can never be pushed down.",
            observed=f"{clipped:.0%} of logits exactly 0, min {float(out.min()):.3g}",
            expected="real-valued logits", evidence=evidence,
            fix="Remove the activation after the final Linear: the model should end in raw logits.",
        )  # fmt: skip
    if outputs_are_probabilities(out, t) and floor <= 0.1 * uniform:
        return verdict(
            "loss_function", "fail",
            "The model's outputs are already probabilities (a softmax or sigmoid at the end of "
            "the model), but the loss expects logits and squashes them again. Squashing twice "
            "keeps the loss far from zero and makes gradients vanish.",
            observed=f"outputs in [{float(out.min()):.3g}, {float(out.max()):.3g}]",
            expected="raw logits (any real values) into the loss", evidence=evidence,
            fix="Remove the final softmax/sigmoid from the model (CrossEntropyLoss and "
            "BCEWithLogitsLoss apply it themselves); apply it only when reporting probabilities.",
        )  # fmt: skip
    return verdict(
        "loss_function", "pass",
        f"Confident correct logits bring the loss from {uniform:.3g} (zero logits) down to "
        f"{floor:.3g}, so the loss rewards being right and nothing in it blocks reaching its "
        "minimum (a label-smoothed loss bottoms out above zero, which is fine).",
        observed=observed, expected=f"minimum well below {uniform:.3g}", evidence=evidence,
    )  # fmt: skip


SUM_TOLERANCE = 1e-3  # soft-target rows may miss 1 by float rounding, not by more


def _sums_to_one(t: Targets) -> bool:
    low, high = t.row_sums
    return abs(low - 1) <= SUM_TOLERANCE and abs(high - 1) <= SUM_TOLERANCE


def _unnormalised_soft_targets(t: Targets) -> CheckResult:
    low, high = t.row_sums
    sums = f"{low:.4g}" if abs(high - low) <= SUM_TOLERANCE else f"{low:.4g} .. {high:.4g}"
    return verdict(
        "loss_function", "fail",
        f"The soft targets are meant to be one distribution over the {t.width} classes per "
        f"sample, but their rows sum to {sums}, not 1. A cross-entropy against them is "
        "minimised at the targets divided by their row sum, so the model learns a different "
        "distribution than intended (label smoothing y*(1-eps)+eps spreads far more than eps), "
        "and rows that sum to more weigh more in the loss.",
        observed=f"target rows sum to {sums}", expected="every row sums to 1 (± 0.001)",
        evidence={"row_sum_min": low, "row_sum_max": high, "classes": t.width},
        fix="Normalise the targets: label smoothing is y*(1-eps) + eps/K; a teacher's "
        "probabilities are softmax(teacher_logits / T, dim=class dim), not over the batch. If "
        "these are independent labels (several can be on), pass task='multilabel' and use "
        "BCEWithLogitsLoss.",
    )  # fmt: skip


def _softmax_on_multi_hot(
    t: Targets, floor: float, uniform: float, observed: str, evidence: dict[str, object]
) -> CheckResult:
    return verdict(
        "loss_function", "fail",
        f"The targets are independent 0/1 labels (several on per sample), but even confident "
        f"correct logits only bring the loss from {uniform:.3g} to {floor:.3g}. The loss makes "
        f"the {t.width} labels compete for one unit of probability (a softmax cross-entropy): "
        "with k labels on, the best it can do is ln k per sample, and it pushes each label's "
        "score down whenever another label is on.",
        observed=observed, expected=f"approaches 0 (below {0.1 * uniform:.3g})",
        evidence=evidence,
        fix="Use nn.BCEWithLogitsLoss (one sigmoid per label) for multi-label targets, and pass "
        "task='multilabel'.",
    )  # fmt: skip


def _broken_loss(
    floor: float, uniform: float, observed: str, evidence: dict[str, object]
) -> CheckResult:
    if floor >= 0.9 * uniform and floor >= -1e-6:
        return verdict(
            "loss_function", "fail",
            f"No output does better than all-zero logits ({uniform:.3g}): even confident "
            f"correct logits score {floor:.3g}. The targets carry no information for this loss "
            "(label_smoothing=1, targets ignored or overwritten inside loss_fn), so nothing can "
            "be learned.",
            observed=observed, expected=f"well below {uniform:.3g}", evidence=evidence,
            fix="Check what loss_fn compares the outputs with, and its label_smoothing/weights.",
        )  # fmt: skip
    if floor < -1e-6:
        return verdict(
            "loss_function", "fail",
            "The loss goes negative for confident correct logits, so it is not a log-loss over "
            "logits: typically NLLLoss applied to raw scores (it expects log-probabilities). "
            "Training would push those scores to infinity instead of learning.",
            observed=observed, expected="a loss >= 0 that approaches 0", evidence=evidence,
            fix="Use nn.CrossEntropyLoss on logits, or apply log_softmax before NLLLoss.",
        )  # fmt: skip
    return verdict(
        "loss_function", "fail",
        f"Even absurdly confident correct logits (margin {MARGINS[-1]:g}) only bring the "
        f"loss to {floor:.3g}, against {uniform:.3g} for zero logits: it flattens out far "
        "above zero. The loss is applied to probabilities (softmax inside the loss, or "
        "CrossEntropyLoss on softmax outputs), so it can never be driven to zero.",
        observed=observed, expected=f"approaches 0 (below {0.1 * uniform:.3g})",
        evidence=evidence,
        fix="Feed raw logits to CrossEntropyLoss / BCEWithLogitsLoss; drop any softmax or "
        "sigmoid applied before the loss.",
    )  # fmt: skip


def _perfect_loss_function(
    ctx: CheckContext, out: torch.Tensor, y: torch.Tensor, t: Targets
) -> CheckResult:
    """Targets compared as values (regression) or as probabilities (BCELoss): perfect outputs
    are the targets themselves and must score far below predicting the mean / prior."""
    if t.kind == "values" and y.numel() != out.numel():
        raise SkipCheck(
            f"outputs {tuple(out.shape)} and targets {tuple(y.shape)} differ in size (e.g. a "
            "mean and a variance per sample), so 'perfect predictions' are not defined"
        )
    with torch.no_grad():
        perfect = float(ctx.loss(perfect_output(out, y, t, 1.0, False), y))
        mean = float(ctx.loss(prior_output(out, y, t), y))
    what = "the target mean" if t.kind == "values" else "the label prior"
    observed = f"loss {perfect:.4g} for perfect predictions, {mean:.4g} for {what}"
    evidence = {"perfect_loss": perfect, "prior_loss": mean}
    expected = f"perfect predictions far below the loss of {what}"
    if perfect < 0.5 * mean:
        return verdict(
            "loss_function", "pass",
            f"Perfect predictions give a loss far below predicting {what}, so the loss "
            "compares each output with its own target.",
            observed=observed, expected=expected, evidence=evidence,
        )  # fmt: skip
    shapes = f"outputs {tuple(out.shape)} vs targets {tuple(y.shape)}"
    return verdict(
        "loss_function", "fail",
        "Predicting every target exactly should give (near) zero loss, but it scores no "
        f"better than predicting {what} ({shapes}). The loss compares every output with every "
        "target: (B, 1) against (B,) broadcasts to (B, B).",
        observed=observed, expected=expected, evidence=evidence,
        fix="Make outputs and targets the same shape (out.squeeze(-1) or y.unsqueeze(-1)) "
        "before the loss.",
    )  # fmt: skip
