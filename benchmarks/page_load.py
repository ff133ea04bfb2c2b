"""Page loads in a real browser: seconds from navigation to a page's first content (its
title) and until it has settled (the script run is over), for every page of the app over the
scanned sample digits, side by side with a bare Streamlit page (`st.title` only) served the
same way; and click "Scan dataset" -> the progress bar, on copies of the digits never
scanned (a rescan of an unchanged dataset is over in about a second: the index is cached).
Targets (issue 17): first content <= 2 s, progress bar <= 1 s, on a quiet machine.

    nice .venv/bin/python benchmarks/page_load.py [--repeat 2]

Each page is opened in a fresh tab twice: "cold" is the first visit of the server process
(caches empty: the scan is read, thumbnails drawn), "warm" the second. Uses Debian's Chromium
through Playwright, as the real-browser tests do.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.sync_api import Browser, sync_playwright

from recipe_core.data import open_dataset
from recipe_core.jobs.scan_job import RESULT_DIR, job_dir
from recipe_core.scan import scan, write_result
from recipe_core.workspace import open_workspace
from tests.conftest import SAMPLE_DIGITS
from tests.e2e.conftest import CHROMIUM, CHROMIUM_FLAGS, serve_app

PAGES = ("", "data", "browse", "distributions", "issues", "net", "checks", "runs",
         "ensembles", "dynamics")  # fmt: skip
TIMEOUT_MS = 120_000
BARE = 'import streamlit as st\nst.title("Hello")\nst.write("A bare Streamlit page.")\n'


def load(browser: Browser, url: str) -> tuple[float, float]:
    """(first content, settled) seconds for `url` in a fresh tab."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        start = time.perf_counter()
        page.goto(url, wait_until="commit", timeout=TIMEOUT_MS)
        page.get_by_test_id("stMain").locator("h1").first.wait_for(timeout=TIMEOUT_MS)
        first = time.perf_counter() - start
        page.wait_for_timeout(200)  # the status widget appears a beat after the rerun starts
        page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=TIMEOUT_MS)
        return first, time.perf_counter() - start
    finally:
        page.close()


def scan_click(browser: Browser, url: str, folders: list[Path]) -> list[float]:
    """Seconds from clicking "Scan dataset" on the Data overview to the progress bar on
    screen, for each of `folders` (never scanned), each scan cancelled at once."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    out = []
    try:
        for folder in folders:
            page.goto(f"{url}/data", timeout=TIMEOUT_MS)
            box = page.get_by_role("textbox", name="Dataset path")
            box.fill(str(folder))
            box.press("Enter")
            page.wait_for_timeout(500)
            page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=TIMEOUT_MS)
            page.get_by_text("has not been scanned yet").wait_for(timeout=TIMEOUT_MS)
            button = page.get_by_role("button", name="Scan dataset")
            start = time.perf_counter()
            button.click()
            page.get_by_test_id("stProgress").first.wait_for(timeout=TIMEOUT_MS)
            out.append(time.perf_counter() - start)
            page.get_by_role("button", name="Cancel scan").first.click()
            button.wait_for(timeout=TIMEOUT_MS)
    finally:
        page.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="warm loads per page")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="page-load-"))
    ws = open_workspace(tmp / "ws")
    root = open_dataset(SAMPLE_DIGITS).root
    write_result(scan(root, workspace=ws, workers=0), job_dir(ws, root) / RESULT_DIR)
    copies = [tmp / f"copy{i}" for i in range(max(3, args.repeat))]  # never scanned
    for folder in copies:
        shutil.copytree(SAMPLE_DIGITS, folder)
    bare = tmp / "bare"
    (bare / "app").mkdir(parents=True)
    (bare / "app" / "main.py").write_text(BARE)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        with serve_app(tmp / "bare", tmp / "bare-ws", root=bare) as (url, _):
            load(browser, url)  # the first connection pays for the browser's own start-up
            bare_first = statistics.median(load(browser, url)[0] for _ in range(args.repeat))
        print(f"bare Streamlit page: first content {bare_first:.2f} s\n")
        print(f"{'page':16s} {'cold first':>10s} {'cold settled':>12s} {'warm first':>10s} "
              f"{'warm settled':>12s} {'warm / bare':>11s}")  # fmt: skip
        worst = 0.0
        with serve_app(tmp, Path(ws.root)) as (url, _):
            for name in PAGES:
                cold = load(browser, f"{url}/{name}")
                warm = [load(browser, f"{url}/{name}") for _ in range(args.repeat)]
                first = statistics.median(w[0] for w in warm)
                settled = statistics.median(w[1] for w in warm)
                worst = max(worst, first)
                print(f"{name or 'home':16s} {cold[0]:10.2f} {cold[1]:12.2f} {first:10.2f} "
                      f"{settled:12.2f} {first / bare_first:10.1f}x")  # fmt: skip
            clicks = scan_click(browser, url, copies)
            click = statistics.median(clicks)
        browser.close()
    print(f"\nslowest warm first content: {worst:.2f} s (target <= 2 s): "
          f"{'OK' if worst <= 2 else 'MISSED'}")  # fmt: skip
    print(f"click Scan dataset -> progress bar: median {click:.2f} s of "
          f"{', '.join(f'{c:.2f}' for c in clicks)} (target <= 1 s): "
          f"{'OK' if click <= 1 else 'MISSED'}")  # fmt: skip


if __name__ == "__main__":
    main()
