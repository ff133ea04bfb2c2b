"""First contact: labels in [0, C), the model emits exactly C outputs, the loss runs."""

from __future__ import annotations

import torch

from recipe_core.batch import IGNORE_INDEX
from recipe_core.checks.context import CheckContext
from recipe_core.checks.result import CheckResult, verdict
from recipe_core.checks.targets import Targets, gate


def _describe_labels(ctx: CheckContext, t: Targets) -> tuple[str, dict[str, object]]:
    ys = torch.cat([y.reshape(-1) for _, y in ctx.batches])
    if t.kind == "classes":
        valid = ys[ys != IGNORE_INDEX].long()
        lo, hi = int(valid.min()), int(valid.max())
        counts = torch.bincount(valid - lo).tolist()
        return f"labels {lo}..{hi}", {"label_min": lo, "label_counts": counts}
    low, high = float(ys.min()), float(ys.max())
    return f"targets {low:.3g}..{high:.3g}", {"target_min": low, "target_max": high}


def _expected(ctx: CheckContext, t: Targets) -> str:
    if t.kind == "values":
        return "outputs and targets the loss can compare"
    width = ctx.num_classes if ctx.num_classes is not None else t.width
    if t.kind == "probs" or ctx.task == "multilabel":
        return f"targets in [0, 1] and {width} outputs per sample"
    return f"labels in [0, {width}) and {width} outputs per sample"


def check_labels_and_outputs(ctx: CheckContext) -> CheckResult:
    found = gate(ctx)
    if found.targets is None:
        return verdict(
            "labels_and_outputs", "fail",
            f"The fresh model could not process the first batch from your loader: {found.error}. "
            "Every other check needs one forward pass to work.",
            observed=found.error, expected="model(x) returns a float tensor",
            fix="Run model(x) on one batch from the loader and fix the error (input shape, "
            "dtype, device, channel count).",
            evidence={"traceback": found.traceback},
        )  # fmt: skip
    t = found.targets
    labels, evidence = _describe_labels(ctx, t)
    evidence["output_shape"] = list(found.out_shape)
    observed = f"outputs {tuple(found.out_shape)}; {labels}"
    expected = _expected(ctx, t)
    if found.problems or found.error:
        problems = list(found.problems) + ([found.error] if found.error else [])
        if found.traceback:
            evidence["traceback"] = found.traceback
        return verdict(
            "labels_and_outputs", "fail",
            "Labels and outputs do not fit together: " + "; ".join(problems) + ". The loss "
            "would index the wrong class, crash, or silently learn garbage.",
            observed=observed, expected=expected, evidence=evidence,
            fix=_fix(ctx, t, problems),
        )  # fmt: skip
    return verdict(
        "labels_and_outputs", "pass",
        f"One real batch through the fresh model gives outputs {tuple(found.out_shape)} for "
        f"{labels}, and the loss computes ({found.loss:.4g}): shapes and label ranges line up.",
        observed=observed, expected=expected, evidence=evidence,
    )  # fmt: skip


def _fix(ctx: CheckContext, t: Targets, problems: list[str]) -> str:
    fixes = []
    text = " ".join(problems)
    if "multi-hot" in text:
        fixes.append(
            "Yield one float 0/1 per label, shaped like the outputs (your multi-hot vector, "
            "e.g. F.one_hot(labels, C).float() summed over the labels on); if each sample has "
            "exactly one class, use task='classification' and CrossEntropyLoss."
        )
    if "outside [0" in text:
        fixes.append("Map labels to 0..C-1 (subtract 1 from 1-based labels; build the class "
                     "index from the sorted class names).")  # fmt: skip
    if "outputs per sample" in text:
        declared = ctx.num_classes if ctx.num_classes is not None else t.width
        fixes.append(
            f"Make the final layer emit exactly {declared} outputs "
            f"(nn.Linear(..., {declared})), or declare the right num_classes."
        )
    if "NaN" in text or "returns nan" in text.lower():
        fixes.append("Find where NaN/Inf enter (inputs, init, a log or division in forward).")
    if "raised" in text:
        fixes.append("Call loss_fn(model(x), y) on one batch and fix the error it raises.")
    if "line up" in text:
        fixes.append("Reshape outputs to (B, C) (or (B, C, ...)) and labels to (B,) (or (B, ...)).")
    return " ".join(fixes) or "Make outputs and targets agree in shape and range."
