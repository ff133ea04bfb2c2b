"""The scan index: statistics against hand-computed answers and reference implementations, the
embedding's quality on real digits, and the workspace cache's per-file reuse."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import fft, ndimage
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from recipe_core.data import open_dataset
from recipe_core.errors import ConfigError
from recipe_core.scan.index import INDEX_COLUMNS, ScanIndex, build_index
from recipe_core.scan.index.embed import (
    DCT32,
    EMBEDDING_DIM,
    laplacian_variance,
    perceptual_hash,
    pixel_embedding,
)
from recipe_core.scan.index.embedders import resolve_embedding
from recipe_core.scan.index.features import index_chunk
from recipe_core.settings import load_settings
from recipe_core.workspace import Workspace, open_workspace
from tests.conftest import write_image_folder


def sklearn_digits_rgb32() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits as (N, 32, 32, 3) uint8 dark-on-white, and labels."""
    digits = load_digits()
    images = []
    for pixels in digits.images:
        small = Image.fromarray((255 - pixels * 255 / 16).astype(np.uint8), mode="L")
        images.append(np.asarray(small.resize((32, 32), Image.Resampling.BICUBIC).convert("RGB")))
    return np.stack(images), digits.target


def features_of(tmp_path: Path, images: dict[str, Image.Image]) -> pd.DataFrame:
    paths = []
    for name, image in images.items():
        image.save(tmp_path / name)
        paths.append(str(tmp_path / name))
    return pd.DataFrame(index_chunk(paths).columns, index=list(images))


# --- statistics with trusted answers ----------------------------------------------------------


def test_solid_and_two_tone_statistics(tmp_path: Path) -> None:
    half = np.zeros((20, 20), dtype=np.uint8)
    half[:, 10:] = 255
    rows = features_of(
        tmp_path,
        {
            "red.png": Image.new("RGB", (10, 30), (255, 0, 0)),
            "half.png": Image.fromarray(half, mode="L"),
        },
    )
    red, two = rows.loc["red.png"], rows.loc["half.png"]
    assert (red.mean_r, red.mean_g, red.mean_b) == (pytest.approx(1.0), 0.0, 0.0)
    assert red.std_r == pytest.approx(0.0, abs=1e-6) and red.entropy == pytest.approx(0.0)
    assert red.brightness == pytest.approx(0.299, abs=0.003) and red.contrast < 1e-3
    assert red.aspect_ratio == pytest.approx(1 / 3) and red.width == 10 and red.channels == 3
    assert two.brightness == pytest.approx(0.5, abs=0.01)
    assert two.contrast == pytest.approx(0.5, abs=0.01) and two.entropy == pytest.approx(1.0)
    assert two.channels == 1 and two["mode"] == "L" and two.format == "PNG"


def test_statistics_of_a_large_image_come_from_its_thumbnail(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, (1200, 900, 3), dtype=np.uint8)
    row = features_of(tmp_path, {"big.png": Image.fromarray(big)}).iloc[0]
    assert (row.width, row.height) == (900, 1200)
    assert row.mean_g == pytest.approx(big[..., 1].mean() / 255, abs=0.01)


def test_dct_matrix_matches_scipy() -> None:
    x = np.random.default_rng(1).normal(size=(32, 32)).astype(np.float32)
    ours = DCT32 @ x @ DCT32.T
    np.testing.assert_allclose(ours, fft.dctn(x, norm="ortho"), atol=1e-4)


def test_laplacian_variance_matches_scipy() -> None:
    x = np.random.default_rng(2).integers(0, 256, (3, 40, 50)).astype(np.float32)
    reference = [ndimage.laplace(img)[1:-1, 1:-1].var() for img in x]
    np.testing.assert_allclose(laplacian_variance(x), reference, rtol=1e-4)


def test_blur_is_lower_for_a_blurred_copy(tmp_path: Path) -> None:
    sharp = Image.fromarray(np.random.default_rng(3).integers(0, 256, (64, 64), dtype=np.uint8))
    rows = features_of(tmp_path, {"s.png": sharp, "b.png": sharp.resize((16, 16)).resize((64, 64))})
    assert rows.loc["b.png", "blur"] < rows.loc["s.png", "blur"] / 5


def test_hashes_tell_bytes_from_pixels(tmp_path: Path) -> None:
    image = Image.fromarray(np.random.default_rng(4).integers(0, 256, (32, 32), dtype=np.uint8))
    image.save(tmp_path / "a.png", compress_level=1)
    image.save(tmp_path / "b.png", compress_level=9)
    image.save(tmp_path / "c.png", compress_level=1)
    image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(tmp_path / "d.png")
    cols = index_chunk([str(tmp_path / n) for n in ("a.png", "b.png", "c.png", "d.png")]).columns
    assert cols["byte_hash"][0] == cols["byte_hash"][2] != cols["byte_hash"][1]
    assert cols["pixel_hash"][0] == cols["pixel_hash"][1] != cols["pixel_hash"][3]


def hamming(a: int, b: int) -> int:
    return bin((int(a) ^ int(b)) & (2**64 - 1)).count("1")


def test_perceptual_hash_is_stable_under_small_edits_and_differs_across_images() -> None:
    rgb, _ = sklearn_digits_rgb32()
    lum = rgb[:200, :, :, 0].astype(np.float32)
    base = perceptual_hash(lum)
    brighter = perceptual_hash(np.clip(lum * 0.8 + 40, 0, 255))
    noisy = perceptual_hash(lum + np.random.default_rng(5).normal(0, 4, lum.shape))
    same = [hamming(a, b) for a, b in zip(base, brighter, strict=True)]
    close = [hamming(a, b) for a, b in zip(base, noisy, strict=True)]
    other = [hamming(base[i], base[i + 100]) for i in range(100)]
    assert np.median(same) <= 2 and np.median(close) <= 6 and np.median(other) >= 14


# --- the embedding -------------------------------------------------------------------------


def test_embedding_rows_are_unit_length_and_fixed() -> None:
    rgb, _ = sklearn_digits_rgb32()
    emb = pixel_embedding(rgb[:50])
    assert emb.shape == (50, EMBEDDING_DIM) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(emb, pixel_embedding(rgb[:50]))  # no randomness


def test_linear_model_on_the_embedding_reads_digits() -> None:
    """The label-issue detector relies on this: >= 95 % cross-validated accuracy on digits."""
    rgb, labels = sklearn_digits_rgb32()
    emb = pixel_embedding(rgb)
    model = LogisticRegression(C=10, max_iter=400)
    accuracy = cross_val_score(model, emb, labels, cv=3).mean()
    assert accuracy >= 0.95, accuracy


def test_colour_photographs_stand_far_from_digits() -> None:
    """The outlier detector relies on this: a photo's nearest digit is farther than any
    digit's nearest other digit."""
    rgb, _ = sklearn_digits_rgb32()
    rng = np.random.default_rng(6)
    photos = np.stack(
        [
            np.asarray(
                Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize(
                    (32, 32), Image.Resampling.BICUBIC
                )
            )
            for _ in range(10)
        ]
    )
    digits = pixel_embedding(rgb[:500])
    distance = 1 - pixel_embedding(photos) @ digits.T  # cosine distance
    within = 1 - digits @ digits.T
    np.fill_diagonal(within, np.inf)
    assert distance.min(axis=1).min() > np.percentile(within.min(axis=1), 99)


def test_unknown_embedding_and_missing_weights_say_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match=r"Unknown embedding 'clip'.*default"):
        resolve_embedding("clip")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(ConfigError, match=r"never downloads.*resnet18-f37072fd\.pth"):
        resolve_embedding("resnet18", torch_home=load_settings().torch_home)
    with pytest.raises(ConfigError, match="not found"):
        resolve_embedding(f"resnet18:{tmp_path / 'nope.pth'}")


def test_resnet18_embedding_from_local_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch
    from torchvision.models import resnet18

    torch.manual_seed(0)
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(resnet18(weights=None).state_dict(), checkpoints / "resnet18-f37072fd.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    root = write_image_folder(tmp_path / "ds", classes=2, per_class=2, splits=False)
    (root / "class_0" / "bad.png").write_bytes(b"")
    index = build_index(open_dataset(root), embedding="resnet18", workers=0, device="cpu")
    assert index.embedding_name == "resnet18" and index.embeddings.shape == (5, 512)
    norms = np.linalg.norm(index.embeddings, axis=1)
    np.testing.assert_allclose(norms[index.valid], 1.0, atol=1e-5)
    assert norms[~index.valid].tolist() == [0.0]


# --- index assembly and the workspace cache ------------------------------------------------


def test_index_rows_follow_the_samples(tmp_path: Path) -> None:
    source = open_dataset(write_image_folder(tmp_path / "ds", per_class=3))
    index = build_index(source, workers=0)
    assert list(index.table.columns) == list(INDEX_COLUMNS)
    assert index.table["path"].tolist() == source.samples["path"].tolist()
    assert index.table["sample_id"].tolist() == source.samples["sample_id"].tolist()
    assert index.pixels.shape == (len(source), 32, 32) and index.reused == 0
    first_file = Image.open(source.abspath(source.samples["path"][0]))
    first = np.asarray(first_file.resize((32, 32), Image.Resampling.BILINEAR))
    assert np.abs(index.pixels[0].astype(int) - first.astype(int)).max() <= 1


def test_pool_and_in_process_give_the_same_index(tmp_path: Path) -> None:
    source = open_dataset(write_image_folder(tmp_path / "ds", classes=2, per_class=300, size=8))
    here = build_index(source, workers=0)
    pooled = build_index(source, workers=2)
    pd.testing.assert_frame_equal(here.table, pooled.table)
    np.testing.assert_array_equal(here.embeddings, pooled.embeddings)
    np.testing.assert_array_equal(here.pixels, pooled.pixels)


def test_rescan_decodes_only_added_and_touched_files(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "ds", classes=2, per_class=5)
    workspace = open_workspace(tmp_path / "ws")
    first = build_index(open_dataset(root), workspace=workspace, workers=0)
    decoded: list[int] = []

    def count(done: int, total: int) -> None:
        decoded.append(total)

    again = build_index(open_dataset(root), workspace=workspace, workers=0, progress=count)
    assert again.reused == len(first) and decoded == [] and again.fingerprint == first.fingerprint
    touched = root / "train" / "class_0" / "000.png"
    Image.new("L", (16, 16), 0).save(touched)
    os.utime(touched, ns=(1, 1))  # a new mtime even on a coarse clock
    Image.new("L", (16, 16), 255).save(root / "val" / "class_1" / "new.png")
    third = build_index(open_dataset(root), workspace=workspace, workers=0, progress=count)
    assert third.reused == len(first) - 1 and len(third) == len(first) + 1
    assert decoded[-1] == 2
    row = third.table.set_index("path").loc["train/class_0/000.png"]
    assert row.brightness == 0.0 and third.fingerprint != first.fingerprint
    fresh = build_index(open_dataset(root), workers=0)  # no cache: the trusted answer
    pd.testing.assert_frame_equal(third.table, fresh.table)
    np.testing.assert_array_equal(third.embeddings, fresh.embeddings)


def test_a_relabelled_file_is_reused_but_gets_its_new_label(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "ds", classes=2, per_class=3, splits=False)
    workspace = open_workspace(tmp_path / "ws")
    build_index(open_dataset(root), workspace=workspace, workers=0)
    (root / "class_0" / "000.png").rename(root / "class_1" / "moved.png")
    index = build_index(open_dataset(root), workspace=workspace, workers=0)
    assert index.table.set_index("path").loc["class_1/moved.png", "label"] == "class_1"


def test_a_damaged_cache_is_a_miss_not_an_error(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "ds", classes=2, per_class=2)
    workspace = open_workspace(tmp_path / "ws")
    first = build_index(open_dataset(root), workspace=workspace, workers=0)
    (workspace.scans / first.fingerprint / "index.parquet").write_bytes(b"not parquet")
    again = build_index(open_dataset(root), workspace=workspace, workers=0)
    assert again.reused == 0 and len(again) == len(first)


def _folders(workspace: Workspace) -> set[str]:
    return {p.name for p in workspace.scans.iterdir() if p.name not in ("latest", "memo")}


def _same_as_fresh(root: Path, index: ScanIndex) -> None:
    fresh = build_index(open_dataset(root), workers=0)  # no cache: the trusted answer
    pd.testing.assert_frame_equal(index.table.drop(columns="mtime_ns"),
                                  fresh.table.drop(columns="mtime_ns"))  # fmt: skip
    np.testing.assert_array_equal(index.embeddings, fresh.embeddings)
    np.testing.assert_array_equal(index.pixels, fresh.pixels)


def test_the_cache_keeps_one_scan_per_dataset_and_the_base_its_delta_rests_on(
    tmp_path: Path,
) -> None:
    """A rescan that changed few rows stores only those, as a delta of the last full scan;
    each delta replaces the last; the base goes when a scan is written in full again."""
    root = write_image_folder(tmp_path / "ds", classes=2, per_class=10)
    workspace = open_workspace(tmp_path / "ws")
    first = build_index(open_dataset(root), workspace=workspace, workers=0)
    assert _folders(workspace) == {first.fingerprint}
    Image.new("L", (16, 16), 9).save(root / "train" / "class_0" / "extra.png")
    second = build_index(open_dataset(root), workspace=workspace, workers=0)
    delta = workspace.scans / second.fingerprint
    assert _folders(workspace) == {first.fingerprint, second.fingerprint}
    assert not (delta / "embeddings.npy").exists() and len(np.load(delta / "delta_pixels.npy")) == 1
    assert json.loads((delta / "meta.json").read_text())["base"] == first.fingerprint
    (root / "val" / "class_1" / "003.png").unlink()  # rows no longer line up with the base
    Image.new("L", (16, 16), 200).save(root / "val" / "class_0" / "000.png")
    third = build_index(open_dataset(root), workspace=workspace, workers=0)
    assert _folders(workspace) == {first.fingerprint, third.fingerprint}  # of the base, not of 2
    assert len(np.load(workspace.scans / third.fingerprint / "delta_pixels.npy")) == 2
    _same_as_fresh(root, third)
    hit = build_index(open_dataset(root), workspace=workspace, workers=0)  # read back: base + delta
    assert hit.reused == len(third)
    _same_as_fresh(root, hit)
    for i in range(10):  # more than MAX_DELTA_SHARE of the rows: written in full, base deleted
        Image.new("L", (16, 16), 40 + i).save(root / "train" / "class_1" / f"00{i}.png")
    fourth = build_index(open_dataset(root), workspace=workspace, workers=0)
    assert _folders(workspace) == {fourth.fingerprint}
    assert (workspace.scans / fourth.fingerprint / "embeddings.npy").exists()
    _same_as_fresh(root, fourth)


def test_a_delta_whose_base_is_gone_or_damaged_is_a_miss(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "ds", classes=2, per_class=10)
    workspace = open_workspace(tmp_path / "ws")
    first = build_index(open_dataset(root), workspace=workspace, workers=0)
    Image.new("L", (16, 16), 9).save(root / "train" / "class_0" / "extra.png")
    second = build_index(open_dataset(root), workspace=workspace, workers=0)
    np.save(workspace.scans / second.fingerprint / "base_rows.npy", np.arange(3))
    assert build_index(open_dataset(root), workspace=workspace, workers=0).reused == 0
    Image.new("L", (16, 16), 19).save(root / "train" / "class_0" / "extra2.png")
    third = build_index(open_dataset(root), workspace=workspace, workers=0)
    base = json.loads((workspace.scans / third.fingerprint / "meta.json").read_text()).get("base")
    if base:  # the miss above was written in full; this one rests on it
        shutil.rmtree(workspace.scans / base)
        again = build_index(open_dataset(root), workspace=workspace, workers=0)
        assert again.reused == 0
        _same_as_fresh(root, again)
    assert first.fingerprint not in _folders(workspace)


def test_touching_a_file_keeps_the_fingerprint_and_refreshes_its_mtime(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "ds", classes=2, per_class=2, splits=False)
    workspace = open_workspace(tmp_path / "ws")
    first = build_index(open_dataset(root), workspace=workspace, workers=0)
    os.utime(root / "class_1" / "001.png", ns=(10**18, 10**18))
    touched = build_index(open_dataset(root), workspace=workspace, workers=0)
    assert touched.reused == 3 and touched.fingerprint == first.fingerprint
    settled = build_index(open_dataset(root), workspace=workspace, workers=0)
    assert settled.reused == 4
    assert settled.table.set_index("path").loc["class_1/001.png", "mtime_ns"] == 10**18


def test_pool_works_from_a_threaded_script_without_main_guard(tmp_path: Path) -> None:
    """Spawn/forkserver workers would re-run such a script (and fail); ours must not."""
    import subprocess
    import sys

    root = write_image_folder(tmp_path / "ds", classes=2, per_class=260, size=8, splits=False)
    script = tmp_path / "user_script.py"
    script.write_text(
        "import threading\n"
        "from recipe_core.data import open_dataset\n"
        "from recipe_core.scan.index import build_index\n"
        "stop = threading.Event()\n"
        "threading.Thread(target=stop.wait, daemon=True).start()\n"
        f"index = build_index(open_dataset({str(root)!r}), workers=2)\n"
        "print('rows', len(index))\n"
        "stop.set()\n"
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "rows 520"
