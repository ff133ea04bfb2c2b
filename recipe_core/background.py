"""Detached worker processes and the progress file they keep fresh: what check and scan jobs share.

A Streamlit rerun interrupts the script thread, so long work runs in `python -m MODULE ...`,
started in its own session by `start_worker`. The worker keeps `<job folder>/progress.json`
current through a `ProgressReporter`: a frozen job-state dataclass, replaced atomically on every
write and rewritten at least every HEARTBEAT_S, so a poller (`read_progress`) tells a live worker
from a dead one after an app restart too.

    folder.mkdir()
    write_progress(folder, MyState("running", started=now, updated=now))
    start_worker(folder, "my_pkg.my_jobs", ["--job-dir", str(folder)], what="scan", ...)
    ...                                             # and in the worker:
    with ProgressReporter(folder, MyState("running", pid=os.getpid()), failure) as reporter:
        do_the_work(progress=lambda done, total: reporter.update(done=done, total=total))
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import Field, asdict, replace
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from recipe_core.errors import ConfigError, RecipeError

STATE_FILE = "progress.json"
HEARTBEAT_S = 1.0  # the worker rewrites progress.json at least this often
STALE_S = 30.0  # no heartbeat for this long: the worker died (killed, machine slept, OOM)
STATES = ("missing", "running", "done", "failed")


class JobState(Protocol):
    """A frozen dataclass whose first field is `state` (one of STATES) and that has `message`
    (the error, when failed) and `updated` (unix seconds of the last heartbeat) fields."""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    def __init__(self, state: str, *args: Any, **fields: Any) -> None: ...

    @property
    def state(self) -> str: ...

    @property
    def updated(self) -> float: ...


S = TypeVar("S", bound=JobState)


def write_progress(folder: Path, state: JobState) -> None:
    """Replace `folder/progress.json` with `state`."""
    tmp = folder / f"{STATE_FILE}.{os.getpid()}.{threading.get_ident()}.tmp"
    tmp.write_text(json.dumps(asdict(state)))
    os.replace(tmp, folder / STATE_FILE)  # atomic: a poller never reads half a file


def read_progress(
    folder: str | os.PathLike[str],
    kind: type[S],
    *,
    what: str,
    again: str,
    log_file: str,
    now: float | None = None,
) -> S:
    """The job's state as a `kind`; "missing" without a progress file, and "failed" when the file
    is unreadable or a "running" job has had no heartbeat for STALE_S. `what` names the process
    ("check"), `again` is the next step ("Run the checks again"), `log_file` the worker's log."""
    path = Path(folder) / STATE_FILE
    try:
        data = json.loads(path.read_text())
        state = kind(**{k: data[k] for k in kind.__dataclass_fields__})
    except FileNotFoundError:
        return kind("missing")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return kind("failed", message=f"unreadable {path}: {exc}. {again}.")
    now = time.time() if now is None else now
    if state.state == "running" and now - state.updated > STALE_S:
        message = (
            f"The {what} process stopped without finishing (no progress for "
            f"{now - state.updated:.0f} s). {again}; its log is {Path(folder) / log_file}."
        )
        return replace(state, state="failed", message=message)
    return state


def start_worker(
    folder: Path,
    module: str,
    args: Sequence[str],
    *,
    kind: type[JobState],
    what: str,
    log_file: str,
    python: str,
) -> subprocess.Popen[bytes]:
    """Run `python -m module *args` detached, its output in `folder/log_file`. If it cannot
    start, progress.json reads "failed" (as a `kind`) and a ConfigError naming `recipe {what}` is
    raised."""
    cmd = [python, "-m", module, *args]
    try:
        with (folder / log_file).open("wb") as out:
            # its own session: the worker survives a Streamlit rerun and a closed browser tab
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    except OSError as exc:
        write_progress(folder, kind("failed", message=f"could not start: {exc}"))
        raise ConfigError(
            f"Could not start the {what} process ({python} -m {module}): {exc}. "
            f"Check that Recipe is installed in this Python, or run `recipe {what}` yourself."
        ) from exc
    # reap the worker when it exits, so a long-lived server collects no zombies
    threading.Thread(target=proc.wait, daemon=True).start()
    return proc


def failure_text(exc: BaseException, *, interrupted: str, unexpected: str) -> str:
    """What a failed worker leaves in progress.json: a RecipeError as it reads, `interrupted`
    for Ctrl-C, else `unexpected` formatted with `error` ("TypeError: ...")."""
    if isinstance(exc, RecipeError):
        return str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return interrupted
    return unexpected.format(error=f"{type(exc).__name__}: {exc}")


class ProgressReporter(Generic[S]):
    """Writes progress.json on `write()` and on a heartbeat thread. As a context manager it
    starts beating on entry and finishes "done", or "failed" with `failure(exc)` (re-raised)."""

    def __init__(
        self,
        folder: Path,
        state: S,
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

    def __enter__(self) -> ProgressReporter[S]:
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
            self.finish("done", "")
        else:
            self.finish("failed", self._failure(exc))

    def update(self, **changes: Any) -> None:
        """Change fields of the state; written on the next heartbeat or `write()`."""
        with self._lock:
            self._state = replace(self._state, **changes)

    def finish(self, state: str, message: str) -> None:
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
    other error (traceback printed)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        body()
    except RecipeError as error:
        log.error("%s", error)
        return 2
    except Exception:
        traceback.print_exc()
        return 1
    return 0
