"""`recipe serve --config recipe.toml`: host the dashboard for a team (sign-in, roles,
limits, audit log), configured by one validated TOML file. `recipe app` stays the local mode."""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from recipe_core.cli._app import cli, err_console
from recipe_core.cli.app_cmd import APP_MAIN, streamlit_command
from recipe_core.errors import RecipeError
from recipe_core.hosting.audit import AuditLog
from recipe_core.hosting.config import ServeConfig, load_config
from recipe_core.hosting.serving import (
    OVERRIDE_FLAG,
    check_network,
    check_secret_env,
    describe,
    serve_environment,
    write_secrets,
)
from recipe_core.workspace import open_workspace

log = logging.getLogger(__name__)

APP_HOSTED = APP_MAIN.with_name("hosted.py")  # main.py behind the security-header middleware
NO_HEADERS = (
    "This Streamlit has no st.App (1.53 and later, with starlette and uvicorn), so the "
    "dashboard's own responses carry no Content-Security-Policy / X-Frame-Options / "
    "X-Content-Type-Options headers: set them in your reverse proxy (docs/proxy/), or upgrade "
    "with `pip install -U 'streamlit[auth]'`."
)


@cli.command("serve")
def serve(
    config: Annotated[
        Path, typer.Option("--config", help="The recipe.toml to serve (see the README).")
    ],
    allow_unauthenticated_network: Annotated[
        bool,
        typer.Option(
            OVERRIDE_FLAG,
            help="Serve a non-loopback address without sign-in (only behind a proxy that "
            "authenticates). Logged loudly on every start.",
        ),
    ] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Validate, print the effective settings, exit.")
    ] = False,
) -> None:
    """Host the Recipe dashboard for a team: sign-in, roles, limits and an audit log."""
    try:
        cfg = load_config(config)
        warning = check_network(cfg, override=allow_unauthenticated_network)
        _load_plugins(cfg)
        if check:
            check_secret_env(cfg, os.environ)
            _print_check(cfg, warning)
            raise typer.Exit(0)
        open_workspace(cfg.workspace.path)
        env = serve_environment(cfg, os.environ)
        secrets_file = write_secrets(cfg, os.environ) if cfg.auth_on else None
    except RecipeError as error:
        raise _fail(error) from error
    if warning:
        _shout(cfg, warning)
    cmd = streamlit_command(_app_script(), host=cfg.server.host, port=cfg.server.port)
    if secrets_file is not None:
        cmd += ["--secrets.files", str(secrets_file)]
    typer.echo(f"Recipe dashboard for your team on {cfg.server.url}  (Ctrl+C to stop)")
    try:
        code = subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)


def _app_script() -> Path:
    """app/hosted.py when the installed Streamlit has st.App (it adds the security headers),
    else app/main.py and a warning naming where the headers must come from instead."""
    spec = importlib.util.find_spec("streamlit")  # finds the package without importing it
    folder = Path(spec.origin).parent if spec is not None and spec.origin else None
    asgi = all(importlib.util.find_spec(name) for name in ("starlette", "uvicorn"))
    if folder is not None and (folder / "starlette.py").is_file() and asgi:
        return APP_HOSTED
    err_console.print(f"[bold yellow]WARNING:[/] {escape(NO_HEADERS)}", highlight=False)
    log.warning(NO_HEADERS)
    return APP_MAIN


def _fail(error: RecipeError) -> typer.Exit:
    """Print the error and exit 2, like `fail`, but with [section] names kept (not markup)."""
    err_console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _load_plugins(cfg: ServeConfig) -> None:
    """Load the operator's plugins now, so a broken one stops the start naming its file
    (the app and job processes load them again through $RECIPE_PLUGINS)."""
    if cfg.plugins is not None:
        from recipe_core.train.models import load_plugin_folder

        names = load_plugin_folder(cfg.plugins)
        typer.echo(f"plugins: {', '.join(names) or '(no models)'} from {cfg.plugins}")


def _print_check(cfg: ServeConfig, warning: str | None) -> None:
    for line in describe(cfg):
        typer.echo(line)
    if warning:
        err_console.print(
            f"[bold red]WARNING:[/] {escape(warning)}", highlight=False, soft_wrap=True
        )
    typer.echo("config OK")


def _shout(cfg: ServeConfig, warning: str) -> None:
    """The override is on: say so on every start, on the terminal, in the log and the audit."""
    err_console.print(f"[bold red]WARNING: {escape(warning)}[/]", highlight=False, soft_wrap=True)
    log.warning(warning)
    AuditLog(cfg.audit_file).record(
        "operator", "", "serve_unauthenticated", target=cfg.server.host, detail=warning
    )
