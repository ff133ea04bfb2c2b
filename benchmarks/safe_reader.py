"""What the safe reader costs: `recipe_core.data.images.load_image` (regular-file check, size cap,
PNG CRC walk, truncation and TIFF-page checks, then the decode) against what `load_image` did
before it (Pillow opening the path itself: `Image.open(path)`, `load()`, `exif_transpose`),
side by side on the same files.

    python benchmarks/safe_reader.py                 # 3,000 32 px PNGs and 60 2 MP photos
    python benchmarks/safe_reader.py --small 500 --photos 10

Prints the files per second of each and the ratio (safe / plain; 1.0 = free).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from recipe_core.data.images import load_image


def write_files(folder: Path, n_small: int, n_photos: int) -> dict[str, list[Path]]:
    rng = np.random.default_rng(0)
    small, photos = [], []
    for i in range(n_small):
        path = folder / f"s{i}.png"
        Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8)).save(path)
        small.append(path)
    base = rng.integers(0, 255, (1200, 1600, 3), dtype=np.uint8)
    for i in range(n_photos):
        fmt = "JPEG" if i % 2 else "PNG"
        path = folder / f"p{i}.{fmt.lower()}"
        Image.fromarray(np.roll(base, i, axis=1)).save(path, format=fmt)
        photos.append(path)
    return {"32 px PNG": small, "2 MP photo (PNG+JPEG)": photos}


def plain(path: Path) -> Image.Image:
    im = Image.open(path)
    im.load()
    return ImageOps.exif_transpose(im) or im


def files_per_s(read: Callable[[Path], Image.Image], paths: list[Path]) -> float:
    start = time.perf_counter()
    for path in paths:
        read(path)
    return len(paths) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=3000)
    parser.add_argument("--photos", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for kind, paths in write_files(Path(tmp), args.small, args.photos).items():
            for read in (plain, load_image):  # warm the page cache and the imports
                files_per_s(read, paths[: max(1, len(paths) // 10)])
            base = files_per_s(plain, paths)
            safe = files_per_s(load_image, paths)
            print(f"{kind:24s} Pillow on the path {base:8.0f} files/s   safe reader {safe:8.0f} "
                  f"files/s   ratio {safe / base:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
