"""AppTest of the run charts' controls (issue 17) over real script runs: a long run that logs
loss, accuracy and a custom metric, and a short one. Trusted answers are metrics.jsonl's own
rows (RunReader) and TensorBoard's debiased EMA written out as a loop."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from recipe_core.runs import RunReader
from recipe_core.train.script import start_run
from tests.app.helpers import MAIN, open_page


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    ws = tmp_path_factory.mktemp("charts") / "ws"
    rng = np.random.default_rng(0)
    with start_run("long", config={"lr": 0.1}, workspace=ws) as long_run:
        for step in range(120):
            loss = float(2.0 * math.exp(-step / 40) + 0.1 * rng.random())
            long_run.log(step, loss=loss, accuracy=min(1.0, step / 100), grad_norm=1.0 + step)
            if step % 40 == 39:
                long_run.log(step, split="val", loss=loss + 0.1, accuracy=step / 120)
    with start_run("short", config={"lr": 0.3}, workspace=ws) as short_run:
        short_run.log(0, loss=2.0, accuracy=0.1)
        short_run.log(1, loss=1.5, accuracy=0.2)
    return {"ws": ws, "long": Path(long_run.run_dir), "short": Path(short_run.run_dir)}


@pytest.fixture
def runs_page(recorded: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("RECIPE_WORKSPACE", str(recorded["ws"]))
    at = open_page(AppTest.from_file(MAIN, default_timeout=90).run(), "runs")
    at.selectbox(key="runs_pick").set_value(recorded["long"].name).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def charts(at: AppTest) -> dict[str, dict[str, Any]]:
    """Every plotly chart on the page by the first word of its title, as sent to the browser."""
    found = {}
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        spec["data"] = [_decode(t) for t in spec["data"]]
        found[spec["layout"]["title"]["text"].split(" (")[0]] = spec
    return found


def _decode(trace: dict[str, Any]) -> dict[str, Any]:
    """Plotly ships numpy arrays as base64 typed arrays: make them lists."""
    out = {}
    for key, value in trace.items():
        if isinstance(value, dict) and "bdata" in value:
            value = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).tolist()
        out[key] = value
    return out


def reference_ema(values: list[float], weight: float) -> list[float]:
    out, last = [], 0.0
    for i, v in enumerate(values, start=1):
        last = last * weight + (1 - weight) * v
        out.append(last / (1 - weight**i))
    return out


def test_runs_page_offers_every_logged_metric_and_the_chart_controls(
    runs_page: AppTest, recorded: dict[str, Path]
) -> None:
    picker = runs_page.multiselect(key="runs_chart_metrics")
    assert picker.options == ["loss", "accuracy", "grad_norm"]  # the custom metric too
    assert picker.value == ["loss", "accuracy"]
    assert runs_page.slider(key="runs_chart_smoothing").value == pytest.approx(0.6)
    assert runs_page.radio(key="runs_chart_x").options == ["step", "wall time"]
    picker.set_value(["loss", "grad_norm"]).run()
    shown = charts(runs_page)
    assert {"loss", "grad_norm"} <= set(shown) and "accuracy" not in shown
    rows = RunReader(recorded["long"]).metrics().query("split == 'train'")
    grad = next(t for t in shown["grad_norm"]["data"] if t["name"] == "train")
    assert grad["y"] == rows["grad_norm"].tolist()


def test_smoothing_draws_the_debiased_ema_over_the_faint_raw_line(
    runs_page: AppTest, recorded: dict[str, Path]
) -> None:
    train = RunReader(recorded["long"]).metrics().query("split == 'train'")
    loss = {t["name"]: t for t in charts(runs_page)["loss"]["data"]}
    assert loss["train"]["y"] == train["loss"].tolist() and loss["train"]["opacity"] < 0.5
    smoothed = loss["train, smoothed 0.6"]
    assert np.allclose(smoothed["y"], reference_ema(train["loss"].tolist(), 0.6))
    runs_page.slider(key="runs_chart_smoothing").set_value(0.0).run()
    names = [t["name"] for t in charts(runs_page)["loss"]["data"]]
    assert names == ["train", "val"]  # raw values only


def test_log_y_and_wall_time_axis(runs_page: AppTest, recorded: dict[str, Path]) -> None:
    assert charts(runs_page)["loss"]["layout"].get("yaxis", {}).get("type") != "log"
    runs_page.toggle(key="runs_chart_log").set_value(True).run()
    assert charts(runs_page)["loss"]["layout"]["yaxis"]["type"] == "log"
    runs_page.radio(key="runs_chart_x").set_value("wall time").run()
    loss = charts(runs_page)["loss"]
    rows = RunReader(recorded["long"]).metrics()
    elapsed = rows["wall_time"] - rows["wall_time"].min()
    train = next(t for t in loss["data"] if t["name"] == "train")
    assert np.allclose(train["x"], elapsed[rows["split"] == "train"])
    assert loss["layout"]["xaxis"]["title"]["text"].startswith("wall time")


def test_compare_draws_a_long_and_a_short_run_with_a_legend(runs_page: AppTest) -> None:
    assert len(runs_page.multiselect(key="compare_runs").value) == 2
    assert "grad_norm" in runs_page.selectbox(key="compare_metric").options
    overlay = charts(runs_page)["train loss"]
    legend = {t["name"]: t for t in overlay["data"] if t.get("showlegend") is not False}
    assert len(legend) == 2 and overlay["layout"]["showlegend"] is True
    short = next(t for name, t in legend.items() if name.startswith("short"))
    assert short["mode"] == "lines+markers" and short["x"] == [0, 1]
    colours = {t["line"]["color"] for t in legend.values()}
    assert len(colours) == 2
