"""Byte-level I/O of a run directory, plus the identifiers a run is filed under.

A local folder that mirrors a run on shared storage (storage.py: it holds a marker with the run's
URL) also pushes every write to that URL, as a whole object: that is how the dashboard's own
writes (config and status of a new run, job.json, a cancel or a "process died") reach the
workers and the other dashboards, and how a script's `start_run` in a workspace with a runs URL
shares its metrics. An object store has no append, so appended files go up whole, at most every
PUSH_EVERY_S from a background thread rather than on every flush (a long script run would
otherwise upload its growing metrics file once per flush: quadratic bytes), and so does a
status rewrite marked not urgent (a progress count). Other writes are uploaded at once, after the
pending files: a status never runs ahead of the metrics it counts."""

from __future__ import annotations

import atexit
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recipe_core.errors import RunError
from recipe_core.runs.storage import (
    APPEND_ONLY,
    is_url,
    mirror_url,
    open_store,
    split_run_url,
    status_last,
)

log = logging.getLogger(__name__)

PUSH_EVERY_S = 1.0  # how stale the shared copy of an appended file may get while a run writes
MAX_RETRY_S = 30.0  # longest wait between upload attempts while the storage is unreachable


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in `path`; {} when the file is missing, unreadable, not JSON or not an
    object (the optional records of a run or workspace: resume.json, stop.json, tune.json...)."""
    try:
        data = json.loads(Path(path).read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def new_run_id() -> str:
    """Sorts by creation time (UTC, microseconds), random suffix against clashes between
    processes: 20250101-120000-123456-a1b2c3."""
    stamp = datetime.now(UTC)
    return f"{stamp:%Y%m%d-%H%M%S-%f}-{secrets.token_hex(3)}"


def replace_file(target: Path, data: bytes) -> None:
    """Write a temp file, then `os.replace`: readers see the old or the new file, never half."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)


def whole_lines(name: str, data: bytes) -> bytes:
    """What of a local file may be shared: append-only files up to their last newline, so a
    remote copy never ends in a line still being written."""
    return data[: data.rfind(b"\n") + 1] if name in APPEND_ONLY else data


class RunFiles:
    """Byte-level I/O on one local run directory (pushing writes on when it mirrors a URL)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._remote: str | None = None  # the mirrored run's URL, "" for none; read on 1st write
        self._pending: set[str] = set()  # appended files not uploaded since
        self._upload = threading.Lock()  # one upload at a time: the last one up is the newest
        self._pusher: threading.Thread | None = None  # alive while appends are pending
        self._state = threading.Lock()  # guards _pending and _pusher together
        self._at_exit = False

    def path(self, name: str) -> Path:
        return self.root / name

    def exists(self, name: str) -> bool:
        return (self.root / name).exists()

    def read_bytes(self, name: str, offset: int = 0) -> bytes:
        with open(self.root / name, "rb") as handle:
            handle.seek(offset)
            return handle.read()

    def write_atomic(self, name: str, data: bytes, *, urgent: bool = True) -> None:
        """Write a temp file, then `os.replace`: readers see the old or the new file, never half.
        A mirrored run uploads it now (after the pending appends), or with them when it is
        not `urgent` (a progress count rewritten on every flush of a script's metrics)."""
        replace_file(self.root / name, data)
        if not self.remote_url():
            return
        if not urgent:
            self._queue(name)
            return
        with self._upload:
            self._push_pending()
            self._push(name, data)

    def append(self, name: str, data: bytes) -> None:
        # One write() per call on an O_APPEND file: concurrent readers never see a torn middle.
        with open(self.root / name, "ab") as handle:
            handle.write(data)
        if self.remote_url():  # uploaded whole, by the pusher thread (see the module docstring)
            self._queue(name)

    def _queue(self, name: str) -> None:
        """Leave `name` for the pusher thread (started here when none is running)."""
        with self._state:
            self._pending.add(name)
            if self._pusher is None:
                self._pusher = threading.Thread(target=self._push_loop, daemon=True,
                                                name=f"push-{self.root.name}")  # fmt: skip
                self._pusher.start()
        if not self._at_exit:
            self._at_exit = True
            atexit.register(self._flush_at_exit)  # a script that never calls finish()

    def flush(self) -> None:
        """Upload the files still pending now (a no-op for a plain local run)."""
        with self._upload:
            self._push_pending()

    def list(self, folder: str) -> list[str]:
        base = self.root / folder
        return sorted(p.name for p in base.iterdir()) if base.is_dir() else []

    def remote_url(self) -> str:
        """The URL this folder mirrors (a cache copy of a shared run), "" for a plain run."""
        if self._remote is None:
            self._remote = mirror_url(self.root)
        return self._remote

    def _flush_at_exit(self) -> None:
        try:
            self.flush()
        except RunError as error:
            log.warning("%s", error)

    def _push_pending(self) -> None:
        with self._state:
            names, self._pending = self._pending, set()
        for name in status_last(names):
            try:
                self._push(name, self.read_bytes(name))
            except RunError:
                with self._state:
                    self._pending |= names  # still pending: the next push retries them
                raise

    def _push_loop(self) -> None:
        """Upload pending appends every PUSH_EVERY_S; end once a pass found nothing to do."""
        delay = PUSH_EVERY_S
        while True:
            time.sleep(delay)
            with self._state:
                if not self._pending:
                    self._pusher = None  # the next append starts a new pusher
                    return
            try:
                self.flush()
                delay = PUSH_EVERY_S
            except RunError as error:
                delay = min(2 * delay, MAX_RETRY_S)  # storage down: back off, keep the data
                log.warning("%s (retrying in %.0f s)", error, delay)

    def _push(self, name: str, data: bytes) -> None:
        url = self.remote_url()
        if not url or not is_url(url):
            return
        runs_url, run_id = split_run_url(url)
        try:
            open_store(runs_url).put(run_id, name, whole_lines(name, data))
        except Exception as exc:  # the backend's own errors (botocore, ...) are not OSErrors
            raise RunError(
                f"Wrote {name} of run {run_id} locally but could not upload it to {url}: "
                f"{type(exc).__name__}: {exc}. Check the storage is reachable and writable, "
                "then retry; other machines do not see this change until then."
            ) from exc


@dataclass(frozen=True)
class RowSchema:
    """What a row of a JSON-lines run file must be: an object whose `required` fields hold one
    of their JSON types, and whose `optional` fields, when present, one of theirs or null."""

    required: Mapping[str, tuple[type, ...]]
    optional: Mapping[str, tuple[type, ...]] = field(default_factory=dict)

    @property
    def fields(self) -> tuple[str, ...]:
        return (*self.required, *self.optional)

    def accepts(self, row: object) -> bool:
        if not isinstance(row, dict):
            return False
        if not all(n in row and _is(row[n], t) for n, t in self.required.items()):
            return False
        return all(row[n] is None or _is(row[n], t) for n, t in self.optional.items() if n in row)


def _is(value: object, types: tuple[type, ...]) -> bool:
    """isinstance, except that JSON's true/false is no number (bool subclasses int)."""
    return isinstance(value, types) and (bool in types or not isinstance(value, bool))


NUMBER = (int, float)
METRIC_ROWS = RowSchema(
    {"step": (int,), "split": (str,)},
    {name: NUMBER for name in ("loss", "accuracy", "lr", "images_per_s", "wall_time")},
)
DYNAMICS_ROWS = RowSchema({"step": (int,), "probs": (list,)})  # probs (P, C): see RunReader
OBJECTS = RowSchema({})  # any JSON object


def parse_row(line: bytes, schema: RowSchema) -> dict[str, Any] | None:
    """One JSON line as a row, None when it is not one `schema` accepts (torn by a crash,
    `[1, 2]`, `null`, a step that is a string...)."""
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row if schema.accepts(row) else None


class JsonlTail:
    """Incremental reader of an append-only JSON-lines file: keeps its byte offset, reads only
    new bytes, and leaves a partially written last line for the next call. Lines that are no
    row of `schema` are skipped and counted in `skipped`, for the reader to warn about."""

    def __init__(self, files: RunFiles, name: str, schema: RowSchema = OBJECTS) -> None:
        self.files, self.name, self.schema, self.offset = files, name, schema, 0
        self.skipped = 0

    def read_new(self) -> list[dict[str, Any]]:
        if not self.files.exists(self.name):
            return []
        data = self.files.read_bytes(self.name, self.offset)
        end = data.rfind(b"\n") + 1  # only whole lines; a torn tail waits for its newline
        rows = []
        for line in data[:end].splitlines():
            row = parse_row(line, self.schema)
            if row is not None:
                rows.append(row)
            elif line.strip():  # a blank line is no row, and nothing lost
                self.skipped += 1
        self.offset += end
        return rows
