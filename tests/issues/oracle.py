"""Score an issue table against an oracle of planted problems: precision and recall per type.

A row counts as correct when the oracle plants that issue on that file, or when the row is
*implied* by what was planted (a truthful report the oracle does not list under that name):
an identical copy planted as a leak or label conflict is also an exact duplicate, a 1 px
shifted leak is also a near duplicate, a copy filed under the wrong class is also a label
issue, a near-black/white or flat image is also low information, and an image upscaled to an
odd size is also blurry.
"""

from __future__ import annotations

import pandas as pd


def implied(row: pd.Series, planted: pd.DataFrame, oracle: pd.DataFrame) -> bool:
    kinds = set(planted["issue"])
    if row["issue"] in kinds:
        return True
    folders = oracle.loc[oracle["issue"] == row["issue"], "path"]
    if any(row["path"].startswith(f + "/") for f in folders if "." not in f.rsplit("/", 1)[-1]):
        return True  # a per-sample row of a class-folder problem (class_imbalance)
    groups = set(planted["group"]) - {""}
    notes = " ".join(oracle.loc[oracle["group"].isin(groups), "note"])
    if row["issue"] == "exact_duplicate" and ("byte-identical" in notes or "exact" in notes):
        return True
    if row["issue"] == "near_duplicate" and "shift" in notes and "cross_split_duplicate" in kinds:
        return True
    wrong = planted["true_label"].ne("") & planted["true_label"].ne(planted["given_label"])
    if row["issue"] == "label_issue" and wrong.any():
        return True
    if row["issue"] == "blurry" and "odd_size" in kinds:
        return True
    return row["issue"] == "low_information" and bool(kinds & {"dark", "light"})


def precision_recall(issues: pd.DataFrame, oracle: pd.DataFrame) -> pd.DataFrame:
    """One row per issue type: planted, rows, correct rows, precision, recall, missed paths."""
    oracle = oracle.fillna("").astype(str)
    if "note" not in oracle:
        oracle = oracle.assign(note=oracle["group"])
    by_path = dict(tuple(oracle.groupby("path")))
    empty = oracle.iloc[:0]
    out = []
    for issue in sorted(set(oracle["issue"]) | set(issues["issue"])):
        found = issues[issues["issue"] == issue]
        planted = oracle[oracle["issue"] == issue]
        ok = [implied(r, by_path.get(r["path"], empty), oracle) for _, r in found.iterrows()]
        targets = _targets(planted)
        missed = [p for p in targets if not found["path"].str.startswith(p).any()]
        out.append({
            "issue": issue, "planted": len(targets), "rows": len(found), "correct": sum(ok),
            "precision": sum(ok) / len(found) if len(found) else float("nan"),
            "recall": 1 - len(missed) / len(targets) if len(targets) else float("nan"),
            "missed": missed,
            "extra": found.loc[[not o for o in ok], "path"].tolist(),
        })  # fmt: skip
    return pd.DataFrame(out).set_index("issue")


def _targets(planted: pd.DataFrame) -> list[str]:
    """Paths that must be found; a class-folder row (class_imbalance) matches by prefix."""
    return [p if "." in p.rsplit("/", 1)[-1] else p + "/" for p in planted["path"]]
