"""Filter, sort and page a scan's sample table: the query behind every data view.

    table = sample_table(result.index.table, result.issues)        # once per scan
    page = query(table, SampleFilter(issues=("outlier",)), sort_by="score_outlier",
                 descending=True, page=1, per_page=50)
    page.rows, page.total                                            # 50 rows, matching count

Built for a 1M-row index at interactive speed: the per-sample issue summary (bit mask, max
score, one score column per issue type) is computed once by `sample_table`; a query is then a
few vectorised masks plus a top-k selection (`np.argpartition`), never a full sort of the
table unless a late page needs most of it. Sorting matches pandas' stable `sort_values` (ties
in table order, missing values last) exactly, which the tests check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recipe_core.errors import ConfigError

SCORE_PREFIX = "score_"  # per-issue score columns: score_<issue>, NaN where the sample lacks it
SUMMARY_COLUMNS = ("issues", "n_issues", "max_score")  # added by `sample_table`
# A sort key computed per query: the highest score among the filter's issue types (every type
# when none is chosen), so "these issues, worst first" sorts by the chosen issues only; the
# page's rows carry it as a column.
ISSUE_SCORE = "issue_score"
MAX_PER_PAGE = 1000


@dataclass(frozen=True)
class Range:
    """Keep rows with low <= column <= high (high exclusive when `include_high` is False)."""

    column: str
    low: float = -math.inf
    high: float = math.inf
    include_high: bool = True


@dataclass(frozen=True)
class SampleFilter:
    """Which samples to show. Empty tuples mean "no restriction"; all conditions must hold."""

    labels: tuple[str, ...] = ()  # any of these labels
    splits: tuple[str, ...] = ()  # any of these splits
    issues: tuple[str, ...] = ()  # has at least one of these issue types
    min_score: float = 0.0  # max score over `issues` (all issues when empty) at least this
    ranges: tuple[Range, ...] = ()  # numeric column ranges
    path_contains: str = ""  # case-insensitive substring of the relative path
    flagged: bool | None = None  # True: has some issue; False: has none; None: either
    sample_ids: tuple[int, ...] = ()  # only these samples (a selection elsewhere)
    only_ids: tuple[int, ...] | None = None  # only these (a tag's samples; () keeps none)

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_score <= 1.0:
            raise ConfigError(f"min_score={self.min_score} is outside [0, 1]; scores are 0..1.")


@dataclass(frozen=True)
class SampleTable:
    """The index table plus per-sample issue columns, ready for fast queries."""

    frame: pd.DataFrame = field(repr=False)  # index columns + SUMMARY_COLUMNS + score_<issue>
    issue_types: tuple[str, ...]  # issue types present, bit i of `bits` = issue_types[i]
    bits: np.ndarray = field(repr=False)  # (N,) int64 bit mask of each sample's issue types
    _keys: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.frame)

    def score_column(self, issue: str) -> str:
        return SCORE_PREFIX + issue

    def numeric_columns(self) -> list[str]:
        """Columns that ranges, histograms and numeric sorts accept."""
        frame = self.frame
        return [c for c in frame.columns if c != "sample_id" and _is_numeric(frame[c])]

    def sort_key(self, column: str) -> np.ndarray:
        """(N,) float64 ascending sort key of `column` (strings ranked), NaN = missing."""
        if column not in self._keys:
            self._keys[column] = _sort_key(self.frame, column)
        return self._keys[column]


@dataclass(frozen=True)
class QueryPage:
    rows: pd.DataFrame = field(repr=False)  # the page's rows of SampleTable.frame, in order
    positions: np.ndarray = field(repr=False)  # (len(rows),) their row positions in the table
    total: int  # rows matching the filter
    page: int  # 1-based, clamped into range
    n_pages: int


def sample_table(index_table: pd.DataFrame, issues: pd.DataFrame) -> SampleTable:
    """Join per-sample issue summaries onto the index table (run once per scan)."""
    types = tuple(sorted(str(t) for t in issues["issue"].unique())) if len(issues) else ()
    if len(types) > 62:
        raise ConfigError(f"{len(types)} issue types; at most 62 fit the per-sample bit mask.")
    pos = pd.Index(index_table["sample_id"]).get_indexer(issues["sample_id"])
    known = pos >= 0
    pos, kinds = pos[known], issues["issue"].to_numpy()[known]
    scores = issues["score"].to_numpy(dtype=np.float64)[known]
    n = len(index_table)
    columns: dict[str, np.ndarray] = {}
    bits = np.zeros(n, dtype=np.int64)
    for i, kind in enumerate(types):
        rows = kind == kinds
        col = np.full(n, np.nan)
        np.fmax.at(col, pos[rows], scores[rows])  # fmax: NaN start, keep the worst row
        columns[SCORE_PREFIX + kind] = col
        bits[pos[rows]] |= np.int64(1) << np.int64(i)
    max_score = np.full(n, np.nan)
    np.fmax.at(max_score, pos, scores)
    names = _issue_names(bits, types)
    frame = index_table.reset_index(drop=True).assign(
        issues=names, n_issues=_popcount(bits), max_score=max_score, **columns
    )
    return SampleTable(frame=frame, issue_types=types, bits=bits)


def query(
    table: SampleTable,
    spec: SampleFilter | None = None,
    *,
    sort_by: str | None = None,
    descending: bool = False,
    page: int = 1,
    per_page: int = 50,
) -> QueryPage:
    """One page of the rows matching `spec`, sorted by `sort_by` (None: table order)."""
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise ConfigError(f"per_page={per_page}; choose 1..{MAX_PER_PAGE} rows per page.")
    spec = spec or SampleFilter()
    matches = np.flatnonzero(filter_mask(table, spec))
    total = len(matches)
    n_pages = max(1, math.ceil(total / per_page))
    page = min(max(int(page), 1), n_pages)
    start, stop = (page - 1) * per_page, min(page * per_page, total)
    if sort_by is None:
        chosen = matches[start:stop]
    else:
        full = issue_score(table, spec.issues) if sort_by == ISSUE_SCORE else None
        key = (full if full is not None else _checked_key(table, sort_by))[matches]
        chosen = matches[top_k_order(-key if descending else key, stop)[start:stop]]
    rows = table.frame.iloc[chosen]
    if sort_by == ISSUE_SCORE:
        rows = rows.assign(**{ISSUE_SCORE: issue_score(table, spec.issues)[chosen]})
    return QueryPage(rows, chosen, total, page, n_pages)


def adjacent(
    table: SampleTable,
    spec: SampleFilter,
    sample_id: int,
    *,
    sort_by: str | None = None,
    descending: bool = False,
) -> tuple[int | None, int | None]:
    """The sample_ids before and after `sample_id` in the order `query` pages through (the
    detail view's previous / next); None at either end, both None when it does not match."""
    matches = np.flatnonzero(filter_mask(table, spec))
    if sort_by is not None:
        full = issue_score(table, spec.issues) if sort_by == ISSUE_SCORE else None
        key = (full if full is not None else _checked_key(table, sort_by))[matches]
        matches = matches[top_k_order(-key if descending else key, len(matches))]
    ids = table.frame["sample_id"].to_numpy()[matches]
    hits = np.flatnonzero(ids == sample_id)
    if not len(hits):
        return None, None
    i = int(hits[0])
    before = int(ids[i - 1]) if i > 0 else None
    after = int(ids[i + 1]) if i + 1 < len(ids) else None
    return before, after


def issue_score(table: SampleTable, issues: tuple[str, ...]) -> np.ndarray:
    """(N,) float64: each sample's highest score among `issues` (all types when empty), NaN
    where it has none of them."""
    wanted = [i for i in issues if i in table.issue_types] if issues else list(table.issue_types)
    if not wanted:
        return np.full(len(table), np.nan)
    cols = [table.frame[SCORE_PREFIX + i].to_numpy(dtype=np.float64) for i in wanted]
    return np.asarray(np.fmax.reduce(cols) if len(cols) > 1 else cols[0], dtype=np.float64)


def filter_mask(table: SampleTable, spec: SampleFilter) -> np.ndarray:
    """(N,) bool: the rows of `table` that `spec` keeps."""
    frame = table.frame
    mask = np.ones(len(frame), dtype=bool)
    if spec.labels:
        mask &= frame["label"].isin(spec.labels).to_numpy()
    if spec.splits:
        mask &= frame["split"].isin(spec.splits).to_numpy()
    if spec.issues or spec.min_score > 0:
        mask &= _issue_mask(table, spec.issues, spec.min_score)
    if spec.flagged is not None:
        mask &= (table.bits != 0) == spec.flagged
    for rng in spec.ranges:
        values = _checked_numeric(table, rng.column)
        upper = values <= rng.high if rng.include_high else values < rng.high
        mask &= (values >= rng.low) & upper
    if spec.sample_ids:
        mask &= frame["sample_id"].isin(spec.sample_ids).to_numpy()
    if spec.only_ids is not None:
        mask &= frame["sample_id"].isin(spec.only_ids).to_numpy()
    if spec.path_contains:
        found = frame["path"].str.contains(spec.path_contains, case=False, regex=False)
        mask &= found.fillna(False).to_numpy(dtype=bool)
    return mask


def top_k_order(key: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k smallest `key` values, in stable ascending order, NaN last.

    Equal to `np.argsort(key, kind="stable")[:k]` with NaN moved last, at O(n + k log k):
    a partition finds the k-th value, and only values up to it (ties included, so the result
    is deterministic) are sorted.
    """
    finite = np.flatnonzero(~np.isnan(key))
    if k >= len(finite) or 4 * k >= len(key):
        order = finite[np.argsort(key[finite], kind="stable")]
        return np.concatenate([order, np.flatnonzero(np.isnan(key))])[:k]
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    values = key[finite]
    kth = np.partition(values, k - 1)[k - 1]
    candidates = finite[values <= kth]  # in position order: the stable sort keeps ties so
    best: np.ndarray = candidates[np.argsort(key[candidates], kind="stable")][:k]
    return best


def _issue_mask(table: SampleTable, issues: tuple[str, ...], min_score: float) -> np.ndarray:
    worst = issue_score(table, issues)  # NaN (none of these issues) compares False
    return np.asarray(worst >= max(min_score, 0.0), dtype=bool)


def _checked_key(table: SampleTable, column: str) -> np.ndarray:
    if column not in table.frame.columns:
        raise ConfigError(
            f"Cannot sort by {column!r}: no such column. Sortable columns: "
            f"{', '.join(map(str, table.frame.columns))}."
        )
    return table.sort_key(column)


def _checked_numeric(table: SampleTable, column: str) -> np.ndarray:
    if column not in table.frame.columns or not _is_numeric(table.frame[column]):
        raise ConfigError(
            f"Cannot filter a range of {column!r}: not a numeric column. Numeric columns: "
            f"{', '.join(table.numeric_columns())}."
        )
    return table.sort_key(column)


def _sort_key(frame: pd.DataFrame, column: str) -> np.ndarray:
    values = frame[column]
    if _is_numeric(values):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    codes, _ = pd.factorize(values, sort=True)  # rank of each string; -1 for missing
    key = codes.astype(np.float64)
    key[codes < 0] = np.nan
    return key


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)


def _issue_names(bits: np.ndarray, types: tuple[str, ...]) -> np.ndarray:
    """(N,) object: comma-joined issue types per sample, computed once per distinct bit mask."""
    distinct, inverse = np.unique(bits, return_inverse=True)
    names = [", ".join(t for i, t in enumerate(types) if b >> i & 1) for b in distinct]
    return np.asarray(names, dtype=object)[inverse]


def _popcount(bits: np.ndarray) -> np.ndarray:
    counts = np.zeros(len(bits), dtype=np.int8)
    rest = bits.copy()
    while rest.any():
        counts += (rest & 1).astype(np.int8)
        rest >>= 1
    return counts
