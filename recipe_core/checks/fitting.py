"""Fitting: real inputs must beat zeroed ones (the input-independent baseline), and a tiny batch
must be overfit to (near) its lowest possible loss ("overfit one batch").

Both give a slow-but-correct setup (raw-scale regression targets under Adam 3e-4 needs thousands
of steps) room to show progress, and stop early on success or on a plateau. Budgets are steps,
never seconds, so a loaded machine reaches the same verdict later; when the user's max_seconds
stops one first, the verdict is a warning with the numbers so far, never a pass or a skip."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from recipe_core.checks.context import Batch, CheckContext, OutOfTime, SkipCheck, UserCodeError
from recipe_core.checks.loss import loss_floor
from recipe_core.checks.result import CheckResult, verdict
from recipe_core.checks.targets import Targets, batch_prior, prior_output, require
from recipe_core.checks.training import (
    HELDOUT_AT,
    Trainer,
    evaluate,
    heldout_references,
    real_trainer,
    tiny_batch,
)

BASELINE_STEPS = HELDOUT_AT  # held-out comparisons, early exit (20 ... 1280 steps)
BASELINE_MARGIN = 0.05  # real inputs must beat zeroed ones by this fraction of the zero loss
MEMORISE_AFTER = 80  # steps before 'fits the training batches, not held-out ones' may decide
MEMORISE_MARGIN = 0.03  # ... real inputs' training loss this fraction below the zero inputs'
STALLED = 0.02  # ... and their held-out loss fell less than this fraction since the last row
TINY = 16  # samples to overfit (sequences: TINY_SEQUENCES)
TINY_SEQUENCES = 2  # "overfit a single batch of only a few examples (as little as two)"
OVERFIT_STEPS = 5000  # most optimizer steps spent overfitting (stops early when reached)
OVERFIT_GOAL = 0.1  # reach floor + this fraction of (baseline - floor)
PLATEAU = 0.01  # the last half of the steps closed < 1 % of the remaining gap: stuck
SHOWN = 16  # labels/predictions recorded per step


@dataclass(frozen=True)
class Comparison:
    """Real vs zeroed inputs after the same number of steps on the same batches."""

    steps: int
    real: float  # held-out loss, real inputs
    zero: float  # held-out loss, all-zero inputs
    real_train: float  # mean training loss over the last pass of the training batches
    zero_train: float
    prior: float  # held-out loss of predicting the training label prior / target mean

    @property
    def bar(self) -> float:
        """What real inputs must beat: the better of the zero-input model and the prior it
        aims for (a zero-input model can land above its prior, e.g. when BatchNorm's running
        statistics of all-zero batches meet eval mode)."""
        return min(self.zero, self.prior)

    @property
    def beats(self) -> bool:
        return self.real < self.bar - BASELINE_MARGIN * abs(self.bar)


def _memorises(rows: list[Comparison]) -> bool:
    """Real inputs fit the training batches clearly better, yet their held-out loss has
    stalled no better than the bar: the model learns which label goes with which training
    sample, and that does not transfer. Honest data generalises as it fits (a slow language
    model's held-out loss still falls while it is above the prior), so this waits for
    MEMORISE_AFTER steps, a clear training gap and a stalled held-out loss."""
    if len(rows) < 2 or rows[-1].steps < MEMORISE_AFTER:
        return False
    now, before = rows[-1], rows[-2]
    fits = now.real_train < now.zero_train - MEMORISE_MARGIN * abs(now.zero_train)
    stalled = now.real > before.real - STALLED * abs(before.real)
    return fits and stalled and now.real >= now.bar


def check_input_independent(ctx: CheckContext) -> CheckResult:
    t = require(ctx, loss=True)
    real = real_trainer(ctx)
    zero = Trainer(ctx, ctx.build(), ctx.train_batches, zero_inputs=True, heldout=real.heldout)
    prior = heldout_references(ctx, t)[0]
    rows: list[Comparison] = []
    try:
        for steps in BASELINE_STEPS:
            rows.append(_compare(ctx, real, zero, steps, prior))
            if rows[-1].beats or _ignored(real, zero) or _memorises(rows):
                break
    except OutOfTime as cut:
        return _baseline_cut_short(rows, real, zero, cut)
    return _baseline_verdict(rows, real, zero)


def _compare(
    ctx: CheckContext, real: Trainer, zero: Trainer, steps: int, prior: float
) -> Comparison:
    with_x, without_x = real.heldout_loss(steps), zero.heldout_loss(steps)
    if real.stopped or zero.stopped:
        raise SkipCheck("training diverged (see optimizer_sanity)")
    window = max(1, min(len(ctx.train_batches), steps))
    return Comparison(steps, with_x, without_x, float(np.mean(real.losses[steps - window : steps])),
                      float(np.mean(zero.losses[steps - window : steps])), prior)  # fmt: skip


def _ignored(real: Trainer, zero: Trainer) -> bool:
    """Identical training losses, step for step: x never reaches the output."""
    return real.losses[: len(zero.losses)] == zero.losses


def _baseline_evidence(rows: list[Comparison], real: Trainer, zero: Trainer) -> dict[str, object]:
    return {"steps": [r.steps for r in rows], "heldout_real": [r.real for r in rows],
            "heldout_zero_inputs": [r.zero for r in rows], "train_real": real.losses,
            "heldout_prior": rows[0].prior if rows else None,
            "train_zero_inputs": zero.losses}  # fmt: skip


def _baseline_verdict(rows: list[Comparison], real: Trainer, zero: Trainer) -> CheckResult:
    last = rows[-1]
    evidence = _baseline_evidence(rows, real, zero)
    observed = (f"held-out loss {last.real:.4g} with real inputs, {last.zero:.4g} with zeros "
                f"(label prior / mean: {last.prior:.4g})")  # fmt: skip
    expected = f"real inputs at least {BASELINE_MARGIN:.0%} better than both"
    if last.beats:
        return verdict(
            "input_independent_baseline", "pass",
            f"After {last.steps} steps the model trained on real inputs beats the same model "
            f"trained on all-zero inputs on held-out batches ({last.real:.3g} vs "
            f"{last.zero:.3g}, and {last.prior:.3g} for predicting the training prior): it "
            "extracts information from the data.",
            observed=observed, expected=expected, evidence=evidence,
        )  # fmt: skip
    if _ignored(real, zero):
        why = "Its training losses equal the zero-input model's, step for step: the inputs "
        why += "never reach the output (overwritten, multiplied by zero, detached)."
    elif _memorises(rows):
        why = (f"Yet on the training batches real inputs do help ({last.real_train:.3g} vs "
               f"{last.zero_train:.3g}): the model memorises which label goes with which "
               "training sample, and that does not carry over to new samples. Labels that "
               "belong to their inputs generalise first; these look shuffled or shifted "
               "relative to the inputs.")  # fmt: skip
    else:
        why = ("It is not using the inputs in a way that generalises: labels not aligned with "
               "inputs (shuffled separately), or inputs that carry no signal.")  # fmt: skip
    return verdict(
        "input_independent_baseline", "fail",
        f"After {last.steps} steps the model trained on real inputs is no better on held-out "
        f"batches than one trained on all-zero inputs or the training prior ({last.real:.3g} "
        f"vs {last.zero:.3g} and {last.prior:.3g}). " + why,
        observed=observed, expected=expected, evidence=evidence,
        fix="Check that x and y come from the same samples (Dataset __getitem__ indexes both "
        "with the same i; a collate_fn or per-epoch shuffle reorders both together; the labels "
        "come from the same split), and that forward uses x all the way to the output (see "
        "batch_independence).",
    )  # fmt: skip


def _baseline_cut_short(
    rows: list[Comparison], real: Trainer, zero: Trainer, cut: OutOfTime
) -> CheckResult:
    """max_seconds ran out before real inputs beat zeroed ones: a warning with what was seen."""
    seen = (
        f"after {rows[-1].steps} steps real inputs score {rows[-1].real:.3g} on held-out "
        f"batches, zeroed inputs {rows[-1].zero:.3g}, the training prior {rows[-1].prior:.3g}"
        if rows
        else "no held-out comparison was reached"
    )
    return verdict(
        "input_independent_baseline", "warn",
        f"max_seconds cut this check short ({cut}): {seen}. Real inputs had not yet beaten "
        "zeroed ones, and undecided is not a pass: labels that do not belong to their inputs "
        "look exactly like this.",
        observed=seen, expected=f"real inputs at least {BASELINE_MARGIN:.0%} better",
        evidence=_baseline_evidence(rows, real, zero),
        fix="Raise max_seconds (or leave it unset) to let the check decide; meanwhile check that "
        "x and y come from the same samples.",
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
    best, cut = _overfit(ctx, trainer, (x, y), goal, recorder)
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
    if cut is not None:
        return verdict(
            "overfit_one_batch", "warn",
            f"max_seconds cut this check short ({cut}) after {len(losses)} steps, with the loss "
            f"on {x.shape[0]} samples at {best:.3g} (goal {goal:.3g}). Not yet overfit is not "
            "a pass: a model that cannot memorise a handful of examples looks like this too.",
            observed=observed, expected=expected, evidence=evidence,
            fix="Raise max_seconds (or leave it unset) to let the check decide.",
        )  # fmt: skip
    return verdict(
        "overfit_one_batch", "fail",
        f"The model could not overfit {x.shape[0]} samples: in {len(losses)} steps the loss "
        f"went from {losses[0]:.3g} to {best:.3g} and {_how_it_ended(losses)} (near-zero "
        f"would be {goal:.3g}). A model that cannot memorise a handful of examples will not "
        "learn the dataset: gradients are cut (detach, no_grad), the optimizer steps the "
        "wrong weights, the learning rate is far off, or the model is too small.",
        observed=observed, expected=expected, evidence=evidence,
        fix="Watch labels vs predictions in the evidence; check gradient_flow and "
        "optimizer_sanity, then try a larger model or learning rate.",
    )  # fmt: skip


def _how_it_ended(losses: list[float]) -> str:
    return "ran out of steps" if len(losses) >= OVERFIT_STEPS else "stopped improving"


def _overfit(
    ctx: CheckContext, trainer: Trainer, batch: Batch, goal: float, hook: _Recorder
) -> tuple[float, OutOfTime | None]:
    """Train in chunks until the train- or eval-mode loss (dropout off) reaches `goal`, the loss
    plateaus, or OVERFIT_STEPS; returns the best loss seen, and the OutOfTime that stopped it
    first when max_seconds ran out."""
    best_at = {0: float("inf")}
    checkpoint = 200
    while len(trainer.losses) < OVERFIT_STEPS:
        try:
            trainer.run(25, target=goal, hook=hook)
        except OutOfTime as cut:
            return min([*best_at.values(), *trainer.losses]), cut
        eval_loss = evaluate(ctx, trainer.model, [batch])
        best = min(min(trainer.losses), eval_loss)
        best_at[len(trainer.losses)] = best
        if best <= goal or trainer.stopped:
            return best, None
        if len(trainer.losses) >= checkpoint:
            half = max(s for s in best_at if s <= checkpoint // 2)
            if best_at[half] - best < PLATEAU * (best_at[half] - goal):
                return best, None
            checkpoint *= 2
    return min(best_at.values()), None
