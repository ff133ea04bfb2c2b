"""`recipe_core.explore.query` against a trusted answer: pandas filter + stable sort + iloc."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recipe_core.errors import ConfigError
from recipe_core.explore.query import (
    ISSUE_SCORE,
    Range,
    SampleFilter,
    adjacent,
    filter_mask,
    query,
    sample_table,
    top_k_order,
)

ISSUES = ("outlier", "dark", "exact_duplicate")


def make_index(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A synthetic index with ties, NaN and mixed-case paths, and a random issue table."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(["cat", "dog", "<b>bold</b>", "07"], n)
    table = pd.DataFrame(
        {
            "sample_id": rng.permutation(10 * n)[:n].astype(np.int64) + 1,
            "path": [
                f"{'Train' if i % 3 else 'val'}/{lab}/{i:05d}[x].png"
                for i, lab in enumerate(labels)
            ],
            "label": labels,
            "split": np.where(rng.random(n) < 0.7, "train", "val"),
            "brightness": rng.integers(0, 5, n).astype(np.float32) / 4,  # many ties
            "blur": np.where(rng.random(n) < 0.1, np.nan, rng.random(n)),  # some missing
            "width": rng.choice([32, 64], n).astype(np.int32),
        }
    )
    rows = rng.random((n, len(ISSUES))) < 0.15
    sid, kind = np.nonzero(rows)
    issues = pd.DataFrame(
        {
            "sample_id": table["sample_id"].to_numpy()[sid],
            "issue": np.asarray(ISSUES)[kind],
            "score": rng.random(len(sid)),
        }
    )
    # a second row of the same (sample, issue), as duplicate groups produce: the max counts
    extra = issues.head(5).assign(score=0.01)
    return table, pd.concat([issues, extra], ignore_index=True)


def reference(
    table: pd.DataFrame,
    issues: pd.DataFrame,
    spec: SampleFilter,
    sort_by: str | None,
    descending: bool,
    page: int,
    per_page: int,
) -> tuple[list[int], int]:
    """The naive answer: per-sample issue scores by groupby, then filter, sort, slice."""
    worst = issues.groupby(["sample_id", "issue"])["score"].max().unstack()
    frame = table.join(worst, on="sample_id")
    keep = pd.Series(True, index=frame.index)
    if spec.labels:
        keep &= frame["label"].isin(spec.labels)
    if spec.splits:
        keep &= frame["split"].isin(spec.splits)
    if spec.issues or spec.min_score > 0:
        cols = [c for c in (spec.issues or ISSUES) if c in frame.columns]
        keep &= frame[cols].max(axis=1) >= spec.min_score if cols else False
    for r in spec.ranges:
        high = frame[r.column] <= r.high if r.include_high else frame[r.column] < r.high
        keep &= (frame[r.column] >= r.low) & high
    if spec.path_contains:
        keep &= frame["path"].str.lower().str.contains(spec.path_contains.lower(), regex=False)
    if spec.flagged is not None:
        keep &= frame["sample_id"].isin(issues["sample_id"]) == spec.flagged
    if spec.sample_ids:
        keep &= frame["sample_id"].isin(spec.sample_ids)
    hits = frame[keep]
    if sort_by is not None:
        hits = hits.sort_values(
            sort_by, ascending=not descending, kind="stable", na_position="last"
        )
    n_pages = max(1, -(-len(hits) // per_page))
    page = min(max(page, 1), n_pages)
    return hits.index[(page - 1) * per_page : page * per_page].tolist(), len(hits)


SPECS = [
    SampleFilter(),
    SampleFilter(labels=("cat", "<b>bold</b>")),
    SampleFilter(splits=("val",), issues=("outlier",)),
    SampleFilter(issues=("dark", "exact_duplicate"), min_score=0.5),
    SampleFilter(min_score=0.8),
    SampleFilter(ranges=(Range("brightness", 0.25, 0.75, include_high=False),)),
    SampleFilter(ranges=(Range("blur", 0.2, 0.6), Range("width", 64, 64))),
    SampleFilter(path_contains="TRAIN/dog/000"),
    SampleFilter(path_contains="[x]"),  # regex characters are literal
    SampleFilter(flagged=False, labels=("07",)),
    SampleFilter(flagged=True),
    SampleFilter(sample_ids=tuple(range(1, 3000, 7)), splits=("train",)),
]


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize(
    ("sort_by", "descending", "page"),
    [
        (None, False, 1),
        ("brightness", True, 2),
        ("blur", False, 3),
        ("blur", True, 1),
        ("path", True, 1),
        ("label", False, 4),
        ("score_outlier", True, 1),
        ("width", False, 99),
    ],
)
def test_query_matches_pandas(
    spec: SampleFilter, sort_by: str | None, descending: bool, page: int
) -> None:
    table, issues = make_index(600)
    want, total = reference(
        table, issues, spec, None if sort_by == "score_outlier" else sort_by, descending, page, 25
    )
    if sort_by == "score_outlier":  # the reference's column is named after the issue
        worst = issues.groupby(["sample_id", "issue"])["score"].max().unstack()
        frame = table.join(worst, on="sample_id")
        keep = filter_mask(sample_table(table, issues), spec)
        want = (
            frame[keep]
            .sort_values("outlier", ascending=False, kind="stable", na_position="last")
            .index[:25]
            .tolist()
        )
    got = query(
        sample_table(table, issues),
        spec,
        sort_by=sort_by,
        descending=descending,
        page=page,
        per_page=25,
    )
    assert got.total == total
    assert got.positions.tolist() == want
    assert got.rows["sample_id"].tolist() == table["sample_id"].to_numpy()[want].tolist()


def test_sample_table_summarises_issues_per_sample() -> None:
    table, issues = make_index(300, seed=3)
    st_ = sample_table(table, issues)
    worst = issues.groupby("sample_id")["score"].max()
    got = st_.frame.set_index("sample_id")
    np.testing.assert_allclose(got.loc[worst.index, "max_score"], worst.to_numpy())
    assert got.loc[~got.index.isin(issues["sample_id"]), "max_score"].isna().all()
    counts = issues.drop_duplicates(["sample_id", "issue"]).groupby("sample_id").size()
    assert (got.loc[counts.index, "n_issues"].to_numpy() == counts.to_numpy()).all()
    sid = int(issues["sample_id"].iloc[0])
    names = sorted(set(issues.loc[issues["sample_id"] == sid, "issue"]))
    assert got.loc[sid, "issues"] == ", ".join(names)
    assert st_.issue_types == tuple(sorted(ISSUES))
    assert len(st_.frame) == len(table)  # one row per sample, never one per issue


def test_issue_rows_of_unknown_samples_are_ignored() -> None:
    table, issues = make_index(50)
    stray = pd.DataFrame({"sample_id": [-5], "issue": ["outlier"], "score": [1.0]})
    st_ = sample_table(table, pd.concat([issues, stray], ignore_index=True))
    assert len(st_.frame) == 50


def test_issue_filter_for_an_issue_nobody_has_is_empty() -> None:
    table, issues = make_index(100)
    got = query(sample_table(table, issues), SampleFilter(issues=("corrupt",)))
    assert got.total == 0 and len(got.rows) == 0 and got.n_pages == 1


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(st.integers(-3, 3).map(float), st.just(float("nan"))), max_size=80),
    st.integers(0, 90),
)
def test_top_k_order_is_a_stable_argsort_with_nan_last(values: list[float], k: int) -> None:
    key = np.asarray(values, dtype=np.float64)
    order = np.argsort(key, kind="stable")  # numpy already puts NaN last
    assert top_k_order(key, k).tolist() == order[:k].tolist()


def test_top_k_partition_path_on_a_large_key() -> None:
    rng = np.random.default_rng(1)
    key = rng.integers(0, 1000, 50_000).astype(np.float64)
    key[rng.random(50_000) < 0.01] = np.nan
    assert top_k_order(key, 300).tolist() == np.argsort(key, kind="stable")[:300].tolist()


def test_bad_queries_name_the_fix() -> None:
    table = sample_table(*make_index(20))
    with pytest.raises(ConfigError, match=r"Cannot sort by 'nope'.*Sortable columns: sample_id"):
        query(table, sort_by="nope")
    with pytest.raises(ConfigError, match=r"'label': not a numeric column.*brightness"):
        query(table, SampleFilter(ranges=(Range("label", 0, 1),)))
    with pytest.raises(ConfigError, match=r"per_page=0; choose 1\.\.1000"):
        query(table, per_page=0)
    with pytest.raises(ConfigError, match=r"min_score=2.*outside \[0, 1\]"):
        SampleFilter(min_score=2)


def test_issue_score_sort_ranks_by_the_filtered_issues_only() -> None:
    """Sorting by ISSUE_SCORE under an issue filter follows the worst score among those issue
    types, not the sample's worst issue overall (an outlier that is also a duplicate must not
    jump ahead of a surer outlier)."""
    index, issues = make_index(300, seed=3)
    table = sample_table(index, issues)
    chosen = ("outlier", "dark")
    page = query(table, SampleFilter(issues=chosen), sort_by=ISSUE_SCORE, descending=True,
                 per_page=1000)  # fmt: skip
    rows = issues[issues["issue"].isin(chosen)]
    want = rows.groupby("sample_id")["score"].max().sort_values(ascending=False, kind="stable")
    assert page.rows["sample_id"].tolist() == want.index.tolist()
    assert np.allclose(page.rows[ISSUE_SCORE].to_numpy(), want.to_numpy())
    overall = page.rows["max_score"].to_numpy()
    assert not np.all(np.diff(overall) <= 0)  # max_score would have ordered them differently


@pytest.mark.parametrize("sort_by", [None, "blur", "label", ISSUE_SCORE])
def test_adjacent_walks_the_query_order(sort_by: str | None) -> None:
    """Previous / next from every row retrace the full query's order (the trusted answer),
    across page boundaries, with None at both ends."""
    index, issues = make_index(120, seed=5)
    table = sample_table(index, issues)
    spec = SampleFilter(splits=("train",))
    ids = query(table, spec, sort_by=sort_by, descending=True, per_page=1000)
    order = ids.rows["sample_id"].tolist()
    for i, sid in enumerate(order):
        before, after = adjacent(table, spec, sid, sort_by=sort_by, descending=True)
        assert before == (order[i - 1] if i else None)
        assert after == (order[i + 1] if i + 1 < len(order) else None)
    outside = int(index.loc[index["split"] == "val", "sample_id"].iloc[0])
    assert adjacent(table, spec, outside, sort_by=sort_by) == (None, None)


def test_only_ids_keeps_exactly_those_and_an_empty_tuple_keeps_none() -> None:
    index, issues = make_index(50)
    table = sample_table(index, issues)
    some = tuple(int(s) for s in index["sample_id"][[4, 9]])
    assert set(query(table, SampleFilter(only_ids=some)).rows["sample_id"]) == set(some)
    assert query(table, SampleFilter(only_ids=())).total == 0  # a tag nobody carries
    assert query(table, SampleFilter()).total == 50
