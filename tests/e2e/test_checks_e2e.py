"""Checks and "What the net sees" in a real browser: start the checks for `mlp` on
sample_data through the UI (a real background process), wait for the cards and the overfit
plot; page through the batch the model receives."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.conftest import screenshot

T = 30_000  # ms for a page to update: Chromium and the server share 2 busy cores in CI
CHECKS_TIMEOUT = 120_000  # ms: process start + torch import + data load + checks, busy 2 cores
MAIN = '[data-testid="stMain"]'


def test_run_checks_for_mlp_shows_cards_overfit_plot_and_heatmap(
    streamlit_server: str, page: Page
) -> None:
    page.goto(f"{streamlit_server}/checks")
    expect(page.get_by_role("button", name="Run checks")).to_be_visible(timeout=T)
    budget = page.get_by_role("spinbutton", name="Time budget, s")
    budget.fill("40")
    budget.press("Enter")
    page.get_by_role("button", name="Run checks").click()
    expect(page.get_by_test_id("stProgress")).to_be_visible(timeout=T)  # polled live
    overfit_card = page.locator(MAIN).get_by_text("overfit_one_batch", exact=True)
    expect(overfit_card).to_be_visible(timeout=CHECKS_TIMEOUT)
    expect(page.get_by_test_id("stProgress")).to_have_count(0)
    for name in ("overfit_one_batch", "batch_independence"):  # passing cards fold their plots
        page.get_by_text(f"Evidence of {name}:").click()
    plots = page.locator(f"{MAIN} .js-plotly-plot")
    expect(plots.filter(has_text="label (dashed) vs prediction")).to_have_count(1, timeout=T)
    expect(plots.filter(has_text="gradient dependency")).to_have_count(1, timeout=T)
    expect(page.get_by_test_id("stMetric").filter(has_text="pass")).to_be_visible()
    screenshot(page, "checks_report")
    plots.filter(has_text="label (dashed) vs prediction").scroll_into_view_if_needed()
    screenshot(page, "checks_overfit_and_heatmap")


def test_net_sees_shows_the_batch_grid_and_pages(streamlit_server: str, page: Page) -> None:
    page.goto(f"{streamlit_server}/net")
    images = page.locator(f'{MAIN} [data-testid="stImage"] img')
    expect(images).to_have_count(64, timeout=CHECKS_TIMEOUT)
    expect(page.locator(f'{MAIN} [data-testid="stDataFrame"]').last).to_be_visible(timeout=T)
    first = page.locator(f'{MAIN} [data-testid="stImageCaption"]').first.inner_text()
    screenshot(page, "net_sees_batch1")
    page.get_by_role("button", name="Next batch →").click()
    expect(page.get_by_role("spinbutton", name="Batch (1–8")).to_have_value("2", timeout=T)
    expect(images).to_have_count(64, timeout=T)
    captions = page.locator(f'{MAIN} [data-testid="stImageCaption"]').all_inner_texts()
    assert len(captions) == 64 and captions[0].startswith("0: ")
    assert first.startswith("0: ")
