"""`recipe tune`: random search over TrainConfig fields; every trial is an ordinary run."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from recipe_core.cli._app import WorkspaceOption, cli, err_console, fail
from recipe_core.errors import RecipeError

if TYPE_CHECKING:  # imported in the command: `recipe --help` must not load torch
    from recipe_core.train.config import TrainConfig
    from recipe_core.tune import SearchSpace, Trial, TuneResult

PARAM_HELP = (
    "FIELD=DIST:ARGS, repeatable. DIST: loguniform:LOW:HIGH, uniform:LOW:HIGH, randint:LOW:HIGH "
    "(both included), choice:A,B,C. E.g. lr=loguniform:1e-4:1e-2, batch_size=choice:32,64,128, "
    "model=choice:mlp,small_cnn, augment=choice:true,false."
)


@cli.command("tune")
def tune_command(
    dataset: Annotated[
        str,
        typer.Argument(
            help="Dataset to train on: an image folder, a manifest, or a cleaned dataset's name."
        ),
    ],
    param: Annotated[list[str], typer.Option("--param", "-p", help=PARAM_HELP)],
    trials: Annotated[int, typer.Option(help="Trials to draw.", min=1)] = 8,
    seed: Annotated[int, typer.Option(help="Seed of the draw (same seed, same trials).")] = 0,
    model: Annotated[str, typer.Option(help="linear | mlp | small_cnn | resnet18.")] = "small_cnn",
    preset: Annotated[str, typer.Option(help="Preset the trials start from.")] = "baseline",
    fixed: Annotated[
        list[str] | None,
        typer.Option("--set", help="FIELD=VALUE kept fixed for every trial, e.g. steps=200."),
    ] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N.")] = "auto",
    metric: Annotated[str, typer.Option(help="val_loss (lower wins) | val_accuracy.")] = (
        "val_loss"
    ),
    parallel: Annotated[int, typer.Option(help="Trials running at once.", min=1)] = 1,
    executor: Annotated[
        str,
        typer.Option(
            help="'local' (a loop of local jobs) or 'ray' (Ray Tune with ASHA early stopping).",
            envvar="RECIPE_EXECUTOR",
        ),
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="Ray cluster: GCS address HOST:PORT, or dashboard URL (GCS on port 6379).",
            envvar="RECIPE_RAY_ADDRESS",
        ),
    ] = None,
    grace_period: Annotated[
        int, typer.Option(help="Ray: evaluations every trial gets before ASHA may stop it.", min=1)
    ] = 1,
    cpus_per_trial: Annotated[float, typer.Option(help="Ray: CPUs each trial reserves.")] = 1.0,
    workspace: WorkspaceOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    detach: Annotated[
        bool,
        typer.Option(
            help="Local only: start the search in the background and return; follow "
            "it on the Runs page or with `recipe runs list`."
        ),
    ] = False,
) -> None:
    """Random search (the recipe's step 5): train TRIALS configs drawn from the --param space
    and print each trial's best validation metric; compare them on the Runs page."""
    from recipe_core.cli._datasets import dataset_argument, trained_dataset
    from recipe_core.train import make_config, resolve_device
    from recipe_core.tune import parse_overrides, parse_space, random_search

    try:
        space = parse_space(param)
        overrides = {"model": model, "device": device, **parse_overrides(fixed or [])}
        target = trained_dataset(dataset_argument(dataset, workspace))  # fails before any run
        base = make_config(target, preset=preset, **overrides)
        if executor != "ray":
            resolve_device(base.device)
        if detach:
            _detach(base, space, param, trials=trials, seed=seed, parallel=parallel,
                    metric=metric, executor=executor, workspace=workspace,
                    json_out=json_out)  # fmt: skip
            return
        result = random_search(
            base, space, trials=trials, seed=seed, workspace=workspace, parallel=parallel,
            metric=metric, executor=executor, ray_address=ray_address,
            grace_period=grace_period, cpus_per_trial=cpus_per_trial,
            on_done=None if json_out else _print_done,
        )  # fmt: skip
    except KeyboardInterrupt as stop:
        err_console.print("search stopped: running trials cancelled")
        raise typer.Exit(130) from stop
    except RecipeError as error:
        raise fail(error) from error
    if json_out:
        typer.echo(json.dumps(result.as_dict(), indent=2))
    else:
        _print_table(result)


def _detach(
    base: TrainConfig, space: SearchSpace, text: list[str], *, trials: int, seed: int,
    parallel: int, metric: str, executor: str, workspace: str | None, json_out: bool,
) -> None:  # fmt: skip
    from recipe_core.errors import ConfigError
    from recipe_core.tune.job import start_search

    if executor != "local":
        raise ConfigError("--detach runs the search's driver on this machine: use it with "
                          "--executor local (a Ray search runs in the foreground).")  # fmt: skip
    job = start_search(base, space, space_text=text, trials=trials, seed=seed,
                       parallel=parallel, metric=metric, workspace=workspace)  # fmt: skip
    if json_out:
        out = {"search_id": job.search_id, "folder": str(job.folder), "run_ids": list(job.run_ids)}
        typer.echo(json.dumps(out, indent=2))
    else:
        err_console.print(f"search {job.search_id} started: {len(job.run_ids)} trials "
                          f"(log: {job.folder / 'log.txt'})", highlight=False)  # fmt: skip


def _print_done(trial: Trial, state: str) -> None:
    params = ", ".join(f"{k}={v}" for k, v in trial.params.items())
    err_console.print(f"trial {trial.index} {state}: {trial.run_id} ({params})", highlight=False)


def _print_table(result: TuneResult) -> None:
    best = result.best
    table = Table("trial", "params", f"best {result.metric}", "state", "run id",
                  title=f"search {result.search_id} ({result.executor})")  # fmt: skip
    for t in result.trials:
        params = ", ".join(f"{k}={v}" for k, v in t.params.items())
        value = f"{t.best:.4g}" if math.isfinite(t.best) else "-"
        mark = " *" if best is not None and t.run_id == best.run_id else ""
        table.add_row(f"{t.trial}{mark}", params, value, t.state, t.run_id)
    console = Console(highlight=False)
    console.print(table)
    if best is not None:
        console.print(f"Best: trial {best.trial} ({best.run_id}), {result.metric} {best.best:.4g}")
