"""Duplicates: the fast finder against an all-pairs brute force, and group invariants."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from recipe_core.scan.issues import find_duplicates
from recipe_core.scan.issues.duplicates import duplicate_components, exact_groups
from recipe_core.scan.issues.pixel_match import aligned_distance, is_near
from tests.issues.arrays import index_from_arrays
from tests.issues.conftest import render_digits
from tests.issues.planting import NEAR_EDITS


def reference_components(n: int, links: list[tuple[int, int]]) -> list[set[int]]:
    """Plain union-find: the trusted grouping."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for a, b in links:
        parent[root(a)] = root(b)
    groups: dict[int, set[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), set()).add(i)
    return [g for g in groups.values() if len(g) >= 2]


def as_sets(labels: np.ndarray) -> list[set[int]]:
    return [set(np.flatnonzero(labels == g).tolist()) for g in np.unique(labels[labels >= 0])]


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 40),
    data=st.data(),
)
def test_groups_are_the_connected_components(n: int, data: st.DataObject) -> None:
    exact = np.asarray(data.draw(st.lists(st.integers(-1, 5), min_size=n, max_size=n)))
    exact = np.where(np.bincount(exact + 1, minlength=7)[exact + 1] >= 2, exact, -1)
    exact[exact < 0] = -1
    links = data.draw(
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=30)
    )
    a = np.asarray([x for x, _ in links], dtype=np.int64)
    b = np.asarray([y for _, y in links], dtype=np.int64)
    labels = duplicate_components(n, exact, a, b)
    exact_links = [
        (i, j) for i in range(n) for j in range(n) if exact[i] >= 0 and exact[i] == exact[j]
    ]
    want = reference_components(n, [*links, *exact_links])
    got = as_sets(labels)
    assert sorted(map(sorted, got)) == sorted(map(sorted, want))
    same = labels[:, None] == labels[None, :]
    grouped = labels >= 0
    same &= grouped[:, None] & grouped[None, :]
    assert (same == same.T).all()  # symmetric
    assert ((same.astype(int) @ same.astype(int) > 0) <= (same | np.eye(n, dtype=bool))).all()


def planted_pixels(seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """120 digits, plus edited copies of a few of them (one of each NEAR_EDITS kind)."""
    images, labels = render_digits(120)
    rng = np.random.default_rng(seed)
    out, out_labels = list(images), list(labels)
    for k, edit in enumerate(NEAR_EDITS.values()):
        out.append(edit(images[k], rng))
        out_labels.append(labels[k])
    out.append(images[50].copy())  # an exact copy
    out_labels.append(labels[50])
    return np.stack(out), out_labels


def test_fast_finder_equals_brute_force() -> None:
    pixels, labels = planted_pixels()
    index = index_from_arrays(pixels, labels)
    found = find_duplicates(index)
    n = len(pixels)
    i, j = np.triu_indices(n, 1)
    full = aligned_distance(pixels[i], pixels[j])
    scale = np.maximum(pixels[i].reshape(len(i), -1).std(1), pixels[j].reshape(len(j), -1).std(1))
    near = is_near(full, full * scale)
    ids = index.table["sample_id"].to_numpy()
    want = reference_components(n, list(zip(i[near].tolist(), j[near].tolist(), strict=True)))
    got = found.members.groupby("group")["sample_id"].apply(set).tolist()
    want_ids = [set(ids[list(g)].tolist()) for g in want]
    assert sorted(map(sorted, got)) == sorted(map(sorted, want_ids))
    assert len(want) >= len(NEAR_EDITS) + 1  # every planted copy is in a group


def test_every_member_gets_a_row_and_groups_explain_conflicts_and_leaks() -> None:
    images, labels = render_digits(60)
    pixels = np.stack([*images, images[0], images[1], images[2]])
    labels = [*labels, labels[0], "x", labels[2]]  # copy of 1 under another label
    splits = ["train"] * 62 + ["val"]  # copy of 2 in val
    index = index_from_arrays(pixels, labels, splits)
    issues = find_duplicates(index).issues
    path_of = dict(zip(index.table["sample_id"], index.table["path"], strict=True))
    rows = {(path_of[s], k) for s, k in zip(issues["sample_id"], issues["issue"], strict=True)}
    p = index.table["path"].tolist()
    for a, b in ((0, 60), (1, 61), (2, 62)):
        assert (p[a], "exact_duplicate") in rows and (p[b], "exact_duplicate") in rows
    assert {(p[1], "conflicting_labels"), (p[61], "conflicting_labels")} <= rows
    assert {(p[2], "cross_split_duplicate"), (p[62], "cross_split_duplicate")} <= rows
    assert not any(k == "conflicting_labels" and s in (p[0], p[2]) for s, k in rows)
    assert issues["score"].between(0, 1).all()
    groups = issues[issues["issue"] == "exact_duplicate"].groupby("group").size()
    assert (groups == 2).all() and len(groups) == 3


def test_exact_groups_ignore_undecodable_rows() -> None:
    images, labels = render_digits(4)
    index = index_from_arrays(np.stack([*images, images[0]]), [*labels, labels[0]], broken={4})
    assert (exact_groups(index.table) == -1).all()
