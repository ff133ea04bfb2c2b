"""Signals that die with depth: per-layer activation and gradient scale, dead and saturated units.

A deep net whose residual was dropped, or whose init is far too small or too large, still
"trains" (the last bias learns the prior), so the loss alone does not show it. The layers do:
the input-driven spread of activations, and the gradient reaching each layer, change by orders
of magnitude with depth. Normalisation resets the scale and residuals carry it, so healthy deep
nets stay within an order of magnitude or so; frozen layers carry no gradient by design and are
left out of the gradient chain.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from recipe_core.checks.context import CheckContext
from recipe_core.checks.layer_probe import LayerStats, probe_layers
from recipe_core.checks.learning import SANITY_STEPS
from recipe_core.checks.result import CheckResult, verdict
from recipe_core.checks.targets import require
from recipe_core.checks.training import Trainer, real_trainer

# PyTorch's default init shrinks a plain ReLU layer's spread ~2.4x (a 5-conv plain net loses
# 68x and still trains under Adam); normalisation and residuals hold it near 1. Three orders of
# magnitude is ~8 such layers in a row: the signal is gone, not just small.
VANISH, SEVERE = 1e-3, 1e-5  # ratio to an earlier (forward) / later (backward) layer
DEAD = 0.5  # share of a rectifier's units that never fire: half the layer cannot learn
SATURATED = 0.5  # share of a tanh/sigmoid's outputs pinned at a bound (derivative ~0)
FIXES = {
    "vanishing": "Keep the signal's scale through depth: restore the residual connection "
    "(x + block(x)), add normalisation (BatchNorm/LayerNorm) or initialise with fan-in scaling "
    "(nn.init.kaiming_normal_ for ReLU, xavier for tanh) instead of a tiny std.",
    "exploding": "Initialise weights with fan-in scaling (PyTorch's defaults or "
    "nn.init.kaiming_normal_), not N(0, 1); add normalisation or scale residual branches down.",
    "dead": "Start biases at 0 (not a large negative constant), lower the learning rate, or "
    "use LeakyReLU/GELU so dead units still get a gradient.",
    "saturated": "Shrink the pre-activations: xavier init for tanh/sigmoid (std 1/sqrt(fan_in)), "
    "normalised inputs, or normalisation before the nonlinearity.",
}


@dataclass(frozen=True)
class Finding:
    kind: str  # a key of FIXES
    severe: bool  # severe enough to fail (the layer cannot learn), else a warning
    message: str  # with the layer names and numbers


def check_layer_statistics(ctx: CheckContext) -> CheckResult:
    require(ctx, loss=True)
    batch = ctx.train_batches[0]
    torch.manual_seed(ctx.seed)  # dropout masks of the probe
    at_init = probe_layers(ctx, ctx.build().train(), batch)
    trainer = trained(ctx)
    steps = len(trainer.losses)
    torch.manual_seed(ctx.seed)
    after = probe_layers(ctx, copy.deepcopy(trainer.model).train(), batch)  # BN stats untouched
    found = findings(after)
    evidence = {"at_init": [s.to_dict() for s in at_init], "after_steps": steps,
                "after": [s.to_dict() for s in after],
                "findings": [[f.kind, f.message] for f in found]}  # fmt: skip
    observed = f"{describe(at_init)} at init; {describe(after)} after {steps} steps"
    expected = (f"scale within {1 / VANISH:g}x across layers, < {DEAD:.0%} dead or "
                f"{SATURATED:.0%} saturated units per layer")  # fmt: skip
    if found:
        return verdict(
            "layer_statistics", "fail" if any(f.severe for f in found) else "warn",
            f"After {steps} training steps the layers show: " + " ".join(f.message for f in found)
            + " Layers that pass on no signal or no gradient do not learn, though the loss may "
            "still fall a little (the last layers fit the label prior).",
            observed=observed, expected=expected, evidence=evidence,
            fix=" ".join(dict.fromkeys(FIXES[f.kind] for f in found)),
        )  # fmt: skip
    return verdict(
        "layer_statistics", "pass",
        f"Across {len(after)} layers, at init and after {steps} steps, activations and "
        "gradients keep their scale with depth and no layer has mostly dead or saturated units.",
        observed=observed, expected=expected, evidence=evidence,
    )  # fmt: skip


def trained(ctx: CheckContext) -> Trainer:
    """The shared run at SANITY_STEPS; a run of our own if other checks took it further, so the
    verdict does not depend on which checks ran before."""
    shared = real_trainer(ctx)
    trainer = (
        shared
        if len(shared.losses) <= SANITY_STEPS
        else Trainer(ctx, ctx.build(), ctx.train_batches)
    )
    trainer.run_to(SANITY_STEPS)
    return trainer


def findings(stats: list[LayerStats]) -> list[Finding]:
    """What is wrong with one pass's layers. The output layer is left out: its scale is the
    task's (a zero-initialised head is a legitimate choice) and a final sigmoid may saturate."""
    hidden = stats[:-1]
    chain = [s for s in hidden if s.weighted]
    forward = [(label(s), s.scale) for s in chain]
    backward = [(label(s), s.grad) for s in reversed(chain) if s.grad is not None]
    found = _trend("activation spread", "vanishing", "exploding", forward)
    found += _trend("gradient", "vanishing", "exploding", backward)
    for s in hidden:
        found += _units(s)
    return found


def _units(s: LayerStats) -> list[Finding]:
    """Dead rectifier units and saturated tanh/sigmoid outputs of one layer."""
    found = []
    if s.dead is not None and s.dead >= DEAD:
        message = f"{s.dead:.0%} of the units of {label(s)} are zero for every sample."
        found.append(Finding("dead", s.dead >= 0.99, message))
    if s.saturated is not None and s.saturated >= SATURATED:
        message = f"{s.saturated:.0%} of the outputs of {label(s)} sit at its bounds."
        found.append(Finding("saturated", s.saturated >= 0.9, message))
    return found


def label(s: LayerStats) -> str:
    return f"{s.name!r} ({s.kind})"


def _trend(what: str, down: str, up: str, values: list[tuple[str, float]]) -> list[Finding]:
    """The largest fall and rise of `values` along the chain (each against the extreme seen
    before it). Exact zeros are left out: a zero-initialised layer is silent by design."""
    drop, rise = (1.0, "", ""), (1.0, "", "")
    top: tuple[str, float] | None = None
    bottom: tuple[str, float] | None = None
    for name, value in values:
        if not value > 0 or value == float("inf"):
            continue
        if top is not None and value / top[1] < drop[0]:
            drop = (value / top[1], top[0], name)
        if bottom is not None and value / bottom[1] > rise[0]:
            rise = (value / bottom[1], bottom[0], name)
        top = (name, value) if top is None or value > top[1] else top
        bottom = (name, value) if bottom is None or value < bottom[1] else bottom
    found = []
    if drop[0] < VANISH:
        found.append(Finding(down, drop[0] < SEVERE, f"the {what} falls {1 / drop[0]:.3g}x "
                             f"from {drop[1]} to {drop[2]} ({down})."))  # fmt: skip
    if rise[0] > 1 / VANISH:
        found.append(Finding(up, rise[0] > 1 / SEVERE, f"the {what} grows {rise[0]:.3g}x "
                             f"from {rise[1]} to {rise[2]} ({up})."))  # fmt: skip
    return found


def describe(stats: list[LayerStats]) -> str:
    """The spread of the first and last hidden weighted layer, e.g. '0.58 -> 3e-06 over 11'."""
    chain = [s for s in stats[:-1] if s.weighted]
    if len(chain) < 2:
        return f"{len(chain)} hidden layer(s) with weights"
    return (f"activation spread {chain[0].scale:.2g} -> {chain[-1].scale:.2g} over "
            f"{len(chain)} hidden layers")  # fmt: skip
