"""Class imbalance: classes with far fewer samples than the typical class of their split.

Counted per split (train and val are judged separately: a class missing from train hurts
training, one missing from val makes its metric noise); datasets without splits count once.
A class is under-represented when its count is at most IMBALANCE_RATIO x the median class
count of that split. issues.csv is per sample, so every sample of such a class gets a row;
score = 1 - count / median (0.5 at the ratio, -> 1 for a class almost absent).
`counts` also lists classes with zero samples in a split, which have no sample to carry a row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recipe_core.scan.index.schema import ScanIndex
from recipe_core.scan.issues._common import issue_frame

IMBALANCE_RATIO = 0.5  # a class at or below this fraction of the median class count


@dataclass(frozen=True)
class BalanceResult:
    # split, label, count, median (of the split's class counts), ratio, imbalanced (bool)
    counts: pd.DataFrame = field(repr=False)
    issues: pd.DataFrame = field(repr=False)  # family rows: sample_id, issue, score, group, detail


def find_class_imbalance(index: ScanIndex, *, ratio: float = IMBALANCE_RATIO) -> BalanceResult:
    """Per-split class counts and the samples of under-represented classes."""
    table = index.table[index.table["label"] != ""]
    classes = sorted(table["label"].unique())
    cells = pd.MultiIndex.from_product(
        [sorted(table["split"].unique()), classes], names=["split", "label"]
    )  # every (split, class), so a class absent from a split shows up with count 0
    counts = (
        table.groupby(["split", "label"]).size().reindex(cells, fill_value=0)
        .rename("count").reset_index()
    )  # fmt: skip
    median = counts.groupby("split")["count"].transform("median").astype(float)
    counts = counts.assign(median=median, ratio=counts["count"] / median.clip(lower=1e-9))
    counts["imbalanced"] = (counts["ratio"] <= ratio) & (len(classes) >= 2)
    bad = counts[counts["imbalanced"] & (counts["count"] > 0)]
    rows = table.merge(bad, on=["split", "label"], how="inner")
    where = [f" in {s}" if s else "" for s in rows["split"]]
    details = [
        f"class {lab!r} has {c} samples{w}; the median class has {m:g}"
        for lab, c, w, m in zip(rows["label"], rows["count"], where, rows["median"], strict=True)
    ]
    score = 1.0 - rows["ratio"].to_numpy(dtype=np.float64)
    return BalanceResult(
        counts=counts,
        issues=issue_frame(rows["sample_id"].to_numpy(), "class_imbalance", score, details),
    )
