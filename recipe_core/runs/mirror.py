"""The reading side of shared run storage: the workspace's local `runs/` folder caches the runs
stored at `workspace.runs_url`, so the reader, the dashboard and the CLI keep reading plain local
run directories.

Each listing (`list_runs`), status read and `RunReader` read pulls what changed (at most every
SYNC_EVERY_S): whole objects whose
version (size + ETag/mtime) changed, only the new bytes of metrics.jsonl and dynamics.jsonl, and
log.txt whole when it grew (a local executor's own log.txt of the same job is not a prefix of
it). Storage may be eventually consistent, so a read can return an older object:
- an append-only object SHORTER than the local copy is stale: ignored until it catches up (every
  version of such a file is a prefix of the next, so the next pull appends exactly what is new);
- a status.json older than the local one (an earlier state, or fewer steps) is ignored, and a
  local end state is kept, as `RunWriter.finish` keeps the first verdict;
- a run without a visible status.json is "not visible yet", not an error.
Checkpoints are not pulled (large, and nothing in the dashboard reads them).
"""

from __future__ import annotations

import fcntl
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from recipe_core.errors import RunError
from recipe_core.runs.files import RunFiles, replace_file
from recipe_core.runs.status import RunStatus, parse_status
from recipe_core.runs.storage import (
    MARKER,
    RunStore,
    open_store,
    read_marker,
    split_run_url,
    status_last,
)
from recipe_core.workspace import Workspace

log = logging.getLogger(__name__)

LOCK = ".recipe-mirror.lock"  # flock: one pull per cache copy at a time, across processes too
STATE_RANK = {"queued": 0, "running": 1}  # an end state outranks both
SYNC_EVERY_S = 1.0  # status reads and RunReader reads pull at most this often (per cache copy)
TAILED = frozenset({"metrics.jsonl", "dynamics.jsonl"})  # pulled by their new bytes only


def sync_runs(workspace: Workspace) -> None:
    """Pull the runs at `workspace.runs_url` into `workspace.runs`. Storage that cannot be
    reached leaves the cached copies as they were (logged), so the dashboard keeps working."""
    if not workspace.runs_url:
        return
    store = open_store(workspace.runs_url)
    try:
        run_ids = store.run_ids()
    except Exception as exc:  # backend errors (botocore, ...) are not all OSErrors
        log.warning("Cannot list runs at %s (%s); showing cached copies", store.url, exc)
        return
    for run_id in run_ids:
        local = workspace.runs / run_id
        marker = read_marker(local)
        if marker is None and local.exists():
            continue  # a local run with that id: not a copy of this one
        if not (marker and marker.get("settled")):
            _pull_logged(store, run_id, local)


def sync_run(run_dir: Path, *, max_age_s: float = 0.0) -> bool:
    """Refresh one cache copy from its URL unless it was refreshed less than `max_age_s` ago;
    False (no-op) for an ordinary run directory or a run that ended and was fully pulled."""
    marker = read_marker(run_dir)
    if not marker or marker.get("settled"):
        return False
    if time.time() - float(marker.get("synced_at", 0.0)) < max_age_s:
        return False
    runs_url, run_id = split_run_url(str(marker["url"]))
    return _pull_logged(open_store(runs_url), run_id, run_dir)


def _pull_logged(store: RunStore, run_id: str, local: Path) -> bool:
    try:
        return pull_run(store, run_id, local)
    except Exception as exc:  # a network hiccup must not break the page: retry on the next read
        log.warning("Cannot refresh run %s from %s (%s)", run_id, store.url, exc)
        return False


@contextmanager
def _locked(local: Path) -> Iterator[None]:
    local.mkdir(parents=True, exist_ok=True)
    with open(local / LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def pull_run(store: RunStore, run_id: str, local: Path) -> bool:
    """Bring the cache copy `local` up to date with run `run_id`; True when anything changed."""
    objects = store.objects(run_id)
    if "status.json" not in objects and not (local / "status.json").exists():
        return False  # not visible yet (created a moment ago, or an eventually-consistent list)
    with _locked(local):
        marker = read_marker(local) or {"url": store.run_url(run_id)}
        versions: dict[str, str] = marker.setdefault("versions", {})
        changed = False
        for name in status_last(objects):
            if _skipped(name):
                continue
            size = int(objects[name]["size"])
            if name in TAILED or name == "log.txt":
                changed |= _pull_grown(store, run_id, local, name, size, tail=name in TAILED)
                continue
            version = _version(objects[name])
            if versions.get(name) != version and _pull_whole(store, run_id, local, name):
                versions[name], changed = version, True
        for folder in ("batches", "checkpoints"):  # the layout RunWriter.create makes
            (local / folder).mkdir(exist_ok=True)
        marker["settled"] = not changed and _finished(local)
        marker["synced_at"] = time.time()  # wall clock: other processes read it too
        replace_file(local / MARKER, json.dumps(marker).encode())
    return changed


def _skipped(name: str) -> bool:
    parts = name.split("/")
    return parts[0] == "checkpoints" or any(p.startswith(".") for p in parts)


def _version(info: dict[str, Any]) -> str:
    tag = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified")
    return f"{info.get('size')}:{tag}"


def _pull_grown(
    store: RunStore, run_id: str, local: Path, name: str, size: int, *, tail: bool
) -> bool:
    """An append-only object that grew past the local copy: append its new bytes (`tail`), or
    replace the local copy with it."""
    target = local / name
    have = target.stat().st_size if target.exists() else 0
    if size <= have:
        return False  # nothing new, or a stale (shorter) read: keep what we have
    try:
        data = store.get(run_id, name, start=have if tail else 0)
    except OSError as exc:  # e.g. 416: the object served is older than the listing
        log.debug("Stale read of %s/%s: %s", run_id, name, exc)
        return False
    if not tail:
        if len(data) > have:
            replace_file(target, data)
        return len(data) > have
    with open(target, "ab") as handle:
        handle.write(data)
    return bool(data)


def _pull_whole(store: RunStore, run_id: str, local: Path, name: str) -> bool:
    try:
        data = store.get(run_id, name)
    except FileNotFoundError:  # listed but not readable yet (eventual consistency): next time
        return False
    if name == "status.json" and not _newer_status(data, local):
        return False
    replace_file(local / name, data)
    return True


def _newer_status(data: bytes, local: Path) -> bool:
    """Whether a fetched status.json may replace the local one (a stale one may not). An
    unreadable one only fills in for no readable local one, so the run lists (as unknown)."""
    try:
        remote = parse_status(data, local / "status.json")
    except RunError as exc:
        log.warning("%s", exc)
        return _local_status(local) is None
    current = _local_status(local)
    if current is None:
        return True
    if current.finished:
        return False  # the first verdict stays
    if remote.finished:
        return True
    rank = STATE_RANK.get(remote.state, 0), remote.step
    return rank >= (STATE_RANK.get(current.state, 0), current.step)


def _finished(local: Path) -> bool:
    current = _local_status(local)
    return current is not None and current.finished


def _local_status(local: Path) -> RunStatus | None:
    """The cached status as it is on disk (None: missing or unreadable). Not `read_status`:
    that would pull again, taking the lock this pull holds."""
    try:
        return parse_status((local / "status.json").read_bytes(), local / "status.json")
    except (OSError, RunError):
        return None


def read_status(files: RunFiles, *, strict: bool = True) -> RunStatus:
    """The run's status.json; for a cache copy of a shared run, refreshed from storage first
    (at most every SYNC_EVERY_S), so executors and `finish` judge the run as it is now.

    RunError when there is no status.json (not a run). A malformed one raises too when
    `strict` (a writer must not build on it); else the run reads as `RunStatus.unreadable`,
    so listings keep it and its log and metrics stay readable."""
    if files.remote_url():
        sync_run(files.root, max_age_s=SYNC_EVERY_S)
    try:
        data = files.read_bytes("status.json")
    except FileNotFoundError as exc:
        raise RunError(f"{files.root} has no status.json: not a Recipe run directory.") from exc
    try:
        return parse_status(data, files.path("status.json"))
    except RunError as exc:
        if strict:
            raise
        return RunStatus.unreadable(files.root.name, str(exc.__cause__ or exc))
