"""Per-layer statistics of one forward/backward pass: how much signal each layer passes on.

Forward hooks on the leaf modules measure each output as it is made (an in-place ReLU after a
Linear would rewrite a stored tensor) and hook its gradient; one backward then fills those in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from recipe_core.checks.context import Batch, CheckContext

RECTIFIERS = (nn.ReLU, nn.ReLU6)  # outputs exactly 0 below the threshold: units can die
BOUNDED = {nn.Tanh: (-1.0, 1.0), nn.Sigmoid: (0.0, 1.0)}  # outputs that saturate at the bounds
SATURATION_MARGIN = 0.01  # within 1 % of a bound the derivative is < 2 % of its peak


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
    leaves = [(n, m) for n, m in model.named_modules() if not any(True for _ in m.children())]
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
        out = output[0] if isinstance(output, (tuple, list)) and output else output
        if name in found or not isinstance(out, torch.Tensor) or not out.is_floating_point():
            return
        if out.ndim < 2 or out.shape[0] < 2:
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
    """Share of units never positive in the batch. A unit is a channel (dim 1); for (B, T, D)
    sequences also a feature (the last dim), and the larger share counts, since either layout
    is common and a unit alive anywhere is alive."""
    alive = out > 0
    shares = [1.0 - float(alive.transpose(0, 1).flatten(1).any(1).float().mean())]
    if out.ndim == 3:
        shares.append(1.0 - float(alive.flatten(0, 1).any(0).float().mean()))
    return max(shares)


def _saturated(module: nn.Module, out: torch.Tensor) -> float | None:
    bounds = next((b for kind, b in BOUNDED.items() if isinstance(module, kind)), None)
    if bounds is None:
        return None
    lo, hi = bounds
    margin = SATURATION_MARGIN * (hi - lo)
    return float(((out <= lo + margin) | (out >= hi - margin)).float().mean())
