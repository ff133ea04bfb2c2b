"""Insides of a run: what each layer does while the net trains, recorded without a host sync.

Every `insides_every` steps the recorder hooks that step's own work (the forward of the real
training batch, its backward and the optimizer's update) and measures, per leaf module: the
activations' mean and std, the share of dead (rectifier) or saturated (tanh/sigmoid) units, the
norm of its parameters' gradient, and the update-to-weight ratio ||w_after - w_before|| / ||w||
of that very update; plus, on a bounded share of those steps, the first layer's weights (conv
filters, or a first Linear's rows as input-shaped images). As with the dynamics snapshots
(probes.py), the numbers stay on the device until the loop's metric flush, which starts one copy
to the host; they are written once it is done, so a recording adds kernels, never a sync.

The measuring helpers (leaf modules, a hook's measurable output, dead and saturated shares) live
here, and checks/layer_probe.py imports them: one definition for the one-shot probe at init and
for the recording over training. runs/insides.py owns the files; dynamics/insides.py reads them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from recipe_core.runs.insides import STATS, append_insides, write_first_layer
from recipe_core.train.config import TrainConfig
from recipe_core.train.probes import HostCopy

if TYPE_CHECKING:
    from torch.utils.hooks import RemovableHandle

    from recipe_core.runs import RunWriter

RECTIFIERS = (nn.ReLU, nn.ReLU6)  # outputs exactly 0 below the threshold: units can die
BOUNDED = {nn.Tanh: (-1.0, 1.0), nn.Sigmoid: (0.0, 1.0)}  # outputs that saturate at the bounds
SATURATION_MARGIN = 0.01  # within 1 % of a bound the derivative is < 2 % of its peak
MAX_UNITS = 64  # first-layer filters kept per snapshot: an 8x8 grid is what a page can show
FIRST_LAYER_VALUES = 2_000_000  # first-layer weights kept per run: 8 MB of float32 at most
MAX_FIRST_SNAPSHOTS = 64  # enough for a smooth slider; more only adds files


# --- measuring helpers (shared with checks/layer_probe.py) ---------------------------------------


def leaf_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(path, module) of every module without children: where activations are made."""
    return [(n, m) for n, m in model.named_modules() if not any(True for _ in m.children())]


def measurable(output: Any) -> torch.Tensor | None:
    """A hook's output as one batched float tensor (the first of a tuple), else None: integer
    outputs, scalars and single-sample batches carry no per-unit statistics."""
    out = output[0] if isinstance(output, (tuple, list)) and output else output
    if not isinstance(out, torch.Tensor) or not out.is_floating_point():
        return None
    return out if out.ndim >= 2 and out.shape[0] >= 2 else None


def dead_fraction(out: torch.Tensor) -> torch.Tensor:
    """Share of units never positive in the batch, as a 0-dim tensor on out's device (no sync).
    A unit is a channel (dim 1); for (B, T, D) sequences also a feature (the last dim), and the
    larger share counts, since either layout is common and a unit alive anywhere is alive."""
    alive = out > 0
    share = 1.0 - alive.transpose(0, 1).flatten(1).any(1).float().mean()
    if out.ndim == 3:
        share = torch.maximum(share, 1.0 - alive.flatten(0, 1).any(0).float().mean())
    return share


def saturated_fraction(module: nn.Module, out: torch.Tensor) -> torch.Tensor | None:
    """Share of a tanh/sigmoid's outputs within SATURATION_MARGIN of a bound (0-dim tensor);
    None for modules that have no bounds."""
    bounds = next((b for kind, b in BOUNDED.items() if isinstance(module, kind)), None)
    if bounds is None:
        return None
    lo, hi = bounds
    margin = SATURATION_MARGIN * (hi - lo)
    return ((out <= lo + margin) | (out >= hi - margin)).float().mean()


def activation_stats(module: nn.Module, out: torch.Tensor) -> torch.Tensor:
    """(4,) on the device: mean, std over all values, dead share, saturated share (nan where
    the module has no such units)."""
    flat = out.detach().float()
    nan = flat.new_full((), math.nan)  # a fill kernel: no host->device copy
    dead = dead_fraction(flat) if isinstance(module, RECTIFIERS) else nan
    saturated = saturated_fraction(module, flat)
    return torch.stack((flat.mean(), flat.std(), dead, nan if saturated is None else saturated))


def norm(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """The 2-norm of several tensors taken as one vector (0-dim, on their device)."""
    norms = torch.stack([torch.linalg.vector_norm(t) for t in tensors])
    total: torch.Tensor = torch.linalg.vector_norm(norms)
    return total


# --- the first layer -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FirstLayer:
    name: str  # module path, e.g. "0" or "conv1"
    kind: str  # "conv" (filters) | "linear" (rows reshaped to the input image)
    weight: torch.Tensor  # the parameter itself: optimizers and load_state_dict update in place
    shape: tuple[int, ...]  # of one unit's weights: (C, kh, kw) or the input's (C, H, W)

    def weights(self) -> torch.Tensor:
        """(U, C, h, w) float32 copy on the device, U <= MAX_UNITS."""
        weight = self.weight.detach()[:MAX_UNITS]
        return weight.float().reshape(weight.shape[0], *self.shape).clone()


def find_first_layer(model: nn.Module, image_shape: Sequence[int]) -> FirstLayer | None:
    """The first Conv2d, or a first Linear whose inputs are the flattened image, in definition
    order; None when the net starts otherwise (its weights would not look like images)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return FirstLayer(name, "conv", module.weight, tuple(module.weight.shape[1:]))
        if isinstance(module, nn.Linear):
            fits = module.in_features == math.prod(image_shape)
            shape = tuple(int(n) for n in image_shape)
            return FirstLayer(name, "linear", module.weight, shape) if fits else None
    return None


def first_layer_stride(first: FirstLayer | None, *, steps: int, every: int) -> int:
    """Keep the first layer on every k-th recording, so a run keeps at most
    MAX_FIRST_SNAPSHOTS of them and FIRST_LAYER_VALUES values in all."""
    if first is None:
        return 0
    per_snapshot = min(MAX_UNITS, int(first.weight.shape[0])) * math.prod(first.shape)
    most = max(2, min(MAX_FIRST_SNAPSHOTS, FIRST_LAYER_VALUES // per_snapshot))
    return max(1, math.ceil((steps // every + 1) / most))


# --- the recorder --------------------------------------------------------------------------------


@dataclass
class _Record:
    """One recorded step while it is being measured; every tensor stays on the device."""

    step: int
    acts: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> (4,) activation stats
    grads: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> 0-dim grad norm
    before: dict[str, list[torch.Tensor]] = field(default_factory=dict)  # weights pre-update
    updates: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> (2,) ||w||, ||dw||
    first: torch.Tensor | None = None  # (U, C, h, w) first-layer weights at this step


@dataclass(frozen=True)
class _Taken:
    """Closed records whose copy to the host has started."""

    steps: list[int]
    names: list[list[str]]  # per record, its layers in the order of its rows
    stats: HostCopy | None  # (sum of L, 7) float32: STATS columns, update norm for the ratio
    firsts: list[tuple[int, HostCopy]]


class InsidesRecorder:
    """Per-layer statistics of every `every`-th training step, and first-layer snapshots.

    The loop calls `before_step(step)` before each step's forward (it arms the hooks on a
    recorded step and removes them after), `flush(wait=...)` at each metric flush, and
    `finish(step)` at the end (the final first-layer weights)."""

    def __init__(self, writer: RunWriter, model: nn.Module, optimizer: torch.optim.Optimizer, *,
                 every: int, steps: int, image_shape: Sequence[int],
                 lag: int = 0) -> None:  # fmt: skip
        self.writer, self.model, self.optimizer, self.every = writer, model, optimizer, every
        self.lag = lag  # flushes a copy may stay in flight (1 on CUDA: see loop.windows_in_flight)
        self.leaves = leaf_modules(model)
        self.kinds = {n: type(m).__name__ for n, m in self.leaves}
        self.weighted = [(n, ps) for n, m in self.leaves if (ps := _trained(m))]
        self.first = find_first_layer(model, image_shape)
        self.stride = first_layer_stride(self.first, steps=steps, every=every)
        self.current: _Record | None = None
        self.handles: list[RemovableHandle] = []
        self.done: list[_Record] = []
        self.in_flight: list[_Taken] = []
        self.last_first = -1  # step of the newest first-layer snapshot

    def before_step(self, step: int) -> None:
        self._disarm()
        if self.every and step % self.every == 0:
            self._arm(step)

    def _arm(self, step: int) -> None:
        record = self.current = _Record(step)
        if self.first is not None and (step // self.every) % self.stride == 0:
            record.first, self.last_first = self.first.weights(), step
        self.handles = [m.register_forward_hook(self._on_forward(n, record))
                        for n, m in self.leaves]  # fmt: skip
        self.handles.append(self.optimizer.register_step_pre_hook(self._on_update(record, 0)))
        self.handles.append(self.optimizer.register_step_post_hook(self._on_update(record, 1)))

    def _on_forward(self, name: str, record: _Record) -> Any:
        def hook(module: nn.Module, _: Any, output: Any) -> None:
            out = measurable(output)
            if out is not None and name not in record.acts:  # a module called twice: its first
                with torch.no_grad():
                    record.acts[name] = activation_stats(module, out)

        return hook

    def _on_update(self, record: _Record, after: int) -> Any:
        """Before the optimizer's step: gradient norms and a copy of the weights; after it:
        the weight norm and the norm of the update, per weighted layer."""

        @torch.no_grad()
        def hook(*_: Any) -> None:
            for name, params in self.weighted:
                if not after:
                    grads = [p.grad for p in params if p.grad is not None]
                    if grads:
                        record.grads[name] = norm(grads)
                    record.before[name] = [p.detach().clone() for p in params]
                elif name in record.before:
                    old = record.before.pop(name)
                    change = norm([p.detach() - b for p, b in zip(params, old, strict=True)])
                    record.updates[name] = torch.stack((norm(old), change))

        return hook

    def _disarm(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []
        if self.current is not None:
            self.done.append(self.current)
            self.current = None

    def finish(self, step: int) -> None:
        """Close the last recording; snapshot the final first-layer weights (once)."""
        self._disarm()
        if self.first is not None and self.last_first != step:
            self.done.append(_Record(step, first=self.first.weights()))
            self.last_first = step

    def flush(self, *, wait: bool = False) -> None:
        """Start the host copy of the closed records; write those whose copies are done (all
        of them when `wait`, else all but the newest `lag`)."""
        if self.done:
            self.in_flight.append(self._take(self.done))
            self.done = []
        while len(self.in_flight) > (0 if wait else self.lag):
            self._write(self.in_flight.pop(0))

    def _take(self, records: list[_Record]) -> _Taken:
        rows: list[torch.Tensor] = []
        names: list[list[str]] = []
        for record in records:
            layers = _ordered(record, self.weighted)
            rows.extend(_row(record, name) for name in layers)
            names.append(layers)
        firsts = [(r.step, HostCopy(r.first)) for r in records if r.first is not None]
        stats = HostCopy(torch.stack(rows)) if rows else None
        return _Taken([r.step for r in records], names, stats, firsts)

    def _write(self, taken: _Taken) -> None:
        values = taken.stats.get().tolist() if taken.stats is not None else []
        out: list[dict[str, Any]] = []
        for step, layers in zip(taken.steps, taken.names, strict=True):
            for name in layers:
                out.append(_json_row(step, name, self.kinds[name], values[len(out)]))
        append_insides(self.writer, out)
        for step, weights in taken.firsts:
            assert self.first is not None  # firsts exist only when there is a first layer
            write_first_layer(self.writer, step=step, layer=self.first.name, kind=self.first.kind,
                              weights=weights.get().numpy())  # fmt: skip


def _trained(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters(recurse=False) if p.requires_grad]


def _ordered(record: _Record, weighted: list[tuple[str, list[nn.Parameter]]]) -> list[str]:
    """Layers in the order they ran, then weighted layers that did not run (unused heads)."""
    ran = list(record.acts)
    return ran + [n for n, _ in weighted if n not in record.acts and n in record.updates]


def _row(record: _Record, name: str) -> torch.Tensor:
    """(7,): act_mean, act_std, dead, saturated, grad_norm, weight_norm, update_norm."""
    acts, update = record.acts.get(name), record.updates.get(name)
    grad = record.grads.get(name)
    like = next(t for t in (acts, update, grad) if t is not None)
    nan = like.new_full((), math.nan)
    parts = [acts if acts is not None else nan.expand(4)]
    parts.append((grad if grad is not None else nan).reshape(1))
    parts.append(update if update is not None else nan.expand(2))
    return torch.cat(parts)


def _json_row(step: int, layer: str, kind: str, values: list[float]) -> dict[str, Any]:
    """One insides.jsonl row: STATS with nan as null; the ratio computed here, on the host."""
    stats = dict(zip(("act_mean", "act_std", "dead", "saturated", "grad_norm", "weight_norm"),
                     values[:6], strict=True))  # fmt: skip
    weight, update = values[5], values[6]
    stats["update_ratio"] = update / weight if weight > 0 else math.nan
    row: dict[str, Any] = {"step": step, "layer": layer, "kind": kind}
    row.update({k: None if math.isnan(v) else v for k, v in stats.items() if k in STATS})
    return row


def insides_recorder(config: TrainConfig, writer: RunWriter, model: nn.Module,
                     optimizer: torch.optim.Optimizer, *,
                     image_shape: Sequence[int]) -> InsidesRecorder | None:  # fmt: skip
    """The built-in loop's recorder for `config` (None when insides_every is 0). On CUDA the
    newest flush's copy stays in flight until the next one, like the metric windows."""
    if not config.insides_every:
        return None
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    return InsidesRecorder(writer, model, optimizer, every=config.insides_every,
                           steps=config.steps, image_shape=image_shape,
                           lag=1 if device.type == "cuda" else 0)  # fmt: skip
