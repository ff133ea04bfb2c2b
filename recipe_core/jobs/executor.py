"""The executor protocol: how a prepared run directory becomes a running job.

An executor launches `python -m recipe_core.jobs.train_job RUN_DIR` somewhere, can cancel it, and
can tell whether it is still alive. It records who launched the process in the run's job.json, so a
restarted app (a new executor object) can still judge and cancel jobs an earlier one started. The
local executor uses subprocesses; the Ray executor submits Ray Jobs. Both record `executor` in
job.json, so `recipe_core.jobs.executors.executor_for` can pick the right one later.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from recipe_core.errors import RunError
from recipe_core.jobs.process import DEFAULT_GRACE_S
from recipe_core.runs import RunStatus, run_target


@dataclass(frozen=True)
class JobHandle:
    run_id: str
    run_dir: Path
    executor: str  # "local" | "ray"
    job_id: str  # the executor's own id: the pid for local jobs, a submission id for Ray


class Executor(Protocol):
    name: str

    def submit(self, run_dir: Path) -> JobHandle:
        """Start the job for a `queued` run directory (config.json already written)."""
        ...

    def cancel(self, run_dir: Path, *, grace_s: float = DEFAULT_GRACE_S) -> RunStatus:
        """Ask the job to stop, force it after `grace_s`; return the final status."""
        ...

    def refresh(self, run_dir: Path) -> RunStatus:
        """The run's status, after marking it `failed` if its process died unrecorded."""
        ...


def job_target(run_dir: Path) -> str:
    """The one argument of `python -m recipe_core.jobs.train_job TARGET` for a run: its URL when
    the run lives on shared storage (run_dir is then a local cache copy), else its directory."""
    return run_target(run_dir)


def read_job(run_dir: Path) -> dict[str, Any] | None:
    """The run's job.json (who launched its job), None when it was never submitted."""
    try:
        data = json.loads((Path(run_dir) / "job.json").read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise RunError(
            f"{Path(run_dir) / 'job.json'} is malformed ({exc}); Recipe cannot tell where the "
            "job runs. Restore the file, or delete the run folder."
        ) from exc
    if not isinstance(data, dict):
        raise RunError(f"{Path(run_dir) / 'job.json'} is not a JSON object; restore or delete it.")
    return data


def wait_for(
    executor: Executor, run_dir: Path, *, timeout_s: float, poll_s: float = 0.2
) -> RunStatus:
    """Poll until the run ends; RunError when `timeout_s` passes first."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = executor.refresh(run_dir)
        if status.finished:
            return status
        if time.monotonic() > deadline:
            raise RunError(
                f"Run {status.run_id} is still {status.state} after {timeout_s:g} s. "
                "Wait longer, or cancel it with `recipe runs cancel`."
            )
        time.sleep(poll_s)
