"""Second-order image statistics for the outlier score: an image whose spectrum is unlike the
rest of the dataset's.

Photographs share their second-order statistics: the power spectrum falls as a power of the
frequency (a straight line on log-log axes; Field 1987, van der Schaaf and van Hateren 1996)
and neighbouring pixels are strongly correlated. Images of another *making* break that:
pure noise has a flat spectrum and uncorrelated neighbours, a colour ramp has its power in
the lowest frequency and neighbours that are perfectly correlated, a line drawing or a
cartoon has a bent spectrum (flat regions and hard edges). Among diverse photographs such an
image is not far from its nearest neighbours in embedding space (every photograph is far
from every other), so the kNN distance misses it; here it stands out along a few numbers.

Three statistics of the aligned 32x32 luminance thumbnail (`ScanIndex.pixels`), windowed:
the slope of the radially averaged log power spectrum against log frequency over six
octave-wide bands, the spread of the bands around that line (curvature), and
log(1 - r) of the horizontal and vertical neighbour correlation r. Each is robustly
standardised (median / MAD over the scored images); the score is the Mahalanobis distance
under the covariance of the central images (all three |z| < 3), as a robust z again.

Measured (robust z of that distance): colour ramps among RGB photo crops 11.7-12.8 against at
most 5.5 for every clean crop (three seeds); cartoon faces, a letter and a checkerboard among
digits 18-74 against at most 5.2 for the clean digits. The line is Z_STATS = 7.

Noise is the exception: the photo classes themselves span the slope/correlation axis (bokeh
-4.5, foliage -2.5), so white noise sits at its far end, z 2.8-4.4, not off it. It is found
by what it is instead (`is_noise_like`): a spectrum no steeper than NOISE_SLOPE and
neighbours correlated less than NOISE_CORRELATION. Planted uniform RGB noise measured slope
-0.2..0.2 and r 0.26; the clean crops of three photo seeds, the sample and held-out digits and
the textured RGB shapes had no image past both lines (slopes up to -1.16 among photos; shapes
reached 0.93 on upsampled texture, but with r >= 0.65). The outlier score flags noise-like
images when they are a rare kind in the dataset (`outlier_features.rare_kinds`).
"""

from __future__ import annotations

import numpy as np

from recipe_core.scan.issues._common import robust_center_scale

Z_STATS = 7.0  # robust z of the statistics distance at which an image is flagged (severity 0.5)
CORE_Z = 3.0  # images with every statistic within this robust z shape the covariance
N_BANDS = 6  # octave-wide frequency bands from 1/32 to 1/2 cycles per pixel
CHUNK = 512  # thumbnails per FFT batch: its working arrays (2 MB each) stay in cache; 8192
# made 33 MB ones, fresh mappings to fault in each (1.8 -> 0.84 s at 50k)
STAT_NAMES = ("spectral_slope", "spectral_curvature", "neighbour_correlation")
NOISE_SLOPE = -0.75  # a power spectrum at least this flat (white noise: 0; photographs: < -1)
NOISE_CORRELATION = 0.5  # ... and neighbouring pixels correlated less than this: noise-like


def image_statistics(pixels: np.ndarray) -> np.ndarray:
    """(N, S, S) uint8 luminance -> (N, 3) float64: spectral slope, spectral curvature and
    log(1 - neighbour correlation). A constant image gets a slope of 0, a curvature of 0 and
    a correlation of 1 (its statistics are undefined: such images are low-information)."""
    out = np.zeros((len(pixels), len(STAT_NAMES)))
    if len(pixels) == 0:
        return out
    side = pixels.shape[1]
    window = np.outer(np.hanning(side), np.hanning(side)).astype(np.float32)
    # rfft2 keeps the non-negative x frequencies; the columns whose mirror it drops count twice,
    # so each band's mean is the full plane's
    fy, fx = np.meshgrid(np.fft.fftfreq(side), np.fft.rfftfreq(side), indexing="ij")
    twice = ((fx > 0) & (fx < 0.5)).ravel()
    edges = np.geomspace(1.0 / side, 0.5, N_BANDS + 1)
    band = np.searchsorted(edges, np.hypot(fx, fy), side="right").ravel() - 1  # -1, N_BANDS: out
    inside = (band >= 0) & (band < N_BANDS)
    to_bands = np.zeros((band.size, N_BANDS), dtype=np.float32)  # averaging matrix
    to_bands[np.flatnonzero(inside), band[inside]] = np.where(twice, 2.0, 1.0)[inside]
    to_bands /= to_bands.sum(axis=0, keepdims=True)
    log_freq = np.log(np.sqrt(edges[:-1] * edges[1:]))
    design = np.column_stack([log_freq, np.ones(N_BANDS)])
    for start in range(0, len(pixels), CHUNK):
        x = pixels[start : start + CHUNK].astype(np.float32)
        x -= x.mean(axis=(1, 2), keepdims=True)
        spectrum = np.fft.rfft2(x * window)
        power = (spectrum.real**2 + spectrum.imag**2).reshape(len(x), -1).astype(np.float32)
        log_power = np.log(power @ to_bands + 1e-9).astype(np.float64)
        coef, *_ = np.linalg.lstsq(design, log_power.T, rcond=None)
        residual = log_power - (design @ coef).T
        out[start : start + CHUNK, 0] = coef[0]
        out[start : start + CHUNK, 1] = residual.std(axis=1)
        out[start : start + CHUNK, 2] = np.log1p(-np.minimum(_neighbour_correlation(x), 1 - 1e-4))
    flat_rows = pixels.reshape(len(pixels), -1)
    flat = flat_rows.max(axis=1) == flat_rows.min(axis=1)  # uint8 compare, no float copy
    out[flat] = (0.0, 0.0, np.log(1e-4))
    return out


def is_noise_like(stats: np.ndarray) -> np.ndarray:
    """(M,) bool from `image_statistics` rows (nan rows: False): a flat spectrum and barely
    correlated neighbours, i.e. pixel-independent noise rather than an image of something."""
    stats = np.asarray(stats, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        flat = stats[:, 0] > NOISE_SLOPE
        loose = stats[:, 2] > np.log1p(-NOISE_CORRELATION)  # log(1 - r) > log(1 - line)
    out: np.ndarray = flat & loose
    return out


def _neighbour_correlation(x: np.ndarray) -> np.ndarray:
    """(N,) Pearson correlation of each pixel with its right neighbour and with its lower
    neighbour, averaged over the two directions (a ramp at any angle: 1)."""
    out = np.zeros(len(x))
    for a, b in ((x[:, :, 1:], x[:, :, :-1]), (x[:, 1:, :], x[:, :-1, :])):
        a = a - a.mean(axis=(1, 2), keepdims=True)
        b = b - b.mean(axis=(1, 2), keepdims=True)
        num = (a * b).sum(axis=(1, 2))
        den = np.sqrt((a * a).sum(axis=(1, 2)) * (b * b).sum(axis=(1, 2)))
        out += np.where(den > 0, num / np.maximum(den, 1e-12), 1.0) / 2
    return out


def statistics_z(stats: np.ndarray) -> np.ndarray:
    """(M,) robust z of each row's Mahalanobis distance from the central rows of `stats`
    (M, 3): how unusual the image's second-order statistics are within this dataset."""
    if len(stats) < 2 * stats.shape[1] + 2:
        return np.zeros(len(stats))
    z = np.column_stack([_robust_z(column) for column in stats.T])
    core = (np.abs(z) < CORE_Z).all(axis=1)
    if core.sum() <= stats.shape[1]:
        core = np.ones(len(z), dtype=bool)
    cov = np.cov(z[core], rowvar=False) + 0.05 * np.eye(stats.shape[1])  # ridge: a stable inverse
    return _robust_z(np.sqrt(np.einsum("ij,jk,ik->i", z, np.linalg.inv(cov), z)))


def _robust_z(values: np.ndarray) -> np.ndarray:
    center, scale = robust_center_scale(values, floor=1e-6)
    out: np.ndarray = (values - center) / scale
    return out
