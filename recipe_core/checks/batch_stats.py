"""What the net sees: decode and measure the first batches exactly as the loader yields them."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from recipe_core.batch import (
    BatchView,
    BatchWarning,
    find_normalize,
    inspect_batch,
    scramble_warnings,
    shuffle_warning,
    spatial_correlation,
)
from recipe_core.batch.decode import unit_images
from recipe_core.checks.context import CheckContext
from recipe_core.checks.result import CheckResult, verdict
from recipe_core.checks.targets import gate

INSPECTED = 4  # batches decoded and measured
SEVERITY = {"info": 0, "warn": 1, "fail": 2}


def find_reference_images(obj: object, *, depth: int = 4) -> torch.Tensor | None:
    """A few of the dataset's own images (N, C, H, W), e.g. `NormalizedImages.data.images`."""
    if obj is None or depth < 0:
        return None
    images = getattr(obj, "images", None)
    if isinstance(images, torch.Tensor) and images.ndim == 4:
        return images[:64]
    for name in ("dataset", "data", "loader"):
        found = find_reference_images(getattr(obj, name, None), depth=depth - 1)
        if found is not None:
            return found
    return None


def first_conv_input(ctx: CheckContext) -> torch.Tensor | None:
    """What the model's first Conv2d receives for the first batch: a view/reshape bug inside
    forward shows up here even when the loader's batch is fine."""
    model = ctx.build().eval()
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None:
        return None
    captured: list[torch.Tensor] = []

    def hook(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        if not captured and args:
            captured.append(args[0].detach())

    handle = conv.register_forward_pre_hook(hook)
    try:
        with torch.no_grad():
            ctx.forward(model, ctx.batches[0][0])
    finally:
        handle.remove()
    return captured[0] if captured else None


def in_model_scramble(ctx: CheckContext, layout: str) -> list[BatchWarning]:
    x = ctx.batches[0][0]
    if not layout.startswith("image"):
        return []
    seen = first_conv_input(ctx)
    unit = unit_images(x, layout, None)
    if seen is None or seen.ndim != 4 or tuple(seen.shape[2:]) != tuple(unit.shape[2:]):
        return []
    found = scramble_warnings(seen, "image_chw", spatial_correlation(seen.float()), unit)
    return [
        BatchWarning("scrambled_in_model", "At the model's first convolution: " + w.message,
                     w.fix, w.severity)
        for w in found
    ]  # fmt: skip


def _merge(warnings: list[BatchWarning]) -> list[BatchWarning]:
    """One warning per code (the most severe), in order of first appearance."""
    merged: dict[str, BatchWarning] = {}
    for w in warnings:
        if w.code not in merged or SEVERITY[w.severity] > SEVERITY[merged[w.code].severity]:
            merged[w.code] = w
    return list(merged.values())


def batch_views(ctx: CheckContext) -> tuple[list[BatchView], list[BatchWarning]]:
    """The first batches decoded as the model receives them, and every warning about them."""
    t = gate(ctx).targets
    classes_known = t is not None and t.kind == "classes"
    n_classes = ctx.num_classes or (t.width if t is not None and classes_known else None)
    normalize, reference = find_normalize(ctx.loader), find_reference_images(ctx.loader)
    views = [
        inspect_batch(x, y if classes_known else None, num_classes=n_classes,
                      normalize=normalize, reference=reference)
        for x, y in ctx.batches[:INSPECTED]
    ]  # fmt: skip
    # A single-class batch alone proves little for imbalanced labels; the permutation test of
    # shuffle_warning (over all batches read) decides whether the loader is unshuffled.
    warnings = [w for v in views for w in v.warnings if w.code != "single_class"]
    if classes_known and ctx.batches[0][1].ndim == 1:
        order = shuffle_warning([y.cpu().numpy() for _, y in ctx.batches], seed=ctx.seed)
        warnings += [order] if order is not None else []
    if not any(w.code == "scrambled" for w in warnings):
        warnings += in_model_scramble(ctx, views[0].layout)
    return views, _merge(warnings + _targets_are_inputs(ctx))


def _targets_are_inputs(ctx: CheckContext) -> list[BatchWarning]:
    """A sequence model asked to predict its own input: the one-step shift was forgotten."""
    x, y = ctx.batches[0]
    if ctx.task != "sequence" or x.shape != y.shape or x.dtype != y.dtype:
        return []
    same = float((x == y).float().mean())
    if same < 0.95:
        return []
    return [BatchWarning(
        "targets_are_inputs", f"{same:.0%} of the targets equal the input at the same step: "
        "the model is asked to copy its input, not to predict the next step.",
        "Shift by one: x = seq[:, :-1], y = seq[:, 1:].", "fail")]  # fmt: skip


def check_batch_stats(ctx: CheckContext) -> CheckResult:
    views, warnings = batch_views(ctx)
    first, stats = views[0], views[0].stats
    evidence: dict[str, Any] = {
        "layout": first.layout, "shape": list(first.shape), "dtype": first.dtype,
        "stats": stats.to_dict(orient="records"), "normalize": first.normalize,
        "spatial_correlation": [v.spatial_correlation for v in views],
        "warnings": [[w.code, w.severity, w.message, w.fix] for w in warnings],
    }  # fmt: skip
    observed = (f"{first.layout} {first.dtype} {tuple(first.shape)}, values "
                f"{stats['min'].min():.3g}..{stats['max'].max():.3g}, channel means "
                f"{np.round(stats['mean'].to_numpy()[:4], 3).tolist()}")  # fmt: skip
    expected = "finite, normalised, shuffled, unscrambled inputs"
    shown = [w for w in warnings if w.severity != "info"]
    if shown:
        worst = max(SEVERITY[w.severity] for w in shown)
        return verdict(
            "batch_stats", "fail" if worst == SEVERITY["fail"] else "warn",
            "Decoding the batches exactly as the model receives them shows: "
            + " ".join(w.message for w in shown) + " The net can only learn what it is fed.",
            observed=observed, expected=expected, evidence=evidence,
            fix=" ".join(dict.fromkeys(w.fix for w in shown)),
        )  # fmt: skip
    return verdict(
        "batch_stats", "pass",
        f"The first {len(views)} batches, decoded exactly as the model receives them, look "
        "healthy: finite, normalised values, mixed classes, no duplicates or scrambled pixels."
        + "".join(" " + w.message for w in warnings),
        observed=observed, expected=expected, evidence=evidence,
    )  # fmt: skip
