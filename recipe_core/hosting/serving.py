"""What `recipe serve` derives from a ServeConfig before starting Streamlit: the refusal to
serve a network without sign-in, the environment of the app process, and the `st.login`
secrets file (0600, inside the workspace, never in the repository).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from recipe_core.errors import ConfigError
from recipe_core.hosting.config import ServeConfig

log = logging.getLogger(__name__)

CONFIG_ENV = "RECIPE_CONFIG"  # absolute path of the TOML: the app reads it to turn hosting on
SERVE_DIR = ".serve"  # inside the workspace, mode 0700: secrets file and generated cookie secret
OVERRIDE_FLAG = "--allow-unauthenticated-network"


class UnauthenticatedNetwork(ConfigError):
    """Serving beyond loopback with nobody signing in, without the explicit override."""


def network_refusal(host: str, *, what: str) -> str:
    """Why serving `host` without sign-in is refused, and the ways out."""
    return (
        f"Refusing to serve on {host} {what}: anyone who can reach this address could start "
        f"jobs and read your datasets. Bind 127.0.0.1, or host it for a team with `recipe "
        f"serve --config recipe.toml` and sign-in; if a proxy in front already authenticates "
        f"every request, pass {OVERRIDE_FLAG}."
    )


def check_network(config: ServeConfig, *, override: bool) -> str | None:
    """None when safe; the loud warning text when overridden; raises when refused."""
    if not config.unauthenticated_network:
        return None
    host = config.server.host
    if not (override or config.server.allow_unauthenticated_network):
        raise UnauthenticatedNetwork(
            network_refusal(host, what='with [auth] provider = "none"')
            + ' (Or configure [auth] provider = "oidc", or set [server] '
            "allow_unauthenticated_network = true.)"
        )
    return unauthenticated_warning(host, config.server.port, config.access.local_role)


def serve_environment(config: ServeConfig, environ: Mapping[str, str]) -> dict[str, str]:
    """The app process's environment: the config's path plus what it derives."""
    env = dict(environ)
    env.pop("RECIPE_DATASET", None)  # in serve mode only [data] roots are reachable
    env.update(
        {
            CONFIG_ENV: str(config.source),
            "RECIPE_WORKSPACE": str(config.workspace.path),
            "RECIPE_DATA_ROOTS": os.pathsep.join(str(r) for r in config.roots),
            "RECIPE_EXECUTOR": config.executor.kind,
            "RECIPE_RAY_ADDRESS": config.executor.ray_address,
            "RECIPE_RUNS_URL": config.workspace.runs_url,
            "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
        }
    )
    if config.plugins is not None:
        env["RECIPE_PLUGINS"] = str(config.plugins)
    else:
        env.pop("RECIPE_PLUGINS", None)
    return env


def auth_secrets(config: ServeConfig, environ: Mapping[str, str]) -> dict[str, str]:
    """The `[auth]` table st.login reads; secrets come from the environment."""
    auth = config.auth
    client_secret = environ.get(auth.client_secret_env, "")
    if not client_secret:
        raise ConfigError(
            f"The OIDC client secret is not set: export {auth.client_secret_env}=... (the "
            "secret from your identity provider's app registration) before `recipe serve`, "
            "or name another variable with [auth] client_secret_env."
        )
    return {
        "redirect_uri": config.server.redirect_uri,
        "cookie_secret": _cookie_secret(config, environ),
        "client_id": auth.client_id,
        "client_secret": client_secret,
        "server_metadata_url": auth.server_metadata_url,
    }


def check_secret_env(config: ServeConfig, environ: Mapping[str, str]) -> None:
    """Raise the error `write_secrets` would, without writing anything (for `--check`)."""
    auth = config.auth
    for name, what in ((auth.client_secret_env, "client secret"), (auth.cookie_secret_env, "")):
        if config.auth_on and name and not environ.get(name):
            raise ConfigError(
                f"${name} is not set: export it before `recipe serve` (it holds the "
                f"{what or 'cookie secret'}; see [auth] in {config.source})."
            )


def write_secrets(config: ServeConfig, environ: Mapping[str, str]) -> Path:
    """Write the st.login secrets to `<workspace>/.serve/secrets.toml` (mode 0600)."""
    table = auth_secrets(config, environ)
    lines = ["[auth]"] + [f"{key} = {json.dumps(value)}" for key, value in table.items()]
    file = _serve_dir(config) / "secrets.toml"
    _write_private(file, "\n".join(lines) + "\n")
    return file


def _cookie_secret(config: ServeConfig, environ: Mapping[str, str]) -> str:
    name = config.auth.cookie_secret_env
    if name:
        if not environ.get(name):
            raise ConfigError(
                f"[auth] cookie_secret_env names {name}, which is not set. Export it (any long "
                'random string, e.g. `python -c "import secrets; print(secrets.token_hex(32))"`) '
                'or set cookie_secret_env = "" to let serve keep one in the workspace.'
            )
        return environ[name]
    file = _serve_dir(config) / "cookie_secret"
    if file.exists():
        return file.read_text().strip()
    value = secrets.token_hex(32)  # kept, so sign-ins survive a restart
    _write_private(file, value + "\n")
    return value


def unauthenticated_warning(host: str, port: int, role: str) -> str:
    return (
        f"UNAUTHENTICATED DASHBOARD on {host}:{port}: no sign-in is configured and the "
        f'override is on, so everyone who can reach this address acts as "{role}". Put an '
        'authenticating proxy in front, or configure [auth] provider = "oidc".'
    )


def _serve_dir(config: ServeConfig) -> Path:
    folder = config.workspace.path / SERVE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    return folder


def _write_private(file: Path, text: str) -> None:
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an older file may have had wider permissions
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def describe(config: ServeConfig) -> list[str]:
    """The effective settings, one `key: value` line each (what `--check` prints)."""
    a, lim = config.access, config.limits
    auth = (
        f"oidc via {config.auth.server_metadata_url} (client {config.auth.client_id}, secret "
        f"from ${config.auth.client_secret_env})"
        if config.auth_on
        else f'none (everyone acts as "{a.local_role}")'
    )
    return [
        f"config: {config.source}",
        f"serve: http://{config.server.host}:{config.server.port}",
        f"public url: {config.server.url} (sign-in redirect {config.server.redirect_uri})",
        f"workspace: {config.workspace.path}  (audit log: {config.audit_file})",
        f"runs url: {config.workspace.runs_url or '(workspace runs/)'}",
        f"data roots: {', '.join(map(str, config.roots))}",
        f"executor: {config.executor.kind} {config.executor.ray_address}".rstrip(),
        f"auth: {auth}",
        f"runners: {', '.join(a.runners) or '(none)'}",
        f"viewers: {', '.join(a.viewers) or '(none)'}",
        f"limits per user: {lim.max_concurrent_jobs} running jobs (runs, checks and scans "
        f"together), {lim.max_steps:,} steps per run, {lim.max_scan_images:,} images per scan, "
        f"{lim.max_check_seconds:,} s per check job",
        f"plugins: {config.plugins or '(none)'}",
    ]
