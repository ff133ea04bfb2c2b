"""Training runs for the Runs and Prediction dynamics pages: background jobs whose run
directory is the source of truth, read through one shared incremental reader per run.
recipe_core.train / .jobs.executors / .dynamics import torch: imported inside the functions, so the
data pages never pay for it."""

from __future__ import annotations

import io
import threading
from dataclasses import astuple
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import streamlit as st

from app import access, curves, data_state
from recipe_core import RecipeError
from recipe_core.cluster.jobs_api import find_token
from recipe_core.hosting.guard import checked_run_id
from recipe_core.hosting.limits import record_owner
from recipe_core.jobs.active import ActiveJob, active_jobs
from recipe_core.runs import FinishedRuns, RunReader, RunStatus
from recipe_core.settings import Settings

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from recipe_core.batch import BatchView
    from recipe_core.dynamics import Dynamics
    from recipe_core.dynamics.insides import Insides
    from recipe_core.jobs.executors import Executor, JobHandle
    from recipe_core.train import TrainConfig
    from recipe_core.train.pipeline import PipelineTrainConfig
    from recipe_core.tune.job import SearchJob, SearchSummary


RUN_KEY = "selected_run"  # run_id shown on the Runs and Prediction dynamics pages
FIRST_LAYER_PX = 480  # the first-layer grid is upscaled (nearest) to about this width


def run_executor() -> Executor:
    """The executor for new runs, one per server process and setting: make_executor() follows
    RECIPE_EXECUTOR / RECIPE_RAY_ADDRESS / RECIPE_RAY_PYTHON (local by default; a local one
    reaps the jobs it started). The Ray executor only speaks HTTP to a running cluster's Jobs
    API: the app never starts Ray. Existing runs are judged by the executor in their job.json."""
    settings = access.settings()
    return _run_executor((settings.executor, settings.ray_address, settings.ray_python), settings)


@st.cache_resource(show_spinner=False, max_entries=4)
def _run_executor(key: tuple[str, ...], _settings: Settings) -> Executor:
    """`key`: the settings make_executor() chooses by (`_settings` itself is not hashed)."""
    from recipe_core.jobs.executors import make_executor

    return make_executor(settings=_settings)


def _own_executor() -> Executor | None:
    """run_executor(), or None when RECIPE_EXECUTOR/RECIPE_RAY_ADDRESS are unusable: listing,
    judging and cancelling runs must still work (starting one shows the error)."""
    from recipe_core.errors import ConfigError

    try:
        return run_executor()
    except ConfigError:
        return None


def _judge(path: Path) -> Executor:
    from recipe_core.jobs.executors import executor_for

    return executor_for(path, prefer=_own_executor(), token=find_token(access.settings()))


def runs() -> list[RunStatus]:
    """Every run of the workspace, newest first, each judged by the executor that launched it
    (local or Ray); unfinished runs whose job died are marked failed on the way."""
    from recipe_core.jobs.executors import refresh_runs

    ws = access.workspace()
    finished = _finished_runs(str(ws.root))
    token = find_token(access.settings())
    return refresh_runs(ws, _own_executor(), finished=finished, token=token)


@st.cache_resource(show_spinner=False, max_entries=4)
def _finished_runs(ws_root: str) -> FinishedRuns:
    """Finished runs' statuses (final), shared by every session: each refresh of the Runs page
    reads only the unfinished runs' status files."""
    return {}


def run_dir(run_id: str) -> Path:
    return access.workspace().runs / checked_run_id(run_id)


def submit_run(config: TrainConfig | PipelineTrainConfig, *, name: str | None = None) -> JobHandle:
    """Start `config` (a built-in model's, or a user pipeline's: its code is imported only in
    the job) as a background job: never in the script thread, which a rerun kills. Runners
    only, within the per-user limits; the run records who started it."""
    from recipe_core.train.pipeline import PipelineTrainConfig

    pipeline = isinstance(config, PipelineTrainConfig)
    g = access.guard()
    target = config.pipeline if pipeline else config.dataset
    with g.acting("start_run", target), access.job_start_lock():
        if not pipeline:
            data_state.dataset_source(config.dataset)  # re-checked here, whatever the form did
        steps = config.total_steps if pipeline else config.steps
        g.check_run(steps=steps, name=name, running=running_jobs)
        handle = _submit(config, name=name)
        record_owner(handle.run_dir, g.user)
    return handle


def _submit(config: TrainConfig | PipelineTrainConfig, *, name: str | None) -> JobHandle:
    from recipe_core.jobs.executors import submit_run as submit

    return submit(config, workspace=access.workspace(), name=name, executor=run_executor())


def running_jobs() -> list[ActiveJob]:
    """Every running job of the workspace with its owner, runs judged by their executor: what
    the per-user job budget counts (runs, check jobs, scans and captures together)."""
    return active_jobs(access.workspace(), runs())


def resume_run(run_id: str, more: int) -> JobHandle:
    """Leave a finished built-in run training for `more` steps: the same run, from its last
    checkpoint (weights, optimizer, schedule), as a background job. Runners only, within the
    step limit counted on the run's new total."""
    from recipe_core.jobs.resume import submit_resume

    g = access.guard()
    with g.acting("start_run", run_id), access.job_start_lock():
        done = run_config(run_id).get("steps")
        g.check_run(steps=(done if isinstance(done, int) else 0) + more, name=None,
                    running=running_jobs)  # fmt: skip
        return submit_resume(run_dir(run_id), more, executor=run_executor())


def run_stop(run_id: str) -> dict[str, object]:
    """The run's stop.json (when and why it stopped; {} before it ends, or for scripts)."""
    return _run_json(run_id, "stop.json")


def run_resumes(run_id: str) -> list[dict[str, object]]:
    """Each time the run was left training ({from_step, more, steps, at, optimizer})."""
    history = _run_json(run_id, "resume.json").get("history")
    return [h for h in history if isinstance(h, dict)] if isinstance(history, list) else []


def _run_json(run_id: str, name: str) -> dict[str, object]:
    from recipe_core.runs.files import read_json_object

    return read_json_object(run_dir(run_id) / name)


def cancel_run(run_id: str) -> RunStatus:
    """Cancel a run (runners only)."""
    with access.guard().acting("cancel_run", run_id):
        path = run_dir(run_id)
        return _judge(path).cancel(path)


@st.cache_resource(show_spinner=False, max_entries=64)
def _run_reader(folder: str) -> tuple[RunReader, threading.Lock]:
    """One incremental reader per run, shared by every session: each refresh reads only the
    bytes appended since the last one. The lock keeps two sessions from tailing at once."""
    return RunReader(Path(folder)), threading.Lock()


def captured_batches(run_id: str) -> list[str]:
    """Names of the batches the run captured at model(x) (batches/batch_NNN.npz)."""
    reader, lock = _run_reader(str(run_dir(run_id)))
    with lock:
        return sorted(reader.batch_names())


def captured_batch(run_id: str, name: str) -> tuple[BatchView, bytes]:
    """One captured batch decoded with the same warnings as "What the net sees", its picture as
    PNG bytes (a batch file never changes once written: decoded and encoded once per run and
    name, so a live page that redraws every second re-sends the same bytes, not a new PNG)."""
    return _captured_batch(str(run_dir(run_id)), name)


@st.cache_resource(show_spinner="Decoding the captured batch…", max_entries=32)
def _captured_batch(folder: str, name: str) -> tuple[BatchView, bytes]:
    from recipe_core.batch.see import view_captured

    reader, lock = _run_reader(folder)
    with lock:
        arrays = reader.arrays(name)
    view, picture = view_captured(arrays)
    png = io.BytesIO()
    picture.save(png, format="PNG")
    return view, png.getvalue()


def run_metrics(run_id: str) -> pd.DataFrame:
    reader, lock = _run_reader(str(run_dir(run_id)))
    with lock:
        return reader.metrics()


def run_skipped_rows(run_id: str) -> dict[str, int]:
    """Unreadable rows skipped so far, per run file (see RunReader.skipped_rows)."""
    reader, lock = _run_reader(str(run_dir(run_id)))
    with lock:
        return reader.skipped_rows()


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


def curve_figures(
    run_id: str, metrics: pd.DataFrame, view: curves.ChartView
) -> dict[str, go.Figure]:
    """The run's figures for `metrics` (its rows so far), drawn as `view` says."""
    return _curve_figures(run_id, len(metrics), astuple(view), view, metrics)


@st.cache_resource(show_spinner=False, max_entries=32)
def _curve_figures(
    run_id: str, rows: int, view_key: tuple[object, ...], _view: curves.ChartView,
    _metrics: pd.DataFrame,
) -> dict[str, go.Figure]:  # fmt: skip
    """Built once per (run, row count, chart controls) and shared by every session watching the
    run: five viewers cost one build per new metrics, not five a second. Metric rows are
    append-only, so the row count identifies the content."""
    return curves.curve_figures(_metrics, _view, run_id=run_id)


def chart_choice(key: str, options: list[str], default: list[str]) -> None:
    """Before the multiselect `key` is drawn: keep only the chosen options this run offers (a
    run without a custom metric must not break the picker), `default` when none is left."""
    chosen = [m for m in st.session_state.get(key, default) if m in options]
    st.session_state[key] = chosen or [m for m in default if m in options] or options[:1]


def option_choice(key: str, options: list[str], default: str) -> None:
    """Before the single choice `key` is drawn: `default` (or the first option) unless it
    holds one of `options` (Compare's metric and split depend on the runs chosen)."""
    if st.session_state.get(key) not in options:
        st.session_state[key] = default if default in options else options[0]


def run_insides(run_id: str) -> Insides:
    """The run's per-layer statistics, warnings and first-layer steps (recomputed only when
    insides.jsonl grew or a first-layer snapshot arrived)."""
    folder = run_dir(run_id)
    log = folder / "insides.jsonl"
    size = log.stat().st_size if log.exists() else 0
    snapshots = folder / "insides"
    count = len(list(snapshots.iterdir())) if snapshots.is_dir() else 0
    return _run_insides(str(folder), size, count)


@st.cache_resource(show_spinner=False, max_entries=8)
def _run_insides(folder: str, size: int, snapshots: int) -> Insides:
    from recipe_core.dynamics.insides import read_insides

    reader, lock = _run_reader(folder)
    with lock:
        return read_insides(reader)


def first_layer_picture(run_id: str, step: int, *, since: int | None = None) -> np.ndarray:
    """The first layer's units at `step` as one uint8 grid, upscaled (nearest) for the page;
    with `since`, the change of each unit since that step instead of the weights."""
    return _first_layer_picture(str(run_dir(run_id)), step, since)


@st.cache_resource(show_spinner=False, max_entries=64)
def _first_layer_picture(folder: str, step: int, since: int | None) -> np.ndarray:
    from recipe_core.dynamics.insides import filter_grid

    reader, _ = _run_reader(folder)
    weights = reader.first_layer(step)  # a snapshot never changes once written
    if since is not None:
        weights = weights - reader.first_layer(since)
    grid = filter_grid(weights)
    factor = max(1, FIRST_LAYER_PX // max(grid.shape[:2]))
    return np.repeat(np.repeat(grid, factor, axis=0), factor, axis=1)


def start_search(
    config: TrainConfig, space_text: list[str], *, trials: int, parallel: int, seed: int,
    metric: str,
) -> SearchJob:  # fmt: skip
    """Start a random search (runners only, within the per-user limits: its trials count as
    jobs): the trials are queued runs at once, a background driver runs them."""
    from recipe_core.tune import parse_space
    from recipe_core.tune.job import start_search as start

    g = access.guard()
    with g.acting("start_run", config.dataset), access.job_start_lock():
        data_state.dataset_source(config.dataset)  # re-checked here, whatever the form did
        space = parse_space(space_text)  # a bad line fails before any run
        g.check_run(steps=config.steps, name=None, running=running_jobs)
        return start(config, space, space_text=space_text, trials=trials, seed=seed,
                     parallel=parallel, metric=metric, workspace=access.workspace(),
                     owner=g.user.email)  # fmt: skip


def searches() -> list[SearchSummary]:
    from recipe_core.tune.job import searches as read

    return read(access.workspace())


def cancel_search(search_id: str) -> SearchSummary:
    """Stop a search's running trial(s); its queued ones never start (runners only)."""
    from recipe_core.tune.job import cancel_search as cancel

    with access.guard().acting("cancel_run", f"search {search_id}"):
        return cancel(access.workspace(), search_id)


def common_search(run_ids: list[str]) -> str:
    """The search id every one of `run_ids` is a trial of ("" when they are not one search's)."""
    from recipe_core.tune import tune_info

    found = set()
    for run_id in run_ids:
        try:
            info = tune_info(run_dir(run_id))
        except RecipeError:
            return ""
        found.add(str(info["search_id"]) if info else "")
    return found.pop() if len(found) == 1 else ""


COMPARE_KEY = "compare_runs"  # the Runs page's Compare multiselect


def compare_runs(run_ids: list[str]) -> None:
    """Choose `run_ids` in Compare (a button's callback: before the multiselect is drawn)."""
    st.session_state[COMPARE_KEY] = list(run_ids)
