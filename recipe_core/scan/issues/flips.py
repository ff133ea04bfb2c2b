"""Flipped copies: a file that is another one mirrored left-right, or turned upside down.

A flipped copy is far from its original in every feature that sees layout (the embedding, the
aligned pixels), so the neighbour graph never offers it as a candidate. Instead, each image's
8x8 grid of block sums (of its 32 px thumbnail) gives a 64-bit average hash, of the image as
it is and flipped each way; a flipped copy's flipped hash is its original's hash, give or take
a few bits. Candidates are pairs whose flipped and plain hashes share one of four 16-bit bands
(buckets larger than MAX_BUCKET are skipped: flat or repetitive images fill them), then
differ in at most MAX_BITS bits, and their 8x8 block sums (one flipped) correlate
(MIN_GRID_CORRELATION); each is verified by the same aligned pixel check as every near
duplicate, on the flipped thumbnail, FLIP_BLOCK pairs at a time, and held to FLIP_LINE.
A symmetric image is not its own copy, and two symmetric images that match flipped match
unflipped too: those are near duplicates already.

Cost: three hashes per image from the thumbnails the index holds (kept in the issue memo by
content), a sort per band, and the pixel check of a few candidates: no second neighbour
search (a mirrored kNN cost 12-17 % of a 200k-image scan, docs/performance.md).
"""

from __future__ import annotations

import numpy as np

from recipe_core.scan.issues._common import sorted_distinct
from recipe_core.scan.issues.memo import IssueMemo
from recipe_core.scan.issues.pair_verdict import (
    PairEvidence,
    far_evidence,
    join_evidence,
    pair_evidence,
)

BANDS = 4  # the 64-bit hash as four 16-bit bands: a pair sharing one is a candidate
MAX_BUCKET = 32  # images sharing one band value beyond which that value gives no candidates
MAX_BITS = 12  # hash bits a flipped copy may differ in before the pixel check
# A flipped copy must be this close (closeness, 1 = the near-duplicate line): planted mirror
# and upside-down copies of photo crops (JPEG q90) measured 0.07-0.09; two distinct bokeh
# crops, smooth enough to match each other mirrored, 0.24 (benchmarks/near_dup_families.py,
# benchmarks/scan_photos.py). A flip is a strong claim: only near-exact flipped copies.
FLIP_LINE = 0.15
# Before the pixel check, a pair's 8 x 8 block sums (one flipped) must correlate at least this
# well. The hash's 12 bits admit ~23 candidates per image on digits (39k pairs among 1.7k,
# none a copy), and each pixel check holds its pair's float images and window sums: that cost
# 2.3 CPU-s and 230 MB at 1.7k images. Over the edit families, the photo sets, the digits and
# the shapes (benchmarks/near_dup_families.py, scan_photos.py), every flipped copy measured
# 1.000, and the candidates this rejects measured closeness >= 0.77: over twice the loosest
# flip line (FLIP_LINE x the highest threshold, 2). It keeps 22 % of the candidates.
MIN_GRID_CORRELATION = 0.8
FLIP_BLOCK = 1024  # pairs per pixel check: its memory follows this, not the candidate count
# (on digits, 4096 held 70 MB more at the peak for 0.03 s less wall: one thread per block here)
CHUNK = 8192  # thumbnails per block-sum product (8 MB of float32)
FLIPS: dict[str, tuple[int, ...]] = {"mirror image": (2,), "upside-down copy": (1,)}


def flipped_links(
    pixels: np.ndarray,
    eligible: np.ndarray,
    threshold: float = 1.0,
    memo: IssueMemo | None = None,
) -> tuple[np.ndarray, np.ndarray, PairEvidence, np.ndarray]:
    """Verified flipped copies among the `eligible` (N,) bool rows of `pixels` (N, 32, 32):
    (a, b, evidence, kind), a < b, one row per pair near at `threshold`; `evidence` is b's
    against a flipped, held to FLIP_LINE (`PairEvidence.line`), and judges at that line or
    any stricter one; `kind` (object) a key of FLIPS naming how b is a of. With a `memo`,
    only new contents are hashed."""
    rows = np.flatnonzero(eligible)
    a_parts, b_parts, kinds, evidence = [], [], [], []
    seen = np.zeros(0, dtype=np.int64)
    if memo is None:
        hashes = flip_hashes(pixels[rows])
    else:
        hashes = memo.per_image("flip_hashes", rows, lambda r: flip_hashes(pixels[r]))
    for column, (kind, axes) in enumerate(FLIPS.items(), start=1):
        a, b = _candidates(hashes[:, 0], hashes[:, column], rows)
        key = a * len(pixels) + b
        new = ~np.isin(key, seen)  # not found flipped the other way already
        a, b, key = a[new], b[new], key[new]
        found = flipped_evidence(pixels, a, b, axes, threshold)
        near = np.flatnonzero(found.judge(threshold)[0])
        a_parts += [a[near]]
        b_parts += [b[near]]
        kinds += [np.full(len(near), kind, dtype=object)]
        evidence += [found.subset(near)]
        seen = np.concatenate([seen, key[near]])
    return (
        np.concatenate(a_parts),
        np.concatenate(b_parts),
        join_evidence(evidence),
        np.concatenate(kinds),
    )


def flipped_evidence(
    pixels: np.ndarray, a: np.ndarray, b: np.ndarray, axes: tuple[int, ...], threshold: float
) -> PairEvidence:
    """The near-duplicate evidence (`pair_verdict`, every check of it, the half-size one too)
    of pixels[b] against pixels[a] flipped along `axes`, held to FLIP_LINE. Pairs whose block
    sums do not correlate (MIN_GRID_CORRELATION) are not checked: their evidence is
    `far_evidence`, near at no line."""
    alike = np.flatnonzero(grid_correlation(pixels, a, b, axes) >= MIN_GRID_CORRELATION)
    checked = []
    for start in range(0, len(alike), FLIP_BLOCK):
        at = alike[start : start + FLIP_BLOCK]
        both = np.concatenate([np.flip(pixels[a[at]], axis=axes), pixels[b[at]]])
        ids = np.arange(len(at))
        checked.append(pair_evidence(both, ids, ids + len(at), threshold))
    out = far_evidence(len(a))
    if checked:  # one scatter of every block's evidence (not a copy of all pairs per block)
        out = out.put(alike, join_evidence(checked))
    return out.within(FLIP_LINE)


def grid_correlation(
    pixels: np.ndarray, a: np.ndarray, b: np.ndarray, axes: tuple[int, ...]
) -> np.ndarray:
    """(P,) float32 correlation of each pair's 8 x 8 block sums, pixels[a]'s flipped along
    `axes` (the block sums of a flipped image are its flipped block sums): nan where either
    is flat. Each image's sums are taken once, however many pairs it is in."""
    used = sorted_distinct(np.concatenate([a, b]))
    grids = block_sums(pixels[used])
    grids -= grids.mean(axis=(1, 2), keepdims=True)
    grid_a = np.flip(grids[np.searchsorted(used, a)], axis=axes).reshape(len(a), 64)
    grid_b = grids[np.searchsorted(used, b)].reshape(len(b), 64)
    norms = np.sqrt((grid_a * grid_a).sum(axis=1) * (grid_b * grid_b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        out: np.ndarray = (grid_a * grid_b).sum(axis=1) / norms
    return out


def flip_hashes(pixels: np.ndarray) -> np.ndarray:
    """(N, 1 + len(FLIPS)) uint64: each thumbnail's average hash as it is, then flipped each
    way of FLIPS."""
    grid = block_sums(pixels)
    median = np.median(grid.reshape(len(grid), 64), axis=1)
    turned = [average_hash(np.flip(grid, axis=axes), median) for axes in FLIPS.values()]
    return np.stack([average_hash(grid, median), *turned], axis=1)


def block_sums(pixels: np.ndarray) -> np.ndarray:
    """(N, 8, 8) float32 sums of each thumbnail's 8 x 8 blocks, as two small matrix products
    per chunk of images (numpy's sum over a 4-wide axis costs 10x more at 50k images)."""
    n, h, w = pixels.shape
    rows_of = np.kron(np.eye(8, dtype=np.float32), np.ones((h // 8, 1), dtype=np.float32))
    cols_of = np.kron(np.eye(8, dtype=np.float32), np.ones((w // 8, 1), dtype=np.float32))
    out = np.empty((n, 8, 8), dtype=np.float32)
    for start in range(0, n, CHUNK):
        x = pixels[start : start + CHUNK].astype(np.float32)
        out[start : start + len(x)] = rows_of.T @ (x @ cols_of)
    return out


def average_hash(grid: np.ndarray, median: np.ndarray | None = None) -> np.ndarray:
    """(N,) uint64 from (N, 8, 8) block means or sums: bit i (row-major) set where cell i is
    above the image's median cell (`median` (N,) when known: a flip does not change it)."""
    flat = np.ascontiguousarray(grid).reshape(len(grid), 64)
    median = np.median(flat, axis=1) if median is None else median
    bits = flat > median[:, None]
    out: np.ndarray = np.packbits(bits, axis=1, bitorder="little").view("<u8")[:, 0]
    return out.astype(np.uint64)


def _candidates(
    plain: np.ndarray, turned: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(a, b), a < b: rows whose hashes, one of them flipped (`turned`), nearly agree."""
    if len(rows) < 2:
        return rows[:0], rows[:0]
    # Each band's pairs (up to MAX_BUCKET per image) are bit-tested before the next band's
    # are made: at 1M images, four bands' raw pairs at once would be gigabytes.
    keys_found = []
    for band in range(BANDS):
        shift, mask = np.uint64(16 * band), np.uint64(0xFFFF)
        keys = ((plain >> shift) & mask).astype(np.int64)
        sizes = np.bincount(keys, minlength=1 << 16)
        order = np.argsort(keys, kind="stable")
        starts = np.concatenate([[0], np.cumsum(sizes)])
        wanted = ((turned >> shift) & mask).astype(np.int64)
        count = np.where(sizes[wanted] <= MAX_BUCKET, sizes[wanted], 0)
        q = np.repeat(np.arange(len(rows)), count)
        offset = np.arange(len(q)) - np.repeat(np.cumsum(count) - count, count)
        r = order[starts[wanted[q]] + offset]
        keep = (q != r) & (_popcount(turned[q] ^ plain[r]) <= MAX_BITS)
        q, r = q[keep], r[keep]
        keys_found.append(np.minimum(q, r) * len(rows) + np.maximum(q, r))
    key = sorted_distinct(np.concatenate(keys_found))
    return rows[key // len(rows)], rows[key % len(rows)]


def _popcount(x: np.ndarray) -> np.ndarray:
    """(N,) set bits of each uint64 (numpy >= 2's bitwise_count; else through 64 bytes each)."""
    count = getattr(np, "bitwise_count", None)
    if count is not None:
        counted: np.ndarray = count(x)
        return counted
    out: np.ndarray = np.unpackbits(x.view(np.uint8).reshape(len(x), 8), axis=1).sum(axis=1)
    return out
