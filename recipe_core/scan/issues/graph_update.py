"""The neighbour graph of a rescan, updated from the last scan's instead of searched again.

After a few files change, most rows' nearest neighbours are the same rows as before. A kept row
(same path, same bytes) keeps its stored list minus the rows that left or changed, merged with
its nearest among the added or changed rows (one search of every kept row against only those).
The merge is exact wherever it can be proved: a stored list of K entries says nothing about
old rows farther than its K-th distance, and the search among new rows nothing beyond its
last, so entries past the nearer of those two bounds are dropped. Rows left with fewer than k
proven entries, and the new rows themselves, are searched in full. Each stored list therefore
holds SLACK more neighbours than the detectors read: a row can lose that many to changed files
and still be updated by the merge alone.

What is stored (in the scan's `IssueMemo`): the graph rows' identities (path and content), and
per row the neighbours as positions into those rows, with their distances.
"""

from __future__ import annotations

import logging

import numpy as np

from recipe_core.scan.issues._common import Progress
from recipe_core.scan.issues.memo import IssueMemo, lookup
from recipe_core.scan.issues.neighbors import NeighborGraph, nearest_neighbors

log = logging.getLogger(__name__)

SLACK = 8  # neighbours stored per row beyond the detectors' k
MAX_SEARCHED_SHARE = 0.25  # more new or lost rows than this share: one full search is cheaper
_IDENTITY, _NEIGHBOURS, _DISTANCES = "graph.identity", "graph.neighbours", "graph.distances"


def memo_graph(
    embeddings: np.ndarray,
    rows: np.ndarray,
    k: int,
    memo: IssueMemo,
    *,
    seed: int = 0,
    progress: Progress | None = None,
) -> NeighborGraph:
    """What `neighbor_graph(embeddings, rows, k)` gives, updated from `memo`'s stored graph
    where one is there (see the module doc); this graph, with SLACK more columns, is stored."""
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) < 2:
        empty = np.zeros((len(rows), 0))
        return NeighborGraph(rows, empty.astype(np.int64), empty.astype(np.float32))
    k = min(k, len(rows) - 1)
    width = min(k + SLACK, len(rows) - 1)
    identity = memo.identity[rows]
    updated = _update(embeddings, rows, identity, k, width, memo, seed)
    if updated is None:
        local, dist = nearest_neighbors(embeddings[rows], width, seed=seed, progress=progress)
    else:
        local, dist = updated
    memo.keep(_IDENTITY, identity)
    memo.keep(_NEIGHBOURS, local.astype(np.int32))
    memo.keep(_DISTANCES, dist.astype(np.float32))
    local, dist = local[:, :k], dist[:, :k]
    indices = np.where(local >= 0, rows[np.maximum(local, 0)], -1)
    return NeighborGraph(rows, indices, dist)


def _update(
    embeddings: np.ndarray,
    rows: np.ndarray,
    identity: np.ndarray,
    k: int,
    width: int,
    memo: IssueMemo,
    seed: int,
) -> tuple[np.ndarray, np.ndarray] | None:
    """(local, dist), each (len(rows), width), or None when a full search is the way."""
    old_identity = memo.stored(_IDENTITY)
    old_nbr, old_dist = memo.stored(_NEIGHBOURS), memo.stored(_DISTANCES)
    if old_identity is None or old_nbr is None or old_dist is None:
        return None
    if old_nbr.ndim != 2 or old_nbr.shape != old_dist.shape or len(old_nbr) != len(old_identity):
        return None
    m = len(rows)
    order = np.argsort(old_identity, kind="stable")
    found = lookup(old_identity[order], identity)
    old_pos = np.where(found >= 0, order[np.maximum(found, 0)], -1)  # new local -> old local
    kept = np.flatnonzero(old_pos >= 0)
    stale = np.flatnonzero(old_pos < 0)  # added or changed rows
    if len(kept) < (1 - MAX_SEARCHED_SHARE) * m:
        return None
    data = np.ascontiguousarray(embeddings[rows], dtype=np.float32)
    new_of_old = np.full(len(old_identity) + 1, -1, dtype=np.int64)  # slot -1: "no neighbour"
    new_of_old[old_pos[kept]] = kept
    stored = old_nbr[old_pos[kept]].astype(np.int64)
    merged_i = new_of_old[np.where(stored >= 0, stored, -1)]
    merged_d = np.where(merged_i >= 0, old_dist[old_pos[kept]], np.inf).astype(np.float32)
    # old rows farther than a stored list's last entry are unknown, unless it held them all
    held = (stored >= 0).sum(axis=1)
    bound = np.where(held >= len(old_identity) - 1, np.inf, _last(old_dist[old_pos[kept]]))
    if len(stale):
        near = min(width, len(stale))
        cand_i, cand_d = nearest_neighbors(data[stale], near, queries=data[kept], seed=seed)
        cand_i = np.where(cand_i >= 0, stale[np.maximum(cand_i, 0)], -1)
        if near < len(stale):
            bound = np.minimum(bound, _last(cand_d))
        merged_i = np.concatenate([merged_i, cand_i], axis=1)
        merged_d = np.concatenate([merged_d, cand_d], axis=1)
    best = np.argsort(merged_d, axis=1, kind="stable")[:, :width]
    merged_i = np.take_along_axis(merged_i, best, axis=1)
    merged_d = np.take_along_axis(merged_d, best, axis=1)
    unproven = ~(merged_d <= bound[:, None])
    merged_i[unproven], merged_d[unproven] = -1, np.inf
    local = np.full((m, width), -1, dtype=np.int64)
    dist = np.full((m, width), np.inf, dtype=np.float32)
    local[kept, : merged_i.shape[1]], dist[kept, : merged_d.shape[1]] = merged_i, merged_d
    short = kept[(merged_i >= 0).sum(axis=1) < k]
    search = np.concatenate([stale, short])
    if len(search) > MAX_SEARCHED_SHARE * m:
        return None
    if len(search):
        local[search], dist[search] = _search_rows(data, search, width, seed)
    log.info("neighbour graph updated: %d rows kept, %d new or changed, %d searched again",
             len(kept), len(stale), len(short))  # fmt: skip
    return local, dist


def _search_rows(
    data: np.ndarray, queries: np.ndarray, width: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each query row's `width` nearest other rows of `data`."""
    idx, dist = nearest_neighbors(data, width + 1, queries=data[queries], seed=seed)
    own = idx == queries[:, None]
    idx, dist = np.where(own, -1, idx), np.where(own, np.inf, dist)
    order = np.argsort(dist, axis=1, kind="stable")[:, :width]
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(dist, order, axis=1)


def _last(dist: np.ndarray) -> np.ndarray:
    """(n,) each ascending row's largest finite distance; -inf for a row with none."""
    out: np.ndarray = np.where(np.isfinite(dist), dist, -np.inf).max(axis=1, initial=-np.inf)
    return out
