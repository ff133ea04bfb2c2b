"""AppTest of the Runs page's Insides section over a real small_cnn run: the step slider
changes the first-layer grid, and every per-layer line holds exactly the reader's numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from recipe_core.runs import RunReader
from recipe_core.train import make_config, train
from tests.app.helpers import MAIN, elements, open_page
from tests.app.test_runs_app import decode
from tests.conftest import write_image_folder


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("insides_app")
    data = write_image_folder(root / "ds", classes=3, per_class=8, size=8)
    torch.set_num_threads(1)
    config = make_config(str(data), model="small_cnn", steps=20, batch_size=8, device="cpu",
                         image_size=8, eval_every=0, log_every=5, insides_every=5,
                         lr=1e-2, probe_size=4)  # fmt: skip
    return train(config, workspace=root / "ws").run_dir


@pytest.fixture
def at(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("RECIPE_WORKSPACE", str(run_dir.parent.parent))
    at = open_page(AppTest.from_file(MAIN, default_timeout=90).run(), "runs")
    at.session_state[f"insides_open_{run_dir.name}"] = True  # the reader opens the section
    return at.run()


def test_a_closed_insides_section_draws_nothing(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closed (no warnings), the section is only its title: the live Runs page redraws every
    second, and the per-layer charts and filter grid would be sent to every browser each time."""
    monkeypatch.setenv("RECIPE_WORKSPACE", str(run_dir.parent.parent))
    at = open_page(AppTest.from_file(MAIN, default_timeout=90).run(), "runs")
    (section,) = [e for e in at.expander if e.label.startswith("Insides")]
    assert not list(section.children.values())
    assert not [i for i in at.get("imgs") if "first layer" in str(i.proto)]


def first_layer_image(at: AppTest) -> tuple[str, str]:
    """(caption, url) of the first-layer grid."""
    found = [(img.caption, img.url) for node in elements(at)
             if getattr(node, "type", "") == "image"
             for img in node.proto.imgs  # type: ignore[attr-defined]
             if img.caption.startswith("first layer")]  # fmt: skip
    assert len(found) == 1, found
    return found[0]


def charts(at: AppTest) -> dict[str, list[dict[str, Any]]]:
    """Plotly figures by title, their traces decoded."""
    out = {}
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        title = spec["layout"].get("title", {}).get("text", "")
        out[title] = [decode(t) for t in spec["data"]]
    return out


def test_slider_changes_the_first_layer_grid(at: AppTest, run_dir: Path) -> None:
    key = f"insides_step_{run_dir.name}"
    slider = at.select_slider(key=key)
    assert list(slider.options) == ["0", "5", "10", "15", "20"] and slider.value == 20
    caption, late = first_layer_image(at)
    assert caption == "first layer, step 20"
    slider.set_value(0).run()
    caption, early = first_layer_image(at)
    assert caption == "first layer, step 0" and early != late  # another picture, not a caption
    reader = RunReader(run_dir)
    assert not np.array_equal(reader.first_layer(0), reader.first_layer(20))


def test_layer_lines_hold_the_readers_numbers(at: AppTest, run_dir: Path) -> None:
    frame = RunReader(run_dir).insides()
    figures = charts(at)
    for column, title in (("act_std", "activation std"), ("dead", "dead units (share, ReLU)"),
                          ("grad_norm", "gradient norm (weights)"),
                          ("update_ratio", "update / weight ratio per step")):  # fmt: skip
        rows = frame.dropna(subset=[column])
        layers = list(dict.fromkeys(rows["layer"]))
        (figure,) = [traces for name, traces in figures.items() if name.startswith(title)]
        traces = {t["name"].split(" ")[0]: t for t in figure}
        assert set(traces) == set(layers), column
        for layer in layers:
            part = rows[rows["layer"] == layer]
            if column != "dead":
                part = part[part[column] > 0]
            assert traces[layer]["x"] == part["step"].tolist()
            assert np.allclose(traces[layer]["y"], part[column]), (column, layer)
    colours = {t["line"]["color"] for t in figures["activation std"]}
    assert colours <= {"#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9",
                       "#F0E442"}  # fmt: skip
