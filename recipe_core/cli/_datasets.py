"""The DATASET argument of `recipe train/check/scan/see`: a folder, a manifest, or the name of a
cleaned dataset exported into the workspace ("digits (cleaned 2026-12-04 01:02)")."""

from __future__ import annotations

from pathlib import Path

from recipe_core.settings import load_settings


def dataset_argument(dataset: str, workspace: str | None) -> str:
    """The path `dataset` names: itself when it exists, else the manifest of the workspace's
    named dataset with that name, else itself (opening it then says it does not exist). The
    workspace is only read, never created, for this."""
    from recipe_core.data.named import resolve_dataset
    from recipe_core.workspace import Workspace, resolve_workspace_path

    if not dataset or Path(dataset).expanduser().exists():
        return dataset
    root = resolve_workspace_path(workspace, settings=load_settings())
    if not root.is_dir():
        return dataset
    return str(resolve_dataset(dataset, Workspace(root=root)))


def trained_dataset(path: str) -> str:
    """What a run's config records as its dataset: a manifest's absolute path (so the run reads
    exactly the manifest's rows), an image folder's resolved root."""
    from recipe_core.data import open_dataset

    source = open_dataset(path)  # a bad path fails here, before a run exists
    if source.layout == "manifest":
        return str(Path(path).expanduser().resolve())
    return str(source.root)
