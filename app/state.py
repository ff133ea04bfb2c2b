"""The only module that touches `st.session_state` and `st.cache_*`.

Everything cached here is a `recipe_core` result; `cache_resource` (not `cache_data`) because the
results are large and read-only, and `cache_data` would copy them on every rerun. Cache keys
carry the workspace root and file stamps, so a rescan or another workspace never sees stale
entries.
"""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import streamlit as st

from recipe_core import DatasetOverview, DatasetSource, Workspace, open_dataset, open_workspace
from recipe_core import summarize as summarize_dataset
from recipe_core.curation import (
    LOG_FILE,
    Decision,
    ExportResult,
    curation_dir,
    export_manifest,
    load_decisions,
    record_decision,
)
from recipe_core.data_views import overview_from_index
from recipe_core.errors import DatasetError
from recipe_core.hosting import AuditLog, ServeConfig, User, identify, load_config
from recipe_core.hosting.guard import Guard, checked_run_id
from recipe_core.hosting.limits import check_scan_size, record_owner
from recipe_core.query import SampleFilter, SampleTable, sample_table
from recipe_core.runs import RunReader, RunStatus
from recipe_core.safe_paths import PathPolicy, default_policy
from recipe_core.scan import ScanResult
from recipe_core.scan_jobs import RESULT_DIR, ScanJobState, job_dir, load_scan, read_state
from recipe_core.scan_jobs import start_scan as start_scan_job

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DATASET = REPO_ROOT / "sample_data" / "digits"
DATASET_KEY = "dataset_path"
FILTER_KEY = "sample_filter"  # the Browse filter (a SampleFilter), shared by the data pages
SELECTED_KEY = "selected_sample"  # sample_id of the sample in the detail panel
SCAN_WORKERS = 2  # decode processes of an app-started scan: leave the server's cores usable
CONFIG_ENV = "RECIPE_CONFIG"  # set by `recipe serve`: the hosted mode's recipe.toml
AUDIT_FILE = "audit.jsonl"
REFUSED_KEY = "_last_refused_path"  # audit a refused path once, not on every rerun
SIGNED_IN_KEY = "_audited_sign_in"


def default_dataset() -> str:
    """The dataset `recipe app DATASET` was started with, else the bundled sample data (in
    serve mode: the first configured data root)."""
    config = serve_config()
    if config is not None:
        return str(config.roots[0])
    return os.environ.get("RECIPE_DATASET") or str(SAMPLE_DATASET)


def current_dataset() -> str:
    if DATASET_KEY not in st.session_state:
        st.session_state[DATASET_KEY] = default_dataset()
    return str(st.session_state[DATASET_KEY])


def current_target() -> Path:
    """The current dataset's resolved path (folder or manifest file): the key of its scan
    and its curation decisions."""
    return path_policy().resolve(current_dataset())


def set_dataset(path: str) -> None:
    if st.session_state.get(DATASET_KEY) != path:
        st.session_state[FILTER_KEY] = SampleFilter()  # another dataset's classes don't apply
        st.session_state.pop(SELECTED_KEY, None)
    st.session_state[DATASET_KEY] = path


def workspace() -> Workspace:
    config = serve_config()
    if config is not None:
        return _workspace(str(config.workspace.path))
    return _workspace(os.environ.get("RECIPE_WORKSPACE", ""))


@st.cache_resource(show_spinner=False, max_entries=4)
def _workspace(env_value: str) -> Workspace:
    return open_workspace(env_value or None)


def path_policy() -> PathPolicy:
    """Folders typed paths may reach (cwd, sample_data/, --data-root ...; in serve mode only
    the configured roots): see safe_paths. Each refusal is audited."""
    config = serve_config()
    if config is not None:
        return PathPolicy.from_roots(config.roots, on_refuse=_path_refused)
    return replace(default_policy(), on_refuse=_path_refused)


def _path_refused(typed: str, message: str) -> None:
    """Audit a refused path once per session and path (every rerun re-resolves it)."""
    if st.session_state.get(REFUSED_KEY) != typed:
        st.session_state[REFUSED_KEY] = typed
        guard().path_refused(typed, message)


# --- who is asking: serve mode's config, the signed-in user, the guard of mutating actions ---


def serve_config() -> ServeConfig | None:
    """The `recipe serve` config ($RECIPE_CONFIG), or None in the local `recipe app`."""
    path = os.environ.get(CONFIG_ENV, "")
    return _serve_config(path) if path else None


@st.cache_resource(show_spinner=False, max_entries=2)
def _serve_config(path: str) -> ServeConfig:
    config = load_config(path)
    if config.plugins is not None:  # already loaded when $RECIPE_PLUGINS was set: a no-op
        from recipe_core.models import load_plugin_folder

        load_plugin_folder(config.plugins)
    return config


def current_user() -> User:
    """The local runner; in serve mode without sign-in everyone gets [access] local_role; with
    sign-in the OIDC user (role None when not on the allow-list, e-mail "" when signed out).
    local_role never applies when sign-in is on."""
    return identify(serve_config(), st.user if _auth_on() else {})


def _auth_on() -> bool:
    config = serve_config()
    return config is not None and config.auth_on


def can(action: str) -> bool:
    """Whether the current user's role allows `action` (to hide controls; the state functions
    re-check)."""
    return current_user().can(action)


def guard() -> Guard:
    config = serve_config()
    audit = AuditLog(workspace().root / AUDIT_FILE)
    return Guard(current_user(), audit, None if config is None else config.limits)


def note_sign_in(user: User) -> None:
    """Audit a sign-in (or its refusal) once per browser session."""
    if st.session_state.get(SIGNED_IN_KEY) == user.email:
        return
    st.session_state[SIGNED_IN_KEY] = user.email
    g = guard()
    if user.role is None:
        g.audit.record(user.email, "", "sign_in_refused", outcome="denied",
                       detail="not on the allow-list")  # fmt: skip
    else:
        g.audit.record(user.email, user.role, "sign_in")


def max_steps() -> int | None:
    config = serve_config()
    return None if config is None else config.limits.max_steps


def unauthenticated_network() -> bool:
    """Served beyond loopback with nobody signing in (the operator's override is on)."""
    config = serve_config()
    if config is None:
        return os.environ.get("RECIPE_UNAUTHENTICATED_NETWORK") == "1"
    return config.unauthenticated_network


@st.cache_resource(show_spinner="Listing the dataset…", max_entries=16)
def _dataset_source(resolved: str) -> DatasetSource:
    return open_dataset(resolved)


def dataset_source(path: str) -> DatasetSource:
    """The dataset at `path`; raises DatasetError for paths outside the allowed roots (and, in
    serve mode, for a dataset holding symlinks or manifest paths that lead outside them)."""
    policy = path_policy()
    resolved = str(policy.resolve(path))
    source = _dataset_source(resolved)
    if serve_config() is not None:
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
    target = path_policy().resolve(path)
    stamp = _result_stamp(target)
    if stamp is not None and scan_is_current(target, _dataset_source(str(target))):
        return _index_overview(*stamp)
    return _dataset_overview(str(target))


@st.cache_resource(show_spinner=False, max_entries=4)
def _index_overview(folder: str, mtime_ns: int) -> DatasetOverview:
    return overview_from_index(_load_scan(folder, mtime_ns).index.table)


def reload_dataset() -> None:
    """Forget cached listings (after files were added or removed on disk)."""
    _dataset_source.clear()
    _dataset_overview.clear()
    _escapes.clear()


def page_number(key: str) -> int:
    """The page a page-number widget shows (1 before it was first drawn)."""
    return int(st.session_state.get(key, 1))


def clamp_page(key: str, n_pages: int) -> None:
    """Keep a page-number widget's value in range when a filter shrinks the page count."""
    page = int(st.session_state.get(key, 1))
    st.session_state[key] = min(max(page, 1), max(n_pages, 1))


# --- scans: run in a background process, results read from the workspace -----------------


def scan_folder(root: Path) -> Path:
    return job_dir(workspace(), root)


def scan_state(root: Path) -> ScanJobState:
    return read_state(scan_folder(root))


def start_scan(root: Path) -> None:
    """Start a background scan of `root` (runners only; refused over [limits] max_scan_images)."""
    g = guard()
    with g.acting("start_scan", str(root)):
        target = path_policy().resolve(root)
        n = len(dataset_source(str(target)).samples)
        if g.limits is not None:
            check_scan_size(n, str(target), g.user, g.limits, g.audit)
        start_scan_job(target, workspace=workspace(), workers=SCAN_WORKERS)


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


# --- the shared filter and the selected sample ------------------------------------------------


def browse_filter() -> SampleFilter:
    spec = st.session_state.get(FILTER_KEY)
    return spec if isinstance(spec, SampleFilter) else SampleFilter()


def set_browse_filter(spec: SampleFilter) -> None:
    st.session_state[FILTER_KEY] = spec


def show_issues(issues: tuple[str, ...]) -> None:
    """Reset the Browse filter to `issues` only (the overview's issue cards link here)."""
    set_browse_filter(replace(SampleFilter(), issues=issues))
    for key in [k for k in st.session_state if str(k).startswith("flt_")]:
        del st.session_state[key]  # filter widgets re-read the new filter


def widget_value(key: str, default: object) -> None:
    """Seed a widget's session value once (so a filter set elsewhere shows in its widget)."""
    if key not in st.session_state:
        st.session_state[key] = default


def selected_sample() -> int | None:
    value = st.session_state.get(SELECTED_KEY)
    return int(value) if value is not None else None


def select_sample(sample_id: int | None) -> None:
    st.session_state[SELECTED_KEY] = sample_id


def remember(key: str, value: object) -> object:
    """Store `value` under `key`; returns the previous value (None when new)."""
    previous = st.session_state.get(key)
    st.session_state[key] = value
    return previous


# --- curation ---------------------------------------------------------------------------------


def decisions(root: Path) -> dict[int, Decision]:
    log = curation_dir(workspace(), root) / LOG_FILE
    try:
        stamp = log.stat().st_mtime_ns, log.stat().st_size
    except OSError:
        return {}
    return _decisions(str(workspace().root), str(root), stamp)


@st.cache_resource(show_spinner=False, max_entries=8)
def _decisions(ws_root: str, root: str, stamp: tuple[int, int]) -> dict[int, Decision]:
    return load_decisions(workspace(), root)


def decide(
    root: Path, *, sample_id: int, path: str, action: str, label: str = "", old_label: str = ""
) -> Decision:
    """Record a curation decision (runners only)."""
    with guard().acting("curation_decision", f"{root} #{sample_id} {action} {label}".strip()):
        return record_decision(workspace(), path_policy().resolve(root), sample_id=sample_id,
                               path=path, action=action, label=label,
                               old_label=old_label)  # fmt: skip


def export_curated(
    source: DatasetSource, chosen: dict[int, Decision], *, fmt: str, history: list[Decision]
) -> ExportResult:
    """Write the cleaned manifest into the workspace (runners only); never overwrites."""
    target = path_policy().resolve(source.root)
    with guard().acting("export_manifest", str(target)):
        stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%d-%H%M%S")
        folder = curation_dir(workspace(), target) / "exports" / stamp
        return export_manifest(source, chosen, folder, fmt=fmt, log_entries=history)


# --- training runs: background jobs; each run's directory is the source of truth ------------
# recipe_core.train / .executors / .dynamics import torch: imported inside the functions below,
# so the data pages never pay for it.

if TYPE_CHECKING:
    from recipe_core.dynamics import Dynamics
    from recipe_core.executors import Executor, JobHandle
    from recipe_core.train import TrainConfig

RUN_KEY = "selected_run"  # run_id shown on the Runs and Prediction dynamics pages


@st.cache_resource(show_spinner=False)
def run_executor() -> Executor:
    """The executor for new runs, one per server process: make_executor() reads
    RECIPE_EXECUTOR / RECIPE_RAY_ADDRESS (local by default; a local one reaps the jobs it
    started). The Ray executor only speaks HTTP to a running cluster's Jobs API: the app never
    starts Ray. Existing runs are judged by the executor named in their job.json."""
    from recipe_core.executors import make_executor

    return make_executor()


def _own_executor() -> Executor | None:
    """run_executor(), or None when RECIPE_EXECUTOR/RECIPE_RAY_ADDRESS are unusable: listing,
    judging and cancelling runs must still work (starting one shows the error)."""
    from recipe_core.errors import ConfigError

    try:
        return run_executor()
    except ConfigError:
        return None


def _judge(path: Path) -> Executor:
    from recipe_core.executors import executor_for

    return executor_for(path, prefer=_own_executor())


def runs() -> list[RunStatus]:
    """Every run of the workspace, newest first, each judged by the executor that launched it
    (local or Ray); unfinished runs whose job died are marked failed on the way."""
    from recipe_core.executors import refresh_runs

    return refresh_runs(workspace(), _own_executor())


def run_dir(run_id: str) -> Path:
    return workspace().runs / checked_run_id(run_id)


def submit_run(config: TrainConfig, *, name: str | None = None) -> JobHandle:
    """Start `config` as a background job: never in the script thread, which a rerun kills.
    Runners only, within the per-user limits; the run records who started it."""
    g = guard()
    with g.acting("start_run", config.dataset), _submit_lock():
        dataset_source(config.dataset)  # re-checked here, whatever the form did
        g.check_run(steps=config.steps, name=name, statuses=runs(), runs_root=workspace().runs)
        handle = _submit(config, name=name)
        record_owner(handle.run_dir, g.user)
    return handle


def _submit(config: TrainConfig, *, name: str | None) -> JobHandle:
    from recipe_core.executors import submit_run as submit

    return submit(config, workspace=workspace(), name=name, executor=run_executor())


@st.cache_resource(show_spinner=False)
def _submit_lock() -> threading.Lock:
    """One submission at a time per server, so two tabs cannot both pass the job limit."""
    return threading.Lock()


def cancel_run(run_id: str) -> RunStatus:
    """Cancel a run (runners only)."""
    with guard().acting("cancel_run", run_id):
        path = run_dir(run_id)
        return _judge(path).cancel(path)


@st.cache_resource(show_spinner=False, max_entries=64)
def _run_reader(folder: str) -> tuple[RunReader, threading.Lock]:
    """One incremental reader per run, shared by every session: each refresh reads only the
    bytes appended since the last one. The lock keeps two sessions from tailing at once."""
    return RunReader(Path(folder)), threading.Lock()


def run_metrics(run_id: str) -> pd.DataFrame:
    reader, lock = _run_reader(str(run_dir(run_id)))
    with lock:
        return reader.metrics()


def run_config(run_id: str) -> dict[str, object]:
    reader, _ = _run_reader(str(run_dir(run_id)))
    return reader.config()


def run_log(run_id: str) -> str:
    reader, _ = _run_reader(str(run_dir(run_id)))
    return reader.log_tail()


def run_dynamics(run_id: str) -> Dynamics:
    """The probe batch's predictions so far (recomputed only when dynamics.jsonl grew)."""
    file = run_dir(run_id) / "dynamics.jsonl"
    size = file.stat().st_size if file.exists() else 0
    return _run_dynamics(str(run_dir(run_id)), size)


@st.cache_resource(show_spinner=False, max_entries=8)
def _run_dynamics(folder: str, size: int) -> Dynamics:
    from recipe_core.dynamics import read_dynamics

    reader, lock = _run_reader(folder)
    with lock:
        return read_dynamics(reader)


def probe_images(run_id: str) -> np.ndarray:
    """(P, C, H, W) uint8 probe images as the net saw them (before normalisation)."""
    file = run_dir(run_id) / "probe.npz"
    stamp = file.stat().st_mtime_ns if file.exists() else 0
    return _probe_images(str(run_dir(run_id)), stamp)


@st.cache_resource(show_spinner=False, max_entries=8)
def _probe_images(folder: str, mtime_ns: int) -> np.ndarray:
    reader, _ = _run_reader(folder)
    return reader.arrays("probe.npz").get("images", np.zeros((0, 1, 1, 1), np.uint8))


@st.cache_resource(show_spinner=False)
def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def selected_run() -> str | None:
    value = st.session_state.get(RUN_KEY)
    return str(value) if value else None


def select_run(run_id: str) -> None:
    st.session_state[RUN_KEY] = run_id


def follow_step(key: str, steps: list[int], *, play: bool) -> None:
    """Set the step slider `key` before it is drawn: the next snapshot while playing (looping),
    the newest one when it showed the newest before new snapshots arrived, else unchanged."""
    last_key = f"{key}__last"
    current, previous_last = st.session_state.get(key), st.session_state.get(last_key)
    if current not in steps or (current == previous_last and not play):
        st.session_state[key] = steps[-1]
    elif play:
        st.session_state[key] = steps[(steps.index(current) + 1) % len(steps)]
    st.session_state[last_key] = steps[-1]


def run_choice(key: str, run_ids: list[str]) -> None:
    """Point the run selectbox `key` at the selected run (the newest when none) before it is
    drawn, so every page shows the same run."""
    chosen = selected_run()
    if chosen not in run_ids:
        chosen = run_ids[0]
        select_run(chosen)
    st.session_state[key] = chosen


def run_picked(key: str) -> None:
    """on_change of a run selectbox: its run becomes the selected run on every page."""
    select_run(str(st.session_state[key]))


def run_status(run_id: str) -> RunStatus:
    """The run's status now (marked failed if its job died unrecorded), local or on Ray."""
    path = run_dir(run_id)
    return _judge(path).refresh(path)


# --- what the net sees and the checks ---------------------------------------------------------
# recipe_core.checks imports torch: imported inside the functions, as for training runs.

if TYPE_CHECKING:
    from recipe_core.batch import BatchView
    from recipe_core.check_jobs import CheckJob, CheckJobState
    from recipe_core.checks import CheckReport
    from recipe_core.checks.presets import CheckInputs

CHECK_JOB_KEY = "selected_check_job"  # folder name of the check job shown on the Checks page


@st.cache_resource(show_spinner="Loading the dataset into tensors…", max_entries=4)
def _check_inputs(resolved: str, model: str, batch_size: int, augment: bool) -> CheckInputs:
    from recipe_core.checks.presets import build_check_inputs

    return build_check_inputs(resolved, model, batch_size=batch_size, augment=augment)


def seen_batch(path: str, model: str, index: int, *, batch_size: int, augment: bool) -> BatchView:
    """Batch `index` as `model(x)` receives it (cached per dataset, model and batch index)."""
    dataset_source(path)  # refuses paths and links outside the roots
    return _seen_batch(str(path_policy().resolve(path)), model, index, batch_size, augment)


@st.cache_resource(show_spinner="Capturing the batch at model(x)…", max_entries=32)
def _seen_batch(resolved: str, model: str, index: int, batch_size: int, augment: bool) -> BatchView:
    from recipe_core.checks.presets import see_batch

    return see_batch(_check_inputs(resolved, model, batch_size, augment), index)


def check_jobs() -> list[CheckJob]:
    """Every check job of the workspace, newest first."""
    from recipe_core.check_jobs import list_jobs

    return list_jobs(workspace())


def start_checks(path: str, model: str, *, seed: int, max_seconds: float | None) -> str:
    """Start the checks as a background process (a rerun would kill the script thread); the
    new job becomes the selected one. Returns its id."""
    from recipe_core.check_jobs import start_check_job

    with guard().acting("start_checks", f"{path} ({model})"):
        dataset_source(path)  # refuses paths and links outside the roots
        folder = start_check_job(path_policy().resolve(path), model, workspace=workspace(),
                                 seed=seed, max_seconds=max_seconds)  # fmt: skip
    st.session_state[CHECK_JOB_KEY] = folder.name
    return folder.name


def check_job_state(job_id: str) -> CheckJobState:
    from recipe_core.check_jobs import checks_root, read_check_state

    return read_check_state(checks_root(workspace()) / job_id)


def check_report(job_id: str) -> CheckReport:
    """The finished job's report (read once per job: a report never changes)."""
    from recipe_core.check_jobs import checks_root

    return _check_report(str(checks_root(workspace()) / job_id))


@st.cache_resource(show_spinner=False, max_entries=16)
def _check_report(folder: str) -> CheckReport:
    from recipe_core.check_jobs import load_report

    return load_report(folder)


def selected_check_job(job_ids: list[str]) -> str:
    """The check job to show: the selected one, else the newest."""
    chosen = st.session_state.get(CHECK_JOB_KEY)
    if chosen not in job_ids:
        chosen = job_ids[0]
        st.session_state[CHECK_JOB_KEY] = chosen
    return str(chosen)


def shift_page(key: str, delta: int, n_pages: int) -> None:
    """on_click of previous/next buttons: move the page-number widget `key` by `delta`."""
    st.session_state[key] = min(max(page_number(key) + delta, 1), max(n_pages, 1))
