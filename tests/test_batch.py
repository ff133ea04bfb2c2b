"""What the net sees: the tap records exactly what model(x) got; decoding undoes Normalize; the
warnings fire on planted data bugs and stay quiet on clean digits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchvision.transforms import v2

from recipe_core.batch import (
    BatchTap,
    detect_layout,
    find_normalize,
    inspect_batch,
    shuffle_warning,
    spatial_correlation,
)
from recipe_core.data.tensors import ImageTensors, NormalizedImages, make_loader
from recipe_core.errors import ConfigError


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3, 16, 16) uint8 colour digits (a tint per channel) and labels."""
    d = load_digits()
    x = F.interpolate(torch.tensor(d.images, dtype=torch.float32)[:, None] / 16, size=16)
    x = torch.cat([x, x.pow(2), x.sqrt()], dim=1)
    return (x * 255).round().to(torch.uint8), torch.tensor(d.target)


def normalized(images: torch.Tensor) -> tuple[torch.Tensor, tuple[tuple[float, ...], ...]]:
    x = images.float() / 255
    mean, std = x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3))
    out = (x - mean[:, None, None]) / std[:, None, None]
    return out, (tuple(mean.tolist()), tuple(std.tolist()))


def codes(view: object) -> set[str]:
    return {w.code for w in view.warnings}  # type: ignore[attr-defined]


def test_tap_records_first_k_and_every_nth_call_exactly() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    inputs = [torch.full((2, 4), float(i)) for i in range(12)]
    with BatchTap(model, first=2, every=5) as tap:
        for x in inputs:
            model(x)
    assert [c.call for c in tap.captured] == [0, 1, 5, 10]
    for c in tap.captured:
        assert torch.equal(c.inputs, inputs[c.call]) and c.training
    model(inputs[0])  # the hook is gone after the block
    assert len(tap.captured) == 4


def test_tap_copies_so_later_in_place_edits_do_not_leak() -> None:
    model = nn.Linear(3, 1)
    x = torch.zeros(1, 3)
    with BatchTap(model, first=1) as tap:
        model(x)
    x.add_(1)
    assert tap.captured[0].inputs.sum() == 0


def test_tap_rejects_nonsense_options() -> None:
    with pytest.raises(ConfigError, match="first=-1"):
        BatchTap(nn.Linear(1, 1), first=-1)


def test_decoding_undoes_normalize_back_to_the_original_pixels(digits) -> None:  # type: ignore[no-untyped-def]
    images, labels = digits
    x, norm = normalized(images[:32])
    view = inspect_batch(x, labels[:32], classes=[str(i) for i in range(10)], normalize=norm)
    original = images[:32].permute(0, 2, 3, 1).numpy()
    assert view.images is not None and view.images.dtype == np.uint8
    assert view.images.shape == (32, 16, 16, 3)
    assert np.abs(view.images.astype(int) - original.astype(int)).max() <= 1
    assert view.label_names == tuple(str(int(i)) for i in labels[:32])
    assert view.warnings == ()


def test_channels_last_is_detected_and_decoded_the_same(digits) -> None:  # type: ignore[no-untyped-def]
    images, _ = digits
    chw = inspect_batch(images[:8])
    hwc = inspect_batch(images[:8].permute(0, 2, 3, 1))
    assert (chw.layout, hwc.layout) == ("image_chw", "image_hwc")
    assert np.array_equal(chw.images, hwc.images)
    assert "channels_last" in codes(hwc)


@pytest.mark.parametrize(
    ("shape", "dtype", "layout"),
    [((8, 3, 32, 32), torch.float32, "image_chw"), ((8, 32, 32, 3), torch.uint8, "image_hwc"),
     ((8, 10), torch.float32, "table"), ((8, 16), torch.int64, "tokens"),
     ((8, 16, 4), torch.float32, "sequence")],
)  # fmt: skip
def test_detect_layout(shape: tuple[int, ...], dtype: torch.dtype, layout: str) -> None:
    assert detect_layout(torch.zeros(shape, dtype=dtype)) == layout


def test_channel_stats_match_numpy(digits) -> None:  # type: ignore[no-untyped-def]
    images, labels = digits
    x, _ = normalized(images[:16])
    x[0, 1, 0, 0] = float("nan")
    stats = inspect_batch(x, labels[:16]).stats
    ref = x.permute(1, 0, 2, 3).reshape(3, -1).double().numpy()
    assert list(stats["nan"]) == [0, 1, 0]
    assert np.allclose(stats["mean"], np.nanmean(ref, axis=1))
    assert np.allclose(stats["std"], np.nanstd(ref, axis=1))
    assert np.allclose(stats["max"], np.nanmax(ref, axis=1))
    assert set(stats["dtype"]) == {"torch.float32"} and set(stats["shape"]) == {"16x3x16x16"}


def test_planted_batch_bugs_are_flagged(digits) -> None:  # type: ignore[no-untyped-def]
    images, labels = digits
    x, norm = normalized(images[:32])
    assert codes(inspect_batch(images[:32].float(), labels[:32])) == {"not_normalized"}
    assert "label_out_of_range" in codes(inspect_batch(x, labels[:32] + 1, num_classes=10))
    assert "single_class" in codes(
        inspect_batch(x, torch.zeros(32, dtype=torch.long), num_classes=10)
    )
    assert "duplicates" in codes(inspect_batch(x[[0] * 32], labels[:32]))
    twice = (x - torch.tensor(norm[0])[:, None, None]) / torch.tensor(norm[1])[:, None, None]
    assert "out_of_range" in codes(inspect_batch(twice, labels[:32], normalize=norm))
    nan = x.clone()
    nan[3] = float("inf")
    assert "nonfinite" in codes(inspect_batch(nan, labels[:32]))


@pytest.mark.parametrize("kind", ["hwc_memory_viewed_as_chw", "chw_memory_viewed_as_hwc"])
def test_scrambled_images_are_caught_and_healing_proves_it(digits, kind: str) -> None:  # type: ignore[no-untyped-def]
    images, labels = digits
    x, _ = normalized(images[:32])
    b, c, h, w = x.shape
    bad = (x.permute(0, 2, 3, 1).reshape(b, c, h, w) if kind == "hwc_memory_viewed_as_chw"
           else x.reshape(b, h, w, c).permute(0, 3, 1, 2))  # fmt: skip
    view = inspect_batch(bad, labels[:32])
    assert "scrambled" in codes(view)
    assert spatial_correlation(x) > 0.6 and "scrambled" not in codes(inspect_batch(x, labels[:32]))


def test_scramble_against_the_datasets_own_images(digits) -> None:  # type: ignore[no-untyped-def]
    images, labels = digits
    gray = images[:32, :1].float()
    shuffled = gray.reshape(32, -1)[
        :, torch.randperm(256, generator=torch.Generator().manual_seed(0))
    ]
    view = inspect_batch(shuffled.reshape(32, 1, 16, 16), labels[:32], reference=images[:64, :1])
    assert "scrambled" in codes(view)
    assert next(w for w in view.warnings if w.code == "scrambled").severity == "fail"


def test_without_a_reference_shredded_images_warn_but_do_not_fail(digits) -> None:  # type: ignore[no-untyped-def]
    """No dataset images to compare with (a user's pipeline): a batch whose neighbouring pixels
    barely correlate is a warning (noise may be the data), never a failure; real digits and
    binary or tiny batches say nothing."""
    images, _ = digits
    x = images[:32, :1].float() / 255
    strided = x.reshape(32, -1, 4).transpose(1, 2).reshape(32, 1, 16, 16)  # reshape(-1, 4).t()
    noise = torch.rand(32, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    for bad in (strided, noise):
        found = [w for w in inspect_batch(bad).warnings if w.code == "scrambled"]
        assert [w.severity for w in found] == ["warn"]
    binary = (torch.rand(32, 1, 16, 16, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    tiny = torch.rand(32, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    for fine in (x, binary, tiny):
        assert "scrambled" not in codes(inspect_batch(fine))


def test_tables_and_sequences_render_as_dataframes() -> None:
    table = inspect_batch(torch.randn(5, 3), torch.tensor([0, 1, 0, 1, 2]))
    assert isinstance(table.table, pd.DataFrame) and list(table.table.columns) == [
        "x0",
        "x1",
        "x2",
        "label",
    ]
    seq = inspect_batch(torch.randn(2, 4, 3))
    assert seq.table is not None and list(seq.table[["sample", "step"]].iloc[5]) == [1, 1]
    tokens = inspect_batch(torch.randint(0, 9, (3, 7)), torch.randint(0, 9, (3, 7)))
    assert tokens.layout == "tokens" and tokens.images is None and tokens.table is not None


def test_shuffle_warning_sorted_vs_shuffled_loader() -> None:
    y = torch.tensor(load_digits().target)
    ordered = torch.sort(y, stable=True).values
    shuffled = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(0))]
    batches = lambda v: [v[i * 64 : (i + 1) * 64].numpy() for i in range(8)]  # noqa: E731
    warning = shuffle_warning(batches(ordered))
    assert warning is not None and warning.code == "not_shuffled" and warning.severity == "fail"
    assert shuffle_warning(batches(shuffled)) is None
    assert shuffle_warning([y[:1].numpy()] * 8) is None  # one class everywhere: nothing to shuffle


def test_find_normalize_in_loaders_and_transform_chains(digits) -> None:  # type: ignore[no-untyped-def]
    images, labels = digits
    data = ImageTensors(images=images[:20], labels=labels[:20], classes=tuple("0123456789"),
                        sample_ids=np.arange(20), skipped=pd.DataFrame())  # fmt: skip
    loader = make_loader(NormalizedImages(data, mean=(0.1, 0.2, 0.3), std=(0.5, 0.5, 0.5)),
                         batch_size=4, shuffle=False)  # fmt: skip
    assert find_normalize(loader) == ((0.1, 0.2, 0.3), (0.5, 0.5, 0.5))
    chain = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.5], [0.25])])
    assert find_normalize(chain) == ((0.5,), (0.25,))
    assert find_normalize(DataLoader(TensorDataset(images.float()), batch_size=4)) is None


def test_inspect_batch_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="Valid layouts"):
        inspect_batch(torch.zeros(2, 3), layout="spectrogram")
    with pytest.raises(ConfigError, match=r"torch\.Tensor"):
        inspect_batch(np.zeros((2, 3)))  # type: ignore[arg-type]


def test_wrong_normalisation_statistics_leave_inputs_nearly_constant(digits) -> None:  # type: ignore[no-untyped-def]
    images, labels = digits
    unit = images[:32].float() / 255  # ToTensor's [0, 1]
    mean, std = unit.mean(dim=(0, 2, 3)), unit.std(dim=(0, 2, 3))
    wrong = (unit - 255 * mean[:, None, None]) / (255 * std[:, None, None])  # 0-255 statistics
    view = inspect_batch(wrong, labels[:32])
    found = {w.code: w for w in view.warnings}
    assert float(view.stats["std"].max()) < 0.01  # the trusted answer: std / 255
    assert found["nearly_constant"].severity == "fail"
    assert f"{float(view.stats['std'].max()):.2g}" in found["nearly_constant"].message
    assert "not_normalized" not in found  # |mean| ~0.4 and std ~0.004 look "normalised"


@pytest.mark.parametrize("kind", ["standardised_table", "binary_table", "images_right", "unit"])
def test_legit_inputs_are_not_nearly_constant(digits, kind: str) -> None:  # type: ignore[no-untyped-def]
    images = digits[0]
    table = torch.randn(64, 12, generator=torch.Generator().manual_seed(0))
    rare = torch.zeros(64, 20)
    rare[3, 5] = 1.0  # one-hot features where a single sample differs
    right, unit = normalized(images[:32])[0], images[:32].float() / 255
    x = {"standardised_table": table, "binary_table": rare, "images_right": right,
         "unit": unit}[kind]  # fmt: skip
    assert "nearly_constant" not in codes(inspect_batch(x))
