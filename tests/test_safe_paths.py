"""The dashboard's path policy: inside the roots is allowed, every way out is refused."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recipe_core.cli import cli
from recipe_core.cli.app_cmd import _app_environment
from recipe_core.data.safe_paths import (
    ROOTS_ENV,
    SAMPLE_DATA,
    PathPolicy,
    default_policy,
    path_key,
)
from recipe_core.errors import ConfigError, DatasetError
from recipe_core.settings import load_settings


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """root/ (allowed) with data/ inside; outside/ next to it; symlinks both ways."""
    (tmp_path / "root" / "data" / "cls").mkdir(parents=True)
    (tmp_path / "outside" / "secret").mkdir(parents=True)
    (tmp_path / "root" / "escape").symlink_to(tmp_path / "outside")
    (tmp_path / "root" / "alias").symlink_to(tmp_path / "root" / "data")
    return tmp_path


def test_paths_inside_the_root_resolve(tree: Path) -> None:
    policy = PathPolicy.from_roots([tree / "root"])
    assert policy.resolve("data") == tree / "root" / "data"  # relative: from the first root
    assert policy.resolve(str(tree / "root" / "data" / "cls")) == tree / "root" / "data" / "cls"
    assert policy.resolve("data/../data/cls") == tree / "root" / "data" / "cls"  # stays inside
    assert policy.resolve("alias") == tree / "root" / "data"  # a symlink within the root is fine
    assert policy.resolve(".") == tree / "root"
    assert policy.resolve("not/there/yet") == tree / "root" / "not" / "there" / "yet"


@pytest.mark.parametrize(
    "typed",
    ["../outside", "data/../../outside/secret", "escape", "escape/secret", "/etc/passwd", "/", "~"],
)
def test_escapes_are_refused(tree: Path, typed: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tree / "outside"))
    policy = PathPolicy.from_roots([tree / "root"])
    with pytest.raises(
        DatasetError,
        match=r"outside the folders this dashboard may open.*"
        r"recipe app --data-root DIR",
    ):
        policy.resolve(typed)
    assert not policy.allows(typed)


def test_a_sibling_with_the_root_as_name_prefix_is_outside(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data-private").mkdir()
    policy = PathPolicy.from_roots([tmp_path / "data"])
    assert not policy.allows(tmp_path / "data-private")


def test_empty_and_nul_paths_are_refused(tree: Path) -> None:
    policy = PathPolicy.from_roots([tree / "root"])
    for bad in ("", "   ", "data\x00/x"):
        with pytest.raises(DatasetError, match="Invalid dataset path"):
            policy.resolve(bad)


def test_policy_needs_absolute_roots() -> None:
    with pytest.raises(ConfigError, match="at least one allowed root"):
        PathPolicy(())
    with pytest.raises(ConfigError, match="must be absolute"):
        PathPolicy((Path("relative"),))


def test_default_policy_roots(tree: Path) -> None:
    extra = tree / "outside"
    env = {ROOTS_ENV: os.pathsep.join([str(extra), ""]), "RECIPE_DATASET": str(tree / "ds")}
    policy = default_policy(cwd=tree / "root", settings=load_settings(env))
    assert policy.roots[0] == tree / "root"
    assert SAMPLE_DATA in policy.roots and extra in policy.roots and tree / "ds" in policy.roots
    assert policy.allows(extra / "secret")
    strict = replace(default_policy(cwd=tree / "root", settings=load_settings({})),
                     open_existing=False)  # fmt: skip
    assert not strict.allows(extra / "secret")


def test_the_local_app_opens_any_existing_path_without_a_restart(tree: Path) -> None:
    """Locally the user types a folder outside the start-up roots: it exists, so it opens; a
    path that does not exist is still refused. A hosted policy (roots only) refuses both."""
    local = default_policy(cwd=tree / "root", settings=load_settings({}))
    outside = tree / "outside" / "secret"
    assert local.resolve(str(outside)) == outside and local.resolve("escape") == outside.parent
    with pytest.raises(DatasetError, match=r"does not exist, and is outside the folders"):
        local.resolve(str(tree / "outside" / "missing"))
    served = PathPolicy.from_roots([tree / "root"])
    with pytest.raises(DatasetError, match="outside the folders this dashboard may open"):
        served.resolve(str(outside))


def test_app_data_root_option_is_validated_and_exported(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ROOTS_ENV, raising=False)
    env = _app_environment(None, str(tree / "ws"), [str(tree / "outside"), str(tree / "root")])
    assert env[ROOTS_ENV].split(os.pathsep) == [str(tree / "outside"), str(tree / "root")]
    result = CliRunner().invoke(cli, ["app", "--data-root", str(tree / "nope")])
    assert result.exit_code == 2
    assert "is not an existing folder" in result.output


def test_path_key_is_stable_and_file_name_safe() -> None:
    key = path_key("/data/<b>bold</b> set")
    assert key == path_key("/data/<b>bold</b> set") != path_key("/data/other")
    assert "/" not in key and "<" not in key and " " not in key
