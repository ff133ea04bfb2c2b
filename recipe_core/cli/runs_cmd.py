"""`recipe runs list | show ID | logs ID | cancel ID`: inspect and stop recorded runs.

Each run is judged and cancelled by the executor that launched it (job.json: local or Ray), so
these work the same for local and Ray jobs. pandas and Ray load inside the commands.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from recipe_core.cli._app import cli, fail
from recipe_core.cluster.jobs_api import find_token
from recipe_core.errors import RecipeError, RunError
from recipe_core.jobs.executors import DEFAULT_GRACE_S, executor_for, refresh_runs
from recipe_core.runs import RunReader, RunStatus, find_run
from recipe_core.settings import load_settings
from recipe_core.workspace import open_workspace

LOG_BYTES = 2_000_000  # at most this much of log.txt is read for `runs logs`

runs_app = typer.Typer(help="List, inspect and cancel training runs.", no_args_is_help=True)
cli.add_typer(runs_app, name="runs")

WorkspaceOpt = Annotated[
    str | None,
    typer.Option(
        help="Folder for everything Recipe writes (env RECIPE_WORKSPACE).",
        show_default="./.recipe",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
RunIdArg = Annotated[str, typer.Argument(help="Run id (or a unique prefix of one).")]


@runs_app.command("list")
def list_command(workspace: WorkspaceOpt = None, json_out: JsonOpt = False) -> None:
    """Every run in the workspace, newest first (dead jobs are marked failed)."""
    try:
        settings = load_settings()
        statuses = refresh_runs(
            open_workspace(workspace, settings=settings), token=find_token(settings)
        )
    except RecipeError as error:
        raise fail(error) from error
    if json_out:
        typer.echo(json.dumps([asdict(s) for s in statuses], indent=2))
        return
    table = Table()
    table.add_column("run id (UTC start)", no_wrap=True)  # the id must stay copy-pasteable
    for column in ("name", "state", "step", "device"):
        table.add_column(column)
    table.add_column("error", overflow="fold")
    for s in statuses:
        table.add_row(s.run_id, s.name, s.state, str(s.step), s.device, s.error[:80])
    Console().print(table)


@runs_app.command("show")
def show_command(
    run_id: RunIdArg, workspace: WorkspaceOpt = None, json_out: JsonOpt = False
) -> None:
    """Status, config and latest metrics of one run."""
    try:
        settings = load_settings()
        run_dir = find_run(open_workspace(workspace, settings=settings), run_id)
        status = executor_for(run_dir, token=find_token(settings)).refresh(run_dir)
        reader = RunReader(run_dir)
        summary = _summary(status, reader)
    except RecipeError as error:
        raise fail(error) from error
    if json_out:
        typer.echo(json.dumps(summary, indent=2))
        return
    for key in ("run_id", "name", "state", "error", "step", "device", "started", "ended"):
        if summary["status"].get(key) not in ("", None):
            typer.echo(f"{key:>8}: {summary['status'][key]}")
    for split, row in summary["latest"].items():
        values = "  ".join(f"{k}={v:.4g}" for k, v in row.items() if isinstance(v, float))
        typer.echo(f"{split:>8}: step {row['step']}  {values}")
    for name, count in summary["skipped_rows"].items():
        if count:
            what = f"skipped {count} unreadable {name.removesuffix('.jsonl')} rows in {name}"
            typer.echo(f"{'warning':>8}: {what} (not JSON objects with the fields a run writes)")
    typer.echo(f"{'folder':>8}: {summary['run_dir']}")


def _summary(status: RunStatus, reader: RunReader) -> dict[str, Any]:
    metrics = reader.metrics()
    latest: dict[str, dict[str, Any]] = {}
    for split, rows in metrics.groupby("split", sort=True) if len(metrics) else []:
        last = rows.iloc[-1].dropna().to_dict()
        latest[str(split)] = {str(k): _plain(v) for k, v in last.items() if k != "split"}
    return {
        "status": asdict(status),
        "config": reader.config(),
        "latest": latest,
        "metric_rows": len(metrics),
        "skipped_rows": reader.skipped_rows(),
        "run_dir": str(reader.run_dir),
    }


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    return None if isinstance(value, float) and not math.isfinite(value) else value


@runs_app.command("cancel")
def cancel_command(
    run_id: RunIdArg,
    workspace: WorkspaceOpt = None,
    grace: Annotated[float, typer.Option(help="Seconds between SIGTERM and SIGKILL.")] = (
        DEFAULT_GRACE_S
    ),
    json_out: JsonOpt = False,
) -> None:
    """Stop a running job (SIGTERM, then SIGKILL after --grace seconds), local or on Ray."""
    try:
        settings = load_settings()
        run_dir = find_run(open_workspace(workspace, settings=settings), run_id)
        status = executor_for(run_dir, token=find_token(settings)).cancel(run_dir, grace_s=grace)
    except RecipeError as error:
        raise fail(error) from error
    if json_out:
        typer.echo(json.dumps(asdict(status), indent=2))
    else:
        detail = f" ({status.error})" if status.error else ""
        typer.echo(f"{status.run_id}: {status.state}{detail}")


@runs_app.command("logs")
def logs_command(
    run_id: RunIdArg,
    workspace: WorkspaceOpt = None,
    tail: Annotated[int, typer.Option(help="Last N lines; 0 for the whole log.", min=0)] = 50,
) -> None:
    """The job's output (log.txt): the last --tail lines."""
    try:
        run_dir = find_run(open_workspace(workspace), run_id)
        text = RunReader(run_dir).log_tail(max_bytes=LOG_BYTES)
    except RecipeError as error:
        raise fail(error) from error
    except OSError as error:
        raise fail(RunError(f"Cannot read the log of run {run_id}: {error}")) from error
    lines = text.splitlines()
    typer.echo("\n".join(lines[-tail:] if tail else lines))
