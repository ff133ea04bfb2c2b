"""AppTest: What the net sees marks, on the user's *own* pipeline's batches, the samples a scan
flagged. The pipeline (an ImageFolder with a DataLoader, in a file of the user's) is captured
by a real see job; the page traces each batch to its files and reads the scan of their folder.

Trusted answer: the scan's own issue table, read back with the engine, for the files the job
recorded, and each recorded file's class folder equal to the label the loader gave it."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from recipe_core.jobs.scan_job import RESULT_DIR, job_dir
from recipe_core.jobs.see_job import load_seen, read_see_state, seen_root
from recipe_core.scan import load_scan, scan, write_result
from recipe_core.scan.issues import CLASS_ISSUES
from recipe_core.workspace import open_workspace
from tests.app.helpers import MAIN, open_page

PIPELINE = """
import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision.transforms import v2

def pipeline():
    from recipe_core import Pipeline
    steps = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
    folder = datasets.ImageFolder({root!r}, transform=steps)
    loader = DataLoader(folder, batch_size=8, shuffle=False)
    model = lambda: nn.Sequential(nn.Flatten(), nn.Linear(3 * 12 * 12, 2))
    return Pipeline(model, loader, nn.CrossEntropyLoss(), num_classes=2)
"""


def make_folder(root: Path, *, copies: bool) -> None:
    """2 classes x 10 distinct 12x12 RGB images; with `copies`, c1 also holds byte copies of
    c0/00.png and c0/01.png (exact duplicates across classes: the first batch's tiles 0, 1)."""
    rng = np.random.default_rng(1)
    for c in ("c0", "c1"):
        (root / c).mkdir(parents=True)
        for i in range(10):
            pixels = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / c / f"{i:02d}.png")
    if copies:
        for i in range(2):
            shutil.copyfile(root / "c0" / f"{i:02d}.png", root / "c1" / f"z{i}.png")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scanned/ (with planted duplicates, scanned) and unscanned/, each with a pipeline."""
    base = tmp_path_factory.mktemp("flags_app")
    ws = open_workspace(base / "ws")
    for name in ("scanned", "unscanned"):
        make_folder(base / name, copies=name == "scanned")
        (base / f"{name}.py").write_text(PIPELINE.format(root=str(base / name)))
    root = (base / "scanned").resolve()
    write_result(scan(root, workspace=ws, workers=0), job_dir(ws, root) / RESULT_DIR)
    return base


@pytest.fixture
def app(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    offered = {n: f"{project / n}.py:pipeline" for n in ("scanned", "unscanned")}
    monkeypatch.setenv("RECIPE_WORKSPACE", str(project / "ws"))
    monkeypatch.setenv("RECIPE_PIPELINES", json.dumps(offered))
    monkeypatch.setenv("RECIPE_DATA_ROOTS", str(project))
    yield AppTest.from_file(MAIN, default_timeout=90).run()


def capture(app: AppTest, project: Path, name: str) -> tuple[AppTest, dict]:  # type: ignore[type-arg]
    before = set(seen_root(open_workspace(project / "ws")).iterdir())
    at = open_page(app, "net_sees")
    at.selectbox(key="ns_pipeline").set_value(name).run()
    at.number_input(key="ns_batches").set_value(1)
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    (folder,) = set(seen_root(open_workspace(project / "ws")).iterdir()) - before
    deadline = time.monotonic() + 120
    while read_see_state(folder).state == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert read_see_state(folder).state == "succeeded", read_see_state(folder).message
    return open_page(app, "net_sees"), load_seen(folder)


def texts(at: AppTest) -> list[str]:
    kinds = ("caption", "warning", "info", "success")
    return [str(e.value) for kind in kinds for e in at.get(kind)]


def test_the_users_pipeline_batch_shows_what_the_scan_flagged_on_its_files(
    app: AppTest, project: Path
) -> None:
    at, seen = capture(app, project, "scanned")
    (batch,) = seen["batches"]
    files = batch["files"]
    assert [Path(f).parent.name for f in files] == [f"c{y}" for y in batch["labels"]]
    root = (project / "scanned").resolve()
    issues = load_scan(job_dir(open_workspace(project / "ws"), root) / RESULT_DIR).issues
    flagged = set(issues.loc[~issues["issue"].isin(CLASS_ISSUES), "path"])  # of the files
    expected = [i for i, f in enumerate(files) if Path(f).relative_to(root).as_posix() in flagged]
    assert expected[:2] == [0, 1], expected  # the planted copies at least
    shown = texts(at)
    assert f"The scan flagged {len(expected)} of these 8 samples" in " ".join(shown), shown
    assert any("8 of these 8 samples are in it" in t for t in shown), shown
    table = next(d.value for d in at.dataframe if "position" in d.value.columns)
    assert table["position"].tolist() == expected
    assert "exact_duplicate" in table["issues"].iloc[0]


def test_a_pipeline_on_an_unscanned_folder_says_to_scan_it(app: AppTest, project: Path) -> None:
    at, seen = capture(app, project, "unscanned")
    assert seen["batches"][0]["files"], "the files were traced even with no scan"
    shown = " ".join(texts(at))
    assert "has no scan yet" in shown, shown
    assert not any("position" in d.value.columns for d in at.dataframe)
