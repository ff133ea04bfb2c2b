"""The recipe's checks as detached background processes, for the dashboard.

A Streamlit rerun interrupts the script thread, so checks run in `python -m
recipe_core.jobs.check_job DATASET --model M --job-dir DIR`, started in its own session by
`start_check_job`. Each job is a folder `<workspace>/checks/<id>/` holding

    job.json        what was asked: dataset, model, seed, max_seconds, batch_size, timeout_s
                    (written first)
    owner.json      who started it, for the per-user job budget (jobs.owners)
    progress.json   JobProgress (current: the check running), replaced atomically,
                    rewritten at least every HEARTBEAT_S
    report.json     CheckReport.to_dict(), once every check ran
    check.log       the process's output

so any process can list, follow and read jobs, after an app restart too.

    job = start_check_job("sample_data/digits", "mlp", workspace=ws, max_seconds=30)
    while read_check_state(job).state == "running": time.sleep(1)
    report = load_report(job)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from recipe_core.checks.result import (
    CHECKS_DIR,
    JOB_FILE,
    REPORT_FILE,
    CheckReport,
    new_check_folder,
    write_job_file,
    write_report,
)
from recipe_core.errors import ConfigError
from recipe_core.jobs import process
from recipe_core.jobs.deadline import deadline
from recipe_core.jobs.owners import record_owner
from recipe_core.jobs.state import JobProgress, JobState
from recipe_core.settings import load_settings

if TYPE_CHECKING:
    from recipe_core.checks.runner import Progress
from recipe_core.workspace import Workspace

log = logging.getLogger(__name__)

LOG_FILE = "check.log"


@dataclass(frozen=True)
class CheckJob:
    folder: Path  # the job's folder; its name is the job id
    dataset: str  # as given
    model: str
    seed: int
    max_seconds: float | None  # time budget, s (None = unlimited)
    batch_size: int
    created: float  # unix seconds
    only: tuple[str, ...] | None = None  # the checks asked for (None = all)
    pipeline: str = ""  # the user's pipeline spec (then dataset and model are "")
    source: str = "job"  # "job" (run by a worker) | "script" (a report a script saved)
    timeout_s: float | None = None  # hard cap on the worker's wall time, s (None = none)

    @property
    def job_id(self) -> str:
        return self.folder.name


def checks_root(workspace: Workspace) -> Path:
    return workspace.subdir(CHECKS_DIR)


def new_check_job(
    dataset: str | os.PathLike[str],
    model: str,
    *,
    workspace: Workspace,
    seed: int = 0,
    max_seconds: float | None = None,
    batch_size: int = 64,
    only: Sequence[str] | None = None,
    pipeline: str = "",
    timeout_s: float | None = None,
    owner: str = "",
) -> Path:
    """Create a job folder (job.json, a "running" progress.json, owner.json when `owner` is
    given) without starting it: run it with `run_job(folder)` in this process, or let
    `start_check_job` start a worker. `max_seconds` is the checks' own budget (checks left when
    it runs out are skipped); `timeout_s` a hard deadline the worker is stopped at."""
    for key, value in (("max_seconds", max_seconds), ("timeout_s", timeout_s)):
        if value is not None and value <= 0:
            raise ConfigError(
                f"{key}={value}: give a positive number of seconds, or None for no limit (0 "
                "does not mean unlimited)."
            )
    if not pipeline and not os.fspath(dataset):
        raise ConfigError("A check job needs a dataset (with a built-in model) or a pipeline.")
    now = time.time()
    folder = new_check_folder(workspace)
    write_job_file(folder, {"dataset": os.fspath(dataset), "model": model, "seed": seed,
                            "max_seconds": max_seconds, "batch_size": batch_size, "created": now,
                            "only": None if only is None else list(only), "pipeline": pipeline,
                            "source": "job", "timeout_s": timeout_s})  # fmt: skip
    record_owner(folder, owner)
    process.write_progress(folder, JobProgress(JobState.RUNNING, started=now, updated=now))
    return folder


def start_check_job(
    dataset: str | os.PathLike[str],
    model: str,
    *,
    workspace: Workspace,
    seed: int = 0,
    max_seconds: float | None = None,
    batch_size: int = 64,
    only: Sequence[str] | None = None,
    pipeline: str = "",
    timeout_s: float | None = None,
    owner: str = "",
    python: str = sys.executable,
) -> Path:
    """Launch the checks of `model` on `dataset` (or of the user's `pipeline` spec, with
    dataset="") as a detached process; its new job folder. `only` runs a subset of the checks
    by name (default: all). The pipeline's code is imported only in that process. The worker
    is stopped at `timeout_s`; `owner` (an e-mail) is noted for the per-user job budget."""
    folder = new_check_job(dataset, model, workspace=workspace, seed=seed,
                           max_seconds=max_seconds, batch_size=batch_size, only=only,
                           pipeline=pipeline, timeout_s=timeout_s, owner=owner)  # fmt: skip
    args = ["--job-dir", str(folder)]
    proc = process.start_worker(folder, "recipe_core.jobs.check_job", args, what="check",
                                log_file=LOG_FILE, python=python)  # fmt: skip
    log.info("started checks of %s as pid %d in %s", pipeline or f"{model} on {dataset}",
             proc.pid, folder)  # fmt: skip
    return folder


def read_job(folder: str | os.PathLike[str]) -> CheckJob:
    path = Path(folder)
    try:
        data = json.loads((path / JOB_FILE).read_text())
        budget, timeout = data["max_seconds"], data.get("timeout_s")
        return CheckJob(
            path, str(data["dataset"]), str(data["model"]), int(data["seed"]),
            None if budget is None else float(budget), int(data["batch_size"]),
            float(data["created"]), None if data.get("only") is None else tuple(data["only"]),
            str(data.get("pipeline", "")), str(data.get("source", "job")),
            None if timeout is None else float(timeout),
        )  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"{path} is not a check job folder ({JOB_FILE} unreadable: {exc}). Start the checks "
            "again, or delete the folder."
        ) from exc


def list_jobs(workspace: Workspace) -> list[CheckJob]:
    """Every check job of the workspace, newest first (unreadable folders are left out)."""
    jobs = []
    for folder in checks_root(workspace).iterdir():
        if (folder / JOB_FILE).is_file():
            try:
                jobs.append(read_job(folder))
            except ConfigError:
                log.warning("ignoring unreadable check job %s", folder)
    return sorted(jobs, key=lambda j: (j.created, j.job_id), reverse=True)


def read_check_state(folder: str | os.PathLike[str], *, now: float | None = None) -> JobProgress:
    """The job's state; a "running" job without a heartbeat for STALE_S reads as failed."""
    return process.read_progress(folder, what="check", again="Run the checks again",
                                 log_file=LOG_FILE, now=now)  # fmt: skip


def cancel_check_job(folder: str | os.PathLike[str]) -> JobProgress:
    """Stop the checks running in `folder`; no report is written."""
    return process.cancel_worker(Path(folder), what="check", log_file=LOG_FILE)


def load_report(folder: str | os.PathLike[str]) -> CheckReport:
    """The CheckReport a finished job wrote (evidence as plain lists, as in report.json)."""
    path = Path(folder) / REPORT_FILE
    try:
        return CheckReport.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"Cannot read the check report {path}: {exc}. Run the checks again."
        ) from exc


def run_job(folder: Path, *, detached: bool = False) -> CheckReport:
    """The worker's body: build the inputs, run every check reporting progress, write the
    report; stopped at the job's timeout_s. `detached`: this process leads its own process
    group (a worker `start_check_job` started), so a hang past the deadline kills the group."""
    now = time.time()
    state = JobProgress(JobState.RUNNING, pid=os.getpid(), started=now, updated=now)
    with process.ProgressReporter(folder, state, _failure_text, current="") as reporter:

        def progress(done: int, total: int, current: str) -> None:
            reporter.update(done=done, total=total, current=current)
            reporter.write()  # a check takes seconds: show each one as it starts

        job = read_job(folder)
        with deadline(job.timeout_s, _timed_out_text(job.timeout_s), kill_group=detached):
            report = _run_checks(job, progress)
        write_report(folder, report)
    return report


def _timed_out_text(timeout_s: float | None) -> str:
    return (
        f"The checks ran past their {timeout_s or 0:g} s deadline and were stopped (the "
        "server's cap on a check job, [limits] max_check_seconds in recipe.toml). Give them a "
        "smaller time budget, or ask the operator to raise that limit."
    )


def _run_checks(job: CheckJob, progress: Progress) -> CheckReport:
    """The checks of the job's pipeline (imported here, in the worker), or of its built-in
    model over its dataset."""
    from recipe_core.checks import check_pipeline, run_all
    from recipe_core.checks.presets import build_check_inputs

    if job.pipeline:
        from recipe_core.data.pipeline import load_pipeline

        return check_pipeline(load_pipeline(job.pipeline), seed=job.seed, only=job.only,
                              max_seconds=job.max_seconds, progress=progress)  # fmt: skip
    inputs = build_check_inputs(job.dataset, job.model, batch_size=job.batch_size, seed=job.seed)
    return run_all(inputs.factory, inputs.loader, inputs.loss_fn, num_classes=inputs.num_classes,
                   seed=job.seed, only=job.only, max_seconds=job.max_seconds,
                   progress=progress)  # fmt: skip


_failure_text = partial(
    process.failure_text,
    interrupted="The checks were interrupted. Run them again.",
    unexpected=f"The checks failed unexpectedly: {{error}}. See {LOG_FILE}.",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m recipe_core.jobs.check_job", description=__doc__
    )
    parser.add_argument("--job-dir", required=True, help="a folder made by start_check_job")
    args = parser.parse_args(argv)
    from recipe_core.train.models import load_configured_plugins  # imports torch

    load_configured_plugins(load_settings())
    return process.run_worker(partial(run_job, Path(args.job_dir), detached=True), log=log)


if __name__ == "__main__":
    sys.exit(main())
