"""What the targets are and what outputs *should* score: the trusted references of the checks.

Every expected loss is the user's own `loss_fn` evaluated on constructed outputs (the label
prior, the target mean, perfect predictions), so reductions, class weights and label smoothing
are accounted for without guessing which loss it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from recipe_core.batch import IGNORE_INDEX
from recipe_core.checks.context import CheckContext, SkipCheck, UserCodeError, WorkKey

MARGINS = tuple(float(m) for m in np.geomspace(0.25, 64, 17))  # logit margins for the sweep


@dataclass(frozen=True)
class Targets:
    kind: str  # "classes" (int labels) | "probs" (float targets shaped like the output) | "values"
    class_dim: int  # dim of the output that indexes classes (-1 for values)
    width: int  # output size along class_dim (number of classes the model emits)
    soft: bool = False  # probs that sum to 1 per sample (soft labels) rather than independent bits
    prior: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)  # (width,)
    space: str = "logits"  # what loss_fn takes: "logits", "logprobs" (the model ends in a
    # log_softmax: NLLLoss), or "probs" (BCELoss)
    row_sums: tuple[float, float] = (1.0, 1.0)  # (min, max) of the soft targets' row sums


def describe_targets(ctx: CheckContext, out: torch.Tensor, y: torch.Tensor) -> Targets:
    """Classify the targets `y` against one model output `out`."""
    if ctx.task == "regression" or (ctx.task == "sequence" and torch.is_floating_point(y)):
        return Targets("values", -1, out.shape[-1] if out.ndim > 1 else 1)
    class_dim = -1 if ctx.task == "sequence" or out.ndim < 2 else 1
    width = int(out.shape[class_dim]) if out.ndim > 1 else 1  # (B,): one logit per sample
    if y.numel() == out.numel() and (torch.is_floating_point(y) or _multi_hot(ctx, y)):
        rows = _prob_rows(ctx, out, class_dim)
        sums = rows.sum(1)
        soft = _soft(ctx, rows, width)
        prior = rows.mean(0).clamp(1e-4, 1 - 1e-4).cpu().numpy()
        span = (float(sums.min()), float(sums.max()))
        return Targets("probs", class_dim, width, soft, prior, row_sums=span)
    return Targets("classes", class_dim, width, False, _class_prior(ctx, width))


def _multi_hot(ctx: CheckContext, y: torch.Tensor) -> bool:
    """Integer 0/1 targets shaped like the outputs of a multi-label task."""
    return ctx.task == "multilabel" and bool(((y == 0) | (y == 1)).all())


def _soft(ctx: CheckContext, rows: torch.Tensor, width: int) -> bool:
    """Soft labels (one distribution per sample) rather than independent bits: rows that sum
    to one, or, outside a multi-label task, fractional targets (label smoothing, a teacher's
    probabilities) even when their rows do not sum to one (that is a bug loss_function names).
    Multi-hot 0/1 rows under the default task are read as independent labels."""
    if ctx.task == "multilabel" or width < 2:
        return False
    if bool(torch.allclose(rows.sum(1), torch.ones((), dtype=rows.dtype), atol=1e-3)):
        return True
    return not bool(((rows == 0) | (rows == 1)).all())


def _class_prior(ctx: CheckContext, width: int) -> np.ndarray:
    return class_prior(torch.cat([y.reshape(-1) for _, y in ctx.batches]), width)


def class_prior(labels: torch.Tensor, width: int) -> np.ndarray:
    """Class frequencies of integer `labels` (ignored and out-of-range labels dropped)."""
    labels = labels.reshape(-1).long()
    labels = labels[(labels >= 0) & (labels < width)]
    counts = torch.bincount(labels, minlength=width)[:width].double().cpu().numpy()
    prior: np.ndarray = (counts + 1e-3) / (counts.sum() + 1e-3 * width)  # log p stays finite
    return prior


def _prob_rows(ctx: CheckContext, out: torch.Tensor, class_dim: int) -> torch.Tensor:
    """(N, width) float targets of every gathered batch, classes last."""
    per_sample = out.numel() // out.shape[0]
    if out.ndim == 1:  # one logit per sample
        return torch.cat([y.reshape(-1, 1) for _, y in ctx.batches]).double()
    rows = [
        y.reshape((y.shape[0], *out.shape[1:])).movedim(class_dim, -1)
        for _, y in ctx.batches
        if y.numel() == y.shape[0] * per_sample
    ]
    return torch.cat([r.reshape(-1, r.shape[-1]) for r in rows]).double()


def label_problems(ctx: CheckContext, out: torch.Tensor, y: torch.Tensor, t: Targets) -> list[str]:
    """What makes the loss meaningless before it is even computed: shapes and label ranges."""
    if t.kind == "values":
        return []
    problems = []
    if ctx.task == "multilabel" and t.kind == "classes" and t.width > 1:
        problems.append(
            f"task='multilabel' needs multi-hot targets shaped like the outputs "
            f"{tuple(out.shape)} (one 0/1 per label), but these are class indices "
            f"{tuple(y.shape)} spanning {int(y.min())}..{int(y.max())}"
        )
        return problems
    declared = ctx.num_classes
    binary_ok = t.kind == "probs" and t.width == 1 and declared == 2
    if declared is not None and declared != t.width and not binary_ok:
        problems.append(
            f"the model emits {t.width} outputs per sample (dim {t.class_dim} of "
            f"{tuple(out.shape)}) but you declared num_classes={declared}"
        )
    limit = declared if declared is not None and not binary_ok else t.width
    if t.kind == "classes":
        if y.numel() * t.width != out.numel():
            problems.append(
                f"labels {tuple(y.shape)} do not line up with outputs {tuple(out.shape)}: expected "
                f"one label per output row of {t.width} scores"
            )
        for _, yb in ctx.batches:
            valid = yb[yb != IGNORE_INDEX]
            if valid.numel() and (int(valid.min()) < 0 or int(valid.max()) >= min(limit, t.width)):
                lo, hi = _label_span(ctx)
                problems.append(f"labels span {lo}..{hi}, outside [0, {min(limit, t.width)})")
                break
    elif float(y.min()) < 0 or float(y.max()) > 1:
        problems.append(f"float targets span {float(y.min()):.3g}..{float(y.max()):.3g}, "
                        "outside the [0, 1] a probability/BCE target needs")  # fmt: skip
    return problems


def _label_span(ctx: CheckContext) -> tuple[int, int]:
    labels = torch.cat([y.reshape(-1) for _, y in ctx.batches])
    labels = labels[labels != IGNORE_INDEX]
    return int(labels.min()), int(labels.max())


def batch_prior(out: torch.Tensor, y: torch.Tensor, t: Targets) -> np.ndarray | None:
    """The label prior of this batch alone (classes and probability targets)."""
    if t.kind == "classes":
        return class_prior(y, t.width)
    if t.kind == "probs":
        rows = y.reshape(out.shape).movedim(t.class_dim, -1).reshape(-1, t.width).double()
        prior: np.ndarray = rows.mean(0).clamp(1e-4, 1 - 1e-4).cpu().numpy()
        return prior
    return None


def prior_output(
    out: torch.Tensor, y: torch.Tensor, t: Targets, prior: np.ndarray | None = None
) -> torch.Tensor:
    """Outputs that predict the label prior (log p; logit p for BCE; p itself for losses that
    take probabilities) or the target mean."""
    if t.kind == "values":
        if y.numel() == out.numel():
            mean = y.reshape(out.shape).float().mean(0, keepdim=True)
            return mean.expand_as(out).to(out.dtype)
        return torch.full_like(out, float(y.float().mean()))
    p = torch.as_tensor(t.prior if prior is None else prior, dtype=out.dtype, device=out.device)
    if t.space == "probs":
        logits = p
    elif t.kind == "probs" and not t.soft:
        logits = torch.log(p) - torch.log1p(-p)
    else:
        logits = torch.log(p)
    shape = [1] * out.ndim
    shape[t.class_dim] = t.width
    return in_space(logits.reshape(shape), t).expand_as(out)


def perfect_output(
    out: torch.Tensor, y: torch.Tensor, t: Targets, margin: float, centred: bool
) -> torch.Tensor:
    """Confident, correct outputs: margin * one-hot (centred: margin * (2 one-hot - 1))."""
    if t.kind == "values":
        return y.reshape(out.shape).to(out.dtype)
    if t.kind == "probs":
        target = y.reshape(out.shape).to(out.dtype)
    else:
        moved = out.movedim(t.class_dim, -1)
        labels = y.reshape(moved.shape[:-1]).long()
        keep = (labels != IGNORE_INDEX).unsqueeze(-1).to(out.dtype)
        onehot = F.one_hot(labels.clamp(0, t.width - 1), t.width).to(out.dtype) * keep
        target = onehot.movedim(-1, t.class_dim)
    return in_space(margin * (2 * target - 1) if centred else margin * target, t)


def in_space(logits: torch.Tensor, t: Targets) -> torch.Tensor:
    """Constructed logits as the model would emit them: log-probabilities when the model ends
    in a log_softmax (what NLLLoss takes), else unchanged."""
    return logits.log_softmax(t.class_dim) if t.space == "logprobs" else logits


def uniform_output(out: torch.Tensor, t: Targets) -> torch.Tensor:
    """An undecided output: zero logits, or equal probabilities for probability losses."""
    if t.space != "probs":
        return in_space(torch.zeros_like(out), t)
    return torch.full_like(out, 0.5 if t.kind == "probs" and not t.soft else 1 / t.width)


def outputs_are_log_probabilities(out: torch.Tensor, t: Targets) -> bool:
    """A log_softmax already applied inside the model: every row's logsumexp is 0."""
    if t.kind == "values" or (t.kind == "probs" and not t.soft) or t.width < 2:
        return False
    lse = out.detach().double().logsumexp(t.class_dim)
    return bool(out.max() <= 1e-6) and bool(torch.allclose(lse, torch.zeros_like(lse), atol=1e-4))


def outputs_are_probabilities(out: torch.Tensor, t: Targets) -> bool:
    """Softmax (non-negative rows summing to one) or sigmoid (every value in [0, 1]) already
    applied inside the model."""
    if t.kind == "probs" and not t.soft:
        return out.numel() >= 8 and bool(out.min() >= 0) and bool(out.max() <= 1)
    if t.width < 2 or t.kind == "values":
        return False
    sums = out.detach().sum(t.class_dim)
    return bool(out.min() >= -1e-6) and bool(torch.allclose(sums, torch.ones_like(sums), atol=1e-3))


@dataclass(frozen=True)
class Gate:
    """First contact: one forward pass and one loss on a real batch, before any check trusts
    the loss. Out-of-range labels are caught here, before the loss sees them (on CUDA they would
    kill the process with a device-side assert)."""

    out_shape: tuple[int, ...] = ()
    targets: Targets | None = None
    problems: tuple[str, ...] = ()  # shapes/labels/values that make the loss meaningless
    error: str = ""  # the user's model or loss raised
    loss: float = math.nan  # loss of the fresh model on the first batch
    traceback: str = ""  # the user's own lines that raised, when `error`

    @property
    def forward_ok(self) -> bool:
        return self.targets is not None

    @property
    def loss_ok(self) -> bool:
        return self.forward_ok and not self.problems and not self.error


GATE: WorkKey[Gate] = WorkKey("gate")


def gate(ctx: CheckContext) -> Gate:
    return ctx.cache.get(GATE, lambda: _open_gate(ctx))


def require(ctx: CheckContext, *, loss: bool) -> Targets:
    """The targets, or a skip naming the first failure the user should fix."""
    found = gate(ctx)
    if found.targets is None:
        raise SkipCheck(f"the model does not run on a real batch ({found.error})")
    if loss and not found.loss_ok:
        raise SkipCheck("the loss is not trustworthy until labels_and_outputs passes")
    return found.targets


def _open_gate(ctx: CheckContext) -> Gate:
    x, y = ctx.batches[0]
    try:
        model = ctx.build().train()
        with torch.no_grad():
            out = ctx.forward(model, x)
    except UserCodeError as error:
        return Gate(error=str(error), traceback=error.traceback)
    t = describe_targets(ctx, out, y)
    problems = label_problems(ctx, out, y, t)
    if not bool(torch.isfinite(out).all()):
        problems.append("the fresh model's outputs contain NaN/Inf")
    if problems:
        return Gate(tuple(out.shape), t, tuple(problems))
    try:
        with torch.no_grad():
            value = float(ctx.loss(out, y))
    except UserCodeError as error:
        return Gate(tuple(out.shape), t, (), str(error), traceback=error.traceback)
    t = _with_space(ctx, out, y, t)
    if not math.isfinite(value):
        return Gate(
            tuple(out.shape), t, (f"loss_fn returns {value} on the fresh model",), "", value
        )
    return Gate(tuple(out.shape), t, (), "", value)


def _with_space(ctx: CheckContext, out: torch.Tensor, y: torch.Tensor, t: Targets) -> Targets:
    """A loss that rejects logits outside [0, 1] (BCELoss) takes probabilities: references
    for it are built as probabilities. A model that ends in log_softmax emits normalised
    log-probabilities (the LogSoftmax + NLLLoss idiom): references are normalised the same way,
    since raw constructed logits would reward NLLLoss for unbounded scores no such model emits."""
    if t.kind == "values":
        return t
    if outputs_are_log_probabilities(out, t):
        return replace(t, space="logprobs")
    try:
        with torch.no_grad():
            ctx.loss(perfect_output(out, y, t, 1.0, True), y)
    except UserCodeError:
        return replace(t, space="probs")
    return t
