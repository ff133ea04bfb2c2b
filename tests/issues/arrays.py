"""A ScanIndex built straight from arrays (no files): for property tests over odd inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recipe_core.data.source import DatasetSource, make_samples
from recipe_core.scan.index import INDEX_COLUMNS, ScanIndex
from recipe_core.scan.index.embed import pixel_embedding


def index_from_arrays(
    pixels: np.ndarray,
    labels: list[str],
    splits: list[str] | None = None,
    *,
    sizes: list[tuple[int, int]] | None = None,
    broken: set[int] | None = None,
) -> ScanIndex:
    """Rows in the given order; `broken` rows get a decode_error and zeroed arrays."""
    n = len(pixels)
    splits = splits or ["train"] * n
    paths = [f"img/{i:05d}.png" for i in range(n)]
    samples = make_samples(paths, labels, splits)  # sorted by path: rows keep the given order
    lum = pixels.astype(np.float64) / 255.0
    flat = lum.reshape(n, -1)
    broken = broken or set()
    ok = np.array([i not in broken for i in range(n)])
    w, h = zip(*(sizes or [(32, 32)] * n), strict=True)
    hashes = [str(hash(p.tobytes())) for p in pixels]
    table = samples.assign(
        format=np.where(ok, "PNG", ""), width=np.where(ok, w, 0), height=np.where(ok, h, 0),
        mode=np.where(ok, "L", ""), channels=np.where(ok, 1, 0).astype(np.int8), file_bytes=100,
        mtime_ns=0, mean_r=flat.mean(1), mean_g=flat.mean(1), mean_b=flat.mean(1),
        std_r=flat.std(1), std_g=flat.std(1), std_b=flat.std(1), brightness=flat.mean(1),
        contrast=flat.std(1), blur=1.0, entropy=np.array([_entropy(p) for p in pixels]),
        aspect_ratio=np.asarray(w) / np.asarray(h), byte_hash=hashes,
        pixel_hash=np.where(ok, hashes, ""), phash=0,
        decode_error=np.where(ok, "", "Truncated: test"),
    )  # fmt: skip
    for c in ("width", "height"):
        table[c] = table[c].astype(np.int32)
    emb = pixel_embedding(np.repeat(pixels[..., None], 3, axis=3))
    emb[~ok] = 0
    pix = np.where(ok[:, None, None], pixels, 0).astype(np.uint8)
    source = DatasetSource(root=Path("/nonexistent"), layout="image_folder", samples=samples)
    return ScanIndex(source=source, table=table[list(INDEX_COLUMNS)], embeddings=emb, pixels=pix)


def _entropy(p: np.ndarray) -> float:
    counts = np.bincount(p.ravel(), minlength=256) / p.size
    nz = counts[counts > 0]
    return float(-(nz * np.log2(nz)).sum())


def frame_unchanged(before: pd.DataFrame, after: pd.DataFrame) -> bool:
    return before.equals(after)
