"""Check jobs: a real detached worker process on a tiny image folder, its files, its failure
message, and the report round-trip that the Checks page reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from recipe_core.checks import CHECKS, CheckReport, run_all
from recipe_core.checks.presets import build_check_inputs, capture_batches, see_batch
from recipe_core.errors import ConfigError, DatasetError
from recipe_core.jobs.check_job import (
    JOB_FILE,
    REPORT_FILE,
    list_jobs,
    load_report,
    new_check_job,
    read_check_state,
    run_job,
    start_check_job,
)
from recipe_core.jobs.process import STALE_S, STATE_FILE
from recipe_core.jobs.state import JobProgress, JobState
from recipe_core.workspace import Workspace, open_workspace
from tests.conftest import wait_until_finished, write_image_folder

ONLY_FAST = 60.0  # s: a worker that has not finished by then is stuck


def wait_done(folder: Path, timeout: float = ONLY_FAST) -> JobProgress:
    return wait_until_finished(read_check_state, folder, timeout=timeout, poll=0.3)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return open_workspace(tmp_path / "ws")


def test_worker_process_writes_progress_and_a_report_equal_to_run_all(
    tmp_path: Path, ws: Workspace
) -> None:
    data = write_image_folder(tmp_path / "ds", classes=3, per_class=12, size=8)
    folder = start_check_job(data, "linear", workspace=ws, seed=3, max_seconds=30, batch_size=16)
    assert folder.parent == ws.root / "checks" and (folder / JOB_FILE).is_file()
    state = wait_done(folder)
    assert state.state == JobState.SUCCEEDED, (state, (folder / "check.log").read_text())
    assert (state.done, state.total) == (len(CHECKS), len(CHECKS)) and state.pid > 0
    report = load_report(folder)
    assert [r.name for r in report.results] == list(CHECKS)
    # trusted answer: the same setup run in this process gives the same verdicts
    inputs = build_check_inputs(str(data), "linear", batch_size=16, seed=3)
    only = ["loss_at_init", "batch_stats"]
    direct = run_all(inputs.factory, inputs.loader, inputs.loss_fn,
                     num_classes=inputs.num_classes, seed=3, only=only)  # fmt: skip
    for result in direct.results:
        assert report.get(result.name).status == result.status
        assert report.get(result.name).observed == result.observed
    assert [j.folder for j in list_jobs(ws)] == [folder]


def test_a_bad_dataset_path_ends_failed_with_a_readable_error(
    tmp_path: Path, ws: Workspace
) -> None:
    missing = tmp_path / "no_such_dataset"
    folder = start_check_job(missing, "mlp", workspace=ws, max_seconds=10)
    state = wait_done(folder)
    assert state.state == "failed"
    assert str(missing) in state.message and "Traceback" not in state.message
    assert not (folder / REPORT_FILE).exists()


def test_run_job_in_process_fails_on_an_unknown_model_naming_the_valid_ones(
    tmp_path: Path, ws: Workspace
) -> None:
    data = write_image_folder(tmp_path / "ds", classes=2, per_class=4, size=8)
    folder = new_check_job(data, "transformer", workspace=ws)
    with pytest.raises(ConfigError, match=r"Unknown model 'transformer'.*mlp"):
        run_job(folder)
    state = read_check_state(folder)
    assert state.state == "failed" and "small_cnn" in state.message


def test_a_silent_worker_reads_as_failed_and_budgets_must_be_positive(
    tmp_path: Path, ws: Workspace
) -> None:
    folder = new_check_job(tmp_path, "mlp", workspace=ws)
    started = json.loads((folder / STATE_FILE).read_text())["updated"]
    assert read_check_state(folder, now=started + 1).state == "running"
    stale = read_check_state(folder, now=started + STALE_S + 5)
    assert stale.state == "failed" and "stopped without finishing" in stale.message
    with pytest.raises(ConfigError, match="max_seconds=0"):
        new_check_job(tmp_path, "mlp", workspace=ws, max_seconds=0)
    assert read_check_state(tmp_path / "nothing").state == "missing"


def test_report_round_trips_through_json(tmp_path: Path) -> None:
    data = write_image_folder(tmp_path / "ds", classes=2, per_class=6, size=8)
    inputs = build_check_inputs(str(data), "linear", batch_size=8)
    report = run_all(inputs.factory, inputs.loader, inputs.loss_fn,
                     num_classes=2, only=["labels_and_outputs", "batch_independence"])  # fmt: skip
    again = CheckReport.from_dict(json.loads(report.to_json()))
    assert again.to_dict() == json.loads(report.to_json())


def test_capture_matches_the_loader_and_see_batch_flags_a_duplicate_dataset(
    tmp_path: Path,
) -> None:
    data = write_image_folder(tmp_path / "ds", classes=2, per_class=8, size=8)
    inputs = build_check_inputs(str(data), "mlp", batch_size=4, seed=1)
    captured = capture_batches(inputs, count=3)
    expected = [batch for _, batch in zip(range(3), inputs.loader, strict=False)]
    for (x, y), (ex, ey) in zip(captured, expected, strict=True):
        assert x.equal(ex) and y.equal(ey)
    view = see_batch(inputs, 2)
    assert view.images is not None and view.images.shape == (4, 32, 32, 1)  # resized to 32 px
    # which samples the batch holds: their own pixels, in batch order (no augmentation here)
    data = inputs.dataset.data
    assert view.sample_ids is not None and len(view.sample_ids) == 4
    rows = [int(np.flatnonzero(data.sample_ids == i)[0]) for i in view.sample_ids]
    assert captured[2][0].equal(torch.stack([inputs.dataset[r][0] for r in rows]))
    assert data.labels[rows].equal(captured[2][1])
    seen = np.concatenate([see_batch(inputs, b).sample_ids for b in range(4)])  # type: ignore[misc]
    assert sorted(seen.tolist()) == sorted(data.sample_ids.tolist())  # an epoch: each once
    assert not [w for w in view.warnings if w.code == "duplicates"]
    copies = tmp_path / "copies"  # a planted problem: every image of a class is one file
    write_image_folder(copies, classes=2, per_class=1, size=8)
    for folder in sorted(p for p in copies.rglob("class_*") if p.is_dir()):
        for i in range(1, 8):
            (folder / f"copy{i}.png").write_bytes((folder / "000.png").read_bytes())
    dup = see_batch(build_check_inputs(str(copies), "mlp", batch_size=8), 0)
    assert [w.code for w in dup.warnings].count("duplicates") == 1
    with pytest.raises(ConfigError, match="only 4 batches"):
        see_batch(inputs, 5)
    with pytest.raises(DatasetError):
        build_check_inputs(str(tmp_path / "missing"), "mlp")
