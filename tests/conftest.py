"""Shared fixtures: small real image folders written to tmp dirs, and the repo's paths."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIGITS = REPO_ROOT / "sample_data" / "digits"

# AppTest runs page scripts in this process: make `import app.*` work as under `streamlit run`.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def write_image_folder(
    root: Path,
    *,
    classes: int = 3,
    per_class: int = 4,
    splits: bool = True,
    size: int = 16,
    seed: int = 0,
) -> Path:
    """A real image folder of random grayscale PNGs: root/{train,val}/<class>/<i>.png."""
    rng = np.random.default_rng(seed)
    for split in ("train", "val") if splits else ("",):
        for c in range(classes):
            folder = root / split / f"class_{c}" if split else root / f"class_{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (size, size), dtype=np.uint8)
                Image.fromarray(pixels, mode="L").save(folder / f"{i:03d}.png")
    return root


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return write_image_folder(tmp_path / "ds")
