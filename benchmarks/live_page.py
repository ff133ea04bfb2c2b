"""What a browser following one live run on the Runs page costs, at the page's refresh period
(app/views/runs.py LIVE_S) against a 1 s refresh, side by side.

For each period: one local training job (mlp on sample_data/digits), a real `streamlit run`
of the app (for the baseline, a copy of app/ with LIVE_S = 1.0), one headless Chromium page on
/runs. After the page shows the live run, 20 s are measured: the renderer's busy time (Chrome's
Performance.getMetrics TaskDuration) and the server process's CPU seconds (/proc). A team
dashboard with five viewers pays this five times over.

    python benchmarks/live_page.py        # needs Chromium (tests/e2e/conftest.CHROMIUM)
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
WINDOW_S = 20.0


def measure(root: Path, tmp: Path) -> tuple[float, float]:
    """(renderer busy s, server CPU s) over WINDOW_S for the app of the checkout `root`."""
    from playwright.sync_api import sync_playwright

    from recipe_core.jobs.executors import LocalExecutor, submit_run
    from recipe_core.train import make_config
    from tests.e2e.conftest import CHROMIUM, CHROMIUM_FLAGS, serve_app

    ws = tmp / "workspace"
    executor = LocalExecutor(env={"OMP_NUM_THREADS": "1"})
    config = make_config(str(REPO / "sample_data" / "digits"), preset="baseline", model="mlp",
                         device="cpu", steps=1_000_000, eval_every=0, dynamics_every=0,
                         checkpoint_every=0)  # fmt: skip
    handle = submit_run(config, workspace=ws, name="live", executor=executor)
    try:
        with serve_app(tmp, ws, root=root) as (url, pid), sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                str(tmp / "profile"), executable_path=CHROMIUM, headless=True,
                args=CHROMIUM_FLAGS, viewport={"width": 1400, "height": 1000},
            )  # fmt: skip
            page = context.new_page()
            page.goto(f"{url}/runs")
            page.get_by_text("Live: step").first.wait_for(timeout=180_000)
            page.wait_for_timeout(5_000)  # past the first draw of plotly's bundle
            cdp = context.new_cdp_session(page)
            cdp.send("Performance.enable")
            busy, cpu = _task_s(cdp), _cpu_s(pid)
            time.sleep(WINDOW_S)
            busy, cpu = _task_s(cdp) - busy, _cpu_s(pid) - cpu
            context.close()
    finally:
        executor.cancel(handle.run_dir, grace_s=2)
    return busy, cpu


def _task_s(cdp: object) -> float:
    metrics = cdp.send("Performance.getMetrics")["metrics"]  # type: ignore[attr-defined]
    return float(next(m["value"] for m in metrics if m["name"] == "TaskDuration"))


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    text = (REPO / "app" / "views" / "runs.py").read_text()
    live_s = float(re.search(r"^LIVE_S = ([\d.]+)", text, re.M).group(1))  # type: ignore[union-attr]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        baseline = tmp / "baseline"  # the app at a 1 s refresh; recipe_core is the installed one
        shutil.copytree(REPO / "app", baseline / "app")
        runs = baseline / "app" / "views" / "runs.py"
        runs.write_text(re.sub(r"^LIVE_S = [\d.]+", "LIVE_S = 1.0", text, flags=re.M))
        (tmp / "a").mkdir()
        (tmp / "b").mkdir()
        base_busy, base_cpu = measure(baseline, tmp / "a")
        busy, cpu = measure(REPO, tmp / "b")
    print(f"one page following one live run, {WINDOW_S:.0f} s window:")
    print(f"  refresh 1 s:        renderer busy {base_busy:5.1f} s   server CPU {base_cpu:5.1f} s")
    print(f"  refresh {live_s:g} s (app): renderer busy {busy:5.1f} s   server CPU {cpu:5.1f} s")
    print(f"  ratio: renderer {base_busy / busy:.2f}x less, server {base_cpu / cpu:.2f}x less")


if __name__ == "__main__":
    main()
