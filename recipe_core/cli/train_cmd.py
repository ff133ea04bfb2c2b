"""`recipe train`: start a baseline / overfit / input-independent / train job, in this process,
as a local background job (`--detach`), or on a Ray cluster (`--executor ray`).

torch, the data stack and Ray are imported inside the command, so `recipe --help` stays fast;
the help texts below name the presets and built-in models literally for that reason
(tests check they match PRESETS and BUILTIN_MODELS).
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from recipe_core.cli._app import WorkspaceOption, cli, err_console, fail
from recipe_core.cli.check_cmd import PIPELINE_HELP
from recipe_core.errors import ConfigError, RecipeError
from recipe_core.settings import load_settings

if TYPE_CHECKING:
    from recipe_core.train import TrainConfig, TrainEvent
    from recipe_core.train.pipeline import PipelineTrainConfig
    from recipe_core.workspace import Workspace

PRESETS_HELP = "baseline | overfit | input_independent | train."
MODELS_HELP = "linear | mlp | small_cnn | resnet18 (or a plugin's model)."


@cli.command("train")
def train_command(
    dataset: Annotated[
        str | None,
        typer.Argument(
            help="Dataset to train on: an image folder, a manifest, or a cleaned dataset's name."
        ),
    ] = None,
    pipeline: Annotated[str | None, typer.Option(help=PIPELINE_HELP)] = None,
    model: Annotated[str, typer.Option(help=MODELS_HELP)] = "small_cnn",
    preset: Annotated[str, typer.Option(help=PRESETS_HELP)] = "baseline",
    steps: Annotated[int | None, typer.Option(help="Optimizer steps (preset's default).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Images per step.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for weights, order, probe.")] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N.")] = "auto",
    workspace: WorkspaceOption = None,
    detach: Annotated[
        bool, typer.Option("--detach", help="Run as a background job and return at once.")
    ] = False,
    executor: Annotated[
        str | None,
        typer.Option(
            help="local | ray: where a --detach job runs; ray implies --detach "
            "(env RECIPE_EXECUTOR).",
            show_default="local",
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="Ray dashboard (Jobs API) URL, http://HOST:8265 (env RECIPE_RAY_ADDRESS)."
        ),
    ] = None,
    ray_python: Annotated[
        str | None,
        typer.Option(
            help="Python interpreter on the Ray workers (env RECIPE_RAY_PYTHON).",
            show_default="this interpreter",
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    resume: Annotated[
        str | None,
        typer.Option(
            help="Leave run RUN (id or unique prefix) training for --steps more steps, from its "
            "checkpoint, in the same run.",
            metavar="RUN",
        ),
    ] = None,
) -> None:
    """Train your pipeline (--pipeline) or a built-in model on DATASET and record the run;
    prints the run id. With --resume RUN --steps N: continue a finished run instead."""
    from recipe_core.jobs.executors import make_executor

    settings = load_settings()
    try:  # a bad executor choice fails first, before the data and torch are loaded
        runner = make_executor(
            executor, settings=settings, ray_address=ray_address, ray_python=ray_python
        )
    except RecipeError as error:
        raise fail(error) from error
    from recipe_core.cli._datasets import dataset_argument, trained_dataset
    from recipe_core.train import make_config, resolve_device
    from recipe_core.workspace import open_workspace

    if resume is not None:
        _resume(resume, dataset or pipeline, steps, open_workspace(workspace, settings=settings),
                runner if detach or runner.name != "local" else None, json_out)  # fmt: skip
        return
    with training_errors():
        if (dataset is None) == (pipeline is None):
            raise ConfigError(
                "Give either DATASET (an image folder, trained with a built-in "
                "model) or --pipeline FILE.py:NAME (your own pipeline), not both."
            )
        overrides = {k: v for k, v in
                     {"steps": steps, "batch_size": batch_size, "seed": seed}.items()
                     if v is not None}  # fmt: skip
        if pipeline is not None:
            config: TrainConfig | PipelineTrainConfig = _pipeline_config(
                pipeline, preset, device, overrides
            )
        else:
            target = trained_dataset(dataset_argument(dataset or "", workspace))
            config = make_config(target, preset=preset, model=model, device=device,
                                 **overrides)  # fmt: skip
        if runner.name == "local":  # a cluster's devices are checked by its executor
            resolve_device(config.device)
        ws = open_workspace(workspace, settings=settings)
        if detach or runner.name != "local":
            _submit(config, ws, runner, json_out)
            return
        result = _train_here(config, ws, json_out)
    _report({**result.to_dict(), "state": "succeeded"}, json_out)


@contextlib.contextmanager
def training_errors() -> Iterator[None]:
    """Ctrl+C or SIGTERM while training: "cancelled", exit 130; a RecipeError: its message and
    exit code (see `fail`)."""
    from recipe_core.train import JobCancelled

    try:
        yield
    except (KeyboardInterrupt, JobCancelled) as stop:
        err_console.print("cancelled")
        raise typer.Exit(130) from stop
    except RecipeError as error:
        raise fail(error) from error


def _resume(run: str, also: str | None, steps: int | None, ws: Workspace, runner: Any,
            json_out: bool) -> None:  # fmt: skip
    """`--resume RUN --steps N`: here (printing the curve as it goes) or as a job (`runner`)."""
    from recipe_core.jobs.process import cancel_on_sigterm
    from recipe_core.jobs.resume import submit_resume
    from recipe_core.runs import find_run
    from recipe_core.train.resume import resume

    with training_errors():
        if also is not None:
            raise ConfigError("--resume continues an existing run: drop DATASET / --pipeline.")
        if steps is None:
            raise ConfigError("--resume needs --steps N: how many more steps to train.")
        run_dir = find_run(ws, run)
        if runner is not None:
            handle = submit_resume(run_dir, steps, executor=runner)
            summary = {"run_id": handle.run_id, "run_dir": str(handle.run_dir), "state": "queued",
                       "executor": handle.executor, "job_id": handle.job_id}  # fmt: skip
            _report(summary, json_out)
            return
        with cancel_on_sigterm():
            result = resume(run_dir, steps, callbacks=[] if json_out else [_print_event])
    _report({**result.to_dict(), "state": "succeeded"}, json_out)


def _pipeline_config(
    spec: str, preset: str, device: str, overrides: dict[str, Any]
) -> PipelineTrainConfig:
    from recipe_core.data.specs import parse_spec
    from recipe_core.train.pipeline import PipelineTrainConfig

    parse_spec(spec)  # a malformed spec fails before a run exists
    if "batch_size" in overrides:
        raise ConfigError("--batch-size does not apply to a pipeline: its loaders set the batch.")
    return PipelineTrainConfig(spec, preset=preset, device=device, **overrides)


def _submit(
    config: TrainConfig | PipelineTrainConfig, ws: Workspace, runner: Any, json_out: bool
) -> None:
    from recipe_core.jobs.executors import submit_run

    handle = submit_run(config, workspace=ws, executor=runner)
    summary: dict[str, Any] = {
        "run_id": handle.run_id, "run_dir": str(handle.run_dir), "state": "queued",
        "executor": handle.executor, "job_id": handle.job_id,
    }  # fmt: skip
    if handle.executor == "local":
        summary["pid"] = int(handle.job_id)
    _report(summary, json_out)


def _train_here(config: TrainConfig | PipelineTrainConfig, ws: Workspace, json_out: bool) -> Any:
    from recipe_core.jobs.process import cancel_on_sigterm
    from recipe_core.runs import RunWriter
    from recipe_core.train import train
    from recipe_core.train.pipeline import PipelineTrainConfig, pipeline_run_name, train_pipeline
    from recipe_core.train.run import default_run_name

    if isinstance(config, PipelineTrainConfig):
        writer = RunWriter.create(ws, name=pipeline_run_name(config), config=config.to_dict())
        if not json_out:
            typer.echo(writer.run_id)
        with cancel_on_sigterm():
            return train_pipeline(config, run=writer, on_log=None if json_out else _print_log)
    writer = RunWriter.create(ws, name=default_run_name(config), config=config.to_dict())
    if not json_out:
        typer.echo(writer.run_id)
    with cancel_on_sigterm():  # `kill` records `cancelled`, as for a detached job
        return train(config, run=writer, callbacks=[] if json_out else [_print_event])


def _print_log(step: int, loss: float) -> None:
    err_console.print(f"step {step:>6}  train  loss={loss:.4g}", highlight=False)


def _print_event(event: TrainEvent) -> None:
    values = "  ".join(f"{k}={v:.4g}" for k, v in event.metrics.items())
    split = {"train": "train", "eval": "val", "end": "done"}.get(event.kind, event.kind)
    err_console.print(f"step {event.step:>6}  {split:<5}  {values}", highlight=False)


def _report(summary: dict[str, Any], json_out: bool) -> None:
    if json_out:
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                 for k, v in summary.items()}  # fmt: skip
        typer.echo(json.dumps(clean, indent=2))
    elif "val_accuracy" in summary and "images_per_s" not in summary:  # a pipeline run
        typer.echo(
            f"{summary['state']}: {summary['steps']} steps ({summary['stop_reason']}), train loss "
            f"{summary['train_loss']:.4g}, val loss {summary['val_loss']:.4g} "
            f"-> {Path(summary['run_dir'])}"
        )
    elif "val_loss" in summary:
        typer.echo(
            f"{summary['state']}: {summary['steps']} steps ({summary['stop_reason']}), "
            f"train loss {summary['train_loss']:.4g}, val loss {summary['val_loss']:.4g}, "
            f"val accuracy {summary['val_accuracy']:.3f} -> {Path(summary['run_dir'])}"
        )
    else:
        typer.echo(summary["run_id"])
