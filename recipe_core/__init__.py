"""Recipe's headless engine. Importing it never imports streamlit (tests enforce this).

The stages, in the order the data flows (one folder each):

    data/      open a dataset: image folder, CSV/Parquet manifest, any torch Dataset
    scan/      dataset -> cached per-sample index -> issues (duplicates, outliers, label errors)
    batch/     the exact tensors model(x) receives, decoded, with what looks wrong
    checks/    the recipe's sanity checks on a model, a loader and a loss
    train/     built-in models, configs, the training loop and what it records on the device
    runs/      the run directory: the single source of truth of a training run
    dynamics/  analyses of what a run recorded (prediction dynamics)
    jobs/      every detached process (scan, checks, training) and executor (local, Ray)
    cluster/   reaching a Ray cluster (address rules, session, Jobs API)
    tune/      random search over training configs, locally or on Ray Tune
    explore/   dashboard services: query, views, curation, thumbnails, checklist
    hosting/   the team server: config, access, limits, audit
    cli/       `recipe ...`

Loose beside them: this face, `errors`, `workspace` and `settings`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

from recipe_core.data import DatasetSource, open_dataset
from recipe_core.data.overview import DatasetOverview, summarize
from recipe_core.errors import ConfigError, DatasetError, PipelineError, RecipeError, RunError
from recipe_core.jobs.state import JobState
from recipe_core.scan import ScanResult, ScanSummary, scan, write_scan
from recipe_core.workspace import Workspace, open_workspace

if TYPE_CHECKING:  # the real types of the lazy exports below, for type checkers and IDEs
    from recipe_core.batch import BatchTap, BatchView, inspect_batch
    from recipe_core.checks import CheckReport, CheckResult, check_pipeline, run_all
    from recipe_core.checks.result import CheckStatus
    from recipe_core.data.pipeline import Pipeline, load_pipeline
    from recipe_core.data.torch_source import from_torch_dataset
    from recipe_core.dynamics import read_dynamics
    from recipe_core.jobs.executors import submit_run
    from recipe_core.jobs.local import LocalExecutor
    from recipe_core.runs import RunReader, RunWriter, find_run, list_runs
    from recipe_core.scan.index import ScanIndex, build_index
    from recipe_core.scan.issues import IssueType
    from recipe_core.train import PRESETS, TrainConfig, make_config, start_run, train

# Training (torch) and the scan's optional pieces take seconds to import: re-export them lazily
# (PEP 562) so `import recipe_core` stays fast for the dashboard's first page and for
# `recipe --help`. (`scan` itself is eager: `recipe_core.scan` must be the function, and an
# imported subpackage of the same name would shadow a lazy attribute.)
_LAZY = {
    "ScanIndex": "recipe_core.scan.index",
    "build_index": "recipe_core.scan.index",
    "IssueType": "recipe_core.scan.issues",
    "from_torch_dataset": "recipe_core.data.torch_source",
    "Pipeline": "recipe_core.data.pipeline",
    "load_pipeline": "recipe_core.data.pipeline",
    "check_pipeline": "recipe_core.checks",
    "start_run": "recipe_core.train",
    "train": "recipe_core.train",
    "TrainConfig": "recipe_core.train",
    "make_config": "recipe_core.train",
    "PRESETS": "recipe_core.train",
    "RunReader": "recipe_core.runs",
    "RunWriter": "recipe_core.runs",
    "list_runs": "recipe_core.runs",
    "find_run": "recipe_core.runs",
    "read_dynamics": "recipe_core.dynamics",
    "submit_run": "recipe_core.jobs.executors",
    "run_all": "recipe_core.checks",
    "CheckReport": "recipe_core.checks",
    "CheckResult": "recipe_core.checks",
    "CheckStatus": "recipe_core.checks.result",
    "inspect_batch": "recipe_core.batch",
    "BatchTap": "recipe_core.batch",
    "BatchView": "recipe_core.batch",
    "LocalExecutor": "recipe_core.jobs.local",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'recipe_core' has no attribute {name!r}")


__all__ = [
    "PRESETS",
    "BatchTap",
    "BatchView",
    "CheckReport",
    "CheckResult",
    "CheckStatus",
    "ConfigError",
    "DatasetError",
    "DatasetOverview",
    "DatasetSource",
    "IssueType",
    "JobState",
    "LocalExecutor",
    "Pipeline",
    "PipelineError",
    "RecipeError",
    "RunError",
    "RunReader",
    "RunWriter",
    "ScanIndex",
    "ScanResult",
    "ScanSummary",
    "TrainConfig",
    "Workspace",
    "__version__",
    "build_index",
    "check_pipeline",
    "find_run",
    "from_torch_dataset",
    "inspect_batch",
    "list_runs",
    "load_pipeline",
    "make_config",
    "open_dataset",
    "open_workspace",
    "read_dynamics",
    "run_all",
    "scan",
    "start_run",
    "submit_run",
    "summarize",
    "train",
    "write_scan",
]
