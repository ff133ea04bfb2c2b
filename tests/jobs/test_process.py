"""The one job model's process machinery (scan, check and training jobs share it): the progress
file's atomic round trip, stale heartbeats, failure messages, worker exit codes, real detached
workers, and cancelling one."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import pytest

from recipe_core.errors import ConfigError, DatasetError
from recipe_core.jobs.process import (
    STALE_S,
    STATE_FILE,
    ProgressReporter,
    cancel_worker,
    failure_text,
    read_progress,
    run_worker,
    start_worker,
    write_progress,
)
from recipe_core.jobs.state import JobCancelled, JobProgress, JobState
from tests.conftest import REPO_ROOT, wait_until_finished

PROBE = "tests.jobs.test_process"  # this module is also the probe worker: see `probe` below


ProbeState = JobProgress  # the one progress record every worker reports


def read(folder: Path, now: float | None = None) -> ProbeState:
    return read_progress(folder, what="probe", again="Probe again", log_file="probe.log", now=now)


def test_progress_round_trips_atomically_and_missing_or_garbled_files_read_as_such(
    tmp_path: Path,
) -> None:
    state = ProbeState(JobState.SUCCEEDED, done=7, message="ok", pid=42, updated=time.time())
    write_progress(tmp_path, state)
    assert read(tmp_path) == state
    assert json.loads((tmp_path / STATE_FILE).read_text())["done"] == 7
    assert json.loads((tmp_path / STATE_FILE).read_text())["state"] == "succeeded"
    assert [p.name for p in tmp_path.iterdir()] == [STATE_FILE]  # no temporary file left behind
    assert read(tmp_path / "nothing") == ProbeState(JobState.MISSING)
    (tmp_path / STATE_FILE).write_text('{"state": "run')  # a torn write, as if not atomic
    torn = read(tmp_path)
    assert torn.state == "failed" and torn.message.startswith("unreadable ")
    assert torn.message.endswith("Probe again.")


def test_a_running_job_without_a_heartbeat_for_stale_s_reads_as_failed(tmp_path: Path) -> None:
    write_progress(tmp_path, ProbeState(JobState.RUNNING, done=3, updated=1000.0))
    assert read(tmp_path, now=1000.0 + STALE_S) == ProbeState(
        JobState.RUNNING, done=3, updated=1000.0
    )
    stale = read(tmp_path, now=1000.0 + STALE_S + 5)
    assert (stale.state, stale.done) == ("failed", 3)
    assert stale.message == (
        f"The probe process stopped without finishing (no progress for {STALE_S + 5:.0f} s). "
        f"Probe again; its log is {tmp_path / 'probe.log'}."
    )
    write_progress(
        tmp_path, ProbeState(JobState.SUCCEEDED, updated=1000.0)
    )  # finished jobs never go stale
    assert read(tmp_path, now=1e12).state == JobState.SUCCEEDED


def test_failure_text_and_worker_exit_codes() -> None:
    text = {"interrupted": "stopped", "unexpected": "probe failed: {error}. See probe.log."}
    assert failure_text(DatasetError("no such folder"), **text) == "no such folder"
    assert failure_text(KeyboardInterrupt(), **text) == "stopped"
    assert failure_text(ValueError("x"), **text) == "probe failed: ValueError: x. See probe.log."
    log = logging.getLogger("probe")
    assert run_worker(lambda: None, log=log) == 0

    def bad_input() -> None:
        raise DatasetError("bad")

    def bug() -> None:
        raise ValueError("bug")

    def cancelled() -> None:
        raise JobCancelled("signal 15")

    assert run_worker(bad_input, log=log) == 2
    assert run_worker(bug, log=log) == 1
    assert run_worker(cancelled, log=log) == 128 + 15
    assert failure_text(JobCancelled("signal 15"), **text) == "stopped"


def test_the_reporter_finishes_failed_with_the_error_and_re_raises(tmp_path: Path) -> None:
    def failure(exc: BaseException) -> str:
        return f"failed: {exc}"

    planted = ProgressReporter(tmp_path, ProbeState(JobState.RUNNING), failure, done=-1)
    with pytest.raises(ValueError, match="planted"), planted as reporter:
        reporter.update(done=2)
        raise ValueError("planted")
    got = read(tmp_path)
    assert (got.state, got.message, got.done) == ("failed", "failed: planted", -1)
    with ProgressReporter(tmp_path, ProbeState(JobState.RUNNING), failure) as reporter:
        reporter.update(done=5)
    done = read(tmp_path)
    assert (done.state, done.done, done.message) == (JobState.SUCCEEDED, 5, "")


@pytest.mark.parametrize("outcome", ["fail", "ok"])
def test_a_real_detached_worker_reports_its_outcome_and_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outcome: str
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))  # for `python -m tests.test_background`
    folder = tmp_path / "job"
    folder.mkdir()
    write_progress(folder, ProbeState(JobState.RUNNING, updated=time.time()))
    proc = start_worker(folder, PROBE, [str(folder), outcome], what="probe", log_file="probe.log",
                        python=sys.executable)  # fmt: skip
    state = wait_until_finished(read, folder, timeout=60.0, poll=0.2)
    assert proc.wait(timeout=30) == (1 if outcome == "fail" else 0)
    assert state.pid == proc.pid and state.done == 1
    log = (folder / "probe.log").read_text()
    if outcome == "fail":
        assert (state.state, state.message) == ("failed", "probe failed: ValueError: planted")
        assert "ValueError: planted" in log  # the traceback went to the log
    else:  # the control: the same worker without the planted error
        assert (state.state, state.message) == (JobState.SUCCEEDED, "")
        assert "Traceback" not in log


def test_a_worker_that_cannot_start_leaves_a_failed_state_and_a_helpful_error(
    tmp_path: Path,
) -> None:
    missing = str(tmp_path / "no-python")
    with pytest.raises(ConfigError, match=r"Could not start the probe process .*`recipe probe`"):
        start_worker(tmp_path, PROBE, [], what="probe", log_file="probe.log", python=missing)
    got = read(tmp_path)
    assert got.state == "failed" and got.message.startswith("could not start: ")


def test_cancelling_a_real_worker_stops_it_and_records_cancelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    folder = tmp_path / "job"
    folder.mkdir()
    write_progress(folder, ProbeState(JobState.RUNNING, updated=time.time()))
    proc = start_worker(folder, PROBE, [str(folder), "hang"], what="probe", log_file="probe.log",
                        python=sys.executable)  # fmt: skip
    deadline = time.monotonic() + 60
    while read(folder).done != 1:  # the worker is inside its body
        assert time.monotonic() < deadline, (folder / "probe.log").read_text()
        time.sleep(0.1)
    final = cancel_worker(folder, what="probe", log_file="probe.log", grace_s=20)
    assert proc.wait(timeout=30) == 128 + 15  # it stopped on SIGTERM, through its own handler
    assert final.state == JobState.CANCELLED and final.message == "stopped"
    assert read(folder).state == JobState.CANCELLED
    again = cancel_worker(folder, what="probe", log_file="probe.log")  # a no-op once finished
    assert again == read(folder)


def probe(folder: Path, outcome: str) -> None:
    """The probe worker's body: one step of progress, then the planted error if asked."""

    def failure(exc: BaseException) -> str:
        return failure_text(exc, interrupted="stopped", unexpected="probe failed: {error}")

    with ProgressReporter(
        folder, ProbeState(JobState.RUNNING, pid=os.getpid()), failure
    ) as reporter:
        reporter.update(done=1)
        if outcome == "fail":
            raise ValueError("planted")
        if outcome == "hang":  # a long job, to be cancelled
            time.sleep(600)


if __name__ == "__main__":  # python -m tests.jobs.test_process JOB_DIR fail|ok|hang
    sys.exit(run_worker(lambda: probe(Path(sys.argv[1]), sys.argv[2]), log=logging.getLogger()))
