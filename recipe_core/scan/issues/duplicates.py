"""Exact and near duplicates, grouped; and the two problems duplicates cause downstream:
copies that disagree on the label (conflicting_labels) and copies in two splits (leakage).

* exact: identical decoded pixels (same `pixel_hash`: same mode, size and bytes of pixels),
  whether or not the files are byte-identical. A PNG and a BMP of the same pixels feed the
  network the same tensor, so they are exact; `detail` says when the files differ. Lossy
  re-encodes (JPEG) change pixels and are near duplicates.
* near: candidates are each image's nearest embedding neighbours, verified on the aligned
  32 px luminance (`pixel_match`): brightness/contrast-normalised, best of shifts up to 2 px.
  Flipped copies come from their own hashes (`flips`); an image's nearest candidate that
  fails the shift-only check is aligned by a bounded zoom-turn-shift warp (`warp_match`): a
  recrop zoomed back, a slight rotation (images natively >= 48 px only).
* low information: images `quality` reports as low_information (flat skies, solid colours)
  get no near links: standardised, their pixels are mostly noise and gentle gradients, so
  distinct ones look alike. Identical copies of them are still exact duplicates.
* groups: cliques of verified near links grown around centres (`dup_groups`), so a chain
  A~B~C with A !~ C is not one group; identical copies stay together.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from recipe_core.scan.index.schema import ScanIndex
from recipe_core.scan.issues._common import rank_in_runs, sorted_distinct
from recipe_core.scan.issues.dup_groups import clique_groups
from recipe_core.scan.issues.dup_rows import duplicate_issue_rows
from recipe_core.scan.issues.flips import FLIPS, flipped_evidence, flipped_links
from recipe_core.scan.issues.memo import IssueMemo
from recipe_core.scan.issues.neighbors import NeighborGraph, neighbor_graph
from recipe_core.scan.issues.pair_verdict import (
    PairEvidence,
    join_evidence,
    pair_evidence,
    verdict,
)
from recipe_core.scan.issues.pixel_match import (
    MIN_STD,
    NEAR_THRESHOLD,
    check_threshold,
    closeness,
    thumbnail_std,
)
from recipe_core.scan.issues.quality import low_information_mask
from recipe_core.scan.issues.warp_match import WARP_LINE, WARP_MIN_SIDE, warped_distance

log = logging.getLogger(__name__)

NEAR_K = 5  # embedding neighbours per image checked as near-duplicate candidates
EFFECT_THRESHOLDS = (0.5, 0.75, 1.0, 1.25, 1.5)  # what `threshold_effect` compares by default
EDITED = "edited copy (recropped, turned or overlaid)"  # NearLinks.flip of a `warp_match` link
# closeness (shift-only) below which an image's nearest candidate is also tried warped: every
# planted recrop and turned copy measured <= 4.7; half of distinct pairs measure more
WARP_CANDIDATE = 5.0
# ... and below which it is compared unwarped with an overlay forgiven (`warp_match.
# occluded_distance`: a fifth of the picture under a caption bar measured 2.6-7.6)
OVERLAY_CANDIDATE = 10.0
EDIT_CANDIDATES = 2  # each image's nearest candidates tried as edited copies (see near_pairs)


@dataclass(frozen=True)
class NearLinks:
    """Verified near-duplicate links, one row per pair of rows (a < b)."""

    a: np.ndarray
    b: np.ndarray
    evidence: PairEvidence  # what judges each link at a stricter line
    flip: np.ndarray  # object: how b is a copy of a: "" as it is, a key of flips.FLIPS, EDITED


@dataclass(frozen=True)
class DuplicateResult:
    # one row per sample in a group: sample_id, exact_group ("exact-N" or ""), group ("dup-N"),
    # near (bool: the group holds more than one distinct image), twin (sample_id of an
    # identical copy, -1 if none), partner (closest non-identical member by a verified link,
    # -1 if none), closeness (to the partner: 0 = same pixels, 1 = on the near-duplicate line;
    # nan if none)
    members: pd.DataFrame = field(repr=False)
    # verified near links: sample_id_a, sample_id_b, distance (aligned, standardised),
    # residual (grey levels; nan for an EDITED copy, measured by its warped distance alone),
    # see pixel_match; flip ("", how b is a flipped (flips.FLIPS), or EDITED)
    pairs: pd.DataFrame = field(repr=False)
    issues: pd.DataFrame = field(repr=False)  # family rows: sample_id, issue, score, group, detail


def find_duplicates(
    index: ScanIndex,
    *,
    graph: NeighborGraph | None = None,
    seed: int = 0,
    near_threshold: float = 1.0,
    memo: IssueMemo | None = None,
    edited_copies: bool = True,
) -> DuplicateResult:
    """Exact and near duplicate groups of `index`, with their issue rows.

    `near_threshold` moves the near-duplicate line, in closeness units (`pixel_match.is_near`):
    1 is the calibrated default, 0.5 stricter (fewer, surer), 1.5 looser (more, less sure);
    `threshold_effect` tells how many links and groups each value gives.

    `graph` is a neighbour graph over (a superset of) the index's distinct valid images, e.g.
    the one `find_issues` shares between detectors; one is built when omitted. Identical
    copies in it are skipped when picking candidates. `memo` (see
    `recipe_core.scan.issues.memo`) skips the pixel checks the last scan did.
    `edited_copies=False` leaves out the edited-copy checks (`warp_match`: recrops, turns,
    overlays; up to ~0.5 CPU-ms per image of 48 px or more), flipped copies stay.
    """
    threshold = check_threshold(near_threshold)
    table = index.table
    exact = exact_groups(table)
    graph = graph if graph is not None else _graph(index, exact, seed)
    eligible = eligible_thumbnails(index.pixels, low_information_mask(index), memo)
    warpable = warpable_rows(table) if edited_copies else None
    links = near_pairs(index.pixels, graph, exact, eligible=eligible, threshold=threshold,
                       memo=memo, warpable=warpable)  # fmt: skip
    a, b, flip = links.a, links.b, links.flip
    dist, residual = links.evidence.judge(threshold)[1:]
    close = closeness(dist, residual)
    verify = _verifier(index.pixels, threshold, memo, warpable)
    labels = clique_groups(len(table), exact, a, b, close, verify, edited=flip != "")
    inside = (labels[a] >= 0) & (labels[a] == labels[b])  # links within a group: reported
    a, b, dist, residual, close, flip = (
        a[inside], b[inside], dist[inside], residual[inside], close[inside], flip[inside],
    )  # fmt: skip
    members = _members(table, exact, labels, a, b, close)
    pairs = pd.DataFrame(
        {
            "sample_id_a": table["sample_id"].to_numpy()[a],
            "sample_id_b": table["sample_id"].to_numpy()[b],
            "distance": dist,
            "residual": np.where(flip == EDITED, np.nan, residual),
            "flip": flip,
        }
    )
    log.info("%d exact and %d near-duplicate links (%d of a flipped copy, %d of an edited one)",
             int((exact >= 0).sum()), len(a), int(np.isin(flip, list(FLIPS)).sum()),
             int((flip == EDITED).sum()))  # fmt: skip
    issues = duplicate_issue_rows(table, members, _partner_kinds(members, pairs))
    return DuplicateResult(members=members, pairs=pairs, issues=issues)


def threshold_effect(
    index: ScanIndex,
    thresholds: tuple[float, ...] = EFFECT_THRESHOLDS,
    *,
    graph: NeighborGraph | None = None,
    seed: int = 0,
    edited_copies: bool = True,
) -> pd.DataFrame:
    """What each near-duplicate threshold would report on `index`, one row per threshold:
    threshold; links (verified near pairs: grows with the threshold); new_links (the links this
    threshold adds to the next stricter one, the least sure: what the step costs in
    precision); flipped (the links of a mirror image or an upside-down copy, `flips`); edited
    (the links of an edited copy: recropped, turned or overlaid, `warp_match`); groups
    (near groups, with more than one distinct image, after `clique_groups`) and images
    (distinct images in them); and the loosest link admitted (sample_id_a, sample_id_b,
    closeness; -1 and nan when none): what the line lets in, to look at.

    The candidates are verified once; each threshold then only re-draws the line and regroups.
    `edited_copies` as in `find_duplicates` (the scan's own setting: `ScanSummary`).
    """
    levels = sorted({check_threshold(t) for t in thresholds})
    exact = exact_groups(index.table)
    graph = graph if graph is not None else _graph(index, exact, seed)
    eligible = eligible_thumbnails(index.pixels, low_information_mask(index))
    warpable = warpable_rows(index.table) if edited_copies else None
    links = near_pairs(index.pixels, graph, exact, eligible=eligible, threshold=levels[-1],
                       warpable=warpable)  # fmt: skip
    a, b = links.a, links.b
    ids = index.table["sample_id"].to_numpy()
    rows, before = [], 0
    for level in levels:
        near, dist, residual = links.evidence.judge(level)
        keep = np.flatnonzero(near)
        close = closeness(dist, residual)
        labels = clique_groups(len(ids), exact, a[keep], b[keep], close[keep],
                               _verifier(index.pixels, level, warpable=warpable),
                               edited=links.flip[keep] != "")  # fmt: skip
        groups, images = _near_groups(labels, exact)
        worst = keep[np.argmax(close[keep])] if len(keep) else -1
        rows.append({
            "threshold": level, "links": len(keep), "new_links": len(keep) - before,
            "flipped": int(np.isin(links.flip[keep], list(FLIPS)).sum()),
            "edited": int((links.flip[keep] == EDITED).sum()), "groups": groups, "images": images,
            "sample_id_a": int(ids[a[worst]]) if worst >= 0 else -1,
            "sample_id_b": int(ids[b[worst]]) if worst >= 0 else -1,
            "closeness": float(close[worst]) if worst >= 0 else float("nan"),
        })  # fmt: skip
        before = len(keep)
    return pd.DataFrame(rows)


def _graph(index: ScanIndex, exact: np.ndarray, seed: int) -> NeighborGraph:
    spare = int(np.bincount(exact[exact >= 0]).max(initial=1))  # copies take slots
    return neighbor_graph(index.embeddings, np.flatnonzero(index.valid), NEAR_K + spare, seed=seed)


def _near_groups(labels: np.ndarray, exact: np.ndarray) -> tuple[int, int]:
    """(groups holding more than one distinct image, distinct images in them)."""
    rows = np.flatnonzero(labels >= 0)
    distinct = np.where(exact[rows] >= 0, exact[rows], -1 - rows)  # one id per image
    frame = pd.DataFrame({"group": labels[rows], "image": distinct}).drop_duplicates()
    sizes = frame.groupby("group").size()
    near = sizes[sizes >= 2]
    return len(near), int(near.sum())


def exact_groups(table: pd.DataFrame) -> np.ndarray:
    """(N,) int64: a group number shared by rows with identical decoded pixels, -1 for rows
    without an identical twin (and for undecodable rows)."""
    hashes = table["pixel_hash"].where(table["decode_error"] == "", "")
    codes, uniques = pd.factorize(hashes.to_numpy(), sort=False)
    counts = np.bincount(codes, minlength=len(uniques))
    blank = np.flatnonzero(uniques == "")
    grouped = (counts[codes] >= 2) & ~np.isin(codes, blank)
    out = np.where(grouped, codes, -1).astype(np.int64)
    return out


def near_pairs(
    pixels: np.ndarray,
    graph: NeighborGraph,
    exact: np.ndarray,
    *,
    k: int = NEAR_K,
    eligible: np.ndarray | None = None,
    threshold: float = 1.0,
    memo: IssueMemo | None = None,
    warpable: np.ndarray | None = None,
) -> NearLinks:
    """Verified near-duplicate links at `threshold` (see `find_duplicates`), from three kinds
    of candidate between `eligible` rows (bool, from `eligible_thumbnails`; None: every
    thumbnail with content):

    * each graph row's first k neighbours that are not its identical copies (`exact`, from
      `exact_groups`), checked with the aligned pixel distance (`pair_verdict`);
    * flipped copies (`flips.flipped_links`), held to their own line, where the pair is not
      already a link as it is or a pair of identical copies;
    * edited copies: each row's first such neighbour, where the shift-only check rejected the
      pair (at closeness < WARP_CANDIDATE) and both rows are `warpable` (bool, from
      `warpable_rows`; None: no row), aligned by a bounded warp (`edited_links`).

    `links.evidence.judge(t)` tells which remain at a stricter line t."""
    eligible = eligible_thumbnails(pixels, memo=memo) if eligible is None else eligible
    src, dst = near_candidates(graph, exact, eligible, k)
    n = len(pixels)
    key = _pair_keys(src, dst, n)
    a, b = key // n, key % n
    evidence = pair_evidence(pixels, a, b, threshold, memo)
    near = np.flatnonzero(evidence.judge(threshold)[0])
    a, b = a[near], b[near]
    fa, fb, flipped, kind = flipped_links(pixels, eligible, threshold, memo)
    twins = (exact[fa] >= 0) & (exact[fa] == exact[fb])
    new = np.flatnonzero(~twins & ~np.isin(fa * n + fb, a * n + b))
    linked = np.concatenate([a * n + b, fa[new] * n + fb[new]])
    near_miss = closeness(evidence.dist, evidence.residual)
    open_pair = ~np.isin(key, linked) & (near_miss < OVERLAY_CANDIDATE)
    ea: list[np.ndarray] = []
    eb: list[np.ndarray] = []
    edited: list[PairEvidence] = []
    x, y, rank = _edit_candidates(src, dst, warpable)
    for r in range(EDIT_CANDIDATES):
        # a row's next candidate only where it is a copy already: several edited copies of
        # one picture may be one another's nearest, the rest of a set seldom is
        if r == 0:
            ask = rank == 0
        else:
            copied = np.zeros(n, dtype=bool)
            copied[np.concatenate([a, fa[new], *ea, b, fb[new], *eb])] = True
            ask = (rank == r) & copied[x]
        at = np.searchsorted(key, _pair_keys(x[ask], y[ask], n))
        at = at[open_pair[at]]
        open_pair[at] = False  # each pair is tried once
        found = edited_links(pixels, *divmod(key[at], n), threshold=threshold, memo=memo,
                             warped=near_miss[at] < WARP_CANDIDATE)  # fmt: skip
        ea.append(found[0])
        eb.append(found[1])
        edited.append(found[2])
    ea_all, eb_all = np.concatenate(ea), np.concatenate(eb)
    return NearLinks(
        a=np.concatenate([a, fa[new], ea_all]),
        b=np.concatenate([b, fb[new], eb_all]),
        evidence=join_evidence([evidence.subset(near), flipped.subset(new), *edited]),
        flip=np.concatenate([
            np.full(len(a), "", dtype=object), kind[new],
            np.full(len(ea_all), EDITED, dtype=object),
        ]),
    )  # fmt: skip


def warpable_rows(table: pd.DataFrame) -> np.ndarray:
    """(N,) bool: images natively at least WARP_MIN_SIDE px each way (`warp_match`)."""
    width, height = table["width"].to_numpy(), table["height"].to_numpy()
    out: np.ndarray = (width >= WARP_MIN_SIDE) & (height >= WARP_MIN_SIDE)
    return out


def _edit_candidates(
    src: np.ndarray, dst: np.ndarray, warpable: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, rank): each src row x's first EDIT_CANDIDATES candidates y (src, dst hold each
    row's nearest first, in order) and their rank there, where both rows are `warpable`."""
    if warpable is None or not warpable.any():
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    order = np.argsort(src, kind="stable")  # each row's candidates together, nearest first
    rank = rank_in_runs(src[order])
    keep = rank < EDIT_CANDIDATES
    x, y, rank = src[order][keep], dst[order][keep], rank[keep]
    both = warpable[x] & warpable[y]
    return x[both], y[both], rank[both]


def _pair_keys(x: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    """Sorted unique keys a * n + b (a < b) of the pairs (x, y) of n rows: each pair once."""
    return sorted_distinct(np.minimum(x, y) * n + np.maximum(x, y))


def edited_links(
    pixels: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    *,
    threshold: float = 1.0,
    memo: IssueMemo | None = None,
    warped: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, PairEvidence]:
    """(a, b, evidence) of the pairs (pixels[a], pixels[b]) that are edited copies: within
    WARP_LINE x `threshold` by `warp_match.warped_distance` (`warped`: which pairs it aligns
    by a warp, None: all; the others are compared unwarped, for an overlay). The evidence
    carries that distance scaled so that the verdict's distance line is WARP_LINE, and no
    residual (inf: no residual test), so `PairEvidence.judge` draws any stricter line.
    Memoised by the two contents: whether a pair is warped follows from its contents too."""
    turn = np.ones(len(a), dtype=bool) if warped is None else np.asarray(warped, dtype=bool)
    if memo is None:
        dist = warped_distance(pixels, a, b, turn)
    else:
        dist = memo.per_pair(
            "warp_match", a, b, lambda p: warped_distance(pixels, a[p], b[p], turn[p])
        )
    near = np.flatnonzero(dist < WARP_LINE * threshold)
    scaled = (dist[near] * (NEAR_THRESHOLD / WARP_LINE)).astype(np.float32)
    missing = np.full(len(near), np.nan, dtype=np.float32)
    no_residual = np.full(len(near), np.inf, dtype=np.float32)
    line = np.full(len(near), np.inf, dtype=np.float32)
    return a[near], b[near], PairEvidence(scaled, no_residual, missing, missing, missing, line)


def near_candidates(
    graph: NeighborGraph, exact: np.ndarray, eligible: np.ndarray, k: int = NEAR_K
) -> tuple[np.ndarray, np.ndarray]:
    """(src, dst) row numbers: each graph row's first k neighbours that are not its identical
    copies (`exact`), where both thumbnails are `eligible`. The first 2k columns hold them for
    nearly every row (the graph has ~60 at 50k images, for the outlier score); only rows with
    more identical copies than that are read in full."""
    src, dst, short = _candidates(graph, exact, eligible, k, np.arange(len(graph.rows)), 2 * k)
    if len(short):
        more = _candidates(graph, exact, eligible, k, short, graph.k)
        src, dst = np.concatenate([src, more[0]]), np.concatenate([dst, more[1]])
    return src, dst


def _candidates(
    graph: NeighborGraph,
    exact: np.ndarray,
    eligible: np.ndarray,
    k: int,
    lines: np.ndarray,
    width: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(src, dst, short) for the graph `lines`, read to `width` columns: each line's first k
    neighbours that are not its identical copies, as pairs of eligible rows; `short`: the
    lines that found fewer than k within `width` columns while the graph has more."""
    indices = graph.indices[lines, :width]
    nbr = np.maximum(indices, 0)
    rows = graph.rows[lines]
    own = exact[rows][:, None]
    usable = (indices >= 0) & ~((own >= 0) & (exact[nbr] == own))
    found = np.cumsum(usable, axis=1)
    short = lines[(found[:, -1] < k) & (width < graph.k)] if found.shape[1] else lines[:0]
    if len(short):
        usable[np.isin(lines, short)] = False  # read again in full
    usable &= found <= k
    usable &= eligible[rows][:, None] & eligible[nbr]
    src = np.broadcast_to(rows[:, None], nbr.shape)[usable]
    return src, nbr[usable], short


def eligible_thumbnails(
    pixels: np.ndarray, skip: np.ndarray | None = None, memo: IssueMemo | None = None
) -> np.ndarray:
    """(N,) bool: thumbnails with content enough for a pixel check (std >= MIN_STD grey
    levels: a flatter one's standardised pixels are mostly quantisation noise) and not in
    `skip` (e.g. low-information images)."""
    if memo is None:
        eligible = thumbnail_std(pixels) >= MIN_STD
    else:
        every = np.arange(len(pixels))
        stds = memo.per_image("thumbnail_std", every, lambda r: thumbnail_std(pixels[r]))
        eligible = stds >= MIN_STD
    if skip is not None:
        eligible &= ~skip
    out: np.ndarray = eligible
    return out


def _verifier(
    pixels: np.ndarray,
    threshold: float,
    memo: IssueMemo | None = None,
    warpable: np.ndarray | None = None,
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Near duplicates as they are, one of them flipped (`flips.FLIPS`), or, between
    `warpable` rows, one an edited copy of the other (`warp_match`)."""

    def verify(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        near = verdict(pixels, a, b, threshold, memo)[0]
        for axes in FLIPS.values():
            rest = np.flatnonzero(~near)
            if len(rest):
                flipped = flipped_evidence(pixels, a[rest], b[rest], axes, threshold)
                near[rest] = flipped.judge(threshold)[0]
        if warpable is not None:
            rest = np.flatnonzero(~near & warpable[a] & warpable[b])
            if len(rest):
                near[rest] = warped_distance(pixels, a[rest], b[rest]) < WARP_LINE * threshold
        return near

    return verify


def _partner_kinds(members: pd.DataFrame, pairs: pd.DataFrame) -> dict[int, str]:
    """sample_id -> how its partner is a copy of it (flipped: "mirror image", ...; or EDITED),
    where the link between them is not of a copy as it is."""
    flipped = pairs[pairs["flip"] != ""]
    both = pd.concat([
        flipped.rename(columns={"sample_id_a": "sample_id", "sample_id_b": "partner"}),
        flipped.rename(columns={"sample_id_b": "sample_id", "sample_id_a": "partner"}),
    ])[["sample_id", "partner", "flip"]]  # fmt: skip
    hit = members[["sample_id", "partner"]].merge(both, on=["sample_id", "partner"])
    hit = hit.drop_duplicates("sample_id")
    return dict(zip(hit["sample_id"].astype(int), hit["flip"].astype(str), strict=True))


def duplicate_components(n: int, exact: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n,) int64 component label per row over exact + near links; -1 for rows in no group.

    Connected components make groups symmetric and transitive by construction.
    """
    grouped = np.flatnonzero(exact >= 0)
    order = grouped[np.argsort(exact[grouped], kind="stable")]
    same = exact[order][1:] == exact[order][:-1]  # chain each exact group's rows together
    src = np.concatenate([order[:-1][same], a])
    dst = np.concatenate([order[1:][same], b])
    graph = coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels, minlength=n)
    out: np.ndarray = np.where(sizes[labels] >= 2, labels, -1).astype(np.int64)
    return out


def _members(
    table: pd.DataFrame,
    exact: np.ndarray,
    labels: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    close: np.ndarray,
) -> pd.DataFrame:
    rows = np.flatnonzero(labels >= 0)
    ids = table["sample_id"].to_numpy()
    twin = _twins(len(table), exact)
    partner, distance = _near_partners(len(table), exact, a, b, close)
    distinct = pd.Series(exact[rows]).where(exact[rows] >= 0, -1 - rows)  # one id per image
    n_images = distinct.groupby(labels[rows]).transform("nunique").to_numpy()
    return pd.DataFrame(
        {
            "sample_id": ids[rows],
            "exact_group": _names("exact", exact[rows]),
            "group": _names("dup", labels[rows]),
            "near": n_images >= 2,
            "twin": np.where(twin[rows] >= 0, ids[np.maximum(twin[rows], 0)], -1),
            "partner": np.where(partner[rows] >= 0, ids[np.maximum(partner[rows], 0)], -1),
            "closeness": distance[rows],
        }
    )


def _twins(n: int, exact: np.ndarray) -> np.ndarray:
    """(n,) another row with identical pixels (the group's first row, or its last for the
    first row itself); -1 without one."""
    twin = np.full(n, -1, dtype=np.int64)
    grouped = np.flatnonzero(exact >= 0)
    by_group = pd.Series(grouped).groupby(exact[grouped])
    first = by_group.transform("first").to_numpy()
    last = by_group.transform("last").to_numpy()
    twin[grouped] = np.where(first != grouped, first, last)
    return twin


def _near_partners(
    n: int, exact: np.ndarray, a: np.ndarray, b: np.ndarray, close: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(n,) closest near-link row and its closeness; exact copies without a link of their own
    inherit one from their group. (-1, nan) without a link."""
    partner = np.full(n, -1, dtype=np.int64)
    distance = np.full(n, np.nan, dtype=np.float32)
    links = pd.DataFrame(
        {"src": np.concatenate([a, b]), "dst": np.concatenate([b, a]), "d": np.tile(close, 2)}
    )
    nearest = links.sort_values("d", kind="stable").drop_duplicates("src", keep="first")
    partner[nearest["src"].to_numpy()] = nearest["dst"].to_numpy()
    distance[nearest["src"].to_numpy()] = nearest["d"].to_numpy()
    grouped = np.flatnonzero(exact >= 0)
    linked = pd.DataFrame({"row": grouped, "g": exact[grouped], "p": partner[grouped]})
    source = linked[linked["p"] >= 0].drop_duplicates("g").set_index("g")["row"]
    linked = linked[linked["p"] < 0]  # only rows without their own link inherit
    inherit = linked["g"].map(source).to_numpy(dtype=np.float64)
    has = ~np.isnan(inherit)
    src_rows = inherit[has].astype(np.int64)
    heirs = linked["row"].to_numpy()[has]
    partner[heirs] = partner[src_rows]
    distance[heirs] = distance[src_rows]
    return partner, distance


def _names(prefix: str, codes: np.ndarray) -> np.ndarray:
    """Stable readable ids: codes renumbered 1.. in order of first appearance (path order)."""
    out = np.full(len(codes), "", dtype=object)
    grouped = codes >= 0
    _, first = np.unique(codes[grouped], return_index=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(1, len(first) + 1)
    _, inverse = np.unique(codes[grouped], return_inverse=True)
    out[grouped] = [f"{prefix}-{r}" for r in rank[inverse]]
    return out
