"""Tracing a user's batches to their files (recipe_core.batch.origin) and marking what a scan
found on them (explore.flags.flags_for_files).

Trusted answer: each traced file, decoded on its own through the same transform, equals the
row of the batch the loader produced for it; a wrong index, an off-by-one batch or a shuffled
order cannot pass that."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch.utils.data import ConcatDataset, DataLoader, Dataset, IterableDataset, Subset
from torchvision import datasets
from torchvision.transforms import v2

from recipe_core.batch.origin import (
    batch_files,
    order_problem,
    recording_indices,
    sample_file,
)
from recipe_core.batch.see import frame_tiles, grid_geometry, image_grid, see_pipeline, tile_box
from recipe_core.data.pipeline import Pipeline
from recipe_core.explore.flags import flags_for_files

TO_TENSOR = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ImageFolder of 3 classes x 7 distinct 6x6 grey images."""
    root = tmp_path_factory.mktemp("origin") / "imgs"
    rng = np.random.default_rng(0)
    for c in range(3):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(7):
            pixels = rng.integers(0, 256, (6, 6), dtype=np.uint8)
            Image.fromarray(pixels).save(root / f"c{c}" / f"{i:02d}.png")
    return root


def decoded(path: str) -> torch.Tensor:
    with Image.open(path) as image:
        return TO_TENSOR(image.convert("RGB"))


def traced(loader: DataLoader, batches: int = 99) -> list[tuple[torch.Tensor, list[str | None]]]:
    out = []
    with recording_indices(loader) as recorder:
        assert recorder is not None
        for k, (x, _) in enumerate(loader):
            if k >= batches:
                break
            files = batch_files(loader.dataset, recorder.batches[k])
            assert files is not None
            out.append((x, files))
    return out


@pytest.mark.parametrize("workers", [0, 2])
def test_each_traced_file_is_the_sample_the_loader_put_in_its_batch(
    folder: Path, workers: int
) -> None:
    data = datasets.ImageFolder(str(folder), transform=TO_TENSOR)
    loader = DataLoader(data, batch_size=4, shuffle=True, num_workers=workers,
                        generator=torch.Generator().manual_seed(3))  # fmt: skip
    seen = traced(loader)
    assert sum(len(files) for _, files in seen) == len(data)
    for x, files in seen:
        for row, file in zip(x, files, strict=True):
            assert file is not None and torch.equal(row, decoded(file)), file
    # the order was the shuffled one, not the folder's
    assert [f for _, files in seen for f in files] != [p for p, _ in data.samples]


def test_the_loader_is_left_as_it_was(folder: Path) -> None:
    loader = DataLoader(datasets.ImageFolder(str(folder), transform=TO_TENSOR), batch_size=5)
    original = loader.batch_sampler
    traced(loader, batches=1)
    assert loader.batch_sampler is original
    with pytest.raises(ValueError, match="batch_sampler"):  # DataLoader's own guard still holds
        loader.batch_sampler = None
    assert len(list(loader)) == 5


class Tagged(Dataset[tuple[torch.Tensor, int]]):
    """A Dataset of one's own that names its files through `sample_path`."""

    def __init__(self, files: list[Path]):
        self.files = [str(f) for f in files][::-1]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return decoded(self.files[i]), 0

    def sample_path(self, i: int) -> str:
        return self.files[i]


class Framed(Dataset[tuple[torch.Tensor, int]]):
    """A manifest-style Dataset: a pandas frame of relative paths and a root."""

    def __init__(self, root: Path):
        files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))
        self.root, self.df = str(root), pd.DataFrame({"image_path": files, "y": 0})

    def __len__(self) -> int:
        return len(self.df)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return decoded(str(Path(self.root) / self.df["image_path"].iloc[i])), 0


def test_subsets_concats_frames_and_a_sample_path_method_are_traced(folder: Path) -> None:
    image_folder = datasets.ImageFolder(str(folder), transform=TO_TENSOR)
    nested = ConcatDataset([
        Subset(image_folder, [20, 3, 11]),
        Tagged(sorted(folder.rglob("*.png"))[:5]),
        Subset(Framed(folder), [0, 19]),
    ])  # fmt: skip
    loader = DataLoader(nested, batch_size=3, shuffle=True,
                        generator=torch.Generator().manual_seed(1))  # fmt: skip
    seen = traced(loader)
    assert sum(len(files) for _, files in seen) == 10
    for x, files in seen:
        for row, file in zip(x, files, strict=True):
            assert file is not None and torch.equal(row, decoded(file)), file


class Stream(IterableDataset[tuple[torch.Tensor, int]]):
    def __iter__(self):  # type: ignore[no-untyped-def]
        yield torch.zeros(3), 0


class Anonymous(Dataset[tuple[torch.Tensor, int]]):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.full((3,), float(i)), i


def test_what_cannot_be_traced_says_why_and_guesses_nothing(folder: Path) -> None:
    assert "IterableDataset" in str(order_problem(DataLoader(Stream(), batch_size=2)))
    assert "batch_size=None" in str(order_problem(DataLoader(Anonymous(), batch_size=None)))
    assert "in_order=False" in str(order_problem(
        DataLoader(Anonymous(), batch_size=2, num_workers=1, in_order=False)))  # fmt: skip
    assert "not a torch DataLoader" in str(order_problem([(torch.zeros(2), torch.zeros(2))]))
    assert order_problem(DataLoader(Anonymous(), batch_size=2)) is None
    with recording_indices(DataLoader(Stream(), batch_size=2)) as recorder:
        assert recorder is None
    assert batch_files(Anonymous(), [0, 1]) is None  # no path attribute: None, not a guess
    assert sample_file(datasets.ImageFolder(str(folder)), 10_000) is None


def test_see_pipeline_writes_each_batchs_files_and_grid(folder: Path, tmp_path: Path) -> None:
    data = datasets.ImageFolder(str(folder), transform=TO_TENSOR)
    loader = DataLoader(data, batch_size=8, shuffle=True,
                        generator=torch.Generator().manual_seed(0))  # fmt: skip
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(108, 3))
    report = see_pipeline(Pipeline(model, loader, torch.nn.CrossEntropyLoss(), num_classes=3),
                          tmp_path, batches=2)  # fmt: skip
    assert report["untraced"] is None
    first = report["batches"][0]
    classes = [Path(f).parent.name for f in first["files"]]
    assert classes == [f"c{label}" for label in first["labels"]]  # each file's class is its label
    assert first["grid"]["n"] == 8
    anonymous = DataLoader(Anonymous(), batch_size=2)
    blind = see_pipeline(Pipeline(torch.nn.Linear(3, 4), anonymous, torch.nn.CrossEntropyLoss(),
                                  num_classes=4), tmp_path / "b", batches=1)  # fmt: skip
    assert "names no files" in blind["untraced"] and blind["batches"][0]["files"] is None


def test_frames_go_round_the_flagged_tiles_and_cover_none_of_their_pixels() -> None:
    images = np.full((10, 8, 8, 3), 200, dtype=np.uint8)
    grid = grid_geometry(images.shape)
    picture = image_grid(images, [str(i) for i in range(10)])
    marked = np.asarray(frame_tiles(picture, grid, [9]))
    plain = np.asarray(picture)
    left, top, right, bottom = tile_box(grid, 9)
    assert (marked[top - 2, left + 20] == (213, 94, 0)).all()  # the frame, in the gap above
    inside = (slice(top + 12, bottom), slice(left, right))  # below the number's corner
    assert (marked[inside] == plain[inside]).all()
    other = tile_box(grid, 0)
    assert (marked[other[1] - 2, other[0] + 20] == plain[other[1] - 2, other[0] + 20]).all()


def test_flags_for_files_matches_by_path_under_the_scanned_root(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    (root / "a").mkdir(parents=True)
    for name in ("x.png", "y.png"):
        (root / "a" / name).write_bytes(b"")
    outside = tmp_path / "other.png"
    outside.write_bytes(b"")
    table = pd.DataFrame({"sample_id": [11, 22], "path": ["a/x.png", "a/y.png"]})
    issues = pd.DataFrame({"sample_id": [22], "path": ["a/y.png"], "issue": ["exact_duplicate"],
                           "score": [1.0], "detail": ["same bytes as a/x.png"]})  # fmt: skip
    files = [str(outside), str(root / "a" / "y.png"), None, str(root / "a" / "x.png")]
    found = flags_for_files(issues, table, root, files)
    assert found.matched == 2 and found.root == root
    assert found.flags["position"].tolist() == [1]
    assert found.flags["issues"].tolist() == ["exact_duplicate"]
