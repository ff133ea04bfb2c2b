"""Per-sample predictions at each evaluation, computed on the device with no per-chunk sync.

Each evaluated chunk of logits becomes one packed (B, 4 + 2k) float32 tensor on the device
(label, loss, p(label), margin, top-k probabilities, top-k classes); after the evaluation the
chunks are concatenated and fetched in one transfer, then written by runs/predictions.py.
Class ids travel as float32: exact up to 2**24 classes.

The same rows come from a script's own probabilities (`prediction_frame`, used by
`Run.log_predictions`) and from pipeline runs (`PredictionRecorder(ids="position")`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from recipe_core.errors import ConfigError
from recipe_core.runs import RunWriter
from recipe_core.runs.predictions import MAX_TOP_K, PredictionStore, top_columns

FIXED = 4  # packed columns before the top-k ones: label, loss, p_label, margin


def pack(logits: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    """(B, C) logits, (B,) int labels -> (B, 4 + 2k) float32, on their device, no sync."""
    logits = logits.float()
    probs = logits.softmax(dim=1)  # (B, C)
    loss = F.cross_entropy(logits, y, reduction="none")  # (B,)
    p_label = probs.gather(1, y[:, None])[:, 0]
    others = probs.scatter(1, y[:, None], -1.0)  # the true class can never be the best other
    margin = p_label - others.max(dim=1).values  # > 0 exactly when the prediction is right
    top_p, top_c = probs.topk(k, dim=1)  # (B, k) each, most probable first
    fixed = torch.stack([y.float(), loss, p_label, margin], dim=1)
    return torch.cat([fixed, top_p, top_c.float()], dim=1)


def unpack(packed: np.ndarray, sample_ids: np.ndarray, step: int) -> pd.DataFrame:
    """The host copy of the concatenated packs as prediction rows (runs/predictions.py)."""
    k = (packed.shape[1] - FIXED) // 2
    top_p, top_c = packed[:, FIXED : FIXED + k], packed[:, FIXED + k :].astype(np.int32)
    label = packed[:, 0].astype(np.int32)
    frame = pd.DataFrame({
        "sample_id": np.asarray(sample_ids, dtype=np.int64), "step": np.int64(step),
        "label": label, "predicted": top_c[:, 0], "correct": top_c[:, 0] == label,
        "loss": packed[:, 1], "confidence": top_p[:, 0], "p_label": packed[:, 2],
        "margin": packed[:, 3],
    })  # fmt: skip
    names = top_columns(k)
    for i in range(k):
        frame[names[i]] = top_c[:, i]
        frame[names[k + i]] = top_p[:, i].astype(np.float32)
    return frame


class PredictionRecorder:
    """Collects one evaluation's packed chunks (`add`, device only), then `write(step, ids)`:
    the one transfer and the write. `ids="position"` when `sample_ids` are loader positions."""

    def __init__(self, writer: RunWriter, *, num_classes: int, ids: str = "sample_id") -> None:
        self.k = min(MAX_TOP_K, num_classes)
        self.store = PredictionStore(writer.files, ids=ids)
        self.parts: list[torch.Tensor] = []

    def add(self, logits: object, y: torch.Tensor) -> None:
        """Pack one chunk; outputs that are not (B, C) class scores for (B,) labels are skipped
        (a pipeline's model may return anything its loss accepts)."""
        if not isinstance(logits, torch.Tensor):
            return
        if logits.ndim == 2 and y.ndim == 1 and logits.shape[1] >= 2 and len(y) == len(logits):
            self.parts.append(pack(logits.detach(), y, min(self.k, logits.shape[1])))

    def write(self, step: int, sample_ids: np.ndarray | None = None) -> None:
        """Fetch and write what `add` collected since the last write (nothing when empty);
        `sample_ids=None`: positions 0..N-1 in the order evaluated (pipeline runs)."""
        parts, self.parts = self.parts, []
        if not parts:
            return
        packed = torch.cat(parts).cpu().numpy()  # (N, 4 + 2k): the one device->host copy
        if sample_ids is None:
            sample_ids = np.arange(len(packed), dtype=np.int64)
        if len(packed) != len(sample_ids):
            raise ConfigError(
                f"{len(packed)} predictions for {len(sample_ids)} sample ids at step {step}: "
                "pass one id per evaluated sample, in the order the model saw them."
            )
        self.store.add(unpack(packed, sample_ids, step))


def prediction_frame(step: int, sample_ids: object, probs: object, labels: object) -> pd.DataFrame:
    """Prediction rows from a script's own (N, C) probabilities (each row sums to 1) and (N,)
    integer labels: the rows a built-in run writes, through the same arithmetic."""
    p = torch.as_tensor(np.asarray(_host(probs), dtype=np.float32))
    y = torch.as_tensor(np.asarray(_host(labels))).long()
    ids = np.asarray(_host(sample_ids))
    if p.ndim != 2 or y.ndim != 1 or len(p) != len(y) or len(ids) != len(y):
        raise ConfigError(
            f"log_predictions needs probs (N, C), labels (N,) and sample_ids (N,); got "
            f"{tuple(p.shape)}, {tuple(y.shape)} and {ids.shape}. Pass softmax(logits)."
        )
    if len(p) and not torch.allclose(p.sum(dim=1), torch.ones(len(p)), atol=1e-3):
        raise ConfigError("probs rows do not sum to 1: pass softmax(logits), not the logits.")
    logits = p.clamp_min(1e-12).log()  # log-probabilities: cross_entropy(log p) = -log p[y]
    return unpack(pack(logits, y, min(MAX_TOP_K, p.shape[1])).numpy(), ids, step)


def _host(value: object) -> object:
    """A tensor (any device) as a host array; anything else as it is."""
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
