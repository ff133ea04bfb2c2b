"""Shared run storage on a real S3-compatible server (moto, on 127.0.0.1): a real job subprocess
writes s3://.../runs while another workspace, as the dashboard, watches it live; a SIGKILLed job
stays readable; stale (eventually consistent) reads are ignored; bad URLs fail with the fix."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from recipe_core.cli import cli
from recipe_core.dynamics import read_dynamics
from recipe_core.errors import ConfigError
from recipe_core.jobs.executors import LocalExecutor, refresh_runs, submit_run
from recipe_core.runs import RunReader, RunWriter, list_runs, sync_run
from recipe_core.runs.storage import MARKER, open_store, run_target
from recipe_core.train import make_config
from recipe_core.workspace import Workspace, open_workspace
from tests.conftest import REPO_ROOT, SAMPLE_DIGITS

BUCKET = "recipe-runs"
JOB_TIMEOUT_S = 90.0  # a short CPU job, started on two cores shared with other test runs


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 with one bucket; s3fs finds it through AWS_ENDPOINT_URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        patch.delenv("RECIPE_RUNS_URL", raising=False)
        open_store(f"s3://{BUCKET}").fs.mkdir(BUCKET)
        try:
            yield f"s3://{BUCKET}"
        finally:
            server.stop()
            import s3fs

            s3fs.S3FileSystem.clear_instance_cache()  # its clients point at this server


def _job(run_dir: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """The worker: a real job process given the run's URL, in another working directory."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RECIPE_RUNS_UPLOAD_EVERY_S": "0.2"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    cmd = [sys.executable, "-m", "recipe_core.jobs.train_job", run_target(run_dir)]
    with open(cwd / "job.log", "ab") as log_file:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def _submit(ws: Workspace, tmp: Path, **overrides: Any) -> tuple[str, subprocess.Popen[bytes]]:
    config = make_config(
        str(SAMPLE_DIGITS), model="mlp", image_size=16, device="cpu", probe_size=16, **overrides
    )
    writer = RunWriter.create(ws, name="shared", config=config.to_dict())
    (tmp / "worker").mkdir(exist_ok=True)
    return writer.run_id, _job(writer.run_dir, tmp / "worker")


def _rows(url: str, run_id: str, name: str = "metrics.jsonl") -> list[dict[str, Any]]:
    """The run's rows as stored, read straight from S3 (not through the cache)."""
    data = open_store(url).get(run_id, name)
    return [json.loads(line) for line in data.splitlines()]


LIVE_STEPS = 1600


def test_a_job_writing_to_s3_is_watched_live_from_another_workspace(
    s3: str, tmp_path: Path
) -> None:
    url = f"{s3}/live"
    submitter = open_workspace(tmp_path / "submitter", runs_url=url)
    dashboard = open_workspace(tmp_path / "dashboard", runs_url=url)
    # long enough to be seen growing on a fast, quiet machine (400 steps were over in one read)
    run_id, proc = _submit(submitter, tmp_path, steps=LIVE_STEPS, log_every=5,
                           eval_every=LIVE_STEPS // 2)  # fmt: skip
    try:
        assert run_id in [s.run_id for s in list_runs(dashboard)]  # config+status pushed first
        reader = RunReader(dashboard.runs / run_id)
        live: list[int] = []  # metric row counts read while the run was still running
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while proc.poll() is None and time.monotonic() < deadline:
            sync_run(reader.run_dir)  # now, not after the reader's 1 s pull interval
            rows = len(reader.metrics())
            if not reader.status().finished and rows and (not live or rows > live[-1]):
                live.append(rows)
            time.sleep(0.1)
        assert proc.wait(timeout=10) == 0, (tmp_path / "worker" / "job.log").read_text()
    finally:
        _stop(proc)
    assert len(live) >= 2, f"saw only {live} rows while running"
    (status,) = [s for s in list_runs(dashboard) if s.run_id == run_id]
    assert (status.state, status.step) == ("succeeded", LIVE_STEPS)
    metrics = reader.metrics()
    # every stored row, once (the last live read may already have had them all: status.json is
    # uploaded after the rows in each cycle)
    assert len(metrics) == len(_rows(url, run_id)) >= live[-1]
    assert not metrics.duplicated(["step", "split"]).any()
    assert metrics["step"].max() == LIVE_STEPS and "val" in set(metrics["split"])
    dyn = read_dynamics(reader)
    stored = _rows(url, run_id, "dynamics.jsonl")
    assert dyn.probs.shape == (
        len(stored),
        16,
        10,
    )  # (T, P, C): every snapshot, 16 probes, 10 digits
    assert dyn.steps.tolist() == [row["step"] for row in stored]
    assert (dashboard.runs / run_id / "probe.npz").exists()
    stored_log = open_store(url).get(run_id, "log.txt").decode()
    assert "INFO" in stored_log and reader.log_tail() == stored_log  # the job's log is shared
    assert not (dashboard.runs / run_id / "checkpoints" / "last.pt").exists()  # never pulled
    assert open_store(url).objects(run_id)["checkpoints/last.pt"]["size"] > 0


def test_a_sigkilled_job_stays_readable_and_is_marked_failed(s3: str, tmp_path: Path) -> None:
    url = f"{s3}/killed"
    submitter = open_workspace(tmp_path / "submitter", runs_url=url)
    dashboard = open_workspace(tmp_path / "dashboard", runs_url=url)
    run_id, proc = _submit(submitter, tmp_path, steps=10**7, log_every=5, eval_every=0)
    try:
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while not (list_runs(dashboard) and len(RunReader(dashboard.runs / run_id).metrics())):
            assert proc.poll() is None and time.monotonic() < deadline, "no metrics uploaded"
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        _stop(proc)
    (status,) = refresh_runs(dashboard, LocalExecutor())
    assert status.state == "failed" and "Process died" in status.error
    assert status.step > 0  # how far it got, from the metrics it uploaded
    fresh = open_workspace(tmp_path / "third", runs_url=url)  # the verdict was uploaded too
    (seen,) = list_runs(fresh)
    assert (seen.state, seen.step) == ("failed", status.step)
    metrics = RunReader(fresh.runs / run_id).metrics()
    assert len(metrics) == len(_rows(url, run_id)) > 0


def test_a_stale_shorter_object_is_ignored_until_storage_catches_up(
    s3: str, tmp_path: Path
) -> None:
    url = f"{s3}/stale"
    writer = RunWriter.create(open_workspace(tmp_path / "w", runs_url=url), name="s", config={})
    writer.append_metrics({"step": i, "split": "train", "loss": 1.0 / (i + 1)} for i in range(5))
    writer.files.flush()  # now, not at the pusher's next pass
    dashboard = open_workspace(tmp_path / "dashboard", runs_url=url)
    (status,) = list_runs(dashboard)
    reader = RunReader(dashboard.runs / status.run_id)
    assert reader.metrics()["step"].tolist() == [0, 1, 2, 3, 4]
    store, full = open_store(url), open_store(url).get(writer.run_id, "metrics.jsonl")
    lines = full.splitlines(keepends=True)
    store.put(writer.run_id, "metrics.jsonl", b"".join(lines[:2]))  # an older, shorter copy
    time.sleep(1.1)  # past the pull interval (SYNC_EVERY_S)
    assert reader.metrics()["step"].tolist() == [0, 1, 2, 3, 4]  # kept, no error
    assert (dashboard.runs / writer.run_id / "metrics.jsonl").read_bytes() == full
    writer.append_metrics({"step": i, "split": "train", "loss": 0.1} for i in range(5, 8))
    writer.files.flush()
    time.sleep(1.1)
    assert reader.metrics()["step"].tolist() == list(range(8))  # caught up, nothing twice


def test_a_stale_status_never_replaces_a_newer_one(s3: str, tmp_path: Path) -> None:
    url = f"{s3}/stale-status"
    writer = RunWriter.create(open_workspace(tmp_path / "w", runs_url=url), name="s", config={})
    queued = open_store(url).get(writer.run_id, "status.json")
    writer.update_status(state="running", step=7)
    dashboard = open_workspace(tmp_path / "dashboard", runs_url=url)
    (status,) = list_runs(dashboard)
    assert (status.state, status.step) == ("running", 7)
    open_store(url).put(writer.run_id, "status.json", queued)  # a stale read of the first PUT
    (status,) = list_runs(dashboard)
    assert (status.state, status.step) == ("running", 7)
    writer.finish("succeeded")
    (status,) = list_runs(dashboard)
    assert status.state == "succeeded"


def test_a_corrupt_shared_status_lists_as_unknown_and_never_replaces_a_good_copy(
    s3: str, tmp_path: Path
) -> None:
    url = f"{s3}/corrupt-status"
    writer = RunWriter.create(open_workspace(tmp_path / "w", runs_url=url), name="c", config={})
    writer.update_status(state="running", step=1)
    writer.append_metrics([{"step": 0, "split": "train", "loss": 1.0}])
    writer.files.flush()
    watching = open_workspace(tmp_path / "watching", runs_url=url)
    assert [s.state for s in list_runs(watching)] == ["running"]  # a good copy, cached
    store = open_store(url)
    store.put(writer.run_id, "status.json", b"[1, 2]")
    store.put(writer.run_id, "log.txt", b"the worker's log\n")
    assert [s.state for s in list_runs(watching)] == ["running"]  # kept, not replaced
    fresh = open_workspace(tmp_path / "fresh", runs_url=url)  # never saw a readable one
    (status,) = list_runs(fresh)
    assert status.state == "unknown" and "it holds an array" in status.error
    reader = RunReader(fresh.runs / writer.run_id)
    assert reader.metrics()["step"].tolist() == [0] and "worker's log" in reader.log_tail()


def test_status_json_on_s3_is_never_seen_half_written(s3: str, tmp_path: Path) -> None:
    url = f"{s3}/atomic"
    writer = RunWriter.create(open_workspace(tmp_path / "w", runs_url=url), name="a", config={})
    store, stop, bad, seen = open_store(url), threading.Event(), [], set()

    def read_loop() -> None:
        while not stop.is_set():
            data = store.get(writer.run_id, "status.json")
            try:
                seen.add(json.loads(data)["step"])
            except ValueError:
                bad.append(data)

    thread = threading.Thread(target=read_loop)
    thread.start()
    try:
        for step in range(1, 60):
            writer.update_status(state="running", step=step, error="x" * (step * 997 % 5000))
    finally:
        stop.set()
        thread.join()
    assert not bad
    assert len(seen) > 1  # the loop really read while the status changed


def test_unusable_storage_urls_fail_with_the_fix(
    s3: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = tmp_path / "ws"
    with pytest.raises(ConfigError, match=r"unknown protocol 'nosuch'.*s3://bucket/prefix"):
        open_workspace(ws, runs_url="nosuch://bucket/runs")
    with pytest.raises(ConfigError, match=r"no protocol.*s3://bucket/prefix"):
        open_workspace(ws, runs_url="bucket/runs")
    with pytest.raises(ConfigError, match=r"memory:// is private to one process"):
        open_workspace(ws, runs_url="memory://runs")
    with pytest.raises(ConfigError, match=r"not reachable or not writable.*bucket exists"):
        open_workspace(ws, runs_url="s3://no-such-bucket/runs")
    with pytest.raises(ConfigError, match=r"pip install 'gcsfs'"):
        open_workspace(ws, runs_url="gs://bucket/runs")  # gcsfs is not installed here
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on port 9
    with pytest.raises(ConfigError, match=r"endpoint http://127.0.0.1:9.*AWS_ENDPOINT_URL"):
        open_workspace(ws, runs_url=f"{s3}/unreachable")


def test_a_missing_s3_backend_names_the_extra(tmp_path: Path) -> None:
    """A real interpreter without s3fs (an import blocker hides it) gets the extra to install."""
    code = (
        "import sys; sys.modules['s3fs'] = None\n"
        "from recipe_core.workspace import open_workspace\n"
        "from recipe_core.errors import ConfigError\n"
        "try:\n"
        f"    open_workspace({str(tmp_path / 'ws')!r}, runs_url='s3://b/runs')\n"
        "except ConfigError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'recipe[s3]'" in out.stdout, out.stdout + out.stderr


def test_runs_list_with_the_env_var_lists_remote_runs(
    s3: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"{s3}/cli"
    writer = RunWriter.create(open_workspace(tmp_path / "w", runs_url=url), name="far", config={})
    writer.finish("cancelled", error="by the test")
    monkeypatch.setenv("RECIPE_RUNS_URL", url)
    fresh = tmp_path / "fresh"
    result = CliRunner().invoke(cli, ["runs", "list", "--workspace", str(fresh), "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert (row["run_id"], row["name"], row["state"]) == (writer.run_id, "far", "cancelled")
    assert json.loads((fresh / "runs" / writer.run_id / MARKER).read_text())["url"] == (
        f"{url}/{writer.run_id}"
    )


def test_two_processes_in_other_directories_share_a_workspace_path(tmp_path: Path) -> None:
    """A workspace on a shared filesystem needs no URL: a run created by one process (another
    cwd) is listed and read by another."""
    shared = tmp_path / "nfs" / "ws"
    code = (
        "import sys\n"
        "from recipe_core.runs import RunWriter\n"
        "from recipe_core.workspace import open_workspace\n"
        "w = RunWriter.create(open_workspace(sys.argv[1]), name='nfs', config={'lr': 0.5})\n"
        "w.append_metrics([{'step': 3, 'split': 'train', 'loss': 0.25}])\n"
        "w.finish('succeeded')\n"
        "print(w.run_id)\n"
    )
    (tmp_path / "a").mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("RECIPE_RUNS_URL", None)
    out = subprocess.run(
        [sys.executable, "-c", code, str(shared)],
        cwd=tmp_path / "a", env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    (status,) = list_runs(open_workspace(shared, runs_url=""))
    assert (status.run_id, status.state, status.step) == (out.stdout.strip(), "succeeded", 3)
    reader = RunReader(shared / "runs" / status.run_id)
    assert reader.config() == {"lr": 0.5}
    assert reader.metrics()["loss"].tolist() == [0.25]


def _executors_pass_urls() -> bool:
    """Whether executors start shared runs by URL (the jobs.py/executors diff of issue 7)."""
    from recipe_core.jobs.executor import job_target

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / MARKER).write_text(json.dumps({"url": "s3://b/runs/x"}))
        return job_target(Path(tmp)) == "s3://b/runs/x"


@pytest.mark.skipif(not _executors_pass_urls(), reason="executors still pass local run dirs")
def test_submit_run_and_cancel_through_the_local_executor(s3: str, tmp_path: Path) -> None:
    """The product path: submit_run -> `python -m recipe_core.jobs.train_job s3://...`; a cancel
    keeps the job's own verdict, and every workspace sees it."""
    url = f"{s3}/executor"
    submitter = open_workspace(tmp_path / "submitter", runs_url=url)
    executor = LocalExecutor(env={"OMP_NUM_THREADS": "1", "RECIPE_RUNS_UPLOAD_EVERY_S": "0.2"})
    config = make_config(str(SAMPLE_DIGITS), model="mlp", image_size=16, device="cpu",
                         probe_size=16, steps=10**7, eval_every=0, log_every=5)  # fmt: skip
    handle = submit_run(config, workspace=submitter, executor=executor)
    dashboard = open_workspace(tmp_path / "dashboard", runs_url=url)
    try:
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while not (
            list_runs(dashboard) and len(RunReader(dashboard.runs / handle.run_id).metrics())
        ):
            assert time.monotonic() < deadline, RunReader(handle.run_dir).log_tail()
            time.sleep(0.2)
    finally:
        status = executor.cancel(handle.run_dir, grace_s=30)
    assert status.state == "cancelled" and "asked to stop" in status.error, status.error
    (seen,) = list_runs(dashboard)
    assert (seen.state, seen.error) == ("cancelled", status.error)
    assert "INFO" in RunReader(dashboard.runs / handle.run_id).log_tail()


def test_a_script_run_on_s3_batches_its_uploads_and_ends_complete(
    s3: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """start_run in a workspace with a runs URL: the growing metrics file goes up at most about
    once a PUSH_EVERY_S, not once per flush (that was quadratic in bytes), the shared copy
    grows while the script runs, and finish() leaves every row and the final status there."""
    from recipe_core.runs import files
    from recipe_core.runs.storage import RunStore
    from recipe_core.train import start_run

    url = f"{s3}/script"
    puts: list[tuple[str, int]] = []
    real_put = RunStore.put

    def counting_put(store: RunStore, run_id: str, name: str, data: bytes) -> None:
        puts.append((name, len(data)))
        real_put(store, run_id, name, data)

    monkeypatch.setattr(RunStore, "put", counting_put)
    monkeypatch.setattr(files, "PUSH_EVERY_S", 0.3)
    ws = open_workspace(tmp_path / "ws", runs_url=url)
    live: list[int] = []
    with start_run("script", config={"lr": 0.1}, workspace=ws) as run:
        for step in range(600):
            run.log(step, loss=1.0 / (step + 1))
            if step % 50 == 49:
                run.flush()
                time.sleep(0.1)
                stored = open_store(url).objects(run.run_id).get("metrics.jsonl")
                live.append(stored["size"] if stored else 0)
    metric_puts = [size for name, size in puts if name == "metrics.jsonl"]
    status_puts = [size for name, size in puts if name == "status.json"]
    # 24+ flushes (every 25 rows, and every 50 here), each once uploading both files
    assert len(metric_puts) <= 10 and len(status_puts) <= 12, (metric_puts, status_puts)
    assert max(live) > 0, f"the shared copy never grew while the script ran: {live}"
    assert [r["step"] for r in _rows(url, run.run_id)] == list(range(600))
    status = json.loads(open_store(url).get(run.run_id, "status.json"))
    assert (status["state"], status["step"]) == ("succeeded", 599)
