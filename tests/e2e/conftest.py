"""Real-browser fixtures: a real `streamlit run` server on a free 127.0.0.1 port, driven by
Python Playwright through Debian's Chromium (never a Playwright-downloaded browser)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

CHROMIUM = os.environ.get("RECIPE_CHROMIUM", "/usr/bin/chromium")
# JS: the newest step plotly drew in the loss chart's train trace (-1 before it is drawn). A
# count of points would stop growing once a long run is decimated to ~1,200 points per trace.
TRAIN_LAST_STEP = """() => { const p = document.querySelector('.js-plotly-plot');
    if (!p || !p._fullData) return -1;
    const d = p._fullData.find(d => d.name === 'train');
    return d && d.x && d.x.length ? Number(d.x[d.x.length - 1]) : -1; }"""
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = REPO_ROOT / "tests" / "e2e" / "artifacts"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


def _browser_missing_reason() -> str | None:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Python Playwright is not installed (pip install playwright)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"streamlit did not become healthy at {url} in {timeout:.0f}s")


@contextlib.contextmanager
def serve_app(tmp: Path, workspace: Path, *, root: Path = REPO_ROOT) -> Iterator[tuple[str, int]]:
    """`streamlit run app/main.py` of the checkout at `root` (from there, so its own `app`
    package is imported) on a free 127.0.0.1 port over `workspace` (log in
    tmp/streamlit.log): yields (url, pid) once healthy, stops the server on the way out."""
    port = free_port()
    environ = dict(os.environ, RECIPE_WORKSPACE=str(workspace), HOME=str(tmp),
                   STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")  # fmt: skip
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(root / "app" / "main.py"),
        "--server.address", "127.0.0.1", "--server.port", str(port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none", "--client.toolbarMode", "minimal",
    ]  # fmt: skip
    with (tmp / "streamlit.log").open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=root, env=environ, stdout=log,
                                stderr=subprocess.STDOUT)  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, proc)
            yield url, proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="session")
def streamlit_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app served on 127.0.0.1, with its own workspace; stopped at the end of the session."""
    tmp = tmp_path_factory.mktemp("server")
    with serve_app(tmp, tmp / "workspace") as (url, _):
        yield url


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A headless Chromium with a fresh user-data dir; skips (or fails in CI) when missing."""
    reason = _browser_missing_reason()
    if reason is not None:
        if os.environ.get("RECIPE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"RECIPE_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser_context: object) -> Iterator[object]:
    from playwright.sync_api import BrowserContext

    assert isinstance(browser_context, BrowserContext)
    page = browser_context.new_page()
    page.set_default_timeout(60_000)
    try:
        yield page
    finally:
        page.close()


def screenshot(page: object, name: str) -> Path:
    """Save a full-page screenshot under tests/e2e/artifacts/ for humans to look at."""
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / f"{name}.png"
    # Streamlit scrolls inside its own container, so "full page" is the viewport: make it tall.
    size = page.viewport_size or {"width": 1400, "height": 1000}
    page.set_viewport_size({"width": size["width"], "height": 2200})
    page.wait_for_timeout(500)
    page.screenshot(path=str(target), full_page=True)
    page.set_viewport_size(size)
    return target


def latencies(
    run_dir: Path, shown: list[tuple[float, int]], *, until_last_shown: bool = False
) -> list[float]:
    """For each metrics flush written while we watched (from the first (time, step) in `shown`,
    and up to the last one with `until_last_shown`): seconds until its step was on screen."""
    text = (run_dir / "metrics.jsonl").read_text()
    lines = text.splitlines()
    if lines and not text.endswith("\n"):
        lines.pop()  # the job is still writing this line: a live file's last line may be partial
    rows = [json.loads(line) for line in lines]
    flushes: dict[float, int] = {}
    for row in rows:
        if row["split"] == "train":
            flushes[row["wall_time"]] = max(flushes.get(row["wall_time"], 0), row["step"] + 1)
    start = shown[0][0]
    end = shown[-1][0] if until_last_shown else float("inf")
    out = []
    for written, step in flushes.items():
        seen = next((t for t, s in shown if s >= step), None)
        if start <= written <= end and seen is not None:
            out.append(max(0.0, seen - written))
    return out
