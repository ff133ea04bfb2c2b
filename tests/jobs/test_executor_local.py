"""Local executor with real subprocesses: several jobs at once; a job that raises, diverges,
is SIGKILLed or cancelled ends in the right state with its reason, keeps its metrics, and
leaves the others alone."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recipe_core.errors import RunError
from recipe_core.jobs.executors import (
    JobHandle,
    LocalExecutor,
    process_alive,
    refresh_runs,
    submit_run,
    wait_for,
)
from recipe_core.jobs.process import process_token
from recipe_core.runs import RunReader, RunWriter
from recipe_core.train import make_config
from recipe_core.workspace import Workspace, open_workspace
from tests.conftest import SAMPLE_DIGITS
from tests.test_train import make_digits

TIMEOUT_S = 120.0  # generous: five jobs start at once on two shared cores


def _config(dataset: str, **overrides: Any) -> Any:
    return make_config(dataset, model="mlp", image_size=16, device="cpu", **overrides)


@pytest.fixture(scope="module")
def farm(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Workspace, LocalExecutor, dict[str, JobHandle]]]:
    tmp = tmp_path_factory.mktemp("executor")
    dataset = str(SAMPLE_DIGITS) if SAMPLE_DIGITS.is_dir() else str(make_digits(tmp / "digits"))
    ws = open_workspace(tmp / "ws")
    executor = LocalExecutor(env={"OMP_NUM_THREADS": "1"})  # five jobs share two cores
    endless = dict(steps=10**7, eval_every=0, log_every=5)
    planted = RunWriter.create(
        ws,
        name="raises",
        config=_config(dataset, steps=200, checkpoint_every=20, log_every=5).to_dict(),
    )
    (planted.run_dir / "checkpoints").rmdir()
    (planted.run_dir / "checkpoints").write_text("a file where a folder should be")
    handles = {
        "kill": submit_run(_config(dataset, **endless), workspace=ws, executor=executor),
        "cancel": submit_run(_config(dataset, **endless), workspace=ws, executor=executor),
        "diverge": submit_run(  # Adam at lr=1e6: the loss grows to ~1e23 and stays finite
            _config(dataset, lr=1e6, steps=300, log_every=5), workspace=ws, executor=executor
        ),
        "raise": executor.submit(planted.run_dir),
        "ok": submit_run(
            _config(dataset, steps=150, eval_every=50), workspace=ws, executor=executor
        ),
    }
    yield ws, executor, handles
    for handle in handles.values():  # never leave a job behind
        executor.cancel(handle.run_dir, grace_s=2)


def _wait_for_metrics(run_dir: Path, rows: int = 1) -> None:
    reader, deadline = RunReader(run_dir), time.monotonic() + TIMEOUT_S
    while len(reader.metrics()) < rows:
        assert time.monotonic() < deadline, RunReader(run_dir).log_tail()
        time.sleep(0.1)


def test_a_sigkilled_job_ends_failed_with_its_metrics_readable(farm: Any) -> None:
    _, executor, handles = farm
    run_dir = handles["kill"].run_dir
    _wait_for_metrics(run_dir, rows=5)
    os.kill(int(handles["kill"].job_id), signal.SIGKILL)
    status = wait_for(executor, run_dir, timeout_s=10)
    assert status.state == "failed"
    assert "Process died" in status.error and "SIGKILL" in status.error
    assert len(RunReader(run_dir).metrics()) >= 5


def test_cancel_sends_sigterm_and_the_job_records_cancelled(farm: Any) -> None:
    _, executor, handles = farm
    run_dir = handles["cancel"].run_dir
    _wait_for_metrics(run_dir)
    status = executor.cancel(run_dir, grace_s=30)
    assert status.state == "cancelled"
    assert "asked to stop" in status.error  # written by the job's own SIGTERM handler
    assert not process_alive(int(handles["cancel"].job_id), "")
    assert "cancelled" in RunReader(run_dir).log_tail()


def test_a_diverging_job_fails_with_the_reason_and_stops_early(farm: Any) -> None:
    """A loss that grows 1e22-fold but stays finite is a divergence too, not a success."""
    _, executor, handles = farm
    run_dir = handles["diverge"].run_dir
    status = wait_for(executor, run_dir, timeout_s=TIMEOUT_S)
    assert status.state == "failed", status.error
    found = re.search(r"Training diverged at step (\d+): train loss (\S+) \(median of recent "
                      r"steps\) is (\S+)x its starting (\S+); lower the learning rate "
                      r"\(now lr=1e\+06\)", status.error)  # fmt: skip
    assert found, status.error
    step, loss, growth, start = int(found[1]), *map(float, found.group(2, 3, 4))
    assert 1.5 < start < 3 and loss > 1e10 and growth > 100  # ~ln 10 at the start
    metrics = RunReader(run_dir).metrics()
    assert step < 5 and metrics["step"].max() == 4 == status.step - 1  # the first flush ends it
    assert metrics["loss"].notna().all()  # every row written before the stop is readable
    assert "Training diverged" in RunReader(run_dir).log_tail()


def test_a_job_that_raises_mid_training_fails_with_the_error_text(farm: Any) -> None:
    _, executor, handles = farm
    run_dir = handles["raise"].run_dir
    status = wait_for(executor, run_dir, timeout_s=TIMEOUT_S)
    assert status.state == "failed" and "FileExistsError" in status.error
    assert RunReader(run_dir).metrics()["step"].max() == 19  # the steps before the crash
    assert "Traceback" in RunReader(run_dir).log_tail()  # the full story is in log.txt


def test_other_jobs_are_unaffected(farm: Any) -> None:
    ws, executor, handles = farm
    status = wait_for(executor, handles["ok"].run_dir, timeout_s=TIMEOUT_S)
    assert status.state == "succeeded", status.error
    assert RunReader(handles["ok"].run_dir).metrics().query("split == 'val'")["step"].tolist() == [
        50, 100, 150]  # fmt: skip
    states = {s.run_id: s.state for s in refresh_runs(ws, executor)}
    assert states[handles["ok"].run_id] == "succeeded"
    with pytest.raises(RunError, match="already submitted"):
        executor.submit(handles["ok"].run_dir)


def test_a_fresh_executor_marks_a_dead_script_run_failed(tmp_path: Path) -> None:
    """A restarted app has no handle on the process: pid + start time in status.json decide."""
    ws = open_workspace(tmp_path / "ws")
    script = (
        "import os, sys\n"
        "from recipe_core.train import start_run\n"
        "run = start_run('dies', workspace=sys.argv[1])\n"
        "run.log(0, loss=1.0); run.flush()\n"
        "os._exit(3)  # no atexit, no finish(): the run is left 'running'\n"
    )
    subprocess.run([sys.executable, "-c", script, str(ws.root)], check=False, timeout=60)
    (run_dir,) = ws.runs.iterdir()
    assert RunReader(run_dir).status().state == "running"
    fresh = LocalExecutor()
    status = fresh.refresh(run_dir)
    assert status.state == "failed" and "Process died" in status.error
    assert RunReader(run_dir).metrics()["loss"].tolist() == [1.0]


def test_process_identity_needs_the_start_time_to_match(tmp_path: Path) -> None:
    me = os.getpid()
    assert process_alive(me, process_token(me))
    assert not process_alive(me, "12345")  # same pid, other start time: a reused pid
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    assert not process_alive(ended.pid, "")
    ws = open_workspace(tmp_path / "ws")
    queued = RunWriter.create(ws, name="never-started", config={})
    assert LocalExecutor().cancel(queued.run_dir).state == "cancelled"
    script = RunWriter.create(ws, name="script", config={}, kind="script")
    script.start(device="cpu")  # owned by this (live) test process
    with pytest.raises(RunError, match="recorded by a script"):
        LocalExecutor().cancel(script.run_dir)


def test_a_job_started_after_its_run_was_cancelled_does_not_train(tmp_path: Path) -> None:
    """A job that reaches a worker only after its run was cancelled (a Ray job pending for a
    GPU) exits at once with the cancel code and leaves the run as it was."""
    ws = open_workspace(tmp_path / "ws")
    config = make_config(str(SAMPLE_DIGITS), model="mlp", device="cpu", steps=5)
    writer = RunWriter.create(ws, name="late", config=config.to_dict())
    writer.finish("cancelled", error="Cancelled while it waited.")
    done = subprocess.run([sys.executable, "-m", "recipe_core.jobs.train_job", str(writer.run_dir)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    status = RunReader(writer.run_dir).status()
    assert (status.state, status.error) == ("cancelled", "Cancelled while it waited.")
    assert status.pid == 0  # never started
    assert not (writer.run_dir / "metrics.jsonl").exists()
