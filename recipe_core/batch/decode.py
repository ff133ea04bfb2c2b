"""Decode a batch for display: find and undo `Normalize`, guess the layout, measure channels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

LAYOUTS = ("image_chw", "image_hwc", "table", "sequence", "tokens", "audio")
AUDIO_MIN_SAMPLES = 4000  # a float row at least this long, alone or in one channel, is a waveform
Normalization = tuple[tuple[float, ...], tuple[float, ...]]  # (mean, std) per channel


def find_normalize(obj: object, *, depth: int = 4) -> Normalization | None:
    """The torchvision `Normalize` behind a loader / dataset / transform chain, if any."""
    if obj is None or depth < 0:
        return None
    if type(obj).__name__ == "Normalize" and hasattr(obj, "mean") and hasattr(obj, "std"):
        mean, std = getattr(obj, "mean"), getattr(obj, "std")  # noqa: B009
        return tuple(float(m) for m in mean), tuple(float(s) for s in std)
    candidates: list[object] = []
    for name in ("normalize", "dataset", "transform", "transforms", "data", "loader"):
        candidates.append(getattr(obj, name, None))
    if isinstance(obj, (list, tuple)):
        candidates.extend(obj)
    for candidate in candidates:
        if candidate is obj or isinstance(candidate, (torch.Tensor, np.ndarray, str)):
            continue
        found = find_normalize(candidate, depth=depth - 1)
        if found is not None:
            return found
    return None


def detect_layout(x: torch.Tensor) -> str:
    """Guess what a batch is from its shape and dtype: images (CHW or HWC), a table, a sequence
    of vectors, or token ids."""
    if x.ndim == 4:
        channel_like = (1, 2, 3, 4)
        if x.shape[-1] in channel_like and x.shape[1] not in channel_like:
            return "image_hwc"
        return "image_chw"
    floating = torch.is_floating_point(x)
    long_rows = floating and x.ndim in (2, 3) and x.shape[-1] >= AUDIO_MIN_SAMPLES
    if long_rows and (x.ndim == 2 or x.shape[1] in (1, 2)):  # (B, T) or (B, channels, T)
        return "audio"
    if x.ndim == 3:
        return "tokens" if not floating else "sequence"
    if x.ndim == 2 and not torch.is_floating_point(x) and x.shape[1] > 1:
        return "tokens"
    return "table"


def as_chw(x: torch.Tensor, layout: str) -> torch.Tensor:
    """(B, C, H, W) view of an image batch in either layout."""
    return x.permute(0, 3, 1, 2) if layout == "image_hwc" else x


def unit_images(x: torch.Tensor, layout: str, normalize: Normalization | None) -> torch.Tensor:
    """(B, C, H, W) float32 on the [0, 1] display scale: undo `normalize` when known, else scale
    robustly (uint8 / 255, [0, 255] floats / 255, or the batch's 0.5-99.5 percentiles)."""
    img = as_chw(x.detach().to("cpu"), layout).float()
    if normalize is not None and len(normalize[0]) in (1, img.shape[1]):
        mean = torch.tensor(normalize[0]).view(1, -1, 1, 1)
        std = torch.tensor(normalize[1]).view(1, -1, 1, 1)
        return img * std + mean
    finite = img[torch.isfinite(img)]
    if finite.numel() == 0:
        return torch.zeros_like(img)
    lo, hi = float(finite.min()), float(finite.max())
    if x.dtype == torch.uint8 or (lo >= 0 and 1 < hi <= 255):
        return img / 255
    if lo >= 0 and hi <= 1:
        return img
    sample = finite[torch.randperm(finite.numel(), generator=torch.Generator().manual_seed(0))]
    qlo, qhi = torch.quantile(sample[:100_000], torch.tensor([0.005, 0.995])).tolist()
    scaled: torch.Tensor = (img - qlo) / max(qhi - qlo, 1e-8)
    return scaled


def to_display(unit: torch.Tensor) -> np.ndarray:
    """(B, H, W, C) uint8 from a (B, C, H, W) [0, 1] batch (values outside are clipped)."""
    clean = torch.nan_to_num(unit, nan=0.0, posinf=1.0, neginf=0.0).clamp(0, 1)
    return (clean * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def spatial_correlation(images: torch.Tensor) -> float:
    """Mean correlation of horizontally and vertically neighbouring pixels of (B, C, H, W)
    images: ~0.8-1 for photos, digits and drawings; near 0 for noise or scrambled memory."""
    x = torch.nan_to_num(images.float())
    x = x - x.mean(dim=(2, 3), keepdim=True)

    def corr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        num = (a * b).sum(dim=(2, 3))
        den = (a.square().sum(dim=(2, 3)) * b.square().sum(dim=(2, 3))).sqrt()
        ok = den > 1e-12
        return (num[ok] / den[ok]) if bool(ok.any()) else torch.zeros(1)

    h = corr(x[..., :, :-1], x[..., :, 1:])
    v = corr(x[..., :-1, :], x[..., 1:, :])
    return float((h.mean() + v.mean()) / 2)


def channel_stats(x: torch.Tensor, layout: str) -> pd.DataFrame:
    """One row per channel (images), feature (tables, sequences) or one row (tokens)."""
    t = x.detach()
    if layout in ("image_chw", "image_hwc"):
        per = as_chw(t, layout).transpose(0, 1).reshape(as_chw(t, layout).shape[1], -1)
    elif layout == "audio" and t.ndim == 3:
        per = t.transpose(0, 1).reshape(t.shape[1], -1)
    elif layout in ("table", "sequence") and t.ndim >= 2:
        per = t.reshape(-1, t.shape[-1]).transpose(0, 1)
    else:
        per = t.reshape(1, -1)
    per = per.double()
    finite = torch.isfinite(per)
    clean = torch.where(finite, per, torch.zeros_like(per))
    count = finite.sum(dim=1).clamp_min(1)
    mean = clean.sum(dim=1) / count
    var = (torch.where(finite, per - mean[:, None], torch.zeros_like(per)) ** 2).sum(1) / count
    big = torch.finfo(torch.float64).max
    rows = {
        "channel": list(range(per.shape[0])),
        "min": torch.where(finite, per, torch.full_like(per, big)).min(dim=1).values.tolist(),
        "max": torch.where(finite, per, torch.full_like(per, -big)).max(dim=1).values.tolist(),
        "mean": mean.tolist(),
        "std": var.sqrt().tolist(),
        "nan": torch.isnan(per).sum(dim=1).tolist(),
        "inf": torch.isinf(per).sum(dim=1).tolist(),
    }
    frame = pd.DataFrame(rows)
    frame["dtype"], frame["device"] = str(x.dtype), str(x.device)
    frame["shape"] = "x".join(str(s) for s in x.shape)
    return frame


def batch_table(x: torch.Tensor, labels: np.ndarray, *, max_columns: int = 32) -> pd.DataFrame:
    """Tables and sequences as a DataFrame: one row per sample (per sample x step for vector
    sequences), at most `max_columns` value columns, plus the label when it is per sample."""
    t = x.detach().to("cpu")
    if t.ndim == 3:
        b, steps, _ = t.shape
        values = t[:, :, :max_columns].reshape(b * steps, -1).numpy()
        frame = pd.DataFrame(values, columns=[f"x{j}" for j in range(values.shape[1])])
        frame.insert(0, "step", np.tile(np.arange(steps), b))
        frame.insert(0, "sample", np.repeat(np.arange(b), steps))
        return frame
    values = t.reshape(t.shape[0], -1)[:, :max_columns].numpy()
    prefix = "t" if not torch.is_floating_point(t) else "x"
    frame = pd.DataFrame(values, columns=[f"{prefix}{j}" for j in range(values.shape[1])])
    if labels.ndim == 1 and len(labels) == len(frame):
        frame["label"] = labels
    return frame
