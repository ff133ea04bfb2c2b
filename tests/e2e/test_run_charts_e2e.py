"""The Runs page's chart controls in a real browser (issue 17): over a recorded script run that
logs a custom metric, turn on log y and pick the custom metric; plotly must draw a log axis
and the new chart. Saves tests/e2e/artifacts/run_charts.png for a human to look at."""

from __future__ import annotations

import math
from pathlib import Path

from playwright.sync_api import Page, expect

from recipe_core.train.script import start_run
from tests.e2e.conftest import screenshot, serve_app

T = 60_000  # ms: Chromium and the server share 2 busy cores
# JS: the title and y axis type of each drawn plotly chart, in page order
AXES = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(p =>
    [p.layout && p.layout.title ? String(p.layout.title.text) : '',
     p._fullLayout ? p._fullLayout.yaxis.type : ''])"""


def record(workspace: Path) -> None:
    with start_run("charts", config={"lr": 0.1}, workspace=workspace) as run:
        for step in range(300):
            loss = 2.0 * math.exp(-step / 60) + 0.05 * (1 + math.sin(step))
            run.log(step, loss=loss, accuracy=min(1.0, step / 250), grad_norm=0.5 + step / 30)
            if step % 50 == 49:
                run.log(step, split="val", loss=loss + 0.1, accuracy=step / 320)


def test_log_y_and_a_custom_metric_are_drawn(page: Page, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    record(workspace)
    with serve_app(tmp_path, workspace) as (url, _):
        page.goto(f"{url}/runs")
        expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=T)
        page.wait_for_timeout(1000)  # the first run's widgets are wired up
        page.locator("label").filter(has_text="Log y").first.click()
        page.wait_for_function(
            "() => Array.from(document.querySelectorAll('.js-plotly-plot'))"
            ".some(p => p._fullLayout && p._fullLayout.yaxis.type === 'log')",
            timeout=T,
        )
        picker = page.get_by_test_id("stMultiSelect").filter(has_text="Metrics").locator("input")
        picker.click()
        page.get_by_role("option", name="grad_norm").click()
        page.keyboard.press("Escape")
        expect(page.locator(".js-plotly-plot")).to_have_count(3, timeout=T)
        page.locator(".js-plotly-plot").last.scroll_into_view_if_needed()
        page.wait_for_timeout(1000)
        drawn = page.evaluate(AXES)
        assert [kind for _, kind in drawn] == ["log", "log", "log"], drawn  # loss, accuracy, custom
        expect(page.get_by_role("heading", name="Compare runs")).to_be_visible()
        page.get_by_role("heading", name="Runs", exact=True).scroll_into_view_if_needed()
        screenshot(page, "run_charts")
