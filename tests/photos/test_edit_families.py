"""Near-duplicate copies by edit family on real photo crops (tests/photos/edit_families.py):
every copy of a CAUGHT family is grouped with its original, and no group joins two different
originals. Trusted answer: the planted copy -> original map."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from recipe_core.scan import scan
from recipe_core.scan.issues import find_duplicates
from recipe_core.scan.issues.duplicates import EDITED, threshold_effect
from recipe_core.scan.issues.flips import FLIPS
from tests.photos.edit_families import CAUGHT, Copy, make_edit_families, make_stacked_edits

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


def test_several_edits_of_one_picture_are_one_group(tmp_path: Path) -> None:
    """Eight originals with copies by four families each (a mirror image, a recrop and a
    watermarked copy of one picture are copies of it, not of one another): each original
    and its copies are one group, and no group holds two originals. Cliques alone grouped
    72 of 96 such copies over three seeds (benchmarks/near_dup_families.py); on this seed
    two recrops are another edited copy's nearest, found by trying a copy's second
    candidate too (EDIT_CANDIDATES)."""
    copies = make_stacked_edits(tmp_path, seed=2)
    issues = scan(tmp_path, workers=0, cache=False).issues
    dups = issues[issues["issue"].isin(DUPLICATES)]
    groups = dups.groupby("path")["group"].apply(set)
    missed = [c for c in copies if not groups.get(c.copy, set()) & groups.get(c.original, set())]
    assert not missed, [(c.family, c.copy) for c in missed]
    source = {c.copy: c.original for c in copies}
    for group, members in dups.groupby("group")["path"]:
        assert len({source.get(p, p) for p in members}) == 1, (group, sorted(members))


def test_the_threshold_table_counts_the_flipped_copies_the_scan_reports(
    planted: tuple[Path, list[Copy]],
) -> None:
    """The Issues page's threshold table and the scan share one candidate mechanism, flipped
    copies included: at the scan's line the table holds every link the scan reports."""
    root, copies = planted
    index = scan(root, workers=0, cache=False).index
    flipped = {c.copy for c in copies if c.family in ("mirror", "upside_down")}
    assert flipped
    effect = threshold_effect(index, (0.5, 1.0)).set_index("threshold")
    pairs = find_duplicates(index).pairs
    reported = pairs[pairs["flip"].isin(list(FLIPS))]
    paths = dict(zip(index.table["sample_id"], index.table["path"], strict=True))
    assert {paths[i] for i in reported["sample_id_b"]} | {
        paths[i] for i in reported["sample_id_a"]
    } >= flipped
    assert effect.loc[1.0, "flipped"] >= len(reported) >= len(flipped)
    assert effect.loc[0.5, "flipped"] <= effect.loc[1.0, "flipped"]
    assert effect.loc[1.0, "links"] >= len(pairs)


def test_the_threshold_table_counts_the_edited_copies_the_scan_reports(
    planted: tuple[Path, list[Copy]],
) -> None:
    """Recrops zoomed back are found by the warp check (`warp_match`); the table counts them,
    a stricter line keeps fewer, and their pairs carry no grey-level residual."""
    root, copies = planted
    index = scan(root, workers=0, cache=False).index
    recrops = {(c.original, c.copy) for c in copies if c.family.startswith("recrop")}
    assert recrops
    pairs = find_duplicates(index).pairs
    edited = pairs[pairs["flip"] == EDITED]
    paths = dict(zip(index.table["sample_id"], index.table["path"], strict=True))
    ends = zip(edited["sample_id_a"], edited["sample_id_b"], strict=True)
    found = {tuple(sorted((paths[a], paths[b]))) for a, b in ends}
    assert {tuple(sorted(p)) for p in recrops} <= found
    assert edited["residual"].isna().all() and (edited["distance"] > 0).all()
    effect = threshold_effect(index, (0.25, 1.0)).set_index("threshold")
    assert effect.loc[1.0, "edited"] >= len(edited) >= len(recrops)
    assert effect.loc[0.25, "edited"] < effect.loc[1.0, "edited"]


def test_a_rescan_with_the_memo_reports_the_edited_copies_a_cold_scan_reports(
    planted: tuple[Path, list[Copy]], tmp_path: Path
) -> None:
    """The warp check's distances are memoised by the two contents: a rescan after one copy
    was re-encoded and one original removed gives the cold scan's issue table."""
    root, copies = planted
    data = tmp_path / "data"
    shutil.copytree(root, data)
    ws = tmp_path / "ws"
    scan(data, workspace=ws, workers=0)
    recrop = next(c for c in copies if c.family == "recrop_10pct")
    with Image.open(data / recrop.copy) as im:
        im.convert("RGB").save(data / recrop.copy, quality=80)  # new bytes, still a recrop
    (data / next(c for c in copies if c.family == "noise").original).unlink()
    again = scan(data, workspace=ws, workers=0)
    cold = scan(data, workers=0, cache=False)
    assert again.index.reused > 0.9 * len(again.index)
    pd.testing.assert_frame_equal(again.issues, cold.issues)
    edited = again.issues["detail"].str.contains(EDITED, regex=False)
    assert again.issues.loc[edited, "path"].isin([recrop.copy, recrop.original]).sum() >= 1


def test_edited_copies_can_be_turned_off(planted: tuple[Path, list[Copy]]) -> None:
    """`edited_copies=False`: no recrop or overlay is linked, the scan's summary says so,
    and the threshold table counts no edited link; flipped copies are still found."""
    root, copies = planted
    result = scan(root, workers=0, cache=False, edited_copies=False)
    assert not result.summary.edited_copies
    pairs = find_duplicates(result.index, edited_copies=False).pairs
    assert not (pairs["flip"] == EDITED).any()
    assert pairs["flip"].isin(list(FLIPS)).any()
    groups = result.issues[result.issues["issue"].isin(DUPLICATES)].groupby("path")["group"]
    member = groups.apply(set)
    edited = [c for c in copies if c.family in ("recrop_10pct", "watermark")]
    assert not any(member.get(c.copy, set()) & member.get(c.original, set()) for c in edited)
    effect = threshold_effect(result.index, (1.0,), edited_copies=False)
    assert int(effect["edited"].sum()) == 0
    assert scan(root, workers=0, cache=False).summary.edited_copies  # on by default
