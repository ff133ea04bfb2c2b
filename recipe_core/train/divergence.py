"""When has training diverged? One rule for the training loops and the checks' short runs.

A loss that becomes NaN/inf has diverged. So has one that stays finite but grows by orders of
magnitude over its start: lr=1e6 takes a 10-class loss from 2.3 to 1e24 without ever leaving
float32's range, and a run that only looks for NaN ends "succeeded". Noisy training must not
trip the rule, so it judges the median of the last few steps (one bad batch is not enough) against
GROWTH times the start, the loss of the untrained net (never less than the loss of a uniform
guess, so a lucky first batch does not make the bar low).
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field

from recipe_core.errors import RunError

GROWTH = 100.0  # the smoothed loss this many times its start has diverged
WINDOW = 5  # steps in the median; more than half of them must be past the bar
MIN_STEPS = 3  # the start and two steps after it: a single spike never counts


@dataclass(frozen=True)
class Divergence:
    step: int  # the step whose loss completed the evidence
    loss: float  # that step's smoothed loss (the non-finite value itself when not finite)
    start: float  # the starting loss the growth is measured against (nan: none was finite)
    nonfinite: bool  # True: the loss became NaN/inf; False: it grew past the bar
    bar: float = math.inf  # GROWTH x max(start, chance loss): the smoothed loss crossed it
    last_finite: float = math.nan  # the loss of the step before a non-finite one

    def describe(self) -> str:
        """'at step 40: train loss 3.1e+23 is 1.4e+23x its starting 2.27', for error texts."""
        if self.nonfinite:
            known = [f"last finite loss {self.last_finite:.4g}"] * math.isfinite(self.last_finite)
            known += [f"it started at {self.start:.3g}"] * math.isfinite(self.start)
            detail = f" ({', '.join(known)})" if known else ""
            return f"at step {self.step}: the train loss became {self.loss}{detail}"
        if self.start > 0:
            growth = f"{self.loss / self.start:.3g}x its starting {self.start:.3g}"
        else:
            growth = (
                f"above {self.bar:.3g}, {GROWTH:g}x a uniform guess's loss (start {self.start:.3g})"
            )
        return (
            f"at step {self.step}: train loss {self.loss:.3g} (median of recent steps) is {growth}"
        )


def chance_loss(task: str, num_classes: int | None) -> float:
    """The loss of a uniform guess, the least a starting loss is taken to be: ln C for
    classification and sequences, ln 2 per label for multilabel, 0 when there is none."""
    if task == "multilabel":
        return math.log(2)
    if task in ("classification", "sequence") and num_classes and num_classes > 1:
        return math.log(num_classes)
    return 0.0


@dataclass
class DivergenceWatch:
    """Feed it each step's loss in order; `add` returns the Divergence once the rule fires.

    `start`: the starting loss when the caller knows a better one (a check's untrained mean
    over several batches); else the first loss added. `floor`: see `chance_loss`."""

    floor: float = 0.0
    start: float = math.nan
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    found: Divergence | None = None

    def add(self, step: int, loss: float) -> Divergence | None:
        if self.found is not None:
            return self.found
        if not math.isfinite(loss):
            last = self.recent[-1] if self.recent else math.nan
            self.found = Divergence(step, loss, self.start, nonfinite=True, last_finite=last)
            return self.found
        if math.isnan(self.start):
            self.start = loss
        self.recent.append(loss)
        bar = GROWTH * max(self.start, self.floor)
        if len(self.recent) >= MIN_STEPS and bar > 0:
            smoothed = statistics.median_low(self.recent)
            if smoothed > bar:
                self.found = Divergence(step, smoothed, self.start, nonfinite=False, bar=bar)
        return self.found


def find_divergence(
    losses: list[float], *, first_step: int = 0, start: float = math.nan, floor: float = 0.0
) -> Divergence | None:
    """The first divergence in a list of per-step losses (step numbers from `first_step`)."""
    watch = DivergenceWatch(floor=floor, start=start)
    for i, loss in enumerate(losses):
        if watch.add(first_step + i, loss) is not None:
            break
    return watch.found


def divergence_error(found: Divergence, *, lr: float | None) -> RunError:
    """The error a training run fails with: where and how it diverged, and what to try."""
    now = f" (now lr={lr:g})" if lr is not None else ""
    return RunError(
        f"Training diverged {found.describe()}; lower the learning rate{now}, look at the "
        "captured input batches (recipe see) for NaN/inf or extreme values, and re-run with "
        "--preset overfit to debug."
    )
