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

Rounding to whole grey levels is noise of its own, sqrt(2 / 12) = 0.41 grey levels RMS
between two copies of one image, which standardising divides by the image's std: a dark or
flat photo (std 5 grey levels) and its 2 px shifted copy measure 0.098 with a residual of 0.48
grey levels, nothing but rounding left. The distance line therefore reads the distance with
that part taken out (`beyond_rounding`): the same at any contrast where rounding is small
(residual 2 grey levels: 2 % less; 6: 0.2 %), the rounding-free distance where it is all
there is.

Clipping breaks the first test's premise: a bright image brightened by 20 grey levels clips
its top third to white, which no gain and offset undoes (distance 0.17 on a planted lake crop,
rejected by the half-size check). Pairs where one image has CLIP_GAP more of its pixels at an
end than the other are compared again with the other clipped at the same share
(`clipped_distance`: 0.05 for that pair) and held to the strict NEAR_THRESHOLD.

Both functions search all (2s+1)^2 shifts: the cross products of every shift come from one
vectorised product-and-sum per shift over a chunk of pairs (numpy: the scan needs no torch),
the window sums and squares from two small matrix products per image, so a pair costs about
14 us on one core (torch's grouped convolution, used only for a GPU `device`, was no faster
on CPU and costs seconds to import).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from recipe_core.errors import ConfigError
from recipe_core.scan.cpus import thread_map
from recipe_core.scan.issues._common import sorted_distinct

MAX_SHIFT = 2  # px at 32 px: the largest translation still called a copy
NEAR_THRESHOLD = 0.09  # aligned distance below which two images are near duplicates
ABS_RESIDUAL = 6.0  # grey levels: ... or the aligned residual is this small (noise, JPEG) ...
MAX_DISTANCE = 0.3  # ... and the images still correlate strongly (Pearson r > 0.955)
COARSE_DISTANCE = 0.12  # at half resolution, for pairs admitted on the residual alone ...
FINE_SHARE = 0.75  # ... or their difference shrinks below this share of it at half resolution
MIN_STD = 2.0  # grey levels: constant thumbnails are not compared (no structure to align)
CLIP_LEVELS = 1  # grey levels from an end (0-1, 254-255) that count as clipped
CLIP_GAP = 0.05  # one image has this much more of its pixels clipped: compare with matched clips
CHUNK = 2048  # pairs or images per vectorised batch
WINDOW_CHUNK = 256  # images per batch of window sums
PAIR_BLOCK = 65_536  # pairs verified together: their images' float copies stay under ~0.6 GB
MIN_LINE, MAX_LINE = 0.25, 2.0  # the near-duplicate threshold's range, in closeness units
ROUNDING = float(np.sqrt(2 / 12))  # grey levels RMS: two copies rounded to whole grey levels


def shifts(max_shift: int = MAX_SHIFT) -> list[tuple[int, int]]:
    """(dy, dx) pairs; shift (dy, dx) compares a[y + dy, x + dx] with b[y, x]."""
    r = range(-max_shift, max_shift + 1)
    return [(dy, dx) for dy in r for dx in r]


def aligned_distance(
    a: np.ndarray, b: np.ndarray, *, max_shift: int = MAX_SHIFT, device: str | None = None
) -> np.ndarray:
    """(P,) float32: min over all shifts of the standardised RMS difference of a[i] and b[i].

    `a`, `b` are (P, H, W) luminance images (any numeric dtype). A flat overlap (std 0) never
    matches. Computed in float32: within ~3e-3 of the exact value.
    """
    both = np.concatenate([np.asarray(a), np.asarray(b)])
    first, second = np.arange(len(a)), np.arange(len(a), 2 * len(a))
    return verify_pairs(both, first, second, max_shift=max_shift, device=device)[0]


def check_threshold(threshold: float) -> float:
    """`threshold` as a float, or a ConfigError naming the range."""
    value = float(threshold)
    if not MIN_LINE <= value <= MAX_LINE:  # also refuses nan
        raise ConfigError(
            f"near-duplicate threshold {threshold!r} is outside [{MIN_LINE}, {MAX_LINE}]. It is "
            "in closeness units: 1 is the default line, 0.5 admits only pairs half as far "
            "(fewer, surer near duplicates), 1.5 pairs half again as far (more, less sure)."
        )
    return value


def is_near(distance: np.ndarray, residual: np.ndarray, threshold: float = 1.0) -> np.ndarray:
    """The near-duplicate verdict from `verify_pairs`' two numbers (see module doc).

    `threshold` scales every line of the verdict (closeness units, see `closeness`): 1 is the
    calibrated default, smaller is stricter. A pair is admitted only at closeness < threshold.
    """
    out: np.ndarray = (beyond_rounding(distance, residual) < NEAR_THRESHOLD * threshold) | (
        (residual < ABS_RESIDUAL * threshold) & (distance < MAX_DISTANCE * threshold)
    )
    return out


def beyond_rounding(distance: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """(P,) the aligned distance less what rounding to whole grey levels explains (see the
    module doc): the residual is the distance in grey levels, so the rounding's share of the
    distance is ROUNDING / residual, taken out in quadrature (0 where it explains it all)."""
    distance = np.asarray(distance, dtype=np.float32)
    residual = np.asarray(residual, dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(residual > ROUNDING, ROUNDING / residual, 1.0)
    out: np.ndarray = (distance * np.sqrt(1 - np.square(share))).astype(np.float32)
    return out


def coarse_agrees(
    pixels: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    distance: np.ndarray,
    threshold: float = 1.0,
) -> np.ndarray:
    """(P,) bool: do the pairs still match at half resolution (2x2 means, 1 px shifts)?

    The residual test admits low-contrast pairs; JPEG and noise are fine-grained and average
    out at half resolution, while two distinct smooth images (bokeh, sky) differ in coarse
    structure that stays. Pairs passing only on the residual must pass this too: a half-size
    distance below COARSE_DISTANCE, or one that fell below FINE_SHARE of the full-size
    `distance` (white noise roughly halves it, 0.25 -> 0.13 for std 4 on a pale image; distinct
    smooth photos keep 0.93-1.3 of it). `threshold` scales COARSE_DISTANCE as in `is_near`."""
    return coarse_judgement(coarse_distance(pixels, a, b), distance, threshold)


def coarse_distance(pixels: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(P,) float32 aligned distance of the pairs at half resolution (2x2 means, 1 px shifts);
    only the thumbnails of the pairs are averaged."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if len(a) == 0:
        return np.zeros(0, dtype=np.float32)
    used = sorted_distinct(np.concatenate([a, b]))
    p = np.asarray(pixels[used], dtype=np.float32)
    h, w = (p.shape[1] // 2) * 2, (p.shape[2] // 2) * 2
    half = p[:, :h, :w].reshape(len(p), h // 2, 2, w // 2, 2).mean(axis=(2, 4))
    dist, _ = verify_pairs(half, np.searchsorted(used, a), np.searchsorted(used, b), max_shift=1)
    return dist


def coarse_judgement(coarse: np.ndarray, distance: np.ndarray, threshold: float) -> np.ndarray:
    """`coarse_agrees` from the pairs' half-size distances `coarse`."""
    out: np.ndarray = (coarse < COARSE_DISTANCE * threshold) | (
        coarse < FINE_SHARE * np.asarray(distance)
    )
    return out


def thumbnail_std(pixels: np.ndarray) -> np.ndarray:
    """(N,) float32 std of each thumbnail's grey levels (float32 sums: 5x cheaper than a
    float64 std over every pixel)."""
    out = np.zeros(len(pixels), dtype=np.float32)
    # float copies of CHUNK images (8 MB): a 32k-image chunk's 134 MB copies were fresh
    # mappings to fault in, 10x the arithmetic (0.53 -> 0.05 s at 50k)
    for start in range(0, len(pixels), CHUNK):
        x = pixels[start : start + CHUNK].reshape(-1, pixels[0].size).astype(np.float32)
        mean = x.mean(axis=1)
        out[start : start + len(x)] = np.sqrt(np.maximum((x * x).mean(axis=1) - mean * mean, 0))
    return out


def clipping_mismatch(
    pixels: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    shares_of: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """(P,) bool: one image of the pair has at least CLIP_GAP more of its pixels at the white
    (or black) end than the other, as a brightened (darkened) copy whose highlights (shadows)
    clipped has. `shares_of(rows)`: `clip_shares` of those images, where a memo holds them."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if len(a) == 0:
        return np.zeros(0, dtype=bool)
    used = sorted_distinct(np.concatenate([a, b]))
    shares = clip_shares(pixels[used]) if shares_of is None else shares_of(used)
    gap = np.abs(shares[np.searchsorted(used, a)] - shares[np.searchsorted(used, b)])
    out: np.ndarray = (gap >= CLIP_GAP).any(axis=1)
    return out


def clip_shares(pixels: np.ndarray) -> np.ndarray:
    """(N, 2) float32: each image's share of pixels at the white end and at the black end
    (CLIP_LEVELS), CHUNK images at a time."""
    flat = pixels.reshape(len(pixels), int(np.prod(pixels.shape[1:])))  # also for no images
    out = np.empty((len(flat), 2), dtype=np.float32)
    for start in range(0, len(flat), CHUNK):
        part = flat[start : start + CHUNK]
        out[start : start + len(part), 0] = (part >= 255 - CLIP_LEVELS).mean(axis=1)
        out[start : start + len(part), 1] = (part <= CLIP_LEVELS).mean(axis=1)
    return out


def clipped_distance(
    pixels: np.ndarray, a: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(distance, residual) of the pairs after clipping the less clipped image of each at the
    same share of its pixels, at each end: a copy brightened by 20 grey levels whose top 39 %
    clipped to white is then its original, brightened (distance ~0), while distinct images
    stay distinct (their clipped areas are elsewhere)."""
    if len(a) == 0:
        return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.float32)
    block = PAIR_BLOCK // 4  # int16 copies and sorts of every pair's pixels: 2 GB at 200k pairs
    if len(a) > block:
        return _in_blocks(lambda x, y: clipped_distance(pixels, x, y), a, b, block)
    first = pixels[a].astype(np.int16).reshape(len(a), -1)
    second = pixels[b].astype(np.int16).reshape(len(b), -1)
    matched = np.concatenate([_match_clipping(first, second), _match_clipping(second, first)])
    idx = np.arange(len(a))
    both = matched.astype(np.uint8).reshape(2 * len(a), *pixels.shape[1:])
    return verify_pairs(both, idx, idx + len(a))


def _match_clipping(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x (P, n) clipped, row by row, at each end where y has more clipped pixels: to x's level
    at the same count from that end."""
    n = x.shape[1]
    ordered, rows = np.sort(x, axis=1), np.arange(len(x))
    top_y, top_x = (y >= 255 - CLIP_LEVELS).sum(axis=1), (x >= 255 - CLIP_LEVELS).sum(axis=1)
    low_y, low_x = (y <= CLIP_LEVELS).sum(axis=1), (x <= CLIP_LEVELS).sum(axis=1)
    top = np.where(top_y > top_x, ordered[rows, n - np.clip(top_y, 1, n)], 255)
    low = np.where(low_y > low_x, ordered[rows, np.clip(low_y, 1, n) - 1], 0)
    out: np.ndarray = np.clip(x, low[:, None], np.maximum(top, low)[:, None])
    return out


def closeness(distance: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """0 for identical pixels, 1 at the verdict's default line (whichever test is passed more
    easily); `is_near` at threshold t admits only pairs below t."""
    out: np.ndarray = np.minimum(
        beyond_rounding(distance, residual) / NEAR_THRESHOLD, residual / ABS_RESIDUAL
    )
    return out


def verify_pairs(
    pixels: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    *,
    max_shift: int = MAX_SHIFT,
    device: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Aligned distance and residual (grey levels) of the pairs (pixels[a[i]], pixels[b[i]]),
    pixels (N, H, W): two (P,) float32 arrays; the full search over all shifts.

    `device` ("cuda") computes the cross products with torch on that GPU; default: numpy on
    the CPU, without importing torch.
    """
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if len(a) > PAIR_BLOCK:  # at 1M images x 5 candidates, one block's float copy was 8 GB
        return _in_blocks(
            lambda x, y: verify_pairs(pixels, x, y, max_shift=max_shift, device=device),
            a, b, PAIR_BLOCK,
        )  # fmt: skip
    out = np.full(len(a), np.inf, dtype=np.float32)
    residual = np.full(len(a), np.inf, dtype=np.float32)
    if len(a) == 0:
        return out, residual
    used = sorted_distinct(np.concatenate([a, b]))
    local = np.searchsorted(used, np.stack([a, b]))
    centred = _centred(pixels[used])
    windows = _window_sums(centred, max_shift)
    win_a, win_b = windows["a"], windows["b"]
    on_cpu = device in (None, "cpu")
    if on_cpu:
        cross_products = _numpy_cross_products(centred, max_shift)
    else:
        cross_products = _torch_cross_products(centred, max_shift, device or "")

    def check_chunk(start: int) -> None:  # chunks write disjoint slices: safe on threads
        la, lb = local[0, start : start + CHUNK], local[1, start : start + CHUNK]
        cross = cross_products(la, lb)
        wa = (win_a[0][la], win_a[1][la])
        wb = (win_b[0][lb], win_b[1][lb])
        dist, scale = _best_of(cross, wa, wb, centred.shape[1:], max_shift)
        out[start : start + len(la)] = dist
        residual[start : start + len(la)] = dist * scale

    # numpy's products release the GIL: chunks on every CPU; one GPU stream needs no threads
    thread_map(check_chunk, range(0, len(a), CHUNK), threads=None if on_cpu else 1)
    return out, residual


def _in_blocks(
    check: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    a: np.ndarray,
    b: np.ndarray,
    block: int,
) -> tuple[np.ndarray, np.ndarray]:
    """`check(a, b)` (a pair of (P,) arrays) run on `block` pairs at a time and joined: the
    memory of a pair check follows the block, not the number of candidate pairs."""
    parts = [check(a[s : s + block], b[s : s + block]) for s in range(0, len(a), block)]
    return np.concatenate([d for d, _ in parts]), np.concatenate([r for _, r in parts])


CrossProducts = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (a, b) -> (P, S)


def _numpy_cross_products(images: np.ndarray, max_shift: int) -> CrossProducts:
    """(P, S) sums over the overlap of a[y + dy, x + dx] * b[y, x], for every shift, of the
    pairs (images[a], images[b]).

    Image a is zero-padded by s on every side to width W = w + 2s, and b is zero-padded on the
    right to the same width, both flattened. Then shift (dy, dx) is one contiguous dot product
    of h * W values: a's flat pixels from (s + dy) * W + (s + dx) on against b's, where the
    values that run past a row of a meet b's zero columns. A strided view holds all (2s+1)^2
    starts, and one einsum sums along rows of 1,152 contiguous floats (1.6x faster than a
    product-and-sum per shift over 32 x 32 windows, whose inner loops were 32 long)."""
    s = max_shift
    h, w = images.shape[1:]
    width = w + 2 * s
    span = (2 * s + 1, 2 * s + 1)

    def cross_products(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        padded = np.zeros((len(a), (h + 2 * s) * width), dtype=np.float32)
        padded.reshape(len(a), h + 2 * s, width)[:, s : s + h, s : s + w] = images[a]
        kernels = np.zeros((len(b), h * width), dtype=np.float32)
        kernels.reshape(len(b), h, width)[:, :, :w] = images[b]
        item = padded.itemsize
        starts = np.lib.stride_tricks.as_strided(
            padded, shape=(len(a), *span, h * width),
            strides=(padded.strides[0], width * item, item, item), writeable=False,
        )  # fmt: skip
        out: np.ndarray = np.einsum("pijk,pk->pij", starts, kernels).reshape(len(a), -1)
        return out.astype(np.float64)

    return cross_products


def _torch_cross_products(images: np.ndarray, max_shift: int, device: str) -> CrossProducts:
    """The same on a GPU: the images are uploaded once, then one grouped convolution per
    chunk (a pair is a group: image a, zero-padded, correlated with image b as the kernel)."""
    import torch

    s = max_shift
    on = torch.from_numpy(images).to(device)

    def cross_products(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            ia, ib = torch.from_numpy(a).to(on.device), torch.from_numpy(b).to(on.device)
            padded = torch.nn.functional.pad(on[ia], (s, s, s, s)).unsqueeze(0)
            kernels = on[ib].unsqueeze(1)  # (P, 1, H, W)
            cross = torch.nn.functional.conv2d(padded, kernels, groups=len(a))  # (1, P, S, S)
            flat: np.ndarray = cross[0].reshape(len(a), -1).double().cpu().numpy()
        return flat

    return cross_products


def _centred(x: np.ndarray) -> np.ndarray:
    """float32 images minus their own mean: keeps float32 products small (correlation does
    not depend on an added constant)."""
    centred: np.ndarray = np.array(x, dtype=np.float32)  # one copy, centred in place
    centred -= centred.mean(axis=(1, 2), keepdims=True)
    return centred


def _window(role: str, dy: int, dx: int, h: int, w: int) -> tuple[slice, slice]:
    """The overlap window of image a (role "a") or b (role "b") for shift (dy, dx)."""
    sign = 1 if role == "a" else -1
    y, x = max(0, sign * dy), max(0, sign * dx)
    return slice(y, y + h - abs(dy)), slice(x, x + w - abs(dx))


def _window_sums(c: np.ndarray, max_shift: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per role ("a", "b"), per image and shift, the sum and sum of squares over its overlap
    window: (N, S) each.

    Computed once per image, so a pair only pays for its cross products. A window is a band of
    rows times a band of columns and there are only 2s+1 distinct bands of each, so all window
    sums are u_y^T X u_x for 0/1 band indicators: two small matrix products per image. Both
    roles come from one float64 copy of each WINDOW_CHUNK images (a few MB, reused from the
    allocator: 2048 images' 16 MB blocks were fresh mappings, faulted in at every chunk).
    """
    n, h, w = c.shape
    offsets = range(-max_shift, max_shift + 1)
    bands = {}
    for role in ("a", "b"):
        rows = np.zeros((len(offsets), h))
        cols = np.zeros((len(offsets), w))
        for i, d in enumerate(offsets):
            rows[i, _window(role, d, 0, h, w)[0]] = 1.0
            cols[i, _window(role, 0, d, h, w)[1]] = 1.0
        bands[role] = rows, cols.T.copy()
    out = {role: (np.empty((n, len(offsets) ** 2)), np.empty((n, len(offsets) ** 2)))
           for role in bands}  # fmt: skip
    for start in range(0, n, WINDOW_CHUNK):
        block = c[start : start + WINDOW_CHUNK].astype(np.float64)
        for which, x in enumerate((block, block * block)):
            for role, (rows, cols) in bands.items():
                sums = np.matmul(np.matmul(rows, x), cols)  # (n, dy, dx) in shifts() order
                out[role][which][start : start + len(block)] = sums.reshape(len(block), -1)
    return out


def _best_of(
    cross: np.ndarray,
    wa: tuple[np.ndarray, np.ndarray],
    wb: tuple[np.ndarray, np.ndarray],
    shape: tuple[int, ...],
    max_shift: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Best distance over all shifts from the cross products (P, S) and window sums; and the
    larger of the two stds over the overlap at the best shift."""
    h, w = shape
    n = np.array([(h - abs(dy)) * (w - abs(dx)) for dy, dx in shifts(max_shift)], float)
    std_a = np.sqrt(np.maximum(wa[1] - wa[0] ** 2 / n, 0.0) / n)  # (P, S)
    std_b = np.sqrt(np.maximum(wb[1] - wb[0] ** 2 / n, 0.0) / n)
    cov = cross / n - (wa[0] / n) * (wb[0] / n)
    var = std_a * std_b
    corr = np.where(var > 1e-9, cov / np.maximum(var, 1e-18), -1.0)
    best = corr.argmax(axis=1)
    rows = np.arange(len(cross))
    dist = np.sqrt(np.clip(2.0 * (1.0 - corr[rows, best]), 0.0, 4.0)).astype(np.float32)
    return dist, np.maximum(std_a, std_b)[rows, best].astype(np.float32)
