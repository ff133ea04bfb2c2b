"""Out-of-domain images: far from everything else in embedding space.

Score: the mean Euclidean distance to the k nearest neighbours, with k larger than any
plausible cluster of strays (k = max(20, 1 % of N), at most MAX_K): eight look-alike cartoon
faces among digits are each other's nearest neighbours, so with k = 10 they look normal
(precision@8 0.75 on 800 digits); with k = 20 most of each face's neighbours are digits, far
away. The distance becomes a robust z-score (median / MAD over the scored images) and a
severity that reaches 0.5 at Z_OUT. Measured with k = 20 on three digit sets (the sample, a
held-out planting, 800 digits + 8 faces): every stray at z >= 4.6, every other image <= 3.9.

Images already explained by another issue (undecodable, blank, near-black/white, distorted
by an odd aspect ratio) are neither scored nor used as neighbours: they would take the top
outlier slots for a reason the user already sees.

A second, distance-free signal covers what kNN distance misses: an image of a rare kind
(greyscale among colour photographs, or colour among greyscale, a drawing on a flat ground
among photographs; see outlier_features.py).
Its severity is 1 - 0.5 * count / limit, so the rarer the kind the higher (0.5 at the limit),
and an image's score is the larger of the two. Measured: 8 grey digits (or grey faces) among
900 synthetic RGB photos went from 0/8 to 8/8 flagged, top 8 of the ranking; no change on the
digit sets (no image there is coloured) and no alarm on two clean RGB sets (916, 2016 images).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recipe_core.scan.index.schema import ScanIndex
from recipe_core.scan.issues._common import issue_frame, robust_center_scale, severity
from recipe_core.scan.issues.image_statistics import (
    Z_STATS,
    image_statistics,
    is_noise_like,
    statistics_z,
)
from recipe_core.scan.issues.memo import IssueMemo
from recipe_core.scan.issues.neighbors import NeighborGraph, neighbor_graph
from recipe_core.scan.issues.outlier_features import (
    FLAT_GROUND,
    MAX_RARE_SHARE,
    Kind,
    flat_ground,
    is_greyscale,
    rare_kinds,
)

Z_OUT = 4.25  # robust z of the kNN distance at which an image is flagged (severity 0.5)
MIN_K = 20
MAX_K = 50  # bounds the graph's memory (N x k) and cost; clusters of strays above this
#            size are a mode of the data, and show up in the embedding map instead
EXCLUDED_BY = ("corrupt", "low_information", "dark", "light", "odd_aspect_ratio")


@dataclass(frozen=True)
class OutlierResult:
    # sample_id, knn_distance (mean over k neighbours; nan when not scored), z (robust
    # z-score), rare_kind (bool: of a rare kind, e.g. greyscale among colour or the reverse, or
    # noise-like among structured images), stats_z (robust z of
    # the image statistics' distance; nan when not scored), score (severity in [0, 1], the
    # largest of the distance, rare-kind and statistics severities), scored (bool: took part)
    scores: pd.DataFrame = field(repr=False)
    k: int  # neighbours averaged
    issues: pd.DataFrame = field(repr=False)  # family rows: sample_id, issue, score, group, detail


def outlier_k(n: int) -> int:
    """Neighbours to average for a dataset of n images: above plausible stray-cluster sizes."""
    return int(min(MAX_K, max(MIN_K, n // 100)))


def find_outliers(
    index: ScanIndex,
    *,
    rows: np.ndarray | None = None,
    graph: NeighborGraph | None = None,
    seed: int = 0,
    odd_quality: np.ndarray | None = None,
    memo: IssueMemo | None = None,
) -> OutlierResult:
    """Outlier scores for `rows` of the index (default: every decoded row), neighbours searched
    among those rows. A shared `graph` may cover more rows; neighbours outside `rows` are
    ignored, so give it a few spare columns. `odd_quality` (N,) bool marks images with a
    quality issue (blurry, odd size): their image statistics are odd for that reason, so
    only the distance and rare-kind signals score them. `memo` keeps the image statistics of
    images seen before (`recipe_core.scan.issues.memo`)."""
    n = len(index)
    rows = np.flatnonzero(index.valid) if rows is None else np.asarray(rows, dtype=np.int64)
    k = outlier_k(len(rows))
    if graph is None:
        graph = neighbor_graph(index.embeddings, rows, k, seed=seed)
    knn = np.full(n, np.nan)
    knn[rows] = _mean_knn_distance(graph, rows, k, n)[rows]
    scored = ~np.isnan(knn)
    center, scale = robust_center_scale(knn[scored], floor=1e-6)
    z = np.where(scored, (knn - center) / scale, np.nan)
    score = np.where(scored, severity(np.nan_to_num(knn - center), Z_OUT * scale), 0.0)
    stats = _Statistics.of(index, np.flatnonzero(scored), memo)
    grey = is_greyscale(index)
    drawn = _ground(index, memo, np.flatnonzero(~grey)) >= FLAT_GROUND
    kinds = [
        Kind("greyscale", "colour", grey),
        Kind("noise-like", "structured", is_noise_like(stats.values), both_ways=False),
        Kind("drawn", "photographic", drawn, both_ways=False),
    ]
    found = rare_kinds(kinds, np.flatnonzero(scored), k)
    limit = min(k, MAX_RARE_SHARE * len(rows))
    rare = np.zeros(n, dtype=bool)
    for _, _, members in found:
        rare |= members
        score = np.where(members, np.maximum(score, 1 - 0.5 * members.sum() / max(limit, 1)), score)
    plain = np.ones(n, dtype=bool) if odd_quality is None else ~np.asarray(odd_quality, bool)
    stats_odd = plain & (np.nan_to_num(stats.z) >= Z_STATS)
    score = np.where(plain, np.maximum(score, severity(np.nan_to_num(stats.z), Z_STATS)), score)
    ids = index.table["sample_id"].to_numpy()
    table = pd.DataFrame({"sample_id": ids, "knn_distance": knn, "z": z, "rare_kind": rare,
                          "stats_z": stats.z, "score": score, "scored": scored})  # fmt: skip
    flagged = np.flatnonzero(score >= 0.5)
    n_scored = int(scored.sum())

    def describe(i: int) -> str:
        parts = [_rare_detail(name, other, int(m.sum()), n_scored) for name, other, m in found
                 if m[i]]  # fmt: skip
        if z[i] >= Z_OUT:
            parts.append(_far_detail(float(knn[i]), float(z[i]), k, center))
        if stats_odd[i]:
            parts.append(stats.detail(i))
        return "; ".join(parts)

    details = [describe(int(i)) for i in flagged]
    issues = issue_frame(ids[flagged], "outlier", score[flagged], details)
    return OutlierResult(scores=table, k=k, issues=issues)


def _ground(index: ScanIndex, memo: IssueMemo | None, rows: np.ndarray) -> np.ndarray:
    """(N,) `flat_ground` of `rows` (0 elsewhere): only colour images can be of the drawn
    kind, so a greyscale set (digits, the 32 px benchmarks) pays nothing for it."""
    out = np.zeros(len(index), dtype=np.float32)
    if memo is None:
        out[rows] = flat_ground(index.pixels[rows])
    else:
        out[rows] = memo.per_image("flat_ground", rows, lambda r: flat_ground(index.pixels[r]))
    return out


def _far_detail(knn: float, z: float, k: int, center: float) -> str:
    return (
        f"far from everything else: mean distance to {k} nearest images {knn:.3f} "
        f"(typical {center:.3f}, robust z {z:.1f})"
    )


def _rare_detail(kind: str, other: str, count: int, n: int) -> str:
    return f"a {kind} image among {other} ones ({count} {kind} of {n} images)"


@dataclass(frozen=True)
class _Statistics:
    """The image-statistics signal over the scored rows (see image_statistics.py)."""

    values: np.ndarray  # (N, 3); nan where not scored
    z: np.ndarray  # (N,) robust z of the distance; nan where not scored
    typical: np.ndarray  # (3,) medians over the scored rows

    @classmethod
    def of(cls, index: ScanIndex, rows: np.ndarray, memo: IssueMemo | None) -> _Statistics:
        values = np.full((len(index), 3), np.nan)
        z = np.full(len(index), np.nan)
        if memo is None:
            values[rows] = image_statistics(index.pixels[rows])
        else:
            values[rows] = memo.per_image(
                "image_statistics", rows, lambda r: image_statistics(index.pixels[r])
            )
        z[rows] = statistics_z(values[rows])
        typical = np.median(values[rows], axis=0) if len(rows) else np.zeros(3)
        return cls(values, z, typical)

    def detail(self, i: int) -> str:
        slope, curvature, corr = self.values[i]
        t_slope, t_curvature, t_corr = self.typical
        return (
            f"image statistics unlike the others' (robust z {self.z[i]:.1f}): power spectrum "
            f"slope {slope:.1f} (typical {t_slope:.1f}), bend {curvature:.2f} (typical "
            f"{t_curvature:.2f}), neighbour-pixel correlation {1 - np.exp(corr):.2f} (typical "
            f"{1 - np.exp(t_corr):.2f})"
        )


def _mean_knn_distance(graph: NeighborGraph, rows: np.ndarray, k: int, n: int) -> np.ndarray:
    """(n,) mean distance from each graph row to its first k neighbours inside `rows`."""
    inside = np.zeros(n + 1, dtype=bool)  # slot n stands for "no neighbour" (-1)
    inside[rows] = True
    neighbours = np.where(graph.indices >= 0, graph.indices, n)
    usable = inside[neighbours] & np.isfinite(graph.distances)
    rank = np.cumsum(usable, axis=1)
    take = usable & (rank <= k)
    counts = take.sum(axis=1)
    sums = np.where(take, graph.distances, 0.0).sum(axis=1)
    out = np.full(n, np.nan)
    has = counts > 0
    out[graph.rows[has]] = sums[has] / counts[has]
    return out
