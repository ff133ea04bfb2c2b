"""The only exceptions Recipe raises on bad input.

Every message names the bad value, what would have been valid, and the next step, so the CLI and
the app can show it as-is instead of a traceback.
"""

from __future__ import annotations


class RecipeError(Exception):
    """Base class: bad input or a state the user can fix. The message is user-facing."""


class DatasetError(RecipeError):
    """A dataset path or layout that Recipe cannot read."""


class ConfigError(RecipeError):
    """An invalid option, config value or preset."""


class RunError(RecipeError):
    """A run directory that is missing, malformed or in the wrong state."""
