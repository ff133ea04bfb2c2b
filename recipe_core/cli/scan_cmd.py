"""`recipe scan`: index a dataset, find its issues, write index.parquet + issues.csv."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from recipe_core.cli._app import cli, err_console, fail
from recipe_core.cli._datasets import dataset_argument
from recipe_core.errors import RecipeError
from recipe_core.scan import ScanProgress, ScanResult, scan

STAGE_LABELS = {"index": "decoding images", "issues": "finding issues"}


@cli.command("scan")
def scan_command(
    dataset: Annotated[
        str,
        typer.Argument(
            help="An image folder, a CSV/Parquet manifest (path,label[,split]), or the name of "
            "a cleaned dataset exported into the workspace."
        ),
    ],
    out: Annotated[
        str | None,
        typer.Option(help="Folder to write index.parquet and issues.csv to (created if needed)."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Decode processes; 0 or 1 decodes in this process.",
            min=0,
            show_default="one per CPU",
        ),
    ] = None,
    workspace: Annotated[
        str | None,
        typer.Option(
            help="Folder for Recipe's cache and runs (env RECIPE_WORKSPACE).",
            show_default="./.recipe",
        ),
    ] = None,
    embedding: Annotated[
        str, typer.Option(help="'default' (offline) or 'resnet18' (weights already on disk).")
    ] = "default",
    no_cache: Annotated[
        bool,
        typer.Option("--no-cache", help="Decode every file; neither read nor write the cache."),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a machine-readable summary on stdout.")
    ] = False,
    executor: Annotated[
        str,
        typer.Option(
            help="Where files are decoded: 'local' (this machine's processes) or 'ray' (Ray "
            "Data on a running cluster; the dataset must be at the same path on every node)."
        ),
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="Ray cluster for --executor ray: its GCS address HOST:PORT, or its dashboard "
            "URL http://HOST:8265 when the GCS is on the default port 6379.",
            envvar="RECIPE_RAY_ADDRESS",
        ),
    ] = None,
    near_threshold: Annotated[
        float,
        typer.Option(
            help="The near-duplicate line in closeness units: 1 is the calibrated default, "
            "0.5 reports only pairs half as far apart (fewer, surer), 1.5 pairs half again as "
            "far (more, less sure). The Issues page shows what each value would report.",
            min=0.25,
            max=2.0,
        ),
    ] = 1.0,
    edited_copies: Annotated[
        bool,
        typer.Option(
            "--edited-copies/--no-edited-copies",
            help="Also find edited copies among images of 48 px or more: recropped, slightly "
            "turned, or under a caption, logo or watermark (up to ~0.5 CPU-ms per image).",
        ),
    ] = True,
) -> None:
    """Scan a dataset for problems: duplicates, leaks, corrupt files, outliers, label issues."""
    try:
        with _progress_bar(enabled=not as_json) as progress:
            result = scan(
                dataset_argument(dataset, workspace), workspace=workspace, workers=workers,
                embedding=embedding,
                progress=progress, out=out, cache=not no_cache, executor=executor,
                ray_address=ray_address, near_threshold=near_threshold,
                edited_copies=edited_copies,
            )  # fmt: skip
    except RecipeError as error:
        raise fail(error) from error
    if as_json:
        payload = {**result.summary.as_dict(), "out": out, "timings": result.timings}
        typer.echo(json.dumps(payload, indent=2))
    else:
        _print_summary(result, out)


@contextmanager
def _progress_bar(*, enabled: bool) -> Iterator[ScanProgress | None]:
    """A rich progress bar on stderr when it is a terminal; no output otherwise."""
    if not enabled or not err_console.is_terminal:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=err_console, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(STAGE_LABELS.get(stage, stage), total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


def _print_summary(result: ScanResult, out: str | None) -> None:
    s = result.summary
    console = Console(highlight=False)
    console.print(
        f"Scanned {s.n_samples} samples in {s.n_classes} classes ({s.layout}) in "
        f"{sum(result.timings.values()):.1f}s: {s.n_decoded} decoded, {s.n_reused} from cache."
    )
    if s.n_skipped:
        console.print(
            f"Skipped {s.n_skipped} files that are not images, e.g. {result.skipped[:3]}."
        )
    for entry in result.index.source.not_followed:
        console.print(f"Did not enter {entry.path}: {entry.reason}.")
    table = Table("issue", "rows", title=f"{s.n_flagged} samples flagged")
    for issue, count in s.issue_counts.items():
        table.add_row(issue, str(count))
    if s.issue_counts:
        console.print(table)
    else:
        console.print("No issues found.")
    if out is not None:
        console.print(f"Wrote {out}/index.parquet and {out}/issues.csv")
