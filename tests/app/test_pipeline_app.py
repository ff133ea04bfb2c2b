"""AppTest of the user's own pipeline in the dashboard: the Checks page runs a pipeline's
checks as a job (its code imported only in that process) and lists a script's saved report;
the Runs page shows what the net saw in a script's run and in a pipeline run.

Trusted answers: the report file the job wrote, the report the script saved, and the batches
the runs captured, read back with the engine."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from recipe_core import load_pipeline, start_run
from recipe_core.checks import CHECKS, check_pipeline
from recipe_core.jobs.check_job import list_jobs, load_report, read_check_state
from recipe_core.train.pipeline import PipelineTrainConfig, train_pipeline
from recipe_core.workspace import open_workspace
from tests.app.helpers import MAIN, open_page
from tests.conftest import REPO_ROOT

TABULAR = f"{REPO_ROOT / 'examples' / 'tabular_mlp.py'}:pipeline"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A script's saved report, a script run that watched its char model, a pipeline run."""
    root = tmp_path_factory.mktemp("pipeline_app") / "ws"
    ws = open_workspace(root)
    torch.set_num_threads(1)
    tabular = load_pipeline(TABULAR)
    check_pipeline(tabular, only=["labels_and_outputs", "loss_at_init"]).save(ws, name="nb.py")
    nn = torch.nn
    model = nn.Sequential(nn.Embedding(20, 8), nn.Flatten(), nn.Linear(64, 2))
    with start_run("script-tokens", workspace=ws) as run:
        run.watch(model, capture=1)
        model(torch.randint(0, 20, (4, 8)))
    train_pipeline(PipelineTrainConfig(TABULAR, preset="overfit", steps=30), run=None,
                   workspace=ws, pipeline=tabular)  # fmt: skip
    return root


@pytest.fixture
def app(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    monkeypatch.setenv("RECIPE_WORKSPACE", str(workspace))
    monkeypatch.setenv("RECIPE_PIPELINES", json.dumps({"tabular": TABULAR}))
    monkeypatch.setenv("RECIPE_DATA_ROOTS", str(REPO_ROOT))
    yield AppTest.from_file(MAIN, default_timeout=90).run()


def run_named(workspace: Path, name: str) -> str:
    statuses = {p.name: json.loads((p / "status.json").read_text()) for p in
                (workspace / "runs").iterdir()}  # fmt: skip
    return next(run_id for run_id, status in statuses.items() if status["name"] == name)


def texts(at: AppTest) -> list[str]:
    kinds = ("markdown", "caption", "error", "warning", "info", "success")
    return [str(e.value) for kind in kinds for e in at.get(kind)]


def test_the_checks_page_runs_an_offered_pipeline_as_a_job(app: AppTest, workspace: Path) -> None:
    at = open_page(app, "checks")
    assert at.radio(key="ck_kind").value == "Your pipeline"  # offered: chosen first
    assert at.selectbox(key="ck_pipeline").options[0].startswith("tabular")
    at.number_input(key="ck_budget").set_value(30)
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    job = list_jobs(open_workspace(workspace))[0]
    assert job.pipeline == TABULAR and job.source == "job" and job.dataset == ""
    deadline = time.monotonic() + 240
    while read_check_state(job.folder).state == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert read_check_state(job.folder).state == "succeeded"
    report = load_report(job.folder)
    at = open_page(app, "checks")
    shown = " ".join(texts(at))
    assert f"pipeline {TABULAR}" in at.selectbox(key="selected_check_job").format_func(job.job_id)
    assert [r.name for r in report.results] == list(CHECKS)
    for result in report.results:  # every check's card, with its status badge
        assert f"**{result.name.replace('_', chr(92) + '_')}** " in shown


def test_a_typed_pipeline_outside_the_allowed_folders_is_refused(
    app: AppTest, workspace: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("not_allowed") / "elsewhere.py"
    outside.write_text("raise SystemExit('must never be imported')\n")
    before = len(list_jobs(open_workspace(workspace)))
    at = open_page(app, "checks")
    at.selectbox(key="ck_pipeline").set_value("Type FILE.py:NAME…").run()
    at.text_input(key="ck_typed_pipeline").set_value(f"{outside}:pipeline").run()
    at.button[0].click().run()
    assert not at.exception
    assert any("outside" in str(e.value) for e in at.error), [e.value for e in at.error]
    assert len(list_jobs(open_workspace(workspace))) == before  # no job started


def test_a_scripts_saved_report_is_listed_with_the_jobs(app: AppTest, workspace: Path) -> None:
    saved = next(j for j in list_jobs(open_workspace(workspace)) if j.source == "script")
    at = open_page(app, "checks")
    at.selectbox(key="selected_check_job").set_value(saved.job_id).run()
    assert not at.exception
    shown = " ".join(texts(at))
    names = [r.name for r in load_report(saved.folder).results]
    assert names == ["labels_and_outputs", "loss_at_init"]
    for name in names:
        assert f"**{name.replace('_', chr(92) + '_')}** " in shown


@pytest.mark.parametrize(("run", "layout"), [("script-tokens", "tokens"),
                                             ("overfit-tabular_mlp", "table")])  # fmt: skip
def test_the_runs_page_shows_what_the_net_saw_in_the_run(
    app: AppTest, workspace: Path, run: str, layout: str
) -> None:
    at = open_page(app, "runs")
    run_id = run_named(workspace, run)
    at.selectbox(key="runs_pick").set_value(run_id).run()
    assert not at.exception
    expanders = [e.label for e in at.expander]
    assert any(label.startswith("What the net saw in this run (") for label in expanders)
    at.session_state[f"seen_open_{run_id}"] = True  # the reader opens it (a job's is closed)
    at.run()
    captions = [str(c.value) for c in at.caption]
    assert any(c.startswith(f"{layout} · shape") for c in captions), captions
    assert at.get("image"), "the decoded batch is shown as a picture"


def test_what_the_net_sees_captures_a_pipeline_in_a_job(app: AppTest, workspace: Path) -> None:
    from recipe_core.jobs.see_job import load_seen, read_see_state, seen_root

    at = open_page(app, "net_sees")
    assert at.radio(key="ns_kind").value == "Your pipeline"
    at.number_input(key="ns_batches").set_value(1)
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    (folder,) = seen_root(open_workspace(workspace)).iterdir()
    deadline = time.monotonic() + 120
    while read_see_state(folder).state == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert read_see_state(folder).state == "succeeded", read_see_state(folder).message
    seen = load_seen(folder)
    at = open_page(app, "net_sees")
    shown = " ".join(texts(at))
    assert "table · shape \\(64\\, 10\\)" in shown or "table · shape (64, 10)" in shown, shown
    assert len(at.get("image")) == len(seen["batches"]) == 1
    assert "Scan findings cannot be marked" not in shown  # a table has no image files to mark


def test_a_raising_model_shows_the_users_own_lines_on_its_card(
    app: AppTest, workspace: Path
) -> None:
    from recipe_core import Pipeline

    class Broken(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x @ torch.ones(3, 2)  # the user's bug: wrong weight shape

    tabular = load_pipeline(TABULAR)
    broken = Pipeline(Broken, tabular.train_loader, tabular.loss_fn, num_classes=3)
    saved = check_pipeline(broken, only=["labels_and_outputs"]).save(workspace, name="broken")
    at = open_page(app, "checks")
    at.selectbox(key="selected_check_job").set_value(saved.name).run()
    codes = [str(c.value) for c in at.code]
    assert any("return x @ torch.ones(3, 2)" in c and "RuntimeError" in c for c in codes), codes


def test_the_dynamics_page_follows_a_pipeline_run(app: AppTest, workspace: Path) -> None:
    run_id = run_named(workspace, "overfit-tabular_mlp")
    at = open_page(app, "runs")
    at.selectbox(key="runs_pick").set_value(run_id).run()
    at = open_page(at, "dynamics")
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.get("plotly_chart"), "the probe's prediction dynamics are drawn"


def test_a_running_check_job_can_be_cancelled_from_the_page(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = tmp_path / "slow_pipeline.py"
    slow.write_text(
        "import time\nfrom torch import nn\nfrom recipe_core import Pipeline\n\n"
        "def batches():\n    time.sleep(120)\n    yield from ()\n\n"
        "def pipeline():\n    return Pipeline(nn.Linear(2, 2), batches(), nn.CrossEntropyLoss())\n"
    )
    monkeypatch.setenv("RECIPE_WORKSPACE", str(workspace))
    monkeypatch.setenv("RECIPE_PIPELINES", json.dumps({"slow": f"{slow}:pipeline"}))
    at = open_page(AppTest.from_file(MAIN, default_timeout=90).run(), "checks")
    at.button[0].click().run()
    job = list_jobs(open_workspace(workspace))[0]
    assert job.pipeline == f"{slow}:pipeline" and read_check_state(job.folder).state == "running"
    at.button(key=f"cancel_{job.job_id}").click().run()
    assert not at.exception
    assert read_check_state(job.folder).state == "cancelled"


def test_the_runs_page_starts_a_pipeline_run_that_trains_live(
    app: AppTest, workspace: Path
) -> None:
    from recipe_core.runs import RunReader

    at = open_page(app, "runs")
    at.radio(key="run_kind").set_value("Your pipeline").run()
    at.selectbox(key="run_pipeline_preset").set_value("overfit").run()
    at.number_input(key="run_pipeline_steps").set_value(40).run()
    at.radio(key="run_pipeline_device").set_value("cpu").run()
    at.button(key="run_pipeline_start").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    config_of = {
        p: json.loads((p / "config.json").read_text()) for p in (workspace / "runs").iterdir()
    }
    (run_dir,) = [
        p for p, c in config_of.items() if c.get("kind") == "pipeline" and c["steps"] == 40
    ]
    reader = RunReader(run_dir)
    deadline = time.monotonic() + 180
    while not reader.status().finished and time.monotonic() < deadline:
        time.sleep(0.5)
    assert reader.status().state == "succeeded", reader.status().error
    assert int(reader.metrics()["step"].max()) == 40  # the final evaluation's row
