"""The real app in a real browser: open it, go to the Data overview, see the sample images."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.conftest import SAMPLE_DIGITS
from tests.e2e.conftest import screenshot


def test_home_routes_to_data_overview_and_shows_sample_images(
    streamlit_server: str, page: Page
) -> None:
    page.goto(streamlit_server)
    expect(page.get_by_role("heading", name="Recipe")).to_be_visible()
    page.get_by_role("link", name="Open the data overview").click()
    expect(page.get_by_role("heading", name="Data overview")).to_be_visible()
    expect(page.get_by_test_id("stMetric").first).to_contain_text("Samples")
    images = page.locator('[data-testid="stImage"] img')
    expect(images.first).to_be_visible()
    assert images.count() == 48  # one full page of the grid
    # Thumbnails are real decoded images, not broken links.
    widths = images.evaluate_all("els => els.map(e => e.naturalWidth)")
    assert all(w > 0 for w in widths), widths
    n_train = sum(1 for _ in (SAMPLE_DIGITS / "train").rglob("*.*"))
    assert n_train > 0
    expect(page.locator('[data-testid="stMetric"]').first).to_contain_text("Samples")
    screenshot(page, "data_overview")


def test_bad_dataset_path_shows_clear_error(streamlit_server: str, page: Page) -> None:
    page.goto(f"{streamlit_server}/data")
    box = page.get_by_label("Dataset path")
    box.fill("/definitely/not/here")
    box.press("Enter")
    expect(page.get_by_text("does not exist")).to_be_visible()
    screenshot(page, "data_overview_bad_path")
