"""Per-sample tags ("review", "blurry-but-fine", "ask Ana"): free words a person attaches to
samples while browsing, to find them again (FiftyOne's sample tags).

    add_tag(ws, dataset_root, [12, 40], "review")
    load_tags(ws, dataset_root)           # {12: ("review",), 40: ("review",)}
    tagged(load_tags(ws, root), "review")  # (12, 40)

One JSON file per dataset in the workspace (next to its curation log), replaced atomically;
the dataset's own files are never touched.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from recipe_core.errors import ConfigError
from recipe_core.explore.curation import curation_dir
from recipe_core.workspace import Workspace

TAGS_FILE = "tags.json"
MAX_TAG = 40  # characters: a tag is a word or two, shown as a chip
Tags = dict[int, tuple[str, ...]]  # sample_id -> its tags, sorted


def tags_file(workspace: Workspace, dataset_root: str | os.PathLike[str]) -> Path:
    return curation_dir(workspace, dataset_root) / TAGS_FILE


def load_tags(workspace: Workspace, dataset_root: str | os.PathLike[str]) -> Tags:
    """Every tagged sample's tags ({} before the first tag)."""
    path = tags_file(workspace, dataset_root)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"Cannot read the tags in {path}: {error}. Fix or delete the file."
        ) from error
    return {int(k): tuple(sorted(str(t) for t in v)) for k, v in raw.get("tags", {}).items() if v}


def add_tag(
    workspace: Workspace, dataset_root: str | os.PathLike[str], sample_ids: Iterable[int], tag: str
) -> Tags:
    """Tag `sample_ids` with `tag` (kept once per sample); returns every sample's tags."""
    word = checked_tag(tag)
    tags = load_tags(workspace, dataset_root)
    for sid in sample_ids:
        tags[int(sid)] = tuple(sorted({*tags.get(int(sid), ()), word}))
    _write(tags_file(workspace, dataset_root), tags)
    return tags


def remove_tag(
    workspace: Workspace, dataset_root: str | os.PathLike[str], sample_ids: Iterable[int], tag: str
) -> Tags:
    """Take `tag` off `sample_ids` (a sample left without tags is dropped from the file)."""
    tags = load_tags(workspace, dataset_root)
    for sid in sample_ids:
        rest = tuple(t for t in tags.get(int(sid), ()) if t != tag)
        if rest:
            tags[int(sid)] = rest
        else:
            tags.pop(int(sid), None)
    _write(tags_file(workspace, dataset_root), tags)
    return tags


def tag_names(tags: Mapping[int, tuple[str, ...]]) -> list[str]:
    """Every tag in use, sorted."""
    return sorted({t for ts in tags.values() for t in ts})


def tagged(tags: Mapping[int, tuple[str, ...]], *chosen: str) -> tuple[int, ...]:
    """Sample ids carrying any of `chosen`, ascending."""
    want = set(chosen)
    return tuple(sorted(sid for sid, ts in tags.items() if want.intersection(ts)))


def checked_tag(tag: str) -> str:
    word = " ".join(str(tag).split())  # one line, single spaces
    if not word or len(word) > MAX_TAG:
        raise ConfigError(
            f"Tag {tag!r} is {'empty' if not word else f'{len(word)} characters'}; "
            f"use 1 to {MAX_TAG} characters, e.g. 'review'."
        )
    return word


def _write(path: Path, tags: Tags) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"version": 1, "tags": {str(k): list(v) for k, v in sorted(tags.items())}}
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(body, indent=1), encoding="utf-8")
    tmp.replace(path)  # atomic: a reader sees the old file or the new one
