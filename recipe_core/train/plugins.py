"""Operator plugins: extra models from Python files in the folder `[plugins] folder` names.

Nothing here is reachable from a browser: the folder comes from the operator's config (served
to every process as $RECIPE_PLUGINS), and the files are loaded once per process when the
model registry is first imported. Each plugin file defines one function:

    # plugins/wide_mlp.py
    from torch import nn

    def build(spec):                      # spec: recipe_core.train.models.ModelSpec
        return nn.Sequential(nn.Flatten(),
                             nn.Linear(spec.in_channels * spec.image_size**2, spec.num_classes))

    def register(add_model):
        add_model("wide_mlp", build)      # the name users pick in the dashboard and CLI

Files are loaded in name order; names starting with "_" are skipped (helpers). A plugin that
fails to import, lacks `register`, or registers a bad name stops the start with an error
naming the file.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recipe_core.errors import ConfigError

log = logging.getLogger(__name__)

PLUGINS_ENV = "RECIPE_PLUGINS"  # the operator's plugin folder, inherited by job processes
NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")

AddModel = Callable[[str, Callable[..., Any]], None]  # what a plugin's register() receives
Register = Callable[[str, Callable[..., Any], str], None]  # (name, builder, source file)


def plugin_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The plugin files of `folder`, in load order."""
    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(
            f"Plugin folder {root} is not an existing folder. Fix [plugins] folder in the "
            "config (or unset $RECIPE_PLUGINS)."
        )
    return sorted(p for p in root.glob("*.py") if p.is_file() and not p.name.startswith("_"))


def load_plugins(folder: str | os.PathLike[str], register_model: Register) -> list[str]:
    """Run every plugin file's `register(add_model)`; returns the model names registered."""
    names: list[str] = []
    for file in plugin_files(folder):
        register = _register_function(file)

        def add(name: str, builder: Callable[..., Any], source: str = str(file)) -> None:
            register_model(name, builder, source)
            names.append(name)

        try:
            register(add)
        except ConfigError as exc:
            raise ConfigError(f"Plugin {file}: {exc}") from exc
        except Exception as exc:  # any error in operator code must name the file
            raise ConfigError(
                f"Plugin {file} failed in register(): {type(exc).__name__}: {exc}. Fix the "
                "file or move it out of the plugins folder."
            ) from exc
        log.info("plugin %s registered %s", file.name, names)
    return names


def _register_function(file: Path) -> Callable[[AddModel], object]:
    spec = importlib.util.spec_from_file_location(f"recipe_plugins.{file.stem}", file)
    if spec is None or spec.loader is None:
        raise ConfigError(f"Plugin {file} cannot be loaded as a Python module. Rename it *.py.")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a broken plugin must name its file
        raise ConfigError(
            f"Plugin {file} failed to import: {type(exc).__name__}: {exc}. Fix the file or "
            "move it out of the plugins folder."
        ) from exc
    register = getattr(module, "register", None)
    if not callable(register):
        raise ConfigError(
            f"Plugin {file} defines no register(add_model) function. Add one that calls "
            'add_model("my_model", build) for each model it provides.'
        )
    return register  # type: ignore[no-any-return]


def check_name(name: object, taken: list[str]) -> str:
    """A plugin model's name: lower-case identifier, not a built-in model's."""
    if not isinstance(name, str) or NAME.fullmatch(name) is None:
        raise ConfigError(
            f"Model name {name!r} is invalid. Use a lower-case identifier such as "
            '"wide_mlp" (letters, digits, _; at most 64 characters).'
        )
    if name in taken:
        raise ConfigError(
            f"Model name {name!r} is already registered ({', '.join(taken)}). Choose another."
        )
    return name
