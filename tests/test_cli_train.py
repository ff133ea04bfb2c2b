"""`recipe train` and `recipe runs list|show|cancel`, as a user (or a script) calls them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from recipe_core.cli import cli
from recipe_core.jobs.executors import LocalExecutor, wait_for
from recipe_core.runs import RunReader
from tests.conftest import SAMPLE_DIGITS
from tests.test_train import make_digits

runner = CliRunner()
FAST = ["--model", "linear", "--steps", "30", "--device", "cpu"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> str:
    if SAMPLE_DIGITS.is_dir():
        return str(SAMPLE_DIGITS)
    return str(make_digits(tmp_path_factory.mktemp("digits"), limit=400))


def test_train_in_the_foreground_then_list_show_and_cancel(digits: str, tmp_path: Path) -> None:
    ws = str(tmp_path / "ws")
    result = runner.invoke(
        cli,
        ["train", digits, *FAST, "--seed", "3", "--batch-size", "32", "--workspace", ws, "--json"],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["state"] == "succeeded" and summary["steps"] == 30
    config = RunReader(Path(summary["run_dir"])).config()
    assert (config["seed"], config["batch_size"], config["model"]) == (3, 32, "linear")
    run_id = summary["run_id"]

    listed = json.loads(runner.invoke(cli, ["runs", "list", "--workspace", ws, "--json"]).stdout)
    assert [(r["run_id"], r["state"]) for r in listed] == [(run_id, "succeeded")]
    shown = runner.invoke(cli, ["runs", "show", run_id[:-3], "--workspace", ws, "--json"])
    assert shown.exit_code == 0, shown.output
    details = json.loads(shown.stdout)
    assert details["latest"]["train"]["step"] == 29 and details["latest"]["val"]["step"] == 30
    assert details["config"]["preset"] == "baseline"
    human = runner.invoke(cli, ["runs", "show", run_id, "--workspace", ws])
    assert "succeeded" in human.stdout and "val: step 30" in human.stdout
    table = runner.invoke(cli, ["runs", "list", "--workspace", ws])
    assert run_id[:15] in table.stdout
    cancel = runner.invoke(cli, ["runs", "cancel", run_id, "--workspace", ws])
    assert cancel.exit_code == 0 and "succeeded" in cancel.stdout  # nothing to cancel


def test_human_output_prints_the_run_id_first_and_progress(digits: str, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["train", digits, *FAST, "--workspace", str(tmp_path / "ws")])
    assert result.exit_code == 0, result.output
    first, *_, last = result.stdout.strip().splitlines()
    assert (tmp_path / "ws" / "runs" / first).is_dir()
    assert last.startswith("succeeded: 30 steps")
    assert "step     30  val" in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--preset", "fast"], "Unknown preset 'fast'. Choose one of: baseline, overfit"),
    (["--model", "vit"], "Unknown model 'vit'"),
    (["--steps", "0"], "steps must be an integer >= 1"),
])  # fmt: skip
def test_bad_options_exit_2_with_the_fix(
    digits: str, tmp_path: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(cli, ["train", digits, *args, "--workspace", str(tmp_path / "w")])
    assert result.exit_code == 2 and message in " ".join(result.stderr.split())
    assert not (tmp_path / "w" / "runs").exists() or not any((tmp_path / "w" / "runs").iterdir())


def test_missing_dataset_and_unknown_run_are_errors(tmp_path: Path) -> None:
    missing = runner.invoke(cli, ["train", str(tmp_path / "nope"), "--workspace", str(tmp_path)])
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    unknown = runner.invoke(cli, ["runs", "show", "zzz", "--workspace", str(tmp_path)])
    assert unknown.exit_code == 2 and "No run 'zzz'" in unknown.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_asking_for_cuda_without_a_gpu_is_a_clear_error(digits: str, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["train", digits, "--device", "cuda", "--workspace", str(tmp_path)])
    assert result.exit_code == 2
    assert "sees no CUDA GPU" in " ".join(result.stderr.split())


def test_detach_returns_at_once_and_the_job_finishes_in_the_background(
    digits: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the job process inherits the environment
    ws = str(tmp_path / "ws")
    result = runner.invoke(cli, ["train", digits, *FAST, "--workspace", ws, "--detach", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["state"] == "queued" and summary["pid"] > 0
    status = wait_for(LocalExecutor(), Path(summary["run_dir"]), timeout_s=120)
    assert status.state == "succeeded", RunReader(Path(summary["run_dir"])).log_tail()
    assert status.pid == summary["pid"]  # the job process itself recorded the run
