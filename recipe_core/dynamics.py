"""Prediction dynamics on a fixed probe batch, and capture of the exact inputs fed to model(x).

"Visualize prediction dynamics": the same few samples, re-predicted every N steps, show whether
the net is learning, oscillating (LR too high) or stuck. Snapshots stay on the device until the
training loop's next metric flush and travel with it, so a snapshot adds no host sync.
`learned_at`, `forgetting_events` and `sample_summary` turn the snapshots into per-sample facts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import nn

if TYPE_CHECKING:
    from recipe_core.runs import RunReader, RunWriter


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


@dataclass(frozen=True)
class Dynamics:
    """Probe-batch predictions over training: `probs[t, i, c]` = p(class c | sample i) at
    `steps[t]`."""

    steps: np.ndarray  # (T,) int64
    probs: np.ndarray = field(repr=False)  # (T, P, C) float32
    labels: np.ndarray = field(repr=False)  # (P,) int64, -1 when unknown
    sample_ids: np.ndarray = field(repr=False)  # (P,) int64
    classes: tuple[str, ...] = ()

    def predictions(self) -> np.ndarray:
        """(T, P) argmax class."""
        return self.probs.argmax(axis=2) if self.probs.size else np.zeros((0, 0), np.int64)

    def true_class_prob(self) -> np.ndarray:
        """(T, P) probability given to each sample's own label (nan when unlabelled)."""
        if not self.probs.size:
            return np.zeros((0, len(self.labels)), np.float32)
        safe = np.clip(self.labels, 0, None)
        picked = np.take_along_axis(self.probs, safe[None, :, None], axis=2)[..., 0]
        return np.where(self.labels[None, :] >= 0, picked, np.nan)

    def flips(self) -> np.ndarray:
        """(P,) how often each sample's predicted class changed between snapshots."""
        pred = self.predictions()
        return (
            (np.diff(pred, axis=0) != 0).sum(axis=0)
            if len(pred) > 1
            else np.zeros(pred.shape[1] if pred.ndim == 2 else 0, np.int64)
        )

    def to_frame(self) -> pd.DataFrame:
        """Long table: step, sample_id, label, predicted, p_label, confidence."""
        t, p = self.probs.shape[:2] if self.probs.size else (0, len(self.labels))
        return pd.DataFrame({
            "step": np.repeat(self.steps, p),
            "sample_id": np.tile(self.sample_ids, t),
            "label": np.tile(self.labels, t),
            "predicted": self.predictions().reshape(-1),
            "p_label": self.true_class_prob().reshape(-1),
            "confidence": self.probs.max(axis=2).reshape(-1) if t else np.zeros(0),
        })  # fmt: skip


def read_dynamics(reader: RunReader) -> Dynamics:
    """The run's dynamics so far (tails dynamics.jsonl: call again for new snapshots)."""
    steps, probs = reader.dynamics()
    probe = reader.arrays("probe.npz")
    n = probs.shape[1] if probs.size else len(probe.get("labels", ()))
    labels = probe.get("labels", np.full(n, -1, np.int64)).astype(np.int64)
    ids = probe.get("sample_ids", np.arange(n, dtype=np.int64)).astype(np.int64)
    classes = tuple(str(c) for c in probe.get("classes", ()))
    return Dynamics(steps=steps, probs=probs, labels=labels, sample_ids=ids, classes=classes)


def learned_mask(dyn: Dynamics, *, threshold: float | None = None) -> np.ndarray:
    """(T, P) bool: whether sample i counts as learned at snapshot t: its label is the top
    prediction (threshold None), or gets probability >= `threshold`. Unlabelled: never."""
    if not dyn.probs.size:
        return np.zeros((0, len(dyn.labels)), dtype=bool)
    if threshold is None:
        hit = dyn.predictions() == dyn.labels[None, :]
    else:
        hit = np.nan_to_num(dyn.true_class_prob(), nan=-1.0) >= threshold
    return np.asarray(hit & (dyn.labels[None, :] >= 0))


def learned_at(dyn: Dynamics, *, threshold: float | None = None) -> np.ndarray:
    """(P,) int64: the step of the snapshot from which each sample stays learned through the
    last one; -1 when it is not learned at the last snapshot (or has no label)."""
    ok = learned_mask(dyn, threshold=threshold)
    t = len(ok)
    if t == 0:
        return np.full(len(dyn.labels), -1, np.int64)
    missed = ~ok
    last_miss = np.where(missed.any(axis=0), t - 1 - missed[::-1].argmax(axis=0), -1)
    stable_from = last_miss + 1  # (P,) snapshot index in [0, t]; t = not learned at the end
    steps = dyn.steps[np.minimum(stable_from, t - 1)]
    return np.where(stable_from < t, steps, -1).astype(np.int64)


def forgetting_events(dyn: Dynamics, *, threshold: float | None = None) -> np.ndarray:
    """(P,) int64: how often each sample went from learned at one snapshot to not learned at
    the next (Toneva et al. 2019, "An Empirical Study of Example Forgetting")."""
    ok = learned_mask(dyn, threshold=threshold)
    if len(ok) < 2:
        return np.zeros(len(dyn.labels), np.int64)
    return np.asarray((ok[:-1] & ~ok[1:]).sum(axis=0), dtype=np.int64)


def sample_summary(dyn: Dynamics, *, threshold: float | None = None) -> pd.DataFrame:
    """One row per probe sample, keyed by `sample_id`: label, learned_at (-1: not learned),
    forgetting_events, flips, and the last snapshot's predicted class and p_label."""
    last = len(dyn.steps) - 1
    empty = np.full(len(dyn.labels), -1, np.int64)
    return pd.DataFrame({
        "sample_id": dyn.sample_ids,
        "label": dyn.labels,
        "learned_at": learned_at(dyn, threshold=threshold),
        "forgetting_events": forgetting_events(dyn, threshold=threshold),
        "flips": dyn.flips() if last >= 0 else np.zeros(len(dyn.labels), np.int64),
        "predicted": dyn.predictions()[last] if last >= 0 else empty,
        "p_label": dyn.true_class_prob()[last] if last >= 0 else np.full(len(empty), np.nan),
    })  # fmt: skip


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
    """A forward pre-hook that saves the first `count` training-mode inputs of `model` to
    batches/batch_NNN.npz, exactly as model(x) receives them, then removes itself."""

    def __init__(
        self,
        writer: RunWriter,
        model: nn.Module,
        *,
        count: int,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self.writer, self.count, self.saved = writer, count, 0
        self.meta = dict(meta or {})
        self.targets: tuple[torch.Tensor, np.ndarray] | None = None
        self.handle = model.register_forward_pre_hook(self._hook) if count > 0 else None

    @property
    def active(self) -> bool:
        return self.handle is not None

    def set_targets(self, y: torch.Tensor, sample_ids: np.ndarray) -> None:
        """Labels and sample ids of the batch about to be fed (the hook only sees x)."""
        self.targets = (y, sample_ids)

    def _hook(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        if not module.training or not args or not isinstance(args[0], torch.Tensor):
            return
        x = args[0].detach().float().cpu()  # (B, ...) float32, the exact tensor
        arrays = {
            "x": x.numpy(),
            "index": np.asarray(self.saved),
            **{k: np.asarray(v) for k, v in self.meta.items()},
        }
        if self.targets is not None:
            arrays["y"] = self.targets[0].detach().cpu().numpy()
            arrays["sample_ids"] = np.asarray(self.targets[1], np.int64)
        self.writer.write_arrays(f"batches/batch_{self.saved:03d}.npz", arrays)
        self.saved, self.targets = self.saved + 1, None
        if self.saved >= self.count:
            self.close()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.remove()
            self.handle = None
