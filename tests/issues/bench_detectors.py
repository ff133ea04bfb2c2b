"""Benchmark (not a test): detector stages at 2k and 50k images, and nearest_neighbors'
scaling 10k -> 50k, side by side on the same machine.

    .venv/bin/python -m tests.issues.bench_detectors [--sizes 2000 50000]

Images are sklearn digits under random shifts, rotations and noise (so few are duplicates),
built straight into a ScanIndex (no decode: the scan's own decode is benchmarked by the scan).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from PIL import Image

from recipe_core.scan.index import ScanIndex
from recipe_core.scan.issues import detect_issues, nearest_neighbors
from tests.issues.arrays import index_from_arrays
from tests.issues.conftest import render_digits


def jittered_digits(n: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    images, labels = render_digits()
    rng = np.random.default_rng(seed)
    src = rng.integers(0, len(images), n)
    out = np.empty((n, 32, 32), np.uint8)
    for k, i in enumerate(src):
        im = Image.fromarray(images[i]).rotate(
            float(rng.uniform(-12, 12)), translate=tuple(rng.integers(-3, 4, 2)), fillcolor=255
        )
        out[k] = np.clip(np.asarray(im) + rng.normal(0, 6, (32, 32)), 0, 255)
    return out, [labels[i] for i in src]


def stage_times(index: ScanIndex) -> dict[str, float]:
    names = ("quality", "neighbours", "duplicates", "outliers", "labels", "balance")
    stamps = [time.perf_counter()]
    detect_issues(index, progress=lambda done, total: stamps.append(time.perf_counter()))
    return {name: b - a for name, a, b in zip(names, stamps[:-1], stamps[1:], strict=True)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 50000])
    args = parser.parse_args()
    for n in args.sizes:
        pixels, labels = jittered_digits(n)
        index = index_from_arrays(pixels, labels)
        t = stage_times(index)
        total = sum(t.values())
        print(f"N={n}: total {total:.2f}s, without labels {total - t['labels']:.2f}s, "
              + ", ".join(f"{k} {v:.2f}" for k, v in t.items()))  # fmt: skip
    emb = index_from_arrays(*jittered_digits(50000, seed=1)).embeddings
    times = {10000: float("inf"), 50000: float("inf")}
    for _ in range(3):  # interleaved, best of 3: the machine may be shared
        for n in times:
            start = time.perf_counter()
            nearest_neighbors(emb[:n], 25)
            times[n] = min(times[n], time.perf_counter() - start)
    print(f"nearest_neighbors k=25: 10k {times[10000]:.2f}s, 50k {times[50000]:.2f}s, "
          f"ratio {times[50000] / times[10000]:.1f} (exact search would be 25)")  # fmt: skip


if __name__ == "__main__":
    main()
