"""`DatasetSource`: the list of samples a dataset adapter found, and how to read their bytes."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recipe_core.data.files import SkippedEntry, read_regular

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
    not_followed: tuple[SkippedEntry, ...] = ()  # folders the listing did not enter, and why

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(sorted(str(c) for c in self.samples["label"].unique() if c != ""))

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(sorted(str(s) for s in self.samples["split"].unique()))

    def __len__(self) -> int:
        return len(self.samples)

    def abspath(self, path: str) -> Path:
        return resolve_path(self.root, path)

    def read_bytes(self, path: str) -> bytes:
        return read_regular(self.abspath(path))


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
    frame = pd.DataFrame(
        {"path": portable_texts(paths), "label": portable_texts(labels), "split": splits}
    )
    frame = frame.sort_values("path", kind="stable").reset_index(drop=True)
    frame.insert(0, "sample_id", sample_ids(frame["path"].tolist()))
    return frame


ESCAPED_BYTE = re.compile(r"\\x([89a-f][0-9a-f])")  # what `portable_text` writes for a byte


def portable_text(text: str) -> str:
    """A file name as valid UTF-8. Python gives undecodable name bytes as lone surrogates
    (surrogateescape), which pandas' Arrow-backed strings and Parquet cannot hold; they become
    `\\xNN` escapes, which `resolve_path` maps back to the real file."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text


def portable_texts(texts: list[str]) -> list[str]:
    """`portable_text` of each; one encode of them all when every one is valid UTF-8 (nearly
    always: 0.02 s of opening a 50k-image folder went to encoding each name)."""
    try:
        "".join(texts).encode("utf-8")
    except UnicodeEncodeError:
        return [portable_text(t) for t in texts]
    return list(texts)


def resolve_path(root: Path, path: str) -> Path:
    """The file a sample path names: `root / path`, or, when that does not exist and the path
    holds `portable_text` escapes, the file whose name has those raw bytes."""
    direct = root / path
    if "\\x" not in path or os.path.lexists(direct):
        return direct
    raw = ESCAPED_BYTE.sub(lambda m: chr(0xDC00 + int(m.group(1), 16)), path)
    return root / raw
