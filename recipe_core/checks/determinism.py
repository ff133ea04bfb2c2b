"""Reproducibility ("fix random seed") and eval determinism (dropout off at eval)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from recipe_core.checks.context import CheckContext
from recipe_core.checks.result import CheckResult, verdict
from recipe_core.checks.targets import require
from recipe_core.checks.training import Trainer, real_trainer

REPRO_STEPS = 6  # training steps compared between two seeded runs


def _different_tensors(a: nn.Module, b: nn.Module) -> list[str]:
    sa, sb = a.state_dict(), b.state_dict()
    if sa.keys() != sb.keys():
        return sorted(set(sa) ^ set(sb))
    return [k for k in sa if sa[k].shape != sb[k].shape or not torch.equal(sa[k], sb[k])]


def _tolerance(ctx: CheckContext) -> float:
    # CUDA kernels (atomics, cuDNN autotuning) may differ in the last bits; CPU must be exact.
    return 1e-3 if ctx.device.type == "cuda" else 1e-6


def check_reproducibility(ctx: CheckContext) -> CheckResult:
    require(ctx, loss=True)
    built = ctx.build()
    seeds_itself = torch.initial_seed() != ctx.seed  # the factory called torch.manual_seed
    differing = _different_tensors(built, ctx.build()) if ctx.is_factory else []
    if differing:
        return verdict(
            "reproducibility", "fail",
            f"Two back-to-back calls of the model factory, with torch's RNG seeded the same, "
            f"build different weights ({len(differing)} tensors differ, e.g. {differing[0]}). "
            "Randomness comes from somewhere the seed does not reach (numpy, random, time, an "
            "unseeded torch.Generator), so no experiment can be repeated exactly.",
            observed=f"{len(differing)} weight tensors differ", expected="identical weights",
            evidence={"differing": differing[:20]},
            fix="Draw all init randomness from torch's seeded RNG (or seed numpy/random inside "
            "the factory).",
        )  # fmt: skip
    first = real_trainer(ctx).run_to(REPRO_STEPS)
    second = Trainer(ctx, ctx.build(), ctx.train_batches)
    second.run(len(first))
    diffs = [abs(a - b) / max(abs(a), 1e-12) for a, b in zip(first, second.losses, strict=False)]
    worst = max(diffs, default=0.0)
    evidence = {"losses_run_1": first, "losses_run_2": second.losses}
    observed = f"largest relative loss difference {worst:.2g} over {len(first)} steps"
    expected = f"≤ {_tolerance(ctx):g}"
    if len(second.losses) != len(first) or worst > _tolerance(ctx):
        return verdict(
            "reproducibility", "fail",
            "Two seeded training runs from the same weights on the same batches give different "
            "losses: the forward pass or the optimizer uses randomness the seed does not "
            "control (numpy, random, an unseeded generator). Comparing two runs then means "
            "comparing noise.",
            observed=observed, expected=expected, evidence=evidence,
            fix="Use torch's RNG (seeded) for any randomness in the model, loss or optimizer.",
        )  # fmt: skip
    global_rng = [] if seeds_itself or not ctx.is_factory else _global_rng_tensors(ctx, built)
    if global_rng:
        return _unseeded_factory(ctx, global_rng, observed, expected, evidence)
    what = "the factory builds identical weights twice and " if ctx.is_factory else ""
    return verdict(
        "reproducibility", "pass",
        f"With the seed fixed, {what}two short training runs give identical losses, so a change "
        "in results means a change in your code or data, not luck.",
        observed=observed, expected=expected, evidence=evidence,
    )  # fmt: skip


def _global_rng_tensors(ctx: CheckContext, seeded: nn.Module) -> list[str]:
    """Weight tensors that change when the factory is called with torch's global RNG in another
    state (seeded `seed + 1` instead of `seed`): the factory does not seed its own init."""
    saved = ctx.seed
    ctx.seed = saved + 1
    try:
        other = ctx.build()
    finally:
        ctx.seed = saved
    return _different_tensors(seeded, other)


def _unseeded_factory(
    ctx: CheckContext, differing: list[str], observed: str, expected: str,
    evidence: Mapping[str, Any],
) -> CheckResult:  # fmt: skip
    return verdict(
        "reproducibility", "warn",
        "Recipe's seeded runs are reproducible (two training runs give identical losses), but "
        "only because Recipe seeds torch before every build: called after "
        f"torch.manual_seed({ctx.seed}) and after torch.manual_seed({ctx.seed + 1}), the "
        f"factory builds different weights ({len(differing)} tensors differ, e.g. "
        f"{differing[0]}). Your own training is repeatable only if your script seeds torch "
        "before building the model.",
        observed=f"{observed}; {len(differing)} weight tensors follow the global RNG state",
        expected=f"{expected}, and weights that do not depend on the caller's RNG state",
        evidence={**evidence, "follow_global_rng": differing[:20]},
        fix="Call torch.manual_seed(seed) at the top of the factory (or right before building "
        "the model in your training script), so every build starts from the same weights.",
    )  # fmt: skip


def check_eval_determinism(ctx: CheckContext) -> CheckResult:
    require(ctx, loss=False)
    model = ctx.build().eval()
    x = ctx.batches[0][0]
    with torch.no_grad():
        first, second = ctx.forward(model, x).detach(), ctx.forward(model, x).detach()
    diff = float((first - second).abs().nan_to_num(0.0).max())
    scale = float(first.abs().nan_to_num(0.0).max()) + 1e-12
    observed = f"largest difference between two eval passes {diff:.3g}"
    evidence = {"max_abs_difference": diff, "output_scale": scale}
    if diff > _tolerance(ctx) * scale:
        return verdict(
            "eval_determinism", "fail",
            "In eval mode the same batch gives different outputs on two passes: something "
            "random stays on at evaluation (F.dropout(training=True), noise in forward, "
            "a custom layer that ignores self.training). Validation numbers become noisy and "
            "predictions unrepeatable.",
            observed=observed, expected="identical outputs", evidence=evidence,
            fix="Pass training=self.training to F.dropout (or use nn.Dropout) and gate any "
            "noise on self.training.",
        )  # fmt: skip
    return verdict(
        "eval_determinism",
        "pass",
        "model.eval() turns off all randomness: two passes over the same batch agree exactly.",
        observed=observed,
        expected="identical outputs",
        evidence=evidence,
    )
