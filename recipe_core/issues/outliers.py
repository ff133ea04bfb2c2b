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
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recipe_core.index.schema import ScanIndex
from recipe_core.issues._common import issue_frame, robust_center_scale, severity
from recipe_core.issues.neighbors import NeighborGraph, neighbor_graph

Z_OUT = 4.25  # robust z of the kNN distance at which an image is flagged (severity 0.5)
MIN_K = 20
MAX_K = 50  # bounds the graph's memory (N x k) and cost; clusters of strays above this
#            size are a mode of the data, and show up in the embedding map instead
EXCLUDED_BY = ("corrupt", "low_information", "dark", "light", "odd_aspect_ratio")


@dataclass(frozen=True)
class OutlierResult:
    # sample_id, knn_distance (mean over k neighbours; nan when not scored), z (robust
    # z-score), score (severity in [0, 1]), scored (bool: took part)
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
) -> OutlierResult:
    """Outlier scores for `rows` of the index (default: every decoded row), neighbours searched
    among those rows. A shared `graph` may cover more rows; neighbours outside `rows` are
    ignored, so give it a few spare columns."""
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
    ids = index.table["sample_id"].to_numpy()
    table = pd.DataFrame({"sample_id": ids, "knn_distance": knn, "z": z, "score": score,
                          "scored": scored})  # fmt: skip
    flagged = np.flatnonzero(score >= 0.5)
    details = [
        f"far from everything else: mean distance to {k} nearest images {knn[i]:.3f} "
        f"(typical {center:.3f}, robust z {z[i]:.1f})"
        for i in flagged
    ]
    issues = issue_frame(ids[flagged], "outlier", score[flagged], details)
    return OutlierResult(scores=table, k=k, issues=issues)


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
