"""`recipe`: the command line. Thin wrappers over `recipe_core` functions; no logic lives here.

Each sub-command lives in its own module and registers itself on `cli` (imported explicitly below:
no auto-discovery).
"""

from __future__ import annotations

# Each import registers its sub-commands on `cli`: app, check, ensemble, runs, scan, see,
# serve, train, tune.
from recipe_core.cli import (  # noqa: F401
    app_cmd,
    check_cmd,
    ensemble_cmd,
    runs_cmd,
    scan_cmd,
    see_cmd,
    serve_cmd,
    train_cmd,
    tune_cmd,
)
from recipe_core.cli._app import cli, main

__all__ = ["cli", "main"]
