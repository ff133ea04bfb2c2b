"""Prediction dynamics on a fixed probe batch, read back from a run (recorded by train/probes.py).

"Visualize prediction dynamics": the same few samples, re-predicted every N steps, show whether
the net is learning, oscillating (LR too high) or stuck. Snapshots stay on the device until the
training loop's next metric flush and travel with it, so a snapshot adds no host sync.
`learned_at`, `forgetting_events` and `sample_summary` turn the snapshots into per-sample facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from recipe_core.runs import RunReader


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
