"""Duplicate groups are cliques of verified links, never transitive chains (dup_groups)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from recipe_core.scan.issues.dup_groups import clique_groups


def _verifier(near: set[tuple[int, int]]):  # type: ignore[no-untyped-def]
    def verify(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.array([(min(x, y), max(x, y)) in near for x, y in zip(a, b, strict=True)])

    return verify


def _groups(labels: np.ndarray) -> list[set[int]]:
    return [set(np.flatnonzero(labels == g).tolist()) for g in np.unique(labels[labels >= 0])]


def test_a_chain_is_not_one_group() -> None:
    # A~B, B~C, C~D; A!~C, B!~D: a chain of four distinct images
    a, b = np.array([0, 1, 2]), np.array([1, 2, 3])
    labels = clique_groups(4, np.full(4, -1), a, b, np.array([0.1, 0.2, 0.3]), _verifier(set()))
    assert all(len(g) == 2 for g in _groups(labels)), labels
    assert labels[0] != labels[2] and labels[1] != labels[3]


def test_a_star_that_is_a_clique_is_one_group_and_exact_copies_stay_together() -> None:
    near = {(0, 1), (0, 2), (1, 2)}
    exact = np.array([-1, -1, -1, 7, 7])  # rows 3, 4: identical, no near link
    a, b = np.array([0, 0]), np.array([1, 2])  # (1, 2) only known to the verifier
    labels = clique_groups(5, exact, a, b, np.array([0.1, 0.2]), _verifier(near))
    assert _groups(labels) == [{0, 1, 2}, {3, 4}] or _groups(labels) == [{3, 4}, {0, 1, 2}]


@settings(max_examples=60, deadline=None)
@given(st.sets(st.tuples(st.integers(0, 9), st.integers(0, 9)), max_size=25))
def test_groups_are_disjoint_cliques(pairs: set[tuple[int, int]]) -> None:
    near = {(min(x, y), max(x, y)) for x, y in pairs if x != y}
    links = sorted(near)
    a = np.array([x for x, _ in links], dtype=np.int64)
    b = np.array([y for _, y in links], dtype=np.int64)
    close = np.linspace(0.1, 0.9, len(links))
    labels = clique_groups(10, np.full(10, -1), a, b, close, _verifier(near))
    groups = _groups(labels)
    assert sum(len(g) for g in groups) == int((labels >= 0).sum())  # disjoint
    for g in groups:
        assert len(g) >= 2
        assert all((x, y) in near for x in g for y in g if x < y)  # every member verified
