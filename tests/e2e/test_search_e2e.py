"""A finished random search on the Runs page, in Chromium: its trials table with the best
starred, the value-against-metric chart, and "Compare these trials" filling Compare."""

from __future__ import annotations

import time
from pathlib import Path

from playwright.sync_api import Page, expect

from recipe_core.train import make_config
from recipe_core.tune import parse_space
from recipe_core.tune.job import searches, start_search
from recipe_core.workspace import open_workspace
from tests.conftest import write_image_folder
from tests.e2e.conftest import screenshot, serve_app

T = 30_000  # ms for a page to update: Chromium and the server share 2 busy cores
SPACE = ("lr=loguniform:1e-4:1e-2", "dropout=uniform:0:0.5")


def test_a_search_shows_its_trials_best_and_chart_and_compares_them(
    tmp_path: Path, page: Page
) -> None:
    data = write_image_folder(tmp_path / "ds", classes=3, per_class=8, size=8)
    ws = open_workspace(tmp_path / "ws")
    base = make_config(str(data), model="mlp", device="cpu", steps=10, eval_every=5,
                       log_every=5, image_size=8)  # fmt: skip
    job = start_search(base, parse_space(list(SPACE)), space_text=SPACE, trials=4, parallel=2,
                       workspace=ws)  # fmt: skip
    deadline = time.monotonic() + 240
    while not (summary := searches(ws)[0]).finished or summary.driver_alive:
        assert time.monotonic() < deadline, summary
        time.sleep(0.5)
    best = summary.result.best
    assert best is not None
    with serve_app(tmp_path, Path(ws.root)) as (url, _):
        page.goto(f"{url}/runs")
        # the search's bordered container: the innermost block holding its heading and chart
        box = (
            page.get_by_test_id("stVerticalBlock")
            .filter(has_text=f"Search {job.search_id}")
            .filter(has=page.locator(".js-plotly-plot"))
            .last
        )
        expect(box.get_by_text(f"(trial {best.trial})").first).to_be_visible(timeout=T)
        expect(box.locator(".js-plotly-plot .point")).to_have_count(8, timeout=T)  # 4 x 2 panels
        screenshot(page, "runs_search")
        box.get_by_role("button", name="Compare these trials").click()
        chips = page.get_by_test_id("stMultiSelect").filter(has_text="Runs to compare")
        expect(chips.get_by_text("tune-")).to_have_count(4, timeout=T)
        page.get_by_role("heading", name="Compare runs").scroll_into_view_if_needed()
        screenshot(page, "runs_search_compare")
