"""Image kinds (greyscale vs colour, noise-like vs structured) for the outlier score: a stray
of a rare kind.

Among diverse colour photographs every image is far from every other in embedding space, so
a small cluster of greyscale images has typical kNN distances and is not an outlier by
distance (0 of 8 grey digits among 900 synthetic RGB photos). Being greyscale is, however, a
near-binary property: grey images have identical channels (colour spread 0), while the least
colourful of 3.8k synthetic photos still had a channel spread >= 0.017 and >= 8 % of its
pixels off the grey diagonal of the colour histogram. A kind held by at most k images (the
outlier score's neighbour count, above plausible stray-cluster sizes) and by at most
MAX_RARE_SHARE of the scored images marks its members as outliers. Noise-like images (see
`image_statistics.is_noise_like`) are a kind the same way; only that side can be the rare one.
So are colour drawings on a flat ground (`flat_ground`: a diagram, a logo, a rendered chart among
photos): at least FLAT_GROUND of the 32 px thumbnail's pixels share one grey level, where no clean
photo crop of three planted sets came above 0.33 (a diagram 0.63); greyscale images are left to
the greyscale kind (half of all handwritten digits hold a third of their pixels at one level).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recipe_core.scan.index.embed import COLOUR_BINS, DEFAULT_EMBEDDING, EMBEDDING_DIM
from recipe_core.scan.index.schema import ScanIndex

GREY_SPREAD = 0.01  # max channel spread (of means plus of stds, RGB in [0, 1]) of a grey image
GREY_OFF_DIAGONAL = 0.02  # max share of pixels off the grey diagonal of the RGB histogram
MAX_RARE_SHARE = 0.05  # a kind held by more of the scored images is a mode of the data
FLAT_GROUND = 0.5  # share of pixels at the commonest grey level: drawn on a flat ground
GROUND_CHUNK = 4096  # thumbnails counted together
_DIAGONAL = np.arange(COLOUR_BINS) * (COLOUR_BINS**2 + COLOUR_BINS + 1)  # (r, g, b) = (i, i, i)


def is_greyscale(index: ScanIndex) -> np.ndarray:
    """(N,) bool: the image's colour channels agree (also true for undecodable rows)."""
    cols = index.table
    means = cols[["mean_r", "mean_g", "mean_b"]].to_numpy(np.float64)
    stds = cols[["std_r", "std_g", "std_b"]].to_numpy(np.float64)
    spread = np.ptp(means, axis=1) + np.ptp(stds, axis=1)
    grey = spread <= GREY_SPREAD
    emb = index.embeddings
    if index.embedding_name == DEFAULT_EMBEDDING and emb.shape[1:] == (EMBEDDING_DIM,):
        # the last block is the square-rooted joint histogram: squares give pixel shares
        hist = emb[:, -(COLOUR_BINS**3) :].astype(np.float64) ** 2
        shares = hist / np.maximum(hist.sum(axis=1, keepdims=True), 1e-12)
        grey &= 1.0 - shares[:, _DIAGONAL].sum(axis=1) <= GREY_OFF_DIAGONAL
    return np.asarray(grey, dtype=bool)


def flat_ground(pixels: np.ndarray) -> np.ndarray:
    """(N,) float32: the share of each (N, H, W) uint8 thumbnail's pixels at its commonest
    grey level."""
    out = np.zeros(len(pixels), dtype=np.float32)
    for start in range(0, len(pixels), GROUND_CHUNK):
        part = pixels[start : start + GROUND_CHUNK].reshape(-1, pixels[0].size)
        codes = part.astype(np.int64) + 256 * np.arange(len(part))[:, None]
        counts = np.bincount(codes.ravel(), minlength=256 * len(part)).reshape(len(part), 256)
        out[start : start + len(part)] = counts.max(axis=1) / part.shape[1]
    return out


@dataclass(frozen=True)
class Kind:
    """A near-binary property of an image: `name` where `members` is true, `other` where not.
    `both_ways`: the other side may be the rare one too (colour among greyscale)."""

    name: str
    other: str
    members: np.ndarray  # (N,) bool
    both_ways: bool = True


def rare_kinds(kinds: list[Kind], rows: np.ndarray, k: int) -> list[tuple[str, str, np.ndarray]]:
    """For each kind that is rare among `rows` (held by at most min(k, MAX_RARE_SHARE) of
    them): (its name, the common kind's name, an (N,) bool mask of its members in `rows`)."""
    limit = min(k, MAX_RARE_SHARE * len(rows))
    found = []
    for kind in kinds:
        inside = np.zeros(len(kind.members), dtype=bool)
        inside[rows] = True
        sides = [(kind.name, kind.other, kind.members)]
        if kind.both_ways:
            sides.append((kind.other, kind.name, ~kind.members))
        for name, other, members in sides:
            mask = members & inside
            if 0 < mask.sum() <= limit:
                found.append((name, other, mask))
                break
    return found
