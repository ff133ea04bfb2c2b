"""Scan the planted photo set (tests/photos/planted.py) and the planted digits
(sample_data/digits) and print precision / recall per problem kind, side by side, plus
precision@k of the outlier ranking and the number of chained duplicate groups (a reported
group that joins images of different planted groups, or unplanted images).

    nice .venv/bin/python benchmarks/scan_photos.py [--seed 0] [--out /tmp/photos]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recipe_core.scan import scan
from tests.issues.oracle import precision_recall
from tests.photos.planted import make_planted_photos

DIGITS = Path(__file__).resolve().parents[1] / "sample_data" / "digits"
DUPLICATES = ("near_duplicate", "exact_duplicate")
GROUPED = (*DUPLICATES, "cross_split_duplicate", "conflicting_labels")  # planted copy groups


def outlier_precision_at_k(issues: pd.DataFrame, oracle: pd.DataFrame) -> float:
    """Share of planted outliers among the k highest-scored outlier rows, k = planted count."""
    planted = set(oracle.loc[oracle["issue"] == "outlier", "path"])
    rows = issues[issues["issue"] == "outlier"].sort_values("score", ascending=False)
    top = rows["path"].head(len(planted))
    return float(top.isin(planted).sum() / len(planted)) if planted else float("nan")


def chained_groups(issues: pd.DataFrame, oracle: pd.DataFrame) -> list[list[str]]:
    """Reported duplicate groups whose members do not all lie in one planted duplicate group."""
    planted = oracle[oracle["issue"].isin(GROUPED) & (oracle["group"] != "")]
    truth = planted.groupby("path")["group"].apply(set).to_dict()
    dups = issues[issues["issue"].isin(DUPLICATES)]
    bad = []
    for _, members in dups.groupby("group")["path"]:
        paths = sorted(set(members))
        common = set.intersection(*(truth.get(p, set()) for p in paths))
        if not common:
            bad.append(paths)
    return bad


def report(name: str, issues: pd.DataFrame, oracle: pd.DataFrame) -> pd.DataFrame:
    pr = precision_recall(issues, oracle)
    table = pr[["planted", "rows", "correct", "precision", "recall"]].copy()
    print(f"\n== {name}\n{table.round(2).to_string()}")
    print(f"outlier P@k: {outlier_precision_at_k(issues, oracle):.2f}")
    chains = chained_groups(issues, oracle)
    print(f"chained duplicate groups: {len(chains)}" + "".join(f"\n  {c}" for c in chains[:5]))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="where to write the photo set")
    parser.add_argument("--no-digits", action="store_true")
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="planted-photos-"))
    photos = make_planted_photos(root, seed=args.seed)
    result = scan(photos.images, workers=0, cache=False, seed=args.seed)
    report(f"photos ({photos.images})", result.issues, photos.oracle)
    if not args.no_digits and DIGITS.exists():
        oracle = pd.read_csv(DIGITS.parent / "digits_planted.csv", keep_default_na=False, dtype=str)
        report("digits", scan(DIGITS, workers=0, cache=False).issues, oracle)


if __name__ == "__main__":
    main()
