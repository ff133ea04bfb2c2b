"""Checks on a dataset and a built-in model: the model factory, loader and loss that
`recipe check`, the check jobs and "what the net sees" all build the same way.

    inputs = build_check_inputs("sample_data/digits", "mlp", batch_size=64)
    report = run_all(inputs.factory, inputs.loader, inputs.loss_fn,
                     num_classes=inputs.num_classes, seed=inputs.seed)
    x, y = capture_batches(inputs, count=1)[0]   # the exact tensors model(x) received
    view = see_batch(inputs, 0)                  # ... decoded, measured, with its warnings
    view.sample_ids                              # which dataset samples the batch holds
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from recipe_core.batch import BatchTap, BatchView, Normalization, inspect_batch
from recipe_core.data import open_dataset
from recipe_core.data.tensors import NormalizedImages, load_image_tensors, make_loader
from recipe_core.errors import ConfigError
from recipe_core.train.models import MODELS, ModelSpec, scalable_factory

MAX_CAPTURED = 32  # batches `capture_batches` may capture: it runs the model on each


@dataclass(frozen=True)
class CheckInputs:
    model: str  # built-in model name (a key of MODELS)
    factory: Callable[..., nn.Module] = field(repr=False)  # seeded; accepts width=
    dataset: NormalizedImages = field(repr=False)  # (x, y): x (C, H, W) float32, normalised
    loss_fn: nn.Module = field(repr=False)
    classes: tuple[str, ...]
    normalize: Normalization  # the (mean, std) inside `dataset`, on the [0, 1] scale
    skipped: int  # files that did not decode (left out)
    batch_size: int  # images per batch
    seed: int  # weights and batch order

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def loader(self) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
        """A fresh seeded, shuffled loader: every call yields the same batches in the same order
        (one shared loader would advance its generator on each pass)."""
        return make_loader(self.dataset, batch_size=self.batch_size, shuffle=True, seed=self.seed)

    @property
    def reference(self) -> torch.Tensor:
        """(N, C, H, W) uint8: a few of the dataset's own images, to tell a scrambled batch."""
        return self.dataset.data.images[:64]


def build_check_inputs(
    dataset: str,
    model: str,
    *,
    batch_size: int = 64,
    image_size: int = 32,
    augment: bool = False,
    seed: int = 0,
) -> CheckInputs:
    """Load `dataset`'s train split (or all of it when it has no splits) into memory, normalised
    with its own per-channel mean/std, with a seeded `model` factory and cross-entropy.

    Raises ConfigError for an unknown model or batch size < 2, DatasetError for unreadable data.
    """
    if model not in MODELS:
        raise ConfigError(f"Unknown model {model!r}. Built-in models: {', '.join(MODELS)}.")
    if batch_size < 2:
        raise ConfigError(f"batch_size={batch_size} is too small: checks compare samples "
                          "within a batch, so use at least 2 (64 is typical).")  # fmt: skip
    source = open_dataset(dataset)
    split = "train" if "train" in source.splits else None
    data = load_image_tensors(source, split=split, size=image_size)
    mean, std = data.channel_stats()
    spec = ModelSpec(data.channels, image_size, len(data.classes))
    return CheckInputs(
        model=model, factory=scalable_factory(model, spec, seed=seed),
        dataset=NormalizedImages(data, mean=mean, std=std, augment=augment),
        loss_fn=nn.CrossEntropyLoss(), classes=data.classes, normalize=(mean, std),
        skipped=len(data.skipped), batch_size=batch_size, seed=seed,
    )  # fmt: skip


def capture_batches(
    inputs: CheckInputs, *, count: int, device: str | torch.device | None = None
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first `count` (x, y) batches exactly as `model(x)` received them, recorded by a
    BatchTap at the model's door while the model runs on the loader (no training).

    x is (B, C, H, W) float32 as fed (after augmentation and normalisation), on the CPU.
    """
    return _capture(inputs, count, device)[0]


def _capture(
    inputs: CheckInputs, count: int, device: str | torch.device | None
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], list[np.ndarray]]:
    """`capture_batches`, and each batch's dataset sample ids in batch order."""
    if not 1 <= count <= MAX_CAPTURED:
        raise ConfigError(f"count={count}: capture between 1 and {MAX_CAPTURED} batches.")
    target = torch.device(device) if device is not None else torch.device("cpu")
    model = inputs.factory().to(target).eval()
    labels: list[torch.Tensor] = []
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    # The same seeded loader as `inputs.loader` (the sampler sees only the length and the
    # generator), over a dataset that notes which items the batches were built from.
    recording = _Recording(inputs.dataset)
    loader = make_loader(recording, batch_size=inputs.batch_size, shuffle=True, seed=inputs.seed)
    with torch.random.fork_rng(devices=devices), BatchTap(model, first=count) as tap:
        torch.manual_seed(inputs.seed)  # augmentations draw from the global RNG
        with torch.no_grad():
            for x, y in loader:
                model(x.to(target))
                labels.append(y)
                if len(labels) == count:
                    break
    ids = inputs.dataset.data.sample_ids[np.asarray(recording.seen, dtype=np.int64)]
    bounds = np.cumsum([len(y) for y in labels])[:-1]
    batches = [(c.inputs, y) for c, y in zip(tap.captured, labels, strict=False)]
    return batches, np.split(ids, bounds)


class _Recording(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """A dataset that records the indices it is asked for, in order (single-process loading:
    the loader's batches are exactly consecutive runs of them)."""

    def __init__(self, inner: NormalizedImages) -> None:
        self.inner = inner
        self.seen: list[int] = []

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        self.seen.append(int(index))
        return self.inner[index]


def see_batch(
    inputs: CheckInputs, index: int = 0, *, device: str | torch.device | None = None
) -> BatchView:
    """What the net sees: batch `index` (0-based, < MAX_CAPTURED) captured at `model(x)`,
    decoded with the loader's Normalize undone, measured per channel, with its warnings."""
    if not 0 <= index < MAX_CAPTURED:
        raise ConfigError(f"Batch index {index}: choose 0..{MAX_CAPTURED - 1}.")
    captured, ids = _capture(inputs, index + 1, device)
    if index >= len(captured):
        raise ConfigError(f"Batch index {index}: the loader has only {len(captured)} batches "
                          f"of {inputs.batch_size}. Choose 0..{len(captured) - 1}.")  # fmt: skip
    x, y = captured[index]
    view = inspect_batch(x, y, classes=inputs.classes, normalize=inputs.normalize,
                         reference=inputs.reference)  # fmt: skip
    return replace(view, sample_ids=ids[index])
