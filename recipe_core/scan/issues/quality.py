"""Per-image quality issues: corrupt, dark, light, low_information, blurry, odd_size,
odd_aspect_ratio.

Each issue has a severity in [0, 1] for every sample (0.5 = on the line, see
`_common.severity`), judged mostly against the dataset's own robust statistics (median and MAD
of a log quantity), so naturally soft 32 px digits are not "blurry" and a dataset of night
photos is not "dark". Absolute floors catch what no dataset calls normal: a near-black,
near-white or constant image. All values come from the index (no file is read):

* dark: both the mean brightness and the brightest 1 % of pixels are at least DARK_RATIO
  times (and Z robust sigmas) below the dataset's typical (underexposure darkens the
  highlights too), or the brightest 1 % is below ABS_DARK_P99 in any dataset.
* light: the same on the headroom to white (1 - brightness, 1 - darkest 1 %), or the darkest
  1 % of pixels is above ABS_LIGHT_P1.
* low_information: nearly constant (std of every colour channel and of luminance below
  ABS_FLAT_STD: red/green stripes of equal luminance are not flat), or both entropy and that
  contrast far below the dataset's typical. Near-black / near-white images are nearly
  constant too and get this row besides dark / light.
* blurry: the no-reference blur effect of Crete et al. (2007) on the 32 px thumbnail: blur
  the image again with a box filter and measure the share of its own gradient that survives
  (in [0, 1], 1 = nothing left to lose = blurry). Normalised by the image's own edges, so a
  picture with few edges is not "blurry". Flagged Z robust sigmas (and at least BLUR_MARGIN)
  above the dataset's median: 32 px digits are soft by nature. Flat images are skipped.
* odd_size / odd_aspect_ratio: the image's scale sqrt(w*h) (its w/h) far from the median in
  log space, and rare: a size shared by >= COMMON_SHARE of the dataset is a second normal
  format (portrait photos among landscape ones), not an oddity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recipe_core.scan.index.schema import ScanIndex
from recipe_core.scan.issues._common import (
    concat_issues,
    issue_frame,
    robust_center_scale,
    severity,
)
from recipe_core.scan.issues.memo import IssueMemo

Z = 4.0  # robust z-scores (MAD sigmas) past which a value is unusual for this dataset
DARK_RATIO = 2.0  # at least this many times darker (or closer to white) than typical
ABS_DARK_P99 = 0.15  # brightest 1 % of pixels below this (of 1.0): dark in any dataset
ABS_LIGHT_P1 = 0.85  # darkest 1 % of pixels above this: light in any dataset
ABS_FLAT_STD = 0.03  # luminance std (of 1.0) below this: a nearly constant image
INFO_RATIO = 3.0  # entropy and contrast both this many times below typical: low information
BLUR_MARGIN = 0.05  # blur effect at least this far above typical (it lives in [0, 1])
BLUR_BOX = 5  # px: the re-blurring box filter of the blur effect
PARTITION_ROWS = 4096  # thumbnails per percentile partition (4 MB of uint8)
SIZE_RATIO = 2.0  # scale (sqrt(w*h)) this many times off the median: odd size
ASPECT_RATIO = 1.5  # w/h this many times off the median: odd aspect ratio
COMMON_SHARE = 0.02  # a size/aspect shared (within 5 %) by this share of samples is normal
QUALITY_ISSUES = ("dark", "light", "low_information", "blurry", "odd_size", "odd_aspect_ratio")


@dataclass(frozen=True)
class QualityResult:
    # sample_id, corrupt (bool) and one severity column per QUALITY_ISSUES name, in [0, 1]
    scores: pd.DataFrame = field(repr=False)
    issues: pd.DataFrame = field(repr=False)  # family rows: sample_id, issue, score, group, detail


def find_quality_issues(index: ScanIndex, *, memo: IssueMemo | None = None) -> QualityResult:
    """Per-image quality problems of `index`, with a severity for every sample. `memo` (see
    `recipe_core.scan.issues.memo`) keeps the pixel statistics of images seen before."""
    table = index.table
    valid = index.valid
    stats = _image_stats(index, memo)
    scores = pd.DataFrame({"sample_id": table["sample_id"].to_numpy(), "corrupt": ~valid})
    frames = [_corrupt_rows(table)]
    for name, (score, detail) in _all_scores(stats, valid).items():
        score = np.where(valid, score, 0.0)
        scores[name] = score
        flagged = np.flatnonzero(score >= 0.5)
        frames.append(
            issue_frame(
                table["sample_id"].to_numpy()[flagged],
                name,
                score[flagged],
                [detail(int(i)) for i in flagged],
            )
        )
    return QualityResult(scores=scores, issues=concat_issues(frames))


def _corrupt_rows(table: pd.DataFrame) -> pd.DataFrame:
    bad = table[table["decode_error"] != ""]
    return issue_frame(
        bad["sample_id"].to_numpy(),
        "corrupt",
        np.ones(len(bad)),
        [f"decode error: {e}" for e in bad["decode_error"]],
    )


def _image_stats(index: ScanIndex, memo: IssueMemo | None = None) -> pd.DataFrame:
    """The per-image numbers the rules read, on the [0, 1] scale where relevant."""
    t = index.table
    every = np.arange(len(t))
    if memo is None:
        from_pixels = _pixel_stats(index.pixels)
    else:
        from_pixels = memo.per_image("quality", every, lambda r: _pixel_stats(index.pixels[r]))
    channels = t[["contrast", "std_r", "std_g", "std_b"]].to_numpy(dtype=np.float64)
    return pd.DataFrame(
        {
            "brightness": t["brightness"].to_numpy(dtype=np.float64),
            "contrast": channels.max(axis=1),  # luminance or any colour channel
            "entropy": t["entropy"].to_numpy(dtype=np.float64),
            "p01": from_pixels[:, 0],
            "p99": from_pixels[:, 1],
            "blur_effect": from_pixels[:, 2],
            "scale": np.sqrt(t["width"].to_numpy(np.float64) * t["height"].to_numpy(np.float64)),
            "aspect": t["aspect_ratio"].to_numpy(dtype=np.float64),
        }
    )


def _pixel_stats(pixels: np.ndarray) -> np.ndarray:
    """(N, 3) float64 from the thumbnails: 1st and 99th luminance percentiles ([0, 1]) and
    the blur effect."""
    out = np.zeros((len(pixels), 3))
    k = int(np.prod(pixels.shape[1:]))
    if len(pixels) == 0 or k == 0:
        return out
    flat = pixels.reshape(len(pixels), k)
    lo, hi = int(0.01 * (k - 1)), int(0.99 * (k - 1))
    for start in range(0, len(flat), PARTITION_ROWS):  # its copy stays in cache
        ends = np.partition(flat[start : start + PARTITION_ROWS], (lo, hi), axis=1)
        rows = slice(start, start + len(ends))
        out[rows, 0], out[rows, 1] = ends[:, lo] / 255.0, ends[:, hi] / 255.0
    out[:, 2] = blur_effect(pixels)
    return out


Scored = tuple[np.ndarray, "DetailFn"]


class DetailFn:
    """Formats the `detail` text of row i lazily (only flagged rows pay for it)."""

    def __init__(self, template: str, **columns: np.ndarray) -> None:
        self.template, self.columns = template, columns

    def __call__(self, i: int) -> str:
        return self.template.format(**{k: v[i] for k, v in self.columns.items()})


def _all_scores(s: pd.DataFrame, valid: np.ndarray) -> dict[str, Scored]:
    flat = s["contrast"].to_numpy() < ABS_FLAT_STD
    return {
        "dark": _dark(s, valid),
        "light": _light(s, valid),
        "low_information": _low_information(s, valid, flat),
        "blurry": _blurry(s, valid & ~flat),
        "odd_size": _odd(s["scale"].to_numpy(), valid, SIZE_RATIO, "size {v:.0f} px (sqrt w*h)"),
        "odd_aspect_ratio": _odd(s["aspect"].to_numpy(), valid, ASPECT_RATIO, "aspect {v:.2f}"),
    }


def _below_typical(values: np.ndarray, valid: np.ndarray, ratio: float) -> tuple[np.ndarray, float]:
    """Severity of being far *below* the dataset's typical value, in log space: 0.5 when the
    value is `ratio` times (and Z robust sigmas) under the median. Returns (severity, median)."""
    logs = np.log(np.maximum(values, 1e-6))
    center, scale = robust_center_scale(logs[valid], floor=0.01)
    threshold = max(Z * scale, np.log(ratio))
    return severity(center - logs, threshold), float(np.exp(center))


def _dark(s: pd.DataFrame, valid: np.ndarray) -> Scored:
    b, p99 = s["brightness"].to_numpy(), s["p99"].to_numpy()
    darker, typical = _below_typical(b, valid, DARK_RATIO)
    # Underexposure darkens the highlights too; a dark photo with a bright lamp is not dark.
    relative = np.minimum(darker, _below_typical(p99, valid, DARK_RATIO)[0])
    absolute = severity(np.log(ABS_DARK_P99 / np.maximum(p99, 1e-3)) + np.log(2), np.log(2))
    score = np.maximum(relative, absolute)
    text = "mean brightness {b:.2f} (typical {t:.2f}); brightest 1 % of pixels at {p:.0f}/255"
    return score, DetailFn(text, b=b, t=np.full(len(b), typical), p=p99 * 255)


def _light(s: pd.DataFrame, valid: np.ndarray) -> Scored:
    b, p01 = s["brightness"].to_numpy(), s["p01"].to_numpy()
    lighter, typical = _below_typical(1.0 - b, valid, DARK_RATIO)
    headroom = np.maximum(1.0 - p01, 1e-3)
    # Overexposure lifts the shadows too; a white page with black ink is not light.
    relative = np.minimum(lighter, _below_typical(headroom, valid, DARK_RATIO)[0])
    absolute = severity(np.log((1 - ABS_LIGHT_P1) / headroom) + np.log(2), np.log(2))
    score = np.maximum(relative, absolute)
    text = "mean brightness {b:.2f} (typical {t:.2f}); darkest 1 % of pixels at {p:.0f}/255"
    return score, DetailFn(text, b=b, t=np.full(len(b), 1 - typical), p=p01 * 255)


def _low_information(s: pd.DataFrame, valid: np.ndarray, flat: np.ndarray) -> Scored:
    c, e = s["contrast"].to_numpy(), s["entropy"].to_numpy()
    few_bits, typical_e = _below_typical(e, valid, INFO_RATIO)
    low_contrast, typical_c = _below_typical(c, valid, INFO_RATIO)
    relative = np.minimum(few_bits, low_contrast)  # both, or a checkerboard would qualify
    absolute = severity(np.log(ABS_FLAT_STD / np.maximum(c, 1e-4)) + np.log(2), np.log(2))
    score = np.maximum(relative, absolute)
    text = "luminance std {c:.3f} (typical {tc:.3f}), entropy {e:.1f} bits (typical {te:.1f})"
    n = len(c)
    return score, DetailFn(text, c=c, tc=np.full(n, typical_c), e=e, te=np.full(n, typical_e))


def _blurry(s: pd.DataFrame, eligible: np.ndarray) -> Scored:
    blur = s["blur_effect"].to_numpy()
    center, scale = robust_center_scale(blur[eligible], floor=0.005)
    score = np.where(eligible, severity(blur - center, max(Z * scale, BLUR_MARGIN)), 0.0)
    text = "blur effect {v:.2f} (share of edges a re-blur cannot soften), typical {t:.2f}"
    return score, DetailFn(text, v=blur, t=np.full(len(blur), center))


def blur_effect(pixels: np.ndarray) -> np.ndarray:
    """(N,) blur effect in [0, 1] of (N, H, W) luminance images (Crete et al. 2007): per
    direction, the share of the absolute neighbour differences that survive re-blurring with
    a BLUR_BOX box filter; the larger of the two directions. 1 = blurry."""
    out = np.zeros(len(pixels))
    for start in range(0, len(pixels), 512):  # 2 MB chunks stay in cache
        x = pixels[start : start + 512].astype(np.float32)
        for axis in (1, 2):
            sharp_d = np.abs(np.diff(x, axis=axis))
            lost = np.maximum(sharp_d - np.abs(np.diff(_box(x, axis), axis=axis)), 0.0)
            total = sharp_d.sum(axis=(1, 2), dtype=np.float64)
            kept = 1.0 - lost.sum(axis=(1, 2), dtype=np.float64) / np.maximum(total, 1e-6)
            out[start : start + len(x)] = np.maximum(out[start : start + len(x)], kept)
    return np.clip(out, 0.0, 1.0)


def _box(x: np.ndarray, axis: int) -> np.ndarray:
    """Mean over BLUR_BOX px along `axis` (1 or 2), edges padded by repetition."""
    half = BLUR_BOX // 2
    pad = [(0, 0), (0, 0), (0, 0)]
    pad[axis] = (half, half)
    padded = np.pad(x, pad, mode="edge")
    n = x.shape[axis]
    box = np.zeros_like(x)
    for k in range(BLUR_BOX):
        box += padded[:, k : k + n, :] if axis == 1 else padded[:, :, k : k + n]
    box /= BLUR_BOX
    return box


def _odd(values: np.ndarray, valid: np.ndarray, ratio: float, what: str) -> Scored:
    logs = np.log(np.maximum(values, 1e-6))
    center, scale = robust_center_scale(logs[valid], floor=0.01)
    score = severity(np.abs(logs - center), max(Z * scale, np.log(ratio)))
    score = np.where(_is_common(logs, valid), 0.0, score)
    typical = np.full(len(values), np.exp(center))
    return score, DetailFn(what + ", typical {t:.2f}", v=values, t=typical)


def _is_common(logs: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(N,) bool: at least COMMON_SHARE of the valid samples lie within 5 % of this value."""
    ref = np.sort(logs[valid])
    if len(ref) == 0:
        return np.zeros(len(logs), dtype=bool)
    width = np.log(1.05)
    count = np.searchsorted(ref, logs + width, "right") - np.searchsorted(ref, logs - width)
    common: np.ndarray = count >= max(2, COMMON_SHARE * len(ref))
    return common


def low_information_mask(index: ScanIndex) -> np.ndarray:
    """(N,) bool: the rows `find_quality_issues` reports as low_information (severity >= 0.5),
    from the same statistics; duplicates.py keeps these out of near-duplicate linking."""
    t = index.table
    channels = t[["contrast", "std_r", "std_g", "std_b"]].to_numpy(dtype=np.float64)
    stats = pd.DataFrame(
        {"contrast": channels.max(axis=1), "entropy": t["entropy"].to_numpy(dtype=np.float64)}
    )
    flat = stats["contrast"].to_numpy() < ABS_FLAT_STD
    score = _low_information(stats, np.asarray(index.valid, dtype=bool), flat)[0]
    out: np.ndarray = (score >= 0.5) & np.asarray(index.valid, dtype=bool)
    return out
