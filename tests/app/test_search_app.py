"""AppTest of a random search started from the Runs page: real background trials on a tiny
image folder; the page's table, best mark and chart against the engine's reading of the runs."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from recipe_core.runs import list_runs
from recipe_core.tune.job import searches
from recipe_core.workspace import open_workspace
from tests.app.helpers import MAIN, open_page
from tests.app.test_runs_app import markdown_texts, traces
from tests.conftest import write_image_folder

SPACE = "lr=loguniform:1e-4:1e-2\nbatch_size=choice:8,16"


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    data = write_image_folder(tmp_path / "ds", classes=3, per_class=8, size=8)
    monkeypatch.setenv("RECIPE_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setenv("RECIPE_DATASET", str(data))
    return AppTest.from_file(MAIN, default_timeout=90).run()


def _fill(at: AppTest, space: str) -> None:
    at.selectbox(key="tune_model").set_value("mlp")
    at.text_area(key="tune_space").set_value(space)
    at.number_input(key="tune_trials").set_value(3)
    at.number_input(key="tune_parallel").set_value(3)
    at.number_input(key="tune_steps_baseline").set_value(10)


def test_a_search_from_the_page_runs_its_trials_and_marks_the_best(
    app: AppTest, tmp_path: Path
) -> None:
    at = open_page(app, "runs")
    _fill(at, SPACE)
    next(b for b in at.button if b.label == "Start search").click().run()
    assert not at.exception, [e.value for e in at.exception]
    ws = open_workspace(tmp_path / "ws")
    (summary,) = searches(ws)
    assert any(f"Search {summary.search_id}" in t for t in markdown_texts(at))
    deadline = time.monotonic() + 240
    while not (summary.finished and not summary.driver_alive):
        assert time.monotonic() < deadline, summary
        time.sleep(1.0)
        (summary,) = searches(ws)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert {s.run_id for s in list_runs(ws)} == {t.run_id for t in summary.result.trials}
    table = next(d.value for d in at.dataframe if "best val_loss" in d.value.columns)
    assert len(table) == 3 and set(table["state"]) == {"succeeded"}
    best = summary.result.best
    assert best is not None
    starred = table[table["trial"].str.endswith("★")]
    assert starred["run id"].tolist() == [best.run_id]
    assert math.isclose(float(starred["best val_loss"].iloc[0]), best.best, rel_tol=1e-9)
    assert any(f"best val_loss **{best.best:.4g}** (trial {best.trial})" in t
               for t in markdown_texts(at))  # fmt: skip
    panels = [t for t in traces(at) if t.get("mode") == "markers"]  # batch_size, lr
    by_run = {t.trial: t for t in summary.result.trials}
    for name, panel in zip(("batch_size", "lr"), panels, strict=True):
        assert sorted(panel["x"]) == sorted(by_run[i].params[name] for i in by_run)
        assert sorted(panel["y"]) == sorted(t.best for t in summary.result.trials)
    next(b for b in at.button if b.label == "Compare these trials").click().run()
    assert sorted(at.multiselect(key="compare_runs").value) == sorted(by_run[i].run_id
                                                                    for i in by_run)  # fmt: skip
    notes = [i.value for i in at.info]
    assert any(f"trials of search {summary.search_id}" in n for n in notes), notes
    assert not any("things at once" in str(w.value) for w in at.warning)
    record = json.loads((summary.folder / "search.json").read_text())
    assert record["space"] == SPACE.splitlines()


def test_a_bad_space_line_names_the_problem_and_starts_nothing(
    app: AppTest, tmp_path: Path
) -> None:
    at = open_page(app, "runs")
    _fill(at, "lr=gaussian:0:1")
    next(b for b in at.button if b.label == "Start search").click().run()
    assert "Unknown distribution 'gaussian'" in at.error[0].value.replace("\\", "")
    ws = open_workspace(tmp_path / "ws")
    assert list_runs(ws) == [] and searches(ws) == []
