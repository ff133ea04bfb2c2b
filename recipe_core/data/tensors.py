"""Load an image dataset into memory as tensors, and the loaders that feed a model from them.

Recipe's built-in jobs and checks work on small-to-medium image datasets, so holding the decoded
uint8 images in memory (and on the GPU when there is one) is both the simplest and fastest path.
Normalisation is a torchvision `Normalize` inside the dataset so "what the net sees" can find and
undo it.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from recipe_core.data.images import describe_error, load_image, to_rgb
from recipe_core.data.source import DatasetSource
from recipe_core.errors import DatasetError


@dataclass(frozen=True)
class ImageTensors:
    images: torch.Tensor = field(repr=False)  # (N, C, H, W) uint8
    labels: torch.Tensor = field(repr=False)  # (N,) int64 index into `classes`
    sample_ids: np.ndarray = field(repr=False)  # (N,) int64
    classes: tuple[str, ...]
    skipped: pd.DataFrame = field(repr=False)  # path, error: files that did not decode

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    def channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std on the [0, 1] scale (for `Normalize`)."""
        x = self.images.float().div_(255)
        mean = x.mean(dim=(0, 2, 3))
        std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)  # a constant channel must not divide by zero
        return tuple(mean.tolist()), tuple(std.tolist())


def load_image_tensors(
    source: DatasetSource,
    *,
    split: str | None = None,
    size: int = 32,
    channels: int | None = None,
    classes: Sequence[str] | None = None,
    exclude: Sequence[int] = (),
    workers: int = 8,
) -> ImageTensors:
    """Decode every (readable) image of `split` to a `size`x`size` tensor.

    `channels` is 1 or 3; None picks 1 when every image is grayscale. `classes` fixes the label
    order (pass the train split's classes when loading val). `exclude` drops sample ids (e.g.
    curated-out files). Undecodable files are reported in `skipped`, never raised.
    """
    samples = source.samples
    if split is not None:
        if split not in source.splits:
            raise DatasetError(
                f"Split {split!r} not found in {source.root}; available: {list(source.splits)}."
            )
        samples = samples[samples["split"] == split]
    if len(exclude):
        samples = samples[~samples["sample_id"].isin(list(exclude))]
    class_list = tuple(classes) if classes is not None else source.classes
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        decoded = list(pool.map(lambda p: _decode(source, p, size), samples["path"]))
    ok = [i for i, (img, _) in enumerate(decoded) if img is not None]
    skipped = pd.DataFrame(
        {"path": [p for p, (img, _) in zip(samples["path"], decoded, strict=True) if img is None],
         "error": [e for img, e in decoded if img is None]}
    )  # fmt: skip
    if not ok:
        raise DatasetError(f"No decodable images in {source.root} (split={split!r}).")
    imgs = [decoded[i][0] for i in ok]
    gray = all(im.mode == "L" for im in imgs if im is not None)
    n_ch = channels if channels is not None else (1 if gray else 3)
    array = np.stack([_to_array(im, n_ch) for im in imgs if im is not None])  # (N, H, W, C)
    kept = samples.iloc[ok]
    label_index = {c: i for i, c in enumerate(class_list)}
    unknown = sorted(set(kept["label"]) - set(label_index))
    if unknown:
        raise DatasetError(
            f"Labels {unknown[:5]} in split {split!r} are not among the classes "
            f"{list(class_list)}. Load the training split first and pass its classes, "
            "or fix the folder names."
        )
    return ImageTensors(
        images=torch.from_numpy(array).permute(0, 3, 1, 2).contiguous(),
        labels=torch.tensor([label_index[c] for c in kept["label"]], dtype=torch.int64),
        sample_ids=kept["sample_id"].to_numpy(),
        classes=class_list,
        skipped=skipped,
    )


def _decode(source: DatasetSource, path: str, size: int) -> tuple[Image.Image | None, str]:
    try:
        im = load_image(source.abspath(path))
        im = im if im.mode == "L" else to_rgb(im)
        return im.resize((size, size), Image.Resampling.BILINEAR), ""
    except Exception as exc:
        return None, describe_error(exc)


def _to_array(im: Image.Image, channels: int) -> np.ndarray:
    im = im.convert("L") if channels == 1 else to_rgb(im)
    arr = np.asarray(im, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


class NormalizedImages(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """(x, y) pairs: x is float32 (C, H, W), scaled to [0, 1] then `Normalize`d."""

    def __init__(
        self,
        data: ImageTensors,
        *,
        mean: Sequence[float],
        std: Sequence[float],
        augment: bool = False,
    ) -> None:
        from torchvision.transforms import v2  # seconds to import: only these loaders need it

        self.data = data
        self.normalize = v2.Normalize(mean=list(mean), std=list(std))
        # Light augmentation that keeps digits digits: small shifts, no flips.
        self.augment = v2.RandomAffine(degrees=8, translate=(0.08, 0.08)) if augment else None

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.data.images[i].float().div(255)  # (C, H, W) in [0, 1]
        if self.augment is not None:
            x = self.augment(x)
        return self.normalize(x), self.data.labels[i]


def make_loader(
    dataset: Dataset[tuple[torch.Tensor, torch.Tensor]],
    *,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    drop_last: bool = False,
) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
    """A seeded DataLoader: the same seed gives the same batch order."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, drop_last=drop_last
    )
