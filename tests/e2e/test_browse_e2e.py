"""Reading a scanned dataset in a real browser (issue 17): the → key steps Browse's sample
detail to the next sample, a neighbour's Open button shows it, clicking a point of the
Distributions embedding map opens that sample, and What the net sees frames the samples the
scan flagged in the user's own pipeline's batch. Screenshots go to tests/e2e/artifacts/."""

from __future__ import annotations

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

T = 30_000  # ms for a page to update on a busy 2-core box
# JS: the page pixel (relative to the plot div) of the first point of the map's first trace,
# with its hover text (the sample's path)
FIRST_POINT = """(div) => { const d = div._fullData[0], L = div._fullLayout;
    const x = L.xaxis._offset + L.xaxis.l2p(d.x[0]), y = L.yaxis._offset + L.yaxis.l2p(d.y[0]);
    return [x, y, d.text[0]]; }"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app over a workspace holding the engine's scan of sample_data/digits."""
    tmp = tmp_path_factory.mktemp("browse_e2e")
    ws = open_workspace(tmp / "ws")
    root = open_dataset(SAMPLE_DIGITS).root
    write_result(scan(root, workspace=ws, workers=0), job_dir(ws, root) / RESULT_DIR)
    with serve_app(tmp, Path(ws.root)) as (url, _):
        yield url


def wait_idle(page: Page) -> None:
    """Until the rerun is over: a click on a widget of a half-redrawn page can be dropped."""
    page.wait_for_timeout(300)
    expect(page.get_by_test_id("stStatusWidget")).to_be_hidden(timeout=T)


def drawer_path(page: Page) -> str:
    drawer = page.get_by_role("dialog")
    return drawer.get_by_test_id("stText").first.inner_text().splitlines()[0]


def test_keyboard_next_neighbours_and_map_click(server: str, page: Page) -> None:
    page.goto(f"{server}/browse")
    expect(page.get_by_text("samples match")).to_be_visible(timeout=T)
    expect(page.get_by_text("Saved views")).to_be_visible(timeout=T)
    screenshot(page, "browse_page_sidebar")
    page.get_by_role("tab", name="Grid").click()
    page.get_by_role("button", name="Details").first.click()
    drawer = page.get_by_role("dialog")
    expect(drawer).to_contain_text("Nearest neighbours", timeout=T)
    wait_idle(page)
    first = drawer_path(page)
    page.keyboard.press("ArrowRight")
    expect(drawer.get_by_test_id("stText").first).not_to_contain_text(first, timeout=T)
    second = drawer_path(page)
    screenshot(page, "browse_detail_after_right_key")
    page.keyboard.press("ArrowLeft")
    expect(drawer.get_by_test_id("stText").first).to_contain_text(first, timeout=T)
    wait_idle(page)
    drawer.get_by_label("Add a tag").fill("review")
    drawer.get_by_label("Add a tag").press("Enter")
    wait_idle(page)
    drawer.get_by_role("button", name="Add tag").click()
    expect(drawer).to_contain_text("“review”", timeout=T)
    wait_idle(page)
    drawer.locator("[class*=st-key-neighbour_] button").first.click()  # not the select's Open
    expect(drawer.get_by_test_id("stText").first).not_to_contain_text(first, timeout=T)
    assert drawer_path(page) not in (first, "")
    screenshot(page, "browse_detail_neighbour_opened")
    page.keyboard.press("Escape")
    expect(drawer).to_be_hidden(timeout=T)
    assert second != first

    page.goto(f"{server}/distributions")
    expect(page.get_by_text("Embedding map")).to_be_visible(timeout=T)
    chart = page.locator(".js-plotly-plot").nth(1)  # after the histogram
    chart.scroll_into_view_if_needed()
    expect(chart.locator(".gl-canvas, canvas").first).to_be_attached(timeout=T)
    wait_idle(page)
    x, y, path = chart.evaluate(FIRST_POINT)
    box = chart.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + x, box["y"] + y)
    hover = chart.locator(".hoverlayer .hovertext").first
    expect(hover).to_be_visible(timeout=T)
    # points overlap: the one plotly hovers (and a click picks) is the trusted answer
    path = (hover.locator("text.nums").text_content() or "").strip() or path
    page.mouse.click(box["x"] + x, box["y"] + y)
    expect(page.get_by_role("dialog")).to_contain_text("Nearest neighbours", timeout=T)
    assert drawer_path(page) == path
    screenshot(page, "distributions_map_point_opened")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden(timeout=T)
    page.locator(".st-key-map_colour").get_by_text("Issue", exact=True).click()
    expect(chart).to_contain_text("outlier", timeout=T)  # the legend names the worst issues
    wait_idle(page)
    chart.scroll_into_view_if_needed()
    screenshot(page, "distributions_map_by_issue")


def test_what_the_net_sees_marks_the_scans_flags(server: str, page: Page) -> None:
    """With the digits scanned, the batch grid marks flagged samples (⚠️ and the issue) and
    lists them under the grid, as many as it marks."""
    page.goto(f"{server}/net")
    main = page.get_by_test_id("stMain")
    captions = main.get_by_test_id("stImageCaption")
    expect(captions).to_have_count(64, timeout=90_000)
    section = main.get_by_text("What the scan found in this batch")
    expect(section).to_be_visible(timeout=T)
    found = main.get_by_text("of these 64 samples")
    expect(found).to_be_visible(timeout=T)
    marked = [c for c in captions.all_inner_texts() if "⚠️" in c]
    text = found.inner_text()
    if "none of these" in text:
        assert marked == []
    else:
        assert f"flagged {len(marked)} of these 64" in text
        table = main.get_by_test_id("stDataFrame").first
        expect(table).to_be_visible(timeout=T)
        section.scroll_into_view_if_needed()
    screenshot(page, "net_sees_scan_flags")


def test_net_sees_frames_the_scans_flags_in_the_users_pipeline(server: str, page: Page) -> None:
    """examples/image_classifier.py (ImageFolder over sample_data/digits/train, shuffled) is
    typed, captured by a real job, and its batch is traced to files the scan knows."""
    page.goto(f"{server}/net")
    main = page.get_by_test_id("stMain")
    main.get_by_text("Your pipeline", exact=True).click()
    spec = page.get_by_role("textbox", name="Pipeline spec")
    expect(spec).to_be_visible(timeout=T)
    spec.fill("examples/image_classifier.py:pipeline")
    spec.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Capture batches").click()
    expect(main.get_by_text("Batch 2", exact=False).first).to_be_visible(timeout=120_000)
    caption = main.get_by_text("64 of these 64 samples are in it").first
    expect(caption).to_be_visible(timeout=T)
    expect(main.get_by_text("The scan flagged").first).to_be_visible(timeout=T)
    expect(main.get_by_test_id("stDataFrame").first).to_be_visible(timeout=T)
    screenshot(page, "net_sees_pipeline_flags")
