"""`find_issues`: every detector family over one `ScanIndex`, as one issue table.

Order matters, because one root cause should produce one issue: quality first (corrupt and
blank images), then one shared neighbour graph, duplicates, outliers among the images that
are not already explained by a quality issue, and the label model trained on what remains
(no corrupt, blank or out-of-domain images to pollute it; folds grouped by duplicate group).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from recipe_core.scan.index.schema import ScanIndex
from recipe_core.scan.issues._common import ISSUE_COLUMNS, Progress, concat_issues
from recipe_core.scan.issues.balance import BalanceResult, find_class_imbalance
from recipe_core.scan.issues.duplicates import (
    NEAR_K,
    DuplicateResult,
    duplicate_components,
    exact_groups,
    find_duplicates,
)
from recipe_core.scan.issues.graph_update import memo_graph
from recipe_core.scan.issues.labels import VOTE_K, LabelIssueResult, find_label_issues
from recipe_core.scan.issues.memo import IssueMemo
from recipe_core.scan.issues.neighbors import NeighborGraph, neighbor_graph
from recipe_core.scan.issues.outliers import EXCLUDED_BY, OutlierResult, find_outliers, outlier_k
from recipe_core.scan.issues.quality import QUALITY_ISSUES, QualityResult, find_quality_issues

log = logging.getLogger(__name__)

SPARE = 8  # extra graph columns: consumers skip copies and excluded rows
STAGES = ("quality", "neighbours", "duplicates", "outliers", "labels", "balance")


@dataclass(frozen=True)
class IssueReport:
    """Every family's result plus the combined table (what `find_issues` returns)."""

    table: pd.DataFrame = field(repr=False)  # ISSUE_COLUMNS, one row per (sample, issue)
    quality: QualityResult
    duplicates: DuplicateResult
    outliers: OutlierResult
    labels: LabelIssueResult
    balance: BalanceResult
    graph: NeighborGraph = field(repr=False)  # over the decoded rows; index rows in and out


def find_issues(
    index: ScanIndex,
    *,
    seed: int = 0,
    progress: Progress | None = None,
    near_threshold: float = 1.0,
    memo: IssueMemo | None = None,
    edited_copies: bool = True,
) -> pd.DataFrame:
    """One row per (sample, issue): columns sample_id, path, label, issue, score, group, detail.

    `score` is in [0, 1] with 1 the most severe; `group` names a duplicate group ("" for
    per-sample issues). `progress(done, total)` is called after each detector stage. The
    index is never modified. `near_threshold` moves the near-duplicate line (1 = default,
    smaller = stricter; see `find_duplicates`). `detect_issues` returns the per-family
    results as well. With a `memo` (`IssueMemo.load` of the last scan's), the work the last scan
    did on unchanged files is taken from it, and this scan's is recorded there (`memo.save`).
    `edited_copies=False` leaves out the edited-copy checks (see `find_duplicates`).
    """
    return detect_issues(
        index,
        seed=seed,
        progress=progress,
        near_threshold=near_threshold,
        memo=memo,
        edited_copies=edited_copies,
    ).table


def detect_issues(
    index: ScanIndex,
    *,
    seed: int = 0,
    progress: Progress | None = None,
    near_threshold: float = 1.0,
    memo: IssueMemo | None = None,
    edited_copies: bool = True,
) -> IssueReport:
    """All detector families over `index` (see the module doc for their order); `memo` and
    `edited_copies` as in `find_issues`."""
    # Many small matrix products: BLAS threads cost more than they give, and on a busy
    # machine OpenBLAS's spinning threads make them 3-5x slower (measured at 50k images).
    with threadpool_limits(limits=1, user_api="blas"):
        return _detect(index, seed, progress, near_threshold, memo, edited_copies)


def _detect(
    index: ScanIndex,
    seed: int,
    progress: Progress | None,
    near_threshold: float,
    memo: IssueMemo | None,
    edited_copies: bool = True,
) -> IssueReport:
    tick = _Ticker(progress)
    quality = find_quality_issues(index, memo=memo)
    tick()
    valid = np.flatnonzero(index.valid)
    k = _graph_k(len(valid))
    if memo is None:
        graph = neighbor_graph(index.embeddings, valid, k, seed=seed)
    else:
        graph = memo_graph(index.embeddings, valid, k, memo, seed=seed)
    tick()
    explained = quality.scores[list(EXCLUDED_BY[1:])].to_numpy().max(axis=1) >= 0.5
    clean = np.flatnonzero(index.valid & ~explained)
    odd_quality = quality.scores[list(QUALITY_ISSUES)].to_numpy().max(axis=1) >= 0.5
    # Duplicates and outliers both read the graph and neither needs the other: the outliers
    # run on a second thread beside the duplicates (numpy releases the GIL in its loops).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="recipe-outliers") as pool:
        later = pool.submit(find_outliers, index, rows=clean, graph=graph, seed=seed,
                            odd_quality=odd_quality, memo=memo)  # fmt: skip
        duplicates = find_duplicates(
            index,
            graph=graph,
            seed=seed,
            near_threshold=near_threshold,
            memo=memo,
            edited_copies=edited_copies,
        )
        tick()
        outliers = later.result()
    tick()
    groups = duplicate_components(len(index), *_links(index, duplicates))
    strays = outliers.scores["score"].to_numpy() >= 0.5
    labels = find_label_issues(index, rows=clean[~strays[clean]], groups=groups, graph=graph,
                               seed=seed, memo=memo)  # fmt: skip
    tick()
    balance = find_class_imbalance(index)
    tick()
    frames = [quality.issues, duplicates.issues, outliers.issues, labels.issues, balance.issues]
    table = _with_paths(concat_issues(frames), index)
    log.info("%d issue rows over %d samples", len(table), len(index))
    return IssueReport(table, quality, duplicates, outliers, labels, balance, graph)


def _graph_k(n_valid: int) -> int:
    return max(NEAR_K, VOTE_K, outlier_k(n_valid)) + SPARE


def _links(
    index: ScanIndex, duplicates: DuplicateResult
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact groups and near links as row numbers, for `duplicate_components`."""
    row_of = pd.Series(np.arange(len(index)), index=index.table["sample_id"].to_numpy())
    a = row_of.loc[duplicates.pairs["sample_id_a"].to_numpy()].to_numpy()
    b = row_of.loc[duplicates.pairs["sample_id_b"].to_numpy()].to_numpy()
    return exact_groups(index.table), a, b


class _Ticker:
    def __init__(self, progress: Progress | None) -> None:
        self.progress, self.done = progress, 0

    def __call__(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, len(STAGES))


def _with_paths(rows: pd.DataFrame, index: ScanIndex) -> pd.DataFrame:
    meta = index.table[["sample_id", "path", "label"]]
    out = rows.merge(meta, on="sample_id", how="left", validate="many_to_one")
    out = out.sort_values(["issue", "score", "path"], ascending=[True, False, True], kind="stable")
    return out[list(ISSUE_COLUMNS)].reset_index(drop=True)
