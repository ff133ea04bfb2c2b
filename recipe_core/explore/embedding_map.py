"""A 2-D map of a scan's embeddings: principal components, so similar images sit together and
clusters, outliers and mislabelled islands show at a glance (FiftyOne's embeddings panel).

    m = embedding_map(result.index.embeddings, valid=result.index.valid)
    m.xy[i]          # (2,) where sample row i sits; NaN for an undecodable file

PCA through numpy's SVD: deterministic (no random init, component signs fixed), linear (a
distance on the map is a distance in the embedding, shrunk), and fast for 1M rows: the axes
are fitted on at most `max_fit` evenly spaced rows, then every row is projected in blocks, so a
memory-mapped embedding matrix is never copied whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recipe_core.errors import ConfigError


@dataclass(frozen=True)
class EmbeddingMap:
    xy: np.ndarray = field(repr=False)  # (N, 2) float32 map coordinates, NaN where invalid
    explained: tuple[float, float]  # fraction of the embedding's variance along x and y
    n_fit: int  # rows the axes were fitted on


def embedding_map(
    embeddings: np.ndarray,
    *,
    valid: np.ndarray,
    max_fit: int = 50_000,
    block: int = 65_536,
) -> EmbeddingMap:
    """Project (N, D) `embeddings` onto their first two principal components; rows where
    `valid` is False (no embedding) get NaN."""
    if embeddings.ndim != 2:
        raise ConfigError(f"embeddings of shape {embeddings.shape}; expected (N, D).")
    if max_fit < 3:
        raise ConfigError(f"max_fit={max_fit}; fit the map on at least 3 rows.")
    rows = np.flatnonzero(np.asarray(valid, dtype=bool))
    xy = np.full((len(embeddings), 2), np.nan, dtype=np.float32)
    if len(rows) < 2:
        return EmbeddingMap(xy, (0.0, 0.0), len(rows))
    fit = rows[np.linspace(0, len(rows) - 1, min(max_fit, len(rows))).round().astype(np.int64)]
    fit = np.unique(fit)
    sample = np.asarray(embeddings[fit], dtype=np.float64)  # (F, D)
    mean = sample.mean(axis=0)
    _, s, vt = np.linalg.svd(sample - mean, full_matrices=False)
    axes = vt[:2]  # (k, D), k <= 2
    # an SVD's signs are arbitrary: make each axis's largest loading positive, so a rescan
    # of the same data draws the same map, not a mirror image
    axes = axes * np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])[:, None]
    variance = s**2
    share = variance[:2] / variance.sum() if variance.sum() > 0 else np.zeros(2)
    for start in range(0, len(rows), block):
        chunk = rows[start : start + block]
        projected = (np.asarray(embeddings[chunk], dtype=np.float64) - mean) @ axes.T
        xy[chunk, : len(axes)] = projected
        xy[chunk, len(axes) :] = 0.0  # a 1-D embedding: the map is a line
    explained = (float(share[0]), float(share[1]) if len(share) > 1 else 0.0)
    return EmbeddingMap(xy, explained, len(fit))
