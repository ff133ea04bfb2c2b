"""Invariants over arbitrary inputs: scores in [0, 1], known issue types, the index untouched,
and no crash on tiny, unlabelled, single-class or broken datasets."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recipe_core.scan.issues import ISSUE_COLUMNS, ISSUE_TYPES, detect_issues, find_issues
from recipe_core.scan.issues._common import severity
from tests.issues.arrays import index_from_arrays


@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=50),
    st.floats(1e-9, 1e3),
)
def test_severity_is_in_unit_interval_and_half_at_threshold(xs: list[float], t: float) -> None:
    s = severity(np.asarray(xs), t)
    assert ((s >= 0) & (s <= 1)).all()
    assert severity(np.asarray([t]), t)[0] == 0.5
    order = np.argsort(xs, kind="stable")
    assert (np.diff(s[order]) >= 0).all()  # monotone


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), n=st.integers(1, 40))
def test_any_dataset_yields_a_valid_issue_table(data: st.DataObject, n: int) -> None:
    seed = data.draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    kind = data.draw(st.sampled_from(["noise", "flat", "copies"]))
    if kind == "noise":
        pixels = rng.integers(0, 256, (n, 32, 32), dtype=np.uint8)
    elif kind == "flat":
        pixels = np.repeat(rng.integers(0, 256, (n, 1, 1), dtype=np.uint8), 32, 1).repeat(32, 2)
    else:
        pixels = np.repeat(rng.integers(0, 256, (1, 32, 32), dtype=np.uint8), n, axis=0)
    labels = data.draw(st.lists(st.sampled_from(["", "a", "b", "c"]), min_size=n, max_size=n))
    splits = data.draw(st.lists(st.sampled_from(["", "train", "val"]), min_size=n, max_size=n))
    broken = set(data.draw(st.lists(st.integers(0, n - 1), max_size=3)))
    index = index_from_arrays(pixels, labels, splits, broken=broken)
    before = index.table.copy()
    before_pix, before_emb = index.pixels.copy(), index.embeddings.copy()
    table = find_issues(index, seed=seed)
    assert tuple(table.columns) == ISSUE_COLUMNS
    assert set(table["issue"]) <= set(ISSUE_TYPES)
    assert table["score"].between(0, 1).all()
    assert set(table["sample_id"]) <= set(index.table["sample_id"])
    assert (table.loc[table["issue"] == "corrupt", "score"] == 1).all()
    assert (table["issue"] == "corrupt").sum() == len(broken)
    assert index.table.equals(before)  # never mutated
    assert (index.pixels == before_pix).all() and (index.embeddings == before_emb).all()
    if kind == "copies" and n - len(broken) >= 2:
        exact = table[table["issue"] == "exact_duplicate"]
        assert len(exact) == n - len(broken) and exact["group"].nunique() == 1


def test_progress_reports_every_stage() -> None:
    rng = np.random.default_rng(0)
    index = index_from_arrays(rng.integers(0, 256, (30, 32, 32), dtype=np.uint8), ["a", "b"] * 15)
    calls: list[tuple[int, int]] = []
    detect_issues(index, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 6) for i in range(1, 7)]


def test_same_seed_same_table() -> None:
    rng = np.random.default_rng(1)
    index = index_from_arrays(
        rng.integers(0, 256, (60, 32, 32), dtype=np.uint8), ["a", "b", "c"] * 20
    )
    a, b = find_issues(index, seed=3), find_issues(index, seed=3)
    assert a.equals(b)
