"""Per-sample tags in the workspace: round trip, idempotent, removal, never the dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from recipe_core.errors import ConfigError
from recipe_core.explore.tags import (
    add_tag,
    load_tags,
    remove_tag,
    tag_names,
    tagged,
    tags_file,
)
from recipe_core.workspace import open_workspace


def test_tags_round_trip_in_the_workspace_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.png").write_bytes(b"x")
    ws = open_workspace(tmp_path / "ws")
    assert load_tags(ws, data) == {}
    add_tag(ws, data, [3, 1], "review")
    add_tag(ws, data, [1], "  ask   Ana ")
    add_tag(ws, data, [1], "review")  # twice: kept once
    assert load_tags(ws, data) == {1: ("ask Ana", "review"), 3: ("review",)}
    assert tag_names(load_tags(ws, data)) == ["ask Ana", "review"]
    assert tagged(load_tags(ws, data), "review") == (1, 3)
    assert tagged(load_tags(ws, data), "nothing") == ()
    remove_tag(ws, data, [3], "review")
    assert load_tags(ws, data) == {1: ("ask Ana", "review")}
    assert tags_file(ws, data).is_relative_to(ws.root)
    assert sorted(p.name for p in data.iterdir()) == ["a.png"]  # the dataset is untouched


def test_bad_tags_and_a_damaged_file_name_the_fix(tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "ws")
    with pytest.raises(ConfigError, match="use 1 to 40 characters"):
        add_tag(ws, tmp_path, [1], "   ")
    with pytest.raises(ConfigError, match="41 characters"):
        add_tag(ws, tmp_path, [1], "x" * 41)
    tags_file(ws, tmp_path).parent.mkdir(parents=True)
    tags_file(ws, tmp_path).write_text("{not json")
    with pytest.raises(ConfigError, match="Fix or delete the file"):
        load_tags(ws, tmp_path)
