"""Copies under a small edit, which the shift-only pixel check (`pixel_match`) rejects: a recrop
zoomed back to size, a slight rotation, an overlay.

A pair is aligned by a similarity warp (zoom, turn, shift; an edit does not shear):
inverse-compositional Lucas-Kanade, so a's gradients and Hessian are computed once per pyramid
level and each Gauss-Newton step warps b once, on an 8-16-32 px pyramid of the index's own
32 px luminance, batched over pairs, Huber-weighted so that pixels that fit far worse than most
(a rotated copy's filled corners, a caption) pull the warp little. The warp must be one an
edit makes (`within_bounds`: zoom <= MAX_SCALE either way, rotation <= MAX_TURN, shift <=
MAX_SHIFT). The distance is the RMS residual of the best gain-and-offset fit of the warped b
to a over every pixel both cover, standardised by b's spread there: the lower of the two ways
(a onto b, b onto a), since either may be the copy.

An overlay (a caption, a logo, a date stamp, a watermark) is forgiven by a second fit outside
one small rectangle, where the difference is local and the rectangle is not where the picture
is (`occluded_distance`); pairs are compared unwarped too, and some (`warped`) only so.
Leaving the worst-fitting tenth of the pixels out, wherever they lie, let 1 in 10 pairs of
distinct line drawings of one shape pass (their difference lies in a tenth of the pixels,
spread along the strokes): one rectangle holding most of the difference let 1 in 5,000 more.

Measured on real photo crops and line drawings (`benchmarks/near_dup_warp_probe.py`): see
docs/performance.md. Recrops of 5-10 % and the overlays are all within the line; turns of 5
degrees only sometimes.

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
OCCLUSION_BLOCK = 2  # px: the grid an overlay's rectangle is drawn on (16 x 16 blocks at 32 px)
MAX_OCCLUDED = 48  # blocks (of 256, 19 %): the largest overlay forgiven (a caption strip)
MIN_OUTSIDE = 0.5  # share of b's detail (`_detail`) that must lie outside the overlay's rectangle
MAX_DENSITY = 2.0  # ... and the most of it the rectangle may hold, per pixel, to the average
TRIM_RATIO = 3.0  # an overlay's edge rows keep at least this x the residual per block outside
OCCLUSION_ROUNDS = 2  # fits, each leaving out the last one's worst rectangle
MIN_HELD = 0.75  # share of the whole fit's squared residual the rectangle must hold
BLOCK = 256  # pairs aligned together (their float copies stay in the CPU's caches)


def warped_distance(
    pixels: np.ndarray, a: np.ndarray, b: np.ndarray, warped: np.ndarray | None = None
) -> np.ndarray:
    """(P,) float32 distance of the pairs (pixels[a], pixels[b]) of (N, 32, 32) luminance
    after the best bounded similarity warp, the lower of both ways; inf where no warp within
    the bounds covers enough (see the module doc). `warped` (P,) bool: the pairs to align
    (None: all); the rest are compared as they are, an overlay forgiven (`occluded_distance`)."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    turn = np.ones(len(a), dtype=bool) if warped is None else np.asarray(warped, dtype=bool)
    out = np.full(len(a), np.inf, dtype=np.float32)

    def block(start: int) -> None:  # blocks write disjoint slices: safe on threads
        part = slice(start, start + BLOCK)
        x = smoothed(pixels[a[part]].astype(np.float32))
        y = smoothed(pixels[b[part]].astype(np.float32))
        out[part] = np.minimum(one_way(x, y, turn[part]), one_way(y, x, turn[part]))

    thread_map(block, range(0, len(a), BLOCK))  # numpy's products release the GIL
    return out


def one_way(x: np.ndarray, y: np.ndarray, warped: np.ndarray | None = None) -> np.ndarray:
    """(P,) distance of y (P, S, S) onto x: as it is, and warped where `warped` (None: every
    pair) unless the warp is already far beyond the bounds before the finest level (most
    distinct photos; that level costs the most)."""
    side = LEVELS[-1][0]
    identity = np.tile(np.eye(3, dtype=np.float32), (len(x), 1, 1))
    # unwarped too: an overlay on a smooth picture (a caption on a blur) is all the texture
    # there is, and draws the warp away from the identity, beyond the bounds
    out = _distance(_downsized(x, side), _downsized(y, side), identity)
    turn = np.arange(len(x)) if warped is None else np.flatnonzero(warped)
    if len(turn) == 0:
        return out
    x, y, matrix = x[turn], y[turn], identity[turn]
    for level, steps in LEVELS[:-1]:
        matrix = _align_level(_downsized(x, level), _downsized(y, level), steps, matrix)
    go = np.flatnonzero(within_bounds(matrix, slack=EARLY_SLACK))
    if len(go):
        x, y = _downsized(x[go], side), _downsized(y[go], side)
        steps = LEVELS[-1][1]
        found = _distance(x, y, _align_level(x, y, steps, matrix[go]))
        out[turn[go]] = np.minimum(out[turn[go]], found)
    return out


def _distance(x: np.ndarray, y: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    warped, valid = warp(y[:, None], matrix)
    valid = eroded(valid & within_bounds(matrix)[:, None, None])
    whole = fit_distance(x[..., None], warped[:, 0, ..., None], valid)
    out: np.ndarray = np.minimum(whole, occluded_distance(x, warped[:, 0], valid))
    return out


def occluded_distance(a: np.ndarray, b: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(P,) `fit_distance` of b (P, S, S) against a outside one rectangle of blocks: the one,
    of at most MAX_OCCLUDED blocks of OCCLUSION_BLOCK px (edges trimmed, `_worst_rectangle`),
    that holds the most squared residual of the gain-and-offset fit outside the previous
    round's rectangle (none at first). A caption, a logo, a date stamp or a watermark laid over
    a copy covers one such rectangle; the difference of two distinct images (two line drawings
    of one shape, two crops of one scene) is spread over the picture, so most of it stays
    outside any rectangle this small. inf unless the rectangle holds at least MIN_HELD of that
    residual (the difference is local); where it holds more than 1 - MIN_OUTSIDE of b's
    detail (`_detail`), or more than MAX_DENSITY times its share of the pixels (a small figure
    on a flat ground: the rectangle would hide the picture itself); or where it leaves fewer
    than MIN_COVER of the pixels."""
    p, side = a.shape[0], a.shape[1]
    w = valid.reshape(p, -1).astype(np.float32)
    x, y = a.reshape(p, -1), b.reshape(p, -1)
    inside = np.zeros(w.shape, dtype=bool)
    for _ in range(OCCLUSION_ROUNDS):  # the first fit is pulled by the overlay's own pixels
        residual = np.square(y - _fitted(x, y, w * ~inside)) * w
        inside, held = _worst_rectangle(residual, side)
    local = held >= MIN_HELD * np.maximum(residual.sum(axis=1), 1e-12)
    detail = (_detail(b) * valid).reshape(p, -1)
    share = (detail * inside).sum(axis=1) / np.maximum(detail.sum(axis=1), 1e-6)
    area = (w * inside).sum(axis=1) / np.maximum(w.sum(axis=1), 1.0)
    dense = share > MAX_DENSITY * area  # the rectangle is where b's picture is
    out = fit_distance(a[..., None], b[..., None], valid & ~inside.reshape(p, side, side))
    out[(share > 1 - MIN_OUTSIDE) | dense | ~local] = np.inf
    return out


def _detail(x: np.ndarray) -> np.ndarray:
    """(P, S, S) each pixel's squared differences to its right and lower neighbours: where a
    picture's detail is (a smooth gradient has it everywhere alike, a figure on a flat ground
    only on the figure)."""
    out = np.zeros(x.shape, dtype=np.float32)
    out[:, :, :-1] += np.square(np.diff(x, axis=2))
    out[:, :-1, :] += np.square(np.diff(x, axis=1))
    return out


def _worst_rectangle(residual: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """(inside, held): of each (S * S,) row of squared residuals, the rectangle of whole
    blocks of at most MAX_OCCLUDED blocks that holds the most, as a (P, S * S) mask, and what
    it holds. Residuals are never negative, so a rectangle holds no more than one as tall and
    as wide as that area allows: only those are compared (one sliding window per height)."""
    p, g = len(residual), side // OCCLUSION_BLOCK
    energy = residual.reshape(p, g, OCCLUSION_BLOCK, g, OCCLUSION_BLOCK).sum(axis=(2, 4))
    table = np.zeros((p, g + 1, g + 1), dtype=np.float64)
    table[:, 1:, 1:] = energy.cumsum(axis=1).cumsum(axis=2)
    held = np.full(p, -1.0)
    corner = np.zeros((p, 4), dtype=np.int64)  # top, left, height, width in blocks
    for h in range(1, min(g, MAX_OCCLUDED) + 1):
        w = min(g, MAX_OCCLUDED // h)
        sums = table[:, h:, w:] - table[:, :-h, w:] - table[:, h:, :-w] + table[:, :-h, :-w]
        flat = sums.reshape(p, -1)
        at = flat.argmax(axis=1)
        top = flat[np.arange(p), at]
        better = top > held
        held[better] = top[better]
        corner[better] = np.stack(
            [at[better] // sums.shape[2], at[better] % sums.shape[2],
             np.full(better.sum(), h), np.full(better.sum(), w)], axis=1
        )  # fmt: skip
    cells = np.arange(g)
    top, left, tall, wide = (corner[:, k, None] for k in range(4))
    rows, cols = (cells >= top) & (cells < top + tall), (cells >= left) & (cells < left + wide)
    # The window is as large as the area allows, an overlay often smaller: its edge rows and
    # columns are dropped while their residual per block is no more than TRIM_RATIO times
    # that of the blocks outside it (picture left in view, not overlay).
    window = rows[:, :, None] & cols[:, None, :]
    outside = (energy.sum(axis=(1, 2)) - held) / np.maximum(g * g - tall[:, 0] * wide[:, 0], 1)
    floor = TRIM_RATIO * outside[:, None]
    within = energy * window
    rows &= _span(within.sum(axis=2) > floor * wide)
    cols &= _span(within.sum(axis=1) > floor * tall)
    window = rows[:, :, None] & cols[:, None, :]
    block = np.arange(side) // OCCLUSION_BLOCK
    inside = window[:, block][:, :, block].reshape(p, -1)
    return inside, (energy * window).sum(axis=(1, 2))


def _span(keep: np.ndarray) -> np.ndarray:
    """(P, g) bool: each row's entries from its first True to its last (all False if none)."""
    return (np.cumsum(keep, axis=1) > 0) & (np.cumsum(keep[:, ::-1], axis=1)[:, ::-1] > 0)


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
