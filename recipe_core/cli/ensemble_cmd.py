"""`recipe ensemble RUN RUN ...`: average 2-5 finished runs' probabilities on their validation
split and compare the ensemble with the best single run; the result is saved in the workspace
(ensembles/<id>.json), where the Home checklist and the Ensembles page find it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from recipe_core.cli._app import WorkspaceOption, cli, fail
from recipe_core.errors import RecipeError
from recipe_core.settings import load_settings

if TYPE_CHECKING:  # imported in the command: `recipe --help` must not load torch
    from recipe_core.explore.ensemble import EnsembleResult


@cli.command("ensemble")
def ensemble_command(
    runs: Annotated[
        list[str], typer.Argument(help="2 to 5 finished runs of one dataset (ids or prefixes).")
    ],
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N.")] = "auto",
    workspace: WorkspaceOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Ensemble RUNS (the recipe's "squeeze out the juice"): evaluate each run's best checkpoint
    on the validation split, average the probabilities, and print the ensemble's loss and
    accuracy next to each run's, with the samples only the ensemble gets right."""
    from recipe_core.explore.ensemble import evaluate_ensemble
    from recipe_core.workspace import open_workspace

    try:
        ws = open_workspace(workspace, settings=load_settings())
        result = evaluate_ensemble(ws, runs, device=device)
    except RecipeError as error:
        raise fail(error) from error
    if json_out:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        _print(result)


def _print(result: EnsembleResult) -> None:
    best = result.best
    title = f"ensemble {result.ensemble_id}: {result.val_size} val samples"
    table = Table("", "checkpoint", "val loss", "val accuracy", title=title)
    for m in result.members:
        mark = " (best single)" if m.run_id == best.run_id else ""
        table.add_row(f"{m.run_id}{mark}", f"{m.checkpoint} @ step {m.step}",
                      f"{m.val_loss:.4f}", f"{m.val_accuracy:.2%}")  # fmt: skip
    table.add_row("ensemble (mean of probabilities)", "", f"{result.val_loss:.4f}",
                  f"{result.val_accuracy:.2%}", style="bold")  # fmt: skip
    console = Console(highlight=False)
    console.print(table)
    gain = best.val_loss - result.val_loss
    verdict = "beats" if gain > 0 else "does not beat"
    console.print(
        f"The ensemble {verdict} the best single run ({best.run_id}) on val loss by {gain:+.4f}; "
        f"right on {len(result.better_than_best)} sample(s) it gets wrong, wrong on "
        f"{len(result.worse_than_best)} it gets right."
    )
    only = result.only_ensemble_right
    shown = ", ".join(str(s) for s in only[:20]) + (" ..." if len(only) > 20 else "")
    console.print(f"Only the ensemble gets right ({len(only)}): {shown or 'none'}")
