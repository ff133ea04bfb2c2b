"""Issue rows for duplicate groups: exact_duplicate, near_duplicate, conflicting_labels,
cross_split_duplicate. Every member of a group gets a row, originals included."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from recipe_core.scan.issues._common import concat_issues, issue_frame


def duplicate_issue_rows(
    table: pd.DataFrame, members: pd.DataFrame, how: Mapping[int, str] | None = None
) -> pd.DataFrame:
    """Family rows from `DuplicateResult.members`-shaped data (see duplicates.py); `how`
    maps a sample_id to how its partner is a copy of it ("mirror image", "edited copy
    (recropped, turned or overlaid)", ...) where it is not one as it is."""
    if len(members) == 0:
        return concat_issues([])
    info = members.merge(
        table[["sample_id", "path", "label", "split", "byte_hash"]], on="sample_id", how="left"
    )
    # A near copy scores 1 for the same pixels, falling to 0.5 on the near-duplicate line; for
    # the group problems (labels, splits) an identical twin counts as the most severe case.
    near_score = np.clip(1.0 - 0.5 * info["closeness"].fillna(1.0).to_numpy(), 0.5, 1.0)
    info = info.assign(score=near_score, group_score=np.where(info["twin"] >= 0, 1.0, near_score))
    named = table[table["sample_id"].isin(pd.unique(info[["twin", "partner"]].to_numpy().ravel()))]
    paths = dict(zip(named["sample_id"], named["path"], strict=True))  # the rows' e.g. files
    return concat_issues(
        [
            _exact_rows(info[info["exact_group"] != ""], paths),
            _near_rows(info[info["near"]], paths, how),
            _conflict_rows(info),
            _leak_rows(info),
        ]
    )


def _exact_rows(info: pd.DataFrame, paths: dict[int, str]) -> pd.DataFrame:
    by = info.groupby("exact_group")["sample_id"]
    n_other = by.transform("size").to_numpy() - 1
    n_bytes = info.groupby(["exact_group", "byte_hash"])["sample_id"].transform("size") - 1
    details = [
        f"byte-identical to {n} other file{_s(n)}, e.g. {paths[p]}"
        if nb == n
        else f"same decoded pixels as {n} other file{_s(n)} ({nb} byte-identical), e.g. {paths[p]}"
        for n, nb, p in zip(n_other, n_bytes, info["twin"], strict=True)
    ]
    groups = info["exact_group"].tolist()
    return issue_frame(info["sample_id"].to_numpy(), "exact_duplicate", np.ones(len(info)),
                       details, groups)  # fmt: skip


def _near_rows(
    info: pd.DataFrame, paths: dict[int, str], how_of: Mapping[int, str] | None
) -> pd.DataFrame:
    n_other = info.groupby("group")["sample_id"].transform("size").to_numpy() - 1
    how = [(how_of or {}).get(int(i), "") for i in info["sample_id"]]
    details = [
        f"group of {n + 1} near-identical files; closest different one {paths[p]} "
        + (f"is its {h} " if h else "")
        + f"(similarity {1 - c / 2:.2f})"
        for n, p, c, h in zip(n_other, info["partner"], info["closeness"], how, strict=True)
    ]
    return issue_frame(info["sample_id"].to_numpy(), "near_duplicate", info["score"].to_numpy(),
                       details, info["group"].tolist())  # fmt: skip


def _conflict_rows(info: pd.DataFrame) -> pd.DataFrame:
    labelled = info[info["label"] != ""]
    n_labels = labelled.groupby("group")["label"].transform("nunique")
    bad = labelled[n_labels.to_numpy() >= 2]
    summary = bad.groupby("group")["label"].agg(_count_text)
    details = [
        f"copies disagree: labelled {summary[g]}; this one says {lab!r}"
        for g, lab in zip(bad["group"], bad["label"], strict=True)
    ]
    return issue_frame(bad["sample_id"].to_numpy(), "conflicting_labels",
                       bad["group_score"].to_numpy(), details, bad["group"].tolist())  # fmt: skip


def _leak_rows(info: pd.DataFrame) -> pd.DataFrame:
    split = info[info["split"] != ""]
    n_splits = split.groupby("group")["split"].transform("nunique")
    bad = split[n_splits.to_numpy() >= 2]
    summary = bad.groupby("group")["split"].agg(_count_text)
    details = [f"copies in {summary[g]} (leaks across splits)" for g in bad["group"]]
    return issue_frame(bad["sample_id"].to_numpy(), "cross_split_duplicate",
                       bad["group_score"].to_numpy(), details, bad["group"].tolist())  # fmt: skip


def _count_text(values: pd.Series) -> str:
    counts = values.value_counts().sort_index()
    return ", ".join(f"{k} x{v}" for k, v in counts.items())


def _s(n: int) -> str:
    return "" if n == 1 else "s"
