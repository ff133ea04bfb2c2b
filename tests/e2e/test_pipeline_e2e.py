"""The user's own pipeline in a real browser: type an example's spec on the Checks page, run
its checks (a real background process that imports it), read the cards; then capture its
batches on What the net sees and look at the decoded picture."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.conftest import screenshot

T = 30_000  # ms for a page to update: Chromium and the server share 2 busy cores in CI
JOB_TIMEOUT = 120_000  # ms: process start + torch import + the pipeline's data + the checks
MAIN = '[data-testid="stMain"]'
SPEC = "examples/tabular_mlp.py:pipeline"  # inside the server's working directory (allowed)


def type_spec(page: Page) -> None:
    page.locator(MAIN).get_by_text("Your pipeline", exact=True).click()
    spec = page.get_by_role("textbox", name="Pipeline spec")
    expect(spec).to_be_visible(timeout=T)
    spec.fill(SPEC)
    spec.press("Enter")


def test_checks_run_on_a_typed_pipeline(streamlit_server: str, page: Page) -> None:
    page.goto(f"{streamlit_server}/checks")
    expect(page.get_by_role("button", name="Run checks")).to_be_visible(timeout=T)
    type_spec(page)
    page.get_by_role("button", name="Run checks").click()
    card = page.locator(MAIN).get_by_text("input_independent_baseline", exact=True)
    expect(card).to_be_visible(timeout=JOB_TIMEOUT)
    expect(page.get_by_test_id("stMetric").filter(has_text="pass")).to_be_visible(timeout=T)
    expect(page.locator(MAIN).get_by_text("pipeline ", exact=False).first).to_be_visible()
    screenshot(page, "pipeline_checks_report")


def test_net_sees_captures_a_typed_pipelines_batch(streamlit_server: str, page: Page) -> None:
    page.goto(f"{streamlit_server}/net")
    expect(page.locator(MAIN).get_by_text("Your pipeline", exact=True)).to_be_visible(timeout=T)
    type_spec(page)
    page.get_by_role("button", name="Capture batches").click()
    picture = page.locator(f'{MAIN} [data-testid="stImage"] img')
    expect(picture).to_have_count(2, timeout=JOB_TIMEOUT)  # the default: two batches
    expect(page.locator(MAIN).get_by_text("Batch 1").first).to_be_visible()
    expect(page.locator(MAIN).get_by_text("table · shape (64, 10)").first).to_be_visible()
    assert "**" not in page.locator(MAIN).inner_text()  # bold, not literal asterisks
    screenshot(page, "pipeline_net_sees")
