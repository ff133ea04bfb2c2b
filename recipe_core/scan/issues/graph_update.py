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
(8 spare at k = 58: 2,591 rows of 50k at every 1 % rescan, measured, when the changed files
are unlike the rest and so replace nothing they took). A full search keeps k / 2 spare
(MIN_SPARE at least): at 50k, 87 neighbours instead of 66 cost the cold scan's search 0.1-0.2 s
(5 %; 116 would cost 25 %) and put the first rows' renewal 3-4x as many rescans away. A row
searched in an update gets as many spare as read entries (w = 2k), so the rows that change
keep ~2 * N * p searches a rescan instead.

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
    as_lists,
    keep_nearest,
    nearest_neighbors,
    search_changed,
    subset_rows,
)

log = logging.getLogger(__name__)

MIN_SPARE = 8  # fewest neighbours stored per row beyond the detectors' k
FULL_SPARE = 0.5  # spare neighbours a full search keeps, as a share of k
STEP_ENTRIES = 1 << 18  # list entries per step of a whole-graph pass (see _carry)
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
        width = min(k + max(MIN_SPARE, int(FULL_SPARE * k)), len(rows) - 1)
        local, dist = nearest_neighbors(
            subset_rows(embeddings, rows), width, seed=seed, progress=progress
        )
    else:
        local, dist = updated
    longest = int(_held(local, local.shape[1]).max(initial=0))
    used = max(k, longest)  # columns past every list: not stored
    memo.keep(_IDENTITY, identity)
    memo.keep(_NEIGHBOURS, np.ascontiguousarray(local[:, :used], dtype=np.int32))
    memo.keep(_DISTANCES, np.ascontiguousarray(dist[:, :used], dtype=np.float32))
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
    # Every row is written below: kept rows by `_carry`, the rest by their own search. Where
    # the rows line up with the stored lists', those arrays are rewritten in place (fresh ones
    # are 46 MB to fault in at 50k).
    aligned = len(old_nbr) == m and np.array_equal(old_pos[kept], kept)
    if (aligned and old_nbr.shape == old_dist.shape == (m, width) and old_nbr.flags.writeable
            and old_dist.flags.writeable and old_nbr.dtype == np.int32
            and old_dist.dtype == np.float32):  # fmt: skip
        local, dist = old_nbr, old_dist  # each step reads its rows before it writes them
    else:
        local = np.empty((m, width), dtype=np.int32)
        dist = np.empty((m, width), dtype=np.float32)
    bound = _carry(old_nbr, old_dist, old_pos, kept, local, dist, aligned)
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
        cand_i, cand_d = as_lists(at_kept[at], by, pair_d, len(kept), width)
        gained[at_kept[at]] = True
    elif len(stale):
        near = min(width, len(stale))
        cand_i, cand_d = nearest_neighbors(data[stale], near, queries=data[kept], seed=seed)
        cand_i = np.where(cand_i >= 0, stale[np.maximum(cand_i, 0)], -1)
        if near < len(stale):
            bound = np.minimum(bound, _last(cand_d))
        gained[:] = True
    # Only lists that gained an entry are merged with their candidates.
    redo = np.flatnonzero(gained)
    at = kept[redo]
    both_i, both_d = keep_nearest(
        np.concatenate([local[at], cand_i[redo]], axis=1),
        np.concatenate([dist[at], cand_d[redo]], axis=1),
        width,
    )
    unproven = ~(both_d <= bound[redo, None])
    both_i[unproven], both_d[unproven] = -1, np.inf
    local[at], dist[at] = both_i, both_d
    short = kept[_held(local, k)[kept] < k]
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


def _carry(
    old_nbr: np.ndarray,
    old_dist: np.ndarray,
    old_pos: np.ndarray,
    kept: np.ndarray,
    local: np.ndarray,
    dist: np.ndarray,
    aligned: bool,
) -> np.ndarray:
    """Write each kept row's stored list into `local` / `dist` (its row `kept[i]`): positions
    renumbered from the old rows to the new, entries whose row left or changed moved to the end
    as -1 / inf (a stable sort of one byte per entry keeps the rest ascending), padded to the
    arrays' width; `aligned`: every kept row is at the same position in the old rows.
    Returns (len(kept),) each list's bound: the stored list's last distance
    (old rows farther than it are unknown), inf when it held every other row, -inf when empty.

    A few hundred rows at a time (STEP_ENTRIES), in int32: the whole-graph temporaries of one
    pass (50k x 116 entries, int64 indices) were fresh mappings to fault in, each several
    times the arithmetic on them."""
    n_old = len(old_nbr)
    width = local.shape[1]
    new_of_old = np.full(n_old + 1, -1, dtype=np.int32)  # slot -1: "no neighbour"
    new_of_old[old_pos[kept]] = kept
    cols = min(width, old_nbr.shape[1])
    bound = np.empty(len(kept), dtype=np.float64)
    step = max(1, STEP_ENTRIES // max(width, 1))
    for start in range(0, len(kept), step):
        part = slice(start, start + step)
        to = kept[part]
        src = to if aligned else old_pos[to]
        stored = old_nbr[src, :cols]
        mapped = new_of_old[stored]
        far = old_dist[src, :cols]
        held = (stored >= 0).sum(axis=1)
        last = far[np.arange(len(far)), np.maximum(held - 1, 0)].astype(np.float64)
        bound[part] = np.where(held >= n_old - 1, np.inf, np.where(held > 0, last, -np.inf))
        lost = (mapped < 0) & (stored >= 0)  # an entry whose row left or changed
        hit = np.flatnonzero(lost.any(axis=1))
        if len(hit):
            order = np.argsort(lost[hit].view(np.uint8), axis=1, kind="stable")
            mapped[hit] = np.take_along_axis(mapped[hit], order, axis=1)
            far[hit] = np.take_along_axis(far[hit], order, axis=1)
            far[hit] = np.where(np.take_along_axis(lost[hit], order, axis=1), np.inf, far[hit])
        local[to, :cols], dist[to, :cols] = mapped, far
        local[to, cols:], dist[to, cols:] = -1, np.inf
    return bound


def _held(local: np.ndarray, k: int) -> np.ndarray:
    """(n,) entries each list holds among its first k."""
    out = np.empty(len(local), dtype=np.int64)
    step = max(1, STEP_ENTRIES // max(k, 1))
    for start in range(0, len(local), step):
        out[start : start + step] = (local[start : start + step, :k] >= 0).sum(axis=1)
    return out


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
