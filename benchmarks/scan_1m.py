"""One million images through the whole scan on this machine, beside the decode-and-hash floor
on the same files (issue 19: "1M images scanned on this machine's 24 GB").

    nice .venv/bin/python benchmarks/scan_1m.py --data /tmp/recipe-1m      # writes the files once
    nice .venv/bin/python benchmarks/scan_1m.py --data /tmp/recipe-1m --n 200000

The files are `scan_throughput`'s 32 px stroke PNGs in 10 class folders (2 % exact and 2 %
brightened copies planted), written by two processes and kept in --data for the next run.
Then, side by side:

* floor: two processes opening, fully decoding and hashing every file (blake2b of the bytes):
  what any scanner that looks at every pixel pays;
* scan: `recipe_core.scan.scan(root, workers=2, cache=False)` in a fresh process (index and
  every detector), with its wall and CPU seconds (its decode workers included), its peak RSS
  and stage timings.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scan_throughput import _strokes

CHUNK = 10_000
CLASSES = 10
SCAN = """
import json, sys, time
from recipe_core.scan import scan
start = time.perf_counter()
result = scan(sys.argv[1], workers=2, cache=False)
wall = time.perf_counter() - start
counts = result.issues["issue"].value_counts().to_dict()
print(json.dumps({"wall": wall, "timings": result.timings, "rows": len(result.index),
                  "issues": {k: int(v) for k, v in counts.items()}}))
"""


def write_chunk(args: tuple[str, int, int]) -> int:
    """Files start .. stop-1 of the set: 96 % drawn, 2 % byte copies, 2 % brightened copies
    (of files drawn earlier in the same chunk)."""
    root, start, stop = Path(args[0]), args[1], args[2]
    rng = np.random.default_rng(start)
    templates = [np.random.default_rng(c).integers(4, 28, (3 + c % 3, 2)) for c in range(CLASSES)]
    drawn: list[Path] = []
    for i in range(start, stop):
        path = root / str(i % CLASSES) / f"{i:07d}.png"
        if drawn and rng.random() < 0.04:
            source = drawn[int(rng.integers(0, len(drawn)))]
            path = source.parent / path.name  # a copy in its original's class
            if rng.random() < 0.5:
                shutil.copyfile(source, path)
            else:
                brighter = np.asarray(Image.open(source), dtype=np.int16) + 25
                Image.fromarray(np.clip(brighter, 0, 255).astype(np.uint8)).save(path)
            continue
        _strokes(templates[i % CLASSES], rng).save(path)
        drawn.append(path)
    return stop - start


def make_set(root: Path, n: int) -> None:
    marker = root / "made.json"
    if marker.is_file() and json.loads(marker.read_text()).get("n") == n:
        return
    shutil.rmtree(root, ignore_errors=True)
    for c in range(CLASSES):
        (root / str(c)).mkdir(parents=True)
    start = time.perf_counter()
    jobs = [(str(root), s, min(n, s + CHUNK)) for s in range(0, n, CHUNK)]
    with ProcessPoolExecutor(2) as pool:
        done = 0
        for count in pool.map(write_chunk, jobs):
            done += count
            if done % 100_000 < CHUNK:
                print(f"  wrote {done:,} files ({time.perf_counter() - start:.0f} s)", flush=True)
    marker.write_text(json.dumps({"n": n}))


def floor_chunk(paths: list[str]) -> int:
    for path in paths:
        data = Path(path).read_bytes()
        hashlib.blake2b(data, digest_size=16).digest()
        with Image.open(path) as image:
            image.load()
    return len(paths)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/recipe-1m"))
    parser.add_argument("--n", type=int, default=1_000_000)
    args = parser.parse_args()
    make_set(args.data, args.n)
    paths = sorted(str(p) for p in args.data.rglob("*.png"))
    print(f"{len(paths):,} PNGs of 32x32 px in {args.data}")

    cpu0, start = children_cpu(), time.perf_counter()
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(floor_chunk, [paths[i : i + CHUNK] for i in range(0, len(paths), CHUNK)]))
    floor_wall, floor_cpu = time.perf_counter() - start, children_cpu() - cpu0

    cpu0 = children_cpu()
    repo = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-c", SCAN, str(args.data)]
    out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=repo)
    scan_cpu = children_cpu() - cpu0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    report = json.loads(out.stdout.strip().splitlines()[-1])
    n, wall = len(paths), report["wall"]
    stages = "  ".join(f"{k} {v:.1f}s" for k, v in report["timings"].items())
    print(f"floor (decode + hash, 2 processes): {floor_wall:7.1f} s wall {floor_cpu:7.1f} CPU-s "
          f"| {n / floor_wall:7.0f} img/s  {floor_cpu / n * 1e3:.3f} CPU-ms/img")  # fmt: skip
    print(f"scan (index + every detector):      {wall:7.1f} s wall {scan_cpu:7.1f} CPU-s "
          f"| {n / wall:7.0f} img/s  {scan_cpu / n * 1e3:.3f} CPU-ms/img")  # fmt: skip
    print(f"ratio scan / floor: wall {wall / floor_wall:.2f}, CPU {scan_cpu / floor_cpu:.2f}; "
          f"peak RSS of the largest process {peak_mb:,.0f} MB")  # fmt: skip
    print(f"stages: {stages}")
    print(f"rows {report['rows']:,}; issues {report['issues']}")


if __name__ == "__main__":
    main()
