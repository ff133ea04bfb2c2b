"""Local executor: each job is a subprocess of its own session, so it outlives the app.

job.json records (pid, pid start time, host): with it a fresh executor (a restarted app, the
CLI) can tell a live job from a dead one, and from an unrelated process that reused the pid.

A job process inherits the environment the caller gives (`environ`: `make_executor` passes the
edge's `Settings.environ`), so a variable the parent sets reaches the job's own entry point.
`LocalExecutor` is also a package-face name a script constructs without a `Settings`: then the
environment is this process's, read (`load_settings`) when a job starts.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from recipe_core.errors import RunError
from recipe_core.jobs.executor import JobHandle, job_target
from recipe_core.jobs.process import (
    DEFAULT_GRACE_S,
    process_alive,
    process_token,
    spawn,
    stop_process,
)
from recipe_core.jobs.state import JobState
from recipe_core.runs import RunFiles, RunStatus, RunWriter, now_iso, read_status, sync_run
from recipe_core.settings import load_settings

log = logging.getLogger(__name__)


class LocalExecutor:
    """Runs jobs as `python -m recipe_core.jobs.train_job RUN_DIR` subprocesses, several at once,
    started and stopped as every detached process is (`recipe_core.jobs.process`)."""

    name = "local"

    def __init__(
        self,
        *,
        python: str | None = None,
        env: Mapping[str, str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """`env`: variables added for the jobs; `environ`: the environment they inherit
        (default: this process's, read when a job starts)."""
        self.python = python or sys.executable
        self.extra_env = dict(env or {})
        self.environ = None if environ is None else dict(environ)
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def submit(self, run_dir: Path) -> JobHandle:
        run_dir = Path(run_dir)
        status = read_status(RunFiles(run_dir))
        if status.state != JobState.QUEUED or (run_dir / "job.json").exists():
            raise RunError(
                f"Run {status.run_id} is {status.state} and was already submitted; "
                "start a new run instead."
            )
        cmd = [self.python, "-m", "recipe_core.jobs.train_job", job_target(run_dir)]
        RunWriter(run_dir).update_status(stage="spawning")  # before the job can write "starting"
        proc = spawn(cmd, run_dir / "log.txt", env=self._env())  # survives the app
        self.children[status.run_id] = proc
        RunWriter(run_dir).write_json("job.json", {
            "executor": self.name, "pid": proc.pid, "pid_start": process_token(proc.pid),
            "host": socket.gethostname(), "submitted": now_iso(), "command": cmd,
        })  # fmt: skip
        log.info("Started run %s as pid %d", status.run_id, proc.pid)
        return JobHandle(
            run_id=status.run_id, run_dir=run_dir, executor=self.name, job_id=str(proc.pid)
        )

    def _env(self) -> dict[str, str]:
        inherited = self.environ if self.environ is not None else load_settings().environ
        env = {**inherited, **self.extra_env, "PYTHONUNBUFFERED": "1"}
        # `-m recipe_core.jobs.train_job` importable from a source checkout that is not installed
        package_parent = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
        return env

    def refresh(self, run_dir: Path) -> RunStatus:
        run_dir = Path(run_dir)
        status = read_status(RunFiles(run_dir), strict=False)
        if status.state == JobState.UNKNOWN:
            return status  # a corrupt status.json: nothing to judge, and nothing to write over
        owner = _owner(run_dir, status)
        if status.finished or owner is None:
            self._reap(status.run_id)
            return status
        pid, token, host = owner
        if host != socket.gethostname():
            return status  # another machine's process: this executor cannot judge it
        code = self._reap(status.run_id)
        if code is None and process_alive(pid, token):
            return status
        code = code if code is not None else self._reap(status.run_id, wait_s=1.0)
        reason = f"Process died (pid {pid}{_exit_text(code)}) before recording a result."
        return RunWriter(run_dir).finish("failed", error=f"{reason} See log.txt in the run folder.")

    def cancel(self, run_dir: Path, *, grace_s: float = DEFAULT_GRACE_S) -> RunStatus:
        run_dir = Path(run_dir)
        status = self.refresh(run_dir)
        if status.finished:
            return status
        if status.kind == "script":
            raise RunError(
                f"Run {status.run_id} is recorded by a script (pid {status.pid} on "
                f"{status.host}); stop it from that script, not from Recipe."
            )
        owner = _owner(run_dir, status)
        if owner is None:  # queued, never submitted
            return RunWriter(run_dir).finish("cancelled", error="Cancelled before it started.")
        pid, token, host = owner
        if host != socket.gethostname():
            raise RunError(
                f"Run {status.run_id} runs on host {host!r}, not this machine; "
                "cancel it from there (or through the executor that launched it)."
            )
        exited = lambda: self._reap(status.run_id) is not None  # noqa: E731
        if stop_process(pid, token, grace_s=grace_s, exited=exited):
            reason = "Cancelled (SIGTERM) before the job could record it."
        else:
            reason = f"Cancelled: killed with SIGKILL after ignoring SIGTERM for {grace_s:g} s."
        # a run on shared storage recorded its own verdict there: pull it before judging (on a
        # busy machine the cache copy could still say "running", and ours would replace it)
        sync_run(run_dir)
        return RunWriter(run_dir).finish("cancelled", error=reason)  # a no-op if already recorded

    def _reap(self, run_id: str, wait_s: float = 0.0) -> int | None:
        """The exit code of our own child once it ended (reaping it: no zombie), else None."""
        child = self.children.get(run_id)
        if child is None:
            return None
        try:
            code = child.wait(timeout=wait_s) if wait_s else child.poll()
        except subprocess.TimeoutExpired:
            code = None
        if code is not None:
            self.children.pop(run_id, None)
        return code


def _owner(run_dir: Path, status: RunStatus) -> tuple[int, str, str] | None:
    """(pid, start token, host) of the process responsible for the run, None when there is none
    (or another executor launched it)."""
    if status.pid:
        return status.pid, status.pid_start, status.host
    job_file = run_dir / "job.json"
    if not job_file.exists():
        return None
    job = json.loads(job_file.read_text())
    if job.get("executor") != LocalExecutor.name:
        return None
    return int(job["pid"]), str(job.get("pid_start", "")), str(job.get("host", ""))


def _exit_text(code: int | None) -> str:
    if code is None:
        return ""
    if code < 0:
        return f", killed by {signal.Signals(-code).name}"
    return f", exit code {code}"
