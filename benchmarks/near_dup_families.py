"""Near-duplicate recall by edit family on real photo crops (tests/photos/edit_families.py),
side by side with the precision of the same scan: which edits the scan calls copies, and which
it misses (a crop-and-zoom and a small rotation are beyond its 32 px shift-only pixel check;
mirror images and upside-down copies are found by their flipped hashes, `scan.issues.flips`).

    nice .venv/bin/python benchmarks/near_dup_families.py [--seeds 0 1 2]

Last, several edits of one picture (`edit_families.make_stacked_edits`): each original's
copies by four families must be one group with it, though they are rarely near one another.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recipe_core.scan import scan
from tests.photos.edit_families import CAUGHT, make_edit_families, make_stacked_edits

DUPLICATES = ("near_duplicate", "exact_duplicate")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    rows, mixed, groups_seen = [], 0, 0
    for seed in args.seeds:
        root = Path(tempfile.mkdtemp(prefix="edit-families-"))
        copies = make_edit_families(root, seed=seed, missed=True)
        issues = scan(root, workers=0, cache=False).issues
        dups = issues[issues["issue"].isin(DUPLICATES)]
        groups = dups.groupby("path")["group"].apply(set)
        for c in copies:
            found = bool(groups.get(c.copy, set()) & groups.get(c.original, set()))
            rows.append({"family": c.family, "found": found})
        source = {c.copy: c.original for c in copies}
        for _, members in dups.groupby("group")["path"]:
            groups_seen += 1
            mixed += len({source.get(p, p) for p in members}) > 1
    table = pd.DataFrame(rows).groupby("family", sort=False)["found"].agg(["sum", "count"])
    table["recall"] = (table["sum"] / table["count"]).round(2)
    table["tested"] = ["yes" if f in CAUGHT else "no (measured here)" for f in table.index]
    print(table.rename(columns={"sum": "found", "count": "planted"}).to_string())
    print(f"\nduplicate groups reported: {groups_seen}; joining two different originals: {mixed}")
    stacked(args.seeds)


def stacked(seeds: list[int]) -> None:
    """Several edits of one picture: 8 originals a seed with copies by 4 CAUGHT families each
    (its mirror image, a recrop, a watermarked copy...), each a copy of it and rarely of one
    another: how many copies are grouped with their original."""
    found = planted = mixed = 0
    for seed in seeds:
        root = Path(tempfile.mkdtemp(prefix="stacked-edits-"))
        copies = make_stacked_edits(root, seed=seed)
        issues = scan(root, workers=0, cache=False).issues
        dups = issues[issues["issue"].isin(DUPLICATES)]
        groups = dups.groupby("path")["group"].apply(set)
        planted += len(copies)
        found += sum(
            bool(groups.get(c.copy, set()) & groups.get(c.original, set())) for c in copies
        )
        source = {c.copy: c.original for c in copies}
        mixed += sum(
            len({source.get(p, p) for p in m}) > 1 for _, m in dups.groupby("group")["path"]
        )
    print(f"several edits of one picture (4 families each): {found} of {planted} copies grouped "
          f"with their original ({found / max(planted, 1):.2f}); groups joining two originals: "
          f"{mixed}")  # fmt: skip


if __name__ == "__main__":
    main()
