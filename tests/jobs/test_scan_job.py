"""Background scans: a real detached process reports progress and leaves a result that loads
back equal to what `scan()` returns in-process."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recipe_core.errors import DatasetError
from recipe_core.jobs.process import STALE_S, STATE_FILE
from recipe_core.jobs.scan_job import (
    RESULT_DIR,
    job_dir,
    read_state,
    run_job,
    scan_fraction,
    start_scan,
)
from recipe_core.jobs.state import JobProgress, JobState
from recipe_core.scan import load_scan, scan, write_result
from recipe_core.workspace import open_workspace
from tests.conftest import wait_until_finished, write_image_folder


def wait_finished(folder: Path, timeout: float = 90.0) -> JobProgress:
    return wait_until_finished(read_state, folder, timeout=timeout, poll=0.2)


def test_background_scan_writes_a_loadable_result(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "ds", per_class=6)
    ws = open_workspace(tmp_path / "ws")
    folder = start_scan(root, workspace=ws, workers=0)
    assert folder == job_dir(ws, root)
    assert start_scan(root, workspace=ws, workers=0) == folder  # a running job is not doubled
    state = wait_finished(folder)
    assert state.state == JobState.SUCCEEDED, state.message
    assert scan_fraction(state) == 1.0 and state.fraction == 1.0 and state.pid > 0
    loaded = load_scan(folder / RESULT_DIR)
    direct = scan(root, workspace=ws, workers=0)
    pd.testing.assert_frame_equal(loaded.index.table, direct.index.table)
    pd.testing.assert_frame_equal(
        loaded.issues.reset_index(drop=True), direct.issues.reset_index(drop=True)
    )
    np.testing.assert_array_equal(loaded.index.embeddings, direct.index.embeddings)
    np.testing.assert_array_equal(loaded.index.pixels, direct.index.pixels)
    assert loaded.summary.n_samples == 36 and loaded.index.source.root == root
    assert (
        loaded.index.source.samples["path"].tolist() == direct.index.source.samples["path"].tolist()
    )
    contract = pd.read_csv(folder / RESULT_DIR / "issues.csv")
    assert contract.columns.tolist() == ["path", "label", "issue", "score", "group", "detail"]


def test_a_failing_scan_reports_the_error(tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "ws")
    folder = job_dir(ws, tmp_path / "missing")
    folder.mkdir(parents=True)
    with pytest.raises(DatasetError, match="does not exist"):
        run_job(str(tmp_path / "missing"), folder, workspace=ws, workers=0)  # the worker's body
    state = read_state(folder)
    assert state.state == "failed" and "does not exist" in state.message
    assert not (folder / RESULT_DIR).exists()


def test_a_silent_worker_reads_as_failed(tmp_path: Path) -> None:
    folder = tmp_path / "job"
    folder.mkdir()
    now = time.time()
    state = {
        "state": "running",
        "stage": "index",
        "done": 3,
        "total": 10,
        "message": "",
        "pid": 1,
        "started": now - 100,
        "updated": now - STALE_S - 1,
    }
    (folder / STATE_FILE).write_text(json.dumps(state))
    got = read_state(folder)
    assert got.state == "failed" and "stopped without finishing" in got.message
    assert read_state(folder, now=now - STALE_S).state == "running"
    assert read_state(tmp_path / "none").state == "missing"
    assert scan_fraction(got) == pytest.approx(0.8 * 3 / 10)  # decoding is 80 % of a scan


def test_rescan_replaces_the_result_and_incomplete_results_are_refused(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "ds")
    ws = open_workspace(tmp_path / "ws")
    first = scan(root, workspace=ws, workers=0)
    target = tmp_path / "result"
    write_result(first, target)
    write_result(
        scan(write_image_folder(tmp_path / "ds", per_class=5), workspace=ws, workers=0), target
    )
    assert load_scan(target).summary.n_samples == 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "result", "ws"]  # no leftovers
    (target / "pixels.npy").unlink()
    with pytest.raises(DatasetError, match=r"missing pixels\.npy.*Scan the dataset again"):
        load_scan(target)


def test_a_background_scan_keeps_the_edited_copy_switch(tmp_path: Path) -> None:
    """start_scan(edited_copies=False) hands the switch to the detached process, whose
    result records it (the Issues page rescans with the same setting)."""
    root = write_image_folder(tmp_path / "ds", per_class=3)
    ws = open_workspace(tmp_path / "ws")
    folder = start_scan(root, workspace=ws, workers=0, edited_copies=False)
    state = wait_finished(folder)
    assert state.state == JobState.SUCCEEDED, state.message
    assert load_scan(folder / RESULT_DIR).summary.edited_copies is False
