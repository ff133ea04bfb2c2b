"""k-nearest neighbours in embedding space: exact (blocked) for small sets, IVF above.

Used by the near-duplicate candidate search, the outlier score, the label model and the app's
"nearest neighbours" panel.

Scaling. Exact search costs N^2 * D and is used while n_queries * n_database <= EXACT_LIMIT
(about 7k x 7k). Above that an IVF index (inverted file, as in faiss' IndexIVFFlat) is built:
k-means cells of ~CELL_SIZE points, and each query is compared only with the points of the
`nprobe` cells nearest its own cell, so the cost is N * nprobe * CELL_SIZE * D, linear in N.
A query near its cell's edge then searches up to EXTRA_CELLS more cells that a bisector
bound says may hold a nearer point (`_boundary_misses`): the true nearest neighbour is in
the top 5 for 99.7 % or more of queries on scan embeddings at 30k-100k.
The k-means is trained on a sample of SAMPLE_PER_CELL points per cell; assigning N points to
N / CELL_SIZE centroids is the only quadratic step, so once there are more than
MAX_FLAT_CENTROIDS centroids the assignment itself goes through an IVF over the centroids
(a two-level quantiser). At 1M x 256-d that is ~4k cells and ~1M * 2k candidates * 256 * 2
~ 1e12 flops: about a minute on one core, minutes less with BLAS threads; beyond that, use
faiss (same algorithm in C++, with SIMD and product quantisation).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from threadpoolctl import threadpool_limits

from recipe_core.errors import ConfigError
from recipe_core.scan.cpus import thread_map, usable_cpus
from recipe_core.scan.issues._common import Progress, rank_in_runs, sorted_distinct

log = logging.getLogger(__name__)

EXACT_LIMIT = 50_000_000  # n_queries * n_database up to which search is exact (~7k x 7k)
CELL_SIZE = 256  # target points per IVF cell
NPROBE = 8  # cells searched per query cell
SAMPLE_PER_CELL = 32  # k-means training points per cell
KMEANS_ITERS = 8
MAX_FLAT_CENTROIDS = 1024  # above this many cells, assign points through a second IVF level
REFINE_CELLS = 32  # cells near a query's own that the boundary check looks at ...
EXTRA_CELLS = 8  # ... and at most this many of them, the nearest by the bound, are searched
BLOCK = 1024  # query rows per matrix product; (BLOCK, n_database) float32 scratch
SELECT_CELLS = 1 << 16  # distances per top-k selection (see _nearest_of)
METHODS = ("auto", "exact", "ivf")


@dataclass(frozen=True)
class NeighborGraph:
    """k nearest neighbours of a subset of an index's rows, searched among that subset.

    Detectors share one graph (the search is the expensive part): near-duplicate candidates,
    outlier distances and the kNN label model all read it.
    """

    rows: np.ndarray = field(repr=False)  # (M,) int64 index rows that were searched
    indices: np.ndarray = field(repr=False)  # (M, k) int64 index rows of neighbours, -1 = none
    distances: np.ndarray = field(repr=False)  # (M, k) float32 Euclidean, ascending

    @property
    def k(self) -> int:
        return int(self.indices.shape[1])


def neighbor_graph(
    embeddings: np.ndarray,
    rows: np.ndarray,
    k: int,
    *,
    seed: int = 0,
    progress: Progress | None = None,
) -> NeighborGraph:
    """The k nearest neighbours of each of `rows` among `rows` (indices into `embeddings`)."""
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) < 2:
        empty = np.zeros((len(rows), 0))
        return NeighborGraph(rows, empty.astype(np.int64), empty.astype(np.float32))
    k = min(k, len(rows) - 1)
    local, dist = nearest_neighbors(subset_rows(embeddings, rows), k, seed=seed, progress=progress)
    indices = np.where(local >= 0, rows[np.maximum(local, 0)], -1)
    return NeighborGraph(rows, indices, dist)


def subset_rows(embeddings: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """embeddings[rows], without the copy (93 MB at 50k x 464) when `rows` are all of them."""
    every = len(rows) == len(embeddings) and np.array_equal(rows, np.arange(len(rows)))
    out: np.ndarray = embeddings if every else embeddings[rows]
    return out


def nearest_neighbors(
    embeddings: np.ndarray,
    k: int,
    *,
    queries: np.ndarray | None = None,
    method: str = "auto",
    nprobe: int = NPROBE,
    extra_cells: int = EXTRA_CELLS,
    seed: int = 0,
    progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest rows of `embeddings` (N, D) for every query, by Euclidean distance.

    Without `queries`, the queries are the rows themselves and a row is never its own
    neighbour. Returns `(indices, distances)`, both (n_queries, k): indices int64 into
    `embeddings`, distances float32, ascending along each row. If fewer than k candidates
    exist, the missing slots hold index -1 and distance inf. `method` is "exact", "ivf" or
    "auto" (exact while n_queries * N <= EXACT_LIMIT); `seed` fixes the IVF's k-means. The
    IVF searches `nprobe` cells around each query's cell, then up to `extra_cells` more for a
    query near its cell's edge (see `_boundary_misses`; 0 = none).
    """
    data = _as_matrix(embeddings, "embeddings")
    self_search = queries is None
    query = data if queries is None else _as_matrix(queries, "queries")
    if query.shape[1] != data.shape[1]:
        raise ConfigError(
            f"queries have {query.shape[1]} dimensions but embeddings have {data.shape[1]}; "
            "pass queries from the same embedder."
        )
    if method not in METHODS:
        raise ConfigError(f"Invalid method {method!r}. Use one of {', '.join(METHODS)}.")
    if k < 1:
        raise ConfigError(f"k={k} neighbours requested; k must be at least 1.")
    if method == "auto":
        method = "exact" if len(query) * len(data) <= EXACT_LIMIT else "ivf"
    # Blocks of (<= 1024 x pool) products: one BLAS thread each is faster than fanning out,
    # and immune to OpenBLAS's spin-waiting on a busy machine (3-5x slower there).
    with threadpool_limits(limits=1, user_api="blas"):
        if method == "exact" or len(data) <= 2 * CELL_SIZE:
            return _exact(query, data, k, self_search, progress)
        return _ivf(query, data, k, self_search, (nprobe, extra_cells), seed, progress)


def _as_matrix(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ConfigError(
            f"{name} must be a 2-d array (rows, dims); got shape {arr.shape}. "
            "Reshape it, e.g. x.reshape(len(x), -1)."
        )
    return np.ascontiguousarray(arr, dtype=np.float32)


def _exact(
    query: np.ndarray, data: np.ndarray, k: int, self_search: bool, progress: Progress | None
) -> tuple[np.ndarray, np.ndarray]:
    n = len(query)
    indices = np.full((n, k), -1, dtype=np.int64)
    dist = np.full((n, k), np.inf, dtype=np.float32)
    ids = np.arange(len(data))
    data_sq = squared_norms(data)
    block = max(64, min(BLOCK, -(-n // usable_cpus())))  # a few hundred queries use every CPU
    done = 0
    lock = threading.Lock()

    def search_block(start: int) -> None:  # blocks write disjoint rows: safe on threads
        nonlocal done
        rows = np.arange(start, min(n, start + block))
        own = rows if self_search else None
        indices[rows], dist[rows] = _top_k(query[rows], data, ids, k, own, data_sq)
        with lock:
            done += len(rows)
            if progress is not None:
                progress(done, n)

    thread_map(search_block, range(0, n, block))
    return indices, dist


def search_changed(
    data: np.ndarray, rows: np.ndarray, k: int, within: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Exact neighbours of a few changed `rows` of `data`, and where they enter the other
    rows' lists, from one pass over their distances.

    Returns `(indices, distances)`, (len(rows), k): each changed row's k nearest other rows of
    `data` (-1 and inf where there are fewer), ascending; and `(at, by, pair_distances)`: every
    pair of a row `at` of `data` and a changed row `by` (both row numbers of `data`, at != by)
    no farther apart than `within[at]` (-inf: none for that row). A rescan passes each
    unchanged row's last proven neighbour distance as `within`: a changed row farther than
    that cannot enter its list, and few are nearer (about k per changed row), so the pairs
    stay few where a top-k of every row among the changed rows would sort them all.

    Blocks of changed rows run on every CPU, each with a (B, N) scratch under 64 MB; the cost
    is len(rows) * N * D, for a few changed rows, not for a whole data set."""
    data = _as_matrix(data, "embeddings")
    rows = np.asarray(rows, dtype=np.int64)
    n = len(data)
    limit = np.asarray(within, dtype=np.float64)
    limit2 = np.where(limit >= 0, np.square(limit), -1.0).astype(np.float32)  # squared; -1: none
    block = max(16, min(BLOCK, (1 << 24) // max(n, 1), -(-len(rows) // usable_cpus())))
    ids = np.arange(n)
    data_sq = squared_norms(data)

    def search_block(
        start: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        own = rows[start : start + block]
        d2 = _squared_distances(data[own], data, data_sq)  # (B, N)
        d2[np.arange(len(own)), own] = np.inf  # a row is not its own neighbour
        found_i, found_d = _nearest_of(d2, ids, k)
        by, at = np.nonzero(d2 <= limit2[None, :])
        return found_i, found_d, at, own[by], np.sqrt(d2[by, at])

    with threadpool_limits(limits=1, user_api="blas"):
        found = thread_map(search_block, range(0, len(rows), block))
    if not found:
        empty = np.zeros(0, dtype=np.int64)
        lists = np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float32)
        return lists, (empty, empty, empty.astype(np.float32))
    parts = [np.concatenate([f[j] for f in found]) for j in range(5)]
    return (parts[0], parts[1]), (parts[2], parts[3], parts[4].astype(np.float32))


def keep_nearest(indices: np.ndarray, dist: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k smallest distances among its candidates (`indices`, `dist`, both (n, m)),
    ascending, padded with -1 / inf to k columns; ties keep their column order. Sorted
    SELECT_CELLS at a time (see `_nearest_of`)."""
    out_i = np.full((len(indices), k), -1, dtype=np.int64)
    out_d = np.full((len(indices), k), np.inf, dtype=np.float32)
    step = max(1, SELECT_CELLS // max(dist.shape[1], 1))
    for start in range(0, len(indices), step):
        rows = slice(start, start + step)
        best = np.argsort(dist[rows], axis=1, kind="stable")[:, :k]
        out_i[rows, : best.shape[1]] = np.take_along_axis(indices[rows], best, axis=1)
        out_d[rows, : best.shape[1]] = np.take_along_axis(dist[rows], best, axis=1)
    return out_i, out_d


def _top_k(
    q: np.ndarray,
    pool: np.ndarray,
    pool_ids: np.ndarray,
    k: int,
    own_ids: np.ndarray | None,
    pool_sq: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of queries q (B, D) among `pool` (M, D) whose global ids are `pool_ids` (M,);
    `pool_sq` the pool's squared norms, if known."""
    d2 = _squared_distances(q, pool, pool_sq)  # (B, M)
    if own_ids is not None:
        d2[own_ids[:, None] == pool_ids[None, :]] = np.inf
    return _nearest_of(d2, pool_ids, k)


def _nearest_of(d2: np.ndarray, pool_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k smallest of squared distances `d2` (B, M) to the pool `pool_ids` (M,):
    (ids, Euclidean distances), ascending; -1 / inf where fewer are finite.

    Rows are partitioned a few at a time (SELECT_CELLS elements): argpartition's (rows, M)
    int64 output, written whole, then stays in cache; at 250 x 50k it was a 100 MB array to
    fault in, 12x slower than the partition itself (2x at IVF pools of a few thousand)."""
    kk = min(k, d2.shape[1])
    out_i = np.full((len(d2), k), -1, dtype=np.int64)
    out_d = np.full((len(d2), k), np.inf, dtype=np.float32)
    if kk < 1:
        return out_i, out_d
    step = max(1, SELECT_CELLS // d2.shape[1])
    for start in range(0, len(d2), step):
        chunk = d2[start : start + step]
        part = (
            np.argpartition(chunk, kk - 1, axis=1)[:, :kk]
            if kk < chunk.shape[1]
            else np.tile(np.arange(chunk.shape[1]), (len(chunk), 1))
        )
        part_d = np.take_along_axis(chunk, part, axis=1)
        order = np.argsort(part_d, axis=1, kind="stable")
        best = np.take_along_axis(part, order, axis=1)
        best_d = np.take_along_axis(part_d, order, axis=1)
        rows = slice(start, start + len(chunk))
        out_i[rows, :kk] = np.where(np.isfinite(best_d), pool_ids[best], -1)
        out_d[rows, :kk] = np.sqrt(best_d)
    return out_i, out_d


def _squared_distances(
    q: np.ndarray, pool: np.ndarray, pool_sq: np.ndarray | None = None
) -> np.ndarray:
    """(B, M) squared Euclidean distances of q (B, D) to pool (M, D), clipped at 0.
    `pool_sq` (M,) are the pool's squared norms when a search over one pool has them (else
    computed here, per block). Done in place after the product: one (B, M) array, where
    `qq + pp - 2 q p^T` made four (each a fresh mapping to fault in, 50 MB at 250 x 50k)."""
    d2: np.ndarray = q @ pool.T
    d2 *= -2.0
    d2 += squared_norms(q)[:, None]
    d2 += (squared_norms(pool) if pool_sq is None else pool_sq)[None, :]
    np.maximum(d2, 0.0, out=d2)
    return d2


def squared_norms(x: np.ndarray) -> np.ndarray:
    """(N,) each row's squared Euclidean norm, without an (N, D) temporary."""
    out: np.ndarray = np.einsum("ij,ij->i", x, x)
    return out


def _ivf(
    query: np.ndarray,
    data: np.ndarray,
    k: int,
    self_search: bool,
    probing: tuple[int, int],
    seed: int,
    progress: Progress | None,
) -> tuple[np.ndarray, np.ndarray]:
    nprobe, extra_cells = probing
    n_cells = max(2, round(len(data) / CELL_SIZE))
    centroids = kmeans(data, n_cells, seed=seed)
    data_cell = assign(data, centroids, seed=seed)
    query_cell = data_cell if self_search else assign(query, centroids, seed=seed)
    probes = _probe_lists(centroids, np.bincount(data_cell, minlength=n_cells), nprobe, k)
    members = _cell_members(data_cell, n_cells)
    query_members = members if self_search else _cell_members(query_cell, n_cells)
    indices = np.full((len(query), k), -1, dtype=np.int64)
    dist = np.full((len(query), k), np.inf, dtype=np.float32)
    done = 0
    lock = threading.Lock()

    def search_cell(cell: int) -> None:  # cells write disjoint rows: safe on threads
        nonlocal done
        rows = query_members[cell]
        if len(rows) == 0:
            return
        pool_ids = np.concatenate([members[c] for c in probes[cell]])
        pool = data[pool_ids]
        for start in range(0, len(rows), BLOCK):
            block = rows[start : start + BLOCK]
            own = block if self_search else None
            indices[block], dist[block] = _top_k(query[block], pool, pool_ids, k, own)
        with lock:
            done += len(rows)
            if progress is not None:
                progress(done, len(query))

    thread_map(search_cell, range(n_cells))
    if extra_cells > 0:
        extra = _boundary_misses(query, centroids, query_members, probes, dist, extra_cells)
        _search_extra(query, data, members, *extra, indices, dist, self_search)
    return indices, dist


def _boundary_misses(
    query: np.ndarray,
    centroids: np.ndarray,
    query_members: list[np.ndarray],
    probes: list[np.ndarray],
    dist: np.ndarray,
    extra_cells: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(query row, cell) pairs where an unsearched cell may hold a point nearer than the
    query's nearest neighbour found so far: per query the `extra_cells` of smallest bound.

    Points of cell c are nearer c's centroid than the query's own centroid o, so they lie
    beyond the bisecting hyperplane of o and c, at least (|q - c|^2 - |q - o|^2) / (2 |c - o|)
    from the query q. A cell whose bound is below the found nearest distance must be searched
    too; the rest cannot hold a nearer point (exactly so while points go to their nearest
    centroid: up to MAX_FLAT_CENTROIDS cells). In high dimensions the bound is weak (on scan
    embeddings most queries have 20+ such cells), so only the `extra_cells` nearest by it are
    searched. Probing cells per query cell missed the true neighbour (in the top 5) of a
    query near its cell's edge: 2-3 % of queries on scan embeddings at 30k, 3-15 % at 100k;
    with 8 extra cells 0.1-0.3 % at both sizes, for 1.4-2x the search time, still linear
    (benchmarks/neighbors_recall.py; twice the cells per query cell: 0.8-6 % at 1.7x)."""
    n_cells = len(centroids)
    near, _ = nearest_neighbors(centroids, min(n_cells - 1, REFINE_CELLS), method="exact")
    out_rows, out_cells = [], []
    for cell in range(n_cells):
        rows = query_members[cell]
        candidates = near[cell][near[cell] >= 0]
        candidates = candidates[~np.isin(candidates, probes[cell])]
        if len(rows) == 0 or len(candidates) == 0:
            continue
        for start in range(0, len(rows), BLOCK):
            block = rows[start : start + BLOCK]
            q = query[block]
            to_own = ((q - centroids[cell]) ** 2).sum(axis=1)
            to_other = _squared_distances(q, centroids[candidates])
            gap = np.linalg.norm(centroids[candidates] - centroids[cell], axis=1)
            bound = (to_other - to_own[:, None]) / np.maximum(2.0 * gap, 1e-12)
            bound[bound >= dist[block, :1]] = np.inf
            if bound.shape[1] > extra_cells:  # the `extra_cells` smallest bounds per query
                picked = np.argpartition(bound, extra_cells - 1, axis=1)[:, :extra_cells]
            else:
                picked = np.broadcast_to(np.arange(bound.shape[1]), bound.shape)
            qi, j = np.nonzero(np.isfinite(np.take_along_axis(bound, picked, axis=1)))
            out_rows.append(block[qi])
            out_cells.append(candidates[picked[qi, j]])
    if not out_rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(out_rows), np.concatenate(out_cells)


def _search_extra(
    query: np.ndarray,
    data: np.ndarray,
    members: list[np.ndarray],
    rows: np.ndarray,
    cells: np.ndarray,
    indices: np.ndarray,
    dist: np.ndarray,
    self_search: bool,
) -> None:
    """Search each extra cell for the queries that need it and merge into their top-k (in
    place). A query meets each extra cell once and none of its members was searched yet.

    A cell's point can only enter a query's list if it is nearer than the query's k-th
    neighbour found so far, so each cell returns just those (row, point, distance) triples
    (a few per query), and each query's list is merged once with all of its own. Merging a
    cell's top-k into its queries' lists cell after cell was serial work over 8 lists of 2k
    per query, half of the whole search at 50k images."""
    k = indices.shape[1]
    by_cell = _cell_members(cells, len(members))  # positions into rows/cells, per cell
    worst = np.square(dist[:, -1].astype(np.float32))  # read-only while the threads run

    def candidates(cell: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cell_rows, pool_ids = rows[by_cell[cell]], members[cell]
        pool = data[pool_ids]
        pool_sq = squared_norms(pool)
        at, by, near = [], [], []
        for block in np.split(cell_rows, range(BLOCK, len(cell_rows), BLOCK)):
            d2 = _squared_distances(query[block], pool, pool_sq)
            if self_search:
                d2[block[:, None] == pool_ids[None, :]] = np.inf
            qi, j = np.nonzero(d2 < worst[block][:, None])
            at.append(block[qi])
            by.append(pool_ids[j])
            near.append(np.sqrt(d2[qi, j]))
        return np.concatenate(at), np.concatenate(by), np.concatenate(near)

    wanted = [c for c in range(len(members)) if len(by_cell[c]) and len(members[c])]
    found = thread_map(candidates, wanted)
    if not found:
        return
    at, by, near = (np.concatenate([f[j] for f in found]) for j in range(3))
    if len(at) == 0:
        return
    hit = sorted_distinct(at)
    line = np.full(len(query), -1, dtype=np.int64)
    line[hit] = np.arange(len(hit))
    new_i, new_d = as_lists(line[at], by, near.astype(np.float32), len(hit), k)
    indices[hit], dist[hit] = keep_nearest(
        np.concatenate([indices[hit], new_i], axis=1),
        np.concatenate([dist[hit], new_d], axis=1),
        k,
    )


def as_lists(
    at: np.ndarray, by: np.ndarray, dist: np.ndarray, n: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (row `at`, neighbour `by`, `dist`) as (n, c) neighbour lists, each row's nearest
    `width` at most, ascending; c is the longest list, short ones padded with -1 / inf."""
    order = np.lexsort((dist, at))
    at, by, dist = at[order], by[order], dist[order]
    rank = rank_in_runs(at)
    keep = rank < width
    width = int(rank[keep].max()) + 1 if keep.any() else 0
    out_i = np.full((n, width), -1, dtype=np.int64)
    out_d = np.full((n, width), np.inf, dtype=np.float32)
    out_i[at[keep], rank[keep]], out_d[at[keep], rank[keep]] = by[keep], dist[keep]
    return out_i, out_d


def _probe_lists(centroids: np.ndarray, sizes: np.ndarray, nprobe: int, k: int) -> list[np.ndarray]:
    """For each cell, the cells to search: its `nprobe` nearest centroids, more if those hold
    too few points to fill k neighbours (k-means cells are uneven)."""
    want = max(4 * (k + 1), nprobe * CELL_SIZE // 2)
    near, _ = nearest_neighbors(centroids, min(len(centroids) - 1, 4 * nprobe), method="exact")
    lists = []
    for cell in range(len(centroids)):
        order = np.concatenate([[cell], near[cell][near[cell] >= 0]])
        cum = np.cumsum(sizes[order])
        n_take = max(min(nprobe, len(order)), int(np.searchsorted(cum, want)) + 1)
        lists.append(order[: min(n_take, len(order))])
    return lists


def _cell_members(cells: np.ndarray, n_cells: int) -> list[np.ndarray]:
    order = np.argsort(cells, kind="stable")
    bounds = np.searchsorted(cells[order], np.arange(n_cells + 1))
    return [order[bounds[c] : bounds[c + 1]] for c in range(n_cells)]


def kmeans(data: np.ndarray, n_cells: int, *, seed: int = 0) -> np.ndarray:
    """(n_cells, D) float32 centroids: Lloyd's algorithm on a random sample of the rows."""
    rng = np.random.default_rng(seed)
    n_sample = min(len(data), SAMPLE_PER_CELL * n_cells)
    sample = data[np.sort(rng.choice(len(data), n_sample, replace=False))]
    centroids = sample[rng.choice(n_sample, n_cells, replace=False)].copy()
    for _ in range(KMEANS_ITERS):
        cells = assign(sample, centroids, seed=seed)
        onehot = sparse.csr_matrix(
            (np.ones(n_sample, np.float32), (cells, np.arange(n_sample))), (n_cells, n_sample)
        )
        sums = np.asarray(onehot @ sample, dtype=np.float32)
        counts = np.bincount(cells, minlength=n_cells)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
        # An emptied cell restarts at a random sample point instead of staying dead.
        empty = np.flatnonzero(~filled)
        centroids[empty] = sample[rng.choice(n_sample, len(empty), replace=False)]
    return centroids


def assign(points: np.ndarray, centroids: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """(N,) int64: the nearest centroid of every point (two-level when centroids are many)."""
    if len(centroids) > MAX_FLAT_CENTROIDS:
        nearest, _ = nearest_neighbors(centroids, 1, queries=points, method="ivf", seed=seed)
        return nearest[:, 0]
    cells = np.empty(len(points), dtype=np.int64)
    c2 = (centroids * centroids).sum(1)
    for start in range(0, len(points), 4 * BLOCK):
        block = points[start : start + 4 * BLOCK]
        cells[start : start + len(block)] = np.argmin(c2[None, :] - 2.0 * (block @ centroids.T), 1)
    return cells
