"""The workspace: the one folder everything Recipe writes lives under.

`./.recipe/` by default; `--workspace DIR` or the `RECIPE_WORKSPACE` environment variable move it.
A `workspace.json` file records the format version so later releases can migrate old workspaces.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from recipe_core.errors import ConfigError

FORMAT_VERSION = 1  # bump when the on-disk layout changes; `open_workspace` migrates or refuses
DEFAULT_DIRNAME = ".recipe"
ENV_VAR = "RECIPE_WORKSPACE"
VERSION_FILE = "workspace.json"


@dataclass(frozen=True)
class Workspace:
    root: Path  # absolute path of the workspace folder

    @property
    def scans(self) -> Path:
        return self.root / "scans"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def thumbnails(self) -> Path:
        return self.root / "thumbnails"

    def subdir(self, name: str) -> Path:
        """A sub-folder of the workspace, created on demand."""
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def resolve_workspace_path(workspace: str | os.PathLike[str] | None = None) -> Path:
    """The workspace folder: the argument, else $RECIPE_WORKSPACE, else ./.recipe."""
    chosen = workspace if workspace is not None else os.environ.get(ENV_VAR) or DEFAULT_DIRNAME
    return Path(chosen).expanduser().resolve()


def open_workspace(workspace: str | os.PathLike[str] | None = None) -> Workspace:
    """Open (creating on first use) the workspace and check its format version."""
    root = resolve_workspace_path(workspace)
    if root.exists() and not root.is_dir():
        raise ConfigError(
            f"Workspace path {root} is a file, not a folder. "
            f"Pass --workspace DIR (or set {ENV_VAR}) to a folder Recipe may write to."
        )
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"Cannot create the workspace folder {root}: {exc.strerror}. "
            f"Pass --workspace DIR (or set {ENV_VAR}) to a writable folder."
        ) from exc
    version_file = root / VERSION_FILE
    if version_file.exists():
        _check_version(version_file)
    else:
        version_file.write_text(json.dumps({"format": FORMAT_VERSION}) + "\n")
    return Workspace(root=root)


def _check_version(version_file: Path) -> None:
    try:
        found = json.loads(version_file.read_text())["format"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"{version_file} is not a valid Recipe workspace marker. "
            "Delete it to re-initialise the workspace, or choose another --workspace."
        ) from exc
    if not isinstance(found, int) or found > FORMAT_VERSION:
        raise ConfigError(
            f"Workspace {version_file.parent} has format {found!r}, newer than this Recipe "
            f"understands ({FORMAT_VERSION}). Upgrade Recipe or choose another --workspace."
        )
