"""The neighbour graph of a rescan, updated from the last scan's instead of searched again.

After a few files change, most rows' nearest neighbours are the same rows as before. A kept row
(same path, same bytes) keeps its stored list minus the rows that left or changed, merged with
its nearest among the added or changed rows (one search of every kept row against only those).
The merge is exact wherever it can be proved: a stored list of K entries says nothing about
old rows farther than its K-th distance, and the search among new rows nothing beyond its
last, so entries past the nearer of those two bounds are dropped. Rows left with fewer than k
proven entries, and the new rows themselves, are searched in full. Each stored list therefore
holds spare neighbours beyond the k the detectors read: a row can lose that many to changed
files and still be updated by the merge alone. A lost entry is not replaced until the row is
searched again, so over many rescans the lists wear down: with s spare entries of a list of
w, a share p of changed files sends about N * p * w / s rows to a new search each rescan
(8 spare at k = 58: 2,591 rows of 50k at every 1 % rescan, measured). A full search keeps
MIN_SPARE (a wider one costs every cold scan: 116 instead of 66 neighbours is 1.35x the
search at 50k), and a row searched in an update gets as many spare as read entries (w = 2k),
so the rows that change keep ~2 * N * p searches a rescan instead.

What is stored (in the scan's `IssueMemo`): the graph rows' identities (path and content), and
per row the neighbours as positions into those rows, with their distances.
"""

from __future__ import annotations

import logging

import numpy as np

from recipe_core.scan.issues._common import Progress
from recipe_core.scan.issues.memo import IssueMemo, lookup
from recipe_core.scan.issues.neighbors import (
    EXACT_LIMIT,
    NeighborGraph,
    keep_nearest,
    nearest_neighbors,
    search_changed,
    stable_partition,
    subset_rows,
)

log = logging.getLogger(__name__)

MIN_SPARE = 8  # fewest neighbours stored per row beyond the detectors' k
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
    where one is there (see the module doc); this graph, with spare columns, is stored."""
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) < 2:
        empty = np.zeros((len(rows), 0))
        return NeighborGraph(rows, empty.astype(np.int64), empty.astype(np.float32))
    k = min(k, len(rows) - 1)
    identity = memo.identity[rows]
    wide = min(k + max(MIN_SPARE, k), len(rows) - 1)  # for rows searched in an update
    updated = _update(embeddings, rows, identity, k, wide, memo, seed)
    if updated is None:
        width = min(k + MIN_SPARE, len(rows) - 1)
        local, dist = nearest_neighbors(
            subset_rows(embeddings, rows), width, seed=seed, progress=progress
        )
    else:
        local, dist = updated
    used = max(k, int((local >= 0).sum(axis=1).max()))  # columns past every list: not stored
    memo.keep(_IDENTITY, identity)
    memo.keep(_NEIGHBOURS, local[:, :used].astype(np.int32))
    memo.keep(_DISTANCES, dist[:, :used].astype(np.float32))
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
    data = np.ascontiguousarray(subset_rows(embeddings, rows), dtype=np.float32)
    new_of_old = np.full(len(old_identity) + 1, -1, dtype=np.int64)  # slot -1: "no neighbour"
    new_of_old[old_pos[kept]] = kept
    stored = old_nbr[old_pos[kept], :width]  # ascending lists, -1 / inf past their end
    merged_i = new_of_old[stored]
    merged_d = old_dist[old_pos[kept], :width]
    held = (stored >= 0).sum(axis=1)
    # old rows farther than a stored list's last entry are unknown, unless it held them all
    last = np.take_along_axis(merged_d, np.maximum(held - 1, 0)[:, None], axis=1)[:, 0]
    bound = np.where(held >= len(old_identity) - 1, np.inf, np.where(held > 0, last, -np.inf))
    lost = merged_i < 0
    lost &= stored >= 0  # an entry whose row left or changed
    merged_d[lost] = np.inf
    gained = np.zeros(len(kept), dtype=bool)
    fresh = None  # the changed rows' own lists, when one exact pass over them gave them
    cand_i = np.zeros((len(kept), 0), dtype=np.int64)
    cand_d = np.zeros((len(kept), 0), dtype=np.float32)
    if len(stale) and len(stale) * m <= EXACT_LIMIT:
        # Every changed row within a kept row's bound, so the bound stands.
        within = np.full(m, -np.inf)
        within[kept] = bound
        fresh, (at, by, pair_d) = search_changed(data, stale, width, within)
        log.debug("%d (kept row, changed row) pairs within reach", len(at))
        at_kept = np.full(m, -1, dtype=np.int64)
        at_kept[kept] = np.arange(len(kept))
        cand_i, cand_d = _as_lists(at_kept[at], by, pair_d, len(kept), width)
        gained[at_kept[at]] = True
    elif len(stale):
        near = min(width, len(stale))
        cand_i, cand_d = nearest_neighbors(data[stale], near, queries=data[kept], seed=seed)
        cand_i = np.where(cand_i >= 0, stale[np.maximum(cand_i, 0)], -1)
        if near < len(stale):
            bound = np.minimum(bound, _last(cand_d))
        gained[:] = True
    # Lost entries go to the end of their list (a stable sort of one byte per entry keeps the
    # rest ascending); only lists that gained an entry are merged with their candidates.
    merged_i, merged_d = stable_partition(lost, (merged_i, merged_d))
    redo = np.flatnonzero(gained)
    both_i, both_d = keep_nearest(
        np.concatenate([merged_i[redo], cand_i[redo]], axis=1),
        np.concatenate([merged_d[redo], cand_d[redo]], axis=1),
        width,
    )
    unproven = ~(both_d <= bound[redo, None])
    both_i[unproven], both_d[unproven] = -1, np.inf
    local = np.full((m, width), -1, dtype=np.int64)
    dist = np.full((m, width), np.inf, dtype=np.float32)
    local[kept, : merged_i.shape[1]], dist[kept, : merged_d.shape[1]] = merged_i, merged_d
    local[kept[redo]], dist[kept[redo]] = both_i, both_d
    short = kept[(local[kept, :k] >= 0).sum(axis=1) < k]
    if len(stale) + len(short) > MAX_SEARCHED_SHARE * m:
        return None
    if fresh is not None:
        local[stale], dist[stale] = fresh
    search = short if fresh is not None else np.concatenate([stale, short])
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


def _as_lists(
    at: np.ndarray, by: np.ndarray, dist: np.ndarray, n: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (row `at`, neighbour `by`, `dist`) as (n, c) neighbour lists, each row's nearest
    `width` at most, ascending; c is the longest list, short ones padded with -1 / inf."""
    order = np.lexsort((dist, at))
    at, by, dist = at[order], by[order], dist[order]
    rank = np.arange(len(at)) - np.searchsorted(at, at, side="left")
    keep = rank < width
    width = int(rank[keep].max()) + 1 if keep.any() else 0
    out_i = np.full((n, width), -1, dtype=np.int64)
    out_d = np.full((n, width), np.inf, dtype=np.float32)
    out_i[at[keep], rank[keep]], out_d[at[keep], rank[keep]] = by[keep], dist[keep]
    return out_i, out_d


def _last(dist: np.ndarray) -> np.ndarray:
    """(n,) each ascending row's largest finite distance; -inf for a row with none."""
    out: np.ndarray = np.where(np.isfinite(dist), dist, -np.inf).max(axis=1, initial=-np.inf)
    return out
