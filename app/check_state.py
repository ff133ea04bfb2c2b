"""What the net sees and the recipe's checks: captured batches (cached per dataset, model
and batch index) and background check jobs. recipe_core.checks imports torch: imported inside
the functions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from app import access, data_state, run_state

if TYPE_CHECKING:
    from recipe_core.batch import BatchView
    from recipe_core.checks import CheckReport
    from recipe_core.checks.presets import CheckInputs
    from recipe_core.explore.flags import FileFlags
    from recipe_core.hosting.guard import Guard
    from recipe_core.jobs.check_job import CheckJob
    from recipe_core.jobs.state import JobProgress
    from recipe_core.scan.result import ScanResult


CHECK_JOB_KEY = "selected_check_job"  # folder name of the check job shown on the Checks page


@st.cache_resource(show_spinner="Loading the dataset into tensors…", max_entries=4)
def _check_inputs(resolved: str, model: str, batch_size: int, augment: bool) -> CheckInputs:
    from recipe_core.checks.presets import build_check_inputs

    return build_check_inputs(resolved, model, batch_size=batch_size, augment=augment)


def seen_batch(path: str, model: str, index: int, *, batch_size: int, augment: bool) -> BatchView:
    """Batch `index` as `model(x)` receives it (cached per dataset, model and batch index)."""
    data_state.dataset_source(path)  # refuses paths and links outside the roots
    return _seen_batch(str(access.path_policy().resolve(path)), model, index, batch_size, augment)


def batch_flags(path: str, view: BatchView) -> pd.DataFrame | None:
    """What the last scan of `path` found on the batch's samples: one row per flagged sample
    (position in the batch, sample_id, path, issues, the worst issue's detail), in batch
    order; None when the dataset has no scan (or the batch has no sample ids)."""
    from recipe_core.explore.flags import flags_in_batch

    if view.sample_ids is None:
        return None
    result = data_state.scan_result(access.path_policy().resolve(path))
    return None if result is None else flags_in_batch(result.issues, view.sample_ids)


def pipeline_flags(files: Sequence[str | None] | None) -> FileFlags | None:
    """What a scan found on the files of a captured pipeline batch (seen.json's per-sample
    `files`): the scan of the nearest folder above the first traced file that has a finished
    scan the policy lets this dashboard read. None when the batch was not traced to files or
    no such scan exists."""
    from recipe_core.explore.flags import flags_for_files

    known = [Path(f) for f in files or () if f]
    result = _scan_above(known[0].parent) if known else None
    if result is None or files is None:
        return None
    return flags_for_files(result.issues, result.index.table, result.index.source.root, files)


def _scan_above(folder: Path) -> ScanResult | None:
    # a folder above the roots is not a refusal to audit: the walk just goes past it
    policy = replace(access.path_policy(), on_refuse=None)
    for candidate in (folder, *folder.parents):
        result = data_state.scan_result(candidate) if policy.allows(candidate) else None
        if result is not None:
            return result
    return None


@st.cache_resource(show_spinner="Capturing the batch at model(x)…", max_entries=32)
def _seen_batch(resolved: str, model: str, index: int, batch_size: int, augment: bool) -> BatchView:
    from recipe_core.checks.presets import see_batch

    return see_batch(_check_inputs(resolved, model, batch_size, augment), index)


def check_jobs() -> list[CheckJob]:
    """Every check job of the workspace, newest first."""
    from recipe_core.jobs.check_job import list_jobs

    return list_jobs(access.workspace())


def start_checks(path: str, model: str, *, seed: int, max_seconds: float | None) -> str:
    """Start the checks as a background process (a rerun would kill the script thread); the
    new job becomes the selected one. Returns its id."""
    g = access.guard()
    with g.acting("start_checks", f"{path} ({model})"), access.job_start_lock():
        data_state.dataset_source(path)  # refuses paths and links outside the roots
        target = access.path_policy().resolve(path)
        return _start_check_job(g, target, model, seed=seed, max_seconds=max_seconds)


def start_pipeline_checks(spec: str, *, seed: int, max_seconds: float | None) -> str:
    """Start the checks of a user's pipeline (imported only in the job's own process); the new
    job becomes the selected one. Returns its id."""
    g = access.guard()
    with g.acting("start_checks", spec), access.job_start_lock():
        return _start_check_job(g, "", "", seed=seed, max_seconds=max_seconds, pipeline=spec)


def _start_check_job(
    g: Guard, dataset: str | Path, model: str, *, seed: int, max_seconds: float | None,
    pipeline: str = "",
) -> str:  # fmt: skip
    """Within the per-user limits (the job budget; a time budget up to [limits]
    max_check_seconds, which also stops the worker), start a check job owned by the user."""
    from recipe_core.jobs.check_job import start_check_job

    timeout = g.check_seconds(max_seconds)
    g.check_job(run_state.running_jobs)
    folder = start_check_job(dataset, model, workspace=access.workspace(), seed=seed,
                             max_seconds=max_seconds, pipeline=pipeline, timeout_s=timeout,
                             owner=g.user.email)  # fmt: skip
    st.session_state[CHECK_JOB_KEY] = folder.name
    return folder.name


def cancel_checks(job_id: str) -> JobProgress:
    """Stop a running check job (runners only); no report is written."""
    from recipe_core.jobs.check_job import cancel_check_job, checks_root

    with access.guard().acting("start_checks", f"cancel {job_id}"):
        return cancel_check_job(checks_root(access.workspace()) / job_id)


def check_job_state(job_id: str) -> JobProgress:
    from recipe_core.jobs.check_job import checks_root, read_check_state

    return read_check_state(checks_root(access.workspace()) / job_id)


def check_report(job_id: str) -> CheckReport:
    """The finished job's report (read once per job: a report never changes)."""
    from recipe_core.jobs.check_job import checks_root

    return _check_report(str(checks_root(access.workspace()) / job_id))


@st.cache_resource(show_spinner=False, max_entries=16)
def _check_report(folder: str) -> CheckReport:
    from recipe_core.jobs.check_job import load_report

    return load_report(folder)


def selected_check_job(job_ids: list[str]) -> str:
    """The check job to show: the selected one, else the newest."""
    chosen = st.session_state.get(CHECK_JOB_KEY)
    if chosen not in job_ids:
        chosen = job_ids[0]
        st.session_state[CHECK_JOB_KEY] = chosen
    return str(chosen)


SEE_JOB_KEY = "selected_see_job"  # folder name of the pipeline capture shown on the page


def start_see(spec: str, *, batches: int) -> str:
    """Capture a pipeline's batches at model(x) in a background process (its code is never
    imported here); the new capture becomes the selected one. Returns its id."""
    from recipe_core.jobs.see_job import start_see_job

    g = access.guard()
    with g.acting("start_checks", f"see {spec}"), access.job_start_lock():
        g.check_job(run_state.running_jobs)
        folder = start_see_job(spec, workspace=access.workspace(), batches=batches,
                               owner=g.user.email)  # fmt: skip
    st.session_state[SEE_JOB_KEY] = folder.name
    return folder.name


def see_jobs() -> list[str]:
    """Ids of the captures in the workspace, newest first."""
    from recipe_core.jobs.see_job import seen_root

    root = seen_root(access.workspace())
    return sorted((p.name for p in root.iterdir() if (p / "job.json").is_file()), reverse=True)


def selected_see_job(jobs: list[str]) -> str:
    """The capture this session started last, else the newest."""
    chosen = st.session_state.get(SEE_JOB_KEY)
    return str(chosen) if chosen in jobs else jobs[0]


def see_folder(job_id: str) -> Path:
    from recipe_core.hosting.guard import checked_run_id
    from recipe_core.jobs.see_job import seen_root

    return seen_root(access.workspace()) / checked_run_id(job_id)


def see_state(job_id: str) -> JobProgress:
    from recipe_core.jobs.see_job import read_see_state

    return read_see_state(see_folder(job_id))


def see_spec(job_id: str) -> str:
    from recipe_core.jobs.see_job import read_see_job

    return str(read_see_job(see_folder(job_id)).get("pipeline", ""))


def seen(job_id: str) -> dict[str, Any]:
    """seen.json of a finished capture (read once: it never changes)."""
    return _seen(str(see_folder(job_id)))


@st.cache_resource(show_spinner=False, max_entries=16)
def _seen(folder: str) -> dict[str, Any]:
    from recipe_core.jobs.see_job import load_seen

    return load_seen(folder)
