"""Take the README's tour screenshots (docs/tour/*.png) from the real app in a real browser.

    .venv/bin/python docs/make_tour.py            # about 3 minutes on 2 cores

It trains two short runs and saves a checks report with the CLI into a fresh workspace, serves
the dashboard on 127.0.0.1 over it, scans the sample digits from the Data overview (a click, as
a user would) and saves one screenshot per step of the tour. Run it after changing a page.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e.conftest import CHROMIUM, CHROMIUM_FLAGS, serve_app  # noqa: E402

OUT = REPO / "docs" / "tour"
DIGITS = REPO / "sample_data" / "digits"
RECIPE = Path(sys.executable).with_name("recipe")
T = 120_000  # ms: a busy 2-core machine


def prepare(workspace: Path) -> None:
    """Two short runs (a baseline and an overfit) and a saved checks report."""
    common = ["--workspace", str(workspace)]
    for preset, steps in (("baseline", "300"), ("overfit", "150")):
        train = [str(RECIPE), "train", str(DIGITS), "--model", "small_cnn", "--preset", preset,
                 "--steps", steps, *common]  # fmt: skip
        subprocess.run(train, check=True, capture_output=True)
    check = subprocess.run([str(RECIPE), "check", str(DIGITS), "--model", "mlp", "--max-seconds",
                            "90", "--save", *common], capture_output=True, text=True)  # fmt: skip
    if check.returncode not in (0, 1):  # 1: a check failed, which the tour may well show
        raise SystemExit(f"recipe check failed ({check.returncode}):\n{check.stderr[-2000:]}")
    print(check.stdout.strip().splitlines()[-1])


def shot(page: Page, name: str, *, height: int = 1300) -> None:
    page.set_viewport_size({"width": 1400, "height": height})
    page.wait_for_timeout(1500)  # charts and thumbnails settle
    page.screenshot(path=str(OUT / f"{name}.png"))
    print("wrote", OUT / f"{name}.png")


def visit(page: Page, url: str, heading: str, ready: Callable[[Page], None] | None = None) -> None:
    page.goto(url)
    expect(page.get_by_role("heading", name=heading).first).to_be_visible(timeout=T)
    if ready is not None:
        ready(page)


def scan(page: Page) -> None:
    page.get_by_role("button", name="Scan dataset").click()
    expect(page.get_by_role("button", name="Show them →").first).to_be_visible(timeout=T)


def mapped(page: Page) -> None:
    """The Distributions page's embedding map is drawn (it projects after the histogram)."""
    expect(page.get_by_text("Embedding map").first).to_be_visible(timeout=T)
    expect(page.get_by_text("Projecting the embeddings")).to_have_count(0, timeout=T)


def batch_shown(page: Page) -> None:
    """What the net sees has drawn its batch and what the scan found in it (the capture runs
    after the heading is up)."""
    main = page.get_by_test_id("stMain")
    expect(main.get_by_test_id("stImageCaption")).to_have_count(64, timeout=T)
    expect(main.get_by_text("of these 64 samples")).to_be_visible(timeout=T)


def tour(page: Page, url: str) -> None:
    visit(page, f"{url}/data", "Data overview", scan)  # first, so Home shows the scan as done
    shot(page, "2-data-overview", height=1500)
    visit(page, url, "Recipe")
    shot(page, "1-home")
    visit(page, f"{url}/browse", "Browse samples")
    shot(page, "3-browse")
    visit(page, f"{url}/distributions", "Distributions", mapped)
    shot(page, "4-distributions", height=1800)
    visit(page, f"{url}/issues", "Issues")
    shot(page, "5-issues")
    visit(page, f"{url}/net", "What the net sees", batch_shown)
    shot(page, "6-what-the-net-sees", height=2400)  # the grid, its scan flags and the table
    visit(page, f"{url}/checks", "Checks")
    shot(page, "7-checks")
    visit(page, f"{url}/runs", "Runs")
    shot(page, "8-runs", height=1500)
    visit(page, f"{url}/dynamics", "Prediction dynamics")
    shot(page, "9-dynamics")
    visit(page, f"{url}/ensembles", "Ensembles")
    shot(page, "10-ensembles")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        prepare(tmp / "workspace")
        with serve_app(tmp, tmp / "workspace") as (url, _), sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                str(tmp / "profile"), executable_path=CHROMIUM, headless=True,
                args=CHROMIUM_FLAGS, viewport={"width": 1400, "height": 1300},
            )  # fmt: skip
            try:
                tour(context.new_page(), url)
            finally:
                context.close()


if __name__ == "__main__":
    main()
