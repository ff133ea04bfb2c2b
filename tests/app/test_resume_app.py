"""AppTest of "leave it training" and early stopping on the Runs page, over a real run: the page
says when and why the run stopped (stop.json), and its button continues the same run from its
checkpoint as a background job, whose steps go on where they ended."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from recipe_core.runs import RunReader, RunWriter
from recipe_core.train import make_config, train
from tests.app.helpers import MAIN, open_page
from tests.conftest import write_image_folder

STALLED = {"model": "mlp", "image_size": 8, "device": "cpu", "log_every": 5, "eval_every": 5,
           "probe_size": 4, "batch_size": 8, "steps": 200, "early_stopping": 2,
           "lr": 1e-9}  # fmt: skip  # the val loss cannot improve by 1e-4: early stopping fires


@pytest.fixture(scope="module")
def stalled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("resume_app")
    data = write_image_folder(root / "ds", classes=3, per_class=8, size=8)
    torch.set_num_threads(1)
    return train(make_config(str(data), **STALLED), workspace=root / "ws").run_dir


def texts(at: AppTest, kind: str) -> list[str]:
    return [str(e.value) for e in at.get(kind)]


def test_the_page_says_why_the_run_stopped_and_leaves_it_training(
    stalled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECIPE_WORKSPACE", str(stalled.parent.parent))
    at = open_page(AppTest.from_file(MAIN, default_timeout=90).run(), "runs")
    stopped = RunWriter(stalled).status().step
    assert stopped < STALLED["steps"]
    (info,) = [t for t in texts(at, "success") if t.startswith("Stopped early")]
    assert info.startswith(f"Stopped early at step {stopped} of 200: the validation loss did "
                           "not improve for 2 evaluations in a row")  # fmt: skip
    assert "(best val loss" in info and "checkpoints/best.pt" in info
    assert [e.icon for e in at.get("success") if str(e.value) == info] == ["⏸️"]  # asked for

    at.number_input(key=f"resume_steps_{stalled.name}").set_value(10)
    at.button(key=f"resume_{stalled.name}").click().run()
    assert not at.exception and not at.error, texts(at, "error")
    deadline = time.monotonic() + 120
    while not (status := RunWriter(stalled).status()).finished or status.step < stopped + 10:
        assert time.monotonic() < deadline, RunReader(stalled).log_tail()
        time.sleep(0.5)
    assert status.state == "succeeded" and status.step == stopped + 10, status.error
    steps = RunReader(stalled).metrics().query("split == 'train'")["step"].tolist()
    assert steps == list(range(stopped + 10))  # one run, its curve continued
    at.run()
    assert f"Left training from step {stopped} for 10 more (restored optimizer state)." in (
        texts(at, "caption")
    )
