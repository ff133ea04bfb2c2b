"""AppTest of the Runs and Prediction dynamics pages over real runs recorded by the engine:
a finished overfit run, a run that diverged to NaN, and live background jobs (one cancelled
from the page, one killed behind its back).

Trusted answers come from the run directories themselves (metrics.jsonl rows, the probe's
labels and snapshots), read with the engine's RunReader.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from app.run_widgets import config_changes
from recipe_core.dynamics import read_dynamics
from recipe_core.errors import RunError
from recipe_core.jobs.executors import LocalExecutor, submit_run
from recipe_core.runs import RunReader
from recipe_core.train import make_config, train
from tests.app.helpers import MAIN, open_page
from tests.conftest import write_image_folder

TRICKY_NAME = "<b>bold</b> *stars* [link](x)"  # must show literally, never as markup
TINY = {"model": "mlp", "image_size": 8, "device": "cpu", "log_every": 5, "dynamics_every": 5,
        "probe_size": 8, "eval_every": 10}  # fmt: skip


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A workspace with a finished overfit run and a run that diverged at step 2."""
    root = tmp_path_factory.mktemp("runs_app")
    data = write_image_folder(root / "ds", classes=3, per_class=8, size=8)
    ws = root / "ws"
    torch.set_num_threads(1)
    diverging = make_config(str(data), preset="baseline", steps=100, lr=1e6, optimizer="sgd",
                            batch_size=8, **TINY)  # fmt: skip
    with pytest.raises(RunError, match="diverged"):
        train(diverging, workspace=ws, name="diverging-sgd")
    overfit = make_config(str(data), preset="overfit", steps=40, target_loss=0.0,
                          overfit_examples=8, batch_size=8, **TINY)  # fmt: skip
    result = train(overfit, workspace=ws, name=TRICKY_NAME)
    failed = next(p for p in (ws / "runs").iterdir() if p != result.run_dir)
    return {"data": data, "ws": ws, "overfit": result.run_dir, "failed": failed}


@pytest.fixture
def app(recorded: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("RECIPE_WORKSPACE", str(recorded["ws"]))
    monkeypatch.setenv("RECIPE_DATASET", str(recorded["data"]))
    return AppTest.from_file(MAIN, default_timeout=90).run()


def traces(at: AppTest, chart: int | None = None) -> list[dict[str, Any]]:
    """The plotly traces on the page (or of its `chart`-th chart), as sent to the browser."""
    charts = at.get("plotly_chart")
    chosen = charts if chart is None else [charts[chart]]
    return [decode(t) for c in chosen for t in json.loads(c.proto.spec)["data"]]


def decode(trace: dict[str, Any]) -> dict[str, Any]:
    """Plotly ships numpy arrays as base64 typed arrays ({"dtype", "bdata"}): make them lists."""
    out = {}
    for key, value in trace.items():
        if isinstance(value, dict) and "bdata" in value:
            flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
            shape = [int(n) for n in str(value.get("shape", len(flat))).split(",")]
            value = flat.reshape(shape).tolist()
        out[key] = value
    return out


def markdown_texts(at: AppTest) -> list[str]:
    kinds = ("markdown", "caption", "error", "warning", "info", "success", "toast")
    return [str(e.value) for kind in kinds for e in at.get(kind)]


def test_runs_page_lists_runs_with_live_curves_from_the_metrics_file(
    app: AppTest, recorded: dict[str, Path]
) -> None:
    at = open_page(app, "runs")
    table = at.dataframe[0].value
    assert table["run"].tolist() == [TRICKY_NAME, "diverging-sgd"]  # newest first, literal
    assert table["state"].tolist() == ["✅ succeeded", "🚫 failed"]
    # the newest run is selected; its curves hold exactly the rows of metrics.jsonl
    metrics = RunReader(recorded["overfit"]).metrics()
    train_rows, val_rows = (metrics[metrics["split"] == s] for s in ("train", "val"))
    loss = {t["name"]: t for t in traces(at, 0)}
    accuracy = {t["name"]: t for t in traces(at, 1)}
    assert loss["train"]["x"] == train_rows["step"].tolist() == list(range(40))
    assert np.allclose(loss["train"]["y"], train_rows["loss"])
    assert loss["val"]["x"] == val_rows["step"].tolist() == [10, 20, 30, 40]
    assert np.allclose(accuracy["val"]["y"], val_rows["accuracy"])
    assert any(c.startswith("step 40 of 40 · 40 training steps logged") for c in
               [c.value for c in at.caption])  # fmt: skip
    assert not any("<b>" in text for text in markdown_texts(at)), "a run name became markup"


def test_failed_run_shows_its_reason_and_its_metrics_so_far(
    app: AppTest, recorded: dict[str, Path]
) -> None:
    at = open_page(app, "runs")
    at.selectbox(key="runs_pick").set_value(recorded["failed"].name).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "failed" in errors[0] and "diverged" in errors[0]
    assert "lower the learning rate" in errors[0]
    rows = RunReader(recorded["failed"]).metrics()
    assert len(rows) == 5 and np.isnan(rows["loss"].iloc[-1])  # NaN at step 2 ended the window
    train_curve = next(t for t in traces(at) if t["name"] == "train")
    assert train_curve["x"] == [0, 1, 2, 3, 4]


def test_compare_overlays_curves_and_diffs_configs_against_the_parent(app: AppTest) -> None:
    at = open_page(app, "runs")
    assert len(at.multiselect(key="compare_runs").value) == 2
    overlay = json.loads(at.get("plotly_chart")[-1].proto.spec)["data"]
    assert len(overlay) == 2 and overlay[0]["name"].startswith("&lt;b&gt;bold")  # escaped
    diff = at.dataframe[1].value
    assert {"preset", "lr", "optimizer", "steps"} <= set(diff["field"])
    assert "dataset" not in set(diff["field"])  # same dataset: not a change
    warnings = [w.value for w in at.warning]
    assert any("Complexify one thing at a time" in w for w in warnings)


def test_config_changes_lists_changed_added_and_removed_fields_in_order() -> None:
    parent = {"model": "mlp", "lr": 0.001, "seed": 0, "steps": 10}
    child = {"model": "mlp", "lr": 0.003, "seed": 0, "augment": True}
    assert config_changes(parent, child) == ["lr", "steps", "augment"]
    assert config_changes(parent, dict(parent)) == []


def test_slider_moves_every_prediction_view_together(
    app: AppTest, recorded: dict[str, Path]
) -> None:
    at = open_page(app, "dynamics")
    dyn = read_dynamics(RunReader(recorded["overfit"]))
    assert dyn.steps.tolist() == [0, 5, 10, 15, 20, 25, 30, 35, 40]
    slider = at.select_slider(key=f"dyn_step_{recorded['overfit'].name}")
    assert slider.value == 40  # starts at the newest snapshot
    late = prediction_captions(at)
    assert len(late) == 8 and all(" ✓ " in c for c in late)  # overfit: every label learned
    right = {m.label: m.value for m in at.metric}["Right at this step"]
    assert right == "8 / 8"
    slider.set_value(0).run()
    early = prediction_captions(at)
    predicted_at_0 = dyn.predictions()[0]
    assert all(c.endswith(dyn.classes[p]) for c, p in zip(early, predicted_at_0, strict=True))
    assert early != late
    correct_0 = int((predicted_at_0 == dyn.labels).sum())
    assert {m.label: m.value for m in at.metric}["Right at this step"] == f"{correct_0} / 8"
    heat = next(t for t in traces(at) if t["type"] == "heatmap")
    assert len(heat["x"]) == 9 and len(heat["y"]) == 8
    import plotly.colors

    # colour-blind safe: the sequential Cividis scale, not red/green (RdYlGn) as before
    expected = plotly.colors.make_colorscale(plotly.colors.sequential.Cividis)
    assert [c for _, c in heat["colorscale"]] == [c for _, c in expected]


def test_play_advances_the_slider_one_snapshot_per_tick_and_loops(
    app: AppTest, recorded: dict[str, Path]
) -> None:
    at = open_page(app, "dynamics")
    key = f"dyn_step_{recorded['overfit'].name}"
    at.select_slider(key=key).set_value(30).run()
    at.toggle(key="dyn_play").set_value(True).run()  # each rerun is one tick of the timer
    assert at.select_slider(key=key).value == 35
    at.run()
    assert at.select_slider(key=key).value == 40
    at.run()
    assert at.select_slider(key=key).value == 0  # loops back to the start
    at.toggle(key="dyn_play").set_value(False).run()
    assert at.select_slider(key=key).value == 0  # stopping keeps the step


def plain(markdown: str) -> str:
    """What the user reads: the Markdown escapes `widgets.md` adds, removed."""
    return re.sub(r"\\(.)", r"\1", markdown)


def prediction_captions(at: AppTest) -> list[str]:
    return [plain(c.value) for c in at.caption if c.value.startswith("#")]


def test_overfit_run_plots_labels_and_predictions_together(app: AppTest) -> None:
    at = open_page(app, "dynamics")
    converging = [t for t in traces(at) if t.get("name") in ("label", "prediction")]
    assert [t["name"] for t in converging] == ["label", "prediction"]
    assert converging[0]["y"] == converging[1]["y"]  # at the last step they coincide


def test_start_form_refuses_cuda_without_a_gpu_and_bad_paths(app: AppTest) -> None:
    at = open_page(app, "runs")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    device = at.radio(key="run_device")
    assert device.options == ["auto", "cpu", "cuda (no GPU here)"]
    device.set_value("cuda").run()
    start = next(b for b in at.button if b.label == "Start run")
    assert start.disabled and "no CUDA GPU" in at.warning[0].value
    device.set_value("cpu").run()
    at.text_input(key="run_dataset").set_value("/no/such/folder").run()
    before = len(at.dataframe[0].value)
    next(b for b in at.button if b.label == "Start run").click().run()
    assert "outside the folders" in at.error[0].value
    assert len(at.dataframe[0].value) == before  # no run was created


@pytest.fixture
def live_jobs(recorded: dict[str, Path]) -> Iterator[tuple[LocalExecutor, list[Path]]]:
    """Two real background jobs that would run for minutes, each past its first metrics."""
    executor = LocalExecutor(env={"OMP_NUM_THREADS": "1"})
    config = make_config(str(recorded["data"]), preset="baseline", steps=10**6, batch_size=8,
                         **TINY)  # fmt: skip
    handles = [submit_run(config, workspace=recorded["ws"], name=f"long-{i}", executor=executor)
               for i in range(2)]  # fmt: skip
    readers = [RunReader(h.run_dir) for h in handles]
    deadline = time.monotonic() + 90
    while not all(len(r.metrics()) >= 5 for r in readers):
        assert time.monotonic() < deadline, [r.log_tail() for r in readers]
        time.sleep(0.2)
    yield executor, [h.run_dir for h in handles]
    for handle in handles:
        executor.cancel(handle.run_dir, grace_s=2)


def test_running_jobs_can_be_cancelled_and_killed_ones_show_failed(
    app: AppTest, live_jobs: tuple[LocalExecutor, list[Path]]
) -> None:
    _, (killed, cancelled) = live_jobs
    at = open_page(app, "runs")
    table = at.dataframe[0].value
    assert table["state"].tolist()[:2] == ["🏃 running", "🏃 running"]
    buttons = {b.key for b in at.button}
    assert {f"cancel_{killed.name}", f"cancel_{cancelled.name}"} <= buttons
    assert f"cancel_{recorded_name(at)}" not in buttons  # finished runs have no cancel
    status = json.loads((killed / "status.json").read_text())
    os.killpg(status["pid"], signal.SIGKILL)  # a crash the job cannot record; the app must see it
    at.button(key=f"cancel_{cancelled.name}").click().run()
    assert not at.exception
    states = dict(zip(at.dataframe[0].value["run id"], at.dataframe[0].value["state"],
                      strict=True))  # fmt: skip
    assert states[cancelled.name] == "⏹️ cancelled"
    assert states[killed.name] == "🚫 failed"
    at.selectbox(key="runs_pick").set_value(killed.name).run()
    reason = plain(at.error[0].value)
    assert "failed" in reason and "Process died" in reason and "See log.txt" in reason
    assert traces(at)[0]["x"][:5] == [0, 1, 2, 3, 4]  # its metrics so far are still drawn


def recorded_name(at: AppTest) -> str:
    table = at.dataframe[0].value
    return str(table.loc[table["state"] == "✅ succeeded", "run id"].iloc[0])
