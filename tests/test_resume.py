"""Leave it training: a resumed run continues its own curves, as if it had never stopped."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from recipe_core.cli import cli
from recipe_core.errors import RecipeError
from recipe_core.jobs.executors import LocalExecutor, wait_for
from recipe_core.jobs.resume import submit_resume
from recipe_core.runs import RunReader, RunWriter
from recipe_core.train import make_config, train
from recipe_core.train.resume import RESUME_FILE, resume
from tests.conftest import SAMPLE_DIGITS

pytestmark = pytest.mark.usefixtures("one_torch_thread")
FAST = dict(model="mlp", image_size=8, log_every=5, eval_every=20, dynamics_every=10, device="cpu")


def _train_rows(run_dir: Path) -> list[dict[str, float]]:
    metrics = RunReader(run_dir).metrics()
    return metrics[metrics["split"] == "train"].to_dict("records")


def test_resumed_run_repeats_the_uninterrupted_one(tmp_path: Path) -> None:
    """The trusted answer: one 60-step run. 40 steps + 20 resumed must give the same losses
    step for step (weights, Adam's moments and the batch order all restored), in one run."""
    whole = train(make_config(str(SAMPLE_DIGITS), steps=60, **FAST), workspace=tmp_path / "a")
    first = train(make_config(str(SAMPLE_DIGITS), steps=40, **FAST), workspace=tmp_path / "b")
    resumed = resume(first.run_dir, 20)

    assert resumed.run_dir == first.run_dir and resumed.steps == 60
    rows = _train_rows(first.run_dir)
    steps = [int(r["step"]) for r in rows]
    assert steps == list(range(60))  # strictly increasing across the resume, last = 40 + 20 - 1
    expected = [r["loss"] for r in _train_rows(whole.run_dir)]
    assert [r["loss"] for r in rows] == pytest.approx(expected, rel=1e-4, abs=1e-5)
    assert resumed.val_loss == pytest.approx(whole.val_loss, rel=1e-4)
    val = RunReader(first.run_dir).metrics().query("split == 'val'")["step"].tolist()
    assert val == sorted(set(val)) and val[-1] == 60
    dynamics = [json.loads(line)["step"] for line in
                (first.run_dir / "dynamics.jsonl").read_text().splitlines()]  # fmt: skip
    assert dynamics == [0, 10, 20, 30, 40, 50, 60]  # step 40's snapshot not taken twice
    status = RunWriter(first.run_dir).status()
    assert status.state == "succeeded" and status.step == 60 and status.error == ""
    history = json.loads((first.run_dir / RESUME_FILE).read_text())["history"]
    assert history[0]["from_step"] == 40 and history[0]["optimizer"] == "restored"
    assert RunReader(first.run_dir).config()["steps"] == 60


def test_old_checkpoint_resumes_with_a_fresh_optimizer_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = train(make_config(str(SAMPLE_DIGITS), steps=20, **FAST), workspace=tmp_path)
    path = run.run_dir / "checkpoints" / "last.pt"
    state = torch.load(path, weights_only=True)
    for key in ("optimizer", "schedule", "best_val_loss", "best_step"):  # as written before
        del state[key]
    torch.save(state, path)
    with caplog.at_level(logging.WARNING):
        resumed = resume(run.run_dir, 10)
    assert resumed.steps == 30
    assert "fresh adam optimizer" in caplog.text
    history = json.loads((run.run_dir / RESUME_FILE).read_text())["history"]
    assert history[0]["optimizer"] == "fresh"


def test_refusals_name_the_fix(tmp_path: Path) -> None:
    run = train(make_config(str(SAMPLE_DIGITS), steps=10, **FAST), workspace=tmp_path)
    with pytest.raises(RecipeError, match="integer >= 1"):
        resume(run.run_dir, 0)
    (run.run_dir / "checkpoints" / "last.pt").unlink()
    with pytest.raises(RecipeError, match="no checkpoint"):
        resume(run.run_dir, 5)
    RunWriter(run.run_dir).update_status(state="running")
    with pytest.raises(RecipeError, match="is running: only a succeeded or cancelled"):
        resume(run.run_dir, 5)


def test_cli_resume_here_and_as_a_job(tmp_path: Path) -> None:
    ws = str(tmp_path / "ws")
    runner = CliRunner()
    base = ["train", str(SAMPLE_DIGITS), "--model", "mlp", "--steps", "10", "--device", "cpu"]
    first = runner.invoke(cli, [*base, "--workspace", ws, "--json"])
    assert first.exit_code == 0, first.output
    run_id = json.loads(first.stdout)["run_id"]
    more = runner.invoke(cli, ["train", "--resume", run_id, "--steps", "5", "--workspace", ws,
                               "--json"])  # fmt: skip
    assert more.exit_code == 0, more.output
    assert json.loads(more.stdout)["steps"] == 15
    bad = runner.invoke(cli, ["train", "--resume", run_id, "--workspace", ws])
    assert bad.exit_code == 2 and "--steps N" in bad.output
    both = runner.invoke(cli, ["train", str(SAMPLE_DIGITS), "--resume", run_id, "--steps", "5",
                               "--workspace", ws])  # fmt: skip
    assert both.exit_code == 2 and "drop DATASET" in both.output
    run_dir = Path(json.loads(more.stdout)["run_dir"])
    executor = LocalExecutor()
    submit_resume(run_dir, 5, executor=executor)
    status = wait_for(executor, run_dir, timeout_s=120)
    assert status.state == "succeeded" and status.step == 20, status.error
    assert [int(r["step"]) for r in _train_rows(run_dir)] == list(range(20))
