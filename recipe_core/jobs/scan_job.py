"""Scans as detached background processes, for the dashboard.

A Streamlit rerun interrupts the script thread, so a scan started inside it would die on the
next click. Instead `start_scan` launches `python -m recipe_core.jobs.scan_job DATASET --job-dir
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
import logging
import os
import sys
import time
from functools import partial
from pathlib import Path

from recipe_core.data.safe_paths import path_key
from recipe_core.jobs import process
from recipe_core.jobs.owners import record_owner
from recipe_core.jobs.state import JobProgress, JobState
from recipe_core.scan.result import ScanResult, write_result
from recipe_core.scan.run import scan
from recipe_core.workspace import Workspace, open_workspace

log = logging.getLogger(__name__)

LOG_FILE = "scan.log"
RESULT_DIR = "result"  # inside the job folder; replaced as a whole when a rescan finishes
# how much of a scan each stage is: decoding counts for 80 %, finding issues for 18 %
STAGE_SPAN = {"index": (0.0, 0.8), "issues": (0.8, 0.18), "write": (0.98, 0.0)}


def scan_fraction(state: JobProgress) -> float:
    """Overall progress of a scan in [0, 1], weighting its stages by their usual share."""
    if state.state == JobState.SUCCEEDED:
        return 1.0
    base, span = STAGE_SPAN.get(state.stage, (0.0, 0.0))
    within = state.done / state.total if state.total else 0.0
    return min(1.0, base + span * within)


def app_scans_root(workspace: Workspace) -> Path:
    """The folder holding one job folder per dataset the app scanned."""
    return workspace.scans / "app"


def job_dir(workspace: Workspace, dataset_root: str | os.PathLike[str]) -> Path:
    """The folder of the app's scan of `dataset_root` (a resolved dataset path)."""
    return app_scans_root(workspace) / path_key(dataset_root)


def read_state(folder: str | os.PathLike[str], *, now: float | None = None) -> JobProgress:
    """The job's state; a "running" job without a heartbeat for STALE_S reads as failed."""
    return process.read_progress(folder, what="scan", again="Scan again", log_file=LOG_FILE,
                                 now=now)  # fmt: skip


def cancel_scan(folder: Path) -> JobProgress:
    """Stop the scan running in `folder`; its previous result, if any, stays as it was."""
    return process.cancel_worker(folder, what="scan", log_file=LOG_FILE)


def start_scan(
    dataset_root: str | os.PathLike[str],
    *,
    workspace: Workspace,
    workers: int | None = None,
    owner: str = "",
    python: str = sys.executable,
    near_threshold: float = 1.0,
    edited_copies: bool = True,
) -> Path:
    """Launch a detached scan of `dataset_root` unless one is already running; the job folder.
    `owner` (an e-mail) is noted in it for the per-user job budget (jobs.owners)."""
    folder = job_dir(workspace, dataset_root)
    if read_state(folder).state == JobState.RUNNING:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    record_owner(folder, owner)
    args = [os.fspath(dataset_root), "--job-dir", str(folder), "--workspace", str(workspace.root)]
    args += [] if workers is None else ["--workers", str(workers)]
    args += [] if near_threshold == 1.0 else ["--near-threshold", repr(float(near_threshold))]
    args += [] if edited_copies else ["--no-edited-copies"]
    now = time.time()
    process.write_progress(folder, JobProgress(JobState.RUNNING, "start", started=now, updated=now))
    proc = process.start_worker(folder, "recipe_core.jobs.scan_job", args, what="scan",
                                log_file=LOG_FILE, python=python)  # fmt: skip
    log.info("started scan of %s as pid %d in %s", dataset_root, proc.pid, folder)
    return folder


def run_job(
    dataset: str,
    folder: Path,
    *,
    workspace: Workspace,
    workers: int | None = None,
    near_threshold: float = 1.0,
    edited_copies: bool = True,
) -> ScanResult:
    """The worker's body: scan, reporting progress into `folder`, and write the result."""
    now = time.time()
    state = JobProgress(JobState.RUNNING, "start", pid=os.getpid(), started=now, updated=now)
    with process.ProgressReporter(folder, state, _failure_text) as reporter:

        def progress(stage: str, done: int, total: int) -> None:
            # no write: called per item, the heartbeat carries it to progress.json
            reporter.update(stage=stage, done=done, total=total)

        result = scan(dataset, workspace=workspace, workers=workers, progress=progress,
                      near_threshold=near_threshold, edited_copies=edited_copies)  # fmt: skip
        progress("write", 0, 1)
        write_result(result, folder / RESULT_DIR)
    return result


_failure_text = partial(
    process.failure_text,
    interrupted="The scan was interrupted. Scan again.",
    unexpected=f"The scan failed unexpectedly: {{error}}. See the job's {LOG_FILE}.",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m recipe_core.jobs.scan_job", description=__doc__
    )
    parser.add_argument("dataset")
    parser.add_argument("--job-dir", required=True)
    parser.add_argument("--workspace", default=None)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--near-threshold", type=float, default=1.0)
    parser.add_argument("--no-edited-copies", dest="edited_copies", action="store_false")
    args = parser.parse_args(argv)
    folder = Path(args.job_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return process.run_worker(
        lambda: run_job(
            args.dataset,
            folder,
            workspace=open_workspace(args.workspace),
            workers=args.workers,
            near_threshold=args.near_threshold,
            edited_copies=args.edited_copies,
        ),
        log=log,
    )


if __name__ == "__main__":
    sys.exit(main())
