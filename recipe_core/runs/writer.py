"""`RunWriter`: the writing side of a run directory (its status is a `runs.status.RunStatus`)."""

from __future__ import annotations

import io
import json
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recipe_core.errors import RunError
from recipe_core.jobs.process import process_token
from recipe_core.jobs.state import JobState
from recipe_core.runs.files import (
    METRIC_ROWS,
    RunFiles,
    new_run_id,
    now_iso,
    parse_row,
    replace_file,
)
from recipe_core.runs.mirror import read_status
from recipe_core.runs.status import TERMINAL_STATES, RunStatus
from recipe_core.runs.storage import MARKER
from recipe_core.workspace import Workspace


def _json_line(row: Mapping[str, Any]) -> bytes:
    return (json.dumps(row, separators=(",", ":"), allow_nan=True) + "\n").encode()


class RunHandle:
    """What a reader and a writer of one run directory both answer: where it is, which run,
    and its current status (read from status.json each time)."""

    files: RunFiles

    @property
    def run_dir(self) -> Path:
        return self.files.root

    @property
    def run_id(self) -> str:
        return self.files.root.name

    def status(self) -> RunStatus:
        return read_status(self.files)


class RunWriter(RunHandle):
    """Writes one run directory. Used by the training job, and by scripts through `start_run`."""

    def __init__(self, run_dir: Path) -> None:
        self.files = RunFiles(Path(run_dir))
        if not self.files.exists("status.json"):
            raise RunError(
                f"{run_dir} is not a run directory (no status.json). Create one with "
                "RunWriter.create(workspace, name=..., config=...)."
            )

    @classmethod
    def create(
        cls, workspace: Workspace, *, name: str, config: Mapping[str, Any], kind: str = "job"
    ) -> RunWriter:
        """A new run directory under `workspace.runs`, in state `queued`. With shared storage
        (`workspace.runs_url`) it is a cache copy: config.json and status.json are uploaded
        before this returns, so a worker started next finds them."""
        run_id = new_run_id()
        root = workspace.runs / run_id
        root.mkdir(parents=True, exist_ok=False)
        (root / "batches").mkdir()
        (root / "checkpoints").mkdir()
        if workspace.runs_url:
            marker = {"url": f"{workspace.runs_url}/{run_id}", "versions": {}, "settled": False}
            replace_file(root / MARKER, json.dumps(marker).encode())
        files = RunFiles(root)
        files.write_atomic("config.json", json.dumps(dict(config), indent=2).encode())
        status = RunStatus(
            run_id=run_id, name=name, state=JobState.QUEUED, kind=kind, created=now_iso()
        )
        files.write_atomic("status.json", json.dumps(asdict(status), indent=2).encode())
        return cls(root)

    def update_status(self, *, urgent: bool = True, **changes: Any) -> RunStatus:
        """Rewrite status.json with `changes`; `urgent=False` lets a mirrored run upload it with
        its next batch of appends (see RunFiles.write_atomic)."""
        status = replace(self.status(), **changes)
        data = json.dumps(asdict(status), indent=2).encode()
        self.files.write_atomic("status.json", data, urgent=urgent)
        return status

    def begin(self) -> RunStatus:
        """The job process is alive (state running, stage "starting"), recorded before it
        imports PyTorch: the dashboard shows that at once, and an executor judges this pid."""
        pid = os.getpid()
        return self.update_status(state="running", stage="starting", pid=pid,
                                  pid_start=process_token(pid), host=socket.gethostname(),
                                  started=now_iso())  # fmt: skip

    def start(self, *, device: str, stage: str = "loading data") -> RunStatus:
        """Training starts on `device`; its first work is `stage` (runs.status.STAGES)."""
        pid = os.getpid()
        return self.update_status(
            state="running",
            stage=stage,
            pid=pid,
            pid_start=process_token(pid),
            host=socket.gethostname(),
            device=device,
            started=now_iso(),
        )

    def finish(self, state: JobState | str, *, error: str = "") -> RunStatus:
        """Mark the run ended; a run that already ended keeps its first verdict."""
        if state not in TERMINAL_STATES:
            raise RunError(
                f"Cannot finish a run as {state!r}; use one of "
                f"{sorted(str(s) for s in TERMINAL_STATES)}."
            )
        current = self.status()
        if current.finished:
            return current
        step = max(current.step, self._last_metric_step())
        return self.update_status(state=state, error=error, ended=now_iso(), step=step)

    def _last_metric_step(self) -> int:
        """The step of the last complete metrics row: a run that fails or is cancelled between
        two status updates still reports how far it got."""
        if not self.files.exists("metrics.jsonl"):
            return 0
        size = self.files.path("metrics.jsonl").stat().st_size
        tail = self.files.read_bytes("metrics.jsonl", offset=max(0, size - 4096))
        for line in reversed(tail.split(b"\n")):
            row = parse_row(line, METRIC_ROWS)
            if row is not None:  # not an empty, torn or foreign line: those are passed over
                return int(row["step"])
        return 0

    def append_metrics(self, rows: Iterable[Mapping[str, Any]]) -> None:
        data = b"".join(_json_line(r) for r in rows)
        if data:
            self.files.append("metrics.jsonl", data)

    def append_dynamics(self, steps: list[int], probs: np.ndarray) -> None:
        """`probs` (T, P, C): class probabilities of the P probe samples at each of T steps."""
        rounded = np.round(probs.astype(np.float64), 5)
        lines = (
            _json_line({"step": s, "probs": p.tolist()})
            for s, p in zip(steps, rounded, strict=True)
        )
        self.files.append("dynamics.jsonl", b"".join(lines))

    def write_arrays(self, name: str, arrays: Mapping[str, np.ndarray]) -> None:
        """An .npz of plain arrays (no pickles), e.g. `probe.npz` or `batches/batch_000.npz`."""
        buffer = io.BytesIO()
        np.savez(buffer, **dict(arrays))  # type: ignore[arg-type]
        self.files.write_atomic(name, buffer.getvalue())

    def write_bytes(self, name: str, data: bytes) -> None:
        self.files.write_atomic(name, data)

    def write_table(self, name: str, table: pd.DataFrame) -> None:
        self.files.write_atomic(name, table.to_csv(index=False).encode())

    def write_json(self, name: str, data: Mapping[str, Any]) -> None:
        self.files.write_atomic(name, json.dumps(dict(data), indent=2).encode())
