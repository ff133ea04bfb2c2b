"""What the net sees: decode and measure the first batches exactly as the loader yields them."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from recipe_core.batch import BatchWarning, find_normalize, inspect_batch, shuffle_warning
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
    for name in ("dataset", "data"):
        found = find_reference_images(getattr(obj, name, None), depth=depth - 1)
        if found is not None:
            return found
    return None


def _merge(warnings: list[BatchWarning]) -> list[BatchWarning]:
    """One warning per code (the most severe), in order of first appearance."""
    merged: dict[str, BatchWarning] = {}
    for w in warnings:
        if w.code not in merged or SEVERITY[w.severity] > SEVERITY[merged[w.code].severity]:
            merged[w.code] = w
    return list(merged.values())


def check_batch_stats(ctx: CheckContext) -> CheckResult:
    found = gate(ctx)
    t = found.targets
    classes_known = t is not None and t.kind == "classes"
    n_classes = ctx.num_classes or (t.width if t is not None and classes_known else None)
    normalize = find_normalize(ctx.loader)
    reference = find_reference_images(ctx.loader)
    views = [
        inspect_batch(x, y if classes_known else None, num_classes=n_classes,
                      normalize=normalize, reference=reference)
        for x, y in ctx.batches[:INSPECTED]
    ]  # fmt: skip
    warnings = [w for v in views for w in v.warnings]
    if classes_known and ctx.batches[0][1].ndim == 1:
        order = shuffle_warning([y.cpu().numpy() for _, y in ctx.batches], seed=ctx.seed)
        warnings += [order] if order is not None else []
    warnings = _merge(warnings)
    worst = max((SEVERITY[w.severity] for w in warnings), default=0)
    status = {0: "pass", 1: "warn", 2: "fail"}[worst]
    first = views[0]
    evidence: dict[str, Any] = {
        "layout": first.layout, "shape": list(first.shape), "dtype": first.dtype,
        "stats": first.stats.to_dict(orient="records"), "normalize": normalize,
        "spatial_correlation": [v.spatial_correlation for v in views],
        "warnings": [[w.code, w.severity, w.message, w.fix] for w in warnings],
    }  # fmt: skip
    stats = first.stats
    observed = (f"{first.layout} {first.dtype} {tuple(first.shape)}, values "
                f"{stats['min'].min():.3g}..{stats['max'].max():.3g}, channel means "
                f"{np.round(stats['mean'].to_numpy()[:4], 3).tolist()}")  # fmt: skip
    expected = "finite, normalised, shuffled, unscrambled inputs"
    shown = [w for w in warnings if w.severity != "info"]
    if shown:
        return verdict(
            "batch_stats", status,
            "Decoding the batches exactly as the model receives them shows: "
            + " ".join(w.message for w in shown) + " The net can only learn what it is fed.",
            observed=observed, expected=expected, evidence=evidence,
            fix=" ".join(dict.fromkeys(w.fix for w in shown)),
        )  # fmt: skip
    return verdict(
        "batch_stats", "pass",
        f"The first {len(views)} batches, decoded exactly as the model receives them, look "
        "healthy: finite, normalised values, mixed classes, no duplicates or scrambled pixels."
        + " " + " ".join(w.message for w in warnings),
        observed=observed, expected=expected, evidence=evidence,
    )  # fmt: skip
