"""Use backprop to chart dependencies (the recipe): output i must depend on input i only, and a
causal sequence model's output at time t only on inputs up to t."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from recipe_core.checks.context import CheckContext, SkipCheck, UserCodeError
from recipe_core.checks.learning import SANITY_STEPS
from recipe_core.checks.result import CheckResult, verdict
from recipe_core.checks.targets import gate, require
from recipe_core.checks.training import real_trainer

LEAK = 1e-5  # a dependence this small relative to the largest one is float noise, not a leak


def frozen_norms(model: nn.Module) -> nn.Module:
    """Train mode, but batch-statistics layers in eval: BatchNorm mixes a batch by design."""
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm | nn.Dropout):
            module.eval()
    return model


def differentiable_forward(
    ctx: CheckContext, model: nn.Module, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(leaf, output): `leaf` is the float input, or for token ids the output of the
    nn.Embedding that reads them, so gradients can be taken with respect to it."""
    if torch.is_floating_point(x):
        leaf = x.detach().clone().requires_grad_(True)
        return leaf, ctx.forward(model, leaf)
    captured: list[torch.Tensor] = []

    def hook(module: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> torch.Tensor:
        if captured or not args or tuple(args[0].shape) != tuple(x.shape):
            return out
        captured.append(out.detach().requires_grad_(True))
        return captured[0]

    embeddings = [m for m in model.modules() if isinstance(m, nn.Embedding)]
    handles = [m.register_forward_hook(hook) for m in embeddings]
    try:
        out = ctx.forward(model, x)
    finally:
        for handle in handles:
            handle.remove()
    if not captured:
        raise SkipCheck(
            "the inputs are integers and no nn.Embedding reads them, so there is no input to "
            "differentiate with respect to"
        )
    return captured[0], out


def _grad_rows(outputs: torch.Tensor, weights: torch.Tensor, leaf: torch.Tensor) -> torch.Tensor:
    """|d (outputs . weights) / d leaf|, summed over everything but the first two leaf dims."""
    try:
        (grad,) = torch.autograd.grad((outputs * weights).sum(), leaf, retain_graph=True,
                                      allow_unused=True)  # fmt: skip
    except RuntimeError as error:
        raise UserCodeError("backward through the model", error) from error
    if grad is None:
        grad = torch.zeros_like(leaf)
    return grad.abs().reshape(leaf.shape[0], leaf.shape[1] if leaf.ndim > 1 else 1, -1).sum(-1)


def _with_trained_fallback(
    ctx: CheckContext, chart: Callable[[nn.Module], torch.Tensor]
) -> torch.Tensor:
    """Chart the fresh model; if its outputs ignore the inputs entirely (a zero-initialised
    final layer does that, legitimately), chart the shared model after a few training steps."""
    matrix = chart(frozen_norms(ctx.build()))
    if float(matrix.max()) == 0 and gate(ctx).loss_ok:
        trainer = real_trainer(ctx)
        trainer.run_to(SANITY_STEPS)
        if not trainer.stopped:
            matrix = chart(frozen_norms(trainer.model))
            trainer.model.train()
    return matrix


def check_batch_independence(ctx: CheckContext) -> CheckResult:
    require(ctx, loss=False)
    x = ctx.batches[0][0][:4]
    b = int(x.shape[0])
    if b < 2:
        raise SkipCheck("the first batch has a single sample")
    generator = torch.Generator().manual_seed(ctx.seed)

    def chart(model: nn.Module) -> torch.Tensor:
        leaf, out = differentiable_forward(ctx, model, x)
        if out.numel() % b:
            raise SkipCheck(f"outputs {tuple(out.shape)} cannot be split into {b} samples")
        rows, matrix = out.reshape(b, -1), torch.zeros(b, b)
        for i in range(b):
            weights = torch.zeros_like(rows)
            weights[i] = torch.randn(rows.shape[1], generator=generator).to(rows)
            matrix[i] = _grad_rows(rows, weights, leaf).sum(1).detach().cpu()
        return matrix

    return _independence_verdict(_with_trained_fallback(ctx, chart))


def _independence_verdict(matrix: torch.Tensor) -> CheckResult:
    b, scale = matrix.shape[0], float(matrix.max())
    cross = matrix - torch.diag(torch.diag(matrix))
    off = float(cross.max())
    evidence = {"dependency": (matrix / max(scale, 1e-30)).tolist()}
    observed = f"largest cross-sample gradient {off / max(scale, 1e-30):.2g} of the largest"
    if scale == 0:
        return verdict(
            "batch_independence", "fail",
            "The outputs have zero gradient with respect to the inputs, even after some "
            "training: the model ignores its input (a detach, a multiplication by zero, inputs "
            "overwritten in forward).",
            observed="all gradients are zero", expected="output i depends on input i",
            evidence=evidence, fix="Find where the input is cut off from the output in forward.",
        )  # fmt: skip
    if off > LEAK * scale:
        i, j = divmod(int(torch.argmax(cross)), b)
        return verdict(
            "batch_independence", "fail",
            f"The output of sample {i} has a gradient with respect to the input of sample {j}: "
            "samples in a batch leak into each other (a view/reshape/transpose that mixes the "
            "batch dim with features, statistics over dim 0, attention across the batch). "
            "BatchNorm was frozen for this test, so this is not it.",
            observed=observed, expected=f"0 (≤ {LEAK:g} of the largest)", evidence=evidence,
            fix="Keep dim 0 as the batch everywhere: use permute/transpose instead of view to "
            "reorder dims, and never reduce over dim 0 in forward.",
        )  # fmt: skip
    return verdict(
        "batch_independence", "pass",
        "Backprop from each sample's output reaches only that sample's input: the model never "
        "mixes information across the batch.",
        observed=observed, expected=f"0 (≤ {LEAK:g} of the largest)", evidence=evidence,
    )  # fmt: skip


def check_causal_dependence(ctx: CheckContext) -> CheckResult:
    if ctx.task != "sequence":
        raise SkipCheck(f"only for task='sequence' (this is {ctx.task!r})")
    require(ctx, loss=False)
    x = ctx.batches[0][0][:2]
    steps = int(x.shape[1]) if x.ndim > 1 else 0
    times = sorted({int(t) for t in np.linspace(0, max(steps - 1, 0), min(steps, 12))})
    generator = torch.Generator().manual_seed(ctx.seed)

    def chart(model: nn.Module) -> torch.Tensor:
        leaf, out = differentiable_forward(ctx, model, x)
        if out.ndim < 2 or out.shape[1] != steps or leaf.ndim < 2 or leaf.shape[1] != steps:
            raise SkipCheck(f"outputs {tuple(out.shape)} do not keep time on dim 1 of the "
                            f"inputs {tuple(x.shape)}")  # fmt: skip
        matrix = torch.zeros(len(times), steps)
        for k, t in enumerate(times):
            weights = torch.zeros_like(out)
            weights[:, t] = torch.randn(out[:, t].shape, generator=generator).to(out)
            matrix[k] = _grad_rows(out, weights, leaf).sum(0).detach().cpu()
        return matrix

    matrix = _with_trained_fallback(ctx, chart)
    if float(matrix.max()) == 0:
        raise SkipCheck("the outputs do not depend on the inputs at all (see batch_independence)")
    return _causal_verdict(matrix, times)


def _causal_verdict(matrix: torch.Tensor, times: list[int]) -> CheckResult:
    scale = float(matrix.max())
    future = [float(matrix[k, t + 1 :].max()) if t + 1 < matrix.shape[1] else 0.0
              for k, t in enumerate(times)]  # fmt: skip
    evidence = {"output_times": times, "dependency": (matrix / max(scale, 1e-30)).tolist()}
    worst = max(future) / max(scale, 1e-30)
    observed = f"largest dependence on future inputs {worst:.2g} of the largest"
    expected = f"0 (≤ {LEAK:g} of the largest)"
    if worst > LEAK:
        t = times[int(np.argmax(future))]
        return verdict(
            "causal_dependence", "fail",
            f"The output at time {t} has a gradient with respect to inputs after {t}: the model "
            "sees the future (a bidirectional RNN, unmasked attention, a centred convolution, "
            "targets leaking into inputs). It will look great in training and fail at "
            "generation time.",
            observed=observed, expected=expected, evidence=evidence,
            fix="Use a causal mask in attention, left-only padding for convolutions, and "
            "unidirectional RNNs.",
        )  # fmt: skip
    return verdict(
        "causal_dependence",
        "pass",
        "Each output depends only on inputs at or before its own time step: the model is causal.",
        observed=observed,
        expected=expected,
        evidence=evidence,
    )
