"""Local random search: the trials are ordinary local jobs, `parallel` at a time.

Each trial is started by the executor (a `python -m recipe_core.jobs.train_job RUN_DIR` subprocess
for `LocalExecutor`) exactly as `recipe train` starts a run, so a trial is indistinguishable from a
hand-started run apart from its name and tune.json. Stopping the search (Ctrl+C) cancels the trials
still running and leaves the queued ones `cancelled`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from recipe_core.errors import ConfigError
from recipe_core.jobs.executors import Executor, LocalExecutor
from recipe_core.runs import RunFiles, RunWriter, read_status
from recipe_core.tune.trials import Trial

log = logging.getLogger(__name__)

POLL_S = 0.25  # how often running trials are checked: a trial lasts seconds to hours
TrialDone = Callable[[Trial, str], None]  # (trial, final state) as each trial ends


def run_local(
    trials: Sequence[Trial], *, parallel: int = 1, executor: Executor | None = None,
    on_done: TrialDone | None = None,
) -> None:  # fmt: skip
    """Run `trials` as jobs on `executor` (local subprocesses by default), at most `parallel`
    at once, until every one has ended."""
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise ConfigError(f"parallel must be an integer >= 1, got {parallel!r}.")
    judge = executor or LocalExecutor()
    waiting, running = list(trials), list[Trial]()
    try:
        while waiting or running:
            while waiting and len(running) < parallel:
                trial = waiting.pop(0)
                if read_status(RunFiles(trial.run_dir), strict=False).finished:
                    continue  # cancelled while it waited (the search's Cancel): never started
                judge.submit(trial.run_dir)
                log.info("trial %d started: %s (%s)", trial.index, trial.run_id, trial.params)
                running.append(trial)
            time.sleep(POLL_S)
            running = [t for t in running if not _ended(judge, t, on_done)]
    except BaseException:  # Ctrl+C or an executor error: leave no trial running or queued
        _stop(judge, running, waiting)
        raise


def _ended(judge: Executor, trial: Trial, on_done: TrialDone | None) -> bool:
    status = judge.refresh(trial.run_dir)
    if not status.finished:
        return False
    log.info("trial %d %s: %s", trial.index, status.state, trial.run_id)
    if on_done is not None:
        on_done(trial, status.state)
    return True


def _stop(judge: Executor, running: Sequence[Trial], waiting: Sequence[Trial]) -> None:
    for trial in running:
        judge.cancel(Path(trial.run_dir))
    for trial in waiting:
        RunWriter(trial.run_dir).finish("cancelled", error="Cancelled: the search was stopped.")
