"""Datasets, scans and curation for the data pages: listings and overviews (cached per
resolved path), the workspace's named (cleaned) datasets, background scans and their results
(cached per result stamp), curation decisions and exports. Mutating calls go through
access.guard()."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import streamlit as st

from app import access
from recipe_core import DatasetOverview, DatasetSource, open_dataset
from recipe_core import summarize as summarize_dataset
from recipe_core.data.named import NamedDataset, list_datasets, named_dataset
from recipe_core.data.safe_paths import PathPolicy
from recipe_core.errors import DatasetError, RunError
from recipe_core.explore.curation import (
    LOG_FILE,
    Decision,
    ExportResult,
    curation_dir,
    export_dataset,
    load_decisions,
    record_decision,
)
from recipe_core.explore.mistakes import (
    RunPredictions,
    join_predictions,
    load_run_predictions,
    merge_label_issues,
    run_label_issues,
    runs_with_predictions,
)
from recipe_core.explore.query import SampleTable, sample_table
from recipe_core.explore.views import overview_from_index
from recipe_core.hosting.guard import checked_run_id
from recipe_core.hosting.limits import check_scan_size
from recipe_core.jobs.scan_job import RESULT_DIR, job_dir, read_state
from recipe_core.jobs.scan_job import cancel_scan as cancel_scan_job
from recipe_core.jobs.scan_job import start_scan as start_scan_job
from recipe_core.jobs.state import JobProgress
from recipe_core.runs import RunReader, RunStatus
from recipe_core.runs.predictions import INDEX as PREDICTION_INDEX
from recipe_core.scan import ScanResult, load_scan
from recipe_core.scan.issues.duplicates import EFFECT_THRESHOLDS
from recipe_core.scan.issues.duplicates import threshold_effect as duplicate_threshold_effect

if TYPE_CHECKING:
    pass


SCAN_WORKERS = 2  # decode processes of an app-started scan: leave the server's cores usable


@st.cache_resource(show_spinner="Listing the dataset…", max_entries=16)
def _dataset_source(resolved: str) -> DatasetSource:
    return open_dataset(resolved)


def dataset_source(path: str) -> DatasetSource:
    """The dataset at `path`; raises DatasetError for paths outside the allowed roots (and, in
    serve mode, for a dataset holding symlinks or manifest paths that lead outside them)."""
    policy = access.path_policy()
    resolved = str(policy.resolve(path))
    source = _dataset_source(resolved)
    policy.resolve(source.root)  # a cleaned manifest's originals: inside the roots too
    if access.serve_config() is not None:
        escapes = _escapes(resolved, policy)
        if escapes:
            message = (
                f"The dataset {resolved} holds {len(escapes)} file(s) or link(s) leading outside "
                f"the folders this dashboard may open (e.g. {escapes[0]!r}). Remove those links, "
                "or ask the operator to add their target to [data] roots."
            )
            if policy.on_refuse is not None:
                policy.on_refuse(resolved, message)
            raise DatasetError(message)
    return source


@st.cache_resource(show_spinner="Checking the dataset's links…", max_entries=16)
def _escapes(resolved: str, _policy: PathPolicy) -> list[str]:
    source = _dataset_source(resolved)
    return _policy.escapes(source.root, source.samples["path"].tolist())


@st.cache_resource(show_spinner="Reading image headers…", max_entries=16)
def _dataset_overview(resolved: str) -> DatasetOverview:
    return summarize_dataset(_dataset_source(resolved))


def dataset_overview(path: str) -> DatasetOverview:
    """Counts and sizes: from the dataset's scan when it is current (no file is opened),
    else from every file's header."""
    target = access.path_policy().resolve(path)
    stamp = _result_stamp(target)
    if stamp is not None and scan_is_current(target, _dataset_source(str(target))):
        return _index_overview(*stamp)
    return _dataset_overview(str(target))


@st.cache_resource(show_spinner=False, max_entries=4)
def _index_overview(folder: str, mtime_ns: int) -> DatasetOverview:
    return overview_from_index(_load_scan(folder, mtime_ns).index.table)


def named_datasets() -> list[NamedDataset]:
    """The workspace's cleaned datasets, newest first (read on each call: a few small files);
    in serve mode only those whose original files lie inside the allowed roots."""
    policy = access.path_policy()
    return [d for d in list_datasets(access.workspace()) if policy.allows(d.root)]


def dataset_record(path: str | Path) -> NamedDataset | None:
    """The named dataset whose manifest `path` is, else None (a folder or a user's manifest)."""
    return named_dataset(path)


def reload_dataset() -> None:
    """Forget cached listings (after files were added or removed on disk)."""
    _dataset_source.clear()
    _dataset_overview.clear()
    _escapes.clear()


def scan_folder(root: Path) -> Path:
    return job_dir(access.workspace(), root)


def scan_state(root: Path) -> JobProgress:
    return read_state(scan_folder(root))


def start_scan(root: Path, near_threshold: float | None = None) -> None:
    """Start a background scan of `root` (runners only; refused over [limits] max_scan_images
    or the per-user job budget); the scan records who started it. `near_threshold` (None:
    the one the last scan used, else the default) is the near-duplicate line."""
    from app import run_state  # here: run_state imports this module

    g = access.guard()
    with g.acting("start_scan", str(root)), access.job_start_lock():
        target = access.path_policy().resolve(root)
        n = len(dataset_source(str(target)).samples)
        if g.limits is not None:
            check_scan_size(n, str(target), g.user, g.limits, g.audit)
        g.check_job(run_state.running_jobs)
        last = scan_result(target)
        if near_threshold is None:
            near_threshold = 1.0 if last is None else last.summary.near_threshold
        edited = True if last is None else last.summary.edited_copies  # kept, like the line
        start_scan_job(target, workspace=access.workspace(), workers=SCAN_WORKERS,
                       owner=g.user.email, near_threshold=near_threshold,
                       edited_copies=edited)  # fmt: skip


def cancel_scan(root: Path) -> None:
    """Stop the running scan of `root` (runners only); its previous result stays."""
    with access.guard().acting("start_scan", f"cancel {root}"):
        cancel_scan_job(scan_folder(root))


def scan_written(root: Path) -> float:
    """When the current scan result of `root` was written (unix seconds; 0 without one)."""
    try:
        return (scan_folder(root) / RESULT_DIR / "summary.json").stat().st_mtime
    except OSError:
        return 0.0


def _result_stamp(root: Path) -> tuple[str, int] | None:
    marker = scan_folder(root) / RESULT_DIR / "summary.json"
    try:
        return str(marker.parent), marker.stat().st_mtime_ns
    except OSError:
        return None


def scan_result(root: Path) -> ScanResult | None:
    """The finished scan of `root` on disk (cached until a rescan replaces it), else None."""
    stamp = _result_stamp(root)
    return None if stamp is None else _load_scan(*stamp)


def threshold_effect(root: Path) -> pd.DataFrame | None:
    """What each near-duplicate threshold (the defaults and the scan's own) would report on
    the scan of `root` (`threshold_effect`), computed once per scan; None without a scan."""
    stamp = _result_stamp(root)
    return None if stamp is None else _threshold_effect(*stamp)


@st.cache_data(show_spinner="Trying each near-duplicate threshold…", max_entries=4)
def _threshold_effect(folder: str, mtime_ns: int) -> pd.DataFrame:
    result = _load_scan(folder, mtime_ns)
    levels = (*EFFECT_THRESHOLDS, result.summary.near_threshold)
    return duplicate_threshold_effect(
        result.index, levels, edited_copies=result.summary.edited_copies
    )


def samples(root: Path) -> SampleTable | None:
    """The scan's query-ready sample table (issue columns computed once per scan)."""
    stamp = _result_stamp(root)
    return None if stamp is None else _sample_table(*stamp)


def scan_is_current(target: Path, source: DatasetSource) -> bool:
    """Whether the scan covers exactly the files listed now (else: suggest a rescan)."""
    stamp = _result_stamp(target)
    return stamp is not None and _same_samples(*stamp, id(source.samples), source)


@st.cache_resource(show_spinner=False, max_entries=4)
def _same_samples(folder: str, mtime_ns: int, listing: int, _source: DatasetSource) -> bool:
    scanned = _load_scan(folder, mtime_ns).index.table["sample_id"].to_numpy()
    listed = _source.samples["sample_id"].to_numpy()
    return len(scanned) == len(listed) and bool(np.array_equal(np.sort(scanned), np.sort(listed)))


@st.cache_resource(show_spinner="Loading the scan…", max_entries=4)
def _load_scan(folder: str, mtime_ns: int) -> ScanResult:
    return load_scan(folder)


@st.cache_resource(show_spinner="Preparing the sample table…", max_entries=4)
def _sample_table(folder: str, mtime_ns: int) -> SampleTable:
    result = _load_scan(folder, mtime_ns)
    return sample_table(result.index.table, result.issues)


def decisions(root: Path) -> dict[int, Decision]:
    log = curation_dir(access.workspace(), root) / LOG_FILE
    try:
        stamp = log.stat().st_mtime_ns, log.stat().st_size
    except OSError:
        return {}
    return _decisions(str(access.workspace().root), str(root), stamp)


@st.cache_resource(show_spinner=False, max_entries=8)
def _decisions(ws_root: str, root: str, stamp: tuple[int, int]) -> dict[int, Decision]:
    return load_decisions(access.workspace(), root)


def decide(
    root: Path, *, sample_id: int, path: str, action: str, label: str = "", old_label: str = ""
) -> Decision:
    """Record a curation decision (runners only)."""
    what = f"{root} #{sample_id} {action} {label}".strip()
    with access.guard().acting("curation_decision", what):
        target = access.path_policy().resolve(root)
        return record_decision(access.workspace(), target, sample_id=sample_id, path=path,
                               action=action, label=label, old_label=old_label)  # fmt: skip


def export_curated(
    source: DatasetSource,
    chosen: dict[int, Decision],
    *,
    fmt: str,
    history: list[Decision],
    target: Path | None = None,
) -> tuple[NamedDataset, ExportResult]:
    """Export the cleaned manifest of dataset `target` (the folder or manifest `source` was
    opened from; default its root) as a named dataset in the workspace (runners only): every
    dataset picker offers it from then on; never overwrites."""
    target = access.path_policy().resolve(target if target is not None else source.root)
    with access.guard().acting("export_manifest", str(target)):
        return export_dataset(access.workspace(), source, chosen, source_path=target, fmt=fmt,
                              log_entries=history)  # fmt: skip


# --- a run's predictions on the data pages (explore/mistakes.py) ------------------------------

RUN_KEY = "mistakes_run"  # run_id whose predictions the data pages join ("" for none)


def prediction_runs(target: Path) -> list[RunStatus]:
    """Runs of the workspace trained on dataset `target` that kept per-sample predictions."""
    return runs_with_predictions(access.workspace(), target)


def point_run_choice(key: str, run_ids: list[str]) -> None:
    """Point the data pages' run selectbox `key` at the picked run ("" when it is gone) before
    it is drawn, so every data page shows the same run."""
    chosen = str(st.session_state.get(RUN_KEY, ""))
    st.session_state[key] = chosen if chosen in run_ids else ""


def run_pick_changed(key: str) -> None:
    """on_change of the run selectbox: its run becomes the pick of every data page."""
    st.session_state[RUN_KEY] = str(st.session_state[key])


def _run_stamp(run_id: str) -> tuple[str, int]:
    folder = access.workspace().runs / checked_run_id(run_id)
    try:
        return str(folder), (folder / PREDICTION_INDEX).stat().st_mtime_ns
    except OSError as error:
        raise RunError(
            f"Run {run_id} has no per-sample predictions (any more); pick another run."
        ) from error


def run_predictions(run_id: str) -> RunPredictions:
    """The run's latest kept evaluation, class names attached (cached until it evaluates)."""
    return _run_predictions(*_run_stamp(run_id))


@st.cache_resource(show_spinner="Reading the run's predictions…", max_entries=8)
def _run_predictions(folder: str, stamp: int) -> RunPredictions:
    return load_run_predictions(Path(folder))


def run_samples(root: Path, table: SampleTable, run: RunPredictions | None) -> SampleTable:
    """The scan's sample table with the run's columns (loss, predicted, ...) joined on."""
    stamp = _result_stamp(root)
    if run is None or stamp is None:
        return table
    return _run_samples(*stamp, *_run_stamp(run.run_id))


@st.cache_resource(show_spinner="Joining the run's predictions…", max_entries=4)
def _run_samples(folder: str, mtime_ns: int, run_folder: str, run_stamp: int) -> SampleTable:
    run = _run_predictions(run_folder, run_stamp)
    return join_predictions(_sample_table(folder, mtime_ns), run)


def run_issues(root: Path, run: RunPredictions) -> pd.DataFrame:
    """The scan's issues with label_issue rows from confident learning on the run's validation
    probabilities where it scored the sample (column `signal`: "scan" | "run")."""
    stamp = _result_stamp(root)
    if stamp is None:
        raise DatasetError(f"{root} has no scan yet; scan it first.")
    return _run_issues(*stamp, *_run_stamp(run.run_id))


@st.cache_resource(show_spinner="Confident learning on the run's predictions…", max_entries=4)
def _run_issues(folder: str, mtime_ns: int, run_folder: str, run_stamp: int) -> pd.DataFrame:
    result = _load_scan(folder, mtime_ns)
    table = result.index.table
    found = run_label_issues(table, _run_predictions(run_folder, run_stamp))
    return merge_label_issues(result.issues, found, table)


def prediction_history(run_id: str, sample_id: int) -> pd.DataFrame:
    """One sample's predictions at every evaluation the run kept in full, by step."""
    return _prediction_history(*_run_stamp(run_id), sample_id)


@st.cache_resource(show_spinner=False, max_entries=16)
def _prediction_history(folder: str, stamp: int, sample_id: int) -> pd.DataFrame:
    return RunReader(Path(folder)).prediction_history(sample_id)
