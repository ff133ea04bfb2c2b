"""What the optional ResNet-18 embedding costs per image, beside the default embedding's
whole index stage on the same files (issue 19: a learned-feature phase adds at most 5 ms CPU
per image on CPU, much less on a GPU, and can be turned off; it is off unless asked for).

    nice .venv/bin/python benchmarks/scan_resnet.py [--n 512] [--device cpu|cuda]

ImageNet weights are never downloaded: the timing uses a ResNet-18 with torchvision's random
initialisation saved as a local weights file (the same arithmetic as the real weights). Both
sides read the same 56 px planted photo crops (tests/photos/planted.py, copied until --n):

* pixels+hog: `index.build_index(..., embedding="default", workers=0)`: decode, statistics
  and the default embedding, in this process;
* resnet18: `embedders.deep_embeddings` (decode, resize to 224 px, the network), batch 64.

Printed: CPU-ms per image of each (this process's user + system time), wall, and the ratio.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def cpu_and_wall(run: object) -> tuple[float, float]:
    start, clock = time.process_time(), time.perf_counter()
    run()  # type: ignore[operator]
    return time.process_time() - start, time.perf_counter() - clock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    import torch
    from torchvision.models import resnet18

    from recipe_core.data import open_dataset
    from recipe_core.scan.index import build_index
    from recipe_core.scan.index.embedders import EmbeddingSpec, deep_embeddings
    from tests.photos.planted import make_planted_photos

    root = Path(tempfile.mkdtemp(prefix="scan-resnet-"))
    photos = make_planted_photos(root / "made", seed=0).images
    files = sorted(p for p in photos.rglob("*.png"))
    images = root / "images" / "all"
    images.mkdir(parents=True)
    for i in range(args.n):
        shutil.copy(files[i % len(files)], images / f"{i:05d}.png")
    weights = root / "resnet18-random.pth"
    torch.save(resnet18(weights=None).state_dict(), weights)
    paths = [str(p) for p in sorted(images.iterdir())]
    source = open_dataset(root / "images")
    build_index(source, workers=0)  # warm the imports and page cache, both sides alike
    deep_embeddings(paths[:64], EmbeddingSpec("resnet18", weights), device=args.device)
    pixel_cpu, pixel_wall = cpu_and_wall(lambda: build_index(source, workers=0))
    net_cpu, net_wall = cpu_and_wall(
        lambda: deep_embeddings(paths, EmbeddingSpec("resnet18", weights), device=args.device)
    )
    n = len(paths)
    print(f"{n} images of 56 px, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"device {args.device}")  # fmt: skip
    print(f"pixels+hog index stage   {1e3 * pixel_cpu / n:7.2f} CPU-ms/img   "
          f"{1e3 * pixel_wall / n:7.2f} wall-ms/img")  # fmt: skip
    print(f"resnet18 embedding       {1e3 * net_cpu / n:7.2f} CPU-ms/img   "
          f"{1e3 * net_wall / n:7.2f} wall-ms/img")  # fmt: skip
    print(f"ratio resnet18 / pixels+hog: CPU {net_cpu / pixel_cpu:.1f}x, "
          f"wall {net_wall / pixel_wall:.1f}x")  # fmt: skip
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
