"""The label model's kNN vote (`labels.knn_vote_probs`) against a plain per-row loop: each
row's first VOTE_K usable neighbours (labelled, not itself, not of its own duplicate group),
weighted by 1 / (distance + 0.05), then smoothed. The vote reads the first 2 x VOTE_K graph
columns and goes back to every column only for rows short of usable neighbours there; rows
whose neighbours are mostly copies or unlabelled are planted to take that second path."""

from __future__ import annotations

import numpy as np

from recipe_core.scan.issues.labels import VOTE_K, knn_vote_probs
from recipe_core.scan.issues.neighbors import NeighborGraph


def reference(graph: NeighborGraph, rows: np.ndarray, y: np.ndarray, groups: np.ndarray,
              n_classes: int) -> np.ndarray:  # fmt: skip
    label = {int(r): int(c) for r, c in zip(rows, y, strict=True)}
    line = {int(r): i for i, r in enumerate(graph.rows)}
    out = np.zeros((len(rows), n_classes))
    for i, r in enumerate(rows):
        taken = 0
        for nbr, dist in zip(graph.indices[line[int(r)]], graph.distances[line[int(r)]],
                             strict=True):  # fmt: skip
            if taken == VOTE_K:
                break
            same_group = groups[r] >= 0 and groups[nbr] == groups[r]
            if nbr < 0 or nbr == r or int(nbr) not in label or same_group:
                continue
            out[i, label[int(nbr)]] += 1.0 / (dist + 0.05)
            taken += 1
    out += 0.1 * out.sum(axis=1, keepdims=True).clip(min=1.0) / n_classes + 1e-9
    return out / out.sum(axis=1, keepdims=True)


def test_the_vote_is_the_plain_loops_including_rows_short_of_neighbours() -> None:
    rng = np.random.default_rng(0)
    n, k, n_classes = 400, 60, 4
    graph_rows = np.arange(n)
    indices = np.stack([rng.permutation(n)[:k] for _ in range(n)])
    indices[rng.random((n, k)) < 0.05] = -1
    distances = np.sort(rng.uniform(0.1, 2, (n, k)), axis=1).astype(np.float32)
    graph = NeighborGraph(graph_rows, indices, distances)
    groups = np.full(n, -1)
    groups[:80] = np.arange(80) // 40  # two big duplicate groups: their rows' first columns
    for r in range(80):  # are mostly their own copies, so the vote reads on
        indices[r, : 2 * VOTE_K] = np.arange(40 * (r // 40), 40 * (r // 40) + 2 * VOTE_K)
    rows = np.flatnonzero(rng.random(n) < 0.9)  # the rest unlabelled (not voted, not voting)
    y = rng.integers(0, n_classes, len(rows))
    got = knn_vote_probs(graph, rows, y, groups, n_classes)
    np.testing.assert_allclose(got, reference(graph, rows, y, groups, n_classes), rtol=1e-6)
