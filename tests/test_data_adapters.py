"""Dataset adapters beyond the image folder: CSV/Parquet manifests and any torch Dataset."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset, TensorDataset

from recipe_core.data import open_dataset
from recipe_core.data.torch_source import from_torch_dataset
from recipe_core.errors import DatasetError
from recipe_core.scan.index import build_index
from recipe_core.workspace import open_workspace
from tests.conftest import write_image_folder


def manifest_dataset(root: Path) -> Path:
    """Images under root/images and a manifest beside them; returns the manifest path."""
    (root / "images").mkdir(parents=True)
    for i in range(4):
        Image.new("L", (8, 8), i * 60).save(root / "images" / f"{i}.png")
    return root


# --- manifests --------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_manifest_opens_with_labels_and_splits(tmp_path: Path, suffix: str) -> None:
    root = manifest_dataset(tmp_path / "ds")
    table = pd.DataFrame(
        {
            "path": [
                "images/0.png",
                "./images/1.png",
                str(root / "images" / "2.png"),
                "images/3.png",
            ],
            "label": ["07", "07", "3", "3"],
            "split": ["train", "train", "val", "val"],
        }
    )
    manifest = root / f"labels{suffix}"
    table.to_csv(manifest, index=False) if suffix == ".csv" else table.to_parquet(manifest)
    source = open_dataset(manifest)
    assert source.layout == "manifest" and source.root == root.resolve()
    assert source.samples["path"].tolist() == [f"images/{i}.png" for i in range(4)]
    assert source.classes == ("07", "3") and source.splits == ("train", "val")


def test_manifest_without_split_column(tmp_path: Path) -> None:
    root = manifest_dataset(tmp_path / "ds")
    (root / "m.csv").write_text("path,label\nimages/0.png,a\nimages/1.png,b\n")
    assert open_dataset(root / "m.csv").splits == ("",)


def test_manifest_missing_a_column_names_it(tmp_path: Path) -> None:
    root = manifest_dataset(tmp_path / "ds")
    (root / "m.csv").write_text("file,label\nimages/0.png,a\n")
    with pytest.raises(DatasetError, match=r"no 'path' column \(found: \['file', 'label'\]\)"):
        open_dataset(root / "m.csv")


@pytest.mark.parametrize("bad", ["../outside.png", "/etc/passwd", "images/../../x.png", ""])
def test_manifest_path_escaping_the_root_is_refused(tmp_path: Path, bad: str) -> None:
    root = manifest_dataset(tmp_path / "ds")
    pd.DataFrame({"path": ["images/0.png", bad], "label": ["a", "b"]}).to_csv(
        root / "m.csv", index=False
    )
    with pytest.raises(DatasetError, match="outside its folder"):
        open_dataset(root / "m.csv")


def test_manifest_duplicate_rows_are_refused(tmp_path: Path) -> None:
    root = manifest_dataset(tmp_path / "ds")
    (root / "m.csv").write_text("path,label\nimages/0.png,a\nimages/0.png,b\n")
    with pytest.raises(DatasetError, match="more than once"):
        open_dataset(root / "m.csv")


def test_manifest_missing_files_become_rows_with_errors(tmp_path: Path) -> None:
    root = manifest_dataset(tmp_path / "ds")
    (root / "images" / "folder.png").mkdir()
    (root / "m.csv").write_text(
        "path,label\nimages/0.png,a\nimages/gone.png,a\nimages/folder.png,b\n"
    )
    index = build_index(open_dataset(root / "m.csv"), workers=0)
    errors = dict(zip(index.table["path"], index.table["decode_error"], strict=True))
    assert errors["images/0.png"] == ""
    assert "FileNotFoundError" in errors["images/gone.png"]
    assert "not a regular file" in errors["images/folder.png"]
    assert index.table.set_index("path").loc["images/gone.png", "file_bytes"] == -1


def test_unreadable_manifest_says_what_a_manifest_is(tmp_path: Path) -> None:
    bad = tmp_path / "m.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(DatasetError, match="path,label"):
        open_dataset(bad)


def test_unknown_layout_lists_the_accepted_ones(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hi")
    for target in (tmp_path / "notes.txt", tmp_path):
        with pytest.raises(DatasetError, match=r"image folder.*CSV or Parquet manifest.*torch"):
            open_dataset(target)


def test_image_folder_still_opens(tmp_path: Path) -> None:
    assert open_dataset(write_image_folder(tmp_path / "ds")).layout == "image_folder"


def test_a_class_folder_counts_by_its_first_visible_image_at_any_depth(tmp_path: Path) -> None:
    """A class folder is one that holds an image, directly or nested; hidden files, other
    files and folders named like images do not make one (the early-stopping check agrees
    with the full walk)."""
    root = tmp_path / "ds"
    Image.new("L", (4, 4), 10).save((root / "direct").mkdir(parents=True) or root / "direct/a.png")
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "nested" / "readme.txt").write_text("not an image")
    Image.new("L", (4, 4), 20).save(root / "nested" / "deeper" / "b.png")
    (root / "hidden_only").mkdir()
    Image.new("L", (4, 4), 30).save(root / "hidden_only" / ".c.png")
    (root / "folder_named_png" / "x.png").mkdir(parents=True)  # a folder, not an image
    (root / "folder_named_png" / "x.png" / "notes.txt").write_text("still no image")
    (root / "dot_only").mkdir()
    (root / "dot_only" / ".png").write_bytes(b"")  # a hidden name, no extension
    source = open_dataset(root)
    assert sorted(source.samples["label"]) == ["direct", "nested"]
    assert sorted(source.samples["path"]) == ["direct/a.png", "nested/deeper/b.png"]


def test_names_that_are_not_utf8_still_open(tmp_path: Path) -> None:
    """One undecodable file name among valid ones: every name is kept, that one escaped."""
    root = write_image_folder(tmp_path / "ds", classes=2, per_class=2)
    folder = next(p for p in sorted(root.rglob("*")) if p.is_dir() and any(p.glob("*.png")))
    before = len(open_dataset(root).samples)
    Image.new("L", (4, 4), 99).save(os.fsdecode(os.fsencode(folder) + b"/caf\xe9.png"))
    paths = open_dataset(root).samples["path"].tolist()
    assert len(paths) == before + 1 and any(p.endswith("caf\\xe9.png") for p in paths)
    assert all(p.encode("utf-8") for p in paths)


# --- torch datasets --------------------------------------------------------------------------


class MixedImages(Dataset[tuple[Any, Any]]):
    """Every image type the adapter accepts, plus one item whose loading fails."""

    classes = ("zero", "one")

    def __len__(self) -> int:
        return 5

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        if i == 0:
            return Image.new("RGB", (6, 6), (255, 0, 0)), 0
        if i == 1:
            return torch.full((1, 6, 6), 0.5), torch.tensor(1)  # float CHW in [0, 1]
        if i == 2:
            return np.full((6, 6, 3), 200, dtype=np.uint8), 1  # numpy HWC
        if i == 3:
            return torch.full((3, 4, 8), 255, dtype=torch.uint8), "one"  # string label
        raise OSError("disk read failed")


def test_torch_dataset_is_materialised_as_pngs(tmp_path: Path) -> None:
    workspace = open_workspace(tmp_path / "ws")
    source = from_torch_dataset(MixedImages(), name="mixed", workspace=workspace)
    assert source.layout == "torch" and source.root == workspace.root / "datasets" / "mixed"
    assert source.samples["label"].tolist() == ["zero", "one", "one", "one"]
    assert source.skipped == ("item 4: OSError: disk read failed",)
    index = build_index(source, workers=0)
    table = index.table.set_index("path")
    assert table.loc["images/0000000.png", "mean_r"] == pytest.approx(1.0)
    assert table.loc["images/0000001.png", "brightness"] == pytest.approx(0.5, abs=0.01)
    assert table.loc["images/0000003.png", ["width", "height"]].tolist() == [8, 4]
    assert open_dataset(source.root / "manifest.csv").samples.equals(source.samples)


def test_rematerialising_keeps_files_so_the_scan_cache_holds(tmp_path: Path) -> None:
    workspace = open_workspace(tmp_path / "ws")
    data = TensorDataset(
        torch.randint(0, 256, (6, 1, 8, 8), dtype=torch.uint8), torch.arange(6) % 2
    )
    first = build_index(
        from_torch_dataset(data, name="t", workspace=workspace), workspace=workspace
    )
    again = from_torch_dataset(data, name="t", workspace=workspace, classes=["even", "odd"])
    index = build_index(again, workspace=workspace, workers=0)
    assert index.reused == len(first) == 6
    assert index.table["label"].tolist() == ["even", "odd"] * 3


def test_torch_dataset_errors_name_the_fix(tmp_path: Path) -> None:
    workspace = open_workspace(tmp_path / "ws")
    with pytest.raises(DatasetError, match=r"not an \(image, label\) pair"):
        from_torch_dataset([torch.zeros(3, 4, 4)], name="x", workspace=workspace)
    with pytest.raises(DatasetError, match="not a valid folder name"):
        from_torch_dataset([(torch.zeros(3, 4, 4), 0)], name="../up", workspace=workspace)
    with pytest.raises(DatasetError, match="map-style"):
        from_torch_dataset(iter([]), name="x", workspace=workspace)
