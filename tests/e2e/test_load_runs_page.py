"""Load: 5 browser sessions watch the Runs page while 4 training jobs run.

A real `streamlit run app/main.py` (local mode, no sign-in) on 127.0.0.1, 4 jobs started through
the engine (`submit_run` + the local executor, at nice 10 and one thread each so they yield to
the server), and 5 Chromium pages on /runs. While the jobs train, every page must keep showing
newer steps, in the live caption and in the plotted loss curve alike, with no exception, error
box, error toast or connection error. The server's CPU and memory (its whole process tree,
from /proc) are sampled every second; the summary goes to stdout and
tests/e2e/artifacts/load_report.txt.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.conftest import REPO_ROOT
from tests.e2e.conftest import (
    ARTIFACTS,
    TRAIN_LAST_STEP,
    latencies,
    screenshot,
    serve_app,
)
from tests.hosting.oidc_fixtures import cancel_unfinished_jobs

pytestmark = pytest.mark.slow

SESSIONS = 5
JOBS = 4
WATCH_S = 30.0  # seconds all pages are watched together once every page shows a live run
JOB_START_S = 120.0  # a fresh job imports torch and decodes 1.8k images on 2 busy cores
CHART_S = 240.0  # a fresh page's first plotly draw on a CI box with four jobs training
T = 30_000  # ms for a page to update
JOB_LIFE_S = 600  # no job outlives this (a busy box takes 4 min to open the 5 pages)
DIGITS = REPO_ROOT / "sample_data" / "digits"
LIVE = re.compile(r"Live: step (\d+) of \d+")
POLL_S = 0.4  # pause between polls of all pages
NO_CAPTION_S = 10.0  # a page without its live caption this long has lost the run
# One round trip per page and poll (a busy box answers each Playwright call slowly): the live
# caption, the newest step plotly drew in the loss chart, and what went wrong.
SNAPSHOT = (
    """() => {
  const all = (sel) => Array.from(document.querySelectorAll(sel));
  const caption = all('[data-testid="stCaptionContainer"]')
    .map(e => e.textContent).find(t => /Live: step \\d+ of \\d+/.test(t)) || null;
  const drawn = ("""
    + TRAIN_LAST_STEP
    + """)();
  const problems = [
    ...all('[data-testid="stException"]').map(e => 'exception: ' + e.textContent.slice(0, 300)),
    ...all('[data-testid="stAlertContentError"]').map(e => 'error: ' + e.textContent.slice(0, 300)),
    ...all('[data-testid="stToast"]').filter(e => /error/i.test(e.textContent))
      .map(e => 'error toast: ' + e.textContent.slice(0, 300)),
  ];
  if (document.body.textContent.includes('Connection error')) problems.push('Connection error');
  return {caption, drawn, problems};
}"""
)
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Server:
    url: str
    pid: int
    workspace: Path
    log: Path
    run_ids: list[str]
    started: float  # time.monotonic() when the jobs were submitted


@pytest.fixture(scope="module")
def load_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The 4 jobs, then the dashboard in local mode on their workspace (the jobs load while the
    server starts); stops both at the end."""
    tmp = tmp_path_factory.mktemp("load")
    workspace = tmp / "workspace"
    started = time.monotonic()
    run_ids = start_jobs(workspace, tmp)
    try:
        with serve_app(tmp, workspace) as (url, pid):
            yield Server(url, pid, workspace, tmp / "streamlit.log", run_ids, started)
    finally:
        cancel_unfinished_jobs(workspace)


def start_jobs(workspace: Path, tmp: Path) -> list[str]:
    """4 long jobs through the engine, each at nice 10 with one torch thread, ended by SIGTERM
    (recorded as cancelled) after JOB_LIFE_S at the latest."""
    from recipe_core.jobs.executors import LocalExecutor, submit_run
    from recipe_core.train import make_config

    python = tmp / "nice-python"
    # `timeout` bounds a job's life even if this test is killed before its teardown cancels it
    python.write_text(f'#!/bin/sh\nexec timeout {JOB_LIFE_S} nice -n 10 {sys.executable} "$@"\n')
    python.chmod(0o755)
    threads = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    executor = LocalExecutor(python=str(python), env=threads)
    run_ids = []
    for i in range(JOBS):
        config = make_config(
            str(DIGITS), preset="baseline", model="mlp", device="cpu", steps=1_000_000,
            seed=i, eval_every=0, dynamics_every=0, checkpoint_every=0,
        )  # fmt: skip
        handle = submit_run(config, workspace=workspace, name=f"load-{i}", executor=executor)
        run_ids.append(handle.run_id)
    return run_ids


@dataclass
class ProcSampler:
    """CPU% and RSS of a process and its descendants, sampled every second from /proc."""

    pid: int
    cpu: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def tree(self) -> list[int]:
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        pids, frontier = [self.pid], [self.pid]
        while frontier:
            frontier = [p for p, parent in parents.items() if parent in frontier]
            pids += frontier
        return pids

    def totals(self) -> tuple[float, float]:
        """(CPU seconds used, resident MiB) over the tree; vanished processes count 0."""
        cpu_s = rss = 0.0
        for pid in self.tree():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
            cpu_s += (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
            rss += pages * PAGE_SIZE / 2**20
        return cpu_s, rss

    def run(self) -> None:
        last_cpu, _ = self.totals()
        last = time.monotonic()
        while not self.stop.wait(1.0):
            cpu_s, rss = self.totals()
            now = time.monotonic()
            self.cpu.append(100.0 * (cpu_s - last_cpu) / (now - last))
            self.rss_mib.append(rss)
            last_cpu, last = cpu_s, now


@dataclass
class Watch:
    """What one page showed: (wall time, step) pairs, curve lengths, the run it follows."""

    page: Page
    run_id: str = ""
    last_live: float | None = None
    shown: list[tuple[float, int]] = field(default_factory=list)
    drawn: list[tuple[float, int]] = field(default_factory=list)  # newest step in the chart


def sample(watch: Watch) -> list[str]:
    """One round trip: the step the live caption shows, the curve's length, and any error
    the page shows (exception, error box, error toast, lost connection)."""
    snap = watch.page.evaluate(SNAPSHOT)
    now = time.time()
    match = LIVE.search(snap["caption"] or "")
    if match:
        watch.shown.append((now, int(match.group(1))))
        watch.last_live = now
    elif now - (watch.last_live or now) > NO_CAPTION_S:
        watch.page.screenshot(path=str(ARTIFACTS / "load_no_live_caption.png"), timeout=60_000)
        return [f"no live caption for {NO_CAPTION_S:.0f} s (see load_no_live_caption.png)"]
    if snap["drawn"] >= 0:
        watch.drawn.append((now, int(snap["drawn"])))
    return [str(problem) for problem in snap["problems"]]


def open_runs_page(context: BrowserContext, url: str) -> Watch:
    page = context.new_page()
    page.set_default_timeout(T)
    page.goto(f"{url}/runs")
    return Watch(page=page)


def wait_live(watch: Watch, run_ids: list[str]) -> None:
    """Until the page follows a training run: its caption and run picker are drawn (under load
    the widgets lag the text by seconds)."""
    picker = watch.page.get_by_role("combobox", name="Run", exact=True)
    expect(watch.page.get_by_text(LIVE).first).to_be_visible(timeout=int(JOB_START_S * 1000))
    expect(picker).to_be_visible(timeout=int(JOB_START_S * 1000))
    label = picker.input_value()
    watch.run_id = next(r for r in run_ids if r in label)
    # A fresh page on a busy box may take tens of seconds to load and run plotly's bundle: the
    # window starts once the loss chart has drawn a train curve.
    watch.page.wait_for_function(
        f"() => ({TRAIN_LAST_STEP})() >= 0", timeout=int(CHART_S * 1000), polling=500
    )


def test_five_sessions_watch_four_training_jobs_live(
    load_server: Server, browser_context: BrowserContext
) -> None:
    watches = [open_runs_page(browser_context, load_server.url) for _ in range(SESSIONS)]
    try:
        watch_sessions(load_server, watches, load_server.run_ids)
    finally:
        for watch in watches:
            watch.page.close()


def watch_sessions(load_server: Server, watches: list[Watch], run_ids: list[str]) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for watch in watches:
        wait_live(watch, run_ids)
    all_live_s = time.monotonic() - load_server.started
    sampler = ProcSampler(load_server.pid)
    thread = threading.Thread(target=sampler.run, daemon=True)
    thread.start()
    seen_problems: list[str] = []
    end = time.monotonic() + WATCH_S
    try:
        while time.monotonic() < end:
            for i, watch in enumerate(watches):
                seen_problems += [f"session {i}: {p}" for p in sample(watch)]
            time.sleep(POLL_S)  # polling flat out would steal the CPU the pages need
    finally:
        sampler.stop.set()
        thread.join()
    try:
        screenshot(watches[0].page, "load_runs_page")
    except PlaywrightTimeout:  # an artifact for humans, not a check: the box may be too busy
        print("load_runs_page screenshot timed out")
    assert not seen_problems, "\n".join(dict.fromkeys(seen_problems))
    lags: list[float] = []
    chart_lags: list[float] = []
    for i, watch in enumerate(watches):
        steps, drawn = sorted({s for _, s in watch.shown}), sorted({s for _, s in watch.drawn})
        polls = f"{len(watch.shown)} polls in {WATCH_S:.0f} s"
        assert len(steps) >= 3, f"session {i} ({watch.run_id}): steps shown {steps}, {polls}"
        # the plotted curve itself keeps growing, not just the caption above it
        assert len(drawn) >= 3, f"session {i} ({watch.run_id}): chart drew steps {drawn}, {polls}"
        print(f"session {i} ({watch.run_id}): caption steps {steps[0]}..{steps[-1]}, "
              f"chart steps {drawn[0]}..{drawn[-1]} ({len(drawn)} redraws)")  # fmt: skip
        run_dir = load_server.workspace / "runs" / watch.run_id
        lags += latencies(run_dir, watch.shown, until_last_shown=True)
        chart_lags += latencies(run_dir, watch.drawn, until_last_shown=True)
    assert lags and chart_lags, "no metrics flush written during the window was seen on a page"
    summary = (
        f"LOAD sessions={SESSIONS} jobs={JOBS} "
        f"server_cpu_mean={statistics.mean(sampler.cpu):.0f}% "
        f"server_cpu_max={max(sampler.cpu):.0f}% "
        f"server_rss_max={max(sampler.rss_mib):.0f}MiB "
        f"update_latency_median={statistics.median(lags):.2f}s "
        f"chart_latency_median={statistics.median(chart_lags):.2f}s"
    )
    load = os.getloadavg()
    detail = (
        f"jobs_submitted_to_all_pages_live={all_live_s:.0f}s "
        f"window={WATCH_S:.0f}s cpu_samples={len(sampler.cpu)} "
        f"page_polls={sum(len(w.shown) for w in watches)} cores={os.cpu_count()} "
        f"update_latency_max={max(lags):.2f}s chart_latency_max={max(chart_lags):.2f}s "
        f"flushes_seen={len(lags)} loadavg_1m={load[0]:.1f} "
        f"runs_watched={sorted({w.run_id for w in watches})}"
    )
    print(f"\n{summary}\n{detail}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "load_report.txt").write_text(f"{summary}\n{detail}\n")
    for run_id in run_ids:
        status = json.loads((load_server.workspace / "runs" / run_id / "status.json").read_text())
        assert status["state"] == "running", f"{run_id}: {status}"
