"""Near-duplicate copies by edit family on real photo crops (tests/photos/edit_families.py):
every copy of a CAUGHT family is grouped with its original, and no group joins two different
originals. Trusted answer: the planted copy -> original map."""

from __future__ import annotations

from pathlib import Path

import pytest

from recipe_core.scan import scan
from tests.photos.edit_families import CAUGHT, Copy, make_edit_families

DUPLICATES = ("near_duplicate", "exact_duplicate")


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Copy]]:
    root = tmp_path_factory.mktemp("edit_families")
    return root, make_edit_families(root)


def test_each_caught_familys_copies_are_grouped_with_their_original(
    planted: tuple[Path, list[Copy]],
) -> None:
    root, copies = planted
    issues = scan(root, workers=0, cache=False).issues
    groups = issues[issues["issue"].isin(DUPLICATES)].groupby("path")["group"].apply(set)
    missed = [c for c in copies if not groups.get(c.copy, set()) & groups.get(c.original, set())]
    assert not missed, [(c.family, c.copy) for c in missed]
    assert {c.family for c in copies} == set(CAUGHT)
    # precision: a group holds one original and its copies, never two originals
    source = {c.copy: c.original for c in copies}
    dups = issues[issues["issue"].isin(DUPLICATES)]
    for group, members in dups.groupby("group")["path"]:
        roots = {source.get(p, p) for p in members}
        assert len(roots) == 1, (group, sorted(members))
