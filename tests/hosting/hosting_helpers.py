"""Shared by the hosting tests: write a recipe.toml from sections."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a TOML basic string


def write_config(folder: Path, sections: dict[str, dict[str, Any]]) -> Path:
    """`folder/recipe.toml` holding `sections` ({"server": {"port": 8501}, ...})."""
    lines = []
    for section, keys in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in keys.items()]
    file = folder / "recipe.toml"
    file.write_text("\n".join(lines) + "\n")
    return file


def base_sections(**override: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A valid no-sign-in loopback config (roots: ./data, workspace: ./ws), with overrides
    merged per section."""
    sections: dict[str, dict[str, Any]] = {
        "server": {"host": "127.0.0.1", "port": 8501},
        "workspace": {"path": "ws"},
        "data": {"roots": ["data"]},
        "auth": {"provider": "none"},
    }
    for section, keys in override.items():
        sections.setdefault(section, {}).update(keys)
    return sections


OIDC = {
    "provider": "oidc",
    "server_metadata_url": "https://accounts.example.com/.well-known/openid-configuration",
    "client_id": "recipe",
    "client_secret_env": "RECIPE_TEST_CLIENT_SECRET",
}
