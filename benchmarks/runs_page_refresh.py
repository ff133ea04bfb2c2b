"""Server-side cost of the Runs page's live refresh, before and after sharing figures.

    python benchmarks/runs_page_refresh.py                     # 5 sessions, 20k-step run
    python benchmarks/runs_page_refresh.py --steps 100000 --sessions 10

Every second, each session watching a live run rereads its metrics and redraws two plotly
charts (loss, accuracy), which Streamlit serialises to JSON for the browser. This times one
refresh of all sessions, side by side:

  per-session  each session builds its own frame from the rows and its own figures from every
               logged step (what the page did before), then serialises them;
  shared       the run's frame grows by the new rows only (RunReader), the figures are built
               once per new rows for all sessions (run_state's cache), from at most ~MAX_POINTS
               points per trace (curves.decimate); each session only serialises them.

Prints ms per refresh of all sessions, the ratio, and the JSON each session is sent. Then
the run list every refresh starts with, for a workspace of --runs finished runs plus one live
one: reading every status.json vs reading only the unfinished runs' (`finished=` cache).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.io as pio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app import curves


def rows(steps: int, start: int = 0) -> list[dict[str, object]]:
    rng = np.random.default_rng(start)
    out: list[dict[str, object]] = []
    for s in range(start, start + steps):
        loss = float(np.exp(-s / (steps / 4 + 1)) + 0.05 * rng.random())
        out.append({"step": s, "split": "train", "loss": loss, "accuracy": 1 - loss / 3,
                    "lr": 3e-4, "images_per_s": 900.0, "wall_time": 1e9 + s})  # fmt: skip
        if s % 500 == 0:
            out.append({"step": s, "split": "val", "loss": loss, "accuracy": 1 - loss / 3,
                        "lr": 3e-4, "images_per_s": 0.0, "wall_time": 1e9 + s})  # fmt: skip
    return out


def per_session(all_rows: list[dict[str, object]], sessions: int) -> int:
    sent = 0
    for _ in range(sessions):
        frame = pd.DataFrame(all_rows)  # the reader rebuilt its frame from every row
        figs = curves.curve_figures(frame, run_id="r", log_loss=True, max_points=None)
        sent += sum(len(pio.to_json(f, validate=False)) for f in figs.values())
    return sent


def shared(frame: pd.DataFrame, new: list[dict[str, object]], sessions: int) -> int:
    frame = pd.concat([frame, pd.DataFrame(new)], ignore_index=True)  # only the new rows
    figs = curves.curve_figures(frame, run_id="r", log_loss=True)  # once, for every session
    sent = 0
    for _ in range(sessions):
        sent += sum(len(pio.to_json(f.to_dict(), validate=False)) for f in figs.values())
    return sent


def listing(n_runs: int, repeats: int) -> None:
    from recipe_core.jobs.executors import LocalExecutor, refresh_runs
    from recipe_core.runs import FinishedRuns, RunWriter
    from recipe_core.workspace import open_workspace

    with tempfile.TemporaryDirectory() as tmp:
        ws = open_workspace(Path(tmp) / "ws")
        for i in range(n_runs):
            RunWriter.create(ws, name=f"old-{i}", config={}).finish("succeeded")
        RunWriter.create(ws, name="live", config={})  # queued: judged on every refresh
        executor, finished = LocalExecutor(), FinishedRuns()
        refresh_runs(ws, executor, finished=finished)  # the first refresh reads them all
        plain, cached = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            refresh_runs(ws, executor)
            plain.append(1e3 * (time.perf_counter() - t))
            t = time.perf_counter()
            refresh_runs(ws, executor, finished=finished)
            cached.append(1e3 * (time.perf_counter() - t))
    old, cur = statistics.median(plain), statistics.median(cached)
    print(f"run list of {n_runs:,} finished runs + 1 live, per session and refresh:")
    print(f"  every status read:  {old:8.1f} ms")
    print(f"  finished cached:    {cur:8.1f} ms   ratio {old / cur:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20_000, help="steps logged so far")
    parser.add_argument("--sessions", type=int, default=5, help="browser sessions watching")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--runs", type=int, default=500, help="finished runs in the workspace")
    args = parser.parse_args()
    history, new = rows(args.steps), rows(50, start=args.steps)  # 50 new rows a second
    frame = pd.DataFrame(history)
    old_ms, new_ms = [], []
    for _ in range(args.repeats):  # interleaved, so drift in machine load hits both
        t = time.perf_counter()
        old_bytes = per_session(history + new, args.sessions)
        old_ms.append(1e3 * (time.perf_counter() - t))
        t = time.perf_counter()
        new_bytes = shared(frame, new, args.sessions)
        new_ms.append(1e3 * (time.perf_counter() - t))
    old, cur = statistics.median(old_ms), statistics.median(new_ms)
    print(f"{args.sessions} sessions watching a run at step {args.steps:,}, one refresh of all:")
    print(f"  per-session figures: {old:8.1f} ms  ({old_bytes // args.sessions:,} B JSON/session)")
    print(f"  shared figures:      {cur:8.1f} ms  ({new_bytes // args.sessions:,} B JSON/session)")
    print(f"  ratio per-session/shared: {old / cur:.1f}x less server time per refresh")
    listing(args.runs, args.repeats)


if __name__ == "__main__":
    main()
