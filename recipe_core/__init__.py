"""Recipe's headless engine. Importing it never imports streamlit (tests enforce this)."""

from __future__ import annotations

__version__ = "0.1.0"

from recipe_core.data import DatasetSource, open_dataset
from recipe_core.data.overview import DatasetOverview, summarize
from recipe_core.errors import ConfigError, DatasetError, RecipeError, RunError
from recipe_core.scan import ScanResult, ScanSummary, scan, write_scan
from recipe_core.workspace import Workspace, open_workspace

# Training (torch) and the scan's optional pieces take seconds to import: re-export them lazily
# (PEP 562) so `import recipe_core` stays fast for the dashboard's first page and for
# `recipe --help`. (`scan` itself is eager: `recipe_core.scan.run` must be the function, and an
# imported submodule of the same name would shadow a lazy attribute.)
_LAZY = {
    "ScanIndex": "recipe_core.scan.index",
    "build_index": "recipe_core.scan.index",
    "from_torch_dataset": "recipe_core.data.torch_source",
    "start_run": "recipe_core.train",
    "train": "recipe_core.train",
    "TrainConfig": "recipe_core.train",
    "make_config": "recipe_core.train",
    "PRESETS": "recipe_core.train",
    "RunReader": "recipe_core.runs",
    "RunWriter": "recipe_core.runs",
    "list_runs": "recipe_core.runs",
    "find_run": "recipe_core.runs",
    "read_dynamics": "recipe_core.dynamics.analysis",
    "submit_run": "recipe_core.jobs.executors",
    "run_all": "recipe_core.checks",
    "CheckReport": "recipe_core.checks",
    "CheckResult": "recipe_core.checks",
    "inspect_batch": "recipe_core.batch",
    "BatchTap": "recipe_core.batch",
    "BatchView": "recipe_core.batch",
    "LocalExecutor": "recipe_core.jobs.executors",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'recipe_core' has no attribute {name!r}")


__all__ = [
    "ConfigError",
    "DatasetError",
    "DatasetOverview",
    "DatasetSource",
    "RecipeError",
    "RunError",
    "ScanIndex",
    "ScanResult",
    "ScanSummary",
    "Workspace",
    "__version__",
    "build_index",
    "from_torch_dataset",
    "open_dataset",
    "open_workspace",
    "scan",
    "summarize",
    "write_scan",
]
