"""`recipe app`: launch the Streamlit dashboard on this machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Annotated

import typer

from recipe_core.cli._app import WorkspaceOption, cli, err_console, fail
from recipe_core.cli._datasets import dataset_argument, trained_dataset
from recipe_core.data.safe_paths import ROOTS_ENV, checked_roots, parse_roots
from recipe_core.data.specs import checked_pipelines, spec_label
from recipe_core.errors import ConfigError, RecipeError
from recipe_core.hosting.config import is_loopback
from recipe_core.hosting.serving import OVERRIDE_FLAG, network_refusal, unauthenticated_warning
from recipe_core.settings import PIPELINES
from recipe_core.workspace import open_workspace

APP_MAIN = Path(__file__).resolve().parents[2] / "app" / "main.py"
PRIMARY_COLOR = "#0072B2"  # Okabe-Ito blue (app/palette.py), not Streamlit's error-like red
PROJECT_FILE = "recipe.toml"  # a project's own file: its [pipelines] table is offered too


def streamlit_command(app_main: Path, *, host: str, port: int) -> list[str]:
    """The `streamlit run` command line: headless (so no first-run e-mail prompt, even without a
    terminal), no usage statistics, bound to `host`."""
    return [
        sys.executable, "-m", "streamlit", "run", str(app_main),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--global.developmentMode", "false",
        "--client.toolbarMode", "minimal",
        "--theme.primaryColor", PRIMARY_COLOR,
    ]  # fmt: skip


@cli.command("app")
def app(
    dataset: Annotated[
        str | None,
        typer.Argument(
            help="Dataset to open first: an image folder, a manifest or a cleaned dataset's "
            "name. Default: sample_data/digits."
        ),
    ] = None,
    workspace: WorkspaceOption = None,
    port: Annotated[int, typer.Option(help="Port to serve on.", min=1, max=65535)] = 8501,
    host: Annotated[
        str, typer.Option(help="Address to bind. Keep 127.0.0.1 unless you host for a team.")
    ] = "127.0.0.1",
    data_root: Annotated[
        list[str] | None,
        typer.Option(
            "--data-root",
            help="A folder the dashboard may open datasets from (repeatable). The current "
            "directory and sample_data/ are always allowed; other paths are refused "
            f"(env {ROOTS_ENV}).",
        ),
    ] = None,
    pipeline: Annotated[
        list[str] | None,
        typer.Option(
            "--pipeline",
            help="Your pipeline, FILE.py:NAME or module:NAME, offered on the What the net sees, "
            f"Checks and Runs pages (repeatable; a [pipelines] table in ./{PROJECT_FILE} too).",
        ),
    ] = None,
    allow_unauthenticated_network: Annotated[
        bool,
        typer.Option(
            OVERRIDE_FLAG,
            help="Bind a non-loopback --host although `recipe app` has no sign-in (only behind "
            "an authenticating proxy). Logged loudly.",
        ),
    ] = False,
) -> None:
    """Open the Recipe dashboard in your browser (served on 127.0.0.1 by default)."""
    try:
        if not is_loopback(host) and not allow_unauthenticated_network:
            raise ConfigError(network_refusal(host, what="with `recipe app` (it has no sign-in)"))
        env = _app_environment(dataset, workspace, data_root or [])
        env[PIPELINES] = json.dumps(offered_pipelines(pipeline or [], Path.cwd()))
        if not APP_MAIN.exists():
            raise ConfigError(
                f"The dashboard's files are missing ({APP_MAIN}). Install Recipe from a source "
                "checkout with `pip install -e '.[app]'` so the app/ folder is available."
            )
    except RecipeError as error:
        raise fail(error) from error
    if not is_loopback(host):
        warning = unauthenticated_warning(host, port, "runner")
        err_console.print(f"[bold red]WARNING: {warning}[/]", highlight=False, soft_wrap=True)
        env["RECIPE_UNAUTHENTICATED_NETWORK"] = "1"  # the app shows a red banner
    cmd = streamlit_command(APP_MAIN, host=host, port=port)
    typer.echo(f"Recipe dashboard on http://{host}:{port}  (Ctrl+C to stop)")
    try:
        code = subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)


def offered_pipelines(specs: list[str], folder: Path) -> dict[str, str]:
    """{name: spec} of the pipelines `recipe app` offers: the `[pipelines]` table of the
    project's recipe.toml, then each --pipeline (named after its file and function). Checked
    without importing them: the dashboard never imports user code."""
    offered: dict[str, str] = {}
    project = folder / PROJECT_FILE
    if project.is_file():
        try:
            table = tomllib.loads(project.read_text(encoding="utf-8")).get("pipelines", {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{project} is not valid TOML: {exc}. Fix the syntax.") from exc
        if not isinstance(table, dict):
            raise ConfigError(f'[pipelines] in {project} must be a table of name = "spec".')
        offered.update(checked_pipelines(table, folder=folder, where=f"{project} [pipelines]"))
    named = {spec_label(spec): spec for spec in specs}
    offered.update(checked_pipelines(named, folder=folder, where="--pipeline"))
    return offered


def _app_environment(
    dataset: str | None, workspace: str | None, data_roots: list[str]
) -> dict[str, str]:
    """Validate the arguments up front (a bad path fails here, not inside the browser)."""
    env = dict(os.environ)
    env.pop("RECIPE_CONFIG", None)  # `recipe app` is the local mode: never a hosted config
    roots = [*parse_roots(env.get(ROOTS_ENV, "")), *map(str, checked_roots(data_roots))]
    if roots:
        env[ROOTS_ENV] = os.pathsep.join(dict.fromkeys(roots))
    env["RECIPE_WORKSPACE"] = str(open_workspace(workspace).root)
    if dataset is not None:
        env["RECIPE_DATASET"] = trained_dataset(dataset_argument(dataset, workspace))
    env.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
    return env
