"""Per-layer statistics of one forward/backward pass: how much signal each layer passes on.

Forward hooks on the leaf modules measure each output as it is made (an in-place ReLU after a
Linear would rewrite a stored tensor) and hook its gradient; one backward then fills those in.
The measuring helpers are train/insides.py's, which records the same quantities over training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from recipe_core.checks.context import Batch, CheckContext
from recipe_core.train.insides import (
    RECTIFIERS,
    dead_fraction,
    leaf_modules,
    measurable,
    saturated_fraction,
)


@dataclass(frozen=True)
class LayerStats:
    name: str  # module path, e.g. "blocks.3.fc"
    kind: str  # module class, e.g. "Linear"
    weighted: bool  # has parameters of its own: a step of the depth chain
    scale: float  # RMS over units of each unit's std across the batch: the input-driven signal
    grad: float | None  # norm of d loss / d output; None where no gradient flows (frozen, no_grad)
    dead: float | None  # share of units zero for every sample and position (rectifiers only)
    saturated: float | None  # share of values within 1 % of the bounds (tanh, sigmoid only)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "scale": self.scale, "grad": self.grad,
                "dead": self.dead, "saturated": self.saturated}  # fmt: skip


def probe_layers(ctx: CheckContext, model: nn.Module, batch: Batch) -> list[LayerStats]:
    """Statistics of every leaf module that ran, in the order they ran (the model's output
    layer last). A module called twice is measured at its first call."""
    found: dict[str, dict[str, Any]] = {}
    grads: dict[str, float] = {}
    leaves = leaf_modules(model)
    handles = [m.register_forward_hook(_recorder(n, m, found, grads)) for n, m in leaves]
    try:
        x, y = batch
        loss = ctx.loss(ctx.forward(model, x), y)
        if loss.requires_grad:
            ctx.backward(loss)
    finally:
        for handle in handles:
            handle.remove()
    model.zero_grad(set_to_none=True)
    return [LayerStats(**row, grad=grads.get(name)) for name, row in found.items()]


def _recorder(
    name: str, module: nn.Module, found: dict[str, dict[str, Any]], grads: dict[str, float]
) -> Callable[[nn.Module, Any, Any], None]:
    def hook(_: nn.Module, inputs: Any, output: Any) -> None:
        out = measurable(output)
        if name in found or out is None:
            return
        found[name] = _measure(name, module, out.detach())
        if out.requires_grad:
            out.register_hook(lambda g: grads.__setitem__(name, float(g.detach().norm())))  # type: ignore[no-untyped-call]

    return hook


def _measure(name: str, module: nn.Module, out: torch.Tensor) -> dict[str, Any]:
    flat = torch.nan_to_num(out.float().flatten(1))  # (B, units): one column per unit x position
    spread = (flat - flat.mean(0)).square().mean().sqrt()
    return {
        "name": name,
        "kind": type(module).__name__,
        "weighted": any(True for _ in module.parameters(recurse=False)),
        "scale": float(spread),
        "dead": dead_share(out) if isinstance(module, RECTIFIERS) else None,
        "saturated": _saturated(module, out),
    }


def dead_share(out: torch.Tensor) -> float:
    """Share of units never positive in the batch (see train/insides.py's dead_fraction)."""
    return float(dead_fraction(out))


def _saturated(module: nn.Module, out: torch.Tensor) -> float | None:
    share = saturated_fraction(module, out)
    return None if share is None else float(share)
