"""PathPolicy in serve mode: URL-decoded traversal, oversize paths, and datasets whose links
or manifest paths lead outside the roots (what a listing would otherwise follow)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recipe_core.data.safe_paths import PathPolicy
from recipe_core.errors import DatasetError


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "root" / "ds" / "a").mkdir(parents=True)
    (tmp_path / "root" / "ds" / "a" / "1.png").write_bytes(b"x")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.png").write_bytes(b"x")
    return tmp_path


def test_refusals_reach_on_refuse_with_the_typed_text(tree: Path) -> None:
    seen: list[tuple[str, str]] = []
    policy = PathPolicy.from_roots([tree / "root"], on_refuse=lambda t, m: seen.append((t, m)))
    assert policy.resolve("ds") == (tree / "root" / "ds").resolve()
    for typed in ("..%2Foutside", "ds/%2e%2e/%2e%2e/outside", "x" * 5000, "ds\x00"):
        with pytest.raises(DatasetError):
            policy.resolve(typed)
    assert [t for t, _ in seen] == [
        "..%2Foutside",
        "ds/%2e%2e/%2e%2e/outside",
        "x" * 5000,
        "ds\x00",
    ]
    assert "URL-decoded: '../outside'" in seen[0][1]
    assert "over 4096 characters" in seen[2][1]


def test_a_literal_percent_name_inside_the_root_still_opens(tree: Path) -> None:
    (tree / "root" / "100%done").mkdir()
    policy = PathPolicy.from_roots([tree / "root"])
    assert policy.resolve("100%done") == (tree / "root" / "100%done").resolve()


def test_escapes_finds_links_and_manifest_paths_leading_out(tree: Path) -> None:
    ds = tree / "root" / "ds"
    policy = PathPolicy.from_roots([tree / "root"])
    assert policy.escapes(ds, ["a/1.png"]) == []  # a clean dataset
    os.symlink(tree / "root" / "ds" / "a", ds / "inner")  # a link that stays inside: fine
    assert policy.escapes(ds, ["a/1.png"]) == []
    os.symlink(tree / "outside", ds / "b")
    outside = str(tree / "outside" / "secret.png")
    found = policy.escapes(ds, ["a/1.png", "../../outside/secret.png", outside, "../ds/a/1.png"])
    assert found == [str(ds / "b"), "../../outside/secret.png", outside]
