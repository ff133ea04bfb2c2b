"""Where jobs run: `submit_run` prepares a run directory and hands it to an executor.

`make_executor` picks the executor for new runs (`local` subprocesses by default, `ray` for a
Ray cluster's Jobs API; the edge's `Settings` give the defaults: RECIPE_EXECUTOR,
RECIPE_RAY_ADDRESS, ...). `executor_for` picks the one for an existing run from its job.json, so
a restarted app or the CLI can judge and cancel a run without being told where it runs. Ray is
never imported here: `RayExecutor` imports it inside the methods that need it.

`submit_run` is a package-face call a script makes without a `Settings`: with no executor it
reads this process's settings once (`load_settings`).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from recipe_core.cluster.jobs_api import find_token
from recipe_core.errors import ConfigError, RunError
from recipe_core.jobs.executor import (
    Executor,
    JobHandle,
    job_target,
    read_job,
    wait_for,
)
from recipe_core.jobs.local import LocalExecutor
from recipe_core.jobs.process import DEFAULT_GRACE_S, process_alive
from recipe_core.runs import FinishedRuns, RunStatus, RunWriter, list_runs, remember_finished
from recipe_core.settings import Settings, load_settings
from recipe_core.workspace import Workspace, open_workspace

if TYPE_CHECKING:  # recipe_core.train imports torch: only submit_run needs it, at call time
    from recipe_core.jobs.ray import RayExecutor
    from recipe_core.train.config import TrainConfig
    from recipe_core.train.pipeline import PipelineTrainConfig

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_GRACE_S",
    "EXECUTORS",
    "Executor",
    "JobHandle",
    "LocalExecutor",
    "executor_for",
    "job_target",
    "make_executor",
    "process_alive",
    "read_job",
    "refresh_runs",
    "submit_run",
    "wait_for",
]

EXECUTORS = ("local", "ray")


def make_executor(
    name: str | None = None,
    *,
    settings: Settings,
    ray_address: str | None = None,
    ray_python: str | None = None,
) -> Executor:
    """The executor for new runs: `name` (else settings.executor, else "local"); for "ray",
    the cluster's dashboard URL `ray_address` (else settings.ray_address) and the interpreter
    `ray_python` (else settings.ray_python). Local jobs inherit `settings.environ`."""
    chosen = (name or settings.executor or "local").strip().lower()
    if chosen == "local":
        return LocalExecutor(environ=settings.environ)
    if chosen != "ray":
        raise ConfigError(
            f"Unknown executor {chosen!r}. Use one of: {', '.join(EXECUTORS)} "
            "(--executor or RECIPE_EXECUTOR)."
        )
    address = ray_address or settings.ray_address
    if not address:
        raise ConfigError(
            "The ray executor needs the cluster's Jobs API address: pass --ray-address "
            "http://HOST:8265 or set RECIPE_RAY_ADDRESS (start a cluster with "
            "`ray start --head`)."
        )
    return _ray_executor(address, python=ray_python or settings.ray_python, settings=settings)


def _ray_executor(address: str, *, python: str, settings: Settings) -> RayExecutor:
    if importlib.util.find_spec("ray") is None:  # finds without importing
        raise ConfigError(
            "The ray executor needs Ray, which is not installed: pip install 'recipe[ray]'."
        )
    from recipe_core.jobs.ray import RayExecutor

    return RayExecutor(address, python=python or None, token=find_token(settings),
                       gpu_autoscaling=settings.ray_gpu_autoscaling,
                       pythonpath=settings.pythonpath)  # fmt: skip


def executor_for(
    run_dir: Path,
    cache: dict[str, Executor] | None = None,
    *,
    prefer: Executor | None = None,
    token: str | None = None,
) -> Executor:
    """The executor that launched the run (from its job.json); local for never-submitted runs.
    `prefer` is returned when it is that executor (a local one reaps the children it started);
    `cache` (one entry per executor and address) lets many runs share one connection; `token`
    is the Ray cluster's (`find_token(settings)` at the edge; None: none sent)."""
    job = read_job(Path(run_dir)) or {}
    name = str(job.get("executor", "local"))
    key = f"{name}:{job.get('address', '')}" if name != "local" else "local:"
    if prefer is not None and _key(prefer) == key:
        return prefer
    if cache is not None and key in cache:
        return cache[key]
    if name == "local":
        executor: Executor = LocalExecutor()
    elif name == "ray" and job.get("address"):
        from recipe_core.jobs.ray import RayExecutor  # judging needs HTTP only, not Ray

        executor = RayExecutor(str(job["address"]), token=token)
    else:
        raise RunError(
            f"{Path(run_dir) / 'job.json'} names executor {name!r} (address "
            f"{job.get('address')!r}); Recipe knows {', '.join(EXECUTORS)}. Restore the file."
        )
    if cache is not None:
        cache[key] = executor
    return executor


def _key(executor: Executor) -> str:
    return f"{executor.name}:{getattr(executor, 'address', '')}"


def submit_run(
    config: TrainConfig | PipelineTrainConfig,
    *,
    workspace: Workspace | str | os.PathLike[str] | None = None,
    name: str | None = None,
    executor: Executor | None = None,
    settings: Settings | None = None,
) -> JobHandle:
    """Create a queued run for `config` (a built-in model's, or a user pipeline's) and start it
    on `executor` (default: `make_executor(settings=settings)`, local unless RECIPE_EXECUTOR
    says otherwise). `settings` default to this process's (`load_settings()`, read once);
    they also pick the workspace when `workspace` is not given."""
    from recipe_core.train.pipeline import PipelineTrainConfig, pipeline_run_name
    from recipe_core.train.run import default_run_name

    settings = settings if settings is not None else load_settings()
    ws = (
        workspace
        if isinstance(workspace, Workspace)
        else open_workspace(workspace, settings=settings)
    )
    chosen = executor or make_executor(settings=settings)  # fails before a run exists
    if isinstance(config, PipelineTrainConfig):
        target, sep, attr = config.pipeline.rpartition(":")
        if target.endswith(".py") and Path(target).expanduser().is_file():
            config = replace(config, pipeline=f"{Path(target).expanduser().resolve()}{sep}{attr}")
        run_name = name or pipeline_run_name(config)
    else:
        local = Path(config.dataset).expanduser()
        if local.exists():  # a job may start in another working directory
            config = replace(config, dataset=str(local.resolve()))
        run_name = name or default_run_name(config)
    writer = RunWriter.create(ws, name=run_name, config=config.to_dict())
    try:
        return chosen.submit(writer.run_dir)
    except Exception as exc:  # a refused submission leaves no run stuck in `queued`
        writer.finish("failed", error=f"Could not start the job: {exc}")
        raise


def refresh_runs(
    workspace: Workspace,
    executor: Executor | None = None,
    *,
    finished: FinishedRuns | None = None,
    token: str | None = None,
) -> list[RunStatus]:
    """Every run of the workspace, newest first, each judged by the executor that launched it
    (`executor` for its own runs: it reaps its children), after marking unfinished runs whose
    job died as `failed`: what a restarted app, `recipe runs list` and the Runs page show.
    `finished`: see `list_runs` (runs judged finished here are added to it too); `token`: the
    Ray cluster's, for runs on Ray (see `executor_for`)."""
    cache: dict[str, Executor] = {}
    statuses = []
    for status in list_runs(workspace, finished=finished):
        if not status.finished:
            run_dir = workspace.runs / status.run_id
            try:
                status = executor_for(run_dir, cache, prefer=executor, token=token).refresh(run_dir)
            except (RunError, ConfigError) as exc:  # one broken run must not hide the others
                log.warning("Cannot judge run %s: %s", status.run_id, exc)
            remember_finished(finished, run_dir, status)
        statuses.append(status)
    return statuses
