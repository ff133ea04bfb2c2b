"""The shape of `recipe.toml`: sections, keys, types and defaults, checked before any value
is interpreted (config.py gives the values their meaning)."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from recipe_core.errors import ConfigError

TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", list: "a list"}
SECRET_KEYS = {"client_secret": "client_secret_env", "cookie_secret": "cookie_secret_env"}

# section -> key -> (type, default); a default of ... means required
SCHEMA: dict[str, dict[str, tuple[type, Any]]] = {
    "server": {"host": (str, "127.0.0.1"), "port": (int, 8501), "public_url": (str, ""),
               "allow_unauthenticated_network": (bool, False)},
    "workspace": {"path": (str, ".recipe"), "runs_url": (str, "")},
    "data": {"roots": (list, ...)},
    "executor": {"kind": (str, "local"), "ray_address": (str, "")},
    "auth": {"provider": (str, ...), "server_metadata_url": (str, ""), "client_id": (str, ""),
             "client_secret_env": (str, "RECIPE_OIDC_CLIENT_SECRET"),
             "cookie_secret_env": (str, "")},
    "access": {"runners": (list, []), "viewers": (list, []), "local_role": (str, "runner")},
    "limits": {"max_concurrent_jobs": (int, 2), "max_steps": (int, 20000),
               "max_scan_images": (int, 200000), "max_check_seconds": (int, 600)},
    "plugins": {"folder": (str, "")},
}  # fmt: skip
FREE_TABLES = ("pipelines",)  # name = value tables, checked by their own parser


def checked_values(raw: dict[str, Any], file: Path) -> dict[str, dict[str, Any]]:
    """Every section and key with its type checked and defaults filled in."""
    _refuse_unknown(list(raw), [*SCHEMA, *FREE_TABLES], "section", file)
    out: dict[str, dict[str, Any]] = {}
    for section in FREE_TABLES:
        table = raw.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"[{section}] in {file} must be a table, got {table!r}.")
        out[section] = dict(table)
    for section, keys in SCHEMA.items():
        table = raw.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"[{section}] in {file} must be a table, got {table!r}.")
        for secret, env_key in SECRET_KEYS.items():
            if section == "auth" and secret in table:
                raise ConfigError(
                    f"[auth] {secret} is set in {file}: secrets never sit in the config file. "
                    f"Delete it, put the value in an environment variable and name that "
                    f'variable with {env_key} = "RECIPE_..." instead.'
                )
        _refuse_unknown(list(table), list(keys), f"key in [{section}]", file)
        out[section] = {k: _typed(section, k, table, kind, d) for k, (kind, d) in keys.items()}
    return out


def _typed(section: str, key: str, table: dict[str, Any], kind: type, default: Any) -> Any:
    if key not in table:
        if default is ...:
            raise ConfigError(f"[{section}] {key} is missing: it is required. Add it.")
        return default
    value = table[key]
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok:
        raise ConfigError(
            f"[{section}] {key} = {value!r} must be {TYPE_NAMES[kind]} "
            f"(for example {key} = {_example(kind)!s})."
        )
    if kind is list and not all(isinstance(v, str) for v in value):
        raise ConfigError(f"[{section}] {key} = {value!r} must be a list of strings.")
    return value


def _example(kind: type) -> str:
    return {str: '"..."', int: "2", bool: "false", list: '["..."]'}.get(kind, "...")


def _refuse_unknown(found: list[str], known: list[str], what: str, file: Path) -> None:
    for name in found:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f' Did you mean "{close[0]}"?' if close else ""
            raise ConfigError(
                f"Unknown {what} {name!r} in {file}.{hint} Valid: {', '.join(known)}."
            )
