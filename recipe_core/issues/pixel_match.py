"""Aligned pixel distance between two small luminance images: is B a lightly edited copy of A?

Embedding neighbours are only candidates: on small low-entropy images (32 px digits) two
different handwritten 3s are as close in any descriptor (pHash included) as a JPEG re-encode
is to its original. The verdict comes from the pixels, compared so that the edits a copy
typically went through do not count:

* brightness / contrast: each image is standardised (mean 0, std 1), so the distance is
  sqrt(2 * (1 - Pearson correlation)): 0 for identical images, ~1.41 for unrelated ones;
* small translations (crops, 1-2 px shifts): the minimum over integer shifts in
  [-MAX_SHIFT, MAX_SHIFT]^2, each computed on the overlap only and standardised on that overlap
  (content pushed out of the frame must not change the statistics of what remains);
* JPEG and mild noise change every pixel a little and leave the distance small.

Measured on the sklearn digits rendered at 32 px (sample_data/digits): planted JPEG q85,
+-5 % brightness, 1 px shifts and noise std 4 all score <= 0.06 (noise std 6: <= 0.08); the
closest pair of *different* images scores 0.116, the documented look-alikes 0.116-0.162.
NEAR_THRESHOLD sits between the two.

Noise and JPEG artefacts are absolute (a few grey levels) while differences of content scale
with contrast, so on a low-contrast image (a pale photo, std 10 grey levels) noise of std 4
gives a standardised distance of 0.25. Hence a second, absolute test: the residual left after
the alignment, max(std_a, std_b) * distance in grey levels (~ the noise std; the larger std,
so a nearly flat image cannot "explain" a contrasted one), below ABS_RESIDUAL, provided the
images still correlate strongly (distance < MAX_DISTANCE). The sample's look-alikes leave
residuals of 10-14 grey levels.

`aligned_distance` searches all (2s+1)^2 shifts. `verify_pairs`, used on the many candidate pairs
of a scan, first estimates the shift from 1-d row and column profiles and evaluates only the
zero shift and the 2x2 best profile shifts (5 instead of 25). It can only return a distance
>= the full search, never a smaller one, so it cannot invent a duplicate.
"""

from __future__ import annotations

import numpy as np

MAX_SHIFT = 2  # px at 32 px: the largest translation still called a copy
NEAR_THRESHOLD = 0.09  # aligned distance below which two images are near duplicates
ABS_RESIDUAL = 6.0  # grey levels: ... or the aligned residual is this small (noise, JPEG) ...
MAX_DISTANCE = 0.3  # ... and the images still correlate strongly (Pearson r > 0.955)
MIN_STD = 2.0  # grey levels: constant thumbnails are not compared (no structure to align)
CHUNK = 2048  # pairs or images per vectorised batch


def shifts(max_shift: int = MAX_SHIFT) -> list[tuple[int, int]]:
    """(dy, dx) pairs; shift (dy, dx) compares a[y + dy, x + dx] with b[y, x]."""
    r = range(-max_shift, max_shift + 1)
    return [(dy, dx) for dy in r for dx in r]


def aligned_distance(a: np.ndarray, b: np.ndarray, *, max_shift: int = MAX_SHIFT) -> np.ndarray:
    """(P,) float32: min over all shifts of the standardised RMS difference of a[i] and b[i].

    `a`, `b` are (P, H, W) luminance images (any numeric dtype). A flat overlap (std 0) never
    matches.
    """
    ca, cb = _centred(a), _centred(b)
    wa, wb = _window_sums(ca, max_shift, "a"), _window_sums(cb, max_shift, "b")
    every = np.ones((len(ca), len(shifts(max_shift))), dtype=bool)
    return _best_distance(ca, cb, wa, wb, every, max_shift)[0]


def is_near(distance: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """The near-duplicate verdict from `verify_pairs`' two numbers (see module doc)."""
    out: np.ndarray = (distance < NEAR_THRESHOLD) | (
        (residual < ABS_RESIDUAL) & (distance < MAX_DISTANCE)
    )
    return out


def closeness(distance: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """0 for identical pixels, 1 at the verdict's line (whichever test is passed more easily)."""
    out: np.ndarray = np.minimum(distance / NEAR_THRESHOLD, residual / ABS_RESIDUAL)
    return out


def verify_pairs(
    pixels: np.ndarray, a: np.ndarray, b: np.ndarray, *, max_shift: int = MAX_SHIFT
) -> tuple[np.ndarray, np.ndarray]:
    """Aligned distance and residual (grey levels) of the pairs (pixels[a[i]], pixels[b[i]]),
    pixels (N, H, W): two (P,) float32 arrays. Evaluated at the zero shift and the
    profile-estimated shifts only (see module doc)."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    out = np.full(len(a), np.inf, dtype=np.float32)
    residual = np.full(len(a), np.inf, dtype=np.float32)
    if len(a) == 0:
        return out, residual
    used = np.unique(np.concatenate([a, b]))
    local = np.searchsorted(used, np.stack([a, b]))
    centred = _centred(pixels[used])
    win_a, win_b = _window_sums(centred, max_shift, "a"), _window_sums(centred, max_shift, "b")
    # row sums (N, H) and column sums (N, W), scaled down so float32 products stay exact enough
    profiles = (centred.sum(axis=2) / 32.0, centred.sum(axis=1) / 32.0)
    for start in range(0, len(a), CHUNK):
        la, lb = local[0, start : start + CHUNK], local[1, start : start + CHUNK]
        ca, cb = centred[la], centred[lb]
        wanted = _profile_candidates(profiles, la, lb, max_shift)
        wa = (win_a[0][la], win_a[1][la])
        wb = (win_b[0][lb], win_b[1][lb])
        dist, scale = _best_distance(ca, cb, wa, wb, wanted, max_shift)
        out[start : start + len(la)] = dist
        residual[start : start + len(la)] = dist * scale
    return out, residual


def _centred(x: np.ndarray) -> np.ndarray:
    """float32 images minus their own mean: keeps float32 products small (correlation does
    not depend on an added constant)."""
    x = np.asarray(x, dtype=np.float32)
    centred: np.ndarray = x - x.mean(axis=(1, 2), keepdims=True)
    return centred


def _window(role: str, dy: int, dx: int, h: int, w: int) -> tuple[slice, slice]:
    """The overlap window of image a (role "a") or b (role "b") for shift (dy, dx)."""
    sign = 1 if role == "a" else -1
    y, x = max(0, sign * dy), max(0, sign * dx)
    return slice(y, y + h - abs(dy)), slice(x, x + w - abs(dx))


def _window_sums(c: np.ndarray, max_shift: int, role: str) -> tuple[np.ndarray, np.ndarray]:
    """Per image and shift, the sum and sum of squares over its overlap window: (N, S) each.

    Computed once per image, so a pair only pays for its cross products. A window is a band of
    rows times a band of columns and there are only 2s+1 distinct bands of each, so all window
    sums are u_y^T X u_x for 0/1 band indicators: two small matrix products per image.
    """
    n, h, w = c.shape
    offsets = range(-max_shift, max_shift + 1)
    rows = np.zeros((len(offsets), h))
    cols = np.zeros((len(offsets), w))
    for i, d in enumerate(offsets):
        rows[i, _window(role, d, 0, h, w)[0]] = 1.0
        cols[i, _window(role, 0, d, h, w)[1]] = 1.0
    sums = np.empty((n, len(offsets) ** 2))
    squares = np.empty_like(sums)
    for start in range(0, n, CHUNK):
        block = c[start : start + CHUNK].astype(np.float64)
        for x, out in ((block, sums), (block * block, squares)):
            bands = np.matmul(np.matmul(rows, x), cols.T)  # (n, dy, dx) in shifts() order
            out[start : start + len(block)] = bands.reshape(len(block), -1)
    return sums, squares


def _best_distance(
    ca: np.ndarray,
    cb: np.ndarray,
    wa: tuple[np.ndarray, np.ndarray],
    wb: tuple[np.ndarray, np.ndarray],
    wanted: np.ndarray,
    max_shift: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Min distance over the shifts `wanted` (P, S) bool marks for each pair, and the larger
    of the two stds over the overlap at that shift (grey levels)."""
    _, h, w = ca.shape
    best = np.full(len(ca), -1.0, dtype=np.float64)
    scale = np.zeros(len(ca), dtype=np.float64)
    for s, (dy, dx) in enumerate(shifts(max_shift)):
        rows = np.flatnonzero(wanted[:, s])
        if len(rows) == 0:
            continue
        ya, xa = _window("a", dy, dx, h, w)
        yb, xb = _window("b", dy, dx, h, w)
        sab = np.einsum("pij,pij->p", ca[rows, ya, xa], cb[rows, yb, xb]).astype(np.float64)
        n = float((h - abs(dy)) * (w - abs(dx)))
        sa, sa2, sb, sb2 = wa[0][rows, s], wa[1][rows, s], wb[0][rows, s], wb[1][rows, s]
        var = np.maximum(sa2 - sa * sa / n, 0.0) * np.maximum(sb2 - sb * sb / n, 0.0)
        corr = np.where(var > 1e-9, (sab - sa * sb / n) / np.sqrt(np.maximum(var, 1e-18)), -1.0)
        better = corr > best[rows]
        best[rows[better]] = corr[better]
        std_a = np.sqrt(np.maximum(sa2 - sa * sa / n, 0.0) / n)
        std_b = np.sqrt(np.maximum(sb2 - sb * sb / n, 0.0) / n)
        scale[rows[better]] = np.maximum(std_a, std_b)[better]
    out: np.ndarray = np.sqrt(np.clip(2.0 * (1.0 - best), 0.0, 4.0)).astype(np.float32)
    return out, scale.astype(np.float32)


def _profile_candidates(
    profiles: tuple[np.ndarray, np.ndarray], a: np.ndarray, b: np.ndarray, max_shift: int
) -> np.ndarray:
    """(P, S) bool: the zero shift plus every combination of the two best dy and two best dx,
    each estimated by correlating row (column) sums of images a[i], b[i] over the overlap."""
    best_dy = _best_1d_shifts(profiles[0][a], profiles[0][b], max_shift)  # (P, 2)
    best_dx = _best_1d_shifts(profiles[1][a], profiles[1][b], max_shift)
    width = 2 * max_shift + 1
    wanted = np.zeros((len(a), width * width), dtype=bool)
    wanted[:, max_shift * width + max_shift] = True  # (0, 0)
    rows = np.arange(len(a))
    for i in range(2):
        for j in range(2):
            wanted[rows, (best_dy[:, i] + max_shift) * width + best_dx[:, j] + max_shift] = True
    return wanted


def _best_1d_shifts(pa: np.ndarray, pb: np.ndarray, max_shift: int) -> np.ndarray:
    """(P, 2) int: the two shifts d in [-max_shift, max_shift] with the highest correlation of
    pa[i + d] and pb[i] over their overlap."""
    n = pa.shape[1]
    scores = np.empty((len(pa), 2 * max_shift + 1), dtype=np.float32)
    for k, d in enumerate(range(-max_shift, max_shift + 1)):
        x = pa[:, max(0, d) : n + min(0, d)]
        y = pb[:, max(0, -d) : n + min(0, -d)]
        x = x - x.mean(axis=1, keepdims=True)
        y = y - y.mean(axis=1, keepdims=True)
        norm = np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))
        scores[:, k] = (x * y).sum(axis=1) / np.maximum(norm, 1e-12)
    top: np.ndarray = np.argsort(-scores, axis=1, kind="stable")[:, :2] - max_shift
    return top
