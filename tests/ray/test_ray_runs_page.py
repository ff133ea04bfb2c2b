"""The Runs page with RECIPE_EXECUTOR=ray (AppTest on the real app/main.py, the real Ray head of
tests/ray/conftest.py): a run started from the form goes through the Jobs API, shows up live
with its curves and its log, and the page's Cancel button stops the Ray job, exactly as for a
local job."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from recipe_core.cluster.jobs_api import find_token
from recipe_core.jobs.executors import executor_for
from recipe_core.runs import RunReader
from recipe_core.settings import load_settings
from tests.app.helpers import MAIN, open_page
from tests.conftest import SAMPLE_DIGITS
from tests.ray.conftest import RayCluster
from tests.ray.test_ray_executor import TIMEOUT_S, _ray_status

pytestmark = pytest.mark.ray


def test_the_runs_page_starts_follows_and_cancels_a_ray_job(
    ray_cluster: RayCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in ray_cluster.env.items():
        if key != "HOME":
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("RECIPE_EXECUTOR", "ray")
    monkeypatch.setenv("RECIPE_RAY_ADDRESS", ray_cluster.dashboard_url)
    monkeypatch.setenv("RECIPE_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setenv("RECIPE_DATASET", str(SAMPLE_DIGITS))
    at = open_page(AppTest.from_file(MAIN, default_timeout=90).run(), "runs")
    at.selectbox(key="run_model").set_value("mlp")
    at.radio(key="run_device").set_value("cpu")
    at.number_input(key="run_steps_baseline").set_value(100_000).run()
    next(b for b in at.button if b.label == "Start run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    (run_dir,) = (tmp_path / "ws" / "runs").iterdir()
    job = json.loads((run_dir / "job.json").read_text())
    assert job["executor"] == "ray" and job["address"] == ray_cluster.dashboard_url

    reader, deadline = RunReader(run_dir), time.monotonic() + TIMEOUT_S
    while len(reader.metrics()) < 3:  # the Ray worker imports torch, then trains
        assert time.monotonic() < deadline and not reader.status().finished, reader.log_tail()
        time.sleep(0.5)
    at.run()
    assert not at.exception
    assert at.dataframe[0].value["state"].tolist() == ["🏃 running"]
    live = [c.value for c in at.caption if c.value.startswith("Live: step")]
    assert live, [c.value for c in at.caption]
    assert len(at.get("plotly_chart")) == 2  # loss and accuracy, drawn from the shared run dir
    log_text = "\n".join(c.value for c in at.code)
    assert "INFO" in log_text  # the job's log, written by the Ray job into the run folder

    at.button(key=f"cancel_{run_dir.name}").click().run()
    assert not at.exception
    assert at.dataframe[0].value["state"].tolist() == ["⏹️ cancelled"]
    judge = executor_for(run_dir, token=find_token(load_settings()))
    assert judge.refresh(run_dir).state == "cancelled"
    assert _ray_status(ray_cluster, job["submission_id"], "STOPPED") == "STOPPED"
