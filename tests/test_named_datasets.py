"""Closing the loop (issue 17): a curated export is a named dataset that scripts list, the CLI
opens by name, and scans and runs read exactly its kept rows -- the user's files untouched."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from recipe_core.cli import cli
from recipe_core.cli.app_cmd import _app_environment
from recipe_core.data import open_dataset
from recipe_core.data.named import find_dataset, list_datasets, named_dataset, resolve_dataset
from recipe_core.errors import DatasetError
from recipe_core.explore.checklist import dataset_family, recipe_checklist
from recipe_core.explore.curation import export_dataset, load_decisions, record_decision
from recipe_core.runs import RunReader
from recipe_core.workspace import Workspace, open_workspace
from tests.conftest import write_image_folder
from tests.test_curation import tree_hashes

NOW = datetime(2026, 12, 4, 1, 2, 3, tzinfo=UTC)
runner = CliRunner()


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return open_workspace(tmp_path / "ws")


@pytest.fixture
def digits(tmp_path: Path) -> Path:
    return write_image_folder(tmp_path / "digits", classes=2, per_class=6)  # 24 images


def curate(ws: Workspace, root: Path) -> tuple[list[str], str]:
    """Drop two training images, relabel one; returns (dropped paths, relabelled path)."""
    source = open_dataset(root)
    rows = source.samples.set_index("path")
    dropped = ["train/class_0/000.png", "val/class_1/002.png"]
    for path in dropped:
        record_decision(ws, root, sample_id=int(rows.loc[path, "sample_id"]), path=path,
                        action="drop", old_label=str(rows.loc[path, "label"]))  # fmt: skip
    moved = "train/class_1/003.png"
    record_decision(ws, root, sample_id=int(rows.loc[moved, "sample_id"]), path=moved,
                    action="relabel", label="class_0", old_label="class_1")  # fmt: skip
    return dropped, moved


def test_an_export_is_listed_by_name_and_opens_as_the_kept_rows(
    ws: Workspace, digits: Path
) -> None:
    before = tree_hashes(digits)
    dropped, moved = curate(ws, digits)
    source = open_dataset(digits)
    named, out = export_dataset(ws, source, load_decisions(ws, digits), now=NOW)

    assert named.name == "digits (cleaned 2026-12-04 01:02)"
    assert list_datasets(ws) == [named]
    assert (named.rows, named.dropped, named.relabelled) == (22, 2, 1)
    assert (named.source, named.root) == (digits.resolve(), digits.resolve())
    assert named.manifest == out.manifest.resolve() and named.manifest.is_relative_to(ws.root)
    assert named.created == "2026-12-04T01:02:03+00:00"

    table = pd.read_csv(named.manifest, keep_default_na=False)
    assert not any(Path(p).is_absolute() for p in table["path"])  # relative to the originals
    cleaned = open_dataset(named.manifest)
    assert cleaned.root == digits.resolve() and len(cleaned) == 22
    assert all(cleaned.abspath(p).is_file() for p in cleaned.samples["path"])
    assert set(dropped).isdisjoint(cleaned.samples["path"])
    assert cleaned.samples.set_index("path").loc[moved, "label"] == "class_0"
    kept = source.samples[~source.samples["path"].isin(dropped)]
    assert sorted(cleaned.samples["sample_id"]) == sorted(kept["sample_id"])  # same ids
    assert tree_hashes(digits) == before  # the user's files: byte for byte the same

    assert find_dataset(ws, "DIGITS (cleaned 2026-12-04 01:02)") == named
    assert resolve_dataset(named.name, ws) == named.manifest
    assert resolve_dataset(digits, ws) == digits
    assert named_dataset(named.manifest) == named and named_dataset(digits) is None
    with pytest.raises(DatasetError, match=r"No single named dataset 'pets'.*digits \(cleaned"):
        find_dataset(ws, "pets")


def test_a_second_export_in_the_same_minute_gets_its_own_name(ws: Workspace, digits: Path) -> None:
    curate(ws, digits)
    source = open_dataset(digits)
    first, _ = export_dataset(ws, source, load_decisions(ws, digits), now=NOW)
    second, _ = export_dataset(ws, source, {}, now=NOW)
    assert second.name == "digits (cleaned 2026-12-04 01:02 #2)" and second.rows == 24
    assert [d.name for d in list_datasets(ws)] == [first.name, second.name]
    assert first.manifest.parent != second.manifest.parent


def test_scan_and_train_take_the_name_and_read_only_the_kept_rows(
    ws: Workspace, digits: Path, one_torch_thread: None
) -> None:
    curate(ws, digits)
    named, _ = export_dataset(ws, open_dataset(digits), load_decisions(ws, digits), now=NOW)
    where = ["--workspace", str(ws.root)]

    scanned = runner.invoke(cli, ["scan", named.name, *where, "--workers", "0", "--json"])
    assert scanned.exit_code == 0, scanned.output
    assert json.loads(scanned.stdout)["n_samples"] == 22

    fast = ["--model", "linear", "--steps", "2", "--device", "cpu", "--batch-size", "8"]
    trained = runner.invoke(cli, ["train", named.name, *fast, *where, "--json"])
    assert trained.exit_code == 0, trained.output
    summary = json.loads(trained.stdout)
    assert summary["train_size"] + summary["val_size"] == 22
    assert RunReader(Path(summary["run_dir"])).config()["dataset"] == str(named.manifest)

    by_path = runner.invoke(cli, ["train", str(named.manifest), *fast, *where, "--json"])
    assert by_path.exit_code == 0, by_path.output
    assert json.loads(by_path.stdout)["train_size"] == summary["train_size"]

    missing = runner.invoke(cli, ["scan", "no such dataset", *where])
    assert missing.exit_code == 2 and "does not exist" in missing.output

    opened = _app_environment(named.name, str(ws.root), [])  # `recipe app NAME`
    assert opened["RECIPE_DATASET"] == str(named.manifest)


def test_the_checklist_counts_the_raw_and_the_cleaned_dataset(ws: Workspace, digits: Path) -> None:
    curate(ws, digits)  # evidence on the raw folder: reviewed
    named, _ = export_dataset(ws, open_dataset(digits), load_decisions(ws, digits), now=NOW)
    family = dataset_family(ws, named.manifest)
    assert [(m.label, m.cleaned) for m in family] == [(named.name, True), ("digits", False)]
    assert [m.path for m in dataset_family(ws, digits)] == [digits.resolve(), named.manifest]

    items = {i.key: i for i in recipe_checklist(ws, named.manifest)}
    assert items["issues_reviewed"].done and items["issues_reviewed"].dataset == "digits"
    assert items["issues_reviewed"].evidence.endswith("(on digits)")
    assert not items["baseline_run"].done
    alone = {i.key: i for i in recipe_checklist(ws, write_image_folder(digits.parent / "other"))}
    assert alone["issues_reviewed"].dataset == "" and not alone["issues_reviewed"].done
