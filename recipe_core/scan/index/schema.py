"""The scan index: one row per sample, plus aligned arrays too wide for a table.

`ScanIndex.table` columns (dtype, unit):
    sample_id int64 (stable id from the path) | path str (relative, POSIX) | label str | split str
    format str (PIL format, "" if undecodable) | width, height int32 (px) | mode str (PIL mode)
    channels int8 (bands of the file's mode: L=1, RGB=3, RGBA=4; 0 if undecodable)
    file_bytes int64 | mtime_ns int64 (-1 when the file could not be stat'ed)
    mean_r, mean_g, mean_b, std_r, std_g, std_b float32 (on RGB in [0, 1]; images larger than
        512 px are measured on a 512 px thumbnail)
    brightness float32 (mean luminance, [0, 1]) | contrast float32 (std of luminance, [0, 1])
    blur float32 (variance of the 4-neighbour Laplacian of the luminance, 0..255 scale, measured
        on the image downscaled to at most 64x64 px, never upscaled; low = blurry. Values depend
        on the working size, so compare blur among images of similar size)
    entropy float32 (bits, of the 8-bit luminance histogram, [0, 8])
    aspect_ratio float32 (width / height) | byte_hash str (hex of the file bytes; "" if unreadable)
    pixel_hash str (hex, decoded pixels + mode + size; "" if undecodable)
    phash int64 (64-bit DCT perceptual hash, bit pattern of a uint64) | decode_error str ("" = ok)
`ScanIndex.embeddings` (N, D) float32, L2-normalised, zeros where decode_error != "".
    `embedding_name` names the embedder ("pixels+hog": see recipe_core/scan/index/embed.py).
`ScanIndex.pixels` (N, 32, 32) uint8 luminance, resized ignoring aspect: cheap aligned pixel
    comparisons (near-duplicate verification). Zeros where decode_error != "".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recipe_core.data.source import DatasetSource

PIXEL_SIZE = 32  # side of the aligned luminance thumbnails in ScanIndex.pixels

INDEX_COLUMNS: tuple[str, ...] = (
    "sample_id", "path", "label", "split", "format", "width", "height", "mode", "channels",
    "file_bytes", "mtime_ns", "mean_r", "mean_g", "mean_b", "std_r", "std_g", "std_b",
    "brightness", "contrast", "blur", "entropy", "aspect_ratio", "byte_hash", "pixel_hash",
    "phash", "decode_error",
)  # fmt: skip


@dataclass(frozen=True)
class Departed:
    """Rows of the previous cached scan of this dataset that this scan no longer has as they
    were (files edited or removed), for detectors that update sums over rows where they would
    recompute them (the label ridge's Grams): their file-byte hashes and embeddings."""

    byte_hash: np.ndarray = field(repr=False)  # (M,) str
    embeddings: np.ndarray = field(repr=False)  # (M, D) float32


@dataclass(frozen=True)
class ScanIndex:
    source: DatasetSource = field(repr=False)
    table: pd.DataFrame = field(repr=False)  # INDEX_COLUMNS, row i <-> embeddings[i], pixels[i]
    embeddings: np.ndarray = field(repr=False)  # (N, D) float32
    pixels: np.ndarray = field(repr=False)  # (N, 32, 32) uint8
    embedding_name: str = "pixels+hog"  # which embedder produced `embeddings`
    fingerprint: str = ""  # content fingerprint: paths, labels, splits, file bytes, embedder
    reused: int = 0  # rows taken from the workspace cache instead of being decoded again
    # The previous cached scan's rows that changed or left (None: no previous scan was read).
    departed: Departed | None = field(default=None, repr=False, compare=False)

    @property
    def valid(self) -> np.ndarray:
        """(N,) bool: the sample decoded fully."""
        return (self.table["decode_error"] == "").to_numpy()

    def __len__(self) -> int:
        return len(self.table)
