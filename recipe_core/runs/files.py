"""Byte-level I/O of a run directory, isolated so shared storage (fsspec) can replace it later,
plus the identifiers a run is filed under."""

from __future__ import annotations

import json
import os
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def new_run_id() -> str:
    """Sorts by creation time (UTC, microseconds), random suffix against clashes between
    processes: 20250101-120000-123456-a1b2c3."""
    stamp = datetime.now(timezone.utc)
    return f"{stamp:%Y%m%d-%H%M%S-%f}-{secrets.token_hex(3)}"


class RunFiles:
    """Byte-level I/O on one run directory (local paths today; fsspec tomorrow)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str) -> Path:
        return self.root / name

    def exists(self, name: str) -> bool:
        return (self.root / name).exists()

    def read_bytes(self, name: str, offset: int = 0) -> bytes:
        with open(self.root / name, "rb") as handle:
            handle.seek(offset)
            return handle.read()

    def write_atomic(self, name: str, data: bytes) -> None:
        """Write a temp file, then `os.replace`: readers see the old or the new file, never half."""
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)

    def append(self, name: str, data: bytes) -> None:
        # One write() per call on an O_APPEND file: concurrent readers never see a torn middle.
        with open(self.root / name, "ab") as handle:
            handle.write(data)

    def list(self, folder: str) -> list[str]:
        base = self.root / folder
        return sorted(p.name for p in base.iterdir()) if base.is_dir() else []


def process_token(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux /proc), "" where unavailable.
    (pid, token) identifies a process: pids are reused, start times are not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 counted from after "(comm)"


class JsonlTail:
    """Incremental reader of an append-only JSON-lines file: keeps its byte offset, reads only
    new bytes, and leaves a partially written last line for the next call."""

    def __init__(self, files: RunFiles, name: str) -> None:
        self.files, self.name, self.offset = files, name, 0

    def read_new(self) -> list[dict[str, Any]]:
        if not self.files.exists(self.name):
            return []
        data = self.files.read_bytes(self.name, self.offset)
        end = data.rfind(b"\n") + 1  # only whole lines; a torn tail waits for its newline
        rows = []
        for line in data[:end].splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue  # a line torn by a crash, followed by later lines: skip it
        self.offset += end
        return rows
