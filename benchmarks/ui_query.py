"""Browse-page query speed on a synthetic 1M-row scan index (target: < 300 ms per interaction).

    python benchmarks/ui_query.py               # 1M rows
    python benchmarks/ui_query.py --rows 200000 # a quicker run

Every interaction on the Browse / Distributions pages is one `recipe_core.explore.query.query` call
(filter + sort + one page). This prints, side by side for each typical interaction:

* recipe: `query(sample_table, spec, sort_by=..., page=...)` -- vectorised masks on the table
  prepared once per scan, then a top-k (`np.argpartition`) instead of a full sort;
* naive: the obvious pandas code on the same prepared frame -- boolean filter,
  `sort_values(kind="stable")`, `iloc` of the page;
* the ratio naive / recipe (higher = faster than naive), and whether both returned the same rows.

The one-off cost of `sample_table` (per-sample issue columns) is printed too: the app pays it
once per scan, cached with st.cache_resource. Times are the median of --repeat runs, one thread.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd

from recipe_core.explore.query import Range, SampleFilter, SampleTable, query, sample_table

ISSUES = ("outlier", "near_duplicate", "exact_duplicate", "label_issue", "dark", "blurry")
PER_PAGE = 50


def synthetic_index(n: int, *, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An index table shaped like a real scan's (100 classes, 3 splits) and ~6 % issue rows."""
    rng = np.random.default_rng(seed)
    labels = np.asarray([f"class_{c:03d}" for c in range(100)])[rng.integers(0, 100, n)]
    splits = np.asarray(["train", "val", "test"])[rng.choice(3, n, p=[0.8, 0.1, 0.1])]
    table = pd.DataFrame(
        {
            "sample_id": rng.permutation(np.arange(n, dtype=np.int64) * 7919 + 13),
            "path": pd.Series(
                [
                    f"{s}/{lab}/{i:07d}.jpg"
                    for i, (s, lab) in enumerate(zip(splits, labels, strict=True))
                ],
                dtype="str",
            ),
            "label": pd.Series(labels, dtype="str"),
            "split": pd.Series(splits, dtype="str"),
            "width": rng.choice([224, 256, 320, 640], n).astype(np.int32),
            "height": rng.choice([224, 256, 240, 480], n).astype(np.int32),
            "file_bytes": rng.integers(2_000, 200_000, n),
            "brightness": rng.beta(5, 5, n).astype(np.float32),
            "contrast": rng.beta(2, 8, n).astype(np.float32),
            "blur": rng.gamma(2.0, 50.0, n).astype(np.float32),
            "entropy": (8 * rng.beta(8, 2, n)).astype(np.float32),
        }
    )
    flagged = rng.random((n, len(ISSUES))) < 0.01
    rows, kind = np.nonzero(flagged)
    issues = pd.DataFrame(
        {
            "sample_id": table["sample_id"].to_numpy()[rows],
            "issue": np.asarray(ISSUES)[kind],
            "score": rng.uniform(0.5, 1.0, len(rows)),
        }
    )
    return table, issues


INTERACTIONS: list[tuple[str, SampleFilter, str | None, bool, int]] = [
    ("open page 1 (no filter, table order)", SampleFilter(), None, False, 1),
    ("sort by outlier score", SampleFilter(), "score_outlier", True, 1),
    ("sort by brightness, page 3", SampleFilter(), "brightness", False, 3),
    (
        "class + split filter, sort by blur",
        SampleFilter(labels=("class_007", "class_042"), splits=("train",)),
        "blur",
        True,
        1,
    ),
    (
        "issue filter + min score, sort by score",
        SampleFilter(issues=("near_duplicate", "label_issue"), min_score=0.7),
        "max_score",
        True,
        1,
    ),
    (
        "histogram bar (range + class)",
        SampleFilter(
            labels=("class_010",), ranges=(Range("brightness", 0.4, 0.45, include_high=False),)
        ),
        "brightness",
        False,
        1,
    ),
    ("path text search, sort by path", SampleFilter(path_contains="CLASS_05"), "path", False, 1),
    ("sort by path (string), page 200", SampleFilter(), "path", True, 200),
]


def naive(
    frame: pd.DataFrame, spec: SampleFilter, sort_by: str | None, descending: bool, page: int
) -> pd.DataFrame:
    """What one would write first: boolean filter, full stable sort, slice."""
    keep = pd.Series(True, index=frame.index)
    if spec.labels:
        keep &= frame["label"].isin(spec.labels)
    if spec.splits:
        keep &= frame["split"].isin(spec.splits)
    if spec.issues or spec.min_score > 0:
        cols = [f"score_{i}" for i in spec.issues] or [f"score_{i}" for i in ISSUES]
        keep &= frame[cols].max(axis=1) >= spec.min_score
    for r in spec.ranges:
        keep &= (frame[r.column] >= r.low) & (frame[r.column] < r.high)
    if spec.path_contains:
        keep &= frame["path"].str.contains(spec.path_contains, case=False, regex=False)
    hits = frame[keep]
    if sort_by is not None:
        hits = hits.sort_values(sort_by, ascending=not descending, kind="stable")
    return hits.iloc[(page - 1) * PER_PAGE : page * PER_PAGE]


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    table, issues = synthetic_index(args.rows)
    start = time.perf_counter()
    prepared: SampleTable = sample_table(table, issues)
    print(
        f"{args.rows:,} rows, {len(issues):,} issue rows; sample_table (once per scan): "
        f"{time.perf_counter() - start:.2f} s"
    )
    print(f"{'interaction':42s} {'recipe ms':>10s} {'naive ms':>10s} {'ratio':>7s}  same rows")
    worst = 0.0
    for name, spec, sort_by, descending, page in INTERACTIONS:
        if sort_by is not None:
            prepared.sort_key(sort_by)  # the app's first sort by a column ranks it once
        fast, got = timed(
            lambda s=spec, c=sort_by, d=descending, p=page: query(
                prepared, s, sort_by=c, descending=d, page=p, per_page=PER_PAGE
            ),
            args.repeat,
        )
        slow, want = timed(
            lambda s=spec, c=sort_by, d=descending, p=page: naive(prepared.frame, s, c, d, p),
            args.repeat,
        )
        same = got.rows["sample_id"].tolist() == want["sample_id"].tolist()  # type: ignore[attr-defined]
        worst = max(worst, fast)
        print(f"{name:42s} {1e3 * fast:10.1f} {1e3 * slow:10.1f} {slow / fast:6.1f}x  {same}")
    verdict = "OK" if worst < 0.3 else "ABOVE TARGET"
    print(f"slowest interaction: {1e3 * worst:.0f} ms (target < 300 ms): {verdict}")


if __name__ == "__main__":
    main()
