"""Train mode vs eval mode on the same batch: dropout and BatchNorm set up to hurt.

`nn.Dropout(0.9)` written as "keep 0.9" (TF1's keep_prob) drops 90 % of the units, and a
BatchNorm whose running statistics never follow the batches (momentum=0, "to freeze it") is
wrong at eval; both still train. On the same weights and batch, the two modes then disagree by
much of what training achieved. Healthy dropout (p 0.1-0.5) and BatchNorm cost a fraction:
measured on digits after 40 Adam steps, dropout 0.5 gives back 11 % of the eval-mode progress,
0.7 gives 23 %, 0.9 gives 108 %; BatchNorm's eval mode loses 2-4 %, with momentum=0 82 %.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from recipe_core.checks.context import Batch, CheckContext, SkipCheck
from recipe_core.checks.layers import trained
from recipe_core.checks.result import CheckResult, verdict
from recipe_core.checks.targets import require

MASKS = 8  # train-mode passes averaged: dropout draws a new mask each time
LOST, SEVERE = 0.6, 1.0  # share of train mode's progress eval mode gives back: warn, fail
RELEVANT = 0.02  # ... and a gap of at least 2 % of the loss; smaller gaps are noise
# A layer zeroing this share of its inputs in train mode only: dropout rates are 0.1-0.5 (a
# train-mode loss within a quarter of the eval progress); 0.8/0.9 is "keep" written as "drop".
DROPPED = 0.6
FIXES = {
    "train": "nn.Dropout(p) takes the probability to drop, not to keep: nn.Dropout(0.9) zeroes "
    "90% of the units. Write nn.Dropout(1 - keep_prob) (e.g. 0.1) and keep p at 0.5 or below.",
    "eval": "Leave BatchNorm's momentum at its default 0.1 (in PyTorch it is the weight of the new "
    "batch, in Keras the weight of the old one); to freeze BatchNorm for fine-tuning call "
    ".eval() on the BatchNorm layers instead of setting momentum=0.",
}


@dataclass(frozen=True)
class ModeLosses:
    train: float  # mean train-mode loss over MASKS passes
    eval: float  # eval-mode loss
    noise: float  # spread of train-mode outputs across passes / eval outputs' across samples


def mode_losses(ctx: CheckContext, model: nn.Module, batch: Batch) -> ModeLosses:
    """Both modes' loss on `batch`, on a copy (train-mode passes move BatchNorm's statistics)."""
    model, (x, y) = copy.deepcopy(model), batch
    torch.manual_seed(ctx.seed)
    with torch.no_grad():
        seen = ctx.forward(model.eval(), x)
        eval_loss = float(ctx.loss(seen, y))
        outs = [ctx.forward(model.train(), x) for _ in range(MASKS)]
        train_loss = sum(float(ctx.loss(o, y)) for o in outs) / MASKS
    stacked = torch.stack(outs).float()
    noise = (stacked - stacked.mean(0)).square().mean().sqrt()
    spread = (seen.float() - seen.float().mean(0)).square().mean().sqrt()
    return ModeLosses(train_loss, eval_loss, float(noise / spread.clamp_min(1e-12)))


def train_only_zeroing(ctx: CheckContext, model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Per leaf module that zeroes nothing in eval mode, the share of its non-zero inputs it
    zeroes in train mode: a dropout layer's rate, measured (F.dropout inside a layer included)."""
    model = copy.deepcopy(model)
    train, evaluation = _zeroing(ctx, model.train(), x), _zeroing(ctx, model.eval(), x)
    # a layer that zeroes nothing at eval (a ReLU zeroes in both modes, on inputs that differ
    # where BatchNorm sits upstream)
    rates = {name: share for name, share in train.items() if evaluation.get(name, 1.0) == 0.0}
    return {name: round(rate, 4) for name, rate in rates.items() if rate > 0.01}


def _zeroing(ctx: CheckContext, model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    live: dict[str, torch.Tensor] = {}  # non-zero mask of each module's input, before it runs
    shares: dict[str, float] = {}

    def before(name: str) -> Callable[[nn.Module, Any], None]:
        def hook(_: nn.Module, args: Any) -> None:
            if args and isinstance(args[0], torch.Tensor) and args[0].is_floating_point():
                live.setdefault(name, args[0].detach() != 0)  # a copy: in-place ops leave it

        return hook

    def after(name: str) -> Callable[[nn.Module, Any, Any], None]:
        def hook(_: nn.Module, args: Any, out: Any) -> None:
            mask = live.get(name)
            if name in shares or mask is None or not isinstance(out, torch.Tensor):
                return
            if out.shape == mask.shape and bool(mask.any()):
                shares[name] = float((mask & (out.detach() == 0)).sum() / mask.sum())

        return hook

    leaves = [(n, m) for n, m in model.named_modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_pre_hook(before(n)) for n, m in leaves]
    handles += [m.register_forward_hook(after(n)) for n, m in leaves]
    torch.manual_seed(ctx.seed)
    try:
        with torch.no_grad():
            ctx.forward(model, x)
    finally:
        for handle in handles:
            handle.remove()
    return shares


def check_train_eval_gap(ctx: CheckContext) -> CheckResult:
    require(ctx, loss=True)
    batch = ctx.train_batches[0]
    fresh = ctx.build()
    dropped = train_only_zeroing(ctx, fresh, batch[0])
    init = mode_losses(ctx, fresh, batch)
    trainer = trained(ctx)
    if trainer.stopped == "diverged":
        raise SkipCheck("the shared training run diverged, so its modes cannot be compared "
                        "(optimizer_sanity says why)")  # fmt: skip
    after, steps = mode_losses(ctx, trainer.model, batch), len(trainer.losses)
    # eval mode's loss against train mode's own progress (BatchNorm's eval mode at init uses
    # the 0/1 statistics it starts with, so only train mode's start is a fair reference)
    progress = init.train - after.train
    gap = after.eval - after.train
    lost = gap / progress if progress > 0 else math.inf
    heavy = {name: rate for name, rate in dropped.items() if rate >= DROPPED}
    evidence = {"at_init": asdict(init), "after": asdict(after), "steps": steps,
                "train_only_zeroing": dropped,
                "eval_lost_share": lost if math.isfinite(lost) else None}  # fmt: skip
    observed = (f"after {steps} steps: train mode {after.train:.4g}, eval mode {after.eval:.4g}; "
                f"largest train-only zeroing {max(dropped.values(), default=0.0):.0%}")  # fmt: skip
    expected = (f"dropout rates below {DROPPED:.0%}; eval mode within {LOST:.0%} of what "
                "training gained")  # fmt: skip
    if heavy and after.train > after.eval:
        return verdict(
            "train_eval_gap", "fail" if max(heavy.values()) >= 0.8 else "warn",
            _dropout_summary(heavy, init, after, steps),
            observed=observed, expected=expected, evidence=evidence, fix=FIXES["train"],
        )  # fmt: skip
    if gap > RELEVANT * abs(after.train) and lost >= LOST:
        return verdict(
            "train_eval_gap", "fail" if lost >= SEVERE else "warn",
            _batchnorm_summary(after, progress, lost, steps),
            observed=observed, expected=expected, evidence=evidence, fix=FIXES["eval"],
        )  # fmt: skip
    return verdict(
        "train_eval_gap", "pass",
        f"On the same batch after {steps} steps, train mode ({after.train:.3g}) and eval mode "
        f"({after.eval:.3g}) agree, and no layer drops more than {DROPPED:.0%} of its inputs "
        "in train mode: dropout and normalisation behave as intended.",
        observed=observed, expected=expected, evidence=evidence,
    )  # fmt: skip


def _dropout_summary(
    heavy: dict[str, float], init: ModeLosses, after: ModeLosses, steps: int
) -> str:
    layers = ", ".join(f"{name!r} zeroes {rate:.0%}" for name, rate in heavy.items())
    return (f"In train mode {layers} of its inputs (measured on a batch), and healthy dropout "
            "drops 10-50%. Train-mode outputs vary across masks by "
            f"{after.noise:.2g}x their spread across samples (at init {init.noise:.2g}x), and "
            f"the same batch scores {after.train:.4g} in train mode against {after.eval:.4g} in "
            f"eval mode after {steps} steps: the net trains on mostly noise. A rate written as "
            "the keep probability (TF1's keep_prob) is the usual cause.")  # fmt: skip


def _batchnorm_summary(after: ModeLosses, progress: float, lost: float, steps: int) -> str:
    share = f"{lost:.0%}" if math.isfinite(lost) else "more than all"
    return (f"On the same weights and batch after {steps} steps, eval mode scores "
            f"{after.eval:.4g} and train mode {after.train:.4g}: eval mode gives back {share} "
            f"of the {max(progress, 0):.3g} train mode's loss fell. BatchNorm's running "
            "statistics do not follow the batches (momentum=0 never updates them), so "
            "validation numbers and deployed predictions are wrong.")  # fmt: skip
