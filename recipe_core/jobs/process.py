"""Detached worker processes: the one way Recipe starts, follows, cancels and reaps a process.

A Streamlit rerun interrupts the script thread, so long work runs in `python -m MODULE ...`,
started in its own session by `spawn` (training runs through the local executor, scans and checks
through `start_worker`). Scan and check workers keep `<job folder>/progress.json` current through
a `ProgressReporter`: a `JobProgress` replaced atomically on every write and rewritten at least
every HEARTBEAT_S, so a poller (`read_progress`) tells a live worker from a dead one after an app
restart too. `stop_process` cancels any of them the same way: SIGTERM to its process group (the
worker raises JobCancelled and records it), SIGKILL after a grace period.

    folder.mkdir()
    write_progress(folder, JobProgress(JobState.RUNNING, started=now, updated=now))
    start_worker(folder, "my_pkg.my_jobs", ["--job-dir", str(folder)], what="scan", ...)
    ...                                             # and in the worker:
    with ProgressReporter(folder, JobProgress(JobState.RUNNING, pid=os.getpid()), failure) as r:
        do_the_work(progress=lambda done, total: r.update(done=done, total=total))
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import subprocess
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from recipe_core.errors import ConfigError, RecipeError
from recipe_core.jobs.deadline import JobTimedOut
from recipe_core.jobs.state import JobCancelled, JobProgress, JobState

STATE_FILE = "progress.json"
HEARTBEAT_S = 1.0  # the worker rewrites progress.json at least this often
STALE_S = 30.0  # no heartbeat for this long: the worker died (killed, machine slept, OOM)
DEFAULT_GRACE_S = 10.0  # SIGTERM -> SIGKILL: long enough to finish a step and write status
KILL_WAIT_S = 5.0  # after SIGKILL the kernel needs a moment to take the process down


def spawn(
    cmd: Sequence[str], log_path: Path, *, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start `cmd` in its own session (it survives a Streamlit rerun, a closed tab and the app),
    appending its output to `log_path`; a thread reaps it when it exits (no zombies)."""
    with log_path.open("ab") as out:
        proc = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=None if env is None else dict(env),
                                start_new_session=True)  # fmt: skip
    return proc


def reap_in_background(proc: subprocess.Popen[bytes]) -> None:
    """Collect `proc`'s exit status when it ends, so a long-lived server keeps no zombies."""
    threading.Thread(target=proc.wait, daemon=True).start()


def process_token(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux /proc), "" where unavailable.
    (pid, token) identifies a process: pids are reused, start times are not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 counted from after "(comm)"


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


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the job's whole process group (it leads one), so helpers it spawned stop too."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def stop_process(
    pid: int, token: str, *, grace_s: float, exited: Callable[[], bool] | None = None
) -> bool:
    """SIGTERM `pid`'s group, SIGKILL it after `grace_s`; True when it stopped on SIGTERM.
    `exited` (optional) reaps a child of ours and says whether it ended."""

    def gone() -> bool:
        return (exited is not None and exited()) or not process_alive(pid, token)

    signal_group(pid, signal.SIGTERM)
    if _wait(gone, grace_s):
        return True
    signal_group(pid, signal.SIGKILL)
    _wait(gone, KILL_WAIT_S)
    return False


def _wait(done: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(0.05)
    return done()


def raise_cancelled(signum: int, frame: FrameType | None) -> None:
    """A SIGTERM handler: cancel the job by raising JobCancelled in the main thread."""
    raise JobCancelled(f"signal {signum}")


@contextmanager
def cancel_on_sigterm() -> Iterator[None]:
    """While inside, SIGTERM raises JobCancelled (so the job records `cancelled`); the previous
    handler is restored on exit. Main thread only, as Python's signal handlers are."""
    previous = signal.signal(signal.SIGTERM, raise_cancelled)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def new_job_folder(root: Path) -> Path:
    """A new folder under `root` named after the time and a random tag (names sort by age)."""
    folder = root / f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    folder.mkdir(parents=True)
    return folder


def write_progress(folder: Path, state: JobProgress) -> None:
    """Replace `folder/progress.json` with `state`."""
    tmp = folder / f"{STATE_FILE}.{os.getpid()}.{threading.get_ident()}.tmp"
    tmp.write_text(json.dumps(asdict(state)))
    os.replace(tmp, folder / STATE_FILE)  # atomic: a poller never reads half a file


def read_progress(
    folder: str | os.PathLike[str],
    *,
    what: str,
    again: str,
    log_file: str,
    now: float | None = None,
) -> JobProgress:
    """The job's progress; "missing" without a progress file, and "failed" when the file is
    unreadable or a "running" job has had no heartbeat for STALE_S. `what` names the process
    ("check"), `again` is the next step ("Run the checks again"), `log_file` the worker's log."""
    path = Path(folder) / STATE_FILE
    try:
        data = json.loads(path.read_text())
        state = JobProgress(**{k: data[k] for k in JobProgress.__dataclass_fields__ if k in data})
    except FileNotFoundError:
        return JobProgress(JobState.MISSING)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return JobProgress(JobState.FAILED, message=f"unreadable {path}: {exc}. {again}.")
    now = time.time() if now is None else now
    if state.state == JobState.RUNNING and now - state.updated > STALE_S:
        message = (
            f"The {what} process stopped without finishing (no progress for "
            f"{now - state.updated:.0f} s). {again}; its log is {Path(folder) / log_file}."
        )
        return replace(state, state=JobState.FAILED, message=message)
    return state


def start_worker(
    folder: Path,
    module: str,
    args: Sequence[str],
    *,
    what: str,
    log_file: str,
    python: str,
) -> subprocess.Popen[bytes]:
    """Run `python -m module *args` detached, its output in `folder/log_file`. If it cannot
    start, progress.json reads "failed" and a ConfigError naming `recipe {what}` is raised."""
    cmd = [python, "-m", module, *args]
    try:
        (folder / log_file).unlink(missing_ok=True)  # one log per start
        proc = spawn(cmd, folder / log_file)
    except OSError as exc:
        write_progress(folder, JobProgress(JobState.FAILED, message=f"could not start: {exc}"))
        raise ConfigError(
            f"Could not start the {what} process ({python} -m {module}): {exc}. "
            f"Check that Recipe is installed in this Python, or run `recipe {what}` yourself."
        ) from exc
    reap_in_background(proc)
    return proc


def cancel_worker(
    folder: Path, *, what: str, log_file: str, grace_s: float = DEFAULT_GRACE_S
) -> JobProgress:
    """Stop a running scan or check worker (as `stop_process` does) and record "cancelled"
    unless the worker recorded an end itself; the final progress."""
    state = read_progress(folder, what=what, again="Start it again", log_file=log_file)
    if state.state != JobState.RUNNING:
        return state
    if state.pid > 0:
        stop_process(state.pid, "", grace_s=grace_s)
    final = read_progress(folder, what=what, again="Start it again", log_file=log_file)
    if final.finished:
        return final
    cancelled = replace(final, state=JobState.CANCELLED, updated=time.time(),
                        message=f"The {what} was cancelled.")  # fmt: skip
    write_progress(folder, cancelled)
    return cancelled


def failure_text(exc: BaseException, *, interrupted: str, unexpected: str) -> str:
    """What a failed worker leaves in progress.json: a RecipeError as it reads, `interrupted`
    for Ctrl-C or a cancel, the deadline's own message when it ran past it, else `unexpected`
    formatted with `error` ("TypeError: ...")."""
    if isinstance(exc, JobTimedOut):
        return str(exc)
    if isinstance(exc, RecipeError):
        user_traceback = getattr(exc, "user_traceback", "")  # the user's own lines, if any
        return f"{exc}\n\n{user_traceback}" if user_traceback else str(exc)
    if isinstance(exc, (KeyboardInterrupt, JobCancelled)):
        return interrupted
    return unexpected.format(error=f"{type(exc).__name__}: {exc}")


class ProgressReporter:
    """Writes progress.json on `write()` and on a heartbeat thread. As a context manager it
    starts beating on entry and finishes "succeeded", "cancelled" (JobCancelled), or "failed"
    with `failure(exc)` (re-raised)."""

    def __init__(
        self,
        folder: Path,
        state: JobProgress,
        failure: Callable[[BaseException], str],
        **finished: Any,  # fields set when finishing, e.g. current=""
    ) -> None:
        self._folder = folder
        self._state = state
        self._failure = failure
        self._finished = finished
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def __enter__(self) -> ProgressReporter:
        self.write()
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.finish(JobState.SUCCEEDED, "")
        elif isinstance(exc, JobCancelled):
            self.finish(JobState.CANCELLED, self._failure(exc))
        else:
            self.finish(JobState.FAILED, self._failure(exc))

    def update(self, **changes: Any) -> None:
        """Change fields of the state; written on the next heartbeat or `write()`."""
        with self._lock:
            self._state = replace(self._state, **changes)

    def finish(self, state: JobState, message: str) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.update(state=state, message=message, **self._finished)
        self.write()

    def write(self) -> None:
        with self._lock:
            write_progress(self._folder, replace(self._state, updated=time.time()))

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            self.write()


def run_worker(body: Callable[[], object], *, log: logging.Logger) -> int:
    """A worker's exit code: 0 when `body()` returns, 2 on a RecipeError (logged), 1 on any
    other error (traceback printed), 128 + SIGTERM when cancelled, 124 (as `timeout` exits)
    past its deadline."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, raise_cancelled)
    try:
        body()
    except JobCancelled:
        log.info("cancelled")
        return 128 + signal.SIGTERM
    except JobTimedOut as error:
        log.error("%s", error)
        return 124
    except RecipeError as error:
        log.error("%s", error)
        return 2
    except Exception:
        traceback.print_exc()
        return 1
    return 0
