"""Which samples of a batch the scan flagged: "what the net sees" marks them, so a duplicate,
a flipped label or an outlier is seen where the model meets it. Findings about a class, not
its files (an under-represented class, classes the label model cannot tell apart), mark no
image: every image of such a class would carry one (the overview shows them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recipe_core.scan.issues import CLASS_ISSUES

FLAG_COLUMNS = ("position", "sample_id", "path", "issues", "worst", "detail")


@dataclass(frozen=True)
class FileFlags:
    """What a scan of `root` found on a batch known by its files (`flags_for_files`)."""

    flags: pd.DataFrame = field(repr=False)  # flags_in_batch rows
    root: Path  # the scanned dataset the files lie in
    matched: int  # how many of the batch's files that scan holds


def flags_in_batch(issues: pd.DataFrame, sample_ids: np.ndarray) -> pd.DataFrame:
    """One row per sample of the batch with at least one issue of its own in `issues` (a scan's
    issue table; CLASS_ISSUES are not), in batch order: its position (0-based), sample_id,
    path, the issue names (most severe first, comma-separated), the worst score and that
    issue's detail."""
    ids = np.asarray(sample_ids, dtype=np.int64)
    hits = issues[issues["sample_id"].isin(ids) & ~issues["issue"].isin(CLASS_ISSUES)]
    if hits.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in FLAG_COLUMNS})
    hits = hits.sort_values(["sample_id", "score"], ascending=[True, False], kind="stable")
    grouped = hits.groupby("sample_id", sort=False)
    per_sample = pd.DataFrame({
        "path": grouped["path"].first(),
        "issues": grouped["issue"].agg(lambda names: ", ".join(dict.fromkeys(names))),
        "worst": grouped["score"].first().astype(float),
        "detail": grouped["detail"].first(),
    })  # fmt: skip
    position = pd.Series(np.arange(len(ids)), index=ids)
    position = position[~position.index.duplicated()]
    per_sample.insert(0, "position", position.reindex(per_sample.index).to_numpy())
    out = per_sample.rename_axis("sample_id").reset_index().sort_values("position")
    return out[list(FLAG_COLUMNS)].reset_index(drop=True)


def flags_for_files(
    issues: pd.DataFrame, table: pd.DataFrame, root: Path, files: Sequence[str | None]
) -> FileFlags:
    """`flags_in_batch` for a batch known by its files (a user's pipeline, traced by
    recipe_core.batch.origin) against a scan of `root` (its index `table`), and how many of
    the files that scan holds. A file outside `root` or not scanned matches nothing."""
    base = Path(root).resolve()
    relative: list[str | None] = []
    for file in files:
        path = Path(file).resolve() if file else None
        inside = path is not None and path.is_relative_to(base)
        relative.append(path.relative_to(base).as_posix() if inside else None)  # type: ignore[union-attr]
    wanted = table[table["path"].isin([r for r in relative if r is not None])]  # O(N), no dict
    by_path = dict(zip(wanted["path"].tolist(), wanted["sample_id"].tolist(), strict=True))
    ids = np.array([by_path.get(r, -1) if r else -1 for r in relative], dtype=np.int64)
    return FileFlags(flags_in_batch(issues, ids), Path(root), int((ids >= 0).sum()))
