"""AppTest of "What the net sees" and Checks on tiny real image folders.

Trusted answers come from the engine called directly: `see_batch` for the batch the page shows,
and a check job run in this process (`new_check_job` + `run_job`) for the report it renders.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from recipe_core.checks.presets import build_check_inputs, see_batch
from recipe_core.errors import DatasetError
from recipe_core.explore.flags import flags_in_batch
from recipe_core.jobs.check_job import (
    list_jobs,
    load_report,
    new_check_job,
    read_check_state,
    run_job,
)
from recipe_core.jobs.scan_job import RESULT_DIR, job_dir
from recipe_core.scan import load_scan, scan, write_result
from recipe_core.workspace import open_workspace
from tests.app.helpers import MAIN, image_captions, open_page
from tests.conftest import write_image_folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two datasets (random images; every image of a class one file) and a workspace holding
    a finished check job and, newer, a failed one."""
    root = tmp_path_factory.mktemp("checks_app")
    data = write_image_folder(root / "ds", classes=3, per_class=24, size=8)
    copies = write_image_folder(root / "copies", classes=2, per_class=1, size=8, seed=1)
    for folder in sorted(p for p in copies.rglob("class_*") if p.is_dir()):
        for i in range(1, 12):
            (folder / f"copy{i}.png").write_bytes((folder / "000.png").read_bytes())
    ws = open_workspace(root / "ws")
    only = ["labels_and_outputs", "loss_at_init", "batch_independence", "overfit_one_batch",
            "layer_statistics"]  # fmt: skip
    done = new_check_job(data, "mlp", workspace=ws, max_seconds=20, batch_size=16, only=only)
    run_job(done)
    time.sleep(1.1)  # job ids and their order carry the creation time
    failed = new_check_job(root / "missing", "mlp", workspace=ws)
    with pytest.raises(DatasetError):
        run_job(failed)
    return {"root": root, "data": data, "copies": copies, "ws": ws, "done": done,
            "failed": failed}  # fmt: skip


@pytest.fixture
def app(setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    monkeypatch.setenv("RECIPE_WORKSPACE", str(setup["ws"].root))
    monkeypatch.setenv("RECIPE_DATASET", str(setup["data"]))
    monkeypatch.setenv("RECIPE_DATA_ROOTS", str(setup["root"]))
    yield AppTest.from_file(MAIN, default_timeout=90).run()


def alerts(at: AppTest, kind: str) -> list[str]:
    return [str(e.value) for e in at.get(kind)]


def traces(at: AppTest) -> list[dict[str, Any]]:
    out = []
    for chart in at.get("plotly_chart"):
        for trace in json.loads(chart.proto.spec)["data"]:
            out.append({k: _decode(v) for k, v in trace.items()})
    return out


def _decode(value: Any) -> Any:
    """Plotly ships numpy arrays as base64 typed arrays: make them lists."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = [int(n) for n in str(value.get("shape", len(flat))).split(",")]
        return flat.reshape(shape).tolist()
    return value


def test_net_sees_shows_the_engines_batch_grid_stats_and_pages(
    app: AppTest, setup: dict[str, Any]
) -> None:
    at = open_page(app, "net_sees")
    inputs = build_check_inputs(str(setup["data"]), "mlp", batch_size=64)
    first = see_batch(inputs, 0)
    assert first.label_names is not None
    captions = image_captions(at)
    assert captions == [f"{i}: {n.replace('_', chr(92) + '_')}"
                        for i, n in enumerate(first.label_names)]  # fmt: skip
    pd.testing.assert_frame_equal(at.dataframe[0].value, first.stats, check_dtype=False)
    assert alerts(at, "success") == ["Nothing looks wrong with this batch."]
    at.button[1].click().run()  # next batch: the rest of the 72 images
    assert at.number_input(key="ns_batch_index").value == 2
    second = see_batch(inputs, 1)
    assert len(image_captions(at)) == 72 - 64
    pd.testing.assert_frame_equal(at.dataframe[0].value, second.stats, check_dtype=False)
    at.button[1].click().run()  # there is no third batch: the page says so, readably
    assert any("only 2 batches" in e for e in alerts(at, "error"))


def test_net_sees_marks_the_samples_the_scan_flagged(app: AppTest, setup: dict[str, Any]) -> None:
    """A dataset with planted byte copies, scanned: the grid marks exactly the batch's
    flagged samples and the table lists them, as the engine says; unscanned, the page says so."""
    at = open_page(app, "net_sees")
    assert any("no scan yet" in m for m in alerts(at, "info"))  # setup["data"]: never scanned
    data = write_image_folder(setup["root"] / "planted", classes=2, per_class=12, size=8, seed=4)
    files = sorted(data.rglob("*.png"))
    for i, original in enumerate(files[:3]):
        (original.parent / f"copy{i}.png").write_bytes(original.read_bytes())
    write_result(scan(data, workspace=setup["ws"], workers=0),
                 job_dir(setup["ws"], data) / RESULT_DIR)  # fmt: skip
    at.text_input(key="ns_dataset").set_value(str(data)).run()
    at.number_input(key="ns_batch_size").set_value(9).run()
    assert not at.exception
    inputs = build_check_inputs(str(data), "mlp", batch_size=9)
    issues = load_scan(job_dir(setup["ws"], data) / RESULT_DIR).issues
    per_batch = []
    for b in range(3):  # 27 training images: three batches of 9
        ids = see_batch(inputs, b).sample_ids
        assert ids is not None
        per_batch.append(flags_in_batch(issues, ids))
    assert sum(len(f) for f in per_batch) == 6  # 3 originals + 3 copies, all in train
    for b, flags in enumerate(per_batch):
        at.number_input(key="ns_batch_index").set_value(b + 1).run()
        marked = [i for i, c in enumerate(image_captions(at)) if "⚠️" in c]
        assert marked == flags["position"].tolist()
        if flags.empty:
            assert "The scan flagged none of these 9 samples." in alerts(at, "success")
            continue
        assert any(f"flagged {len(flags)} of these 9" in str(w.value) for w in at.warning)
        shown = at.dataframe[0].value  # the flags table comes before the statistics
        assert shown["path"].tolist() == flags["path"].tolist()
        assert (shown["issues"] == "exact_duplicate").all()


def test_net_sees_warns_about_a_dataset_of_copies(app: AppTest, setup: dict[str, Any]) -> None:
    at = open_page(app, "net_sees")
    at.text_input(key="ns_dataset").set_value(str(setup["copies"])).run()
    at.number_input(key="ns_batch_size").set_value(16).run()
    assert not at.exception
    errors = alerts(at, "error")  # the engine rates a batch of copies "fail"
    assert len(errors) == 1 and "repeats another sample" in errors[0] and "Fix:" in errors[0]
    assert len(image_captions(at)) == 16


def test_checks_page_shows_the_failed_job_then_the_finished_report(
    app: AppTest, setup: dict[str, Any]
) -> None:
    at = open_page(app, "checks")
    picker = at.selectbox(key="selected_check_job")
    assert picker.options[0].endswith(f"mlp · {setup['root'] / 'missing'}")  # newest first
    error = alerts(at, "error")
    assert len(error) == 1 and "missing" in error[0] and "Traceback" not in error[0]
    picker.set_value(setup["done"].name).run()
    assert not at.exception
    report = load_report(setup["done"])
    names = [m.value for m in at.markdown if m.value.startswith("**")]
    assert sorted(names) == sorted(f"**{r.name.replace('_', chr(92) + '_')}**"
                                   for r in report.results)  # fmt: skip
    badges = [m.value for m in at.markdown if m.value.startswith(":")]  # st.badge is Markdown
    assert sum("PASS" in b for b in badges) == report.counts()["pass"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["✅ pass"] == str(report.counts()["pass"])
    folded = sorted(e.label for e in at.expander if e.label.startswith("Evidence of "))
    passed = [r.name for r in report.results if r.status == "pass"]  # a report of passes folds
    assert folded == sorted(f"Evidence of {n.replace('_', chr(92) + '_')}: observed, expected, "
                            "plots" for n in passed) and passed  # fmt: skip
    overfit = report.get("overfit_one_batch").evidence
    plotted = traces(at)
    heat = [t for t in plotted if t["type"] == "heatmap"]
    assert len(heat) == 1
    assert np.allclose(heat[0]["z"], report.get("batch_independence").evidence["dependency"])
    loss = next(t for t in plotted if t.get("name") == "loss")
    assert np.allclose(loss["y"], overfit["loss"])
    labels = [t["y"][0] for t in plotted if str(t.get("name", "")).endswith(" label")]
    assert labels == overfit["labels"][: len(labels)] and labels
    layers = report.get("layer_statistics").evidence  # per layer, log scale, init and after
    after = next(
        t for t in plotted if t.get("name") == f"scale, after {layers['after_steps']} steps"
    )
    assert after["x"] == [r["name"] for r in layers["after"]] and len(after["x"]) >= 2
    assert np.allclose(after["y"], [r["scale"] for r in layers["after"]])


def test_run_checks_starts_a_background_job_the_page_follows(
    app: AppTest, setup: dict[str, Any]
) -> None:
    at = open_page(app, "checks")
    at.selectbox(key="ck_model").set_value("linear")
    at.number_input(key="ck_budget").set_value(20)
    at.button[0].click().run()
    assert not at.exception
    newest = list_jobs(setup["ws"])[0]
    try:
        assert newest.model == "linear" and newest.max_seconds == 20
        assert at.selectbox(key="selected_check_job").value == newest.job_id
        assert any(p.proto.text.startswith(("Loading", "Check")) for p in at.get("progress"))
    finally:
        deadline = time.monotonic() + 60
        while read_check_state(newest.folder).state == "running" and time.monotonic() < deadline:
            time.sleep(0.5)
    assert read_check_state(newest.folder).state == "succeeded"


def test_a_report_the_budget_cut_short_says_so_and_names_the_checks(
    setup: dict[str, Any], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real job with a 1 s budget for two slow checks: both are cut short; the page names
    them in a banner above the cards, and neither card passes."""
    ws = open_workspace(tmp_path / "ws")
    job = new_check_job(setup["data"], "small_cnn", workspace=ws, max_seconds=1, batch_size=16,
                        only=["overfit_one_batch", "capacity_ladder"])  # fmt: skip
    run_job(job)
    report = load_report(job)
    assert report.cut_short, "1 s must cut the slow checks short"
    monkeypatch.setenv("RECIPE_WORKSPACE", str(ws.root))
    monkeypatch.setenv("RECIPE_DATASET", str(setup["data"]))
    at = open_page(AppTest.from_file(MAIN, default_timeout=90).run(), "checks")
    (banner,) = [w for w in alerts(at, "warning") if w.startswith("The time budget")]
    assert banner.startswith(f"The time budget of 1 s cut {len(report.cut_short)} check(s) short")
    assert all(f"**{name.replace('_', chr(92) + '_')}**" in banner for name in report.cut_short)
    assert all(report.get(name).status != "pass" for name in report.cut_short)
