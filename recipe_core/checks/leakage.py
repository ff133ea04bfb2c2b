"""Too good to be true: the answer is in the inputs.

A target copied into the features (a forgotten label column, a class mark painted into the
image, a sequence target that is a token the model already sees) lets a fresh model reach a
held-out loss near the floor within a few steps, and the score will not survive data where the
target is unknown. What separates a leak from an easy task: an easy task still needs many
inputs combined and many steps, so after LEAK_STEPS steps it has closed only part of the gap
from the prior to the floor, and no single input carries the target; a leak is a single input
that is a function of the target (|corr| ~ 1, or a copy rate ~ 100 %).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from recipe_core.batch import IGNORE_INDEX
from recipe_core.checks.context import Batch, CheckContext, SkipCheck
from recipe_core.checks.result import CheckResult, verdict
from recipe_core.checks.targets import Targets, require
from recipe_core.checks.training import heldout_references, real_trainer

NAME = "too_good_to_be_true"
LEAK_STEPS = 40  # "within a few steps": the shared run's held-out loss after this many steps
LEAK_GAP = 0.995  # closing this share of the prior -> floor gap that fast is too good (honest
# digits under SGD with momentum close 97 % in 40 steps; a leak ~100 %)
LEAK_CORR = 0.99  # one input whose |corr| with the target reaches this determines it
LEAK_COPY = 0.98  # share of positions whose target equals the input token k steps back
MAX_FEATURES = 4096  # per-sample input values scanned (more: images too large to scan)
MIN_PER_CLASS = 4  # samples per class the correlation ratio needs (fewer: it reads noise)
MIN_PAIRS = 64  # (target, earlier token) pairs a lag needs before its copy rate counts


@dataclass(frozen=True)
class Leak:
    where: str  # "column 10", "x[:, 0, 0, 3]", "y[:, t] == x[:, t-1]"
    score: float  # |corr| with the target, or the copy rate


@dataclass(frozen=True)
class Scan:
    leaks: tuple[Leak, ...]
    what: str  # what was scanned, for the verdict
    best: float  # the highest |corr| / copy rate of any input (nan: nothing scanned)


def check_too_good(ctx: CheckContext) -> CheckResult:
    t = require(ctx, loss=True)
    trainer = real_trainer(ctx)
    held = trainer.heldout_loss(LEAK_STEPS)
    if trainer.stopped or not math.isfinite(held):
        raise SkipCheck("training diverged (see optimizer_sanity)")
    prior, floor = heldout_references(ctx, t)
    gap = prior - floor
    closed = (prior - held) / gap if math.isfinite(gap) and gap > 1e-6 * max(1, abs(prior)) else 0
    scan = scan_inputs(ctx, t)
    evidence = {"heldout_loss": held, "prior_loss": prior, "floor": floor, "steps": LEAK_STEPS,
                "gap_closed": closed, "scanned": scan.what, "best_score": scan.best,
                "leaks": [(leak.where, leak.score) for leak in scan.leaks]}  # fmt: skip
    loss_seen = (
        f"held-out loss {held:.4g} after {LEAK_STEPS} steps (prior {prior:.4g}, floor "
        f"{floor:.3g}: {closed:.0%} of the gap closed)"
    )
    if scan.leaks:
        return _leak_verdict(scan, loss_seen, evidence)
    expected = f"< {LEAK_GAP:.0%} of the gap after {LEAK_STEPS} steps; no input with |corr| ~ 1"
    if closed >= LEAK_GAP:
        return verdict(
            NAME, "warn",
            f"After only {LEAK_STEPS} steps the held-out loss is {held:.3g}, {closed:.0%} of the "
            f"way from predicting the prior ({prior:.3g}) to perfect predictions ({floor:.3g}). "
            "Honest data, even easy data, needs many inputs combined and many more steps to "
            "get there; this fast it usually means the target (or something computed from it) "
            f"is among the inputs. No single input gives it away ({scan.what}), so look for a "
            "combination: an ID or timestamp that encodes the label, a feature built with the "
            "target (target encoding over all rows), duplicates across the split.",
            observed=loss_seen, expected=expected, evidence=evidence,
            fix="List how each input column is made; drop any that uses the target or is "
            "only known after it, and deduplicate train vs held-out samples.",
        )  # fmt: skip
    return verdict(
        NAME, "pass",
        f"After {LEAK_STEPS} steps the held-out loss is {held:.3g}, {closed:.0%} of the way "
        f"from the prior ({prior:.3g}) to the floor ({floor:.3g}): learning, not yet perfect, "
        f"as honest data looks. No single input gives the target away ({scan.what}).",
        observed=loss_seen, expected=expected, evidence=evidence,
    )  # fmt: skip


def _leak_verdict(scan: Scan, loss_seen: str, evidence: dict[str, Any]) -> CheckResult:
    shown = ", ".join(f"{leak.where} ({leak.score:.3f})" for leak in scan.leaks[:4])
    more = f" and {len(scan.leaks) - 4} more" if len(scan.leaks) > 4 else ""
    kind = "copy rate" if scan.leaks[0].where.startswith("y[") else "|corr| with the target"
    return verdict(
        NAME, "fail",
        f"The target is in the inputs: {shown}{more} ({kind}; {scan.what}). A single input "
        "that is a function of the target is the target itself handed to the model; an easy "
        "task still needs many inputs combined, so each of its inputs stays well below 1. "
        "Whatever the loss says now or later, the model learns to read the answer, which is "
        f"absent wherever the target is unknown ({loss_seen}).",
        observed=shown + more, expected=f"every input below {LEAK_CORR:g}, no copied token",
        evidence=evidence,
        fix="Drop the target (and anything computed from it) from the input columns; for "
        "sequences, make y[:, t] the token after x[:, t] (y = seq[1:], x = seq[:-1]); never "
        "draw labels into the inputs.",
    )  # fmt: skip


def scan_inputs(ctx: CheckContext, t: Targets) -> Scan:
    """Inputs that alone determine the target: a feature with |corr| ~ 1 (2-D tables and
    small images, values flattened), or sequence targets equal to a visible token."""
    joined = _joined(ctx.batches)
    if joined is None:
        return Scan((), "ragged batches: not scanned", math.nan)
    x, y = joined
    if not torch.is_floating_point(x) and x.ndim == 2 and y.shape == x.shape:
        return _copy_scan(x, y)
    if torch.is_floating_point(y) and y.shape == x.shape:  # reconstruction, denoising
        return Scan((), "targets shaped like the inputs (reconstruction): not scanned", math.nan)
    if torch.is_floating_point(x) and x[0].numel() <= MAX_FEATURES:
        return _feature_scan(x.reshape(len(x), -1), y, t, tuple(x.shape[1:]))
    return Scan((), "inputs neither a table, a small image nor token ids: not scanned", math.nan)


def _joined(batches: list[Batch]) -> Batch | None:
    try:
        return torch.cat([b[0] for b in batches]).cpu(), torch.cat([b[1] for b in batches]).cpu()
    except RuntimeError:  # sequences of varying length
        return None


def _copy_scan(x: torch.Tensor, y: torch.Tensor) -> Scan:
    """Share of positions with y[:, t] == x[:, t-k], for every lag k >= 0 (the model sees
    x[:, :t+1] when it predicts y[:, t], so such a target is already in view)."""
    rates = []
    for k in range(x.shape[1]):
        target, seen = y[:, k:], x[:, : x.shape[1] - k]
        keep = target != IGNORE_INDEX
        pairs = int(keep.sum())
        rates.append(float((target == seen)[keep].float().mean()) if pairs >= MIN_PAIRS else 0.0)
    leaks = [Leak(f"y[:, t] == x[:, t-{k}]", r) for k, r in enumerate(rates) if r >= LEAK_COPY]
    what = f"copy rates at lags 0..{len(rates) - 1}, highest {max(rates):.2f}"
    return Scan(tuple(sorted(leaks, key=lambda leak: -leak.score)), what, max(rates))


def _feature_scan(x: torch.Tensor, y: torch.Tensor, t: Targets, shape: tuple[int, ...]) -> Scan:
    """|corr| of every input value with the target: Pearson's r against each target column,
    or for class labels the correlation ratio (the |corr| with the best function of the
    label: 1 when the value is the same for every sample of a class)."""
    x = x.double()
    if t.kind == "classes" and y.numel() == len(y):
        scores = _correlation_ratio(x, y.reshape(-1).long())
    elif t.kind != "classes":
        scores = _pearson(x, y.reshape(len(y), -1).double())
    else:
        return Scan((), "several labels per sample: not scanned", math.nan)
    if scores is None:
        return Scan((), "too few samples per class to scan the inputs", math.nan)
    flagged = torch.nonzero(scores >= LEAK_CORR).flatten().tolist()
    leaks = sorted((Leak(_name(i, shape), float(scores[i])) for i in flagged),
                   key=lambda leak: -leak.score)  # fmt: skip
    best = float(scores.max()) if scores.numel() else math.nan
    what = f"{x.shape[1]} input values x {len(x)} samples, highest |corr| {best:.2f}"
    return Scan(tuple(leaks), what, best)


def _correlation_ratio(x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor | None:
    """(F,) eta = sqrt(between-class variance / total variance) per input value."""
    keep = labels != IGNORE_INDEX
    x, labels = x[keep], labels[keep]
    classes, index = torch.unique(labels, return_inverse=True)
    counts = torch.bincount(index).double()
    if len(classes) < 2 or len(x) < MIN_PER_CLASS * len(classes):
        return None
    centred = x - x.mean(0)
    sums = torch.zeros(len(classes), x.shape[1], dtype=x.dtype).index_add_(0, index, centred)
    between = (sums**2 / counts[:, None]).sum(0)
    total = (centred**2).sum(0)
    return _ratio(between, total).sqrt()


def _pearson(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(F,) the largest |Pearson r| of each input value with any target column."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    cov = xc.T @ yc  # (F, targets)
    norms = xc.norm(dim=0)[:, None] * yc.norm(dim=0)[None, :]
    r = _ratio(cov.abs(), norms)
    return r.max(1).values if r.numel() else torch.zeros(x.shape[1], dtype=x.dtype)


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """num / den, 0 where den is ~0 (a constant input or target says nothing)."""
    scale = float(den.max()) if den.numel() else 0.0
    ok = den > 1e-12 * max(scale, 1e-300)
    return torch.where(ok, num / den.clamp_min(1e-300), torch.zeros_like(num))


def _name(index: int, shape: tuple[int, ...]) -> str:
    if len(shape) == 1:
        return f"column {index}"
    where = ", ".join(str(int(i)) for i in np.unravel_index(index, shape))
    return f"x[:, {where}]"
