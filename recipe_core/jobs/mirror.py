"""The worker's side of shared run storage: `python -m recipe_core.jobs.train_job RUN_URL` hands a
run that lives at a URL to `run_mirrored`, with the job body to run.

The job runs unchanged on a local staging copy of the run, because the run-directory code needs
append and rename, which object stores lack. An `Uploader` thread puts each changed file as a
whole object every UPLOAD_EVERY_S (status.json last, so a status never runs ahead of the metrics
it counts), and a final upload follows the job's end whatever the end: success, failure, SIGTERM.
A SIGKILLed job leaves what was uploaded last: readable, and marked failed by a refresh.
The job's stdout and stderr go to the staging copy's log.txt, so the log is shared too.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from recipe_core.errors import ConfigError, RunError
from recipe_core.runs.files import replace_file, whole_lines
from recipe_core.runs.storage import (
    RunStore,
    open_store,
    split_run_url,
    status_last,
    storage_options,
)
from recipe_core.settings import Settings

log = logging.getLogger(__name__)

UPLOAD_EVERY_S = 1.0  # how stale the shared copy of a running job may get (default)
UPLOAD_EVERY_ENV = "RECIPE_RUNS_UPLOAD_EVERY_S"  # override it: fewer PUTs, or a livelier view
VISIBLE_WAIT_S = 10.0  # eventually-consistent storage: how long a new run may take to show up
FINAL_TRIES = 3  # attempts at the last upload before the staging copy is kept for a human


class Uploader:
    """Copies a staging run directory to storage: each changed file as one whole object."""

    def __init__(
        self, store: RunStore, run_id: str, staging: Path, *, every_s: float = UPLOAD_EVERY_S
    ) -> None:
        self.store, self.run_id, self.staging, self.every_s = store, run_id, staging, every_s
        self.sent: dict[str, tuple[int, int]] = {}  # name -> (size, mtime_ns) last uploaded
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"upload-{run_id}", daemon=True)

    def mark_sent(self) -> None:
        """Count the files there now as uploaded (they were just downloaded)."""
        self.sent.update(self._files())

    def upload_changed(self) -> int:
        """Upload every file changed since its last upload, status.json last; how many."""
        files = self._files()
        changed = status_last(n for n in files if self.sent.get(n) != files[n])
        for name in changed:
            data = whole_lines(name, (self.staging / name).read_bytes())
            self.store.put(self.run_id, name, data)
            self.sent[name] = files[name]  # stamped before the read: a later change re-uploads
        return len(changed)

    def _files(self) -> dict[str, tuple[int, int]]:
        found = {}
        for path in self.staging.rglob("*"):
            name = path.relative_to(self.staging).as_posix()
            if any(part.startswith(".") for part in name.split("/")):
                continue  # temp files of atomic writes
            try:
                if path.is_file():
                    stat = path.stat()
                    found[name] = (stat.st_size, stat.st_mtime_ns)
            except FileNotFoundError:
                continue  # replaced between listing and stat: the next pass sees the new one
        return found

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.upload_changed()
            except Exception as exc:  # storage hiccup: the next pass retries
                log.warning("Upload of run %s failed (%s); retrying", self.run_id, exc)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> bool:
        """Stop the thread and upload what is left; False when that final upload failed."""
        self._stop.set()
        self._thread.join()
        for attempt in range(FINAL_TRIES):
            try:
                self.upload_changed()
                return True
            except Exception as exc:
                log.warning("Final upload of run %s failed (%s)", self.run_id, exc)
                time.sleep(attempt + 1)
        return False


def download_run(store: RunStore, run_id: str, staging: Path) -> None:
    """Copy a run's objects (config.json, status.json, ...) into a fresh staging folder."""
    deadline = time.monotonic() + VISIBLE_WAIT_S
    try:
        objects = store.objects(run_id)
        while "status.json" not in objects and time.monotonic() < deadline:
            time.sleep(0.5)
            objects = store.objects(run_id)
        for name in objects:
            if not any(part.startswith(".") for part in name.split("/")):
                replace_file(staging / name, store.get(run_id, name))
    except Exception as exc:
        raise RunError(
            f"Cannot download run {store.run_url(run_id)}: {type(exc).__name__}: {exc}. "
            "Check that this machine reaches the storage with the same credentials."
        ) from exc
    if "status.json" not in objects:
        raise RunError(
            f"{store.run_url(run_id)} is not a Recipe run (no status.json there). Create the run "
            "first (executors.submit_run with a workspace whose runs_url is set)."
        )
    for folder in ("batches", "checkpoints"):
        (staging / folder).mkdir(parents=True, exist_ok=True)


@contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Send fds 1 and 2 (so child processes too) to `path` while inside, then restore them."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for target, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, target)
            os.close(copy)


@contextmanager
def _sigterm_ignored() -> Iterator[None]:
    """The final upload must not be cut short by a second SIGTERM (SIGKILL still works)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_mirrored(
    run_url: str,
    run_job: Callable[[Path], int],
    *,
    settings: Settings,
    every_s: float | None = None,
    capture_log: bool = True,
) -> int:
    """Run `run_job` (recipe_core.jobs.train_job.run_job) on a staging copy of the run at `run_url`,
    uploading every `every_s` (default: settings' RECIPE_RUNS_UPLOAD_EVERY_S, else
    UPLOAD_EVERY_S) with settings' storage options; return its exit code. With `capture_log`
    the job's output goes to the run's log.txt meanwhile. The staging copy is deleted once
    uploaded."""
    every_s = every_s or upload_every(settings.runs_upload_every_s)
    runs_url, run_id = split_run_url(run_url)
    store = open_store(runs_url, options=storage_options(settings.runs_storage_options))
    staging = Path(tempfile.mkdtemp(prefix="recipe-run-")) / run_id
    try:
        download_run(store, run_id, staging)
    except BaseException:
        shutil.rmtree(staging.parent, ignore_errors=True)
        raise
    uploader = Uploader(store, run_id, staging, every_s=every_s)
    uploader.mark_sent()
    uploader.start()
    try:
        with _output_to(staging / "log.txt") if capture_log else nullcontext():
            return run_job(staging)
    finally:
        with _sigterm_ignored():
            uploaded = uploader.stop()
        if uploaded:
            shutil.rmtree(staging.parent, ignore_errors=True)
        else:
            log.error("Run %s is not fully uploaded to %s; its files stay in %s",
                      run_id, run_url, staging)  # fmt: skip


def upload_every(raw: str) -> float:
    """Seconds between uploads from `raw` (RECIPE_RUNS_UPLOAD_EVERY_S; "" = UPLOAD_EVERY_S)."""
    try:
        every_s = float(raw) if raw else UPLOAD_EVERY_S
    except ValueError:
        every_s = -1.0
    if not every_s > 0:
        raise ConfigError(
            f"{UPLOAD_EVERY_ENV}={raw!r} is not a positive number of seconds. Set it to e.g. "
            f"{UPLOAD_EVERY_S:g}, or unset it."
        )
    return every_s
