"""`recipe check`: run the recipe's sanity checks on your own pipeline (`--pipeline SPEC`), or on
a built-in model over an image folder."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from recipe_core.cli._app import WorkspaceOption, cli, err_console, fail
from recipe_core.cli._datasets import dataset_argument
from recipe_core.errors import ConfigError, RecipeError

if TYPE_CHECKING:  # torch, the checks and the models load inside the command: fast `--help`
    from recipe_core.checks import CheckReport

MODELS_HELP = "linear | mlp | small_cnn | resnet18 (or a plugin's model)."
PIPELINE_HELP = "Your pipeline: FILE.py:NAME or package.module:NAME returning recipe_core.Pipeline."

STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim", "error": "magenta"}
DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@cli.command("check")
def check_command(
    dataset: Annotated[
        str | None,
        typer.Argument(
            help="Image folder, manifest or cleaned dataset's name to check (its train split)."
        ),
    ] = None,
    pipeline: Annotated[str | None, typer.Option(help=PIPELINE_HELP)] = None,
    model: Annotated[str, typer.Option(help=MODELS_HELP)] = "small_cnn",
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N.")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed for weights, batch order, checks.")] = 0,
    max_seconds: Annotated[
        float | None,
        typer.Option(
            help="Time budget, s: each check gets a share; the report names those it cut short.",
            min=1,
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Images per batch.", min=2)] = 64,
    image_size: Annotated[int, typer.Option(help="Images are resized to this side, px.")] = 32,
    save: Annotated[
        bool, typer.Option(help="Also save the report to the workspace (the Checks page).")
    ] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Run the recipe's sanity checks (labels, batches, loss at init, overfit one batch, ...)
    on your pipeline (--pipeline) or on a built-in model over an image folder (DATASET).

    Exit code 0 when nothing failed, 1 when a check failed (or crashed), 2 on bad input.
    """
    try:
        check_device(device)
        if (dataset is None) == (pipeline is None):
            raise ConfigError(
                "Give either DATASET (an image folder, checked with a built-in "
                "model) or --pipeline FILE.py:NAME (your own pipeline), not both."
            )
        if pipeline is not None:
            report = _run_pipeline(pipeline, device, seed, max_seconds, json_out)
        else:
            dataset = dataset_argument(dataset or "", workspace)
            report = _run(dataset, model, device, seed, max_seconds, batch_size,
                          image_size, json_out)  # fmt: skip
        if save:
            on = ("", "") if pipeline else (str(Path(str(dataset)).resolve()), model)
            _save(report, pipeline or f"{model} on {dataset}", workspace, json_out, on)
    except RecipeError as error:
        raise fail(error) from error
    if json_out:
        typer.echo(report.to_json(indent=2))
    else:
        print_report(report, Console())
    failed = any(r.status in ("fail", "error") for r in report.results)
    raise typer.Exit(1 if failed else 0)


def _run(
    dataset: str, model: str, device: str, seed: int, max_seconds: float | None,
    batch_size: int, image_size: int, quiet: bool,
) -> CheckReport:  # fmt: skip
    from recipe_core.checks import run_all
    from recipe_core.checks.presets import build_check_inputs

    inputs = build_check_inputs(
        dataset, model, batch_size=batch_size, image_size=image_size, seed=seed
    )
    if not quiet and inputs.skipped:
        err_console.print(f"skipped {inputs.skipped} unreadable files", highlight=False)
    return run_all(
        inputs.factory, inputs.loader, inputs.loss_fn, num_classes=inputs.num_classes,
        device=None if device == "auto" else device, seed=seed, max_seconds=max_seconds,
        progress=None if quiet else _progress,
    )  # fmt: skip


def _run_pipeline(
    spec: str, device: str, seed: int, max_seconds: float | None, quiet: bool
) -> CheckReport:
    from recipe_core.checks import check_pipeline
    from recipe_core.data.pipeline import load_pipeline

    return check_pipeline(load_pipeline(spec), device=None if device == "auto" else device,
                          seed=seed, max_seconds=max_seconds,
                          progress=None if quiet else _progress)  # fmt: skip


def check_device(device: str) -> None:
    if not DEVICE.match(device):
        raise ConfigError(f"Invalid device {device!r}. Use auto, cpu, cuda, cuda:N or mps.")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device} asked for CUDA but none is available; use cpu.")


def _save(
    report: CheckReport, name: str, workspace: str | None, quiet: bool, on: tuple[str, str]
) -> None:
    """`on`: the (dataset, model) a built-in check ran on, ("", "") for a pipeline's."""
    from recipe_core.workspace import open_workspace

    folder = report.save(open_workspace(workspace), name=name, dataset=on[0], model=on[1])
    if not quiet:
        err_console.print(f"report saved: {folder}", highlight=False)


def _progress(done: int, total: int, name: str) -> None:
    if name:
        err_console.print(f"[{done + 1}/{total}] {name}", highlight=False, style="dim")


def print_report(report: CheckReport, console: Console) -> None:
    """A table of checks (status coloured), then the fix for everything not passing."""
    table = Table(show_header=True, header_style="bold", expand=False)
    for column in ("check", "status", "observed", "expected"):
        table.add_column(column, overflow="fold")
    for r in report.results:
        style = STYLE.get(r.status, "")
        observed = r.summary if r.status == "skip" else r.observed
        table.add_row(r.name, f"[{style}]{r.status}[/]", observed, r.expected)
    console.print(table)
    for r in report.results:
        if r.status in ("warn", "fail", "error"):
            console.print(f"\n[{STYLE[r.status]}]{r.status}[/] [bold]{r.name}[/]: {r.summary}")
            if r.fix:
                console.print(f"  fix: {r.fix}", highlight=False)
    if report.cut_short:
        console.print(
            f"\n[yellow]max_seconds cut short[/]: {', '.join(report.cut_short)} (undecided, not "
            "passed); raise --max-seconds or leave it unset.",
            highlight=False,
        )
    counts = ", ".join(f"{n} {s}" for s, n in report.counts().items() if n)
    console.print(f"\n{counts} ({sum(report.seconds.values()):.1f}s on {report.device})")
