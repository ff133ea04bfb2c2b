"""The Typer application object and the error boundary shared by every sub-command."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from recipe_core import __version__
from recipe_core.errors import RecipeError
from recipe_core.settings import load_settings

cli = typer.Typer(
    name="recipe",
    help=(
        "Recipe: make neural-net training's silent failures loud.\n\n"
        "Karpathy's 'A Recipe for Training Neural Networks' as a tool: become one with the data, "
        "see exactly what the net sees, run the recipe's sanity checks, start baseline and "
        "overfit jobs, and watch prediction dynamics live."
    ),
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"recipe {__version__}")
        raise typer.Exit()


@cli.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Recipe: make neural-net training's silent failures loud."""


def fail(error: RecipeError) -> typer.Exit:
    """Print a user-facing error (no traceback) and return the exit to raise."""
    err_console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
    user_traceback = getattr(error, "user_traceback", "")  # a PipelineError: the user's lines
    if user_traceback:
        err_console.print(escape(user_traceback), highlight=False, soft_wrap=True, style="dim")
    return typer.Exit(code=2)


def main() -> None:
    """Console-script entry point: a RecipeError becomes a one-line message and exit code 2."""
    try:
        settings = load_settings()
        if settings.plugins:  # the operator's extra models, for train/check/tune by name
            from recipe_core.train.models import load_configured_plugins  # imports torch

            load_configured_plugins(settings)
        cli()
    except RecipeError as error:  # raised outside a command's own handler
        err_console.print(
            f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True
        )
        sys.exit(2)


# The --workspace option every command that reads or writes the workspace shares.
WorkspaceOption = Annotated[
    str | None,
    typer.Option(
        help="Folder for everything Recipe writes (env RECIPE_WORKSPACE).",
        show_default="./.recipe",
    ),
]
