"""Datasets with planted problems, scanned once per session with the real scan (S1's index +
these detectors): sklearn digits (grey, 32 px) and synthetic RGB shapes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw
from sklearn.datasets import load_digits

from recipe_core.scan import scan
from recipe_core.scan.issues import IssueReport, detect_issues
from tests.issues.planting import write_planted


@dataclass(frozen=True)
class Planted:
    root: Path
    report: IssueReport
    oracle: pd.DataFrame

    @property
    def issues(self) -> pd.DataFrame:
        return self.report.table


def render_digits(n: int | None = None) -> tuple[list[np.ndarray], list[str]]:
    """sklearn digits as 32 px grey images, dark ink on white (as the sample data)."""
    digits = load_digits()
    images, labels = [], []
    for x, y in list(zip(digits.images, digits.target, strict=True))[:n]:
        small = Image.fromarray((255 - x * 255 / 16).astype(np.uint8))
        images.append(np.asarray(small.resize((32, 32), Image.Resampling.BICUBIC)))
        labels.append(str(y))
    return images, labels


def draw_face(rng: np.random.Generator, size: int = 32, rgb: bool = False) -> np.ndarray:
    """A smiley with small random variations: the strays form one tight cluster."""
    s = 4 * size
    im = Image.new("RGB", (s, s), (255, 255, 255))
    d = ImageDraw.Draw(im)
    j = rng.integers(-4, 5, 8)
    d.ellipse((10 + j[0], 10 + j[1], s - 10 + j[2], s - 10 + j[3]), outline=(0, 0, 0), width=6)
    for ex in (0.35, 0.65):
        cx, cy = ex * s + j[4], 0.4 * s + j[5]
        d.ellipse((cx - 7, cy - 7, cx + 7, cy + 7), fill=(0, 0, 0))
    d.arc((0.3 * s, 0.45 * s + j[6], 0.7 * s, 0.75 * s + j[7]), 20, 160, fill=(0, 0, 0), width=6)
    small = im.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(small if rgb else small.convert("L"))


def draw_shape(kind: int, rng: np.random.Generator) -> np.ndarray:
    """A 32 px RGB 'photo': textured random background + one coloured shape of class `kind`."""
    base = rng.integers(40, 216, 3)
    noise = rng.normal(0, 18, (8, 8, 3))
    bg = np.clip(base + np.kron(noise, np.ones((16, 16, 1))), 0, 255).astype(np.uint8)
    im = Image.fromarray(bg)
    d = ImageDraw.Draw(im)
    colour = tuple(int(c) for c in (255 - base + rng.integers(-30, 31, 3)) % 256)
    x0, y0 = rng.integers(12, 44, 2)
    r = int(rng.integers(28, 44))
    box = (int(x0), int(y0), int(x0) + 2 * r, int(y0) + 2 * r)
    if kind == 0:
        d.ellipse(box, fill=colour)
    elif kind == 1:
        d.rectangle(box, fill=colour)
    elif kind == 2:
        d.polygon(
            [(box[0], box[3]), (box[2], box[3]), ((box[0] + box[2]) // 2, box[1])], fill=colour
        )
    else:
        step = 10 + int(rng.integers(0, 6))
        for k in range(0, 128, 2 * step):
            d.rectangle((k, 0, k + step, 128) if kind == 3 else (0, k, 128, k + step), fill=colour)
    return np.asarray(im.resize((32, 32), Image.Resampling.BILINEAR))


def _scan_planted(root: Path, oracle: pd.DataFrame) -> Planted:
    result = scan(root, workers=0, cache=False)
    return Planted(root, detect_issues(result.index), oracle)


def write_planted_digits(root: Path) -> pd.DataFrame:
    """The held-out grey digits with 8 cartoon faces among them, planted under `root`; the
    oracle (also used by benchmarks/scan_photos.py)."""
    images, labels = render_digits()
    rng = np.random.default_rng(1)
    strays = [draw_face(rng) for _ in range(8)]
    return write_planted(root, images, labels, strays, seed=0, blurry=False)


def write_planted_shapes(root: Path) -> pd.DataFrame:
    """900 synthetic RGB shapes with 8 grey digits among them, planted under `root`; the
    oracle (also used by benchmarks/scan_photos.py)."""
    rng = np.random.default_rng(2)
    labels = [str(k) for k in rng.integers(0, 5, 900)]
    images = [draw_shape(int(k), rng) for k in labels]
    names = ["circle", "square", "triangle", "vstripes", "hstripes"]
    labels = [names[int(k)] for k in labels]
    digits, _ = render_digits(8)
    strays = [np.repeat(d[..., None], 3, axis=2) for d in digits]  # grey digits among photos
    return write_planted(root, images, labels, strays, seed=3)


@pytest.fixture(scope="session")
def planted_digits(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    root = tmp_path_factory.mktemp("planted_digits")
    return _scan_planted(root, write_planted_digits(root))


@pytest.fixture(scope="session")
def planted_shapes(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    root = tmp_path_factory.mktemp("planted_shapes")
    return _scan_planted(root, write_planted_shapes(root))
