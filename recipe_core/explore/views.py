"""Summaries of a scan shaped for display: histograms and box statistics by class, duplicate
groups with their label conflicts and split leaks, suggested labels of label issues.

They work on `query.SampleTable` rows selected by a boolean mask, so the charts of a 1M-row
index are computed here (bincount, one pass) and only bin counts go to the browser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from recipe_core.data.overview import DatasetOverview
from recipe_core.errors import ConfigError
from recipe_core.explore.query import SampleTable
from recipe_core.scan.issues import DUPLICATE_ISSUES
from recipe_core.scan.issues.duplicates import EDITED
from recipe_core.scan.issues.flips import FLIPS

OTHER = "(other classes)"  # the group that collects classes beyond `max_groups`
# How label-issue details state the suggestion ("given 9, model says 2 (p=0.96; ...)") when
# the rows have no structured column.
SUGGESTION = re.compile(r"model says (?P<a>.+?) \(p=|suggested label '(?P<b>[^']+)'")
GROUP_COLUMNS = ("group", "sample_id", "path", "label", "split", "size", "n_labels", "n_splits",
                 "conflicting", "leak", "issues", "copy_of", "copy_kind")  # fmt: skip
# How a near-duplicate detail names a member's closest other member and the kind of copy it
# is (dup_rows._near_rows: "... closest different one <path> is its mirror image (similarity
# 0.93)"; no "is its" for a copy as it is).
COPY_KINDS = (*FLIPS, EDITED)
COPY_KIND = re.compile(
    r"closest different one (?P<partner>.+?)(?: is its (?P<kind>"
    + "|".join(map(re.escape, COPY_KINDS))
    + r"))? \(similarity [0-9.]+\)$"
)
SUGGESTION_COLUMNS = ("suggested_label", "suggestion", "predicted_label")


@dataclass(frozen=True)
class Histogram:
    column: str
    edges: np.ndarray = field(repr=False)  # (bins + 1,) float64; bin i is [edges[i], edges[i+1])
    groups: tuple[str, ...]  # one per row of `counts`, most samples first, OTHER last
    counts: np.ndarray = field(repr=False)  # (len(groups), bins) int64
    n_missing: int  # selected rows without a finite value (not counted)
    # far outliers (beyond FAR_IQR interquartile ranges) counted in the first / last bin, so
    # one extreme value does not squeeze every other sample into a single bar
    n_below: int = 0
    n_above: int = 0

    def bin_of(self, value: float) -> int:
        """The bin holding `value` (the last bin is closed on the right, as np.histogram)."""
        i = int(np.searchsorted(self.edges, value, side="right")) - 1
        return min(max(i, 0), len(self.edges) - 2)


def histogram(
    table: SampleTable,
    column: str,
    mask: np.ndarray,
    *,
    bins: int = 40,
    by: str = "label",
    max_groups: int = 12,
) -> Histogram:
    """Counts of `column` over the rows in `mask`, per value of `by` (top `max_groups`)."""
    if column not in table.numeric_columns():
        raise ConfigError(
            f"Cannot histogram {column!r}: not a numeric column. Choose one of "
            f"{', '.join(table.numeric_columns())}."
        )
    values = table.sort_key(column)[mask]
    finite = np.isfinite(values)
    codes, names = _group_codes(table.frame[by].to_numpy()[mask][finite], max_groups)
    v = values[finite]
    lo, hi = _histogram_range(v)
    edges = np.histogram_bin_edges(v, bins=bins, range=(lo, hi if hi > lo else lo + 1.0))
    b = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, bins - 1)
    flat = np.bincount(codes * bins + b, minlength=len(names) * bins)
    counts = flat.reshape(len(names), bins)
    below, above = int((v < lo).sum()), int((v > hi).sum())
    return Histogram(column, edges, names, counts, int((~finite).sum()), below, above)


FAR_IQR = 3.0  # Tukey's "far out": beyond q1 - 3 IQR or q3 + 3 IQR


def _histogram_range(v: np.ndarray) -> tuple[float, float]:
    """The data's range, narrowed to Tukey's far-out fences when values lie beyond them (and
    the quartiles differ): the bins then resolve the bulk, the tails pile into the edge bins."""
    if not len(v):
        return 0.0, 1.0
    lo, hi = float(v.min()), float(v.max())
    q1, q3 = (float(q) for q in np.quantile(v, [0.25, 0.75]))
    iqr = q3 - q1
    if iqr <= 0:
        return lo, hi
    return max(lo, q1 - FAR_IQR * iqr), min(hi, q3 + FAR_IQR * iqr)


def box_stats(
    table: SampleTable, column: str, mask: np.ndarray, *, by: str = "label", max_groups: int = 30
) -> pd.DataFrame:
    """Per group: n, q1, median, q3, lowerfence, upperfence (Tukey: 1.5 IQR, clipped to data)."""
    values = table.sort_key(column)[mask]
    finite = np.isfinite(values)
    codes, names = _group_codes(table.frame[by].to_numpy()[mask][finite], max_groups)
    frame = pd.DataFrame({"group": np.asarray(names, dtype=object)[codes], "v": values[finite]})
    g = frame.groupby("group", sort=False)["v"]
    out = g.quantile(np.array([0.25, 0.5, 0.75])).unstack()
    out.columns = ["q1", "median", "q3"]
    out["n"] = g.size()
    iqr = out["q3"] - out["q1"]
    low = frame.join((out["q1"] - 1.5 * iqr).rename("lf"), on="group")
    high = frame.join((out["q3"] + 1.5 * iqr).rename("uf"), on="group")
    out["lowerfence"] = low[low["v"] >= low["lf"]].groupby("group")["v"].min()
    out["upperfence"] = high[high["v"] <= high["uf"]].groupby("group")["v"].max()
    return out.reindex([n for n in names if n in out.index]).reset_index(names="group")


def _group_codes(keys: np.ndarray, max_groups: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """Codes 0..G-1 for the `max_groups` most frequent keys (ties by name), G for the rest."""
    codes, uniques = pd.factorize(keys, sort=True)
    counts = np.bincount(codes, minlength=len(uniques))
    order = np.argsort(-counts, kind="stable")
    keep = order if len(uniques) <= max_groups else order[: max_groups - 1]
    remap = np.full(len(uniques), len(keep), dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    names = tuple(str(uniques[i]) for i in keep)
    if len(keep) < len(uniques):
        names += (OTHER,)
    return remap[codes] if len(codes) else codes.astype(np.int64), names


def duplicate_groups(issues: pd.DataFrame, index_table: pd.DataFrame) -> pd.DataFrame:
    """One row per member of every duplicate group (exact and near groups that share a sample
    are merged), with the group's size and whether its labels conflict or it crosses splits.

    Columns: GROUP_COLUMNS; `issues` lists the member's duplicate issue types; `copy_of`
    is the path of its closest different member (near duplicates; else ""), and `copy_kind`
    how that one is a copy of it where not as it is (COPY_KINDS: "mirror image", an edited
    copy), else "". Groups with conflicting labels come first, then leaks, then the largest.
    """
    rows = issues[issues["issue"].isin(DUPLICATE_ISSUES) & (issues["group"] != "")]
    if rows.empty:
        return pd.DataFrame(columns=list(GROUP_COLUMNS))
    root = _merged_groups(rows)
    members = rows.assign(group=rows["group"].map(root)).groupby(["group", "sample_id"])
    out = members["issue"].agg(lambda s: ", ".join(sorted(set(s)))).rename("issues").reset_index()
    out = out.merge(index_table[["sample_id", "path", "label", "split"]], on="sample_id")
    near = rows[rows["issue"] == "near_duplicate"].drop_duplicates("sample_id")
    found = near["detail"].astype(str).str.extract(COPY_KIND).fillna("")
    for column, part in (("copy_of", "partner"), ("copy_kind", "kind")):
        by_id = dict(zip(near["sample_id"], found[part], strict=True))
        out[column] = out["sample_id"].map(by_id).fillna("").astype(str)
    by = out.groupby("group")
    out["size"] = by["sample_id"].transform("size")
    out["n_labels"] = by["label"].transform("nunique")
    out["n_splits"] = by["split"].transform("nunique")
    out["conflicting"] = out["n_labels"] > 1
    out["leak"] = out["n_splits"] > 1
    keys, ascending = ["conflicting", "leak", "size", "group", "path"], [False] * 3 + [True] * 2
    order = out.sort_values(keys, ascending=ascending, kind="stable")
    return order.reset_index(drop=True)[list(GROUP_COLUMNS)]


def _merged_groups(rows: pd.DataFrame) -> dict[str, str]:
    """Group ids that share a member map to one representative (the smallest id): connected
    components of the bipartite graph group -- sample."""
    g_codes, g_names = pd.factorize(rows["group"], sort=True)
    s_codes, s_names = pd.factorize(rows["sample_id"])
    n_g = len(g_names)
    graph = coo_matrix(
        (np.ones(len(rows)), (g_codes, n_g + s_codes)), shape=(n_g + len(s_names),) * 2
    )
    _, component = connected_components(graph, directed=False)
    first = pd.Series(g_names).groupby(component[:n_g]).transform("first")  # names are sorted
    return dict(zip(map(str, g_names), map(str, first), strict=True))


def label_suggestions(issues: pd.DataFrame) -> pd.Series:
    """The suggested label of each `label_issue` row (indexed like `issues`), "" if unknown:
    from a structured column when the detector provides one, else parsed from `detail`."""
    rows = issues[issues["issue"] == "label_issue"]
    for column in SUGGESTION_COLUMNS:
        if column in rows.columns:
            return rows[column].fillna("").astype(str)
    found = rows["detail"].astype(str).str.extract(SUGGESTION)
    return found["a"].fillna(found["b"]).fillna("").astype(str)


def nearest_samples(
    embeddings: np.ndarray, row: int, k: int, *, valid: np.ndarray, block: int = 65_536
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest valid rows to `row` by Euclidean distance, nearest first, itself excluded.

    For one query (the detail panel) a blocked matrix-vector product: memory stays at one
    block even for a memory-mapped 1M x D embedding matrix, which a full pairwise search
    (`issues.neighbors.nearest_neighbors`) would copy. Returns (rows int64, distances float32).
    """
    query = np.asarray(embeddings[row], dtype=np.float32)
    n = len(embeddings)
    d2 = np.empty(n, dtype=np.float32)
    qq = float(query @ query)
    for start in range(0, n, block):
        chunk = np.asarray(embeddings[start : start + block], dtype=np.float32)
        d2[start : start + len(chunk)] = qq + (chunk * chunk).sum(1) - 2.0 * (chunk @ query)
    d2[~np.asarray(valid, dtype=bool)] = np.inf
    d2[row] = np.inf
    k = min(k, int(np.isfinite(d2).sum()))
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    part = np.argpartition(d2, k - 1)[:k]
    order = part[np.lexsort((part, d2[part]))]  # by distance, ties by row
    return order.astype(np.int64), np.sqrt(np.maximum(d2[order], 0.0)).astype(np.float32)


def overview_from_index(table: pd.DataFrame) -> DatasetOverview:
    """The dataset overview (`recipe_core.data.overview.summarize`) from a scan's index table, so a
    scanned dataset of 1M files is summarised without opening one; `error` holds decode
    errors, which also catch files whose header parses but whose pixels do not."""
    counts = table.groupby(["split", "label"], sort=True).size().rename("count").reset_index()
    headers = pd.DataFrame(
        {
            "sample_id": table["sample_id"].to_numpy(),
            "width": table["width"].to_numpy(),
            "height": table["height"].to_numpy(),
            "mode": table["mode"].to_numpy(),
            "format": table["format"].to_numpy(),
            "error": table["decode_error"].to_numpy(),
        }
    )
    readable = headers[headers["error"] == ""]
    sizes = readable.groupby(["width", "height", "mode"]).size().rename("count").reset_index()
    sizes = sizes.sort_values("count", ascending=False, kind="stable").reset_index(drop=True)
    labels = table["label"]
    return DatasetOverview(
        n_samples=len(table),
        n_classes=int(labels[labels != ""].nunique()),
        counts=counts,
        headers=headers,
        sizes=sizes,
        n_unreadable=int((headers["error"] != "").sum()),
    )
