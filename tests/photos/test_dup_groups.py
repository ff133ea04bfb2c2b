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


def test_edited_copies_hang_off_their_original_as_a_star_one_link_long() -> None:
    """0 is an original; 1 its mirror image and 2 its recrop (edit links), 3 a recompressed
    copy (a plain link) near 0 but not near 1 or 2; 4 an edited copy of 1 alone. One group
    {0, 1, 2, 3}: 1 and 2 need not be near each other or 3, but 4 does not join through 1."""
    a, b = np.array([0, 0, 0, 1]), np.array([1, 2, 3, 4])
    edited = np.array([True, True, False, True])
    close = np.array([0.1, 0.2, 0.3, 0.1])
    labels = clique_groups(5, np.full(5, -1), a, b, close, _verifier(set()), edited=edited)
    assert {0, 1, 2, 3} in _groups(labels), labels
    assert labels[4] != labels[0]
    # without the edit marks the same links make cliques only: no group holds 1 and 2
    plain = clique_groups(5, np.full(5, -1), a, b, close, _verifier(set()))
    assert not any({1, 2} <= g for g in _groups(plain))


def test_plain_links_beside_edited_leaves_still_need_a_clique() -> None:
    """A chain of plain links through the centre stays split even when the centre has an
    edited leaf: 1 ~ 0 ~ 2 with 1 !~ 2 gives 0 one of them, never both."""
    a, b = np.array([0, 0, 0]), np.array([1, 2, 3])
    edited = np.array([False, False, True])
    labels = clique_groups(4, np.full(4, -1), a, b, np.array([0.1, 0.2, 0.3]), _verifier(set()),
                           edited=edited)  # fmt: skip
    group = next(g for g in _groups(labels) if 0 in g)
    assert 3 in group and not {1, 2} <= group
