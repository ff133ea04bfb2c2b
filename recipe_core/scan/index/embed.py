"""Fixed, offline image descriptors computed on aligned 32x32 thumbnails, a whole batch at once.

The default embedding ("pixels+hog") needs no weights and works for any image data:

    luminance thumbnail  16x16, mean-removed, unit norm       256 dims  (layout, shape)
    HOG                  4x4 cells of 8x8 px, 9 unsigned bins 144 dims  (strokes, edges)
    colour histogram     4x4x4 joint RGB bins, square-rooted   64 dims  (colour vs grey, tint)

Each block is L2-normalised, weighted, concatenated and L2-normalised again, so cosine similarity
is a dot product. The thumbnail and HOG blocks make digits separable by a linear model; the colour
block makes a colour photograph stand far from grey strokes (outliers) while a brightness change
leaves the thumbnail block unchanged (near duplicates).
"""

from __future__ import annotations

import numpy as np

THUMB_SIDE = 16  # side of the luminance-thumbnail block
HOG_CELL = 8  # px per HOG cell side on the 32 px thumbnail
HOG_BINS = 9  # unsigned orientation bins over [0, pi)
COLOUR_BINS = 4  # bins per channel of the joint RGB histogram
BLOCK_WEIGHTS = (1.0, 1.0, 0.8)  # thumbnail, HOG, colour: colour a little quieter than shape
EMBEDDING_DIM = THUMB_SIDE**2 + (32 // HOG_CELL) ** 2 * HOG_BINS + COLOUR_BINS**3
DEFAULT_EMBEDDING = "pixels+hog"
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601, as PIL's convert("L")


def luminance(rgb: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, H, W) float32 luminance on the 0..255 scale."""
    return rgb.astype(np.float32) @ LUMA


def pixel_embedding(rgb32: np.ndarray) -> np.ndarray:
    """(N, 32, 32, 3) uint8 -> (N, EMBEDDING_DIM) float32, rows of unit length."""
    lum = luminance(rgb32) / 255.0  # (N, 32, 32) in [0, 1]
    blocks = (_thumbnail_block(lum), _hog_block(lum), _colour_block(rgb32))
    out = np.concatenate([w * b for w, b in zip(BLOCK_WEIGHTS, blocks, strict=True)], axis=1)
    return _unit_rows(out)


def _thumbnail_block(lum: np.ndarray) -> np.ndarray:
    n, side = lum.shape[0], lum.shape[1]
    k = side // THUMB_SIDE
    small = lum.reshape(n, THUMB_SIDE, k, THUMB_SIDE, k).mean(axis=(2, 4)).reshape(n, -1)
    return _unit_rows(small - small.mean(axis=1, keepdims=True))


def _hog_block(lum: np.ndarray) -> np.ndarray:
    """Histograms of gradient orientation per cell, magnitude-weighted, with linear
    interpolation between neighbouring bins (so a small rotation moves mass smoothly)."""
    n, side = lum.shape[0], lum.shape[1]
    gx = np.zeros_like(lum)
    gy = np.zeros_like(lum)
    gx[:, :, 1:-1] = lum[:, :, 2:] - lum[:, :, :-2]
    gy[:, 1:-1, :] = lum[:, 2:, :] - lum[:, :-2, :]
    mag = np.sqrt(gx * gx + gy * gy)
    angle = np.arctan2(gy, gx)
    angle += np.float32(np.pi) * (angle < 0)  # unsigned orientation in [0, pi]; `%` is 20x slower
    pos = angle * np.float32(HOG_BINS / np.pi) - np.float32(0.5)  # integer at bin centres
    low = np.floor(pos)
    frac = pos - low
    low_bin = low.astype(
        np.intp
    )  # -1 .. HOG_BINS - 1: wrap the ends around (orientation is cyclic)
    high_bin = low_bin + 1
    low_bin[low_bin < 0] = HOG_BINS - 1
    high_bin[high_bin >= HOG_BINS] = 0
    cells = side // HOG_CELL
    cell = (np.arange(side) // HOG_CELL)[:, None] * cells + np.arange(side) // HOG_CELL
    base = (np.arange(n)[:, None, None] * cells * cells + cell) * HOG_BINS  # (N, side, side)
    size = n * cells * cells * HOG_BINS
    hist = np.bincount((base + low_bin).ravel(), (mag * (1 - frac)).ravel(), minlength=size)
    hist += np.bincount((base + high_bin).ravel(), (mag * frac).ravel(), minlength=size)
    flat = _unit_rows(hist.reshape(n, -1))
    return _unit_rows(np.minimum(flat, 0.2))  # HOG's clip-and-renormalise: no edge dominates


def _colour_block(rgb32: np.ndarray) -> np.ndarray:
    n = rgb32.shape[0]
    q = (rgb32 // (256 // COLOUR_BINS)).astype(np.int64)  # (N, 32, 32, 3) in [0, COLOUR_BINS)
    code = (q[..., 0] * COLOUR_BINS + q[..., 1]) * COLOUR_BINS + q[..., 2]
    code = code.reshape(n, -1) + (np.arange(n) * COLOUR_BINS**3)[:, None]
    counts = np.bincount(code.ravel(), minlength=n * COLOUR_BINS**3).reshape(n, -1)
    # sqrt of a probability vector has unit L2 norm: the Hellinger embedding of the histogram.
    hellinger: np.ndarray = np.sqrt(counts / counts.sum(axis=1, keepdims=True))
    return hellinger.astype(np.float32)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit: np.ndarray = x / np.maximum(norms, 1e-12)
    return unit.astype(np.float32)


def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II as a matrix: coefficients = D @ x @ D.T, batched by matmul."""
    k = np.arange(n)[:, None]
    d = np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    d[0] /= np.sqrt(2.0)
    matrix: np.ndarray = d.astype(np.float32)
    return matrix


DCT32 = _dct_matrix(32)
BIT_WEIGHTS = (1 << np.arange(64, dtype=np.uint64)).astype(np.uint64)


def perceptual_hash(lum32: np.ndarray) -> np.ndarray:
    """(N, 32, 32) luminance -> (N,) int64 pHash: the 8x8 lowest DCT frequencies compared to
    their median (the DC term excluded from the median, as in the classic pHash)."""
    coeffs = (DCT32 @ lum32.astype(np.float32) @ DCT32.T)[:, :8, :8].reshape(len(lum32), 64)
    median = np.median(coeffs[:, 1:], axis=1, keepdims=True)
    bits = (coeffs > median).astype(np.uint64)
    packed: np.ndarray = (bits * BIT_WEIGHTS).sum(axis=1, dtype=np.uint64)
    return packed.view(np.int64)


def laplacian_variance(lum: np.ndarray) -> np.ndarray:
    """(N, H, W) luminance on 0..255 -> (N,) variance of the 4-neighbour Laplacian."""
    x = lum.astype(np.float32)
    if min(x.shape[1:]) < 3:  # no interior pixel: a 1- or 2-px image has no measurable edges
        return np.zeros(len(x), dtype=np.float32)
    lap = x[:, :-2, 1:-1] + x[:, 2:, 1:-1] + x[:, 1:-1, :-2] + x[:, 1:-1, 2:] - 4 * x[:, 1:-1, 1:-1]
    variance: np.ndarray = lap.reshape(len(x), -1).var(axis=1)
    return variance.astype(np.float32)
