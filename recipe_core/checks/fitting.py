"""Fitting: real inputs must beat zeroed ones (the input-independent baseline), and a tiny batch
must be overfit to (near) its lowest possible loss ("overfit one batch").

Both give a slow-but-correct setup (raw-scale regression targets under Adam 3e-4 needs thousands
of steps) room to show progress, and stop early on success or on a plateau; what a check cannot
decide within its time slice is a skip, never a guess."""

from __future__ import annotations

import time

import torch

from recipe_core.checks.context import Batch, CheckContext, SkipCheck, UserCodeError
from recipe_core.checks.loss import loss_floor
from recipe_core.checks.result import CheckResult, verdict
from recipe_core.checks.targets import Targets, batch_prior, prior_output, require
from recipe_core.checks.training import Trainer, evaluate, real_trainer, tiny_batch

BASELINE_STEPS = (20, 40, 80, 160, 320, 640, 1280)  # held-out comparisons, early exit
BASELINE_MARGIN = 0.05  # real inputs must beat zeroed ones by this fraction of the zero loss
TINY = 16  # samples to overfit (sequences: TINY_SEQUENCES)
TINY_SEQUENCES = 2  # "overfit a single batch of only a few examples (as little as two)"
OVERFIT_STEPS = 5000  # most optimizer steps spent overfitting (stops early when reached)
OVERFIT_GOAL = 0.1  # reach floor + this fraction of (baseline - floor)
PLATEAU = 0.01  # the last half of the steps closed < 1 % of the remaining gap: stuck
CHECK_SECONDS = 20.0  # time slice of each of these checks; past it the verdict is a skip
SHOWN = 16  # labels/predictions recorded per step


def _time_slice(ctx: CheckContext) -> float:
    return time.monotonic() + min(CHECK_SECONDS, ctx.seconds_left())


def _out_of_time(what: str) -> SkipCheck:
    return SkipCheck(f"time budget: {what} was still undecided after {CHECK_SECONDS:g} s")


def check_input_independent(ctx: CheckContext) -> CheckResult:
    require(ctx, loss=True)
    real = real_trainer(ctx)
    zero = Trainer(ctx, ctx.build(), ctx.train_batches, zero_inputs=True)
    held = ctx.heldout_batches or ctx.train_batches
    rows: list[tuple[int, float, float]] = []
    deadline = _time_slice(ctx)
    for steps in BASELINE_STEPS:
        real.run_to(steps)
        zero.run_to(steps)
        if real.stopped or zero.stopped:
            raise SkipCheck("training diverged (see optimizer_sanity)")
        rows.append((steps, real.evaluate(held), zero.evaluate(held)))
        ignored = real.losses == zero.losses  # identical trajectories: x never matters
        if ignored or rows[-1][1] < rows[-1][2] - BASELINE_MARGIN * abs(rows[-1][2]):
            break
        if time.monotonic() > deadline and steps != BASELINE_STEPS[-1]:
            raise _out_of_time("real vs zeroed inputs")
    return _baseline_verdict(rows, real, zero)


def _baseline_verdict(
    rows: list[tuple[int, float, float]], real: Trainer, zero: Trainer
) -> CheckResult:
    steps, with_x, without_x = rows[-1]
    evidence = {"steps": [r[0] for r in rows], "heldout_real": [r[1] for r in rows],
                "heldout_zero_inputs": [r[2] for r in rows], "train_real": real.losses,
                "train_zero_inputs": zero.losses}  # fmt: skip
    observed = f"held-out loss {with_x:.4g} with real inputs, {without_x:.4g} with zeros"
    expected = f"real inputs at least {BASELINE_MARGIN:.0%} better"
    if with_x < without_x - BASELINE_MARGIN * abs(without_x):
        return verdict(
            "input_independent_baseline", "pass",
            f"After {steps} steps the model trained on real inputs beats the same model "
            f"trained on all-zero inputs on held-out batches ({with_x:.3g} vs {without_x:.3g}): "
            "it extracts information from the data.",
            observed=observed, expected=expected, evidence=evidence,
        )  # fmt: skip
    if real.losses == zero.losses:
        why = "Its training losses equal the zero-input model's, step for step: the inputs "
        why += "never reach the output (overwritten, multiplied by zero, detached)."
    else:
        why = "It is not using the inputs in a way that generalises: labels not aligned with "
        why += "inputs (shuffled separately), or inputs that carry no signal."
    return verdict(
        "input_independent_baseline", "fail",
        f"After {steps} steps the model trained on real inputs is no better on held-out batches "
        f"than one trained on all-zero inputs ({with_x:.3g} vs {without_x:.3g}). " + why,
        observed=observed, expected=expected, evidence=evidence,
        fix="Check that x and y come from the same samples, and that forward uses x all the "
        "way to the output (see batch_independence).",
    )  # fmt: skip


class _Recorder:
    """Label vs prediction of the first few targets at every step (the overfit movie)."""

    def __init__(self, t: Targets, y: torch.Tensor) -> None:
        self.t = t
        self.labels = self._first(y if t.kind != "probs" else y.round()).tolist()
        self.predictions: list[list[float]] = []

    def _first(self, v: torch.Tensor) -> torch.Tensor:
        return v.detach().reshape(-1)[:SHOWN].float().cpu()

    def __call__(self, step: int, out: torch.Tensor, loss: float) -> None:
        if self.t.kind == "classes" or (self.t.kind == "probs" and self.t.soft):
            pred = out.argmax(self.t.class_dim)
        elif self.t.kind == "probs":
            pred = (out > (0.5 if self.t.space == "probs" else 0.0)).float()
        else:
            pred = out
        self.predictions.append(self._first(pred).tolist())


def _overfit_goal(
    ctx: CheckContext, t: Targets, x: torch.Tensor, y: torch.Tensor
) -> tuple[float, float, float]:
    """(baseline, floor, goal) on the tiny batch: baseline predicts its own label prior or
    target mean; floor is the lowest loss confident correct outputs reach."""
    with torch.no_grad():
        out = ctx.forward(ctx.build().train(), x)
        prior = batch_prior(out, y, t)
        try:
            baseline = float(ctx.loss(prior_output(out, y, t, prior), y))
        except UserCodeError as error:
            raise SkipCheck(f"loss_fn rejects a prior-predicting output ({error})") from error
    floor = min(loss_floor(ctx, out, y, t), baseline)
    return baseline, floor, floor + OVERFIT_GOAL * (baseline - floor)


def check_overfit(ctx: CheckContext) -> CheckResult:
    t = require(ctx, loss=True)
    size = TINY_SEQUENCES if ctx.task == "sequence" else TINY
    x, y = tiny_batch(ctx, size, stratify=t.kind != "values" and ctx.task != "sequence")
    baseline, floor, goal = _overfit_goal(ctx, t, x, y)
    if baseline - floor <= 1e-6 * max(1.0, abs(baseline)):
        raise SkipCheck("the tiny batch is trivially fit (a single class or a constant target)")
    recorder = _Recorder(t, y)
    trainer = Trainer(ctx, ctx.build(), [(x, y)])
    best = _overfit(ctx, trainer, (x, y), goal, recorder)
    losses = trainer.losses
    evidence = {"loss": losses, "labels": recorder.labels, "predictions": recorder.predictions,
                "goal": goal, "baseline": baseline, "floor": floor}  # fmt: skip
    observed = f"best loss {best:.4g} in {len(losses)} steps"
    expected = f"≤ {goal:.4g} (floor {floor:.3g} + {OVERFIT_GOAL:.0%} of baseline {baseline:.3g})"
    if best <= goal:
        return verdict(
            "overfit_one_batch", "pass",
            f"The model drove the loss on {x.shape[0]} samples from {losses[0]:.3g} to "
            f"{best:.3g} in {len(losses)} steps: it can fit data, and labels and predictions "
            "line up as the loss falls.",
            observed=observed, expected=expected, evidence=evidence,
        )  # fmt: skip
    return verdict(
        "overfit_one_batch", "fail",
        f"The model could not overfit {x.shape[0]} samples: in {len(losses)} steps the loss "
        f"went from {losses[0]:.3g} to {best:.3g} and stopped improving (near-zero would be "
        f"{goal:.3g}). A model that cannot memorise a handful of examples will not learn the "
        "dataset: gradients are cut (detach, no_grad), the optimizer steps the wrong weights, "
        "the learning rate is far off, or the model is too small.",
        observed=observed, expected=expected, evidence=evidence,
        fix="Watch labels vs predictions in the evidence; check gradient_flow and "
        "optimizer_sanity, then try a larger model or learning rate.",
    )  # fmt: skip


def _overfit(
    ctx: CheckContext, trainer: Trainer, batch: Batch, goal: float, hook: _Recorder
) -> float:
    """Train in chunks until the train- or eval-mode loss (dropout off) reaches `goal`, the loss
    plateaus, or OVERFIT_STEPS; returns the best loss seen. Out of time: SkipCheck."""
    best_at = {0: float("inf")}
    deadline, checkpoint = _time_slice(ctx), 200
    while len(trainer.losses) < OVERFIT_STEPS:
        trainer.run(25, target=goal, hook=hook)
        eval_loss = evaluate(ctx, trainer.model, [batch])
        best = min(min(trainer.losses), eval_loss)
        best_at[len(trainer.losses)] = best
        if best <= goal or trainer.stopped:
            return best
        if len(trainer.losses) >= checkpoint:
            half = max(s for s in best_at if s <= checkpoint // 2)
            if best_at[half] - best < PLATEAU * (best_at[half] - goal):
                return best
            checkpoint *= 2
        if time.monotonic() > deadline:
            raise _out_of_time(f"overfitting (loss {trainer.losses[0]:.3g} -> {best:.3g})")
    return min(best_at.values())
