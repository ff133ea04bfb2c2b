"""Which samples of a batch the scan flagged: "what the net sees" marks them, so a duplicate,
a flipped label or an outlier is seen where the model meets it."""

from __future__ import annotations

import numpy as np
import pandas as pd

FLAG_COLUMNS = ("position", "sample_id", "path", "issues", "worst", "detail")


def flags_in_batch(issues: pd.DataFrame, sample_ids: np.ndarray) -> pd.DataFrame:
    """One row per sample of the batch with at least one issue in `issues` (a scan's issue
    table), in batch order: its position (0-based), sample_id, path, the issue names (most
    severe first, comma-separated), the worst score and that issue's detail."""
    ids = np.asarray(sample_ids, dtype=np.int64)
    hits = issues[issues["sample_id"].isin(ids)]
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
