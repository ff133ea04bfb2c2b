"""Neighbour search recall: is the true nearest neighbour in the IVF's top 5? Side by side for
probing per query cell alone (the old search), twice as many cells per query cell, and the
boundary check (the default), on scan embeddings of two kinds of images:

* strokes: the digit-like 32 px images of benchmarks/scan_throughput.py, embedded by the scan;
* photos: random crops (40-200 px, resized to 32 px) of the real photos that ship with
  scikit-learn: a continuous manifold of real image content.

The truth is exact search for 1,000 sampled queries. The CPU seconds of each search, and the
ratio of the largest to the smallest size (linear = the size ratio), are printed too.

    nice .venv/bin/python benchmarks/neighbors_recall.py [--sizes 30000 100000]
        [--kinds strokes photos]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import sklearn.datasets
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scan_throughput import _strokes

from recipe_core.scan.index.embed import pixel_embedding
from recipe_core.scan.issues import nearest_neighbors

K = 10  # neighbours per query, as the scan's graph has 10-50
VARIANTS = {  # name: nearest_neighbors keyword arguments
    "per query cell, 8 cells": {"nprobe": 8, "extra_cells": 0},
    "per query cell, 16 cells": {"nprobe": 16, "extra_cells": 0},
    "8 cells + boundary check (default)": {},
}


def strokes(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    templates = [rng.integers(4, 28, (int(rng.integers(3, 6)), 2)) for _ in range(10)]
    images = [np.asarray(_strokes(templates[i % 10], rng).convert("RGB")) for i in range(n)]
    return pixel_embedding(np.stack(images))


def photos(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    folder = Path(sklearn.datasets.__file__).parent / "images"
    sources = [Image.open(folder / name).convert("RGB") for name in ("china.jpg", "flower.jpg")]
    crops = []
    for i in range(n):
        im = sources[i % 2]
        side = int(rng.integers(40, 200))
        x, y = int(rng.integers(0, im.width - side)), int(rng.integers(0, im.height - side))
        crop = im.crop((x, y, x + side, y + side)).resize((32, 32), Image.Resampling.BILINEAR)
        crops.append(np.asarray(crop))
    return pixel_embedding(np.stack(crops))


def true_nearest(x: np.ndarray, queries: np.ndarray) -> np.ndarray:
    d2 = (x[queries] ** 2).sum(1)[:, None] + (x**2).sum(1)[None, :] - 2 * x[queries] @ x.T
    d2[np.arange(len(queries)), queries] = np.inf
    return np.argmin(d2, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[30_000, 100_000])
    parser.add_argument("--kinds", nargs="+", default=["strokes", "photos"])
    args = parser.parse_args()
    makers = {"strokes": strokes, "photos": photos}
    rows = []
    for kind in args.kinds:
        for n in args.sizes:
            x = makers[kind](n)
            queries = np.random.default_rng(1).choice(n, 1000, replace=False)
            truth = true_nearest(x, queries)
            for name, kwargs in VARIANTS.items():
                start = time.process_time()
                found, _ = nearest_neighbors(x, K, method="ivf", **kwargs)  # type: ignore[arg-type]
                cpu = time.process_time() - start
                in_top5 = np.mean([t in found[q, :5] for t, q in zip(truth, queries, strict=True)])
                rows.append((kind, n, name, in_top5, cpu))
                line = f"{kind:8s} {n:>7d}  {name:36s} true NN in top 5: {in_top5:.3f}"
                print(f"{line}  {cpu:6.1f} CPU-s")
    sizes = sorted(args.sizes)
    if len(sizes) > 1:
        print(f"\nCPU ratio {sizes[-1]} / {sizes[0]} (linear = {sizes[-1] / sizes[0]:.1f}):")
        for kind in args.kinds:
            for name in VARIANTS:
                cpu = {n: c for k, n, v, _, c in rows if k == kind and v == name}
                print(f"  {kind:8s} {name:36s} {cpu[sizes[-1]] / cpu[sizes[0]]:.1f}")


if __name__ == "__main__":
    main()
