"""What a run records on the device without a host sync: the probe batch, its prediction
snapshots every N steps, and the first training inputs exactly as model(x) received them.

Snapshots stay on the device until the training loop's next metric flush and travel with it, so
a snapshot adds no host sync. `recipe_core.dynamics` reads what these write.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from recipe_core.batch.tap import BatchTap, CapturedBatch

if TYPE_CHECKING:
    from recipe_core.runs import RunWriter


def choose_probe(labels: np.ndarray, *, size: int, seed: int) -> np.ndarray:
    """Indices of min(size, N) samples, class-balanced (round-robin over classes in a seeded
    order), sorted; so every class is watched even in a small probe."""
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    chosen: list[int] = []
    depth = 0
    while len(chosen) < min(size, len(labels)):
        chosen.extend(int(ix[depth]) for ix in per_class if depth < len(ix))
        depth += 1
    return np.sort(np.asarray(chosen[:size], dtype=np.int64))


class HostCopy:
    """A device tensor on its way to host memory: the copy is queued now, `get` waits for it."""

    def __init__(self, tensor: torch.Tensor) -> None:
        self.event: torch.cuda.Event | None = None
        if tensor.is_cuda:
            self.host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
            self.host.copy_(tensor, non_blocking=True)
            self.event = torch.cuda.Event()  # type: ignore[no-untyped-call]
            self.event.record()
        else:
            self.host = tensor

    def get(self) -> torch.Tensor:
        if self.event is not None:
            self.event.synchronize()
        return self.host


@dataclass(frozen=True)
class Snapshots:
    steps: list[int]
    probs: HostCopy  # (T, P, C) float32


class DynamicsRecorder:
    """Snapshots of softmax(model(probe_x)), kept on the device until taken for writing."""

    def __init__(
        self,
        writer: RunWriter,
        x: torch.Tensor,
        autocast: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> None:
        self.writer, self.x, self.autocast = writer, x, autocast  # x: (P, ...) on model's device
        self.pending: list[tuple[int, torch.Tensor]] = []

    @torch.no_grad()
    def snapshot(self, model: nn.Module, step: int) -> None:
        was_training = model.training
        model.eval()  # BatchNorm running stats, no dropout: the model as it would predict
        try:
            with self.autocast():
                logits = model(self.x)
            self.pending.append((step, logits.float().softmax(dim=1)))  # (P, C), stays on device
        finally:
            model.train(was_training)

    def take(self) -> Snapshots | None:
        """The snapshots so far, their copy to the host started (not waited for)."""
        if not self.pending:
            return None
        steps = [s for s, _ in self.pending]
        probs = torch.stack([p for _, p in self.pending])  # (T, P, C)
        self.pending.clear()
        return Snapshots(steps=steps, probs=HostCopy(probs))

    def write(self, snapshots: Snapshots | None) -> None:
        if snapshots is not None:
            self.writer.append_dynamics(snapshots.steps, snapshots.probs.get().numpy())

    def flush(self) -> None:
        """Take and write now (waits for the device)."""
        self.write(self.take())


def write_probe(
    writer: RunWriter,
    *,
    inputs: torch.Tensor,
    labels: torch.Tensor | None,
    sample_ids: np.ndarray | None = None,
    images: np.ndarray | None = None,
    classes: Sequence[str] = (),
) -> None:
    """probe.npz: the probe batch, once. `inputs` exactly as fed to the model."""
    n = int(inputs.shape[0])
    arrays: dict[str, np.ndarray] = {
        "inputs": inputs.detach().float().cpu().numpy(),
        "labels": (
            labels.detach().cpu().numpy().astype(np.int64)
            if labels is not None
            else np.full(n, -1, np.int64)
        ),
        "sample_ids": np.asarray(sample_ids if sample_ids is not None else np.arange(n), np.int64),
        "classes": np.asarray(list(classes), dtype=str),
    }
    if images is not None:
        arrays["images"] = images  # (P, C, H, W) uint8, for display
    writer.write_arrays("probe.npz", arrays)


class InputCapture:
    """Saves the first `count` training-mode inputs of `model` to batches/batch_NNN.npz, exactly
    as model(x) receives them (through the one `BatchTap` hook), then stops listening."""

    def __init__(
        self,
        writer: RunWriter,
        model: nn.Module,
        *,
        count: int,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self.writer, self.saved = writer, 0
        self.meta = dict(meta or {})
        self.targets: tuple[torch.Tensor, np.ndarray] | None = None
        self.tap = BatchTap(model, first=count, training_only=True, on_batch=self._save).open()

    @property
    def active(self) -> bool:
        return self.tap.active

    def set_targets(self, y: torch.Tensor, sample_ids: np.ndarray) -> None:
        """Labels and sample ids of the batch about to be fed (the hook only sees x)."""
        self.targets = (y, sample_ids)

    def _save(self, batch: CapturedBatch) -> None:
        arrays = {
            "x": _exact(batch.inputs),  # (B, ...) the exact tensor: float32, or its integer ids
            "index": np.asarray(self.saved),
            **{k: np.asarray(v) for k, v in self.meta.items()},
        }
        if self.targets is not None:
            arrays["y"] = self.targets[0].detach().cpu().numpy()
            arrays["sample_ids"] = np.asarray(self.targets[1], np.int64)
        self.writer.write_arrays(f"batches/batch_{self.saved:03d}.npz", arrays)
        self.saved, self.targets = self.saved + 1, None

    def close(self) -> None:
        self.tap.close()


def _exact(inputs: torch.Tensor) -> np.ndarray:
    """Floats as float32 (bf16/half have no numpy type), integers (token ids) as they are."""
    if torch.is_floating_point(inputs) or inputs.is_complex():
        return inputs.float().numpy()
    return inputs.numpy()
