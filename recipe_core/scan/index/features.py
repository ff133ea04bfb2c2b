"""Per-chunk feature extraction: the work a scan worker process does for a list of files.

Decoding is per file (Pillow), everything after it is batched: the chunk's images are stacked
by shape and the statistics, hashes and embeddings are computed with a few numpy calls per
chunk rather than per image, which is what makes a scan of small images fast.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image

from recipe_core.scan.index.decode import DecodedFile, decode_file
from recipe_core.scan.index.embed import (
    EMBEDDING_DIM,
    laplacian_variance,
    luminance,
    perceptual_hash,
    pixel_embedding,
)
from recipe_core.scan.index.schema import PIXEL_SIZE

STATS_MAX_SIDE = 512  # px: colour statistics of larger images are taken on a thumbnail this big
BLUR_SIDE = 64  # px: blur is measured on the luminance downscaled to at most this (never upscaled)
STACK_PIXELS = 1 << 22  # most pixels stacked into one numpy batch (bounds worker memory)

# Feature columns a worker fills; the scan adds sample_id, path, label, split, file_bytes, mtime_ns.
FEATURE_COLUMNS: tuple[str, ...] = (
    "format", "width", "height", "mode", "channels", "mean_r", "mean_g", "mean_b",
    "std_r", "std_g", "std_b", "brightness", "contrast", "blur", "entropy", "aspect_ratio",
    "byte_hash", "pixel_hash", "phash", "decode_error",
)  # fmt: skip
_STAT_NAMES = (
    "mean_r", "mean_g", "mean_b", "std_r", "std_g", "std_b", "brightness", "contrast", "entropy",
)  # fmt: skip


@dataclass(frozen=True)
class ChunkFeatures:
    columns: dict[str, np.ndarray] = field(repr=False)  # FEATURE_COLUMNS -> (n,) arrays
    embeddings: np.ndarray = field(repr=False)  # (n, EMBEDDING_DIM) float32
    pixels: np.ndarray = field(repr=False)  # (n, 32, 32) uint8 luminance

    def __len__(self) -> int:
        return len(self.pixels)


def index_chunk(paths: Sequence[str]) -> ChunkFeatures:
    """Features of each file in `paths` (absolute); undecodable files get zeros + decode_error."""
    decoded, views, ok = [], [], []
    for i, path in enumerate(paths):
        d = decode_file(path)
        if d.image is not None:
            views.append(_views(d.image))  # (stats, blur, 32 px) arrays: small, unlike a photo
            ok.append(i)
            d = replace(d, image=None)  # a chunk of decoded 12 MP photos would not fit in RAM
        decoded.append(d)
    n = len(paths)
    columns = _file_columns(decoded)
    for name in (*_STAT_NAMES, "blur"):
        columns[name] = np.zeros(n, dtype=np.float32)
    columns["phash"] = np.zeros(n, dtype=np.int64)
    embeddings = np.zeros((n, EMBEDDING_DIM), dtype=np.float32)
    pixels = np.zeros((n, PIXEL_SIZE, PIXEL_SIZE), dtype=np.uint8)
    if views:
        for name, values in _grouped(_stack_stats, [v[0] for v in views]).items():
            columns[name][ok] = values
        columns["blur"][ok] = _grouped(_blur, [v[1] for v in views])["blur"]
        rgb32 = np.stack([v[2] for v in views])  # (k, 32, 32, 3) uint8
        lum32 = luminance(rgb32)
        pixels[ok] = np.clip(lum32 + 0.5, 0, 255).astype(np.uint8)
        columns["phash"][ok] = perceptual_hash(lum32)
        embeddings[ok] = pixel_embedding(rgb32)
    return ChunkFeatures(columns=columns, embeddings=embeddings, pixels=pixels)


def _views(im: Image.Image) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The image as (H, W, 3) uint8 arrays at three working sizes; a small image is converted
    once and shared (Pillow's per-call overhead dominates at 32 px)."""
    full = np.asarray(im)
    w, h = im.size
    stats = full if max(w, h) <= STATS_MAX_SIDE else _resized(im, _fit(w, h, STATS_MAX_SIDE))
    blur = full if max(w, h) <= BLUR_SIDE else _resized(im, (min(w, BLUR_SIDE), min(h, BLUR_SIDE)))
    thumb = full if (w, h) == (PIXEL_SIZE, PIXEL_SIZE) else _resized(im, (PIXEL_SIZE, PIXEL_SIZE))
    return stats, blur, thumb


def _fit(w: int, h: int, side: int) -> tuple[int, int]:
    scale = side / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def _resized(im: Image.Image, size: tuple[int, int]) -> np.ndarray:
    # reducing_gap: a cheap box-reduce first for big images, the same result to the eye.
    return np.asarray(im.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0))


def _grouped(
    fn: Callable[[np.ndarray], dict[str, np.ndarray]], arrays: list[np.ndarray]
) -> dict[str, np.ndarray]:
    """Apply a batched `fn` to arrays stacked by shape (in bounded batches); values in order."""
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for i, a in enumerate(arrays):
        groups[a.shape].append(i)
    out: dict[str, np.ndarray] = {}
    for shape, members in groups.items():
        step = max(1, STACK_PIXELS // (shape[0] * shape[1]))
        for start in range(0, len(members), step):
            idx = members[start : start + step]
            for name, values in fn(np.stack([arrays[i] for i in idx])).items():
                out.setdefault(name, np.zeros(len(arrays), dtype=np.float32))[idx] = values
    return out


def _blur(rgb: np.ndarray) -> dict[str, np.ndarray]:
    return {"blur": laplacian_variance(luminance(rgb))}


def _file_columns(decoded: list[DecodedFile]) -> dict[str, np.ndarray]:
    width = np.array([d.width for d in decoded], dtype=np.int32)
    height = np.array([d.height for d in decoded], dtype=np.int32)
    return {
        "format": np.array([d.format for d in decoded], dtype=object),
        "width": width,
        "height": height,
        "mode": np.array([d.mode for d in decoded], dtype=object),
        "channels": np.array([_bands(d.mode) for d in decoded], dtype=np.int8),
        "aspect_ratio": (width / np.maximum(height, 1)).astype(np.float32),
        "byte_hash": np.array([d.data_hash.hex() for d in decoded], dtype=object),
        "pixel_hash": np.array([d.pixel_hash for d in decoded], dtype=object),
        "decode_error": np.array([d.error for d in decoded], dtype=object),
    }


def _bands(mode: str) -> int:
    return Image.getmodebands(mode) if mode else 0


def _stack_stats(rgb: np.ndarray) -> dict[str, np.ndarray]:
    """(k, H, W, 3) uint8 -> statistics on the [0, 1] scale; entropy in bits."""
    k = rgb.shape[0]
    # Channel-first and contiguous: numpy reduces the last axis several times faster.
    x = np.ascontiguousarray(rgb.reshape(k, -1, 3).transpose(0, 2, 1), dtype=np.float32)
    mean = x.mean(axis=2)  # (k, 3) on 0..255
    std = np.sqrt(np.maximum((x * x).mean(axis=2) - mean * mean, 0))
    mean, std = mean / 255.0, std / 255.0
    lum = luminance(rgb).reshape(k, -1)  # (k, H*W) on 0..255
    lum_mean = lum.mean(axis=1)
    lum_std = np.sqrt(np.maximum((lum * lum).mean(axis=1) - lum_mean * lum_mean, 0))
    codes = np.clip(lum + 0.5, 0, 255).astype(np.int64) + 256 * np.arange(k)[:, None]
    counts = np.bincount(codes.ravel(), minlength=256 * k).reshape(k, 256)
    p = counts / lum.shape[1]
    entropy = -(p * np.log2(np.where(p > 0, p, 1.0))).sum(axis=1)
    return {
        "mean_r": mean[:, 0], "mean_g": mean[:, 1], "mean_b": mean[:, 2],
        "std_r": std[:, 0], "std_g": std[:, 1], "std_b": std[:, 2],
        "brightness": lum_mean / 255.0, "contrast": lum_std / 255.0,
        "entropy": entropy,
    }  # fmt: skip
