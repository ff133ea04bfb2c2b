"""An image classifier the way most projects write one: torchvision's ImageFolder, a v2
transform chain, a DataLoader and a small CNN, on the bundled digits (sample_data/digits).

    recipe check --pipeline examples/image_classifier.py:pipeline
    recipe see   --pipeline examples/image_classifier.py:pipeline --out /tmp/seen
    recipe train --pipeline examples/image_classifier.py:pipeline --preset overfit

Copy this file into your project, point DATA at your folder and swap in your model.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision.transforms import v2

from recipe_core import Pipeline

DATA = Path(os.environ.get("DIGITS", Path(__file__).resolve().parents[1] / "sample_data/digits"))
CLASSES = 10
MEAN, STD = (0.5,), (0.5,)


def readable(path: str) -> bool:
    """ImageFolder's is_valid_file: leave out files that do not decode (the scan lists them).
    A full load, not verify(): a truncated PNG passes verify() and fails mid-epoch."""
    try:
        with Image.open(path) as image:
            image.load()
        return True
    except (OSError, SyntaxError, ValueError):
        return False


def transforms(train: bool) -> v2.Compose:
    steps: list[nn.Module] = [v2.ToImage(), v2.Grayscale(1), v2.Resize((16, 16), antialias=True)]
    if train:
        steps.append(v2.RandomAffine(degrees=8, translate=(0.05, 0.05)))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)]
    return v2.Compose(steps)


def make_model(width: float = 1.0) -> nn.Module:
    """A small CNN; `width` scales its channels (Recipe's capacity check climbs it). It seeds
    its own init, so every build starts from the same weights whoever calls it."""
    torch.manual_seed(0)
    c1, c2 = max(2, int(16 * width)), max(4, int(32 * width))
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(c2 * 4 * 4, CLASSES),
    )  # fmt: skip


def loader(split: str, *, train: bool) -> DataLoader[tuple[torch.Tensor, int]]:
    folder = datasets.ImageFolder(str(DATA / split), transform=transforms(train),
                                  is_valid_file=readable)  # fmt: skip
    generator = torch.Generator().manual_seed(0)
    return DataLoader(folder, batch_size=64, shuffle=train, generator=generator)


def pipeline() -> Pipeline:
    train = loader("train", train=True)
    return Pipeline(
        make_model,
        train,
        nn.CrossEntropyLoss(),
        task="classification",
        num_classes=CLASSES,
        val_loader=loader("val", train=False),
        classes=train.dataset.classes,  # type: ignore[attr-defined]
        mean=MEAN,
        std=STD,
    )
