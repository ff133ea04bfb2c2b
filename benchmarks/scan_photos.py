"""Scan the planted photo set (tests/photos/planted.py, several seeds), the planted digits
(sample_data/digits) and the held-out planted digits and RGB shapes (tests/issues/planting.py)
and print precision / recall per problem kind, precision@k of the outlier ranking and the
number of chained duplicate groups (a reported group that joins images of different planted
groups, or unplanted images). The summary puts the scan's label filter beside confident
learning's prune-by-class alone (cleanlab's default filter) on the same probabilities.

    nice .venv/bin/python benchmarks/scan_photos.py [--seeds 0 1 2] [--out /tmp/photos]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from recipe_core.scan import scan
from recipe_core.scan.issues import detect_issues
from recipe_core.scan.issues.confident import prune_by_class
from recipe_core.scan.issues.find import IssueReport
from tests.issues.conftest import write_planted_digits, write_planted_shapes
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


def prune_by_class_pr(rep: IssueReport, paths: pd.Series, oracle: pd.DataFrame) -> str:
    """Label P/R had the scan flagged with prune-by-class alone on its own probabilities."""
    scores = rep.labels.scores
    scored = scores["scored"].to_numpy()
    names = np.asarray(rep.labels.classes)
    y = np.searchsorted(names, scores.loc[scored, "given_label"].to_numpy().astype(str))
    flagged = set(paths[scored][prune_by_class(y, rep.labels.pred_probs)])
    planted = set(oracle.loc[oracle["issue"] == "label_issue", "path"])
    wrong = oracle["true_label"].ne("") & oracle["true_label"].ne(oracle["given_label"])
    truthful = planted | set(oracle.loc[wrong, "path"])  # as the oracle counts "implied" rows
    precision = len(flagged & truthful) / max(len(flagged), 1)
    return f"{precision:.2f}/{len(flagged & planted) / max(len(planted), 1):.2f}"


def summary_row(name: str, rep: IssueReport, paths: pd.Series, oracle: pd.DataFrame) -> dict:
    issues = rep.table
    pr = precision_recall(issues, oracle)

    def cell(kind: str) -> str:
        if kind not in pr.index:
            return "-"
        return f"{pr.loc[kind, 'precision']:.2f}/{pr.loc[kind, 'recall']:.2f}"

    return {
        "set": name,
        "outlier P@k": round(outlier_precision_at_k(issues, oracle), 2),
        "outlier P/R": cell("outlier"),
        "label P/R": cell("label_issue"),
        "label P/R, prune_by_class": prune_by_class_pr(rep, paths, oracle),
        "near dup P/R": cell("near_duplicate"),
        "chains": len(chained_groups(issues, oracle)),
    }


def held_out_sets(root: Path) -> list[tuple[str, Path, pd.DataFrame]]:
    """The planted digits and RGB shapes of tests/issues/conftest.py, written under root."""
    return [
        ("held-out digits", root / "digits", write_planted_digits(root / "digits")),
        ("RGB shapes", root / "shapes", write_planted_shapes(root / "shapes")),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=None, help="where to write the sets")
    parser.add_argument("--no-digits", action="store_true")
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="planted-photos-"))
    sets = []
    for seed in args.seeds:
        photos = make_planted_photos(root / f"seed{seed}", seed=seed)
        sets.append((f"photos seed {seed}", photos.images, photos.oracle))
    if not args.no_digits and DIGITS.exists():
        oracle = pd.read_csv(DIGITS.parent / "digits_planted.csv", keep_default_na=False, dtype=str)
        sets.append(("sample digits", DIGITS, oracle))
        (root / "held_out").mkdir(parents=True, exist_ok=True)
        sets += held_out_sets(root / "held_out")
    rows, photo_tables = [], []
    for name, images, oracle in sets:
        index = scan(images, workers=0, cache=False).index
        rep = detect_issues(index)
        report(f"{name} ({images})", rep.table, oracle)
        rows.append(summary_row(name, rep, index.table["path"], oracle))
        if name.startswith("photos"):
            photo_tables.append(precision_recall(rep.table, oracle))
    print("\n== summary\n" + pd.DataFrame(rows).to_string(index=False))
    if len(photo_tables) > 1:
        print(f"\nphoto seeds pooled ({len(photo_tables)}): " + pooled(photo_tables))


def pooled(tables: list[pd.DataFrame]) -> str:
    """P/R per issue kind over several sets' `precision_recall` tables: correct rows over all
    rows, found planted over all planted (one seed's 16 flips move its own P or R by 0.06)."""
    parts = []
    for kind in ("outlier", "label_issue", "near_duplicate"):
        have = [t.loc[kind] for t in tables if kind in t.index]
        rows, correct = sum(r["rows"] for r in have), sum(r["correct"] for r in have)
        planted = sum(r["planted"] for r in have)
        found = planted - sum(len(r["missed"]) for r in have)
        parts.append(f"{kind} P {correct / max(rows, 1):.2f} R {found / max(planted, 1):.2f}")
    return "; ".join(parts)


if __name__ == "__main__":
    main()
