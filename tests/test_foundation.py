"""Workspace, image-folder adapter, overview and the headless-engine rule."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from recipe_core import (
    ConfigError,
    DatasetError,
    open_dataset,
    open_workspace,
    summarize,
)
from recipe_core.data.source import sample_ids
from recipe_core.explore.thumbnails import thumbnail_file
from recipe_core.workspace import FORMAT_VERSION
from tests.conftest import REPO_ROOT, write_image_folder


def test_importing_recipe_core_never_imports_streamlit() -> None:
    code = (
        "import sys, recipe_core, recipe_core.cli, recipe_core.data.tensors, "
        "recipe_core.train.models;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('streamlit', 'plotly')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_workspace_created_on_demand_with_version(tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "a" / "ws")
    marker = json.loads((ws.root / "workspace.json").read_text())
    assert marker == {"format": FORMAT_VERSION}
    assert open_workspace(ws.root) == ws  # reopening keeps it


def test_workspace_env_var_and_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECIPE_WORKSPACE", str(tmp_path / "env-ws"))
    assert open_workspace().root == (tmp_path / "env-ws").resolve()
    monkeypatch.delenv("RECIPE_WORKSPACE")
    monkeypatch.chdir(tmp_path)
    assert open_workspace().root == (tmp_path / ".recipe").resolve()


def test_workspace_refuses_newer_format_and_files(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "workspace.json").write_text('{"format": 999}')
    with pytest.raises(ConfigError, match="newer than this Recipe understands"):
        open_workspace(tmp_path / "ws")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        open_workspace(tmp_path / "file")


def test_image_folder_with_splits(image_folder: Path) -> None:
    (image_folder / "train" / "class_0" / "notes.txt").write_text("not an image")
    source = open_dataset(image_folder)
    assert source.layout == "image_folder"
    assert source.splits == ("train", "val")
    assert source.classes == ("class_0", "class_1", "class_2")
    assert len(source) == 24
    assert source.skipped == ("train/class_0/notes.txt",)
    assert source.samples["sample_id"].is_unique
    row = source.samples.iloc[0]
    assert row["path"] == "train/class_0/000.png" and row["split"] == "train"


def test_image_folder_without_splits(tmp_path: Path) -> None:
    source = open_dataset(write_image_folder(tmp_path / "flat", splits=False))
    assert source.splits == ("",)
    assert set(source.samples["label"]) == {"class_0", "class_1", "class_2"}


def test_sample_ids_are_stable_across_rescans(image_folder: Path) -> None:
    first = open_dataset(image_folder).samples.set_index("path")["sample_id"]
    (image_folder / "train" / "class_0" / "zzz.png").write_bytes(
        (image_folder / "train" / "class_0" / "000.png").read_bytes()
    )
    second = open_dataset(image_folder).samples.set_index("path")["sample_id"]
    assert (second.loc[first.index] == first).all()
    assert sample_ids(["a/b.png"])[0] == sample_ids(["a/b.png"])[0] >= 0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing", "does not exist"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "not a dataset layout"),
        (lambda p: (p / "f.txt").write_text("x") and p / "f.txt", "not a dataset layout"),
    ],
)
def test_bad_dataset_paths_name_the_fix(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DatasetError, match=message) as info:
        open_dataset(make(tmp_path))
    assert "image folder" in str(info.value)


def test_overview_counts_sizes_and_unreadable(image_folder: Path) -> None:
    (image_folder / "val" / "class_1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    overview = summarize(open_dataset(image_folder))
    assert overview.n_samples == 25
    assert overview.n_unreadable == 1
    counts = overview.counts.set_index(["split", "label"])["count"]
    assert counts[("val", "class_1")] == 5 and counts[("train", "class_0")] == 4
    assert overview.sizes.iloc[0].to_dict() == {"width": 16, "height": 16, "mode": "L", "count": 24}


def test_thumbnails_cached_and_refreshed(image_folder: Path, tmp_path: Path) -> None:
    image = image_folder / "train" / "class_0" / "000.png"
    first = thumbnail_file(tmp_path / "thumbs", image, size=32)
    assert first is not None and first.exists()
    assert thumbnail_file(tmp_path / "thumbs", image, size=32) == first
    assert thumbnail_file(tmp_path / "thumbs", image_folder / "nope.png") is None
    bad = image_folder / "train" / "class_0" / "bad.png"
    bad.write_bytes(b"not a png")
    assert thumbnail_file(tmp_path / "thumbs", bad) is None


def test_a_small_image_is_enlarged_pixel_for_pixel_for_the_detail_view(tmp_path: Path) -> None:
    """The detail view showed a 32 px digit smoothed by the browser: upscaled, each source pixel
    is a sharp block of the largest whole factor that fits (16 px -> 512 px: 32x32 blocks)."""
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (16, 16), dtype=np.uint8)
    small = tmp_path / "small.png"
    Image.fromarray(pixels).save(small)
    big = thumbnail_file(tmp_path / "thumbs", small, size=512, upscale=True)
    assert big is not None and big != thumbnail_file(
        tmp_path / "thumbs", small, size=512, upscale=False
    )
    shown = np.asarray(Image.open(big).convert("L"))
    assert shown.shape == (512, 512)
    assert np.array_equal(shown, np.kron(pixels, np.ones((32, 32), dtype=np.uint8)))
    wide = tmp_path / "wide.png"
    Image.fromarray(np.zeros((10, 300), dtype=np.uint8)).save(wide)
    kept = thumbnail_file(tmp_path / "thumbs", wide, size=512, upscale=True)
    assert kept is not None and Image.open(kept).size == (300, 10)  # no whole factor fits


def test_grid_thumbnails_of_small_images_are_sharp_by_default(tmp_path: Path) -> None:
    """The Issues and Browse grids showed 32 px digits stretched to ~110 px by the browser (a
    blur): a default thumbnail of a small image is enlarged by whole pixels to THUMB_SIZE."""
    import numpy as np
    from PIL import Image

    from recipe_core.explore.thumbnails import THUMB_SIZE

    pixels = np.random.default_rng(1).integers(0, 256, (32, 32), dtype=np.uint8)
    small = tmp_path / "small.png"
    Image.fromarray(pixels).save(small)
    thumb = thumbnail_file(tmp_path / "thumbs", small)
    assert thumb is not None
    shown = np.asarray(Image.open(thumb).convert("L"))
    factor = THUMB_SIZE // 32
    assert np.array_equal(shown, np.kron(pixels, np.ones((factor, factor), dtype=np.uint8)))
