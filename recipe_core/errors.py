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


class PipelineError(ConfigError):
    """The user's pipeline could not be loaded or used; `user_traceback` holds the lines of the
    user's own code that raised (empty when nothing raised)."""

    def __init__(self, message: str, user_traceback: str = "") -> None:
        super().__init__(message)
        self.user_traceback = user_traceback
