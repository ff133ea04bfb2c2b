"""Executor choice and dispatch without a cluster: make_executor / executor_for, the Ray
executor's address, token and GPU rules, an unreachable cluster, lazy imports, `jobs --log`,
`recipe runs logs`. The tests against a real Ray head are in tests/ray/."""

from __future__ import annotations

import logging
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from recipe_core.cluster.connection import jobs_api_url
from recipe_core.cluster.jobs_api import find_token
from recipe_core.errors import ConfigError, RunError
from recipe_core.jobs.executors import (
    LocalExecutor,
    executor_for,
    job_target,
    make_executor,
    read_job,
    refresh_runs,
)
from recipe_core.jobs.ray import RayExecutor, gpus_needed
from recipe_core.runs import RunWriter
from recipe_core.settings import Settings, load_settings
from recipe_core.workspace import Workspace, open_workspace
from tests.conftest import REPO_ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return open_workspace(tmp_path / "ws")


@pytest.fixture(autouse=True)
def _no_executor_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("RECIPE_EXECUTOR", "RECIPE_RAY_ADDRESS", "RECIPE_RAY_PYTHON", "RAY_AUTH_TOKEN",
                "RAY_AUTH_TOKEN_PATH"):  # fmt: skip
        monkeypatch.delenv(key, raising=False)


def _queued_run(ws: Workspace, job: dict[str, object] | None = None) -> Path:
    writer = RunWriter.create(ws, name="r", config={"device": "cpu"})
    if job is not None:
        writer.write_json("job.json", job)
    return writer.run_dir


def test_make_executor_defaults_to_local_and_reads_the_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert isinstance(make_executor(settings=load_settings()), LocalExecutor)
    monkeypatch.setenv("RECIPE_EXECUTOR", "ray")
    monkeypatch.setenv("RECIPE_RAY_ADDRESS", "127.0.0.1:8265")
    chosen = make_executor(settings=load_settings())
    assert isinstance(chosen, RayExecutor)
    assert chosen.address == "http://127.0.0.1:8265"
    assert isinstance(
        make_executor("local", settings=load_settings()), LocalExecutor
    )  # the argument beats the env


def test_unknown_executor_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"Unknown executor 'slurm'.*local, ray"):
        make_executor("slurm", settings=Settings())


def test_ray_without_an_address_says_how_to_give_one() -> None:
    with pytest.raises(ConfigError) as info:
        make_executor("ray", settings=Settings())
    assert "--ray-address" in str(info.value) and "RECIPE_RAY_ADDRESS" in str(info.value)
    assert "ray start --head" in str(info.value)


def test_ray_executor_without_ray_installed_names_the_extra(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # how Python marks a module as unavailable
    with pytest.raises(ConfigError, match=re.escape("pip install 'recipe[ray]'")):
        make_executor("ray", settings=Settings(), ray_address="http://127.0.0.1:8265")
    on_ray = _queued_run(ws, {"executor": "ray", "address": "http://127.0.0.1:8265",
                              "submission_id": "recipe-x"})  # fmt: skip
    assert isinstance(executor_for(on_ray), RayExecutor)  # judging a run needs HTTP only


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://head:8265", "http://head:8265"),
        ("head:8265/", "http://head:8265"),
        ("https://ray.example.org", "https://ray.example.org"),
    ],
)
def test_addresses_become_jobs_api_urls(given: str, expected: str) -> None:
    assert jobs_api_url(given) == expected


def test_ray_client_and_empty_addresses_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"Ray Client address.*http://head:8265"):
        jobs_api_url("ray://head:10001")
    with pytest.raises(ConfigError, match="Empty Ray address"):
        jobs_api_url("  ")
    with pytest.raises(ConfigError, match="must be http"):
        jobs_api_url("ftp://head:8265")


@pytest.mark.parametrize(
    ("device", "cluster_gpus", "expected"),
    [("cuda", 0, 1), ("cuda:1", 4, 1), ("cpu", 4, 0), ("auto", 2, 1), ("auto", 0, 0)],
)
def test_gpus_follow_the_device(device: str, cluster_gpus: float, expected: float) -> None:
    assert gpus_needed(device, cluster_gpus) == expected


def test_token_comes_from_argument_env_path_then_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert find_token(load_settings()) is None
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("home-token\n")
    assert find_token(load_settings()) == "home-token"
    (tmp_path / "tok").write_text("path-token")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "tok"))
    assert find_token(load_settings()) == "path-token"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "env-token")
    assert find_token(load_settings()) == "env-token"
    assert find_token(load_settings(), "given") == "given"


def test_executor_for_reads_job_json(ws: Workspace) -> None:
    assert isinstance(executor_for(_queued_run(ws)), LocalExecutor)  # never submitted
    local = _queued_run(ws, {"executor": "local", "pid": 1})
    assert isinstance(executor_for(local), LocalExecutor)
    on_ray = _queued_run(ws, {"executor": "ray", "address": "http://10.1.2.3:8265",
                              "submission_id": "recipe-x"})  # fmt: skip
    judge = executor_for(on_ray)
    assert isinstance(judge, RayExecutor) and judge.address == "http://10.1.2.3:8265"
    cache: dict[str, object] = {}
    assert executor_for(on_ray, cache) is executor_for(on_ray, cache)  # type: ignore[arg-type]
    mine, same, other = LocalExecutor(), RayExecutor("10.1.2.3:8265"), RayExecutor("10.9.9.9:1")
    assert executor_for(local, prefer=mine) is mine
    assert executor_for(on_ray, prefer=same) is same
    assert executor_for(on_ray, prefer=other) is not other
    assert executor_for(on_ray, prefer=mine) is not mine
    odd = _queued_run(ws, {"executor": "slurm"})
    with pytest.raises(RunError, match=r"executor 'slurm'.*local, ray"):
        executor_for(odd)
    assert read_job(odd) == {"executor": "slurm"}
    assert job_target(odd) == str(odd)


def test_an_unreachable_cluster_leaves_the_status_alone(
    ws: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    address = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    run_dir = _queued_run(ws, {"executor": "ray", "address": address,
                               "submission_id": "recipe-gone"})  # fmt: skip
    with caplog.at_level(logging.WARNING):
        [status] = refresh_runs(ws)  # the Runs page's path: must not raise
    assert status.state == "queued" and status.error == ""
    assert "Cannot reach the Ray Jobs API" in caplog.text
    with pytest.raises(ConfigError) as info:
        RayExecutor(address).cancel(run_dir)
    assert address in str(info.value) and "ray start --head" in str(info.value)


def test_submit_to_an_unreachable_cluster_fails_clearly_and_records_it(ws: Workspace) -> None:
    from recipe_core.jobs.executors import submit_run
    from recipe_core.train import make_config

    address = f"http://127.0.0.1:{_free_port()}"
    config = make_config(str(ws.root), model="mlp", device="cuda")
    with pytest.raises(ConfigError, match=re.escape(address)):
        submit_run(config, workspace=ws, executor=RayExecutor(address))
    [status] = refresh_runs(ws)  # the refused run is not left `queued` forever
    assert status.state == "failed" and "Could not start the job" in status.error


def test_a_broken_job_json_does_not_hide_the_other_runs(ws: Workspace) -> None:
    good = _queued_run(ws)
    bad = _queued_run(ws, {"executor": "ray"})  # no address
    (bad / "job.json").write_text("{not json")
    states = {s.run_id: s.state for s in refresh_runs(ws)}
    assert states == {good.name: "queued", bad.name: "queued"}


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=120)  # fmt: skip


def test_nothing_on_the_default_path_imports_ray_or_torch() -> None:
    result = _python(
        "import sys, recipe_core, recipe_core.jobs.executors, recipe_core.jobs.ray, "
        "recipe_core.cli\n"
        "recipe_core.jobs.executors.make_executor('ray', ray_address='http://127.0.0.1:1', "
        "settings=recipe_core.settings.Settings())\n"
        "print(sorted(m for m in ('ray', 'torch') if m in sys.modules))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_app_never_starts_or_imports_ray() -> None:
    offenders = []
    for path in sorted((REPO_ROOT / "app").rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\bray\.init\b|^\s*(import ray\b|from ray\b)", line):
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}")
    executor_source = (REPO_ROOT / "recipe_core" / "jobs" / "ray.py").read_text()
    assert offenders == []
    assert "ray.init" not in executor_source.replace("never calls `ray.init()`", "")


def test_help_texts_name_every_preset_and_builtin_model() -> None:
    from recipe_core.cli import check_cmd, train_cmd
    from recipe_core.train import PRESETS
    from recipe_core.train.models import BUILTIN_MODELS

    presets_help = train_cmd.PRESETS_HELP
    assert presets_help == " | ".join(PRESETS) + "."
    for help_text in (train_cmd.MODELS_HELP, check_cmd.MODELS_HELP):
        assert help_text.startswith(" | ".join(BUILTIN_MODELS))


def test_jobs_log_option_appends_the_output_to_the_file(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    log.write_text("earlier line\n")
    result = subprocess.run(
        [sys.executable, "-m", "recipe_core.jobs.train_job", "--log", str(log),
         str(tmp_path / "nope")],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stdout == "" and result.stderr == ""  # all of it went to the file
    text = log.read_text()
    assert text.startswith("earlier line\n") and "is not a run directory" in text


def test_runs_logs_prints_the_tail(ws: Workspace) -> None:
    run_dir = _queued_run(ws)
    (run_dir / "log.txt").write_text("".join(f"line {i}\n" for i in range(10)))
    args = ["runs", "logs", run_dir.name, "--workspace", str(ws.root), "--tail", "3"]
    result = subprocess.run([sys.executable, "-m", "recipe_core", *args],
                            capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["line 7", "line 8", "line 9"]


def test_train_rejects_an_unknown_executor_before_creating_a_run(ws: Workspace) -> None:
    args = ["train", str(REPO_ROOT / "sample_data" / "digits"), "--executor", "slurm",
            "--workspace", str(ws.root)]  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "recipe_core", *args],
                            capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)  # fmt: skip
    assert result.returncode == 2
    assert "Unknown executor 'slurm'" in result.stderr
    assert not ws.runs.exists() or not any(ws.runs.iterdir())
