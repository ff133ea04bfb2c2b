"""Local executor: each job is a subprocess of its own session, so it outlives the app.

job.json records (pid, pid start time, host): with it a fresh executor (a restarted app, the
CLI) can tell a live job from a dead one, and from an unrelated process that reused the pid.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import recipe_core
from recipe_core.errors import RunError
from recipe_core.executors.base import DEFAULT_GRACE_S, JobHandle, job_target
from recipe_core.runs import RunFiles, RunStatus, RunWriter, now_iso, process_token, read_status

log = logging.getLogger(__name__)

KILL_WAIT_S = 5.0  # after SIGKILL the kernel needs a moment to take the process down


def process_alive(pid: int, token: str) -> bool:
    """True when `pid` runs, is not a zombie, and (when `token` is known) is the process that
    had that start time: a pid reused by an unrelated process does not count."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # another user's process: not ours
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): signal 0 is all we can know
    current = process_token(pid)
    return state not in ("Z", "X") and not (token and current and current != token)


class LocalExecutor:
    """Runs jobs as `python -m recipe_core.jobs RUN_DIR` subprocesses, several at once."""

    name = "local"

    def __init__(self, *, python: str | None = None, env: Mapping[str, str] | None = None) -> None:
        self.python = python or sys.executable
        self.extra_env = dict(env or {})
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def submit(self, run_dir: Path) -> JobHandle:
        run_dir = Path(run_dir)
        status = read_status(RunFiles(run_dir))
        if status.state != "queued" or (run_dir / "job.json").exists():
            raise RunError(
                f"Run {status.run_id} is {status.state} and was already submitted; "
                "start a new run instead."
            )
        cmd = [self.python, "-m", "recipe_core.jobs", job_target(run_dir)]
        with open(run_dir / "log.txt", "ab") as log_file:
            proc = subprocess.Popen(
                cmd,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._env(),
                start_new_session=True,
            )  # survives the app; own process group
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
        env = {**os.environ, **self.extra_env, "PYTHONUNBUFFERED": "1"}
        # Make `-m recipe_core.jobs` importable even from a source checkout that is not installed.
        package_parent = str(Path(recipe_core.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
        return env

    def refresh(self, run_dir: Path) -> RunStatus:
        run_dir = Path(run_dir)
        status = read_status(RunFiles(run_dir))
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
        _signal(pid, signal.SIGTERM)
        if self._wait_exit(status.run_id, pid, token, grace_s):
            reason = "Cancelled (SIGTERM) before the job could record it."
        else:
            _signal(pid, signal.SIGKILL)
            self._wait_exit(status.run_id, pid, token, KILL_WAIT_S)
            reason = f"Cancelled: killed with SIGKILL after ignoring SIGTERM for {grace_s:g} s."
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

    def _wait_exit(self, run_id: str, pid: int, token: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._reap(run_id) is not None or not process_alive(pid, token):
                return True
            time.sleep(0.05)
        return False


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


def _signal(pid: int, sig: signal.Signals) -> None:
    """Signal the job's whole process group (it leads one), so helpers it spawned stop too."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _exit_text(code: int | None) -> str:
    if code is None:
        return ""
    if code < 0:
        return f", killed by {signal.Signals(-code).name}"
    return f", exit code {code}"
