"""The Runs and Prediction dynamics pages in a real browser: start an overfit job on the sample
digits from the form, watch its curve grow while it trains, cancel it, then move the step
slider and press play.

Measures step->screen latency two ways and prints both: (1) from a metrics line's wall_time
(written by the job just before it appends the line) to the moment the page shows that step;
(2) from a slider key press to the updated predictions.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.e2e.conftest import TRAIN_LAST_STEP, latencies, screenshot

T = 30_000  # ms for a page to update: Chromium, the server and the job share 2 busy cores
JOB_START = 180_000  # ms: a fresh process imports torch and decodes 1.8k images first
STEPS = 20_000  # far more than the test watches: it cancels the job, however fast the CPU
LIVE = re.compile(r"Live: step (\d+) of \d+")


def choose(page: Page, label: str, option: str) -> None:
    """Pick the option starting with `option` in the selectbox labelled `label` (the box shows
    the chosen option's text as its value)."""
    box = page.get_by_role("combobox", name=label)
    box.click()
    box.fill(option)
    page.get_by_role("option", name=re.compile(f"^{re.escape(option)}")).first.click()
    expect(box).to_have_value(re.compile(f"^{re.escape(option)}"), timeout=T)
    wait_idle(page)


def wait_idle(page: Page) -> None:
    """Until the rerun a widget change started is over: a change sent during a rerun can be
    undone by that rerun's result on a slow machine."""
    page.wait_for_timeout(300)
    expect(page.get_by_test_id("stStatusWidget")).to_be_hidden(timeout=T)


def set_number(page: Page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    expect(box).to_have_value(value)
    wait_idle(page)


def start_overfit_job(page: Page, server: str) -> None:
    page.goto(f"{server}/runs")
    drawn = page.get_by_text("No runs in this workspace yet").or_(
        page.get_by_role("heading", name="Compare runs")
    )
    expect(drawn.first).to_be_visible(timeout=T)  # the whole page, the form included
    form = page.get_by_test_id("stExpander").filter(has_text="Start a run").locator("details")
    if form.first.get_attribute("open") is None:
        page.get_by_text("Start a run").click()  # folded once the workspace holds runs
    expect(page.get_by_role("combobox", name="Preset")).to_be_visible(timeout=T)
    choose(page, "Preset", "overfit")
    # The preset's own defaults replace the old box; while the rerun draws, the stale box and
    # the new one can both be on the page, so wait for exactly one, holding the new default.
    page.wait_for_function(
        """() => {
            const boxes = [...document.querySelectorAll('input[aria-label="Steps"]')];
            return boxes.length === 1 && boxes[0].value === "1000";
        }""",
        timeout=T,
    )
    choose(page, "Model", "mlp")
    device = page.get_by_test_id("stRadio").filter(has_text="Device")
    device.get_by_text("cpu", exact=True).click()  # a GPU would finish before the test looks
    wait_idle(page)
    set_number(page, "Steps", str(STEPS))
    page.get_by_text("More options").click()
    set_number(page, "Stop once the training loss is below (0: never)", "0")
    page.get_by_role("button", name="Start run").click()


def shown_run_dir(page: Page) -> Path:
    """The run folder the expander shows. The live fragment redraws the page every second, so
    the code block can be replaced between a wait and a read (clean-clone CI read "" twice):
    read it until it names a folder that holds the run's config."""
    expander = page.get_by_test_id("stExpander").filter(has_text="Config, run folder and log")
    code = expander.get_by_test_id("stCode").first
    end = time.monotonic() + T / 1000
    text = ""
    while time.monotonic() < end:
        try:
            text = code.inner_text(timeout=2_000).strip()
        except Exception:  # detached by a redraw: read the new one
            text = ""
        if text.startswith("/") and (Path(text) / "config.json").is_file():
            return Path(text)
        page.wait_for_timeout(100)
    raise AssertionError(f"the run folder shown ({text!r}) holds no config.json")


def watch_live(page: Page, seconds: float) -> tuple[list[tuple[float, int]], list[int]]:
    """Poll the page: (wall time, step shown) pairs and the train curve's newest steps."""
    shown: list[tuple[float, int]] = []
    drawn: list[int] = []
    caption = page.get_by_text(LIVE)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            match = LIVE.search(caption.inner_text(timeout=2_000))
        except Exception:  # the caption is replaced once the job has ended
            break
        if match:
            shown.append((time.time(), int(match.group(1))))
        drawn.append(int(page.evaluate(TRAIN_LAST_STEP)))
        page.wait_for_timeout(40)
    return shown, drawn


def test_overfit_job_grows_live_is_cancelled_and_the_step_slider_moves_predictions(
    streamlit_server: str, page: Page
) -> None:
    start_overfit_job(page, streamlit_server)
    expect(page.get_by_text(LIVE)).to_be_visible(timeout=JOB_START)
    page.get_by_text("Config, run folder and log").click()
    run_dir = shown_run_dir(page)
    config = json.loads((run_dir / "config.json").read_text())  # what the form submitted
    assert (config["model"], config["preset"], config["device"]) == ("mlp", "overfit", "cpu")
    assert (config["steps"], config["target_loss"], config["overfit_examples"]) == (STEPS, 0, 16)
    screenshot(page, "runs_live")  # mid-run: the curve so far
    shown, drawn = watch_live(page, seconds=10)
    grew = sorted(set(drawn))
    print(f"\nnewest train-curve steps drawn while live: {grew}")
    assert len(grew) >= 3 and drawn[-1] > drawn[0], "the curve did not grow live"
    lags = latencies(run_dir, shown)
    assert len(lags) >= 3, f"only {len(lags)} metric flushes were seen on screen"
    print(
        f"metrics line -> screen latency over {len(lags)} flushes: median "
        f"{statistics.median(lags):.2f} s, max {max(lags):.2f} s"
    )
    assert statistics.median(lags) <= 2.0

    page.locator(f".st-key-cancel_{run_dir.name}").get_by_role("button", name="Cancel").click()
    run = page.get_by_role("combobox", name="Run", exact=True)
    expect(run).to_have_value(re.compile(r"· cancelled ·"), timeout=T)
    expect(page.get_by_text(re.compile(r"^cancelled at step \d+: Cancelled"))).to_be_visible()
    assert json.loads((run_dir / "status.json").read_text())["state"] == "cancelled"
    screenshot(page, "runs_cancelled")

    page.get_by_role("link", name="Prediction dynamics").click()
    snapshots = page.get_by_text(re.compile(r"^Snapshot \d+ of \d+"))
    expect(snapshots).to_contain_text(re.compile(r"^Snapshot (\d+) of \1 "), timeout=T)
    right = page.get_by_test_id("stMetric").filter(has_text="Right at this step")
    at_end = right.inner_text()
    slider = page.get_by_role("slider").first
    slider.focus()
    pressed = time.perf_counter()
    page.keyboard.press("Home")  # to the first snapshot: the untrained net
    expect(snapshots).to_contain_text("(step 0)", timeout=T)
    expect(right).not_to_have_text(at_end, timeout=T)
    lag = time.perf_counter() - pressed
    print(f"slider -> predictions latency: {lag:.2f} s ({at_end!r} -> {right.inner_text()!r})")
    assert lag <= 2.0
    screenshot(page, "dynamics_step0")
    page.get_by_text("Play: advance the step slider").click()
    expect(snapshots).to_contain_text("(step 10)", timeout=T)  # playing advances the slider
    screenshot(page, "dynamics_playing")
