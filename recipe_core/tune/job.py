"""A random search as a background job: started from the browser (or `recipe tune --detach`),
followed and cancelled while its trials run, listed after an app restart.

    job = start_search(base, parse_space(["lr=loguniform:1e-4:1e-2"]), trials=6, workspace=ws)
    searches(ws)[0].result.best          # read back from the trial runs, at any time
    cancel_search(ws, job.search_id)     # the running trials are cancelled, the queued never start

The trials are created at once, as `queued` runs (so the Runs page lists them from the first
second), then a detached driver process (`python -m recipe_core.tune.job FOLDER`) starts them
`parallel` at a time through the local executor, exactly as `recipe tune` does in the foreground
(`recipe_core.tune.local.run_local`). The search's record lives in `<workspace>/tune/<id>/`:

    search.json   search id, metric, the space as typed, seed, parallel, trial run ids, driver pid
    log.txt       the driver's output
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recipe_core.errors import ConfigError, RunError
from recipe_core.jobs import process
from recipe_core.jobs.owners import record_owner
from recipe_core.runs import RunReader
from recipe_core.train.config import TrainConfig
from recipe_core.tune.local import run_local
from recipe_core.tune.space import SearchSpace, check_trials, sample_trials
from recipe_core.tune.trials import (
    TUNE_FILE,
    Trial,
    TuneResult,
    check_metric,
    create_trials,
    new_search_id,
    read_trial,
)
from recipe_core.workspace import Workspace, open_workspace

log = logging.getLogger(__name__)

SEARCH_FILE = "search.json"
LOG_FILE = "log.txt"
MAX_TRIALS = 64  # one form submission starts at most this many runs
STOP_GRACE_S = 15.0  # the driver cancels its running trials (their own grace: 10 s) on SIGTERM


@dataclass(frozen=True)
class SearchJob:
    search_id: str
    folder: Path  # <workspace>/tune/<search id>
    run_ids: tuple[str, ...]  # the trials, in order


@dataclass(frozen=True)
class SearchSummary:
    """A search as its files say now (`searches`)."""

    search_id: str
    folder: Path
    created: float  # unix time
    space: tuple[str, ...]  # the parameters as typed, e.g. "lr=loguniform:1e-4:1e-2"
    parallel: int
    result: TuneResult  # each trial's state and best metric so far
    driver_alive: bool  # the driver process still runs

    @property
    def finished(self) -> bool:
        return all(t.state in ("succeeded", "failed", "cancelled") for t in self.result.trials)

    @property
    def done(self) -> int:
        return sum(t.state in ("succeeded", "failed", "cancelled") for t in self.result.trials)


def search_root(workspace: Workspace) -> Path:
    return Path(workspace.root) / "tune"


def start_search(
    base: TrainConfig,
    space: SearchSpace,
    *,
    space_text: Sequence[str] = (),
    trials: int = 8,
    seed: int = 0,
    parallel: int = 1,
    metric: str = "val_loss",
    workspace: Workspace | str | os.PathLike[str] | None = None,
    owner: str = "",
    python: str = sys.executable,
) -> SearchJob:
    """Create the trials of a random search over `space` on top of `base` and start the driver
    that runs them (`parallel` at once) in the background; returns at once. `owner` (an
    e-mail) is noted on every trial for the per-user job budget. Fails before creating any run
    on a bad space, metric or count."""
    check_metric(metric)
    if isinstance(trials, bool) or not isinstance(trials, int) or not 1 <= trials <= MAX_TRIALS:
        raise ConfigError(f"trials must be an integer from 1 to {MAX_TRIALS}, got {trials!r}.")
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise ConfigError(f"parallel must be an integer >= 1, got {parallel!r}.")
    sampled = sample_trials(space, trials=trials, seed=seed)
    check_trials(base, sampled)
    ws = workspace if isinstance(workspace, Workspace) else open_workspace(workspace)
    search_id = new_search_id()
    folder = search_root(ws) / search_id
    folder.mkdir(parents=True)
    planned = create_trials(ws, base, sampled, search_id=search_id, metric=metric)
    for trial in planned:
        record_owner(trial.run_dir, owner)
    record = {
        "search_id": search_id, "metric": metric, "space": list(space_text), "seed": seed,
        "parallel": parallel, "created": time.time(), "workspace": str(Path(ws.root).resolve()),
        "run_ids": [t.run_id for t in planned],
    }  # fmt: skip
    _write(folder, record)
    cmd = [python, "-m", "recipe_core.tune.job", str(folder)]
    proc = process.spawn(cmd, folder / LOG_FILE, env=_env())
    process.reap_in_background(proc)
    _write(folder, {**record, "pid": proc.pid, "token": process.process_token(proc.pid)})
    log.info("search %s: %d trials, driver pid %d", search_id, len(planned), proc.pid)
    return SearchJob(search_id, folder, tuple(t.run_id for t in planned))


def searches(workspace: Workspace) -> list[SearchSummary]:
    """Every search of the workspace, newest first; an unreadable record is skipped (logged)."""
    out = []
    for file in search_root(workspace).glob(f"*/{SEARCH_FILE}"):
        try:
            out.append(_summary(workspace, file.parent))
        except (OSError, ValueError, KeyError, TypeError, RunError) as exc:
            log.warning("search %s is unreadable: %s", file.parent.name, exc)
    return sorted(out, key=lambda s: s.created, reverse=True)


def cancel_search(workspace: Workspace, search_id: str) -> SearchSummary:
    """Stop the search: its driver cancels the running trials and the queued ones never start;
    a trial the driver left unfinished (it was killed) is cancelled here."""
    from recipe_core.jobs.executors import executor_for

    folder = search_root(workspace) / _checked_id(search_id)
    record = _read(folder)
    pid, token = int(record.get("pid", 0)), str(record.get("token", ""))
    if process.process_alive(pid, token):
        process.stop_process(pid, token, grace_s=STOP_GRACE_S)
    for run_id in record["run_ids"]:
        run_dir = workspace.runs / run_id
        if run_dir.is_dir() and not RunReader(run_dir).status().finished:
            executor_for(run_dir).cancel(run_dir)
    return _summary(workspace, folder)


def _summary(workspace: Workspace, folder: Path) -> SearchSummary:
    record = _read(folder)
    trials = [_trial(workspace.runs / run_id) for run_id in record["run_ids"]]
    metric = str(record["metric"])
    results = tuple(read_trial(t, metric) for t in trials if t is not None)
    result = TuneResult(str(record["search_id"]), metric, "local", results)
    alive = process.process_alive(int(record.get("pid", 0)), str(record.get("token", "")))
    return SearchSummary(str(record["search_id"]), folder, float(record["created"]),
                         tuple(record.get("space", ())), int(record["parallel"]), result,
                         alive)  # fmt: skip


def _trial(run_dir: Path) -> Trial | None:
    """The trial of a run folder (None when the run was deleted)."""
    if not run_dir.is_dir():
        return None
    info: dict[str, Any] = json.loads((run_dir / TUNE_FILE).read_text())
    config = TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    return Trial(int(info["trial"]), dict(info["params"]), config, run_dir)


def _read(folder: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((folder / SEARCH_FILE).read_text())
    except FileNotFoundError as exc:
        raise RunError(f"No search in {folder}: it was deleted, or the id is wrong.") from exc
    return data


def _write(folder: Path, record: dict[str, Any]) -> None:
    tmp = folder / f".{SEARCH_FILE}.tmp"
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(tmp, folder / SEARCH_FILE)


def _checked_id(search_id: str) -> str:
    if not search_id or not search_id.isalnum():
        raise RunError(f"{search_id!r} is not a search id (a short hex name).")
    return search_id


def _env() -> dict[str, str]:
    """This process's environment (as settings read it), with the package importable from a
    source checkout, as LocalExecutor gives its jobs."""
    from recipe_core.settings import load_settings

    env = {**load_settings().environ, "PYTHONUNBUFFERED": "1"}
    package_parent = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    return env


def drive(folder: Path) -> None:
    """The driver's body: run the search's unfinished trials, `parallel` at a time."""
    record = _read(folder)
    ws = open_workspace(record["workspace"])
    trials = [t for t in (_trial(ws.runs / r) for r in record["run_ids"]) if t is not None]
    log.info("search %s: %d trials, %d at a time", record["search_id"], len(trials),
             record["parallel"])  # fmt: skip
    run_local(trials, parallel=int(record["parallel"]))
    best = TuneResult(record["search_id"], record["metric"], "local",
                      tuple(read_trial(t, record["metric"]) for t in trials)).best  # fmt: skip
    if best is not None and math.isfinite(best.best):
        log.info("best: trial %d (%s), %s %.4g", best.trial, best.run_id, record["metric"],
                 best.best)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a started search's trials.")
    parser.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    return process.run_worker(lambda: drive(args.folder), log=log)


if __name__ == "__main__":
    raise SystemExit(main())
