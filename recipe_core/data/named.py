"""Named datasets: the cleaned exports Recipe opens by name, from the app, the CLI and scripts.

A curated export (`recipe_core.explore.curation.export_dataset`) is a folder
`<workspace>/datasets/<slug>/` holding the manifest (path,label,split with drops removed and
relabels applied), the decision record and `dataset.json`:

    {"format": 1, "name": "digits (cleaned 2026-12-04 01:02)", "manifest": "manifest.csv",
     "root": "/abs/digits", "source": "/abs/digits", "created": "2026-12-04T01:02:03+00:00",
     "rows": 1650, "dropped": 59, "relabelled": 3}

The user's files are never copied or changed: the manifest's paths are relative to "root", the
folder of the originals (recipe_core/data/manifest.py reads it), so samples keep their ids and
the export stays a few kilobytes. Everything that takes a dataset path takes the manifest path;
`resolve_dataset` also takes the name.

    for d in list_datasets(open_workspace()):
        print(d.name, d.rows, d.manifest)       # recipe train "$manifest" works too
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from recipe_core.data.manifest import SIDECAR, is_manifest, read_sidecar
from recipe_core.errors import DatasetError
from recipe_core.workspace import Workspace

log = logging.getLogger(__name__)

FORMAT = 1  # dataset.json's layout version
CLEANED = " (cleaned "  # the name's marker: "<base> (cleaned YYYY-MM-DD HH:MM)"


@dataclass(frozen=True)
class NamedDataset:
    name: str  # what the pickers show and `resolve_dataset` accepts
    manifest: Path  # absolute: pass it wherever a dataset path goes
    source: Path  # the dataset the export was made from (a folder or a manifest)
    root: Path  # folder of the original files; the manifest's paths are relative to it
    created: str  # ISO 8601, UTC
    rows: int  # samples in the manifest (the kept ones)
    dropped: int = 0
    relabelled: int = 0


def datasets_dir(workspace: Workspace) -> Path:
    return workspace.datasets


def list_datasets(workspace: Workspace) -> list[NamedDataset]:
    """Every named dataset of the workspace, newest first; folders whose record or manifest is
    missing or damaged are skipped (and logged)."""
    folder = datasets_dir(workspace)
    found = []
    for sidecar in sorted(folder.glob(f"*/{SIDECAR}")) if folder.is_dir() else []:
        dataset = _from_record(sidecar)
        if dataset is None:
            log.warning("skipping %s: not a complete named-dataset record", sidecar)
        else:
            found.append(dataset)
    return sorted(found, key=lambda d: d.created, reverse=True)


def named_dataset(path: str | os.PathLike[str]) -> NamedDataset | None:
    """The named dataset whose manifest `path` is, else None (a folder or a user's manifest)."""
    manifest = Path(path).expanduser()
    try:
        if not is_manifest(manifest):
            return None
        dataset = _from_record(manifest.parent / SIDECAR)
        same = dataset is not None and dataset.manifest == manifest.resolve()
    except OSError:  # a name too long, a loop of links: not one of ours
        return None
    return dataset if same else None


def find_dataset(workspace: Workspace, name: str) -> NamedDataset:
    """The named dataset called `name` (exact, else the one case-insensitive match)."""
    datasets = list_datasets(workspace)
    exact = [d for d in datasets if d.name == name.strip()]
    loose = [d for d in datasets if d.name.casefold() == name.strip().casefold()]
    chosen = exact or loose
    if len(chosen) == 1:
        return chosen[0]
    names = ", ".join(repr(d.name) for d in datasets) or "none yet"
    raise DatasetError(
        f"No single named dataset {name!r} in the workspace {workspace.root} (named datasets: "
        f"{names}). Export a cleaned dataset from the Issues page, or pass a folder or manifest."
    )


def resolve_dataset(dataset: str | os.PathLike[str], workspace: Workspace) -> Path:
    """What a dataset argument names: an existing folder or manifest as given, else the
    manifest of the named dataset with that name, else the path (opening it then says that it
    does not exist)."""
    path = Path(dataset).expanduser()
    try:
        if path.exists():
            return path
    except OSError:  # e.g. a name too long: opening it says why
        return path
    try:
        return find_dataset(workspace, os.fspath(dataset)).manifest
    except DatasetError:
        return path


def dataset_name(source: str | os.PathLike[str]) -> str:
    """A short name for the dataset at `source`: its folder's name, a manifest's stem (its
    folder's name for a generic `manifest.*`), a named dataset's own base name."""
    path = Path(source)
    named = named_dataset(path)
    if named is not None:
        return named.name.split(CLEANED)[0]
    if path.suffix and path.stem.lower() not in ("manifest", "labels", "index"):
        return path.stem
    return (path.parent.name if path.suffix else path.name) or "dataset"


def new_dataset_folder(workspace: Workspace, base: str, created: datetime) -> tuple[str, Path]:
    """A fresh name "<base> (cleaned YYYY-MM-DD HH:MM)" (numbered when taken) and an empty
    folder for it under the workspace's datasets/."""
    taken = {d.name for d in list_datasets(workspace)}
    name = f"{base}{CLEANED}{created:%Y-%m-%d %H:%M})"
    number = 2
    while name in taken:
        name, number = f"{base}{CLEANED}{created:%Y-%m-%d %H:%M} #{number})", number + 1
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", base)[:40].strip("._") or "dataset"
    stem = datasets_dir(workspace) / f"{slug}-{created:%Y%m%d-%H%M%S}"
    folder, number = stem, 2
    while folder.exists():
        folder, number = Path(f"{stem}-{number}"), number + 1
    folder.mkdir(parents=True)
    return name, folder


def write_record(dataset: NamedDataset) -> Path:
    """Write the dataset's `dataset.json` beside its manifest (last: a listing never sees a
    half-written export)."""
    record = {
        "format": FORMAT, "name": dataset.name, "manifest": dataset.manifest.name,
        "root": str(dataset.root), "source": str(dataset.source), "created": dataset.created,
        "rows": dataset.rows, "dropped": dataset.dropped, "relabelled": dataset.relabelled,
    }  # fmt: skip
    path = dataset.manifest.parent / SIDECAR
    partial = path.with_name(f".{SIDECAR}.partial")
    partial.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)
    return path


def _from_record(sidecar: Path) -> NamedDataset | None:
    record = read_sidecar(sidecar)
    try:
        manifest = (sidecar.parent / str(record["manifest"])).resolve()
        dataset = NamedDataset(
            name=str(record["name"]), manifest=manifest, source=Path(str(record["source"])),
            root=Path(str(record["root"])), created=str(record["created"]),
            rows=int(str(record["rows"])), dropped=int(str(record.get("dropped", 0))),
            relabelled=int(str(record.get("relabelled", 0))),
        )  # fmt: skip
    except (KeyError, ValueError):
        return None
    return dataset if manifest.is_file() and dataset.root.is_absolute() else None
