"""What the net sees, on a user's pipeline, as a detached process: the dashboard never imports
user code. `python -m recipe_core.jobs.see_job --job-dir DIR` runs `see_pipeline` into a folder
`<workspace>/seen/<id>/` holding

    job.json        the pipeline spec and how many batches (written first)
    owner.json      who started it, for the per-user job budget (jobs.owners)
    progress.json   JobProgress, replaced atomically, rewritten every HEARTBEAT_S
    batch_NNN.png   each batch exactly as model(x) received it, decoded
    seen.json       per batch: layout, shape, dtype, statistics, warnings
    see.log         the process's output

    job = start_see_job("examples/char_lm.py:pipeline", workspace=ws)
    while read_see_state(job).state == "running": time.sleep(1)
    seen = load_seen(job)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

from recipe_core.errors import ConfigError
from recipe_core.jobs import process
from recipe_core.jobs.owners import record_owner
from recipe_core.jobs.state import JobProgress, JobState
from recipe_core.workspace import Workspace

log = logging.getLogger(__name__)

SEEN_DIR, JOB_FILE, SEEN_FILE, LOG_FILE = "seen", "job.json", "seen.json", "see.log"


def seen_root(workspace: Workspace) -> Path:
    return workspace.subdir(SEEN_DIR)


def start_see_job(
    pipeline: str,
    *,
    workspace: Workspace,
    batches: int = 2,
    owner: str = "",
    python: str = sys.executable,
) -> Path:
    """Capture `batches` of the pipeline's batches at model(x) in a detached process; its
    new job folder. `owner` (an e-mail) is noted for the per-user job budget (jobs.owners)."""
    if not 1 <= batches <= 32:
        raise ConfigError(f"batches={batches}: capture between 1 and 32 batches.")
    now = time.time()
    folder = process.new_job_folder(seen_root(workspace))
    job = {"pipeline": pipeline, "batches": batches, "created": now}
    (folder / JOB_FILE).write_text(json.dumps(job, indent=1))
    record_owner(folder, owner)
    process.write_progress(folder, JobProgress(JobState.RUNNING, started=now, updated=now))
    process.start_worker(folder, "recipe_core.jobs.see_job", ["--job-dir", str(folder)],
                         what="see", log_file=LOG_FILE, python=python)  # fmt: skip
    return folder


def read_see_job(folder: str | os.PathLike[str]) -> dict[str, Any]:
    return _read_json(Path(folder) / JOB_FILE)


def read_see_state(folder: str | os.PathLike[str]) -> JobProgress:
    return process.read_progress(folder, what="see", again="Capture the batches again",
                                 log_file=LOG_FILE)  # fmt: skip


def load_seen(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """seen.json of a finished job (picture names are relative to `folder`)."""
    return _read_json(Path(folder) / SEEN_FILE)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Cannot read {path}: {exc}. Capture the batches again.") from exc


def run_job(folder: Path) -> dict[str, Any]:
    """The worker's body: import the pipeline here, capture and decode its batches."""
    from recipe_core.batch.see import see_pipeline
    from recipe_core.data.pipeline import load_pipeline

    now = time.time()
    state = JobProgress(JobState.RUNNING, pid=os.getpid(), started=now, updated=now)
    with process.ProgressReporter(folder, state, _failure_text) as reporter:
        job = read_see_job(folder)
        reporter.update(total=int(job["batches"]))
        reporter.write()
        return see_pipeline(load_pipeline(str(job["pipeline"])), folder,
                            batches=int(job["batches"]))  # fmt: skip


_failure_text = partial(
    process.failure_text,
    interrupted="Capturing the batches was interrupted. Start it again.",
    unexpected=f"Capturing the batches failed unexpectedly: {{error}}. See {LOG_FILE}.",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recipe_core.jobs.see_job",
                                     description=__doc__)  # fmt: skip
    parser.add_argument("--job-dir", required=True, help="a folder made by start_see_job")
    args = parser.parse_args(argv)
    return process.run_worker(partial(run_job, Path(args.job_dir)), log=log)


if __name__ == "__main__":
    sys.exit(main())
