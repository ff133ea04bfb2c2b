"""The data pages in a real browser: scan sample_data through the UI (a real background
process), sort by outlier score, select a histogram bar, open a duplicate group; and file
names / class names made of HTML stay text."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from recipe_core.data import open_dataset
from recipe_core.jobs.scan_job import RESULT_DIR, job_dir
from recipe_core.scan import scan, write_result
from recipe_core.scan.issues.flips import FLIPS
from recipe_core.workspace import open_workspace
from tests.conftest import REPO_ROOT, write_image_folder
from tests.e2e.conftest import free_port, screenshot, serve_app, wait_healthy
from tests.photos.edit_families import make_stacked_edits
from tests.photos.planted import make_planted_photos, split_class

PLANTED = pd.read_csv(REPO_ROOT / "sample_data" / "digits_planted.csv", keep_default_na=False)
OUTLIERS = set(PLANTED.loc[PLANTED["issue"] == "outlier", "path"])
T = 30_000  # ms for a page to update: Chromium and the server share 2 busy cores in CI
SCAN_TIMEOUT = 150_000  # ms: process start + imports + scan of 1.7k images on a busy 2-core box
IMAGES = '[data-testid="stMain"] [data-testid="stImage"] img'


def choose(page: Page, label: str, option: str) -> None:
    """Pick `option` in the selectbox labelled `label`."""
    box = page.get_by_role("combobox", name=label)
    box.click()
    box.fill(option)
    page.get_by_role("option", name=option, exact=True).click()


def test_scan_sort_histogram_and_duplicate_groups(streamlit_server: str, page: Page) -> None:
    page.goto(f"{streamlit_server}/data")
    page.get_by_role("button", name="Scan dataset").click()
    expect(page.get_by_test_id("stProgress")).to_be_visible(
        timeout=T
    )  # live progress from the process
    cards = page.get_by_role("button", name="Show them →")
    expect(cards.first).to_be_visible(timeout=SCAN_TIMEOUT)
    expect(page.get_by_test_id("stMetric").filter(has_text="Outliers")).to_contain_text(
        "10", timeout=T
    )
    screenshot(page, "data_pages_overview")

    # Browse, sorted by outlier score: an out-of-domain image comes first.
    page.get_by_role("link", name="Browse samples").click()
    expect(page.get_by_text("samples match")).to_be_visible(timeout=T)
    choose(page, "Sort by", "score_outlier")
    page.get_by_role("tab", name="Grid").click()
    first = page.locator('[data-testid="stMain"] [data-testid="stImageCaption"]').first
    expect(first).to_contain_text("outlier", timeout=T)
    page.get_by_role("button", name="Details").first.click()
    drawer = page.get_by_role("dialog")
    expect(drawer).to_contain_text("Nearest neighbours", timeout=T)
    path = drawer.get_by_test_id("stText").first.inner_text().splitlines()[0]
    assert path in OUTLIERS
    screenshot(page, "data_pages_browse_detail")
    page.keyboard.press("Escape")
    expect(drawer).to_be_hidden(timeout=T)

    # Distributions: clicking a histogram bar filters the grid to that bar's samples.
    page.get_by_role("link", name="Distributions").click()
    chart = page.locator(".js-plotly-plot").first
    expect(chart).to_be_visible(timeout=T)
    bars = chart.locator(".barlayer .point path")
    boxes = [bars.nth(i).bounding_box() for i in range(bars.count())]
    tallest = max((b for b in boxes if b is not None), key=lambda b: b["height"])
    # plotly's drag layer sits on top of the bars: hover and click where the bar is, as a user
    # does; the hover label states the bar's count, the trusted answer for the filtered grid
    x, y = tallest["x"] + tallest["width"] / 2, tallest["y"] + tallest["height"] / 2
    page.mouse.move(x, y)
    expect(chart.locator(".hoverlayer")).to_contain_text("samples", timeout=T)
    hover = chart.locator(".hoverlayer").text_content() or ""
    want = int(re.search(r"(\d+) samples", hover).group(1))
    page.mouse.click(x, y)
    expect(page.get_by_role("heading", name="Samples in the selection")).to_be_visible(timeout=T)
    caption = page.get_by_text(re.compile(r"samples \(class \S+; brightness in")).inner_text()
    match = re.match(r"([\d,]+) samples \(class (\S+);", caption)
    assert match is not None and int(match.group(1).replace(",", "")) == want
    page.wait_for_function(f"document.querySelectorAll('{IMAGES}').length === {min(want, 24)}")
    grid = page.locator('[data-testid="stMain"] [data-testid="stImageCaption"]').all_inner_texts()
    assert grid and all(c.startswith(f"{match.group(2)} ·") for c in grid)
    screenshot(page, "data_pages_distributions_selected")

    # Issues: duplicate groups side by side, conflicting labels first.
    page.get_by_role("link", name="Issues").click()
    expect(page.get_by_text("groups of identical or near-identical files")).to_be_visible(timeout=T)
    group = (
        page.get_by_test_id("stVerticalBlock")
        .filter(has_text="conflicting labels")
        .filter(has_not=page.get_by_test_id("stExpander"))  # not the threshold panel's pair
        .first
    )
    for p in PLANTED.loc[PLANTED["group"] == "conflict-1", "path"]:
        expect(page.get_by_text(p, exact=False).first).to_be_visible(timeout=T)
    expect(group.locator("img").first).to_be_visible(timeout=T)
    screenshot(page, "data_pages_issues")

    # The near-duplicate threshold: what each line reports and the loosest pair it lets in.
    page.get_by_text("Near-duplicate threshold: 1 (the default)").click()
    panel = page.get_by_test_id("stExpander").filter(has_text="Near-duplicate threshold")
    expect(
        panel.get_by_text(re.compile(r"The loosest pair at 1 \(closeness 0\.\d\d\)"))
    ).to_be_visible(timeout=T)
    expect(panel.locator("img")).to_have_count(2, timeout=T)
    expect(panel.get_by_test_id("stDataFrame")).to_be_visible(timeout=T)
    screenshot(page, "data_pages_near_threshold")


@pytest.fixture(scope="module")
def xss_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A server whose extra data root holds a dataset with HTML in class and file names."""
    tmp = tmp_path_factory.mktemp("xss")
    root = write_image_folder(tmp / "data" / "xss", classes=2, per_class=5)
    (root / "train" / "class_0").rename(root / "train" / "<b>bold")
    Image.new("L", (16, 16), 200).save(
        root / "train" / "class_1" / "<img src=x onerror=alert(1)>.png"
    )
    # scanned by the engine up front: the scan button's background process is tested above
    source = open_dataset(root)
    ws = open_workspace(tmp / "ws")
    write_result(scan(source, workspace=ws, workers=0), job_dir(ws, source.root) / RESULT_DIR)
    port = free_port()
    env = dict(
        os.environ,
        RECIPE_WORKSPACE=str(tmp / "ws"),
        RECIPE_DATA_ROOTS=str(tmp / "data"),
        HOME=str(tmp),
    )
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(REPO_ROOT / "app" / "main.py"),
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    with (tmp / "log").open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_healthy(f"http://127.0.0.1:{port}", proc)
            yield f"http://127.0.0.1:{port}", root
        finally:
            proc.terminate()
            proc.wait(timeout=15)


def test_html_in_names_renders_as_text(xss_server: tuple[str, Path], page: Page) -> None:
    url, root = xss_server
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{url}/data")
    box = page.get_by_label("Dataset path", exact=True)
    box.fill(str(root))
    box.press("Enter")
    expect(page.get_by_role("button", name="Show them →").first).to_be_visible(timeout=T)
    page.get_by_role("link", name="Browse samples").click()
    page.get_by_role("tab", name="Grid").click()
    expect(page.get_by_text("<b>bold").first).to_be_visible(timeout=T)  # shown literally
    page.get_by_role("link", name="Distributions").click()
    expect(page.locator(".js-plotly-plot .legendtext", has_text="<b>bold").first).to_be_visible(
        timeout=T
    )
    page.get_by_role("link", name="Browse samples").click()
    # The page must have settled before typing: a box filled while its script still ran was
    # drawn again empty when the run finished, and the filter was lost (twice under load).
    expect(page.get_by_text(re.compile(r"of 21 samples match \(no filter\)"))).to_be_visible(
        timeout=T
    )
    expect(page.get_by_text("Select a row in the table")).to_be_visible(timeout=T)  # its end
    search = page.get_by_label("Path contains")
    search.fill("onerror")
    expect(search).to_have_value("onerror")
    search.press("Enter")
    expect(page.get_by_text(re.compile(r"^1 of 21 samples match"))).to_be_visible(timeout=T)
    page.get_by_role("tab", name="Grid").click()
    details = page.get_by_role("button", name="Details")
    expect(details).to_have_count(1, timeout=T)  # the filtered grid, not the last run's 21
    details.click()
    expect(page.get_by_role("dialog")).to_contain_text(
        "<img src=x onerror=alert(1)>.png", timeout=T
    )
    screenshot(page, "data_pages_html_names")
    assert page.locator('[data-testid="stMain"] b', has_text="bold").count() == 0
    assert page.locator("img[src='x']").count() == 0
    assert dialogs == []


@pytest.fixture(scope="module")
def edits_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A server over photo crops with several edited copies of two pictures (a mirror image,
    a recrop, a watermarked copy...), scanned by the engine up front."""
    tmp = tmp_path_factory.mktemp("edits")
    root = tmp / "data" / "edits"
    make_stacked_edits(root, seed=2, originals=2)
    source = open_dataset(root)
    ws = open_workspace(tmp / "ws")
    write_result(scan(source, workspace=ws, workers=0), job_dir(ws, source.root) / RESULT_DIR)
    with serve_app(tmp, tmp / "ws") as (url, _):
        yield url, root


def test_a_group_says_how_each_member_is_a_copy(edits_server: tuple[str, Path], page: Page) -> None:
    """A picture with its mirror image and edited copies is one group on the Issues page, and
    each member's caption says which kind of copy it is, not only "near copy"."""
    url, root = edits_server
    page.goto(f"{url}/data")
    box = page.get_by_label("Dataset path", exact=True)
    box.fill(str(root))
    box.press("Enter")
    page.get_by_role("link", name="Issues").click()
    expect(page.get_by_text("groups of identical or near-identical files")).to_be_visible(timeout=T)
    captions = page.locator('[data-testid="stMain"] [data-testid="stImageCaption"]')
    expect(captions.filter(has_text="edited copy of ").first).to_be_visible(timeout=T)
    texts = captions.all_inner_texts()
    kinds = {k for k in (*FLIPS, "edited copy") if any(f"{k} of " in t for t in texts)}
    assert "edited copy" in kinds and kinds & set(FLIPS), texts
    assert any("near copy of " in t for t in texts), texts  # a plain copy says so too
    screenshot(page, "data_pages_edited_copies")


@pytest.fixture(scope="module")
def overlap_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A server over the planted photo set with one class split in two at random (two classes
    of one kind), scanned by the engine up front."""
    tmp = tmp_path_factory.mktemp("overlap")
    photos = make_planted_photos(tmp / "photos", seed=0)
    root = tmp / "data" / "split"
    split_class(photos.images, root, "pagoda", "pagoda2")
    source = open_dataset(root)
    ws = open_workspace(tmp / "ws")
    write_result(scan(source, workspace=ws, workers=0), job_dir(ws, source.root) / RESULT_DIR)
    with serve_app(tmp, tmp / "ws") as (url, _):
        yield url, root


def test_overlapping_classes_are_a_card_and_a_warning(
    overlap_server: tuple[str, Path], page: Page
) -> None:
    """Two classes of one kind: the overview's card counts them, and the Issues page's label
    tab says they overlap, above label issues that never name one for the other."""
    url, root = overlap_server
    page.goto(f"{url}/data")
    box = page.get_by_label("Dataset path", exact=True)
    box.fill(str(root))
    box.press("Enter")
    card = page.locator('[data-testid="stMetric"]', has_text="Overlapping classes")
    expect(card).to_contain_text("2 classes", timeout=T)
    screenshot(page, "data_overview_overlapping_classes")
    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name="Issues").click()
    page.get_by_role("tab", name=re.compile("^Label issues")).click()
    note = page.locator('[data-testid="stAlert"]', has_text="classes overlap")
    expect(note).to_contain_text("pagoda2", timeout=T)
    screenshot(page, "data_pages_overlapping_classes")
