"""The workspace: the one folder everything Recipe writes lives under.

`./.recipe/` by default; `--workspace DIR` or the `RECIPE_WORKSPACE` environment variable move it.
A `workspace.json` file records the format version so later releases can migrate old workspaces.

Runs may live on shared storage instead (`runs_url`, e.g. s3://bucket/prefix): the argument, else
the `RECIPE_RUNS_URL` environment variable, else a "runs_url" key in workspace.json. The local
`runs/` folder then caches the shared runs (recipe_core/runs/mirror.py). A workspace folder on a
shared filesystem (NFS) needs none of this: every machine that opens it sees the same runs.

Those environment variables come in as a `Settings` (recipe_core/settings.py). `open_workspace`
is a package-face call a script makes without one: then it reads this process's settings once.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from recipe_core.errors import ConfigError
from recipe_core.settings import Settings, load_settings

FORMAT_VERSION = 1  # bump when the on-disk layout changes; `open_workspace` migrates or refuses
DEFAULT_DIRNAME = ".recipe"
ENV_VAR = "RECIPE_WORKSPACE"
VERSION_FILE = "workspace.json"
RUNS_URL_ENV = "RECIPE_RUNS_URL"


@dataclass(frozen=True)
class Workspace:
    root: Path  # absolute path of the workspace folder
    runs_url: str = ""  # shared run storage (fsspec URL); "" keeps runs in `runs/` only

    @property
    def scans(self) -> Path:
        return self.root / "scans"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def datasets(self) -> Path:
        """Named (cleaned) datasets: recipe_core/data/named.py."""
        return self.root / "datasets"

    @property
    def thumbnails(self) -> Path:
        return self.root / "thumbnails"

    def subdir(self, name: str) -> Path:
        """A sub-folder of the workspace, created on demand."""
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def resolve_workspace_path(workspace: str | os.PathLike[str] | None, *, settings: Settings) -> Path:
    """The workspace folder: the argument, else settings.workspace ($RECIPE_WORKSPACE), else
    ./.recipe."""
    chosen = workspace if workspace is not None else settings.workspace or DEFAULT_DIRNAME
    return Path(chosen).expanduser().resolve()


def open_workspace(
    workspace: str | os.PathLike[str] | None = None,
    *,
    runs_url: str | None = None,
    settings: Settings | None = None,
) -> Workspace:
    """Open (creating on first use) the workspace and check its format version; with a runs URL
    (argument, $RECIPE_RUNS_URL or workspace.json), check that storage is usable. `settings`
    give the defaults (None: this process's, `load_settings()`)."""
    settings = settings if settings is not None else load_settings()
    root = resolve_workspace_path(workspace, settings=settings)
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
    marker: dict[str, object] = {}
    if version_file.exists():
        marker = _check_version(version_file)
    else:
        version_file.write_text(json.dumps({"format": FORMAT_VERSION}) + "\n")
    url = runs_url  # "" given explicitly: runs stay local, whatever the environment says
    if url is None:
        url = settings.runs_url or str(marker.get("runs_url") or "")
    if url:
        from recipe_core.runs.storage import check_runs_url  # fsspec only when asked for

        url = check_runs_url(url, settings=settings)
    return Workspace(root=root, runs_url=url)


def _check_version(version_file: Path) -> dict[str, object]:
    try:
        marker: dict[str, object] = json.loads(version_file.read_text())
        found = marker["format"]
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
    return marker
