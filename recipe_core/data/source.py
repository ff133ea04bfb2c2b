"""`DatasetSource`: the list of samples a dataset adapter found, and how to read their bytes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

SAMPLE_COLUMNS = ("sample_id", "path", "label", "split")


@dataclass(frozen=True)
class DatasetSource:
    """Samples of one dataset: a table keyed by `sample_id` with `path`, `label`, `split`.

    `path` is POSIX and relative to `root`; `label` is the class name as a string ("" when
    unlabelled); `split` is "train"/"val"/"test"/... or "" when the dataset has no splits.
    """

    root: Path  # absolute folder the paths are relative to
    layout: str  # "image_folder" | "manifest" | "torch"
    samples: pd.DataFrame = field(repr=False)
    skipped: tuple[str, ...] = ()  # files seen but not taken as samples, relative to root

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(sorted(str(c) for c in self.samples["label"].unique() if c != ""))

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(sorted(str(s) for s in self.samples["split"].unique()))

    def __len__(self) -> int:
        return len(self.samples)

    def abspath(self, path: str) -> Path:
        return self.root / path

    def read_bytes(self, path: str) -> bytes:
        return (self.root / path).read_bytes()


def sample_ids(keys: list[str]) -> np.ndarray:
    """Stable 63-bit ids from sample keys (relative paths): the same file keeps its id across
    re-scans, which a row position would not."""
    ids = [
        int.from_bytes(
            hashlib.blake2b(k.encode("utf-8", "surrogateescape"), digest_size=8).digest(), "little"
        )
        & 0x7FFF_FFFF_FFFF_FFFF
        for k in keys
    ]
    return np.asarray(ids, dtype=np.int64)


def make_samples(paths: list[str], labels: list[str], splits: list[str]) -> pd.DataFrame:
    """The canonical sample table, sorted by path so every adapter orders rows the same way."""
    frame = pd.DataFrame({"path": paths, "label": labels, "split": splits})
    frame = frame.sort_values("path", kind="stable").reset_index(drop=True)
    frame.insert(0, "sample_id", sample_ids(frame["path"].tolist()))
    return frame
