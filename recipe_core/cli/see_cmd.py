"""`recipe see`: what the net sees in your own pipeline, as pictures plus statistics."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console

from recipe_core.cli._app import cli, fail
from recipe_core.cli.check_cmd import PIPELINE_HELP, check_device
from recipe_core.errors import RecipeError


@cli.command("see")
def see_command(
    pipeline: Annotated[str, typer.Option(help=PIPELINE_HELP)],
    out: Annotated[str, typer.Option(help="Folder for batch_NNN.png and seen.json.")],
    batches: Annotated[int, typer.Option(help="Batches to capture.", min=1, max=32)] = 2,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N.")] = "cpu",
    json_out: Annotated[bool, typer.Option("--json", help="Print seen.json.")] = False,
) -> None:
    """Capture the exact batches model(x) receives in your pipeline, decode them (image grids,
    token text, table rows, waveforms) into PNGs and say what looks wrong.

    Exit code 0 when no warning is a failure, 1 when one is, 2 on bad input.
    """
    try:
        check_device(device)
        from recipe_core.batch.see import see_pipeline
        from recipe_core.data.pipeline import load_pipeline

        report = see_pipeline(load_pipeline(pipeline), out, batches=batches,
                              device=None if device == "auto" else device)  # fmt: skip
    except RecipeError as error:
        raise fail(error) from error
    if json_out:
        typer.echo(json.dumps(report, indent=2))
    else:
        _print(report, out, Console())
    raise typer.Exit(1 if any(w["severity"] == "fail" for w in _warnings(report)) else 0)


def _warnings(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [w for b in report["batches"] for w in b["warnings"]] + list(report["warnings"])


def _print(report: dict[str, Any], out: str, console: Console) -> None:
    for batch in report["batches"]:
        console.print(f"batch {batch['index']}: {batch['layout']} {tuple(batch['shape'])} "
                      f"{batch['dtype']} -> {out}/{batch['picture']}", highlight=False)  # fmt: skip
        for w in batch["warnings"]:
            console.print(f"  [yellow]{w['severity']}[/] {w['code']}: {w['message']}\n"
                          f"    fix: {w['fix']}", highlight=False)  # fmt: skip
    for w in report["warnings"]:
        console.print(f"[yellow]{w['severity']}[/] {w['code']}: {w['message']}", highlight=False)
    if not _warnings(report):
        console.print("[green]nothing looks wrong[/] in these batches.")
