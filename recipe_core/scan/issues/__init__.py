"""Issue detectors: one module per family, each returning a result and never mutating the index.

`find_issues(index)` runs them all and returns the issue table written to `issues.csv`;
`detect_issues(index)` returns the per-family results too (suggested labels, group members,
severities for every sample, the shared neighbour graph).
"""

from recipe_core.scan.issues._common import (
    CLASS_ISSUES,
    DUPLICATE_ISSUES,
    ISSUE_COLUMNS,
    ISSUE_TYPES,
    QUALITY_ISSUES,
    IssueType,
)
from recipe_core.scan.issues.balance import BalanceResult, find_class_imbalance
from recipe_core.scan.issues.duplicates import DuplicateResult, find_duplicates
from recipe_core.scan.issues.find import IssueReport, detect_issues, find_issues
from recipe_core.scan.issues.labels import LabelIssueResult, find_label_issues
from recipe_core.scan.issues.neighbors import NeighborGraph, nearest_neighbors, neighbor_graph
from recipe_core.scan.issues.outliers import OutlierResult, find_outliers
from recipe_core.scan.issues.pixel_match import aligned_distance
from recipe_core.scan.issues.quality import QualityResult, find_quality_issues

__all__ = [
    "CLASS_ISSUES",
    "DUPLICATE_ISSUES",
    "ISSUE_COLUMNS",
    "ISSUE_TYPES",
    "QUALITY_ISSUES",
    "BalanceResult",
    "DuplicateResult",
    "IssueReport",
    "IssueType",
    "LabelIssueResult",
    "NeighborGraph",
    "OutlierResult",
    "QualityResult",
    "aligned_distance",
    "detect_issues",
    "find_class_imbalance",
    "find_duplicates",
    "find_issues",
    "find_label_issues",
    "find_outliers",
    "find_quality_issues",
    "nearest_neighbors",
    "neighbor_graph",
]
