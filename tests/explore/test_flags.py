"""flags_in_batch: which samples of a batch a scan's issue table flags, in batch order."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recipe_core.explore.flags import FLAG_COLUMNS, flags_in_batch


def issues() -> pd.DataFrame:
    return pd.DataFrame({
        "sample_id": [7, 7, 3, 9, 42],
        "path": ["a/7.png", "a/7.png", "a/3.png", "b/9.png", "z/42.png"],
        "label": ["a", "a", "a", "b", "z"],
        "issue": ["near_duplicate", "label_issue", "outlier", "blurry", "corrupt"],
        "score": [0.6, 0.9, 0.7, 0.55, 1.0],
        "group": ["dup-1", "", "", "", ""],
        "detail": ["twin of a/8.png", "given a, model says b", "far", "soft", "bad file"],
    })  # fmt: skip


def test_flags_in_batch_order_with_the_worst_issue_first() -> None:
    out = flags_in_batch(issues(), np.array([5, 9, 7, 3, 11]))
    assert list(out.columns) == list(FLAG_COLUMNS)
    assert out["position"].tolist() == [1, 2, 3]
    assert out["sample_id"].tolist() == [9, 7, 3]
    assert out.loc[1, "issues"] == "label_issue, near_duplicate"  # most severe first
    assert out.loc[1, "worst"] == 0.9 and out.loc[1, "detail"] == "given a, model says b"
    assert 42 not in out["sample_id"].tolist()  # flagged, but not in this batch


def test_a_clean_batch_has_no_rows_and_the_columns() -> None:
    out = flags_in_batch(issues(), np.array([1, 2]))
    assert out.empty and list(out.columns) == list(FLAG_COLUMNS)


def test_findings_about_a_class_mark_no_image() -> None:
    """Every image of an under-represented or overlapping class carries a row; marking them
    all would bury the images that have a problem of their own."""
    table = issues()
    extra = pd.DataFrame({"sample_id": [5, 5, 7], "path": ["a/5.png"] * 2 + ["a/7.png"],
                          "label": ["a"] * 3, "group": [""] * 3, "detail": ["class"] * 3,
                          "issue": ["class_imbalance", "overlapping_classes",
                                    "overlapping_classes"], "score": [0.99] * 3})  # fmt: skip
    out = flags_in_batch(pd.concat([table, extra], ignore_index=True), np.array([5, 7]))
    assert out["sample_id"].tolist() == [7]
    assert out.loc[0, "issues"] == "label_issue, near_duplicate"
