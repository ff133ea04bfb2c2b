"""What a scan returns, and how it is saved and loaded.

`ScanResult` is the scan's answer (index, issues, summary). `write_scan` writes the contract
files (`index.parquet`, `issues.csv`); `write_result` stores everything `load_scan` needs to
give the same `ScanResult` back in another process (the dashboard's scan jobs use these).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recipe_core.data.files import SkippedEntry
from recipe_core.data.manifest import formula_safe_columns
from recipe_core.data.source import SAMPLE_COLUMNS, DatasetSource
from recipe_core.errors import ConfigError, DatasetError
from recipe_core.scan.index.schema import ScanIndex

ISSUES_CSV_COLUMNS = ("path", "label", "issue", "score", "group", "detail")  # DESIGN.md contract
RESULT_FORMAT = 1  # bump when the files below change; older results are rescanned
RESULT_FILES = (
    "index.parquet",
    "issues.csv",
    "issues.parquet",
    "embeddings.npy",
    "pixels.npy",
    "summary.json",
)


@dataclass(frozen=True)
class ScanSummary:
    dataset: str  # dataset root folder
    layout: str  # "image_folder" | "manifest" | "torch"
    n_samples: int
    n_classes: int
    n_decoded: int  # files decoded by this scan (the rest came from the workspace cache)
    n_reused: int
    n_undecodable: int  # samples with a decode_error (reported as `corrupt` issues)
    n_skipped: int  # files seen but not taken as samples (not images), see ScanResult.skipped
    n_issue_rows: int
    n_flagged: int  # distinct samples with at least one issue
    issue_counts: dict[str, int]  # issue type -> rows, most frequent first
    embedding: str
    fingerprint: str  # content fingerprint of the scanned dataset
    n_not_followed: int = 0  # folders the listing did not enter (symlink loops, unreadable)
    near_threshold: float = 1.0  # the near-duplicate line the scan used (1 = the default)
    edited_copies: bool = True  # whether it looked for edited copies (recrops, turns, overlays)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ScanResult:
    index: ScanIndex = field(repr=False)
    issues: pd.DataFrame = field(repr=False)  # sample_id, path, label, issue, score, group, detail
    summary: ScanSummary
    skipped: tuple[str, ...]  # files under the dataset that are not samples, relative paths
    timings: dict[str, float]  # seconds per stage: open, index, issues, write


def write_scan(result: ScanResult, out_dir: str | os.PathLike[str]) -> Path:
    """Write `out_dir/index.parquet` (one row per sample) and `out_dir/issues.csv` (columns
    path,label,issue,score,group,detail; paths relative to the dataset root)."""
    folder = Path(out_dir).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        result.index.table.to_parquet(folder / "index.parquet", index=False)
        issues = formula_safe_columns(result.issues, ("label", "detail"))  # paths stay verbatim
        issues.to_csv(folder / "issues.csv", columns=list(ISSUES_CSV_COLUMNS), index=False)
    except OSError as exc:
        raise ConfigError(
            f"Cannot write the scan to {folder}: {exc.strerror or exc}. Pass --out a folder "
            "you can write to."
        ) from exc
    return folder


def write_result(result: ScanResult, folder: str | os.PathLike[str]) -> Path:
    """Write everything `load_scan` needs into `folder`, replacing it as a whole at the end:
    index.parquet and issues.csv (the `recipe scan --out` contract), issues.parquet (with
    sample_id and any extra detector columns), embeddings.npy (N, D) float32, pixels.npy
    (N, 32, 32) uint8 and summary.json (the ScanSummary, the source's root and layout)."""
    target = Path(folder)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    write_scan(result, tmp)
    result.issues.to_parquet(tmp / "issues.parquet", index=False)
    np.save(tmp / "embeddings.npy", np.ascontiguousarray(result.index.embeddings))
    np.save(tmp / "pixels.npy", np.ascontiguousarray(result.index.pixels))
    source = result.index.source
    meta = {
        "format": RESULT_FORMAT,
        "summary": result.summary.as_dict(),
        "root": os.fsdecode(source.root),
        "layout": source.layout,
        "skipped": list(result.skipped),
        "not_followed": [[e.path, e.reason] for e in source.not_followed],
        "timings": result.timings,
        "embedding_name": result.index.embedding_name,
        "reused": result.index.reused,
        "written": time.time(),
    }
    (tmp / "summary.json").write_text(json.dumps(meta, indent=1))  # written last: the marker
    old = target.with_name(f"{target.name}.old-{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def load_scan(folder: str | os.PathLike[str]) -> ScanResult:
    """The `ScanResult` that `write_result` stored in `folder`; arrays are memory-mapped."""
    path = Path(folder)
    missing = [name for name in RESULT_FILES if not (path / name).is_file()]
    if missing:
        raise DatasetError(
            f"{path} is not a complete scan result (missing {', '.join(missing)}). Scan the "
            "dataset again."
        )
    meta = json.loads((path / "summary.json").read_text())
    if meta.get("format") != RESULT_FORMAT:
        raise DatasetError(
            f"The scan in {path} has format {meta.get('format')!r}, not {RESULT_FORMAT}: it was "
            "written by another Recipe version. Scan the dataset again."
        )
    table = pd.read_parquet(path / "index.parquet")
    source = DatasetSource(
        Path(meta["root"]),
        meta["layout"],
        table[list(SAMPLE_COLUMNS)].copy(),
        tuple(meta["skipped"]),
        tuple(SkippedEntry(str(p), str(r)) for p, r in meta.get("not_followed", [])),
    )
    summary = _summary(meta["summary"], path)
    index = ScanIndex(
        source=source,
        table=table,
        embeddings=np.load(path / "embeddings.npy", mmap_mode="r"),
        pixels=np.load(path / "pixels.npy", mmap_mode="r"),
        embedding_name=meta["embedding_name"],
        fingerprint=summary.fingerprint,
        reused=int(meta["reused"]),
    )
    issues = pd.read_parquet(path / "issues.parquet")
    return ScanResult(index, issues, summary, source.skipped, dict(meta["timings"]))


def _summary(data: dict[str, Any], path: Path) -> ScanSummary:
    fields = ScanSummary.__dataclass_fields__
    try:
        return ScanSummary(**{k: v for k, v in data.items() if k in fields})
    except TypeError as exc:
        raise DatasetError(
            f"The scan summary in {path} does not match this Recipe version ({exc}). Scan the "
            "dataset again."
        ) from exc
