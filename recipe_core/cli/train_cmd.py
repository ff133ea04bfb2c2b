"""`recipe train`: start a baseline / overfit / input-independent / train job."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer

from recipe_core.cli._app import cli, err_console, fail
from recipe_core.data import open_dataset
from recipe_core.errors import RecipeError
from recipe_core.executors import submit_run
from recipe_core.jobs import cancel_on_sigterm
from recipe_core.runs import RunWriter
from recipe_core.train import PRESETS, JobCancelled, TrainEvent, make_config, resolve_device, train
from recipe_core.train.job import default_run_name
from recipe_core.workspace import open_workspace


@cli.command("train")
def train_command(
    dataset: Annotated[str, typer.Argument(help="Dataset to train on (an image folder).")],
    model: Annotated[str, typer.Option(help="linear | mlp | small_cnn | resnet18.")] = "small_cnn",
    preset: Annotated[str, typer.Option(help=f"{' | '.join(PRESETS)}.")] = "baseline",
    steps: Annotated[int | None, typer.Option(help="Optimizer steps (preset's default).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Images per step.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for weights, order, probe.")] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N.")] = "auto",
    workspace: Annotated[
        str | None,
        typer.Option(
            help="Folder for everything Recipe writes [env: RECIPE_WORKSPACE].",
            show_default="./.recipe",
        ),
    ] = None,
    detach: Annotated[
        bool, typer.Option("--detach", help="Run as a background job and return at once.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Train a built-in model on DATASET and record the run; prints the run id."""
    try:
        overrides = {k: v for k, v in
                     {"steps": steps, "batch_size": batch_size, "seed": seed}.items()
                     if v is not None}  # fmt: skip
        root = open_dataset(dataset).root  # a bad path fails here, before a run exists
        config = make_config(str(root), preset=preset, model=model, device=device, **overrides)
        resolve_device(config.device)
        ws = open_workspace(workspace)
        if detach:
            handle = submit_run(config, workspace=ws)
            _report(
                {
                    "run_id": handle.run_id,
                    "run_dir": str(handle.run_dir),
                    "state": "queued",
                    "pid": int(handle.job_id),
                },
                json_out,
            )
            return
        writer = RunWriter.create(ws, name=default_run_name(config), config=config.to_dict())
        if not json_out:
            typer.echo(writer.run_id)
        with cancel_on_sigterm():  # `kill` records `cancelled`, as for a detached job
            result = train(config, run=writer, callbacks=[] if json_out else [_print_event])
    except (KeyboardInterrupt, JobCancelled) as stop:
        err_console.print("cancelled")
        raise typer.Exit(130) from stop
    except RecipeError as error:
        raise fail(error) from error
    _report({**result.to_dict(), "state": "succeeded"}, json_out)


def _print_event(event: TrainEvent) -> None:
    values = "  ".join(f"{k}={v:.4g}" for k, v in event.metrics.items())
    split = {"train": "train", "eval": "val", "end": "done"}.get(event.kind, event.kind)
    err_console.print(f"step {event.step:>6}  {split:<5}  {values}", highlight=False)


def _report(summary: dict[str, Any], json_out: bool) -> None:
    if json_out:
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                 for k, v in summary.items()}  # fmt: skip
        typer.echo(json.dumps(clean, indent=2))
    elif "val_loss" in summary:
        typer.echo(
            f"{summary['state']}: {summary['steps']} steps ({summary['stop_reason']}), "
            f"train loss {summary['train_loss']:.4g}, val loss {summary['val_loss']:.4g}, "
            f"val accuracy {summary['val_accuracy']:.3f} -> {Path(summary['run_dir'])}"
        )
    else:
        typer.echo(summary["run_id"])
