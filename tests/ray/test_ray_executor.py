"""RayExecutor against a real Ray head (tests/ray/conftest.py): Recipe jobs submitted through
the Jobs API into a run folder on this machine (the "shared" run dir), judged, cancelled and
killed; the GPU check, token errors, and the CLI end to end."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recipe_core.cluster.jobs_api import find_token
from recipe_core.errors import ConfigError, RecipeError
from recipe_core.jobs.executors import JobHandle, executor_for, refresh_runs, submit_run, wait_for
from recipe_core.jobs.ray import RayExecutor
from recipe_core.runs import RunReader, RunWriter, read_status
from recipe_core.runs.files import RunFiles
from recipe_core.settings import load_settings
from recipe_core.train import make_config
from recipe_core.train.pipeline import PipelineTrainConfig
from recipe_core.workspace import Workspace, open_workspace
from tests.conftest import REPO_ROOT, SAMPLE_DIGITS
from tests.ray.conftest import RayCluster, head_pids

pytestmark = pytest.mark.ray

TIMEOUT_S = 180.0  # job start on a busy 2-core machine: Ray worker + torch import
Farm = tuple[Workspace, RayExecutor, dict[str, JobHandle]]
PIPELINE = PipelineTrainConfig(  # the user's own pipeline, imported on the Ray worker
    f"{REPO_ROOT / 'examples' / 'tabular_mlp.py'}:pipeline",
    preset="overfit",
    steps=30,
    device="cpu",
)


def _config(**overrides: Any) -> Any:
    options = {"model": "mlp", "image_size": 16, "device": "cpu", **overrides}
    return make_config(str(SAMPLE_DIGITS), **options)


@pytest.fixture(scope="module")
def farm(ray_cluster: RayCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    """Three jobs submitted at once: one that succeeds, two endless ones (cancel, kill)."""
    ws = open_workspace(tmp_path_factory.mktemp("ray_runs") / "ws")
    executor = RayExecutor(
        ray_cluster.dashboard_url, token=ray_cluster.token, num_cpus=0.25,
        env={"OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    endless = dict(steps=10**7, eval_every=0, log_every=5)
    handles = {
        "ok": submit_run(
            _config(steps=40, eval_every=20, log_every=10, dynamics_every=10),
            workspace=ws,
            executor=executor,
        ),
        "cancel": submit_run(_config(**endless), workspace=ws, executor=executor),
        "kill": submit_run(_config(**endless), workspace=ws, executor=executor),
        "pipeline": submit_run(PIPELINE, workspace=ws, executor=executor),
    }
    yield ws, executor, handles
    for handle in handles.values():  # never leave a job behind
        with contextlib.suppress(RecipeError):
            executor.cancel(handle.run_dir, grace_s=2)


def _ray_job(cluster: RayCluster, submission_id: str) -> dict[str, Any]:
    """The Jobs API's own record of a job (not through RayExecutor)."""
    request = urllib.request.Request(
        f"{cluster.dashboard_url}/api/jobs/{submission_id}",
        headers={"Authorization": f"Bearer {cluster.token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return dict(json.loads(resp.read()))


def _ray_status(cluster: RayCluster, submission_id: str, expected: str) -> str:
    """Ray's status of the job once it is `expected` (or the last one seen after 30 s): Ray
    notices a job's exit a moment after the job recorded its end."""
    deadline = time.monotonic() + 30
    while True:
        status = str(_ray_job(cluster, submission_id)["status"])
        if status == expected or time.monotonic() > deadline:
            return status
        time.sleep(0.3)


def _wait_running(run_dir: Path, *, metric_rows: int = 1) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        status = read_status(RunFiles(run_dir))
        metrics = run_dir / "metrics.jsonl"
        rows = len(metrics.read_text().splitlines()) if metrics.exists() else 0
        if status.state == "running" and status.pid and rows >= metric_rows:
            return
        assert not status.finished, status
        time.sleep(0.3)
    raise AssertionError(f"{run_dir.name} did not start training in {TIMEOUT_S:g}s")


def test_a_ray_job_succeeds_with_metrics_dynamics_and_its_log(
    farm: Farm, ray_cluster: RayCluster
) -> None:
    _, executor, handles = farm
    handle = handles["ok"]
    status = wait_for(executor, handle.run_dir, timeout_s=TIMEOUT_S)
    assert status.state == "succeeded", status.error
    reader = RunReader(handle.run_dir)
    metrics = reader.metrics()
    assert len(metrics) > 0 and int(metrics["step"].max()) == 40
    steps, probs = reader.dynamics()
    assert len(steps) > 0 and probs.shape[0] == len(steps)
    log_text = (handle.run_dir / "log.txt").read_text()
    assert "succeeded after 40 steps" in log_text  # the job's own output, for the log tail
    job = json.loads((handle.run_dir / "job.json").read_text())
    assert job["executor"] == "ray" and job["address"] == ray_cluster.dashboard_url
    assert job["submission_id"] == handle.job_id == f"recipe-{handle.run_id}"
    assert job["num_gpus"] == 0 and job["num_cpus"] == 0.25
    assert job["command"][:4] == [sys.executable, "-m", "recipe_core.jobs.train_job", "--log"]
    assert _ray_status(ray_cluster, handle.job_id, "SUCCEEDED") == "SUCCEEDED"


def test_a_pipeline_job_runs_on_ray_like_a_built_in_one(farm: Farm) -> None:
    _, executor, handles = farm
    status = wait_for(executor, handles["pipeline"].run_dir, timeout_s=TIMEOUT_S)
    assert status.state == "succeeded", status.error
    metrics = RunReader(handles["pipeline"].run_dir).metrics()
    assert int(metrics[metrics["split"] == "train"]["step"].max()) == 29
    assert (handles["pipeline"].run_dir / "batches" / "batch_000.npz").exists()


def test_cancel_stops_the_ray_job_and_records_cancelled(
    farm: Farm, ray_cluster: RayCluster
) -> None:
    _, executor, handles = farm
    handle = handles["cancel"]
    _wait_running(handle.run_dir)
    status = executor.cancel(handle.run_dir, grace_s=5)
    assert status.state == "cancelled"
    assert _ray_status(ray_cluster, handle.job_id, "STOPPED") == "STOPPED"
    assert executor.refresh(handle.run_dir).state == "cancelled"  # stays so


def test_a_job_whose_process_dies_ends_failed(
    farm: Farm, ray_client_env: RayCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, _, handles = farm
    handle = handles["kill"]
    _wait_running(handle.run_dir, metric_rows=2)
    os.kill(read_status(RunFiles(handle.run_dir)).pid, signal.SIGKILL)
    monkeypatch.setenv("HOME", str(tmp_path))  # the token comes from RAY_AUTH_TOKEN alone
    token = find_token(load_settings())
    judge = executor_for(handle.run_dir, token=token)  # a fresh executor, found from job.json
    assert isinstance(judge, RayExecutor)
    status = wait_for(judge, handle.run_dir, timeout_s=60)
    assert status.state == "failed"
    assert f"Ray job {handle.job_id} ended (FAILED)" in status.error
    assert _ray_status(ray_client_env, handle.job_id, "FAILED") == "FAILED"
    by_id = {s.run_id: s.state for s in refresh_runs(ws, token=token)}
    assert by_id[handle.run_id] == "failed" and by_id[handles["ok"].run_id] == "succeeded"


def test_a_gpu_job_on_a_gpu_less_cluster_is_refused_before_submission(
    farm: Farm, ray_cluster: RayCluster
) -> None:
    ws, executor, _ = farm
    with pytest.raises(ConfigError) as info:
        submit_run(_config(device="cuda"), workspace=ws, executor=executor)
    message = str(info.value)
    assert "has no GPUs" in message and "CPU=2" in message and "--device cpu" in message
    refused = max(ws.runs.iterdir())  # the newest run: recorded failed, never sent to Ray
    assert not (refused / "job.json").exists()
    with pytest.raises(urllib.error.HTTPError) as missing:
        _ray_job(ray_cluster, f"recipe-{refused.name}")
    assert missing.value.code == 404
    assert "RECIPE_RAY_GPU_AUTOSCALING=1" in message  # the way out for autoscaled GPUs
    forced = RayExecutor(ray_cluster.dashboard_url, token=ray_cluster.token, num_gpus=1)
    cpu_run = RunWriter.create(ws, name="cpu", config=_config().to_dict()).run_dir
    with pytest.raises(ConfigError, match="has no GPUs"):
        forced.submit(cpu_run)


def test_with_gpu_autoscaling_a_gpu_job_is_submitted_and_waits_for_a_gpu(
    farm: Farm, ray_cluster: RayCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RECIPE_RAY_GPU_AUTOSCALING=1: no live GPU node is no refusal (an autoscaler would add
    one); the job asks Ray for 1 GPU and stays pending, shown queued; cancelling it ends the
    run at once, though Ray can only stop the job once it gets a GPU."""
    ws, _, _ = farm
    monkeypatch.setenv("RECIPE_RAY_GPU_AUTOSCALING", "1")
    settings = load_settings()  # the edge reads the variable; the executor is handed it
    assert settings.ray_gpu_autoscaling
    executor = RayExecutor(ray_cluster.dashboard_url, token=ray_cluster.token, num_cpus=0.25,
                           gpu_autoscaling=settings.ray_gpu_autoscaling)  # fmt: skip
    handle = submit_run(_config(device="cuda"), workspace=ws, executor=executor)
    job = json.loads((handle.run_dir / "job.json").read_text())
    assert job["num_gpus"] == 1.0
    time.sleep(2)
    assert _ray_job(ray_cluster, job["submission_id"])["status"] == "PENDING"
    assert executor.refresh(handle.run_dir).state == "queued"
    cancelled = executor.cancel(handle.run_dir, grace_s=1)
    assert cancelled.state == "cancelled" and "waited for cluster resources" in cancelled.error
    # Ray keeps a job pending until it gets its resources, then delivers the stop; should it
    # start, recipe_core.jobs.train_job finds the run already cancelled and exits without training
    assert _ray_job(ray_cluster, job["submission_id"])["status"] == "PENDING"
    assert executor.refresh(handle.run_dir).state == "cancelled"


def test_a_wrong_interpreter_path_fails_the_run_with_rays_message(
    farm: Farm, ray_cluster: RayCluster
) -> None:
    ws, _, _ = farm
    missing = str(ray_cluster.tmp / "no-venv" / "bin" / "python")
    executor = RayExecutor(ray_cluster.dashboard_url, token=ray_cluster.token, python=missing,
                           num_cpus=0.25)  # fmt: skip
    handle = submit_run(_config(), workspace=ws, executor=executor)
    status = wait_for(executor, handle.run_dir, timeout_s=TIMEOUT_S)
    assert status.state == "failed"
    assert "ended (FAILED)" in status.error and missing in status.error


def test_a_wrong_or_missing_token_is_a_clear_error(
    ray_cluster: RayCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError) as wrong:
        RayExecutor(ray_cluster.dashboard_url, token="0" * 64).api.client()
    assert "the token was refused" in str(wrong.value) and "RAY_AUTH_TOKEN" in str(wrong.value)
    for key in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ray/auth_token either
    with pytest.raises(ConfigError) as missing:
        RayExecutor(ray_cluster.dashboard_url).api.client()
    assert "no token was sent" in str(missing.value)
    assert ray_cluster.dashboard_url in str(missing.value)


def test_a_submission_ray_does_not_know_fails_the_run(
    ray_cluster: RayCluster, tmp_path: Path
) -> None:
    ws = open_workspace(tmp_path / "ws")
    writer = RunWriter.create(ws, name="ghost", config={"device": "cpu"})
    writer.write_json("job.json", {"executor": "ray", "address": ray_cluster.dashboard_url,
                                   "submission_id": "recipe-never-submitted"})  # fmt: skip
    status = RayExecutor(ray_cluster.dashboard_url, token=ray_cluster.token).refresh(writer.run_dir)
    assert status.state == "failed"
    assert "has no job recipe-never-submitted" in status.error and "restarted" in status.error


def _recipe(cluster: RayCluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **cluster.env}
    return subprocess.run([sys.executable, "-m", "recipe_core", *args], capture_output=True,
                          text=True, cwd=REPO_ROOT, env=env, timeout=180)  # fmt: skip


def test_cli_trains_on_ray_then_lists_and_cancels(ray_cluster: RayCluster, tmp_path: Path) -> None:
    ws = str(tmp_path / "ws")
    started = _recipe(
        ray_cluster, "train", str(SAMPLE_DIGITS), "--model", "linear", "--steps", "10000000",
        "--device", "cpu", "--executor", "ray", "--ray-address", ray_cluster.dashboard_url,
        "--workspace", ws, "--json",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    summary = json.loads(started.stdout)
    assert summary["executor"] == "ray" and summary["job_id"] == f"recipe-{summary['run_id']}"
    listed = _recipe(ray_cluster, "runs", "list", "--workspace", ws, "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert row["run_id"] == summary["run_id"] and row["state"] in ("queued", "running")
    cancelled = _recipe(ray_cluster, "runs", "cancel", summary["run_id"][:15], "--workspace", ws,
                        "--grace", "5", "--json")  # fmt: skip
    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout)["state"] == "cancelled"
    assert _ray_status(ray_cluster, summary["job_id"], "STOPPED") == "STOPPED"


def test_the_head_runs_on_loopback_only(ray_cluster: RayCluster) -> None:
    """Every listening socket of the head's processes is bound to 127.0.0.1."""
    pids = head_pids(ray_cluster.ray_temp)
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                listening.append(cols[1])
    assert listening, "the head listens nowhere?"
    loopback = ("0100007F:", "0000000000000000FFFF00000100007F:")  # 127.0.0.1, v4-mapped
    assert all(addr.startswith(loopback) for addr in listening), listening
