"""AppTest: the pages render real content for a real dataset (not just 'no exception')."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.helpers import MAIN, elements
from tests.conftest import write_image_folder


@pytest.fixture
def app_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    dataset = write_image_folder(tmp_path / "ds", per_class=20)
    monkeypatch.setenv("RECIPE_DATASET", str(dataset))
    monkeypatch.setenv("RECIPE_WORKSPACE", str(tmp_path / "ws"))
    return dataset


def test_home_explains_the_recipe(app_env: Path) -> None:
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value.endswith("Recipe")
    headers = [h.value for h in at.subheader]
    assert headers[0] == "Your progress on ds: 0 of 8 steps done"  # a fresh workspace
    assert headers[1] == "1. Become one with the data"
    assert any("Overfit" in h for h in headers)
    checklist = [m.value for m in at.markdown if m.value.startswith(("✅", "⬜"))]
    assert len(checklist) == 8 and all(line.startswith("⬜") for line in checklist)
    assert "Not scanned yet" in checklist[0]


def test_home_checklist_shows_evidence(app_env: Path, tmp_path: Path) -> None:
    from recipe_core import open_workspace, scan
    from recipe_core.jobs import scan_job as scan_jobs
    from recipe_core.scan import write_result

    ws = open_workspace(tmp_path / "ws")
    result = scan(app_env, workspace=ws, workers=1)
    write_result(result, scan_jobs.job_dir(ws, app_env) / scan_jobs.RESULT_DIR)
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    assert not at.exception
    assert at.subheader[0].value == "Your progress on ds: 1 of 8 steps done"
    first = next(m.value for m in at.markdown if m.value.startswith(("✅", "⬜")))
    assert first.startswith("✅") and "120 samples scanned" in first


def test_data_overview_shows_counts_and_grid(app_env: Path) -> None:
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    at.switch_page("views/data_overview.py").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Samples": "120", "Classes": "3", "Splits": "train, val",
                       "Unreadable files": "0"}  # fmt: skip
    captions = [c.value for c in at.caption]
    assert "120 images match; showing 48 per page." in captions
    assert at.get("plotly_chart"), "class balance chart missing"
    grid = [e for e in elements(at) if getattr(e, "type", "") == "image"]
    assert len(grid) == 48


def test_data_overview_filter_and_paging(app_env: Path) -> None:
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    at.switch_page("views/data_overview.py").run()
    at.multiselect(key="ov_splits").set_value(["val"]).run()
    at.multiselect(key="ov_classes").set_value(["class_1"]).run()
    assert "20 images match; showing 48 per page." in [c.value for c in at.caption]
    assert len([e for e in elements(at) if getattr(e, "type", "") == "image"]) == 20


def test_data_overview_bad_path_is_a_clear_error(app_env: Path, tmp_path: Path) -> None:
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    at.switch_page("views/data_overview.py").run()
    at.text_input(key="dataset_input").set_value(str(app_env / "missing")).run()
    assert not at.exception
    assert len(at.error) == 1 and "does not exist" in at.error[0].value
    assert not at.metric
    # outside the allowed roots (cwd, sample_data/, the app's dataset): refused, whether or not
    # it exists, so a hosted dashboard does not reveal the server's files
    at.text_input(key="dataset_input").set_value(str(tmp_path / "missing")).run()
    assert len(at.error) == 1 and "outside the folders" in at.error[0].value


def test_data_overview_names_hostile_entries(app_env: Path) -> None:
    """A named pipe counts as unreadable (the header pass does not block on it) and a folder
    symlink loop is shown as not followed, with the reason."""
    import os

    os.mkfifo(app_env / "train" / "class_0" / "pipe.png")
    (app_env / "train" / "class_1" / "loop").symlink_to(".")
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    at.switch_page("views/data_overview.py").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Samples"] == "121" and metrics["Unreadable files"] == "1"
    warnings = [w.value for w in at.warning]
    assert any("1 folder(s) not listed" in w for w in warnings), warnings
    tables = [t.value for t in at.dataframe]
    assert any("path" in t.columns and "train/class_1/loop" in set(t["path"]) for t in tables)
