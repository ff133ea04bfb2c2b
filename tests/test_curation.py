"""Curation: decisions in the workspace, an append-only log, and a cleaned manifest that opens
as a dataset -- while the dataset's own files stay byte-for-byte the same."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from recipe_core.data import open_dataset
from recipe_core.errors import ConfigError
from recipe_core.explore.curation import (
    LOG_FILE,
    cleaned_samples,
    curation_dir,
    decision_log,
    export_manifest,
    load_decisions,
    record_decision,
)
from recipe_core.workspace import Workspace, open_workspace
from tests.conftest import write_image_folder


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return open_workspace(tmp_path / "ws")


def test_decisions_are_appended_and_the_last_one_stands(ws: Workspace, tmp_path: Path) -> None:
    root = tmp_path / "ds"
    record_decision(ws, root, sample_id=1, path="a.png", action="drop", old_label="cat")
    record_decision(
        ws,
        root,
        sample_id=2,
        path="b.png",
        action="relabel",
        label="dog",
        old_label="cat",
        note="looks like a dog",
    )
    record_decision(ws, root, sample_id=1, path="a.png", action="keep")  # undo the drop
    record_decision(ws, root, sample_id=2, path="b.png", action="relabel", label=" bird ")
    history = decision_log(ws, root)
    assert [(d.sample_id, d.action, d.label) for d in history] == [
        (1, "drop", ""),
        (2, "relabel", "dog"),
        (1, "keep", ""),
        (2, "relabel", "bird"),
    ]
    assert all(d.time.endswith("+00:00") for d in history)  # timestamped, UTC
    current = load_decisions(ws, root)
    assert list(current) == [2] and current[2].label == "bird"
    lines = (curation_dir(ws, root) / LOG_FILE).read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[1])["note"] == "looks like a dog"
    assert load_decisions(ws, tmp_path / "other") == {}  # keyed by dataset


def test_a_torn_last_line_is_skipped(ws: Workspace, tmp_path: Path) -> None:
    record_decision(ws, tmp_path, sample_id=7, path="x.png", action="drop")
    with (curation_dir(ws, tmp_path) / LOG_FILE).open("a") as f:
        f.write('{"sample_id": 8, "path": "y.p')  # a crash mid-write
    assert list(load_decisions(ws, tmp_path)) == [7]


def test_bad_decisions_name_the_fix(ws: Workspace, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"Invalid curation action 'delete'.*drop, relabel"):
        record_decision(ws, tmp_path, sample_id=1, path="a", action="delete")
    with pytest.raises(ConfigError, match=r"needs a new label.*Pick a class"):
        record_decision(ws, tmp_path, sample_id=1, path="a", action="relabel", label="  ")
    assert decision_log(ws, tmp_path) == []  # nothing was written


def test_cleaned_samples_against_a_hand_computed_answer() -> None:
    samples = pd.DataFrame(
        {
            "sample_id": [1, 2, 3, 4],
            "path": ["a", "b", "c", "d"],
            "label": ["x", "x", "y", "y"],
            "split": ["train"] * 4,
        }
    )
    from recipe_core.explore.curation import Decision

    decisions = {
        2: Decision(2, "b", "drop"),
        3: Decision(3, "c", "relabel", "x"),
        99: Decision(99, "gone", "drop"),
    }
    clean = cleaned_samples(samples, decisions)
    assert clean[["path", "label"]].values.tolist() == [["a", "x"], ["c", "x"], ["d", "y"]]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_opens_as_a_dataset_and_never_touches_the_files(
    ws: Workspace, tmp_path: Path, fmt: str
) -> None:
    root = write_image_folder(tmp_path / "ds", classes=3, per_class=3)
    before = tree_hashes(root)
    source = open_dataset(root)
    rows = source.samples.set_index("path")
    drop, move = "train/class_0/000.png", "val/class_1/002.png"
    record_decision(
        ws,
        root,
        sample_id=int(rows.loc[drop, "sample_id"]),
        path=drop,
        action="drop",
        old_label="class_0",
    )
    record_decision(
        ws,
        root,
        sample_id=int(rows.loc[move, "sample_id"]),
        path=move,
        action="relabel",
        label="class_2",
        old_label="class_1",
    )
    record_decision(ws, root, sample_id=123, path="deleted.png", action="drop")  # stale
    result = export_manifest(
        source,
        load_decisions(ws, root),
        root,
        fmt=fmt,
        log_entries=decision_log(ws, root),
        name="clean",
    )
    assert (result.n_samples, result.n_dropped, result.n_relabelled, result.n_stale) == (
        len(source) - 1,
        1,
        1,
        1,
    )
    reopened = open_dataset(result.manifest)
    assert reopened.root == root and reopened.layout == "manifest"
    got = reopened.samples.set_index("path")
    assert drop not in got.index and got.loc[move, "label"] == "class_2"
    assert got.loc["train/class_1/001.png", ["label", "split"]].tolist() == ["class_1", "train"]
    assert len(got) == len(source) - 1
    record = pd.read_csv(result.record)
    assert record["action"].tolist() == ["drop", "relabel", "drop"]
    assert record.loc[1, "old_label"] == "class_1" and record["time"].notna().all()
    after = tree_hashes(root)
    new_files = set(after) - set(before)
    assert new_files == {f"clean.{fmt}", "clean_decisions.csv"}
    assert {k: after[k] for k in before} == before  # every original byte unchanged


def test_export_refuses_to_overwrite(ws: Workspace, tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "ds")
    source = open_dataset(root)
    export_manifest(source, {}, tmp_path / "out")
    with pytest.raises(ConfigError, match="never overwrites"):
        export_manifest(source, {}, tmp_path / "out")
    with pytest.raises(ConfigError, match=r"Invalid manifest format 'xlsx'"):
        export_manifest(source, {}, tmp_path / "out2", fmt="xlsx")
