"""`RunReader` (tails a run while it is written), and finding runs in a workspace."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recipe_core.errors import RunError
from recipe_core.runs.files import DYNAMICS_ROWS, METRIC_ROWS, JsonlTail, RunFiles
from recipe_core.runs.insides import InsidesTail
from recipe_core.runs.mirror import SYNC_EVERY_S, read_status, sync_run, sync_runs
from recipe_core.runs.predictions import (
    prediction_history,
    prediction_steps,
    read_per_class,
    read_predictions,
)
from recipe_core.runs.status import RunStatus
from recipe_core.runs.writer import RunHandle
from recipe_core.workspace import Workspace

METRIC_COLUMNS = tuple(METRIC_ROWS.fields)  # step, split, loss, accuracy, lr, ...


class RunReader(RunHandle):
    """Reads one run directory while it is being written. `metrics()` and `dynamics()` tail
    their files: each call reads only the bytes appended since the previous call. A cache copy
    of a run on shared storage is refreshed from it first (mirror.py)."""

    def __init__(self, run_dir: Path) -> None:
        self.files = RunFiles(Path(run_dir))
        read_status(self.files, strict=False)  # RunError now for a folder that is not a run
        self._metrics = JsonlTail(self.files, "metrics.jsonl", METRIC_ROWS)
        self._dynamics = JsonlTail(self.files, "dynamics.jsonl", DYNAMICS_ROWS)
        self._insides = InsidesTail(self.files)  # insides.jsonl + insides/ (runs/insides.py)
        self._unframed: list[dict[str, Any]] = []  # rows read, not yet in _metric_frame
        self._metric_frame: pd.DataFrame | None = None  # grows only when rows arrived
        self._dyn_steps: list[int] = []
        self._dyn_probs: list[np.ndarray] = []  # (P, C) float32 each

    def status(self) -> RunStatus:
        """The run's status; `RunStatus.unreadable` (state unknown) for a corrupt status.json."""
        return read_status(self.files, strict=False)

    def skipped_rows(self) -> dict[str, int]:
        """Rows read so far and skipped as unreadable (not a JSON object, a needed field
        missing or of the wrong type), per file: what the CLI and the Runs page warn about."""
        tails = (self._metrics, self._dynamics, self._insides.tail)
        return {tail.name: tail.skipped for tail in tails}

    def refresh(self) -> None:
        """Pull what changed on shared storage, at most every SYNC_EVERY_S (no-op for an
        ordinary local run)."""
        if self.files.remote_url():
            sync_run(self.files.root, max_age_s=SYNC_EVERY_S)

    def config(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.files.read_bytes("config.json"))
        return data

    def new_metrics(self) -> list[dict[str, Any]]:
        """Metric rows appended since the last call to `new_metrics` or `metrics`."""
        self.refresh()
        rows = self._metrics.read_new()
        self._unframed.extend(rows)
        return rows

    def metrics(self) -> pd.DataFrame:
        """Every metric row so far, one per (step, split); extra script metrics become columns."""
        self.new_metrics()
        if self._metric_frame is None or self._metric_frame.empty:
            self._metric_frame = _metric_frame(self._unframed)
        elif self._unframed:
            # A live dashboard asks every second: only the new rows become a frame (building
            # one from 50k dicts each time would cost the server ~0.1 s per session).
            parts = [self._metric_frame, _metric_frame(self._unframed)]
            self._metric_frame = pd.concat(parts, ignore_index=True)
        self._unframed = []  # the frame holds them now (keeping the dicts too doubled memory)
        return self._metric_frame.copy()  # callers may edit theirs; ~1 ms at 50k rows

    def dynamics(self) -> tuple[np.ndarray, np.ndarray]:
        """(steps (T,), probs (T, P, C)): probe-batch probabilities at each snapshot so far."""
        self.refresh()
        for row in self._dynamics.read_new():
            probs = _probs(row["probs"], like=self._dyn_probs[0] if self._dyn_probs else None)
            if probs is None:
                self._dynamics.skipped += 1
                continue
            self._dyn_steps.append(int(row["step"]))
            self._dyn_probs.append(probs)
        steps = np.asarray(self._dyn_steps, dtype=np.int64)
        if not self._dyn_probs:
            return steps, np.zeros((0, 0, 0), dtype=np.float32)
        return steps, np.asarray(self._dyn_probs, dtype=np.float32)

    def insides(self) -> pd.DataFrame:
        """Per-layer statistics over training, one row per (recorded step, layer): activation
        mean/std, dead and saturated shares, gradient norm, update-to-weight ratio (NaN where
        one does not apply). Tails insides.jsonl like `metrics`."""
        self.refresh()
        return self._insides.frame()

    def first_layer_steps(self) -> list[int]:
        """Steps with a first-layer weight snapshot, ascending."""
        self.refresh()
        return self._insides.first_layer_steps()

    def first_layer(self, step: int) -> np.ndarray:
        """(U, C, h, w) float32: the first layer's filters (or input-shaped rows) at `step`."""
        return self._insides.first_layer(step)

    def predictions(self, step: int | None = None) -> pd.DataFrame:
        """Every val sample's prediction at an evaluation kept in full (None: the latest), one
        row per sample_id: label, predicted, correct, loss, confidence, p_label, margin, top-k
        (runs/predictions.py). RunError when the run recorded none."""
        self.refresh()
        return read_predictions(self.files, step)

    def prediction_steps(self) -> list[int]:
        """Evaluation steps whose per-sample predictions are kept in full, ascending."""
        self.refresh()
        return prediction_steps(self.files)

    def prediction_history(self, sample_id: int) -> pd.DataFrame:
        """One sample's predictions at every kept step (empty when it is not in val)."""
        return prediction_history(self.files, sample_id)

    def per_class(self) -> pd.DataFrame:
        """Every evaluation summarised per true class: step, label, n, accuracy, loss."""
        self.refresh()
        return read_per_class(self.files)

    def arrays(self, name: str) -> dict[str, np.ndarray]:
        """An .npz written by `RunWriter.write_arrays` (e.g. "probe.npz"); {} when absent."""
        if not self.files.exists(name):
            return {}
        with np.load(io.BytesIO(self.files.read_bytes(name)), allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}

    def batch_names(self) -> list[str]:
        return [f"batches/{n}" for n in self.files.list("batches") if n.endswith(".npz")]

    def table(self, name: str) -> pd.DataFrame:
        if not self.files.exists(name):
            return pd.DataFrame()
        return pd.read_csv(io.BytesIO(self.files.read_bytes(name)), keep_default_na=False)

    def log_tail(self, max_bytes: int = 20_000) -> str:
        self.refresh()
        if not self.files.exists("log.txt"):
            return ""
        size = self.files.path("log.txt").stat().st_size
        return self.files.read_bytes("log.txt", max(0, size - max_bytes)).decode(errors="replace")


FinishedRuns = dict[str, tuple[int, RunStatus]]  # run id -> (status.json's mtime_ns, status)


def list_runs(workspace: Workspace, *, finished: FinishedRuns | None = None) -> list[RunStatus]:
    """Every readable run of the workspace, newest first (run ids sort by creation time); with
    shared storage, after pulling what changed there into the local cache.

    `finished`: a dict the caller keeps between calls (a dashboard refreshing every second).
    A finished run's status is read once and kept with its status.json's mtime; later calls
    stat the file instead of parsing it, so 500 old runs cost a listing and 500 stats. A
    resumed run ("leave it training", train/resume.py) rewrites its status, so it is read
    again instead of staying finished in the list."""
    sync_runs(workspace)
    if not workspace.runs.is_dir():
        return []
    statuses = []
    for folder in sorted(workspace.runs.iterdir(), reverse=True):
        mtime = _mtime_ns(folder / "status.json")
        known = None if finished is None else finished.get(folder.name)
        if mtime is None:
            continue  # not a run (yet), or gone since the listing
        if known is not None and known[0] == mtime:
            statuses.append(known[1])
            continue
        try:
            status = read_status(RunFiles(folder), strict=False)  # corrupt: listed unknown
        except (RunError, OSError):
            continue  # gone since the listing, or unreadable as a file
        statuses.append(status)
        remember_finished(finished, folder, status, mtime)
    return statuses


def remember_finished(finished: FinishedRuns | None, folder: Path, status: RunStatus,
                      mtime: int | None = None) -> None:  # fmt: skip
    """Keep a finished `status` in the `finished` cache of `list_runs` (nothing else)."""
    if finished is None or not status.finished:
        return
    mtime = _mtime_ns(folder / "status.json") if mtime is None else mtime
    if mtime is not None:
        finished[folder.name] = (mtime, status)


def _mtime_ns(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def find_run(workspace: Workspace, run_id: str) -> Path:
    """The run directory for `run_id`, or for a unique prefix of one."""
    exact = workspace.runs / run_id
    if run_id and (exact / "status.json").exists():
        return exact
    known = [s.run_id for s in list_runs(workspace)]
    matches = [r for r in known if r.startswith(run_id)] if run_id else []
    if len(matches) == 1:
        return workspace.runs / matches[0]
    recent = known[:5]
    if len(matches) > 1:
        raise RunError(
            f"Run id prefix {run_id!r} matches {len(matches)} runs ({matches[:5]}). "
            "Type more characters of the id."
        )
    raise RunError(
        f"No run {run_id!r} in {workspace.runs}. Recent runs: {recent or 'none'}. "
        "List them with `recipe runs list`."
    )


def _metric_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in METRIC_COLUMNS:
        if column not in frame.columns:
            frame[column] = pd.Series(dtype="object" if column == "split" else "float64")
    return frame


def _probs(values: list[Any], *, like: np.ndarray | None) -> np.ndarray | None:
    """A snapshot's (P, C) probabilities, None unless numbers of the shape of the first one."""
    try:
        probs = np.asarray(values, dtype=np.float32)
    except (ValueError, TypeError):  # ragged, or not numbers
        return None
    ok = probs.ndim == 2 and (like is None or probs.shape == like.shape)
    return probs if ok else None
