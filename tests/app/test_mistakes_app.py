"""AppTest of a run's mistakes on the data pages, over the real sample data scanned by the engine
and a short built-in baseline run on it: picking the run adds its columns, a confusion-matrix
cell filters the grid to exactly that cell's samples, the presets sort, the sample detail shows
the prediction history, and the Issues page names its label-issue signal. Trusted answers come
from the run directory itself (RunReader) and the scan listing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from recipe_core.data import open_dataset
from recipe_core.explore.mistakes import (
    RUN_COLUMNS,
    load_run_predictions,
    merge_label_issues,
    run_label_issues,
)
from recipe_core.jobs.scan_job import RESULT_DIR, job_dir
from recipe_core.runs import RunReader
from recipe_core.scan import load_scan, scan, write_result
from recipe_core.workspace import open_workspace
from tests.app.helpers import MAIN, open_page
from tests.conftest import SAMPLE_DIGITS


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace holding the scan of sample_data/digits and one baseline run on it."""
    import torch

    from recipe_core.train import make_config, train

    ws = open_workspace(tmp_path_factory.mktemp("mistakes_app") / "ws")
    root = open_dataset(SAMPLE_DIGITS).root
    write_result(scan(root, workspace=ws, workers=0), job_dir(ws, root) / RESULT_DIR)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = make_config(str(SAMPLE_DIGITS), steps=60, image_size=16, eval_every=30,
                             log_every=30, device="cpu")  # fmt: skip
        return train(config, workspace=ws.root).run_dir
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def app(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    monkeypatch.setenv("RECIPE_WORKSPACE", str(run_dir.parent.parent))
    monkeypatch.delenv("RECIPE_DATASET", raising=False)  # the default: sample_data/digits
    yield AppTest.from_file(MAIN, default_timeout=90).run()


@pytest.fixture
def expected(run_dir: Path) -> pd.DataFrame:
    """The run's latest predictions with each sample's path."""
    frame = load_run_predictions(run_dir).frame
    paths = open_dataset(SAMPLE_DIGITS).samples.set_index("sample_id")["path"]
    return frame.assign(path=frame["sample_id"].map(paths))


def pick_run(at: AppTest, view: str, run_dir: Path) -> AppTest:
    at = open_page(at, view)
    box = at.selectbox(key="mistakes_run_choice")
    assert box.options == ["(none)", f"baseline-small_cnn · succeeded · {run_dir.name}"]
    box.set_value(run_dir.name).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def samples(at: AppTest) -> pd.DataFrame:
    """The page's sample table (the per-class accuracy table comes first once a run is picked)."""
    return next(d.value for d in at.dataframe if "thumbnail" in d.value.columns)


def grid_ids(at: AppTest, key: str) -> set[int]:
    prefix = f"{key}_"
    return {int(b.key[len(prefix) :]) for b in at.button if (b.key or "").startswith(prefix)}


def test_picking_a_run_adds_its_columns_to_every_data_page(
    app: AppTest, expected: pd.DataFrame, run_dir: Path
) -> None:
    at = open_page(app, "browse")
    assert not set(RUN_COLUMNS) & set(samples(at).columns)
    at = pick_run(at, "browse", run_dir)
    assert set(RUN_COLUMNS) <= set(samples(at).columns)
    assert samples(at)["loss"].isna().all()  # the first rows are train/: the run says nothing
    at.multiselect(key="flt_splits").set_value(["val"]).run()
    val = samples(at)
    want = expected.set_index("path")
    assert len(val) == 50 and val["path"].isin(want.index).all()
    np.testing.assert_allclose(val["loss"], want.loc[val["path"], "loss"], rtol=1e-6)
    assert (val["predicted"].to_numpy() == want.loc[val["path"], "predicted_name"]).all()
    at = open_page(at, "distributions")  # the pick is kept across pages
    assert {"loss", "confidence", "margin", "correct"} <= set(
        at.selectbox(key="dist_column").options
    )
    at.selectbox(key="dist_column").set_value("loss").run()
    assert not at.exception
    assert at.selectbox(key="mistakes_run_choice").value == run_dir.name


def test_a_confusion_cell_filters_the_grid_to_exactly_its_samples(
    app: AppTest, expected: pd.DataFrame, run_dir: Path
) -> None:
    at = pick_run(app, "browse", run_dir)
    wrong = expected[expected["true_name"] != expected["predicted_name"]]
    true, said = wrong.groupby(["true_name", "predicted_name"]).size().idxmax()  # biggest error
    cell = expected[(expected["true_name"] == true) & (expected["predicted_name"] == said)]
    box = next(s for s in at.selectbox if (s.key or "").startswith("browse_cell_"))
    option = f"true {true} → predicted {said} ({len(cell)})"
    assert option in box.options
    box.set_value(option).run()
    assert not at.exception
    assert set(samples(at)["path"]) == set(cell["path"])
    assert grid_ids(at, "browse_grid") == set(cell["sample_id"])
    assert any(c.value.startswith(f"**{len(cell)}** of 1,709 samples match") for c in at.caption)
    at.segmented_control(key="browse_preset").set_value("Highest loss").run()  # cell and preset
    shown = samples(at)
    want = np.sort(cell["loss"].to_numpy())[::-1]
    np.testing.assert_allclose(shown["loss"], want, rtol=1e-6)
    note = next(c.value for c in at.caption if c.value.startswith(f"**{len(cell)}**"))
    assert "highest loss, loss highest first" in note


def test_most_confident_mistakes_preset_sorts_the_wrong_ones_first(
    app: AppTest, expected: pd.DataFrame, run_dir: Path
) -> None:
    at = pick_run(app, "browse", run_dir)
    at.segmented_control(key="browse_preset").set_value("Most confident mistakes").run()
    assert not at.exception
    shown = samples(at)
    wrong = expected[~expected["correct"]]
    want = np.sort(wrong["confidence"].to_numpy())[::-1][: len(shown)]
    assert (shown["correct"] == 0).all() and len(shown) == min(50, len(wrong))
    np.testing.assert_allclose(shown["confidence"], want, rtol=1e-6)
    at.segmented_control(key="browse_preset").set_value("Right but unsure").run()
    shown = samples(at)
    right = np.sort(expected.loc[expected["correct"], "margin"].to_numpy())[: len(shown)]
    assert (shown["correct"] == 1).all()
    np.testing.assert_allclose(shown["margin"], right, rtol=1e-6)


def test_the_detail_shows_the_prediction_history_next_to_the_scan_issues(
    app: AppTest, expected: pd.DataFrame, run_dir: Path
) -> None:
    at = pick_run(app, "browse", run_dir)
    at.segmented_control(key="browse_preset").set_value("Highest loss").run()
    sid = int(samples(at).iloc[0:1].merge(expected, on="path")["sample_id"].iloc[0])
    at.button(key=f"browse_grid_{sid}").click().run()
    assert not at.exception
    notes = [m.value for m in at.markdown]
    assert any(n.startswith("**Why it was flagged**") or "No issue flagged" in n
               for n in notes + [s.value for s in at.success])  # fmt: skip
    assert any(n.startswith("**Prediction history**") for n in notes)
    history = next(d.value for d in at.dataframe if "step" in d.value.columns)
    want = RunReader(run_dir).prediction_history(sid)
    assert history["step"].tolist() == want["step"].tolist() == [30, 60]
    np.testing.assert_allclose(history["loss"], want["loss"], rtol=1e-6)


def test_the_issues_page_names_its_label_issue_signal(app: AppTest, run_dir: Path) -> None:
    at = open_page(app, "issues")
    assert any(c.value == "Signal: scan baselines." for c in at.caption)
    at = pick_run(at, "issues", run_dir)
    label = load_run_predictions(run_dir).label
    at.radio(key="label_signal").set_value(label).run()
    assert not at.exception
    signal = [c.value.replace("\\", "") for c in at.caption if c.value.startswith("Signal: ")]
    assert len(signal) == 1 and "at step 60" in label  # Markdown escapes dropped
    assert signal[0].startswith(f"Signal: {label}. It flags ")
    result = load_scan(job_dir(open_workspace(run_dir.parent.parent), SAMPLE_DIGITS.resolve())
                       / RESULT_DIR)  # fmt: skip
    table = result.index.table
    found = run_label_issues(table, load_run_predictions(run_dir))
    merged = merge_label_issues(result.issues, found, table)
    rows = merged[merged["issue"] == "label_issue"]
    shown = next(d.value for d in at.dataframe if "given label" in d.value.columns)
    assert len(shown) == min(50, len(rows))
    assert set(shown["path"]) == set(rows.nlargest(len(shown), "score")["path"])
    by_path = rows.set_index("path")["signal"]
    assert (shown["signal"].to_numpy() == by_path.loc[shown["path"]].to_numpy()).all()
    assert (rows["signal"] == "run").any() and (rows["signal"] == "scan").any()
    n_run = int((rows["signal"] == "run").sum())
    assert f"It flags {n_run} of the 367 samples it evaluated; the other " in signal[0]


def test_a_click_on_the_confusion_matrix_names_the_cell_under_it(run_dir: Path) -> None:
    """The click-to-filter path AppTest cannot click: every cell's marker in the figure, as
    plotly reports it selected, maps back to the cell drawn under it."""
    from app.mistake_widgets import confusion_figure, confusion_selection
    from recipe_core.explore.mistakes import confusion_matrix

    matrix = confusion_matrix(load_run_predictions(run_dir))
    markers = confusion_figure(matrix).data[1]
    for i, (x, y) in enumerate(zip(markers.x, markers.y, strict=True)):
        point = {"curve_number": 1, "point_index": i, "x": x, "y": y}
        assert confusion_selection({"points": [point], "box": []}, matrix) == (y, x)
        assert markers.customdata[i] == matrix.loc[y, x]
    assert confusion_selection({"points": [{"curve_number": 0, "point_index": 3}]}, matrix) is None
    assert confusion_selection(None, matrix) is None
    assert confusion_selection({"points": [], "box": []}, matrix) is None
