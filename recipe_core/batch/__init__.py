"""What the net sees: capture the exact tensors fed to `model(x)` and decode them for display.

`BatchTap` records inputs at the model's door (a forward pre-hook), so whatever the loader,
collate function and augmentations did is what you look at. `inspect_batch` decodes one batch
(undoing a detected `Normalize`), measures it per channel and says what looks wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from recipe_core.batch.decode import (
    LAYOUTS,
    Normalization,
    batch_table,
    channel_stats,
    detect_layout,
    find_normalize,
    spatial_correlation,
    to_display,
    unit_images,
)
from recipe_core.batch.problems import (
    IGNORE_INDEX,
    BatchWarning,
    audio_warnings,
    duplicate_warnings,
    image_warnings,
    label_warnings,
    padding_warnings,
    scramble_warnings,
    shuffle_warning,
    value_warnings,
)
from recipe_core.batch.tap import BatchTap, CapturedBatch
from recipe_core.errors import ConfigError

__all__ = [
    "IGNORE_INDEX",
    "LAYOUTS",
    "BatchTap",
    "BatchView",
    "BatchWarning",
    "CapturedBatch",
    "Normalization",
    "detect_layout",
    "find_normalize",
    "inspect_batch",
    "scramble_warnings",
    "shuffle_warning",
    "spatial_correlation",
]


@dataclass(frozen=True)
class BatchView:
    layout: str  # one of LAYOUTS
    shape: tuple[int, ...]
    dtype: str
    device: str
    images: np.ndarray | None = field(repr=False)  # (B, H, W, C) uint8 for display, or None
    table: pd.DataFrame | None = field(repr=False)  # tables/sequences: one row per sample (x step)
    labels: np.ndarray = field(repr=False)  # labels as given (empty when none)
    label_names: tuple[str, ...] | None  # class name per sample when `classes` was given
    stats: pd.DataFrame = field(repr=False)  # one row per channel / feature
    warnings: tuple[BatchWarning, ...]
    normalize: Normalization | None  # the Normalize that was undone for display
    spatial_correlation: float | None  # mean neighbour-pixel correlation (images only)
    # (B,) int64 dataset sample ids, in batch order, where the loader's dataset has them (the
    # scan's sample_id: "what the net sees" marks the samples the scan flagged); else None
    sample_ids: np.ndarray | None = field(default=None, repr=False)


def inspect_batch(
    x: torch.Tensor,
    y: torch.Tensor | np.ndarray | Sequence[int] | None = None,
    *,
    classes: Sequence[str] | None = None,
    num_classes: int | None = None,
    normalize: Normalization | None = None,
    reference: torch.Tensor | None = None,
    layout: str | None = None,
) -> BatchView:
    """Decode, measure and sanity-check one batch exactly as the model receives it.

    `normalize` is the (mean, std) to undo for display (see `find_normalize`); `reference` is a
    few of the dataset's own images (N, C, H, W), whose spatial correlation tells a scrambled
    batch apart; `layout` overrides the guess (one of LAYOUTS).
    """
    if not isinstance(x, torch.Tensor):
        raise ConfigError(f"inspect_batch needs a torch.Tensor batch, got {type(x).__name__}.")
    layout = layout or detect_layout(x)
    if layout not in LAYOUTS:
        raise ConfigError(f"Unknown layout {layout!r}. Valid layouts: {', '.join(LAYOUTS)}.")
    labels = _labels_array(y)
    n_classes = num_classes if num_classes is not None else (len(classes) if classes else None)
    images, table, corr, warnings = _decode(x, labels, layout, normalize, reference)
    stats = channel_stats(x, layout)
    warnings += value_warnings(x, stats, layout)
    warnings += label_warnings(labels, n_classes)
    warnings += duplicate_warnings(x, layout)
    if layout == "audio":
        warnings += audio_warnings(x)
    if layout == "tokens":
        warnings += padding_warnings(x)
    names = None
    if classes is not None and labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer):
        names = tuple(classes[i] if 0 <= i < len(classes) else f"<{i}>" for i in labels)
    return BatchView(
        layout=layout, shape=tuple(x.shape), dtype=str(x.dtype), device=str(x.device),
        images=images, table=table, labels=labels, label_names=names, stats=stats,
        warnings=tuple(warnings), normalize=normalize, spatial_correlation=corr,
    )  # fmt: skip


def _decode(
    x: torch.Tensor, labels: np.ndarray, layout: str, normalize: Normalization | None,
    reference: torch.Tensor | None,
) -> tuple[np.ndarray | None, pd.DataFrame | None, float | None, list[BatchWarning]]:  # fmt: skip
    """Images for display (with their warnings), or a table for everything else."""
    if not layout.startswith("image"):
        return None, batch_table(x, labels), None, []
    unit = unit_images(x, layout, normalize)
    corr = spatial_correlation(unit)
    return to_display(unit), None, corr, image_warnings(x, layout, unit, corr, normalize, reference)


def _labels_array(y: torch.Tensor | np.ndarray | Sequence[int] | None) -> np.ndarray:
    if y is None:
        return np.empty(0, dtype=np.int64)
    if isinstance(y, torch.Tensor):
        return y.detach().to("cpu").numpy()
    return np.asarray(y)
