"""Looking at the net in a real browser (issue 18): over a workspace holding the scan of the
sample digits and three finished baseline runs, the Runs page opens a run's insides and leaves it
training (the same run, its steps going on), Browse joins a run's predictions and filters the grid
to one confusion-matrix cell, and the Ensembles page evaluates the three runs together."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from recipe_core.data import open_dataset
from recipe_core.jobs.scan_job import RESULT_DIR, job_dir
from recipe_core.scan import scan, write_result
from recipe_core.workspace import open_workspace
from tests.conftest import SAMPLE_DIGITS
from tests.e2e.conftest import screenshot, serve_app
from tests.e2e.test_runs_e2e import choose, set_number, wait_idle

T = 30_000  # ms for a page to update on 2 busy cores
JOB = 180_000  # ms: a resumed run is a fresh process (torch import, 1.8k images decoded)
MAIN = '[data-testid="stMain"]'
STEPS = 150


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The scan and three seeded baseline runs (with insides and per-sample predictions),
    recorded by the engine before the dashboard starts on their workspace."""
    import torch

    from recipe_core.train import make_config, train

    tmp = tmp_path_factory.mktemp("look_at_the_net")
    ws = open_workspace(tmp / "workspace")
    root = open_dataset(SAMPLE_DIGITS).root
    write_result(scan(root, workspace=ws, workers=0), job_dir(ws, root) / RESULT_DIR)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for seed in range(3):
            config = make_config(str(SAMPLE_DIGITS), model="small_cnn", steps=STEPS, seed=seed,
                                 image_size=16, lr=3e-3, eval_every=50, log_every=25,
                                 insides_every=25, device="cpu")  # fmt: skip
            train(config, workspace=ws.root, name=f"seed-{seed}")
    finally:
        torch.set_num_threads(threads)
    with serve_app(tmp, ws.root) as (url, _):
        yield url, ws.root


def test_runs_page_shows_the_insides_and_leaves_a_run_training(
    server: tuple[str, Path], page: Page
) -> None:
    url, ws = server
    page.goto(f"{url}/runs")
    expect(page.get_by_role("heading", name="Compare runs")).to_be_visible(timeout=T)
    page.get_by_text("Insides: first-layer weights").click()
    grid = page.locator(f'{MAIN} [data-testid="stImage"]').filter(has_text="first layer, step")
    expect(grid).to_be_visible(timeout=T)
    expect(page.locator(f"{MAIN} .js-plotly-plot").filter(has_text="update")).not_to_have_count(
        0, timeout=T
    )
    screenshot(page, "runs_insides")
    picker = page.get_by_role("combobox", name="Run", exact=True)
    run_id = next(p.name for p in (ws / "runs").iterdir() if p.name in picker.input_value())
    set_number(page, "Leave it training: more steps", "50")
    page.get_by_role("button", name="Leave it training", exact=True).click()
    done = page.get_by_text(f"Left training from step {STEPS} for 50 more")
    expect(done).to_be_visible(timeout=JOB)
    # the finished caption ("Live: ..." while it runs; the status banner says "running: step N")
    finished = re.compile(f"^step {STEPS + 50} of {STEPS + 50} · ")
    expect(page.get_by_text(finished)).to_be_visible(timeout=JOB)
    status = json.loads((ws / "runs" / run_id / "status.json").read_text())
    assert (status["state"], status["step"]) == ("succeeded", STEPS + 50)
    screenshot(page, "runs_left_training")


def test_browse_joins_a_runs_mistakes_and_a_confusion_cell_filters_the_grid(
    server: tuple[str, Path], page: Page
) -> None:
    url, _ = server
    page.goto(f"{url}/browse")
    expect(page.get_by_role("combobox", name="Join a run's predictions")).to_be_visible(timeout=T)
    choose(page, "Join a run's predictions", "seed-0")
    expect(page.get_by_role("heading", name=re.compile("^Mistakes of run seed-0"))).to_be_visible(
        timeout=T
    )
    matches = page.get_by_text(re.compile(r"of 1,709 samples match"))
    expect(matches).to_contain_text("1,709 of 1,709", timeout=T)
    box = page.get_by_role("combobox", name="Confusion cell")
    box.click()
    cell = page.get_by_role("option", name=re.compile(r"^true \S+ → predicted \S+ \(\d+\)")).first
    label = cell.inner_text()
    cell.click()
    wait_idle(page)
    count = re.search(r"\((\d+)\)$", label.strip())
    assert count is not None, label
    expect(matches).to_contain_text(f"{int(count.group(1)):,} of 1,709", timeout=T)
    screenshot(page, "browse_confusion_cell")


def test_ensembles_page_evaluates_three_runs_against_the_best(
    server: tuple[str, Path], page: Page
) -> None:
    url, _ = server
    page.goto(f"{url}/ensembles")
    box = page.get_by_role("combobox", name=re.compile("^Runs to ensemble"))
    expect(box).to_be_visible(timeout=T)
    for seed in range(3):
        box.click()
        page.get_by_role("option", name=re.compile(f"seed-{seed}")).first.click()
        wait_idle(page)
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Evaluate the ensemble").click()
    expect(page.get_by_role("heading", name="Ensemble vs best single run")).to_be_visible(
        timeout=JOB
    )
    expect(page.get_by_test_id("stMetric").filter(has_text="Ensemble val loss")).to_be_visible()
    screenshot(page, "ensembles")
