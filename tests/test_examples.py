"""The pipelines users copy (examples/): each passes `recipe check --pipeline` cleanly, shows its
batches through `recipe see`, overfits under `recipe train --preset overfit`, and a copy of
each with a planted bug is flagged by the check that names the cause."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from recipe_core import load_pipeline
from recipe_core.checks import check_pipeline
from recipe_core.train.pipeline import PipelineTrainConfig, train_pipeline
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.usefixtures("one_torch_thread")

EXAMPLES = REPO_ROOT / "examples"
NAMES = ("image_classifier", "char_lm", "tabular_mlp")
RECIPE = [sys.executable, "-m", "recipe_core"]

# (example, line as shipped, line with the bug, the check that must flag it, words it must say)
PLANTED = [
    ("image_classifier",
     "    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)]",
     "    steps += [v2.ToDtype(torch.float32, scale=False)]",
     "batch_stats", "not normalised"),
    ("image_classifier",
     "    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)]",
     "    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD),\n"
     "              v2.Lambda(lambda t: t.reshape(-1, 4).t().reshape(1, 16, 16))]",
     "batch_stats", "scrambled"),
    ("char_lm",
     "        return self.head(self.blocks(h, mask=mask, is_causal=True))",
     "        return self.head(self.blocks(h))",
     "causal_dependence", "sees the future"),
    ("tabular_mlp",
     "    labels = torch.tensor(frame[TARGET].map(OUTCOMES.index).to_numpy(), dtype=torch.long)",
     "    labels = torch.tensor(frame[TARGET].map(OUTCOMES.index).to_numpy(), dtype=torch.long)"
     ".roll(1)",
     "input_independent_baseline", "no better"),
]  # fmt: skip


def recipe(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([*RECIPE, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_each_example_passes_its_checks_cleanly(name: str) -> None:
    done = recipe("check", "--pipeline", f"examples/{name}.py:pipeline", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    bad = {
        r["name"]: r["summary"]
        for r in report["results"]
        if r["status"] in ("fail", "warn", "error")
    }
    assert not bad
    ran = [r["name"] for r in report["results"] if r["status"] == "pass"]
    assert {"labels_and_outputs", "loss_at_init", "overfit_one_batch"} <= set(ran)


@pytest.mark.parametrize("name", NAMES)
def test_see_writes_the_batches_model_x_received(name: str, tmp_path: Path) -> None:
    done = recipe("see", "--pipeline", f"examples/{name}.py:pipeline", "--out", str(tmp_path),
                  "--batches", "1", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    layout = {"image_classifier": "image_chw", "char_lm": "tokens", "tabular_mlp": "table"}
    assert seen["batches"][0]["layout"] == layout[name]
    assert (tmp_path / "batch_000.png").stat().st_size > 500


@pytest.mark.parametrize("name", NAMES)
def test_overfit_drives_the_train_loss_near_zero(name: str, tmp_path: Path) -> None:
    config = PipelineTrainConfig(f"{EXAMPLES / name}.py:pipeline", preset="overfit")
    result = train_pipeline(config, workspace=tmp_path)
    assert result.train_loss < 0.1, result


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of examples/ beside a link to the sample data, as in a user's checkout."""
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    (tmp_path / "sample_data").symlink_to(REPO_ROOT / "sample_data")
    return tmp_path / "examples"


@pytest.mark.parametrize(("name", "shipped", "bug", "check", "says"), PLANTED,
                         ids=[f"{p[0]}-{p[3]}" for p in PLANTED])  # fmt: skip
def test_a_planted_bug_is_flagged_by_the_check_that_names_it(
    project: Path, name: str, shipped: str, bug: str, check: str, says: str
) -> None:
    source = (project / f"{name}.py").read_text()
    assert shipped in source  # the example still reads as the bug assumes
    (project / "buggy.py").write_text(source.replace(shipped, bug))
    pipeline = load_pipeline(f"{project / 'buggy.py'}:pipeline")
    (result,) = check_pipeline(pipeline, only=[check]).results
    assert result.status in ("fail", "warn") and says in result.summary, result.summary
    clean = load_pipeline(f"{project / name}.py:pipeline")
    assert check_pipeline(clean, only=[check]).results[0].status == "pass"


def test_train_detached_runs_the_pipeline_as_a_job(tmp_path: Path) -> None:
    done = recipe("train", "--pipeline", "examples/tabular_mlp.py:pipeline", "--preset",
                  "overfit", "--steps", "60", "--detach", "--json", "--workspace",
                  str(tmp_path))  # fmt: skip
    assert done.returncode == 0, done.stderr
    run_dir = Path(json.loads(done.stdout)["run_dir"])
    from recipe_core.runs import RunReader

    reader = RunReader(run_dir)
    import time

    deadline = time.monotonic() + 120
    while not reader.status().finished and time.monotonic() < deadline:
        time.sleep(0.5)
    status = reader.status()
    assert status.state == "succeeded", status.error
    config = json.loads((run_dir / "config.json").read_text())
    assert config["kind"] == "pipeline"
    assert Path(config["pipeline"].rpartition(":")[0]).is_absolute()  # jobs start elsewhere


def test_bad_pipeline_specs_exit_2_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def pipeline():\n    return {}['model']\n")
    broken = f"{tmp_path / 'broken.py'}:pipeline"
    for args in (["check", "--pipeline", "nope.py:pipeline"],
                 ["see", "--pipeline", broken, "--out", str(tmp_path)],
                 ["train", "--pipeline", "missing_colon"],
                 ["check", "sample_data/digits", "--pipeline", broken]):  # fmt: skip
        done = recipe(*args)
        assert done.returncode == 2 and "Traceback (most recent" not in done.stderr, done.stderr
        assert "error:" in done.stderr
    done = recipe("see", "--pipeline", broken, "--out", str(tmp_path))
    assert "KeyError" in done.stderr and "return {}['model']" in done.stderr  # the user's line
