"""Where jobs run: `submit_run` prepares a run directory and hands it to an executor.

Local subprocesses by default (`LocalExecutor`); the `Executor` protocol is what a Ray executor
implements too.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from recipe_core.executors.base import DEFAULT_GRACE_S, Executor, JobHandle, wait_for
from recipe_core.executors.local import LocalExecutor, process_alive
from recipe_core.runs import RunStatus, RunWriter, list_runs
from recipe_core.train.config import TrainConfig
from recipe_core.train.job import default_run_name
from recipe_core.workspace import Workspace, open_workspace

__all__ = [
    "DEFAULT_GRACE_S",
    "Executor",
    "JobHandle",
    "LocalExecutor",
    "process_alive",
    "refresh_runs",
    "submit_run",
    "wait_for",
]


def submit_run(
    config: TrainConfig,
    *,
    workspace: Workspace | str | os.PathLike[str] | None = None,
    name: str | None = None,
    executor: Executor | None = None,
) -> JobHandle:
    """Create a queued run for `config` and start it on `executor` (local by default)."""
    ws = workspace if isinstance(workspace, Workspace) else open_workspace(workspace)
    local = Path(config.dataset).expanduser()
    if local.exists():  # a job may start in another working directory
        config = replace(config, dataset=str(local.resolve()))
    writer = RunWriter.create(ws, name=name or default_run_name(config), config=config.to_dict())
    return (executor or LocalExecutor()).submit(writer.run_dir)


def refresh_runs(workspace: Workspace, executor: Executor | None = None) -> list[RunStatus]:
    """Every run of the workspace, newest first, after marking unfinished runs whose process
    died as `failed` ("process died"): what a restarted app or `recipe runs list` shows."""
    judge = executor or LocalExecutor()
    return [
        status if status.finished else judge.refresh(workspace.runs / status.run_id)
        for status in list_runs(workspace)
    ]
