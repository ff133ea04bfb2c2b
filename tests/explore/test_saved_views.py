"""Saved views: every filter field survives the JSON round trip (infinite ranges too)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from recipe_core.errors import ConfigError
from recipe_core.explore.query import Range, SampleFilter
from recipe_core.explore.saved_views import (
    SavedView,
    delete_view,
    load_views,
    save_view,
    views_file,
)
from recipe_core.workspace import open_workspace

FULL = SampleFilter(labels=("7", "<b>"), splits=("train",), issues=("dark", "blurry"),
                    min_score=0.25, ranges=(Range("blur", -math.inf, 3.5),
                                            Range("width", 10, math.inf, include_high=False)),
                    path_contains="train/7", flagged=True, sample_ids=(4, 9))  # fmt: skip


def test_views_round_trip_replace_and_delete(tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "ws")
    assert load_views(ws, tmp_path) == []
    a = SavedView("  review   queue ", FULL, "score_dark", True, ("review",))
    b = SavedView("All", SampleFilter(only_ids=(1, 2)), None, False)
    save_view(ws, tmp_path, a)
    got = save_view(ws, tmp_path, b)
    assert [v.name for v in got] == ["All", "review queue"]  # name order, spaces tidied
    assert got[1] == a
    assert got[0].spec == SampleFilter() and got[0].sort_by is None  # only_ids never kept
    changed = SavedView("review queue", SampleFilter(issues=("dark",)), "blur")
    assert save_view(ws, tmp_path, changed)[1] == changed  # same name: replaced
    assert [v.name for v in delete_view(ws, tmp_path, "All")] == ["review queue"]
    assert views_file(ws, tmp_path).is_relative_to(ws.root)


def test_bad_names_and_files_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="1 to 60 characters"):
        SavedView("  ")
    ws = open_workspace(tmp_path / "ws")
    views_file(ws, tmp_path).parent.mkdir(parents=True)
    views_file(ws, tmp_path).write_text('{"views": [{"nom": 1}]}')
    with pytest.raises(ConfigError, match="Fix or delete the file"):
        load_views(ws, tmp_path)
