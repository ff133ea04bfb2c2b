"""`recipe`: the command line. Thin wrappers over `recipe_core` functions; no logic lives here.

Each sub-command lives in its own module and registers itself on `cli` (imported explicitly below:
no auto-discovery).
"""

from __future__ import annotations

from recipe_core.cli import app_cmd  # noqa: F401  (registers `recipe app`)
from recipe_core.cli import check_cmd  # noqa: F401  (registers `recipe check`)
from recipe_core.cli import scan_cmd  # noqa: F401  (registers `recipe scan`)
from recipe_core.cli import runs_cmd, train_cmd  # noqa: F401  (`recipe train`, `recipe runs`)
from recipe_core.cli._app import cli, main

__all__ = ["cli", "main"]
