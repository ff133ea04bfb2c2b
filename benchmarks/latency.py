"""Issue 17: how long does "Start run" take to show its first curve point? Submits a run on
sample_data/digits on CPU through the local executor and prints, from the submit call, when
status.json first shows each (state, stage) and when metrics.jsonl has its first row, next to
the floor (a bare `python -c pass` spawn) and the target (first row <= 5 s).

    python benchmarks/latency.py

Before issue 17 (quiet machine): running at 5.4 s, first row at 7.5 s; the job imported torch and
torchvision (4.5 s of it, torch._dynamo included) before it wrote anything. After: the job writes
queued/"spawning" at once, running/"starting" once recipe_core is imported (0.7 s) and each stage
as it reaches it; first row 3.9 s on a quiet machine (4.2 s at load 3.6 on 2 cores). What
remains is imports: `import recipe_core` (0.7 s: pandas, and scipy through the eager
recipe_core.scan import in recipe_core/__init__.py) before the job can write anything, torch
(~1.4 s) while "starting", and torch._dynamo (~1.2 s), which every torch.optim optimizer imports
in its add_param_group, in "building model".
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from recipe_core.jobs.executors import LocalExecutor, submit_run
from recipe_core.train.config import make_config
from recipe_core.workspace import open_workspace

TARGET_S = 5.0
DIGITS = Path(__file__).resolve().parents[1] / "sample_data" / "digits"


def spawn_floor() -> float:
    """Seconds to start and end a bare interpreter: no job can report sooner."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


def first_metric(timeout_s: float = 120.0) -> dict[str, float]:
    """(state/stage -> seconds after submit) and "first metrics row" for one run."""
    workspace = open_workspace(tempfile.mkdtemp(prefix="latency-"))
    config = make_config(str(DIGITS), steps=50, device="cpu")
    started = time.perf_counter()
    handle = submit_run(config, workspace=workspace, executor=LocalExecutor())
    seen: dict[str, float] = {}
    metrics = handle.run_dir / "metrics.jsonl"
    while time.perf_counter() - started < timeout_s:
        status = json.loads((handle.run_dir / "status.json").read_text())
        key = "/".join(p for p in (status["state"], status.get("stage", "")) if p)
        seen.setdefault(key, time.perf_counter() - started)
        if metrics.exists() and metrics.stat().st_size:
            seen["first metrics row"] = time.perf_counter() - started
            break
        time.sleep(0.02)
    return seen


def main() -> None:
    floor = spawn_floor()
    seen = first_metric()
    print(f"floor (python -c pass spawn): {floor:.2f} s")
    print("stage timeline (first seen after submit; + the time since the previous entry):")
    previous = 0.0
    for key, seconds in seen.items():
        print(f"{key:>24}: {seconds:6.2f} s  (+{seconds - previous:.2f})")
        previous = seconds
    first = seen.get("first metrics row", float("nan"))
    ratio = f"{first / TARGET_S:.2f}x the target, {first / floor:.0f}x the spawn floor"
    print(f"RESULT start run -> first curve point {first:.2f} s, target {TARGET_S:g} s ({ratio})")


if __name__ == "__main__":
    main()
