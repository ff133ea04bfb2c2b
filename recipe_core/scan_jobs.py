"""Scans as detached background processes, for the dashboard.

A Streamlit rerun interrupts the script thread, so a scan started inside it would die on the
next click. Instead `start_scan` launches `python -m recipe_core.scan_jobs DATASET --job-dir
DIR` in its own session; the process reports through `DIR/progress.json` (replaced
atomically, rewritten at least every HEARTBEAT_S) and writes the full result to
`DIR/result/` (see `write_result`). Any process can then `read_state(DIR)` and
`load_scan(DIR / "result")`, after an app restart too.

    job = start_scan("sample_data/digits", workspace=ws)
    while read_state(job).state == "running": time.sleep(1)
    result = load_scan(job / RESULT_DIR)        # a ScanResult, as `scan()` returned it
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recipe_core import background
from recipe_core.data.source import SAMPLE_COLUMNS, DatasetSource
from recipe_core.errors import DatasetError
from recipe_core.index.schema import ScanIndex
from recipe_core.safe_paths import path_key
from recipe_core.scan import ScanResult, ScanSummary, scan, write_scan
from recipe_core.workspace import Workspace, open_workspace

log = logging.getLogger(__name__)

LOG_FILE = "scan.log"
# the progress file's name and timing, shared with check jobs (re-exported for callers)
STATE_FILE = background.STATE_FILE
HEARTBEAT_S = background.HEARTBEAT_S
STALE_S = background.STALE_S
STATES = background.STATES
RESULT_DIR = "result"  # inside the job folder; replaced as a whole when a rescan finishes
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
class ScanJobState:
    state: str  # one of STATES
    stage: str = ""  # "start" | "index" | "issues" | "write" | "" ; see scan.ScanProgress
    done: int = 0  # items finished in this stage
    total: int = 0  # items in this stage (0 = unknown yet)
    message: str = ""  # the error, when state == "failed"
    pid: int = 0  # worker process id
    started: float = 0.0  # unix seconds
    updated: float = 0.0  # unix seconds of the last heartbeat

    @property
    def fraction(self) -> float:
        """Overall progress in [0, 1]: decoding counts for 80 %, finding issues for 20 %."""
        if self.state == "done":
            return 1.0
        within = self.done / self.total if self.total else 0.0
        base = {"index": 0.0, "issues": 0.8, "write": 0.98}.get(self.stage, 0.0)
        span = {"index": 0.8, "issues": 0.18}.get(self.stage, 0.0)
        return min(1.0, base + span * within)


def job_dir(workspace: Workspace, dataset_root: str | os.PathLike[str]) -> Path:
    """The folder of the app's scan of `dataset_root` (a resolved dataset path)."""
    return workspace.scans / "app" / path_key(dataset_root)


def read_state(folder: str | os.PathLike[str], *, now: float | None = None) -> ScanJobState:
    """The job's state; a "running" job without a heartbeat for STALE_S reads as failed."""
    return background.read_progress(folder, ScanJobState, what="scan", again="Scan again",
                                    log_file=LOG_FILE, now=now)  # fmt: skip


def start_scan(
    dataset_root: str | os.PathLike[str],
    *,
    workspace: Workspace,
    workers: int | None = None,
    python: str = sys.executable,
) -> Path:
    """Launch a detached scan of `dataset_root` unless one is already running; the job folder."""
    folder = job_dir(workspace, dataset_root)
    if read_state(folder).state == "running":
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    args = [os.fspath(dataset_root), "--job-dir", str(folder), "--workspace", str(workspace.root)]
    args += [] if workers is None else ["--workers", str(workers)]
    now = time.time()
    background.write_progress(folder, ScanJobState("running", "start", started=now, updated=now))
    proc = background.start_worker(folder, "recipe_core.scan_jobs", args, kind=ScanJobState,
                                   what="scan", log_file=LOG_FILE, python=python)  # fmt: skip
    log.info("started scan of %s as pid %d in %s", dataset_root, proc.pid, folder)
    return folder


def run_job(
    dataset: str, folder: Path, *, workspace: Workspace, workers: int | None = None
) -> ScanResult:
    """The worker's body: scan, reporting progress into `folder`, and write the result."""
    now = time.time()
    state = ScanJobState("running", "start", pid=os.getpid(), started=now, updated=now)
    with background.ProgressReporter(folder, state, _failure_text) as reporter:

        def progress(stage: str, done: int, total: int) -> None:
            # no write: called per item, the heartbeat carries it to progress.json
            reporter.update(stage=stage, done=done, total=total)

        result = scan(dataset, workspace=workspace, workers=workers, progress=progress)
        progress("write", 0, 1)
        write_result(result, folder / RESULT_DIR)
    return result


_failure_text = partial(
    background.failure_text,
    interrupted="The scan was interrupted. Scan again.",
    unexpected=f"The scan failed unexpectedly: {{error}}. See the job's {LOG_FILE}.",
)


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recipe_core.scan_jobs", description=__doc__)
    parser.add_argument("dataset")
    parser.add_argument("--job-dir", required=True)
    parser.add_argument("--workspace", default=None)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    folder = Path(args.job_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return background.run_worker(
        lambda: run_job(
            args.dataset, folder, workspace=open_workspace(args.workspace), workers=args.workers
        ),
        log=log,
    )


if __name__ == "__main__":
    sys.exit(main())
