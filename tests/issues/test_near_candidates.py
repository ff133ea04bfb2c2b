"""Near-duplicate candidates (`duplicates.near_candidates`, read by `near_pairs`) against a plain
per-row loop: each graph row's first NEAR_K neighbours that are not its identical copies, kept
where both thumbnails are eligible. The fast path reads the first 2 x NEAR_K columns and goes
back to every column only for rows short of candidates there; rows whose first columns are
all their own identical copies are planted to take that second path."""

from __future__ import annotations

import numpy as np

from recipe_core.scan.issues.duplicates import NEAR_K, _candidates, near_candidates
from recipe_core.scan.issues.neighbors import NeighborGraph


def reference(
    graph: NeighborGraph, exact: np.ndarray, eligible: np.ndarray
) -> set[tuple[int, int]]:
    pairs = set()
    for row, line in zip(graph.rows, graph.indices, strict=True):
        taken = 0
        for nbr in line:
            if taken == NEAR_K:
                break
            if nbr < 0 or (exact[row] >= 0 and exact[nbr] == exact[row]):
                continue
            taken += 1
            if eligible[row] and eligible[nbr]:
                pairs.add((int(row), int(nbr)))
    return pairs


def candidates(
    graph: NeighborGraph, exact: np.ndarray, eligible: np.ndarray
) -> set[tuple[int, int]]:
    src, dst = near_candidates(graph, exact, eligible)
    assert len(src) == len(set(zip(src.tolist(), dst.tolist(), strict=True))), "a pair came twice"
    return set(zip(src.tolist(), dst.tolist(), strict=True))


def test_candidates_are_the_plain_loops_including_rows_with_many_copies() -> None:
    rng = np.random.default_rng(1)
    n, k = 300, 40
    indices = np.stack([rng.permutation(n)[:k] for _ in range(n)])
    indices[rng.random((n, k)) < 0.05] = -1
    graph = NeighborGraph(np.arange(n), indices, np.sort(rng.random((n, k)), axis=1))
    exact = np.full(n, -1)
    exact[:60] = np.arange(60) // 20  # three groups of 20 identical copies ...
    for r in range(60):  # ... whose rows' first 3k columns are all their own copies
        start = 20 * (r // 20)
        indices[r, : 3 * NEAR_K] = [c for c in range(start, start + 20) if c != r][: 3 * NEAR_K]
    eligible = rng.random(n) < 0.9
    lines = np.arange(n)
    short = _candidates(graph, exact, eligible, NEAR_K, lines, 2 * NEAR_K)[2]
    assert set(range(60)) <= set(short.tolist())  # the copies' rows take the second path
    got = candidates(graph, exact, eligible)
    assert got == reference(graph, exact, eligible)
    assert any(a < 60 for a, _ in got)  # and they still find their candidates past the copies
