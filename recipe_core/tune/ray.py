"""Random search on Ray Tune with ASHA early stopping; every trial is still an ordinary run.

The trials are drawn by `space.sample_trials` (so a seed gives the same trials as locally) and
handed to Tune as a grid over trial numbers. Each Tune trial opens its pre-created run
directory (shared filesystem: the workspace must be at the same path on every node), trains
through `recipe_core.train.train` and reports every evaluation to Tune from a callback. ASHA
stops a trial by ending its actor mid-report, so the driver records those runs afterwards as
`cancelled` with "stopped early by ASHA at step N (...)": no run is left `running`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from recipe_core.cluster.connection import gcs_address, import_ray, ray_session
from recipe_core.errors import ConfigError
from recipe_core.runs import RunWriter
from recipe_core.train.config import TrainConfig
from recipe_core.tune.local import TrialDone
from recipe_core.tune.trials import METRICS, Trial

log = logging.getLogger(__name__)


def run_ray(
    trials: Sequence[Trial], *, address: str, metric: str, storage: Path, parallel: int = 1,
    grace_period: int = 1, cpus_per_trial: float = 1.0, on_done: TrialDone | None = None,
) -> None:  # fmt: skip
    """Run `trials` on the Ray cluster at `address` under an ASHA scheduler on `metric`
    (in evaluations: `grace_period` is how many every trial gets before it can be stopped)."""
    address = gcs_address(address)
    for c in trials:
        if c.config.eval_every < 1:
            raise ConfigError(
                f"ASHA compares trials at their evaluations, but trial {c.index} has "
                "eval_every=0 (one evaluation at the end). Set eval_every > 0, or search "
                "without Ray (--executor local)."
            )
    with ray_session(address):
        results = _fit(trials, metric=metric, storage=storage, parallel=parallel,
                       grace_period=grace_period, cpus_per_trial=cpus_per_trial)  # fmt: skip
    for trial in trials:
        state = settle(trial, results.get(trial.index))
        if on_done is not None:
            on_done(trial, state)


def _fit(
    trials: Sequence[Trial], *, metric: str, storage: Path, parallel: int, grace_period: int,
    cpus_per_trial: float,
) -> dict[int, tuple[dict[str, Any], str]]:  # fmt: skip
    """Tune's last result and error text per trial number."""
    ray = import_ray()
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    gpu = _trial_gpus(trials[0].config.device, float(ray.cluster_resources().get("GPU", 0)))
    reports = max(math.ceil(t.config.steps / t.config.eval_every) for t in trials)
    scheduler = ASHAScheduler(
        time_attr="training_iteration", metric=metric, mode=METRICS[metric],
        max_t=max(reports, grace_period), grace_period=grace_period, reduction_factor=2,
    )  # fmt: skip
    plan = [(str(t.run_dir), t.config.to_dict()) for t in trials]
    trainable = tune.with_resources(
        tune.with_parameters(ray_trial, plan=plan), {"cpu": cpus_per_trial, "gpu": gpu}
    )
    tuner = tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search([t.index for t in trials])},
        # reuse_actors: a finished trial's worker (torch already imported) runs the next one.
        tune_config=tune.TuneConfig(
            scheduler=scheduler, max_concurrent_trials=parallel, reuse_actors=True
        ),
        run_config=tune.RunConfig(name=storage.name, storage_path=str(storage.parent), verbose=0),
    )
    with contextlib.redirect_stdout(sys.stderr):  # Tune's progress; stdout is for --json
        grid = tuner.fit()
    out = {}
    for i in range(len(grid)):
        result = grid[i]
        error = "" if result.error is None else f"{type(result.error).__name__}: {result.error}"
        out[int((result.config or {})["trial"])] = (dict(result.metrics or {}), error[:2000])
    return out


def ray_trial(config: Mapping[str, Any], *, plan: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """One Tune trial (runs on a Ray worker): train the planned run, reporting evaluations."""
    from ray import tune

    from recipe_core.train.loop import TrainEvent
    from recipe_core.train.run import train

    run_dir, config_dict = plan[int(config["trial"])]
    train_config = TrainConfig.from_dict(config_dict)
    reported = [-1]

    def report(event: TrainEvent) -> None:
        # The last evaluation is reported after `train` returns, once the run is `succeeded`:
        # ASHA may stop a trial at any report, and a trial stopped then never gets to finish.
        if event.kind == "eval" and event.step < train_config.steps:
            tune.report(_metrics(event.step, event.metrics["loss"], event.metrics["accuracy"]))
            reported[0] = event.step

    handler = logging.FileHandler(Path(run_dir) / "log.txt")  # the Runs page's log tail
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    package = logging.getLogger("recipe_core")
    package.addHandler(handler)
    package.setLevel(logging.INFO)
    try:
        result = train(train_config, run=RunWriter(Path(run_dir)), callbacks=[report])
    finally:
        package.removeHandler(handler)
        handler.close()
    if result.steps != reported[0]:
        tune.report(_metrics(result.steps, result.val_loss, result.val_accuracy))


def settle(trial: Trial, outcome: tuple[dict[str, Any], str] | None) -> str:
    """Record how a trial ended when its run could not (stopped by ASHA, or its actor died);
    return the run's final state."""
    writer = RunWriter(trial.run_dir)
    status = writer.status()
    if status.finished:
        return status.state
    last, error = outcome or ({}, "Ray Tune never reported on this trial")
    if error or "step" not in last:
        return writer.finish("failed", error=f"Ray Tune trial failed: {error}").state
    measured = ", ".join(f"{m} {float(last[m]):.4g}" for m in METRICS if m in last)
    text = f"stopped early by ASHA at step {int(last['step'])} ({measured})"
    return writer.finish("cancelled", error=text).state


def _metrics(step: int, loss: float, accuracy: float) -> dict[str, float]:
    return {"step": step, "val_loss": float(loss), "val_accuracy": float(accuracy)}


def _trial_gpus(device: str, cluster_gpus: float) -> int:
    if device == "cpu":
        return 0
    if device.startswith("cuda") and cluster_gpus < 1:
        raise ConfigError(
            f"The trials ask for device {device!r} but the Ray cluster has no GPUs. Search on "
            "CPU (device=cpu), or add GPU workers to the cluster."
        )
    return 1 if cluster_gpus >= 1 else 0
