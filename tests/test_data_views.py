"""Display summaries against trusted answers: numpy's histogram and quantiles, brute-force
neighbours, and hand-built duplicate groups."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from recipe_core.data import open_dataset
from recipe_core.data.overview import summarize
from recipe_core.errors import ConfigError
from recipe_core.explore.query import sample_table
from recipe_core.explore.views import (
    OTHER,
    box_stats,
    duplicate_groups,
    histogram,
    label_suggestions,
    nearest_samples,
    overview_from_index,
)
from recipe_core.scan import scan
from recipe_core.scan.issues.duplicates import EDITED
from recipe_core.scan.issues.neighbors import nearest_neighbors
from tests.conftest import write_image_folder


def table_with(values: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    n = len(values)
    return pd.DataFrame(
        {
            "sample_id": np.arange(n, dtype=np.int64) + 100,
            "path": [f"{lab}/{i}.png" for i, lab in enumerate(labels)],
            "label": labels,
            "split": np.where(np.arange(n) % 4 == 0, "val", "train"),
            "brightness": values,
        }
    )


def test_histogram_matches_numpy_per_class_and_groups_the_rest() -> None:
    rng = np.random.default_rng(0)
    labels = rng.choice(list("abcdefg"), 2000, p=[0.3, 0.2, 0.15, 0.15, 0.1, 0.05, 0.05])
    values = rng.normal(0.5, 0.1, 2000)
    values[:7] = np.nan
    table = sample_table(table_with(values, labels), pd.DataFrame(columns=["sample_id", "issue",
                                                                             "score"]))  # fmt: skip
    mask = np.arange(2000) % 3 != 0
    h = histogram(table, "brightness", mask, bins=25, max_groups=4)
    finite = mask & np.isfinite(values)
    edges = np.histogram_bin_edges(values[finite], bins=25)
    np.testing.assert_allclose(h.edges, edges)
    assert h.groups[:2] == ("a", "b") and len(h.groups) == 4 and h.groups[-1] == OTHER
    for name, counts in zip(h.groups, h.counts, strict=True):
        members = (
            finite & ~np.isin(labels, h.groups[:-1]) if name == OTHER else finite & (labels == name)
        )
        want, _ = np.histogram(values[members], bins=edges)
        assert counts.tolist() == want.tolist(), name
    assert h.n_missing == int((mask & np.isnan(values)).sum())
    assert h.bin_of(edges[-1]) == 24 and h.bin_of(edges[0]) == 0


def test_box_stats_match_numpy_quantiles() -> None:
    rng = np.random.default_rng(1)
    labels = rng.choice(["x", "y"], 500)
    values = rng.exponential(1.0, 500)
    table = sample_table(table_with(values, labels), pd.DataFrame(columns=["sample_id", "issue",
                                                                             "score"]))  # fmt: skip
    stats = box_stats(table, "brightness", np.ones(500, dtype=bool)).set_index("group")
    for name in ("x", "y"):
        v = values[labels == name]
        q1, med, q3 = np.quantile(v, [0.25, 0.5, 0.75])
        row = stats.loc[name]
        np.testing.assert_allclose([row.q1, row["median"], row.q3], [q1, med, q3])
        assert row.n == len(v)
        assert row.upperfence == v[v <= q3 + 1.5 * (q3 - q1)].max()
        assert row.lowerfence == v[v >= q1 - 1.5 * (q3 - q1)].min()


def test_histogram_refuses_text_columns() -> None:
    table = sample_table(table_with(np.ones(3), np.array(["a", "b", "c"])),
                         pd.DataFrame(columns=["sample_id", "issue", "score"]))  # fmt: skip
    with pytest.raises(ConfigError, match=r"Cannot histogram 'path'.*brightness"):
        histogram(table, "path", np.ones(3, dtype=bool))


def test_duplicate_groups_merge_exact_and_near_groups_and_flag_conflicts_and_leaks() -> None:
    index = pd.DataFrame({"sample_id": [1, 2, 3, 4, 5, 6], "path": list("abcdef"),
                          "label": ["7", "7", "1", "3", "3", "3"],
                          "split": ["train"] * 4 + ["val", "train"]})  # fmt: skip
    issues = pd.DataFrame(
        [
            (1, "exact_duplicate", "exact-1"), (2, "exact_duplicate", "exact-1"),
            (2, "near_duplicate", "dup-1"), (3, "near_duplicate", "dup-1"),  # shares sample 2
            (1, "conflicting_labels", "dup-1"), (3, "conflicting_labels", "dup-1"),
            (4, "exact_duplicate", "exact-2"), (5, "exact_duplicate", "exact-2"),
            (4, "cross_split_duplicate", "dup-2"), (5, "cross_split_duplicate", "dup-2"),
            (6, "outlier", ""),
        ],
        columns=["sample_id", "issue", "group"],
    )  # fmt: skip
    groups = duplicate_groups(issues.assign(score=1.0, detail=""), index)
    members = groups.groupby("group")["sample_id"].apply(set).to_dict()
    assert sorted(members.values(), key=min) == [{1, 2, 3}, {4, 5}]
    first = groups.iloc[0]
    assert first["conflicting"] and not first["leak"] and first["size"] == 3
    leak = groups[groups["sample_id"] == 4].iloc[0]
    assert leak["leak"] and not leak["conflicting"] and leak["n_splits"] == 2
    assert groups[groups["sample_id"] == 2]["issues"].item() == "exact_duplicate, near_duplicate"
    assert duplicate_groups(issues[issues["issue"] == "outlier"], index).empty


def test_duplicate_groups_say_what_kind_of_copy_each_member_is() -> None:
    """The near-duplicate detail's kind ("is its mirror image", an edited copy) becomes the
    member's copy_kind; a plain near copy and an exact one have none; a path holding the
    words of a kind is not taken for one."""
    paths = ["o.jpg", "m.jpg", "is its mirror image.jpg", "e.jpg"]
    index = pd.DataFrame({"sample_id": [1, 2, 3, 4], "label": ["a"] * 4, "split": [""] * 4,
                          "path": paths})  # fmt: skip
    details = [
        "group of 4 near-identical files; closest different one m.jpg is its mirror image "
        "(similarity 0.95)",
        "group of 4 near-identical files; closest different one o.jpg is its mirror image "
        "(similarity 0.95)",
        "group of 4 near-identical files; closest different one is its mirror image.jpg "
        "(similarity 0.97)",
        f"group of 4 near-identical files; closest different one o.jpg is its {EDITED} "
        "(similarity 0.99)",
    ]
    issues = pd.DataFrame({"sample_id": [1, 2, 3, 4], "issue": "near_duplicate",
                           "group": "dup-1", "score": 1.0, "detail": details})  # fmt: skip
    groups = duplicate_groups(issues, index).set_index("sample_id")
    assert groups["copy_kind"].to_dict() == {1: "mirror image", 2: "mirror image", 3: "",
                                             4: EDITED}  # fmt: skip
    assert groups["copy_of"].to_dict() == {1: "m.jpg", 2: "o.jpg", 3: "is its mirror image.jpg",
                                           4: "o.jpg"}  # fmt: skip


def test_label_suggestions_from_detail_or_a_structured_column() -> None:
    details = ["given 9, model says 2 (p=0.96; p(given)=0.00)", "far",
               "given a b, model says c d (p=0.5; p(given)=0.1)"]  # fmt: skip
    issues = pd.DataFrame({"issue": ["label_issue", "outlier", "label_issue"], "detail": details})
    assert label_suggestions(issues).tolist() == ["2", "c d"]
    structured = issues.assign(suggested_label=["x", None, "y"])
    assert label_suggestions(structured).tolist() == ["x", "y"]


def test_nearest_samples_match_the_exact_search() -> None:
    rng = np.random.default_rng(2)
    emb = rng.normal(size=(900, 16)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    valid = rng.random(900) > 0.1
    emb[~valid] = 0
    rows = np.flatnonzero(valid)
    want_i, want_d = nearest_neighbors(emb[rows], 6, queries=emb[rows[5:6]], method="exact")
    got_i, got_d = nearest_samples(emb, int(rows[5]), 5, valid=valid, block=100)
    assert got_i.tolist() == rows[want_i[0][1:]].tolist()  # the exact search includes itself
    np.testing.assert_allclose(got_d, want_d[0][1:], atol=1e-5)


def test_overview_from_the_index_equals_the_header_overview(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "ds", classes=3, per_class=4)
    Image.new("RGB", (20, 10)).save(root / "val" / "class_2" / "wide.png")
    (root / "train" / "class_1" / "bad.png").write_bytes(b"not an image")
    source = open_dataset(root)
    want = summarize(source)
    got = overview_from_index(scan(source, cache=False, workers=0).index.table)
    assert (got.n_samples, got.n_classes, got.n_unreadable) == (
        want.n_samples, want.n_classes, want.n_unreadable)  # fmt: skip
    pd.testing.assert_frame_equal(got.counts, want.counts)
    pd.testing.assert_frame_equal(got.sizes, want.sizes, check_dtype=False)
