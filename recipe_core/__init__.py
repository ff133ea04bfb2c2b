"""Recipe's headless engine. Importing it never imports streamlit (tests enforce this)."""

from __future__ import annotations

__version__ = "0.1.0"

from recipe_core.data import DatasetSource, open_dataset
from recipe_core.errors import ConfigError, DatasetError, RecipeError, RunError
from recipe_core.overview import DatasetOverview, summarize
from recipe_core.workspace import Workspace, open_workspace

__all__ = [
    "ConfigError",
    "DatasetError",
    "DatasetOverview",
    "DatasetSource",
    "RecipeError",
    "RunError",
    "Workspace",
    "__version__",
    "open_dataset",
    "open_workspace",
    "summarize",
]
