"""One per-user budget over every kind of job (training runs, check jobs, scans, captures),
counted from real job folders and their owner.json; the server's cap on a check job's time,
enforced by the job's own deadline; and limits of 0 refused, never read as "unlimited"."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from recipe_core.errors import ConfigError
from recipe_core.hosting import AuditLog, User, load_config, read_audit
from recipe_core.hosting.config import LimitsConfig
from recipe_core.hosting.guard import Guard
from recipe_core.hosting.limits import LimitExceeded, record_owner
from recipe_core.jobs import owners, process
from recipe_core.jobs.active import WORKER_ROOTS, ActiveJob, active_jobs
from recipe_core.jobs.check_job import new_check_job, read_check_state, read_job, run_job
from recipe_core.jobs.deadline import JobTimedOut, deadline
from recipe_core.jobs.owners import job_owner
from recipe_core.jobs.scan_job import job_dir, read_state
from recipe_core.jobs.state import JobProgress, JobState
from recipe_core.runs import RunWriter, list_runs
from recipe_core.workspace import Workspace, open_workspace
from tests.conftest import write_image_folder
from tests.hosting.hosting_helpers import base_sections, write_config

ALICE, BOB = User("alice@example.com", "runner"), User("bob@example.com", "runner")


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return open_workspace(tmp_path / "ws")


def running_scan(ws: Workspace, dataset: Path, owner: str) -> Path:
    """A scan job folder as `start_scan` leaves it while its worker runs (no worker here)."""
    folder = job_dir(ws, dataset)
    folder.mkdir(parents=True)
    now = time.time()
    process.write_progress(folder, JobProgress(JobState.RUNNING, "index", started=now, updated=now))
    owners.record_owner(folder, owner)
    return folder


def test_runs_check_jobs_and_scans_share_one_budget_per_user(tmp_path: Path, ws: Workspace) -> None:
    limits, audit = LimitsConfig(max_concurrent_jobs=2), AuditLog(tmp_path / "audit.jsonl")
    check = new_check_job("ds", "mlp", workspace=ws, owner=ALICE.email)  # running, fresh beat
    scan = running_scan(ws, tmp_path / "ds", ALICE.email)
    bobs_run = RunWriter.create(ws, name="queued", config={})
    record_owner(bobs_run.run_dir, BOB)
    done = new_check_job("ds", "mlp", workspace=ws, owner=BOB.email)
    process.write_progress(done, JobProgress(JobState.SUCCEEDED))  # finished: frees its slot

    def running() -> list[ActiveJob]:
        return active_jobs(ws, list_runs(ws))

    assert sorted((j.kind, j.owner) for j in running()) == [
        ("checks", ALICE.email), ("run", BOB.email), ("scan", ALICE.email)
    ]  # fmt: skip
    message = rf"already have 2 running job\(s\) \(check job {check.name}, scan {scan.name}\)"
    with pytest.raises(LimitExceeded, match=message + ".*training runs, check jobs and scans"):
        Guard(ALICE, audit, limits).check_run(steps=1, name=None, running=running)
    with pytest.raises(LimitExceeded, match=message):
        Guard(ALICE, audit, limits).check_job(running)  # a check job or scan: the same budget
    Guard(BOB, audit, limits).check_job(running)  # one run + a finished check job: room for one
    assert [(e.user, e.action) for e in read_audit(audit.path)] == [
        (ALICE.email, "limit_refused"), (ALICE.email, "limit_refused")
    ]  # fmt: skip


def test_the_listing_looks_where_each_kind_of_job_writes_its_folders(ws: Workspace) -> None:
    from recipe_core.jobs.check_job import checks_root
    from recipe_core.jobs.scan_job import app_scans_root
    from recipe_core.jobs.see_job import seen_root

    roots = {"checks": checks_root(ws), "scan": app_scans_root(ws), "see": seen_root(ws)}
    assert {kind: ws.root / name for kind, name in WORKER_ROOTS.items()} == roots


def test_a_dead_worker_frees_its_slot_and_the_local_app_counts_nothing(ws: Workspace) -> None:
    folder = new_check_job("ds", "mlp", workspace=ws, owner=ALICE.email)
    stale = time.time() - process.STALE_S - 5  # the worker died: no heartbeat since
    process.write_progress(folder, JobProgress(JobState.RUNNING, started=stale, updated=stale))
    assert active_jobs(ws, []) == []
    listed: list[bool] = []

    def listing() -> list[ActiveJob]:
        listed.append(True)
        return []

    local = Guard(ALICE, AuditLog(ws.root / "audit.jsonl"), None)  # `recipe app`: no limits
    local.check_job(listing)
    assert listed == [] and local.check_seconds(None) is None  # nothing listed, no deadline


def test_a_scan_records_its_starter_and_a_later_anonymous_scan_clears_it(
    tmp_path: Path, ws: Workspace
) -> None:
    from recipe_core.jobs.scan_job import start_scan

    data = write_image_folder(tmp_path / "ds", classes=2, per_class=2, size=8)
    folder = start_scan(data, workspace=ws, workers=0, owner=ALICE.email)
    assert job_owner(folder) == ALICE.email
    deadline_at = time.monotonic() + 120
    while read_state(folder).state == JobState.RUNNING and time.monotonic() < deadline_at:
        time.sleep(0.3)
    assert read_state(folder).state == JobState.SUCCEEDED
    start_scan(data, workspace=ws, workers=0)  # a script's scan: nobody's budget
    assert job_owner(folder) is None


def test_a_check_time_budget_must_fit_the_servers_cap(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    guard = Guard(ALICE, audit, LimitsConfig(max_check_seconds=120))
    assert guard.check_seconds(120) == 120.0  # the job's hard deadline is the cap
    with pytest.raises(LimitExceeded, match=r"121 s is over .* at most 120 s.*max_check_seconds"):
        guard.check_seconds(121)
    with pytest.raises(LimitExceeded, match=r"No time budget was given: .* at most 120 s"):
        guard.check_seconds(None)  # unbounded is not on offer
    with pytest.raises(ConfigError, match=r"max_seconds=0: .*0 does not mean unlimited"):
        new_check_job("ds", "mlp", workspace=open_workspace(tmp_path / "ws"), max_seconds=0)
    assert [e.target for e in read_audit(audit.path)] == ["max_seconds=121", "max_seconds=None"]


@pytest.mark.parametrize("key", ["max_check_seconds", "max_concurrent_jobs"])
def test_a_limit_of_zero_is_refused_naming_the_field_and_the_fix(tmp_path: Path, key: str) -> None:
    (tmp_path / "data").mkdir()
    file = write_config(tmp_path, base_sections(limits={key: 0}))
    with pytest.raises(ConfigError, match=rf'\[limits\] {key} = 0 .* not "unlimited".* {key} = '):
        load_config(file)
    assert load_config(write_config(tmp_path, base_sections())).limits.max_check_seconds == 600


def test_a_check_job_is_stopped_at_its_deadline(tmp_path: Path, ws: Workspace) -> None:
    """The job's own deadline (job.json timeout_s) ends it "failed" with a message naming the
    limit, whatever the checks' own budget: here none at all."""
    data = write_image_folder(tmp_path / "ds", classes=2, per_class=8, size=8)
    folder = new_check_job(data, "mlp", workspace=ws, timeout_s=0.05, owner=ALICE.email)
    assert read_job(folder).timeout_s == 0.05 and read_job(folder).max_seconds is None
    started = time.monotonic()
    with pytest.raises(JobTimedOut):
        run_job(folder)  # in this process; a detached worker exits 124
    assert time.monotonic() - started < 30
    state = read_check_state(folder)
    assert state.state == JobState.FAILED
    assert "ran past their 0.05 s deadline" in state.message
    assert "[limits] max_check_seconds" in state.message


STUCK = """
import signal, sys, time
from recipe_core.jobs import deadline as d
d.GRACE_S = 0.5
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})  # as if stuck in one long C call
with d.deadline(0.2, "too long", kill_group=True):
    time.sleep(30)
sys.exit(0)
"""


def test_a_worker_that_cannot_see_the_signal_is_killed_after_the_grace() -> None:
    started = time.monotonic()
    child = subprocess.run([sys.executable, "-c", textwrap.dedent(STUCK)], timeout=60,
                           start_new_session=True, capture_output=True)  # fmt: skip
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert time.monotonic() - started < 25


def test_the_deadline_raises_in_the_block_and_restores_the_handler() -> None:
    before = signal.getsignal(signal.SIGALRM)
    with pytest.raises(JobTimedOut, match="too long"), deadline(0.1, "too long"):
        time.sleep(5)
    with deadline(None, "never"):
        pass
    assert signal.getsignal(signal.SIGALRM) == before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert os.getpid() > 0  # still here: no kill without kill_group
