"""Short, seeded training runs the checks share (the user's loss and optimizer, our loop)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from recipe_core.checks.context import Batch, CheckContext, UserCodeError, WorkKey
from recipe_core.train.divergence import DivergenceWatch, chance_loss

StepHook = Callable[[int, torch.Tensor, float], None]  # (step, output, loss)


class Trainer:
    """A model, its optimizer and the loss of every step so far; `run` continues training."""

    def __init__(
        self,
        ctx: CheckContext,
        model: nn.Module,
        batches: list[Batch],
        *,
        zero_inputs: bool = False,
    ) -> None:
        self.ctx, self.model, self.batches, self.zero_inputs = ctx, model, batches, zero_inputs
        self.opt = ctx.optimizer(model)
        self.losses: list[float] = []  # loss of each step's batch, measured before its update
        self.stopped = ""  # "" | "diverged" | "target"
        # the training loops' own rule (recipe_core.train.divergence), from the first step's loss
        self.divergence = DivergenceWatch(floor=chance_loss(ctx.task, ctx.num_classes))

    def run(self, steps: int, *, target: float | None = None, hook: StepHook | None = None) -> str:
        """Train up to `steps` more steps; stop early once the loss diverged or hit `target`.

        Torch's RNG (dropout masks, noise) is re-seeded from the step count, so a run is the
        same whatever other checks drew from the RNG in between."""
        torch.manual_seed(self.ctx.seed + 7919 * len(self.losses))
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

    def _step(self, target: float | None, hook: StepHook | None) -> None:
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
    """The shared run: a fresh seeded model trained on the real training batches. Optimizer
    sanity, the input-independent baseline and reproducibility all read the same curve."""
    return ctx.cache.get(REAL_TRAINER, lambda: Trainer(ctx, ctx.build(), ctx.train_batches))


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
