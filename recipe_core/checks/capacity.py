"""Capacity: a wider model must reach a lower (or equal) training loss in the same budget."""

from __future__ import annotations

import itertools

import numpy as np

from recipe_core.checks.context import CheckContext
from recipe_core.checks.loss import init_losses
from recipe_core.checks.result import CheckResult, verdict
from recipe_core.checks.targets import require
from recipe_core.checks.training import Trainer
from recipe_core.train.models import count_parameters

LADDER = (0.125, 0.25, 0.5)  # width multipliers passed to `width=` (narrow rungs: cheap on CPU)
LADDER_STEPS = 40  # optimizer steps per rung
LADDER_BATCH = 32  # samples per step (keeps the widest rung cheap on a CPU)
LADDER_TOLERANCE = 0.1  # widest may end this fraction of the prior loss above the narrowest


def check_capacity(ctx: CheckContext) -> CheckResult:
    t = require(ctx, loss=True)
    if ctx.width_factory is None:
        return verdict(
            "capacity_ladder", "skip",
            "Needs a model factory that takes width= (a capacity multiplier), e.g. "
            "recipe_core.train.models.scalable_factory(...); a module or a plain factory gives no "
            "ladder to climb.",
        )  # fmt: skip
    models = [ctx.build(width=w) for w in LADDER]
    sizes = [count_parameters(m) for m in models]
    if any(b <= a for a, b in itertools.pairwise(sizes)):
        why = f"width= does not grow this model (parameters: {sizes})."
        return verdict("capacity_ladder", "skip", why)
    batches = [(x[:LADDER_BATCH], y[:LADDER_BATCH]) for x, y in ctx.train_batches]
    curves = []
    for model in models:
        trainer = Trainer(ctx, model, batches)
        trainer.run(LADDER_STEPS)
        if trainer.stopped:
            return verdict("capacity_ladder", "skip", "Training diverged (see optimizer_sanity).")
        curves.append(trainer.losses)
    finals = [float(np.mean(c[-10:])) for c in curves]
    tol = LADDER_TOLERANCE * abs(init_losses(ctx, t).prior) + 1e-6
    evidence = {"widths": list(LADDER), "parameters": sizes, "loss": curves, "final_loss": finals}
    observed = ", ".join(f"width {w:g}: {f:.3g}" for w, f in zip(LADDER, finals, strict=True))
    expected = f"the widest ends ≤ the narrowest + {tol:.2g}"
    if finals[-1] > finals[0] + tol:
        return verdict(
            "capacity_ladder", "fail",
            f"More capacity made training worse: after {LADDER_STEPS} steps the widest model "
            f"({sizes[-1]:,} parameters) ends at {finals[-1]:.3g}, the narrowest "
            f"({sizes[0]:,}) at {finals[0]:.3g}. Bigger models should fit at least as well; "
            "an init that does not scale with width (fixed std instead of 1/sqrt(fan_in)) or "
            "a width-dependent bug is the usual cause.",
            observed=observed, expected=expected, evidence=evidence,
            fix="Use PyTorch's default (fan-in scaled) init or kaiming init for every width.",
        )  # fmt: skip
    return verdict(
        "capacity_ladder", "pass",
        f"Training loss after {LADDER_STEPS} steps falls (or holds) as width grows from "
        f"{sizes[0]:,} to {sizes[-1]:,} parameters: extra capacity is usable.",
        observed=observed, expected=expected, evidence=evidence,
    )  # fmt: skip
