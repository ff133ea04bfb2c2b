"""A quick overview of a dataset: counts per class and split, image sizes and modes.

Reads file headers only, so it is fast enough to run on every page load of small datasets; the
full scan (`recipe_core.scan.run`) decodes every pixel.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pandas as pd

from recipe_core.data import DatasetSource
from recipe_core.data.images import read_header

Progress = Callable[[int, int], None]  # (done, total)


@dataclass(frozen=True)
class DatasetOverview:
    n_samples: int
    n_classes: int
    counts: pd.DataFrame = field(repr=False)  # columns split, label, count
    headers: pd.DataFrame = field(repr=False)  # sample_id, width, height, mode, format, error
    sizes: pd.DataFrame = field(repr=False)  # width, height, mode, count (most common first)
    n_unreadable: int = 0  # files whose header did not parse


def summarize(
    source: DatasetSource, *, workers: int = 8, progress: Progress | None = None
) -> DatasetOverview:
    """Counts per (split, label) and a size/mode summary read from every file header."""
    samples = source.samples
    counts = samples.groupby(["split", "label"], sort=True).size().rename("count").reset_index()
    headers = read_headers(source, workers=workers, progress=progress)
    readable = headers[headers["error"] == ""]
    sizes = (
        readable.groupby(["width", "height", "mode"])
        .size()
        .rename("count")
        .reset_index()
        .sort_values("count", ascending=False, kind="stable")
        .reset_index(drop=True)
    )
    return DatasetOverview(
        n_samples=len(samples),
        n_classes=len(source.classes),
        counts=counts,
        headers=headers,
        sizes=sizes,
        n_unreadable=int((headers["error"] != "").sum()),
    )


def read_headers(
    source: DatasetSource, *, workers: int = 8, progress: Progress | None = None
) -> pd.DataFrame:
    """One header row per sample; threads overlap the file-system latency of many small opens."""
    paths = [source.abspath(p) for p in source.samples["path"]]
    total = len(paths)
    rows = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for i, header in enumerate(pool.map(read_header, paths, chunksize=64)):
            rows.append(header)
            if progress is not None and (i + 1) % 256 == 0:
                progress(i + 1, total)
    if progress is not None:
        progress(total, total)
    frame = pd.DataFrame(
        {
            "sample_id": source.samples["sample_id"].to_numpy(),
            "width": [h.width for h in rows],
            "height": [h.height for h in rows],
            "mode": [h.mode for h in rows],
            "format": [h.format for h in rows],
            "error": [h.error for h in rows],
        }
    )
    return frame
