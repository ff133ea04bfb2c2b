"""Shared vocabulary and helpers of the issue detectors: the issue table, robust scores."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

import numpy as np
import pandas as pd

Progress = Callable[[int, int], None]  # (done, total)


class IssueType(StrEnum):
    """The `issue` column of issues.csv (a DESIGN.md contract: add types, never rename)."""

    EXACT_DUPLICATE = "exact_duplicate"
    NEAR_DUPLICATE = "near_duplicate"
    CONFLICTING_LABELS = "conflicting_labels"
    CROSS_SPLIT_DUPLICATE = "cross_split_duplicate"
    CORRUPT = "corrupt"
    OUTLIER = "outlier"
    LABEL_ISSUE = "label_issue"
    DARK = "dark"
    LIGHT = "light"
    LOW_INFORMATION = "low_information"
    BLURRY = "blurry"
    ODD_SIZE = "odd_size"
    ODD_ASPECT_RATIO = "odd_aspect_ratio"
    CLASS_IMBALANCE = "class_imbalance"
    OVERLAPPING_CLASSES = "overlapping_classes"


# plain strings, not members: widget options and DataFrame cells stay ordinary str
ISSUE_TYPES: tuple[str, ...] = tuple(t.value for t in IssueType)
QUALITY_ISSUES: tuple[str, ...] = tuple(t.value for t in (
    IssueType.DARK, IssueType.LIGHT, IssueType.LOW_INFORMATION, IssueType.BLURRY,
    IssueType.ODD_SIZE, IssueType.ODD_ASPECT_RATIO))  # fmt: skip
DUPLICATE_ISSUES: tuple[str, ...] = tuple(t.value for t in (
    IssueType.EXACT_DUPLICATE, IssueType.NEAR_DUPLICATE, IssueType.CONFLICTING_LABELS,
    IssueType.CROSS_SPLIT_DUPLICATE))  # fmt: skip
# findings about a class, not its files: every sample of the class carries the row
CLASS_ISSUES: tuple[str, ...] = (IssueType.CLASS_IMBALANCE.value,
                                 IssueType.OVERLAPPING_CLASSES.value)  # fmt: skip

# Columns of every family's `issues` frame; `find_issues` adds path and label from the index.
FAMILY_COLUMNS: tuple[str, ...] = ("sample_id", "issue", "score", "group", "detail")
ISSUE_COLUMNS: tuple[str, ...] = (
    "sample_id", "path", "label", "issue", "score", "group", "detail",
)  # fmt: skip


def issue_frame(
    sample_ids: np.ndarray,
    issue: str,
    scores: np.ndarray,
    details: list[str],
    groups: list[str] | None = None,
) -> pd.DataFrame:
    """Rows of one issue type in the family layout; scores are clipped into [0, 1]."""
    n = len(sample_ids)
    return pd.DataFrame(
        {
            "sample_id": np.asarray(sample_ids, dtype=np.int64),
            "issue": [issue] * n,
            "score": np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0),
            "group": groups if groups is not None else [""] * n,
            "detail": details,
        },
        columns=list(FAMILY_COLUMNS),
    )


def empty_issues() -> pd.DataFrame:
    return issue_frame(np.zeros(0, dtype=np.int64), "", np.zeros(0), [])


def concat_issues(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty_issues()
    return pd.concat(frames, ignore_index=True)


def severity(excess: np.ndarray, threshold: float | np.ndarray) -> np.ndarray:
    """Map how far past normal a value is onto [0, 1): 0.5 exactly at `threshold`, -> 1 beyond.

    Every detector flags a sample when its severity reaches 0.5, so scores are comparable
    across issue types and a higher score always means further past the line.
    """
    x = np.maximum(np.asarray(excess, dtype=np.float64), 0.0) / np.maximum(threshold, 1e-12)
    out: np.ndarray = 1.0 - np.power(0.5, x)
    return out


def robust_center_scale(values: np.ndarray, floor: float) -> tuple[float, float]:
    """Median and MAD-based standard deviation (1.4826 * MAD), the scale at least `floor`.

    The floor matters for datasets where most samples share one value (every image 32x32):
    the MAD is then 0 and any tiny difference would otherwise look infinitely unusual.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return 0.0, floor
    center = float(np.median(v))
    scale = 1.4826 * float(np.median(np.abs(v - center)))
    return center, max(scale, floor)


def sorted_distinct(values: np.ndarray) -> np.ndarray:
    """`np.unique(values)` of a 1-d numeric array (sorted distinct values) by one sort. NumPy
    2.3+ finds the distinct values of a plain `np.unique` with a hash table, then sorts them:
    49 ms for 250k distinct 64-bit keys against 3.5 ms for a sort, and the near-duplicate
    pairs' keys are nearly all distinct."""
    ordered = np.sort(np.ravel(values))
    out: np.ndarray = ordered[first_in_runs(ordered)]
    return out


def first_in_runs(ordered: np.ndarray) -> np.ndarray:
    """(M,) bool: where each run of equal values of the sorted 1-d `ordered` begins."""
    first = np.empty(len(ordered), dtype=bool)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return first


def rank_in_runs(ordered: np.ndarray) -> np.ndarray:
    """(M,) int64: each entry's place in its run of equal values of the sorted 1-d `ordered`
    (0 for the first of each)."""
    out: np.ndarray = np.arange(len(ordered)) - np.searchsorted(ordered, ordered, side="left")
    return out
