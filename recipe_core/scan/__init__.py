"""The scan: dataset -> per-sample index -> issues, the recipe's first step ("become one with
the data").

    index/      decode every file once into a cached per-sample index (features, embeddings)
    issues/     the issue detectors over that index (duplicates, outliers, label issues, ...)
    run.py      `scan()`, the entry point: index, then issues, then a `ScanResult`
    result.py   `ScanResult` / `ScanSummary`, and writing and loading them
    ray_data.py the same per-file work on a Ray cluster with Ray Data
"""

from recipe_core.scan.result import (
    ISSUES_CSV_COLUMNS,
    ScanResult,
    ScanSummary,
    load_scan,
    write_result,
    write_scan,
)
from recipe_core.scan.run import ScanProgress, scan

__all__ = [
    "ISSUES_CSV_COLUMNS",
    "ScanProgress",
    "ScanResult",
    "ScanSummary",
    "load_scan",
    "scan",
    "write_result",
    "write_scan",
]
