"""Recipe's headless engine. Importing it never imports streamlit (tests enforce this)."""

from __future__ import annotations

__version__ = "0.1.0"

from recipe_core.data import DatasetSource, open_dataset
from recipe_core.data.torch_source import from_torch_dataset
from recipe_core.errors import ConfigError, DatasetError, RecipeError, RunError
from recipe_core.index import ScanIndex, build_index
from recipe_core.overview import DatasetOverview, summarize
from recipe_core.scan import ScanResult, ScanSummary, scan, write_scan
from recipe_core.workspace import Workspace, open_workspace

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
