"""Sign-in in a real browser: `recipe serve --config` with OIDC against a real provider (the
oidc-provider-mock server on 127.0.0.1), its own authorize form filled in by Chromium.

Signed-out visitors see only "Sign in" (whatever URL they open); the runner (alice) signs in,
starts and cancels a job; a viewer (bob, by domain) watches a running job without any start or
cancel control; an outsider (eve) is refused after sign-in. Every step is checked in the audit log.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.conftest import REPO_ROOT
from tests.e2e.conftest import screenshot
from tests.hosting import oidc_fixtures
from tests.hosting.oidc_fixtures import OUTSIDER, RUNNER, VIEWER, Dashboard, cancel_unfinished_jobs

T = 30_000  # ms for a page to update: Chromium, the server and jobs share 2 busy cores
DIGITS = REPO_ROOT / "sample_data" / "digits"
REFUSED = "is not on this dashboard's allow-list"
VIEWER_TEXT = "Viewers can watch runs; ask an operator for the runner role to start or cancel jobs."
PAGES = ("", "/runs", "/data", "/checks", "/dynamics")

oidc_provider = oidc_fixtures.oidc_provider  # the fixtures, usable here
hosted_dashboard = oidc_fixtures.hosted_dashboard


@pytest.fixture(autouse=True)
def fresh_cookies(browser_context: BrowserContext) -> Iterator[None]:
    """Each test starts signed out, and leaves no session behind for other tests' servers
    (cookies ignore ports, and every test server lives on 127.0.0.1)."""
    browser_context.clear_cookies()
    yield
    browser_context.clear_cookies()


def wait_idle(page: Page) -> None:
    page.wait_for_timeout(300)
    expect(page.get_by_test_id("stStatusWidget")).to_be_hidden(timeout=T)


def expect_signed_out(page: Page) -> None:
    """Only the sign-in page: the button, no page navigation, no page content, no error."""
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible(timeout=T)
    wait_idle(page)
    expect_no_app(page)


def expect_no_app(page: Page) -> None:
    for link in ("Runs", "Data overview", "Checks", "Prediction dynamics"):
        expect(page.get_by_role("link", name=link)).to_have_count(0)
    expect(page.get_by_text("Start a run")).to_have_count(0)
    expect(page.get_by_role("heading", name=re.compile("Runs"))).to_have_count(0)
    expect(page.get_by_test_id("stException")).to_have_count(0)


def sign_in(page: Page, dashboard: Dashboard, email: str) -> None:
    """Through the provider's own authorize form: type the user, press Authorize."""
    page.goto(dashboard.url)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(re.compile(r".*/oauth2/authorize\?.*"), timeout=T)
    page.locator("input[name=sub]").fill(email)
    page.get_by_role("button", name="Authorize", exact=True).click()
    page.wait_for_url(f"{dashboard.url}/**", timeout=T)
    expect(page.get_by_role("button", name="Sign out", exact=True)).to_be_visible(timeout=T)


def sign_out(page: Page, dashboard: Dashboard) -> None:
    """Sign out; the provider's end-session page (the mock asks for a click) leads back.
    (Streamlit reruns the page signed out, so "Sign in" flashes up, before it redirects to the
    provider: wait for the provider's page itself, not for either.)"""
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_url(re.compile(r".*/oauth2/end_session\?.*"), timeout=T)
    page.get_by_role("button", name="End session", exact=True).click()
    page.wait_for_url(f"{dashboard.url}/**", timeout=T)
    expect_signed_out(page)
    page.goto(dashboard.url)  # the session cookie is really gone, not just this page
    expect_signed_out(page)


def expect_identity(page: Page, email: str, role: str) -> None:
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_role("link", name="Runs")).to_be_visible(timeout=T)  # the app's pages
    expect(sidebar.get_by_text(email)).to_be_visible(timeout=T)
    expect(sidebar.get_by_text(re.compile(rf"\b{role}\b")).first).to_be_visible(timeout=T)


def choose(page: Page, label: str, option: str) -> None:
    box = page.get_by_role("combobox", name=label)
    box.click()
    box.fill(option)
    page.get_by_role("option", name=re.compile(f"^{re.escape(option)}")).first.click()
    expect(box).to_have_value(re.compile(f"^{re.escape(option)}"), timeout=T)
    wait_idle(page)


def set_number(page: Page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    expect(box).to_have_value(value)
    wait_idle(page)


def start_job_from_form(page: Page, dashboard: Dashboard, steps: int) -> None:
    page.goto(f"{dashboard.url}/runs")
    expect(page.get_by_text("Start a run").first).to_be_visible(timeout=T)
    form = page.get_by_test_id("stExpander").filter(has_text="Start a run").locator("details")
    if form.first.get_attribute("open") is None:
        page.get_by_text("Start a run").click()
    dataset = page.get_by_label("Dataset path", exact=True)
    dataset.fill(str(DIGITS))
    dataset.press("Enter")
    wait_idle(page)
    choose(page, "Preset", "baseline")  # no stopping rule: it runs until cancelled
    choose(page, "Model", "mlp")
    page.get_by_test_id("stRadio").filter(has_text="Device").get_by_text("cpu", exact=True).click()
    wait_idle(page)
    set_number(page, "Steps", str(steps))
    page.get_by_role("button", name="Start run").click()


def only_run(dashboard: Dashboard, timeout_s: float = 30.0) -> Path:
    """The one run in the dashboard's workspace, once its config is written."""
    runs = dashboard.workspace / "runs"
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        found = sorted(runs.glob("*/config.json")) if runs.exists() else []
        if found:
            assert len(found) == 1, f"expected one run, found {found}"
            return found[0].parent
        time.sleep(0.3)
    raise AssertionError(f"no run appeared in {runs}; audit: {dashboard.audit()}")


def test_signed_out_visitors_see_only_sign_in_on_every_url(
    hosted_dashboard: Dashboard, page: Page
) -> None:
    for path in PAGES:
        page.goto(f"{hosted_dashboard.url}{path}")
        expect_signed_out(page)
    screenshot(page, "auth_signed_out")
    assert not [e for e in hosted_dashboard.audit() if e.get("action") == "start_run"]


def test_runner_signs_in_starts_and_cancels_a_job_then_signs_out(
    hosted_dashboard: Dashboard, page: Page
) -> None:
    sign_in(page, hosted_dashboard, RUNNER)
    expect_identity(page, RUNNER, "runner")
    entry = hosted_dashboard.wait_audit("sign_in", RUNNER)
    assert (entry["role"], entry["outcome"]) == ("runner", "ok")

    start_job_from_form(page, hosted_dashboard, steps=20_000)
    run_dir = only_run(hosted_dashboard)
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["model"], config["preset"], config["steps"]) == ("mlp", "baseline", 20_000)
    started = hosted_dashboard.wait_audit("start_run", RUNNER)
    assert started["outcome"] == "ok"
    assert run_dir.name in json.dumps(started) or started["target"] == str(DIGITS), started
    cancel = page.locator(f".st-key-cancel_{run_dir.name}").get_by_role("button", name="Cancel")
    expect(cancel).to_be_visible(timeout=T)
    screenshot(page, "auth_runner_runs")
    cancel.click()
    expect(page.get_by_role("combobox", name="Run", exact=True)).to_have_value(
        re.compile(r"· cancelled ·"), timeout=T
    )
    assert hosted_dashboard.wait_audit("cancel_run", RUNNER)["outcome"] == "ok"
    assert json.loads((run_dir / "status.json").read_text())["state"] == "cancelled"
    sign_out(page, hosted_dashboard)


def test_viewer_watches_a_running_job_without_start_or_cancel_controls(
    hosted_dashboard: Dashboard, page: Page
) -> None:
    from recipe_core.jobs.executors import LocalExecutor, submit_run
    from recipe_core.train import make_config

    config = make_config(
        str(DIGITS), model="mlp", device="cpu", steps=20_000, eval_every=0, dynamics_every=0
    )  # the baseline preset: no stopping rule, so it is still running while bob looks
    executor = LocalExecutor(env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    handle = submit_run(config, workspace=hosted_dashboard.workspace, executor=executor)
    try:
        sign_in(page, hosted_dashboard, VIEWER)
        expect_identity(page, VIEWER, "viewer")
        entry = hosted_dashboard.wait_audit("sign_in", VIEWER)
        assert (entry["role"], entry["outcome"]) == ("viewer", "ok")
        page.goto(f"{hosted_dashboard.url}/runs")
        expect(page.get_by_text(VIEWER_TEXT)).to_be_visible(timeout=T)
        run = page.get_by_role("combobox", name="Run", exact=True)
        expect(run).to_have_value(re.compile(re.escape(handle.run_id)), timeout=T)
        expect(run).to_have_value(re.compile(r"· (queued|running) ·"))  # unfinished: live
        wait_idle(page)
        expect(page.get_by_role("button", name="Start run")).to_have_count(0)
        expect(page.locator(f".st-key-cancel_{handle.run_id}")).to_have_count(0)
        expect(page.get_by_role("button", name="Cancel", exact=True)).to_have_count(0)
        screenshot(page, "auth_viewer_runs")
        assert not [e for e in hosted_dashboard.audit() if e.get("user") == VIEWER
                    and e.get("action") in ("start_run", "cancel_run")]  # fmt: skip
        sign_out(page, hosted_dashboard)
    finally:
        cancel_unfinished_jobs(hosted_dashboard.workspace)


def test_outsider_is_refused_after_sign_in_and_sees_no_app(
    hosted_dashboard: Dashboard, page: Page
) -> None:
    sign_in(page, hosted_dashboard, OUTSIDER)
    expect(page.get_by_text(f"{OUTSIDER}")).to_be_visible(timeout=T)
    expect(page.get_by_text(REFUSED)).to_be_visible(timeout=T)
    wait_idle(page)
    expect_no_app(page)
    screenshot(page, "auth_outsider_refused")
    page.goto(f"{hosted_dashboard.url}/runs")  # a direct URL is refused the same way
    expect(page.get_by_text(REFUSED)).to_be_visible(timeout=T)
    wait_idle(page)
    expect_no_app(page)
    assert hosted_dashboard.wait_audit("sign_in_refused", OUTSIDER)["outcome"] == "denied"
    assert not [e for e in hosted_dashboard.audit() if e.get("user") == OUTSIDER
                and e.get("action") == "sign_in"]  # fmt: skip
    sign_out(page, hosted_dashboard)
