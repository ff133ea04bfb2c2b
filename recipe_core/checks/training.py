"""Short, seeded training runs the checks share (the user's loss and optimizer, our loop)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from recipe_core.checks.context import Batch, CheckContext, SkipCheck, UserCodeError, WorkKey
from recipe_core.checks.loss import loss_floor, reference_loss
from recipe_core.checks.targets import Targets, prior_output
from recipe_core.train.divergence import DivergenceWatch, chance_loss

StepHook = Callable[[int, torch.Tensor, float], None]  # (step, output, loss)
# Steps after which a trainer with held-out batches measures its held-out loss (doubling: a
# slow setup gets room, a fast one is judged early). Recorded while training, so a check that
# comes later still reads the loss at step 40 of a run others took to 640.
HELDOUT_AT = (20, 40, 80, 160, 320, 640, 1280)


class Trainer:
    """A model, its optimizer and the loss of every step so far; `run` continues training."""

    def __init__(
        self,
        ctx: CheckContext,
        model: nn.Module,
        batches: list[Batch],
        *,
        zero_inputs: bool = False,
        heldout: list[Batch] | None = None,
    ) -> None:
        self.ctx, self.model, self.batches, self.zero_inputs = ctx, model, batches, zero_inputs
        self.opt = ctx.optimizer(model)
        self.losses: list[float] = []  # loss of each step's batch, measured before its update
        self.heldout = heldout or []  # batches measured at the HELDOUT_AT steps
        self.heldout_losses: dict[int, float] = {}  # step -> mean held-out loss (eval mode)
        self.stopped = ""  # "" | "diverged" | "target"
        # the training loops' own rule (recipe_core.train.divergence), from the first step's loss
        self.divergence = DivergenceWatch(floor=chance_loss(ctx.task, ctx.num_classes))

    def run(self, steps: int, *, target: float | None = None, hook: StepHook | None = None) -> str:
        """Train up to `steps` more steps; stop early once the loss diverged or hit `target`.
        With max_seconds set, raises OutOfTime once the running check's share is spent."""
        self.model.train()
        for _ in range(steps):
            if self.stopped:
                break
            self.ctx.check_time()
            self._step(target, hook)
        return self.stopped

    def run_to(self, total: int) -> list[float]:
        """Train until `total` steps were taken in all (or training stopped); return losses."""
        self.run(max(0, total - len(self.losses)))
        return self.losses[:total]

    def heldout_loss(self, steps: int) -> float:
        """Held-out loss after `steps` (one of HELDOUT_AT) steps, training there first if needed;
        NaN when training stopped before (diverged)."""
        self.run_to(steps)
        return self.heldout_losses.get(steps, math.nan)

    def _step(self, target: float | None, hook: StepHook | None) -> None:
        # Torch's RNG (dropout masks, noise) is seeded from the step count: a run is the same
        # however it was cut into calls and whatever other checks drew from the RNG meanwhile.
        torch.manual_seed(self.ctx.seed + 7919 * len(self.losses))
        x, y = self.batches[len(self.losses) % len(self.batches)]
        if self.zero_inputs:
            x = torch.zeros_like(x)
        self.opt.zero_grad(set_to_none=True)
        out = self.ctx.forward(self.model, x)
        loss = self.ctx.loss(out, y)
        value = float(loss.detach())
        self.losses.append(value)
        if hook is not None:
            hook(len(self.losses) - 1, out.detach(), value)
        if self.divergence.add(len(self.losses) - 1, value) is not None:
            self.stopped = "diverged"
            return
        if target is not None and value <= target:
            self.stopped = "target"
            return
        self.ctx.backward(loss)
        try:
            self.opt.step()
        except Exception as error:
            raise UserCodeError("optimizer.step()", error) from error
        if self.heldout and len(self.losses) in HELDOUT_AT:
            self.heldout_losses[len(self.losses)] = self.evaluate(self.heldout)

    def evaluate(self, batches: list[Batch]) -> float:
        """Mean loss over `batches` in eval mode (zeroed inputs for an input-free trainer)."""
        return evaluate(self.ctx, self.model, batches, zero_inputs=self.zero_inputs)


def evaluate(
    ctx: CheckContext, model: nn.Module, batches: list[Batch], *, zero_inputs: bool = False
) -> float:
    model.eval()
    total = 0.0
    with torch.no_grad():
        for x, y in batches:
            inputs = torch.zeros_like(x) if zero_inputs else x
            total += float(ctx.loss(ctx.forward(model, inputs), y))
    model.train()
    return total / max(1, len(batches))


REAL_TRAINER: WorkKey[Trainer] = WorkKey("real_trainer")


def real_trainer(ctx: CheckContext) -> Trainer:
    """The shared run: a fresh seeded model trained on the real training batches, its held-out
    loss recorded at HELDOUT_AT. Optimizer sanity, the input-independent baseline,
    reproducibility and too-good-to-be-true all read the same curve."""
    held = ctx.heldout_batches or ctx.train_batches
    return ctx.cache.get(
        REAL_TRAINER, lambda: Trainer(ctx, ctx.build(), ctx.train_batches, heldout=held)
    )


HELDOUT_REFERENCES: WorkKey[tuple[float, float]] = WorkKey("heldout_references")


def heldout_references(ctx: CheckContext, t: Targets) -> tuple[float, float]:
    """(prior, floor) on the shared run's held-out batches: the loss of predicting the training
    label prior or target mean, the best any input-free model can do (inf when loss_fn rejects
    such outputs), and the lowest loss confident correct outputs reach."""

    def make() -> tuple[float, float]:
        trainer = real_trainer(ctx)
        trainer.model.eval()
        with torch.no_grad():
            pairs = [(ctx.forward(trainer.model, x), y) for x, y in trainer.heldout]
        trainer.model.train()
        try:
            prior = reference_loss(ctx, [(_prior(ctx, out, y, t), y) for out, y in pairs])
        except SkipCheck:
            prior = math.inf
        floor = float(np.mean([loss_floor(ctx, out, y, t) for out, y in pairs]))
        return prior, min(floor, prior)

    return ctx.cache.get(HELDOUT_REFERENCES, make)


def _prior(ctx: CheckContext, out: torch.Tensor, y: torch.Tensor, t: Targets) -> torch.Tensor:
    """prior_output, with a regression's mean taken from the training targets (not from the
    held-out ones it is scored on)."""
    if t.kind != "values" or y.numel() != out.numel():
        return prior_output(out, y, t)
    try:
        train = torch.cat([b[1].reshape(len(b[1]), *out.shape[1:]) for b in ctx.train_batches])
    except RuntimeError:  # ragged sequences
        return prior_output(out, y, t)
    return train.float().mean(0, keepdim=True).expand_as(out).to(out.dtype)


def tiny_batch(ctx: CheckContext, size: int, *, stratify: bool) -> Batch:
    """`size` training samples. With `stratify` (one class label per sample) the classes take
    turns, so the tiny batch is balanced and overfitting it means separating classes."""
    try:
        x = torch.cat([b[0] for b in ctx.train_batches])
        y = torch.cat([b[1] for b in ctx.train_batches])
    except RuntimeError:  # ragged batches (e.g. sequences of varying length): use the first
        x, y = ctx.train_batches[0]
    keys = y.reshape(len(y), -1)
    if not stratify or keys.shape[1] != 1:
        return x[:size], y[:size]
    values = keys[:, 0].cpu().numpy()
    classes = list(dict.fromkeys(values.tolist()))  # in order of first appearance
    queues = [list(np.flatnonzero(values == c)) for c in classes]
    chosen: list[int] = []
    while len(chosen) < min(size, len(values)):
        for queue in queues:
            if queue and len(chosen) < size:
                chosen.append(int(queue.pop(0)))
    index = torch.tensor(chosen, device=y.device)
    return x[index], y[index]
