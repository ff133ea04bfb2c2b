"""A search's trials as ordinary runs, and the summary read back from their run directories.

Each trial is a run named `tune-<search id>-t03` whose config.json is the trial's plain
`TrainConfig` (so the Runs page's config diff shows exactly the searched fields) and whose
`tune.json` records {search_id, trial, params, metric}. The summary is read from the runs'
files, so it is the same whether the trials ran locally or on Ray.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from recipe_core.errors import ConfigError, RunError
from recipe_core.runs import RunReader, RunWriter
from recipe_core.train.config import TrainConfig
from recipe_core.workspace import Workspace

METRICS = {"val_loss": "min", "val_accuracy": "max"}  # what a search may optimise -> its mode
TUNE_FILE = "tune.json"


@dataclass(frozen=True)
class Trial:
    index: int  # 0-based trial number
    params: dict[str, Any]  # the sampled values
    config: TrainConfig  # base config with `params` on top
    run_dir: Path  # the trial's run directory (created `queued`)

    @property
    def run_id(self) -> str:
        return self.run_dir.name


@dataclass(frozen=True)
class TrialResult:
    trial: int
    params: dict[str, Any]
    run_id: str
    state: str  # the run's final state: succeeded | failed | cancelled
    best: float  # best value of the search metric over the run's evaluations; nan if none
    steps: int  # optimizer steps the run got through
    error: str = ""  # why it failed or was stopped


@dataclass(frozen=True)
class TuneResult:
    search_id: str
    metric: str  # "val_loss" | "val_accuracy"
    executor: str  # "local" | "ray"
    trials: tuple[TrialResult, ...] = field(default=())

    @property
    def best(self) -> TrialResult | None:
        """The trial with the best metric (ties: the earlier trial); None if none evaluated."""
        scored = [t for t in self.trials if math.isfinite(t.best)]
        if not scored:
            return None
        sign = 1.0 if METRICS[self.metric] == "min" else -1.0
        return min(scored, key=lambda t: (sign * t.best, t.trial))

    def as_dict(self) -> dict[str, Any]:
        best = self.best
        return {
            "search_id": self.search_id, "metric": self.metric, "executor": self.executor,
            "best_run_id": best.run_id if best else None,
            "trials": [
                {**t.__dict__, "best": t.best if math.isfinite(t.best) else None}
                for t in self.trials
            ],
        }  # fmt: skip


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ConfigError(f"Unknown metric {metric!r}. Choose one of: {', '.join(METRICS)}.")
    return metric


def new_search_id() -> str:
    return secrets.token_hex(3)


def create_trials(
    workspace: Workspace, base: TrainConfig, trials: Sequence[Mapping[str, Any]], *,
    search_id: str, metric: str,
) -> list[Trial]:  # fmt: skip
    """One `queued` run directory per trial, with config.json and tune.json."""
    dataset = Path(base.dataset).expanduser()
    if dataset.exists():  # trials may start in another working directory
        base = replace(base, dataset=str(dataset.resolve()))
    out = []
    for i, params in enumerate(trials):
        config = TrainConfig.from_dict({**base.to_dict(), **params})
        writer = RunWriter.create(
            workspace, name=f"tune-{search_id}-t{i:02d}", config=config.to_dict()
        )
        tune = {"search_id": search_id, "trial": i, "params": dict(params), "metric": metric}
        writer.write_json(TUNE_FILE, tune)
        out.append(Trial(i, dict(params), config, writer.run_dir))
    return out


def read_trial(trial: Trial, metric: str) -> TrialResult:
    """The trial's outcome as its run directory records it."""
    reader = RunReader(trial.run_dir)
    status = reader.status()
    metrics = reader.metrics()
    val = metrics[metrics["split"] == "val"]
    column = metric.removeprefix("val_")
    values = [v for v in val[column].astype(float) if math.isfinite(v)] if len(val) else []
    best = (min if METRICS[metric] == "min" else max)(values) if values else math.nan
    return TrialResult(trial.index, trial.params, trial.run_id, status.state, best,
                       status.step, status.error)  # fmt: skip


def tune_info(run_dir: Path) -> dict[str, Any] | None:
    """The run's tune.json (search id, trial, params), or None for a run outside a search."""
    try:
        data: dict[str, Any] = json.loads((Path(run_dir) / TUNE_FILE).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise RunError(f"{run_dir}/{TUNE_FILE} is unreadable ({exc}).") from exc
    return data
