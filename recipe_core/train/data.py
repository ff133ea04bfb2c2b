"""Training data: the dataset decoded once into uint8 tensors, and batches drawn on the device.

The transform from stored pixels to what the net sees lives in one place, `Batcher.prepare`:
scale to [0, 1], optionally augment, `Normalize` with the train split's channel statistics
(the same arithmetic as torchvision's `Normalize` in recipe_core.data.tensors), optionally
zero (the input-independent baseline), optionally channels_last.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from recipe_core.data import open_dataset
from recipe_core.data.tensors import ImageTensors, load_image_tensors
from recipe_core.errors import ConfigError
from recipe_core.train.device import keep_on_device, should_pin
from recipe_core.train.probes import choose_probe

VAL_SPLITS = ("val", "valid", "validation")
MAX_ROTATION_DEG = 8.0  # matches NormalizedImages(augment=True): small, keeps digits digits
MAX_SHIFT = 0.08  # fraction of the image side


@dataclass(frozen=True)
class TrainData:
    train: ImageTensors
    val: ImageTensors
    mean: tuple[float, ...]  # per-channel, [0, 1] scale, from the train images
    std: tuple[float, ...]
    val_source: str  # where `val` came from, for the run record
    skipped: pd.DataFrame = field(repr=False)  # path, error, split: files that did not decode

    @property
    def classes(self) -> tuple[str, ...]:
        return self.train.classes


def subset(data: ImageTensors, index: np.ndarray) -> ImageTensors:
    """The rows `index` of `data` (same classes, no skipped files)."""
    idx = torch.as_tensor(index, dtype=torch.int64)
    return replace(
        data,
        images=data.images[idx],
        labels=data.labels[idx],
        sample_ids=data.sample_ids[index],
        skipped=data.skipped.iloc[:0],
    )


def load_train_data(
    dataset: str, *, image_size: int, val_fraction: float, seed: int, overfit_examples: int = 0
) -> TrainData:
    """Decode the train split (and val split, or a seeded held-out fraction of train)."""
    source = open_dataset(dataset)
    splits = set(source.splits)
    train_split = "train" if "train" in splits else ("" if splits == {""} else None)
    if train_split is None:
        raise ConfigError(
            f"Dataset {source.root} has splits {sorted(splits)} but no 'train' split. Rename the "
            "training folder to train/ (and validation to val/), or drop the split folders."
        )
    train = load_image_tensors(source, split=train_split or None, size=image_size)
    skipped = [train.skipped.assign(split=train_split)]
    val_split = next((s for s in VAL_SPLITS if s in splits), None)
    if val_split is not None:
        val = load_image_tensors(
            source, split=val_split, size=image_size, channels=train.channels, classes=train.classes
        )
        skipped.append(val.skipped.assign(split=val_split))
        val_source = f"the {val_split!r} split"
    else:
        train, val = _hold_out(train, val_fraction, seed)
        val_source = f"{val_fraction:.0%} of the training images, held out (seed {seed})"
    if overfit_examples:
        keep = choose_probe(train.labels.numpy(), size=overfit_examples, seed=seed)
        train = subset(train, keep)
    mean, std = train.channel_stats()
    return TrainData(
        train=train,
        val=val,
        mean=mean,
        std=std,
        val_source=val_source,
        skipped=pd.concat(skipped, ignore_index=True),
    )


def _hold_out(data: ImageTensors, fraction: float, seed: int) -> tuple[ImageTensors, ImageTensors]:
    n = len(data)
    n_val = min(n - 1, max(1, round(n * fraction)))
    if n < 2:
        raise ConfigError(f"Only {n} decodable training image(s): too few to hold out a val set.")
    order = np.random.default_rng(seed).permutation(n)
    return subset(data, np.sort(order[n_val:])), subset(data, np.sort(order[:n_val]))


class Batcher:
    """Seeded, shuffled batches of (x, y, index) from uint8 images held on the device (or in
    pinned host memory when too big), each epoch a fresh permutation, no partial batches."""

    def __init__(
        self,
        data: ImageTensors,
        *,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        batch_size: int,
        device: torch.device,
        seed: int,
        augment: bool = False,
        zero_inputs: bool = False,
        channels_last: bool = False,
    ) -> None:
        self.on_device = keep_on_device(data.images.numel(), device)
        self.pin = should_pin(device) and not self.on_device
        self.resident = self.on_device or device.type == "cpu"  # images where the net runs
        self.images = data.images.to(device) if self.on_device else data.images
        self.labels = data.labels.to(device)
        self.sample_ids = data.sample_ids
        self.device, self.augment, self.zero_inputs = device, augment, zero_inputs
        self.channels_last = channels_last
        shape = (1, -1, 1, 1)
        self.shift = torch.tensor(mean, device=device).view(shape)  # (1, C, 1, 1)
        self.scale = torch.tensor(std, device=device).view(shape)
        self.batch_size = min(batch_size, len(data))
        self.order_gen = torch.Generator().manual_seed(seed)
        self.aug_gen = torch.Generator(device=device).manual_seed(seed + 1)
        self.order = torch.empty(0, dtype=torch.int64)  # (N,) this epoch's permutation, host
        self.order_dev = self.order  # the same on the device: no host->device copy per step
        self.cursor = self.end = 0  # next batch starts at `cursor`; `end` = len(self.order)

    def next(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The next (x, y, index): x and y on the device, index (B,) int64 on the host. Per
        step: two slices, a gather and the normalisation; no host<->device transfer or sync
        when the images live on the device."""
        if self.cursor + self.batch_size > self.end:
            self._new_epoch()
        start = self.cursor
        self.cursor = stop = start + self.batch_size
        idx, idx_dev = self.order[start:stop], self.order_dev[start:stop]  # (B,): host, device
        if self.resident:
            pixels = self.images[idx_dev]
        else:  # gather on the host; a pinned staging copy lets the upload run asynchronously
            pixels = self.images[idx].pin_memory() if self.pin else self.images[idx]
            pixels = pixels.to(self.device, non_blocking=True)
        return self._normalise(pixels, augment=self.augment), self.labels[idx_dev], idx

    def _new_epoch(self) -> None:
        """A fresh seeded permutation (drawn on the host, so CPU and CUDA runs see the same
        batches), uploaded once per epoch. On CUDA the upload goes through pinned memory,
        non-blocking: a pageable copy would make the host wait for the GPU's whole queue."""
        order = torch.randperm(len(self.labels), generator=self.order_gen)
        if self.device.type == "cuda":
            order = order.pin_memory()  # the caching host allocator keeps it until copied
        self.order, self.order_dev = order, order.to(self.device, non_blocking=True)
        self.cursor, self.end = 0, len(order)

    def prepare(self, pixels: torch.Tensor, *, augment: bool = False) -> torch.Tensor:
        """uint8 (B, C, H, W) -> float32 (B, C, H, W), normalised: exactly what the net sees."""
        return self._normalise(pixels.to(self.device, non_blocking=True), augment=augment)

    def _normalise(self, pixels: torch.Tensor, *, augment: bool) -> torch.Tensor:
        """`prepare` for uint8 pixels already on the device."""
        x = pixels.float().div_(255)
        if augment:
            x = random_affine(x, generator=self.aug_gen)
        x = x.sub_(self.shift).div_(self.scale)
        if self.zero_inputs:
            x = torch.zeros_like(x)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


def random_affine(x: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
    """Per-image random rotation (±8°) and shift (±8% per axis) on the device, black fill.
    x: (B, C, H, W) float in [0, 1]."""
    uniform = torch.rand((x.shape[0], 3), generator=generator, device=x.device) * 2 - 1
    angle = uniform[:, 0] * math.radians(MAX_ROTATION_DEG)  # (B,) radians
    return affine(x, angle, uniform[:, 1:] * MAX_SHIFT)


def affine(x: torch.Tensor, angle: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate each image by `angle` (B,) radians and move it by `shift` (B, 2) fractions of its
    width and height (+ = right/down), sampling bilinearly with zero fill."""
    cos, sin = torch.cos(angle), torch.sin(angle)
    # affine_grid maps output to input coordinates spanning [-1, 1]: moving the content right
    # by a fraction f means sampling 2f to the left.
    tx, ty = -2 * shift[:, 0], -2 * shift[:, 1]
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (B, H, W, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
