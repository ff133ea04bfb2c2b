"""Probe: would an affine-warp check find the near-duplicate edit families the scan misses
(a recrop zoomed back, a 5 degree rotation, a hue shift, a small watermark), and at what cost
in false links? Measured, not part of the scan yet (see docs/performance.md).

    nice .venv/bin/python benchmarks/near_dup_warp_probe.py [--seeds 0 1 2] [--rgb]

The check, batched over pairs in numpy: b is aligned onto a by an affine warp (inverse-
compositional Lucas-Kanade on an 8-16-32 px pyramid of the index's 32 px luminance, Huber-
weighted so a watermark or a rotated copy's filled corners pull it little), bounded to what an
edit makes (zoom <= MAX_SCALE, rotation <= 10 degrees, shear <= MAX_SHEAR, shift <= 5 % of
the side); the distance is the RMS residual of an affine fit of a's values to the warped b
over the best-fitting 90 % of pixels, standardised, the lower of both ways. `--rgb` instead
reads both files again at 64 px and fits an affine colour map (which absorbs hue rotations).

It prints, side by side for the same scans: the distance of every planted copy by family
(tests/photos/edit_families.py, every family, the missed ones included) and of every distinct
pair the scan would offer as a candidate (each image's first two embedding neighbours: the
edit-family originals, and the planted photo set less its planted copy groups and its flat
images), the share of distinct pairs under a few lines, and the cost per pair.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recipe_core.data.images import decode_whole, to_rgb, upright
from recipe_core.scan import scan
from recipe_core.scan.index.schema import ScanIndex
from recipe_core.scan.issues.duplicates import eligible_thumbnails, exact_groups
from recipe_core.scan.issues.neighbors import neighbor_graph
from recipe_core.scan.issues.quality import low_information_mask
from tests.photos.edit_families import MISSED, make_edit_families
from tests.photos.planted import make_planted_photos

WARP_SIDE = 64  # px: the side both images are compared at
LEVELS = (16, 32)  # the alignment's pyramid, coarse to fine (64 px adds little but time)
STEPS = (10, 6)  # Gauss-Newton steps per level
BLOCK = 64  # pairs compared together
THUMB_LEVELS = ((8, 6), (16, 8), (32, 5))  # (side, steps) of the 32 px variant
THUMB_BLOCK = 256
ROBUST = 3.0  # residuals beyond this x the median absolute one count as that much
KEEP = 0.9  # share of best-fitting pixels the distance is taken over
MARGIN = 2  # px at 64: pixels this near the warped image's edge are left out
MAX_SCALE = 1.12  # the warp's largest zoom either way ...
MAX_TURN = 0.18  # ... rotation (radians, 10 degrees) ...
MAX_SHEAR = 0.05  # ... shear ...
MAX_SHIFT = 0.1  # ... and translation (share of the half side) still called an edit
MIN_VALID = 0.6  # share of the first image the warped second must still cover


def load_views(paths: Sequence[str], side: int = WARP_SIDE) -> tuple[np.ndarray, np.ndarray]:
    """(n, side, side, 3) uint8 RGB views of the files (squashed to a square, as the index's
    thumbnails), and (n,) bool: read and decoded. An unreadable file is a False, never an
    exception (it is reported as corrupt elsewhere)."""
    out = np.zeros((len(paths), side, side, 3), dtype=np.uint8)
    ok = np.zeros(len(paths), dtype=bool)
    for i, path in enumerate(paths):
        try:
            with open(path, "rb") as f:
                data = f.read()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                im = to_rgb(upright(decode_whole(data)))
            out[i] = np.asarray(
                im.resize((side, side), Image.Resampling.BILINEAR, reducing_gap=3.0)
            )
            ok[i] = True
        except Exception:  # a file that fails here failed the index's decode too
            continue
    return out, ok


def warped_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(P,) float32: the colour distance of b[i] warped onto a[i] (see the module doc); inf
    where no warp within the bounds covers enough of a[i]. a, b: (P, 64, 64, 3) uint8."""
    out = np.empty(len(a), dtype=np.float32)
    for start in range(0, len(a), BLOCK):  # a block's float copies stay in the CPU's caches
        part = slice(start, start + BLOCK)
        a_rgb = _smoothed(np.asarray(a[part], dtype=np.float32))
        b_rgb = _smoothed(np.asarray(b[part], dtype=np.float32))
        params = align(_luma(a_rgb), _luma(b_rgb))
        warped, valid = _warp(b_rgb, params)
        valid &= _within_bounds(params)[:, None, None]
        out[part] = _colour_distance(a_rgb, warped, _eroded(valid, MARGIN))
    return out


def align(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(P, 6) affine warps taking a's pixel grid into b's (normalised coordinates, see
    _warp_stack), from luminance (P, S, S), the identity first: inverse-compositional
    Lucas-Kanade, so a's gradients and Hessian are computed once per level and each step
    warps b once."""
    matrix = np.tile(np.eye(3, dtype=np.float32), (len(a), 1, 1))
    for side, steps in zip(LEVELS, STEPS, strict=True):
        matrix = _align_level(_standardised(_downsized(a, side)), _downsized(b, side), side,
                              steps, matrix)  # fmt: skip
    return _as_params(matrix)


def _align_level(
    la: np.ndarray, lb: np.ndarray, side: int, steps: int, matrix: np.ndarray
) -> np.ndarray:
    """`steps` inverse-compositional Gauss-Newton steps at one pyramid level, from `matrix`."""
    n = len(la)
    gy, gx = np.gradient(la, axis=(1, 2))
    half = np.float32(side / 2)  # d/du in normalised units
    gx, gy = (gx * half).reshape(n, -1), (gy * half).reshape(n, -1)
    u, v = (c.reshape(-1) for c in _grid(side))
    sd = np.stack([gx * u, gx * v, gx, gy * u, gy * v, gy], axis=1)  # (P, 6, N)
    hess = sd @ sd.transpose(0, 2, 1) + 1e-3 * np.eye(6, dtype=np.float32)
    hess_inv = np.linalg.inv(hess).astype(np.float32)
    flat_a = la.reshape(n, -1)
    for _ in range(steps):
        bw, valid = _warp_stack(lb[:, None], matrix)
        bw, w = bw.reshape(n, -1), valid.reshape(n, -1).astype(np.float32)
        err = w * (_fitted(bw, flat_a, w) - flat_a)
        # Huber weights: pixels that fit far worse than most (a watermark, a rotated copy's
        # filled corners) pull the warp no harder than at ROBUST x the typical residual
        scale = ROBUST * np.median(np.abs(err), axis=1, keepdims=True) + 1e-6
        err = err * np.minimum(1.0, scale / np.maximum(np.abs(err), 1e-12))
        delta = (hess_inv @ (sd @ err[..., None]))[..., 0]
        matrix = matrix @ np.linalg.inv(_as_matrix(delta)).astype(np.float32)
    return matrix


def _fitted(x: np.ndarray, target: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x (P, N) mapped by the gain and offset that best fit it to `target` where w > 0."""
    count = np.maximum(w.sum(axis=1), 1.0)
    mx, mt = (w * x).sum(axis=1) / count, (w * target).sum(axis=1) / count
    cx = x - mx[:, None]
    gain = (w * cx * (target - mt[:, None])).sum(axis=1) / np.maximum(
        (w * cx * cx).sum(axis=1), 1e-6
    )
    out: np.ndarray = gain[:, None] * cx + mt[:, None]
    return out


def _as_matrix(p: np.ndarray) -> np.ndarray:
    m = np.tile(np.eye(3, dtype=np.float32), (len(p), 1, 1))
    m[:, 0, :] += p[:, 0:3]
    m[:, 1, :] += p[:, 3:6]
    return m


def _as_params(m: np.ndarray) -> np.ndarray:
    out: np.ndarray = (m[:, :2, :] - np.eye(3, dtype=np.float32)[:2]).reshape(len(m), 6)
    return out


def _within_bounds(p: np.ndarray) -> np.ndarray:
    """(P,) bool: the warps an edit could make."""
    slack = 1.0
    m = np.stack([[1 + p[:, 0], p[:, 1]], [p[:, 3], 1 + p[:, 4]]]).transpose(2, 0, 1)  # (P,2,2)
    sv = np.linalg.svd(m, compute_uv=False)  # singular values: the zoom along two axes
    turn = np.arctan2(m[:, 1, 0] - m[:, 0, 1], m[:, 0, 0] + m[:, 1, 1])
    shear = (sv[:, 0] - sv[:, 1]) / np.maximum(sv.sum(axis=1), 1e-6)
    scale = 1 + (MAX_SCALE - 1) * slack
    ok = (sv[:, 1] > 1 / scale) & (sv[:, 0] < scale)
    ok &= (np.abs(turn) < MAX_TURN * slack) & (shear < MAX_SHEAR * slack)
    ok &= (np.abs(p[:, 2]) < MAX_SHIFT * slack) & (np.abs(p[:, 5]) < MAX_SHIFT * slack)
    out: np.ndarray = ok & np.isfinite(p).all(axis=1)
    return out


def _colour_distance(a: np.ndarray, b: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """RMS residual of b ~ [a 1] M (a 4x3 map per pair) over the best KEEP of valid pixels,
    standardised by b's RGB spread there."""
    p, c = len(a), a.shape[-1]
    x = np.concatenate([a, np.ones((*a.shape[:-1], 1), dtype=np.float32)], axis=-1)
    x, y = x.reshape(p, -1, c + 1), b.reshape(p, -1, c)
    w = valid.reshape(p, -1).astype(np.float32)
    count = w.sum(axis=1)
    xw = x * w[..., None]
    gram = np.einsum("pni,pnj->pij", xw, x).astype(np.float64)
    gram += 1e-3 * np.eye(c + 1)
    m = np.linalg.solve(gram, np.einsum("pni,pnj->pij", xw, y).astype(np.float64))
    res = np.square(y - np.einsum("pni,pij->pnj", x, m.astype(np.float32))).sum(axis=2)
    res = np.sort(np.where(w > 0, res, np.inf), axis=1)
    keep = np.maximum((KEEP * count).astype(np.int64), 1)
    trimmed = (
        np.take_along_axis(
            np.cumsum(np.where(np.isfinite(res), res, 0), axis=1), keep[:, None] - 1, axis=1
        )[:, 0]
        / keep
    )
    mean = (y * w[..., None]).sum(axis=1) / np.maximum(count, 1)[:, None]
    spread = (np.square(y - mean[:, None]).sum(axis=2) * w).sum(axis=1) / np.maximum(count, 1)
    out: np.ndarray = np.sqrt(trimmed / np.maximum(spread, 1e-6)).astype(np.float32)
    out[count < MIN_VALID * w.shape[1]] = np.inf
    return out


def _luma(rgb: np.ndarray) -> np.ndarray:
    out: np.ndarray = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return out


def _smoothed(x: np.ndarray) -> np.ndarray:
    """A [1 2 1]/4 blur along both image axes (resampling and JPEG noise differ between
    copies; their shapes do not)."""
    out = x.copy()
    for axis in (1, 2):
        padded = np.concatenate(
            [np.take(out, [0], axis=axis), out, np.take(out, [-1], axis=axis)], axis=axis
        )
        n = out.shape[axis]
        lo = np.take(padded, range(0, n), axis=axis)
        mid = np.take(padded, range(1, n + 1), axis=axis)
        hi = np.take(padded, range(2, n + 2), axis=axis)
        out = (lo + 2 * mid + hi) / 4
    return out.astype(np.float32)


def _downsized(x: np.ndarray, side: int) -> np.ndarray:
    k = x.shape[1] // side
    out: np.ndarray = x.reshape(len(x), side, k, side, k).mean(axis=(2, 4)).astype(np.float32)
    return out


def _standardised(x: np.ndarray) -> np.ndarray:
    flat = x.reshape(len(x), -1)
    mean, std = flat.mean(axis=1), flat.std(axis=1)
    out: np.ndarray = (x - mean[:, None, None]) / np.maximum(std, 1e-6)[:, None, None]
    return out.astype(np.float32)


def _grid(side: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres in normalised coordinates [-1, 1]: (u, v) = (x, y), each (S, S)."""
    c = ((2 * np.arange(side) + 1) / side - 1).astype(np.float32)
    v, u = np.meshgrid(c, c, indexing="ij")
    return u, v


def _warp(rgb: np.ndarray, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """rgb (P, S, S, C) sampled at the warped grid: (P, S, S, C), valid (P, S, S)."""
    sampled, valid = _warp_stack(np.moveaxis(rgb, -1, 1), params)
    return np.moveaxis(sampled, 1, -1), valid


def _warp_stack(x: np.ndarray, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x (P, C, S, S) sampled bilinearly at W(u, v; params), params (P, 6) or (P, 3, 3):
    (P, C, S, S) and valid (P, S, S)."""
    p, c, side = x.shape[0], x.shape[1], x.shape[2]
    u, v = _grid(side)
    m = params if params.ndim == 3 else _as_matrix(params)
    q = m[:, :2, :, None, None]
    wu = q[:, 0, 0] * u + q[:, 0, 1] * v + q[:, 0, 2]
    wv = q[:, 1, 0] * u + q[:, 1, 1] * v + q[:, 1, 2]
    px = (wu + 1) * (side / 2) - 0.5  # back to pixel coordinates
    py = (wv + 1) * (side / 2) - 0.5
    valid = (px >= 0) & (px <= side - 1) & (py >= 0) & (py <= side - 1)
    px, py = np.clip(px, 0, side - 1.001), np.clip(py, 0, side - 1.001)
    x0, y0 = px.astype(np.int32), py.astype(np.int32)
    fx, fy = (px - x0)[:, None], (py - y0)[:, None]
    # one flat gather per corner: image i, channel k, pixel (y, x) at (i * c + k) * S * S + ...
    base = (y0 * side + x0).reshape(p, 1, -1)
    base = base + (np.arange(p * c, dtype=np.int32) * (side * side)).reshape(p, c, 1)
    flat = np.ascontiguousarray(x).reshape(-1)

    def at(offset: int) -> np.ndarray:
        return flat[base + offset].reshape(p, c, side, side)

    top = at(0) * (1 - fx) + at(1) * fx
    bottom = at(side) * (1 - fx) + at(side + 1) * fx
    out: np.ndarray = (top * (1 - fy) + bottom * fy).astype(np.float32)
    return out, valid


def _eroded(mask: np.ndarray, r: int) -> np.ndarray:
    out = mask.copy()
    for _ in range(r):
        inner = out.copy()
        inner[:, 1:, :] &= out[:, :-1, :]
        inner[:, :-1, :] &= out[:, 1:, :]
        inner[:, :, 1:] &= out[:, :, :-1]
        inner[:, :, :-1] &= out[:, :, 1:]
        out = inner
    return out


def thumbnail_distance(lum_a: np.ndarray, lum_b: np.ndarray) -> np.ndarray:
    """(P,) warped_distance on the index's 32 px luminance (P, 32, 32), the lower of both ways."""
    out = np.empty(len(lum_a), dtype=np.float32)
    for start in range(0, len(lum_a), THUMB_BLOCK):
        part = slice(start, start + THUMB_BLOCK)
        a = _smoothed(np.asarray(lum_a[part], dtype=np.float32)[..., None])[..., 0]
        b = _smoothed(np.asarray(lum_b[part], dtype=np.float32)[..., None])[..., 0]
        best = np.full(len(a), np.inf, dtype=np.float32)
        for x, y in ((a, b), (b, a)):
            m = np.tile(np.eye(3, dtype=np.float32), (len(x), 1, 1))
            for side, steps in THUMB_LEVELS:
                m = _align_level(_standardised(_downsized(x, side)), _downsized(y, side), side,
                                 steps, m)  # fmt: skip
            warped, valid = _warp_stack(y[:, None], m)
            valid &= _within_bounds(_as_params(m))[:, None, None]
            d = _colour_distance(x[..., None], warped[:, 0, ..., None], _eroded(valid, 1))
            best = np.minimum(best, d)
        out[part] = best
    return out


def candidate_pairs(index: ScanIndex) -> tuple[np.ndarray, np.ndarray]:
    """Each eligible image's first two embedding neighbours that are not its identical copies."""
    n = len(index.table)
    graph = neighbor_graph(index.embeddings, np.arange(n), 10)
    exact = exact_groups(index.table)
    eligible = eligible_thumbnails(index.pixels, low_information_mask(index))
    a, b = [], []
    for i in range(n):
        for j in graph.indices[i][:2]:
            if (
                j >= 0
                and eligible[i]
                and eligible[j]
                and not (exact[i] >= 0 and exact[i] == exact[j])
            ):
                a.append(i)
                b.append(int(j))
    return np.array(a, dtype=np.int64), np.array(b, dtype=np.int64)


def distances(index: ScanIndex, a: np.ndarray, b: np.ndarray, rgb: bool) -> np.ndarray:
    if not rgb:
        return thumbnail_distance(index.pixels[a], index.pixels[b])
    views = load_views([str(index.source.abspath(p)) for p in index.table["path"]])[0]
    return np.minimum(warped_distance(views[a], views[b]), warped_distance(views[b], views[a]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rgb", action="store_true", help="re-read the files at 64 px")
    args = parser.parse_args()
    rows, seconds, compared = [], 0.0, 0
    for seed in args.seeds:
        root = Path(tempfile.mkdtemp(prefix="warp-probe-"))
        copies = make_edit_families(root / "families", seed=seed, missed=True)
        index = scan(root / "families", workers=0, cache=False).index
        pos = {p: i for i, p in enumerate(index.table["path"].astype(str))}
        a = np.array([pos[c.original] for c in copies])
        b = np.array([pos[c.copy] for c in copies])
        rows += [
            ("copy", c.family, d)
            for c, d in zip(copies, distances(index, a, b, args.rgb), strict=True)
        ]
        source = {pos[c.copy]: pos[c.original] for c in copies}
        a, b = candidate_pairs(index)
        keep = np.array(
            [source.get(int(x), x) != source.get(int(y), y) for x, y in zip(a, b, strict=True)]
        )
        rows += [("distinct", "edit-family originals", d)
                 for d in distances(index, a[keep], b[keep], args.rgb)]  # fmt: skip
        planted = make_planted_photos(root / "photos", seed=seed)
        index = scan(planted.images, workers=0, cache=False).index
        oracle = planted.oracle[planted.oracle["group"] != ""]
        groups = oracle.groupby("path")["group"].apply(set).to_dict()
        paths = index.table["path"].astype(str).to_numpy()
        a, b = candidate_pairs(index)
        other = np.array([not groups.get(paths[x], set()) & groups.get(paths[y], set())
                          for x, y in zip(a, b, strict=True)], dtype=bool)  # fmt: skip
        start = time.perf_counter()
        found = distances(index, a[other], b[other], args.rgb)
        seconds, compared = seconds + time.perf_counter() - start, compared + int(other.sum())
        rows += [("distinct", "planted photos", d) for d in found]
    table = pd.DataFrame(rows, columns=["kind", "set", "distance"])
    copies_ = table[table["kind"] == "copy"].groupby("set", sort=False)["distance"]
    summary = pd.DataFrame({"planted": copies_.size(), "max": copies_.max().round(3)})
    for line in LINES:
        summary[f"<{line}"] = copies_.apply(lambda d, t=line: int((d < t).sum()))
    summary["missed by the scan"] = ["yes" if f in MISSED else "" for f in summary.index]
    print(summary.to_string())
    print()
    for name, d in table[table["kind"] == "distinct"].groupby("set")["distance"]:
        shares = "  ".join(f"<{t}: {(d < t).mean():.3f}" for t in LINES)
        lowest = np.sort(d.to_numpy())[:5].round(3)
        print(f"distinct, {name}: {len(d)} pairs, lowest {lowest}; {shares}")
    print(f"\ncost: {seconds / max(compared, 1) * 1e3:.2f} ms per pair (both ways)")


LINES = (0.06, 0.08, 0.1, 0.15)

if __name__ == "__main__":
    main()
