"""The real app in a real browser: open it, go to the Data overview, see the sample images."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.conftest import SAMPLE_DIGITS
from tests.e2e.conftest import screenshot

GRID_CELLS = """() => document.querySelectorAll('[data-testid="stImage"] img').length
    + [...document.querySelectorAll('[data-testid="stAlertContentWarning"]')]
      .filter(e => e.innerText.trim() === 'unreadable').length"""


def test_home_routes_to_data_overview_and_shows_sample_images(
    streamlit_server: str, page: Page
) -> None:
    page.goto(streamlit_server)
    # generous timeouts: the first page of a fresh server imports the engine (seconds on a
    # busy 2-core machine) before it draws anything
    expect(page.get_by_role("heading", name="Recipe")).to_be_visible(timeout=30_000)
    page.get_by_role("link", name="Open the data overview").click()
    expect(page.get_by_role("heading", name="Data overview")).to_be_visible(timeout=30_000)
    n_files = sum(1 for p in SAMPLE_DIGITS.rglob("*") if p.is_file())
    expect(page.get_by_test_id("stMetric").first).to_contain_text(f"{n_files:,}", timeout=30_000)
    page.wait_for_function(f"({GRID_CELLS})() >= 48")
    assert page.evaluate(f"({GRID_CELLS})()") == 48  # one full page of the grid
    # Thumbnails are real decoded images, not broken links.
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid="stImage"] img')]
                 .every(e => e.complete && e.naturalWidth > 0)"""
    )
    expect(page.get_by_text("0 · train").first).to_be_visible()  # caption: label · split
    screenshot(page, "data_overview")


def test_bad_dataset_path_shows_clear_error(streamlit_server: str, page: Page) -> None:
    page.goto(f"{streamlit_server}/data")
    box = page.get_by_label("Dataset path", exact=True)
    box.fill("/definitely/not/here")
    box.press("Enter")
    # outside the folders the app may open (cwd, sample_data/, --data-root): refused
    expect(page.get_by_text("outside the folders this dashboard may open")).to_be_visible()
    screenshot(page, "data_overview_bad_path")
