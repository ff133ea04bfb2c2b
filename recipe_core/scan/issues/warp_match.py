"""Copies under a small geometric edit, which the shift-only pixel check (`pixel_match`)
rejects: a recrop zoomed back to size, a slight rotation.

A pair is aligned by a similarity warp (zoom, turn, shift; an edit does not shear):
inverse-compositional Lucas-Kanade, so a's gradients and Hessian are computed once per pyramid
level and each Gauss-Newton step warps b once, on an 8-16-32 px pyramid of the index's own
32 px luminance, batched over pairs, Huber-weighted so that pixels that fit far worse than most
(a rotated copy's filled corners, a caption) pull the warp little. The warp must be one an
edit makes (`within_bounds`: zoom <= MAX_SCALE either way, rotation <= MAX_TURN, shift <=
MAX_SHIFT). The distance is the RMS residual of the best gain-and-offset fit of the warped b
to a over every pixel both cover, standardised by b's spread there: the lower of the two ways
(a onto b, b onto a), since either may be the copy.

Measured on real photo crops and line drawings (`benchmarks/near_dup_warp_probe.py`): see
docs/performance.md. Recrops of 5-10 % are all within the line; turns of 5 degrees and
watermarks only sometimes. Leaving the worst-fitting tenth of the pixels out would forgive a
watermark, but it let 1 in 10 pairs of distinct line drawings of one shape pass (their
difference lies in a tenth of the pixels), so nothing is left out.

Only images natively at least WARP_MIN_SIDE px on each side are compared: below that the
32 px thumbnail is an enlargement, and distinct low-resolution images of one class (two
handwritten 7s) align under a small warp.
"""

from __future__ import annotations

import numpy as np

from recipe_core.scan.cpus import thread_map

WARP_LINE = 0.08  # standardised warped distance below which a pair is an edited copy
WARP_MIN_SIDE = 48  # px: natively smaller images are not compared (see the module doc)
LEVELS = ((8, 6), (16, 8), (32, 5))  # (side px, Gauss-Newton steps), coarse to fine
MAX_SCALE = 1.12  # the largest zoom either way still called an edit (a ~10 % recrop) ...
MAX_TURN = 0.18  # ... rotation, radians (10 degrees) ...
MAX_SHEAR = 0.05  # ... shear (the two zooms' relative difference) ...
MAX_SHIFT = 0.1  # ... and shift, in half sides (5 % of the side)
EARLY_SLACK = 2.0  # a warp this many times beyond a bound before the finest level stops there
MIN_COVER = 0.6  # share of a's pixels the warped b must still cover
ROBUST = 3.0  # Huber: residuals beyond this x the median absolute one count as that much
MAX_STEP = 0.3  # the largest change of a warp parameter in one Gauss-Newton step
BLOCK = 256  # pairs aligned together (their float copies stay in the CPU's caches)


def warped_distance(pixels: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(P,) float32 distance of the pairs (pixels[a], pixels[b]) of (N, 32, 32) luminance
    after the best bounded affine warp, the lower of both ways; inf where no warp within the
    bounds covers enough (see the module doc)."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    out = np.full(len(a), np.inf, dtype=np.float32)

    def block(start: int) -> None:  # blocks write disjoint slices: safe on threads
        x = smoothed(pixels[a[start : start + BLOCK]].astype(np.float32))
        y = smoothed(pixels[b[start : start + BLOCK]].astype(np.float32))
        out[start : start + len(x)] = np.minimum(one_way(x, y), one_way(y, x))

    thread_map(block, range(0, len(a), BLOCK))  # numpy's products release the GIL
    return out


def one_way(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(P,) distance of y (P, S, S) warped onto x, inf beyond the bounds. A pair whose warp is
    already far beyond them before the finest level (most distinct photos) is not refined:
    that level costs the most."""
    out = np.full(len(x), np.inf, dtype=np.float32)
    matrix = np.tile(np.eye(3, dtype=np.float32), (len(x), 1, 1))
    for side, steps in LEVELS[:-1]:
        matrix = _align_level(_downsized(x, side), _downsized(y, side), steps, matrix)
    go = np.flatnonzero(within_bounds(matrix, slack=EARLY_SLACK))
    side, steps = LEVELS[-1]
    if len(go):
        x, y = _downsized(x[go], side), _downsized(y[go], side)
        out[go] = _distance(x, y, _align_level(x, y, steps, matrix[go]))
    return out


def _distance(x: np.ndarray, y: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    warped, valid = warp(y[:, None], matrix)
    valid &= within_bounds(matrix)[:, None, None]
    return fit_distance(x[..., None], warped[:, 0, ..., None], eroded(valid))


def align(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(P, 3, 3) similarity warps taking a's pixel grid into b's (normalised coordinates, see
    `warp`) for luminance (P, S, S) with S a multiple of every level's side."""
    matrix = np.tile(np.eye(3, dtype=np.float32), (len(a), 1, 1))
    for side, steps in LEVELS:
        matrix = _align_level(_downsized(a, side), _downsized(b, side), steps, matrix)
    return matrix


def _align_level(a: np.ndarray, b: np.ndarray, steps: int, matrix: np.ndarray) -> np.ndarray:
    """`steps` inverse-compositional Gauss-Newton steps at one pyramid level, from `matrix`."""
    n, side = len(a), a.shape[1]
    a = _standardised(a)
    gy, gx = np.gradient(a, axis=(1, 2))
    half = np.float32(side / 2)  # pixel gradients -> per normalised unit
    gx, gy = (gx * half).reshape(n, -1), (gy * half).reshape(n, -1)
    u, v = (c.reshape(-1) for c in _grid(side))
    # a similarity warp: [[1 + z, -t, x], [t, 1 + z, y]] (zoom, turn, shift): an edit does
    # not shear, and a free shear drifts along the edges of a picture of level lines
    sd = np.stack([gx * u + gy * v, gy * u - gx * v, gx, gy], axis=1)  # (P, 4, N)
    hess = sd @ sd.transpose(0, 2, 1) + np.float32(1e-3) * np.eye(4, dtype=np.float32)
    hess_inv = np.linalg.inv(hess).astype(np.float32)
    flat_a = a.reshape(n, -1)
    for _ in range(steps):
        bw, valid = warp(b[:, None], matrix)
        bw, w = bw.reshape(n, -1), valid.reshape(n, -1).astype(np.float32)
        err = w * (_fitted(bw, flat_a, w) - flat_a)
        scale = ROBUST * np.median(np.abs(err), axis=1, keepdims=True) + np.float32(1e-6)
        err *= np.minimum(np.float32(1), scale / np.maximum(np.abs(err), np.float32(1e-12)))
        delta = (hess_inv @ (sd @ err[..., None]))[..., 0]
        # a flat or degenerate pair can step anywhere: bounded steps keep each invertible
        delta = np.clip(np.nan_to_num(delta, nan=0.0, posinf=0.0, neginf=0.0), -MAX_STEP, MAX_STEP)
        zoom, turn, dx, dy = delta.T
        step = np.tile(np.eye(3, dtype=np.float32), (n, 1, 1))
        step[:, 0, 0] += zoom
        step[:, 1, 1] += zoom
        step[:, 0, 1], step[:, 1, 0] = -turn, turn
        step[:, 0, 2], step[:, 1, 2] = dx, dy
        matrix = matrix @ np.linalg.inv(step).astype(np.float32)
    return matrix


def within_bounds(matrix: np.ndarray, slack: float = 1.0) -> np.ndarray:
    """(P,) bool: the warps (P, 3, 3) an edit makes (see the module doc's bounds), each
    bound widened `slack` times."""
    finite = np.isfinite(matrix).all(axis=(1, 2))
    matrix = np.where(finite[:, None, None], matrix, np.eye(3, dtype=matrix.dtype))
    m = matrix[:, :2, :2]
    zooms = np.linalg.svd(m, compute_uv=False)  # along the two principal axes, descending
    turn = np.arctan2(m[:, 1, 0] - m[:, 0, 1], m[:, 0, 0] + m[:, 1, 1])
    shear = (zooms[:, 0] - zooms[:, 1]) / np.maximum(zooms.sum(axis=1), 1e-6)
    scale = 1 + (MAX_SCALE - 1) * slack
    ok = (zooms[:, 1] > 1 / scale) & (zooms[:, 0] < scale)
    ok &= (np.abs(turn) < MAX_TURN * slack) & (shear < MAX_SHEAR * slack)
    shift = MAX_SHIFT * slack
    ok &= (np.abs(matrix[:, 0, 2]) < shift) & (np.abs(matrix[:, 1, 2]) < shift)
    out: np.ndarray = ok & finite
    return out


def fit_distance(a: np.ndarray, b: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(P,) RMS residual of b ~ [a 1] M (one affine map of a's C channels per pair, C = 1:
    a gain and an offset) over the valid pixels, standardised by b's spread there; inf where
    fewer than MIN_COVER of the pixels are valid. a, b: (P, S, S, C).

    No pixels are left out: leaving out the worst-fitting tenth (to forgive a watermark) let
    distinct line drawings of one shape pass, whose difference lies in a tenth of the pixels."""
    p, c = len(a), a.shape[-1]
    x = np.concatenate([a, np.ones((*a.shape[:-1], 1), dtype=np.float32)], axis=-1)
    x, y = x.reshape(p, -1, c + 1), b.reshape(p, -1, c)
    w = valid.reshape(p, -1).astype(np.float32)
    count = w.sum(axis=1)
    xw = x * w[..., None]
    gram = (xw.transpose(0, 2, 1) @ x).astype(np.float64) + 1e-3 * np.eye(c + 1)
    m = np.linalg.solve(gram, (xw.transpose(0, 2, 1) @ y).astype(np.float64)).astype(np.float32)
    res = (np.square(y - x @ m).sum(axis=2) * w).sum(axis=1)
    mean = (y * w[..., None]).sum(axis=1) / np.maximum(count, 1)[:, None]
    spread = (np.square(y - mean[:, None]).sum(axis=2) * w).sum(axis=1)
    out: np.ndarray = np.sqrt(res / np.maximum(spread, 1e-6)).astype(np.float32)
    out[count < MIN_COVER * w.shape[1]] = np.inf
    return out


def warp(x: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x (P, C, S, S) sampled bilinearly where `matrix` (P, 3, 3) takes each pixel centre
    (normalised coordinates: [-1, 1] across the image, x then y): (P, C, S, S) float32, and
    valid (P, S, S): the sample fell inside x."""
    p, c, side = x.shape[0], x.shape[1], x.shape[2]
    u, v = _grid(side)
    q = matrix[:, :2, :, None, None]
    px = (q[:, 0, 0] * u + q[:, 0, 1] * v + q[:, 0, 2] + 1) * np.float32(side / 2) - 0.5
    py = (q[:, 1, 0] * u + q[:, 1, 1] * v + q[:, 1, 2] + 1) * np.float32(side / 2) - 0.5
    valid = (px >= 0) & (px <= side - 1) & (py >= 0) & (py <= side - 1)
    px, py = np.clip(px, 0, side - 1.001), np.clip(py, 0, side - 1.001)
    x0, y0 = px.astype(np.int32), py.astype(np.int32)
    fx, fy = px - x0, py - y0
    # one flat gather per corner: image i, channel k, pixel (y, x) at (i * C + k) * S * S + ...
    base = (y0 * side + x0).reshape(p, 1, -1)
    base = base + (np.arange(p * c, dtype=np.int32) * (side * side)).reshape(p, c, 1)
    flat = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    fx, fy = fx.reshape(p, 1, -1), fy.reshape(p, 1, -1)
    top = flat.take(base)
    top += fx * (flat.take(base + 1) - top)
    bottom = flat.take(base + side)
    bottom += fx * (flat.take(base + side + 1) - bottom)
    top += fy * (bottom - top)
    out: np.ndarray = top.reshape(p, c, side, side)
    return out, valid


def smoothed(x: np.ndarray) -> np.ndarray:
    """A [1 2 1] / 4 blur along axes 1 and 2, edges repeated: resampling and JPEG noise
    differ between copies, their shapes do not."""
    out = np.asarray(x, dtype=np.float32)
    for axis in (1, 2):
        padded = np.concatenate(
            [np.take(out, [0], axis=axis), out, np.take(out, [-1], axis=axis)], axis=axis
        )
        n = out.shape[axis]
        parts = [np.take(padded, range(k, k + n), axis=axis) for k in range(3)]
        out = (parts[0] + 2 * parts[1] + parts[2]) / np.float32(4)
    return out.astype(np.float32)


def eroded(mask: np.ndarray) -> np.ndarray:
    """(P, S, S) bool: `mask` less the pixels next to an invalid one (bilinear samples at the
    edge of the warped image mix in its border)."""
    out = mask.copy()
    out[:, 1:, :] &= mask[:, :-1, :]
    out[:, :-1, :] &= mask[:, 1:, :]
    out[:, :, 1:] &= mask[:, :, :-1]
    out[:, :, :-1] &= mask[:, :, 1:]
    return out


def _fitted(x: np.ndarray, target: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x (P, N) mapped by the gain and offset that best fit it to `target` where w > 0."""
    count = np.maximum(w.sum(axis=1), 1.0)
    mx, mt = (w * x).sum(axis=1) / count, (w * target).sum(axis=1) / count
    cx = x - mx[:, None]
    gain = (w * cx * (target - mt[:, None])).sum(axis=1)
    gain /= np.maximum((w * cx * cx).sum(axis=1), 1e-6)
    out: np.ndarray = gain[:, None] * cx + mt[:, None]
    return out


def _downsized(x: np.ndarray, side: int) -> np.ndarray:
    k = x.shape[1] // side
    if k == 1:
        return x
    out: np.ndarray = x.reshape(len(x), side, k, side, k).mean(axis=(2, 4), dtype=np.float32)
    return out


def _standardised(x: np.ndarray) -> np.ndarray:
    flat = x.reshape(len(x), -1)
    mean, std = flat.mean(axis=1), flat.std(axis=1)
    out: np.ndarray = (x - mean[:, None, None]) / np.maximum(std, 1e-6)[:, None, None]
    return out.astype(np.float32)


def _grid(side: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres in normalised coordinates: (u, v) = (x, y), each (S, S)."""
    c = ((2 * np.arange(side) + 1) / side - 1).astype(np.float32)
    v, u = np.meshgrid(c, c, indexing="ij")
    return u, v
