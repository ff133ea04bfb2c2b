"""Saved views: a named Browse filter + sort ("worst blurry train images", "review queue"), to
pick again later (FiftyOne's saved views).

    save_view(ws, root, SavedView("dark ones", SampleFilter(issues=("dark",)), "score_dark"))
    [v.name for v in load_views(ws, root)]   # ["dark ones"]

One JSON file per dataset in the workspace, replaced atomically. A view keeps tags by name
(resolved to samples when applied, so a sample tagged later is in the view); it never keeps
`only_ids`, which is that resolution.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from recipe_core.errors import ConfigError
from recipe_core.explore.curation import curation_dir
from recipe_core.explore.query import Range, SampleFilter
from recipe_core.workspace import Workspace

VIEWS_FILE = "views.json"
MAX_NAME = 60  # characters


@dataclass(frozen=True)
class SavedView:
    name: str
    spec: SampleFilter = field(default_factory=SampleFilter)
    sort_by: str | None = None  # None: table order
    descending: bool = True
    tags: tuple[str, ...] = ()  # samples carrying any of these tags (none chosen: all)

    def __post_init__(self) -> None:
        name = " ".join(self.name.split())
        if not name or len(name) > MAX_NAME:
            raise ConfigError(
                f"View name {self.name!r} must have 1 to {MAX_NAME} characters; "
                "e.g. 'review queue'."
            )
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "spec", replace(self.spec, only_ids=None))


def views_file(workspace: Workspace, dataset_root: str | os.PathLike[str]) -> Path:
    return curation_dir(workspace, dataset_root) / VIEWS_FILE


def load_views(workspace: Workspace, dataset_root: str | os.PathLike[str]) -> list[SavedView]:
    """The dataset's saved views, in name order ([] before the first)."""
    path = views_file(workspace, dataset_root)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        views = [view_from_dict(v) for v in raw.get("views", [])]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise ConfigError(
            f"Cannot read the saved views in {path}: {error}. Fix or delete the file."
        ) from error
    return sorted(views, key=lambda v: v.name.lower())


def save_view(
    workspace: Workspace, dataset_root: str | os.PathLike[str], view: SavedView
) -> list[SavedView]:
    """Save `view`, replacing a view of the same name; returns every view."""
    views = [v for v in load_views(workspace, dataset_root) if v.name != view.name] + [view]
    _write(views_file(workspace, dataset_root), views)
    return load_views(workspace, dataset_root)


def delete_view(
    workspace: Workspace, dataset_root: str | os.PathLike[str], name: str
) -> list[SavedView]:
    views = [v for v in load_views(workspace, dataset_root) if v.name != name]
    _write(views_file(workspace, dataset_root), views)
    return views


def view_to_dict(view: SavedView) -> dict[str, Any]:
    """JSON-ready: infinite range ends become None (JSON has no infinity)."""
    spec = asdict(view.spec)
    spec.pop("only_ids")
    for r in spec["ranges"]:
        r["low"] = None if math.isinf(r["low"]) else r["low"]
        r["high"] = None if math.isinf(r["high"]) else r["high"]
    return {"name": view.name, "spec": spec, "sort_by": view.sort_by,
            "descending": view.descending, "tags": list(view.tags)}  # fmt: skip


def view_from_dict(raw: dict[str, Any]) -> SavedView:
    spec = dict(raw.get("spec", {}))
    ranges = tuple(
        Range(str(r["column"]), -math.inf if r["low"] is None else float(r["low"]),
              math.inf if r["high"] is None else float(r["high"]), bool(r["include_high"]))
        for r in spec.pop("ranges", [])
    )  # fmt: skip
    tuples = {k: tuple(spec.pop(k, ())) for k in ("labels", "splits", "issues", "sample_ids")}
    filt = SampleFilter(**tuples, ranges=ranges, min_score=float(spec.get("min_score", 0.0)),
                        path_contains=str(spec.get("path_contains", "")),
                        flagged=spec.get("flagged"))  # fmt: skip
    sort_by = raw.get("sort_by")
    return SavedView(str(raw["name"]), filt, None if sort_by is None else str(sort_by),
                     bool(raw.get("descending", True)), tuple(raw.get("tags", ())))  # fmt: skip


def _write(path: Path, views: list[SavedView]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"version": 1, "views": [view_to_dict(v) for v in views]}
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(body, indent=1, allow_nan=False), encoding="utf-8")
    tmp.replace(path)
