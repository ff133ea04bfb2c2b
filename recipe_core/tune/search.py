"""`random_search`: the recipe's step 5 ("tune") as a loop of ordinary runs.

    space = parse_space(["lr=loguniform:1e-4:1e-2", "batch_size=choice:32,64"])
    result = random_search(make_config("sample_data/digits", model="mlp"), space, trials=8)
    result.best.run_id        # compare it with the others on the Runs page

Locally the trials are local jobs, `parallel` at a time; with `executor="ray"` they run on Ray
Tune with ASHA early stopping. Either way every trial is a run directory in the workspace.
"""

from __future__ import annotations

import os
from pathlib import Path

from recipe_core.errors import ConfigError
from recipe_core.runs import RunWriter
from recipe_core.train.config import TrainConfig
from recipe_core.train.run import describe_failure
from recipe_core.tune.local import TrialDone, run_local
from recipe_core.tune.space import SearchSpace, check_trials, sample_trials
from recipe_core.tune.trials import (
    Trial,
    TuneResult,
    check_metric,
    create_trials,
    new_search_id,
    read_trial,
)
from recipe_core.workspace import Workspace, open_workspace

EXECUTORS = ("local", "ray")


def random_search(
    base: TrainConfig,
    space: SearchSpace,
    *,
    trials: int = 8,
    seed: int = 0,
    workspace: Workspace | str | os.PathLike[str] | None = None,
    parallel: int = 1,
    metric: str = "val_loss",
    executor: str = "local",
    ray_address: str | None = None,
    grace_period: int = 1,
    cpus_per_trial: float = 1.0,
    on_done: TrialDone | None = None,
) -> TuneResult:
    """Train `trials` configs drawn from `space` (seeded by `seed`) on top of `base`, and
    return each trial's best `metric` ("val_loss" or "val_accuracy") and final state.

    `executor` "local" runs them as local jobs, `parallel` at once; "ray" runs them on Ray
    Tune at `ray_address` with ASHA stopping the worst after `grace_period` evaluations, each
    trial taking `cpus_per_trial` CPUs (and a GPU when the cluster has them and `base.device`
    allows). `on_done(trial, state)` is called as each trial ends.
    """
    check_metric(metric)
    if executor not in EXECUTORS:
        raise ConfigError(
            f"Unknown executor {executor!r}. Choose 'local' (local jobs) or 'ray' (Ray Tune "
            "on a running cluster, with --ray-address)."
        )
    if isinstance(grace_period, bool) or not isinstance(grace_period, int) or grace_period < 1:
        raise ConfigError(f"grace_period must be an integer >= 1, got {grace_period!r}.")
    sampled = sample_trials(space, trials=trials, seed=seed)
    check_trials(base, sampled)
    if executor == "ray":
        from recipe_core.cluster.connection import gcs_address

        ray_address = gcs_address(ray_address)
    ws = workspace if isinstance(workspace, Workspace) else open_workspace(workspace)
    search_id = new_search_id()
    planned = create_trials(ws, base, sampled, search_id=search_id, metric=metric)
    if executor == "ray":
        from recipe_core.tune.ray import run_ray

        storage = Path(ws.root).resolve() / "tune" / search_id
        try:
            run_ray(planned, address=str(ray_address), metric=metric, storage=storage,
                    parallel=parallel, grace_period=grace_period,
                    cpus_per_trial=cpus_per_trial, on_done=on_done)  # fmt: skip
        except BaseException as exc:  # no connection, Ctrl+C: leave no trial `queued`
            _abandon(planned, exc)
            raise
    else:
        run_local(planned, parallel=parallel, on_done=on_done)
    results = tuple(read_trial(t, metric) for t in planned)
    return TuneResult(search_id, metric, executor, results)


def _abandon(planned: list[Trial], exc: BaseException) -> None:
    reason = describe_failure(exc) if isinstance(exc, Exception) else "the search was stopped"
    for trial in planned:
        RunWriter(trial.run_dir).finish("cancelled", error=f"Search ended early: {reason}")
