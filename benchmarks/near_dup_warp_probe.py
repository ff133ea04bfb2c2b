"""The affine-warp pair check (`recipe_core.scan.issues.warp_match`) on its own: the edit
families the shift-only check misses (a recrop zoomed back, a 5 degree rotation, a hue shift,
a small watermark) against the distinct pairs the scan offers as candidates, and its cost.

    nice .venv/bin/python benchmarks/near_dup_warp_probe.py [--seeds 0 1 2] [--rgb]

The check is described in its module. `--rgb` instead reads both files again at 64 px and
fits an affine colour map (which absorbs a hue rotation) for the distance.

It prints, side by side for the same scans: the distance of every planted copy by family
(tests/photos/edit_families.py, every family, the missed ones included) and of every distinct
pair the scan would offer as a candidate (each image's first two embedding neighbours: the
edit-family originals, and the planted photo set less its planted copy groups and its flat
images), the share of distinct pairs under a few lines, and the cost per pair. Last, on
`--drawings` line drawings at 64 px (the worst case: distinct drawings of one template stay
within the warp's bounds), the near-duplicate search without and with the warp check, in CPU
seconds, and the links it adds (all false there).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from scan_throughput import make_images

from recipe_core.data.images import decode_whole, to_rgb, upright
from recipe_core.scan import scan
from recipe_core.scan.index.schema import ScanIndex
from recipe_core.scan.issues import warp_match as wm
from recipe_core.scan.issues.duplicates import (
    EDITED,
    NEAR_K,
    eligible_thumbnails,
    exact_groups,
    near_pairs,
    warpable_rows,
)
from recipe_core.scan.issues.neighbors import neighbor_graph
from recipe_core.scan.issues.quality import low_information_mask
from tests.photos.edit_families import MISSED, make_edit_families
from tests.photos.planted import make_planted_photos

WARP_SIDE = 64  # px: the side of the --rgb views


def load_views(paths: Sequence[str], side: int = WARP_SIDE) -> np.ndarray:
    """(n, side, side, 3) uint8 RGB views of the files, squashed to a square like the index's
    thumbnails (zeros for a file that does not decode)."""
    out = np.zeros((len(paths), side, side, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        try:
            with open(path, "rb") as f, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                im = to_rgb(upright(decode_whole(f.read())))
        except Exception:  # a file that fails here failed the index's decode too
            continue
        out[i] = np.asarray(im.resize((side, side), Image.Resampling.BILINEAR, reducing_gap=3.0))
    return out


def rgb_distance(views: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The warp check on the 64 px RGB views with an affine colour map (absorbs a hue
    rotation: a rotation about RGB's grey axis), the lower of both ways."""

    def one_way(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        luma = np.array([0.299, 0.587, 0.114], dtype=np.float32)
        matrix = wm.align(x @ luma, y @ luma)
        warped, valid = wm.warp(np.moveaxis(y, -1, 1), matrix)
        valid &= wm.within_bounds(matrix)[:, None, None]
        return wm.fit_distance(x, np.moveaxis(warped, 1, -1), wm.eroded(wm.eroded(valid)))

    x, y = wm.smoothed(views[a].astype(np.float32)), wm.smoothed(views[b].astype(np.float32))
    return np.minimum(one_way(x, y), one_way(y, x))


def candidate_pairs(index: ScanIndex) -> tuple[np.ndarray, np.ndarray]:
    """Each eligible image's first two embedding neighbours that are not its identical copies."""
    n = len(index.table)
    graph = neighbor_graph(index.embeddings, np.arange(n), 10)
    exact = exact_groups(index.table)
    eligible = eligible_thumbnails(index.pixels, low_information_mask(index))
    a, b = [], []
    for i in range(n):
        for j in graph.indices[i][:2]:
            if (
                j >= 0
                and eligible[i]
                and eligible[j]
                and not (exact[i] >= 0 and exact[i] == exact[j])
            ):
                a.append(i)
                b.append(int(j))
    return np.array(a, dtype=np.int64), np.array(b, dtype=np.int64)


def distances(index: ScanIndex, a: np.ndarray, b: np.ndarray, rgb: bool) -> np.ndarray:
    if not rgb:
        return wm.warped_distance(index.pixels, a, b)
    return rgb_distance(
        load_views([str(index.source.abspath(p)) for p in index.table["path"]]), a, b
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rgb", action="store_true", help="re-read the files at 64 px")
    parser.add_argument("--drawings", type=int, default=5000, help="line drawings for the cost")
    args = parser.parse_args()
    rows, seconds, compared = [], 0.0, 0
    for seed in args.seeds:
        root = Path(tempfile.mkdtemp(prefix="warp-probe-"))
        copies = make_edit_families(root / "families", seed=seed, missed=True)
        index = scan(root / "families", workers=0, cache=False).index
        pos = {p: i for i, p in enumerate(index.table["path"].astype(str))}
        a = np.array([pos[c.original] for c in copies])
        b = np.array([pos[c.copy] for c in copies])
        rows += [
            ("copy", c.family, d)
            for c, d in zip(copies, distances(index, a, b, args.rgb), strict=True)
        ]
        source = {pos[c.copy]: pos[c.original] for c in copies}
        a, b = candidate_pairs(index)
        keep = np.array(
            [source.get(int(x), x) != source.get(int(y), y) for x, y in zip(a, b, strict=True)]
        )
        rows += [("distinct", "edit-family originals", d)
                 for d in distances(index, a[keep], b[keep], args.rgb)]  # fmt: skip
        planted = make_planted_photos(root / "photos", seed=seed)
        index = scan(planted.images, workers=0, cache=False).index
        oracle = planted.oracle[planted.oracle["group"] != ""]
        groups = oracle.groupby("path")["group"].apply(set).to_dict()
        paths = index.table["path"].astype(str).to_numpy()
        a, b = candidate_pairs(index)
        other = np.array([not groups.get(paths[x], set()) & groups.get(paths[y], set())
                          for x, y in zip(a, b, strict=True)], dtype=bool)  # fmt: skip
        start = time.perf_counter()
        found = distances(index, a[other], b[other], args.rgb)
        seconds, compared = seconds + time.perf_counter() - start, compared + int(other.sum())
        rows += [("distinct", "planted photos", d) for d in found]
    table = pd.DataFrame(rows, columns=["kind", "set", "distance"])
    copies_ = table[table["kind"] == "copy"].groupby("set", sort=False)["distance"]
    summary = pd.DataFrame({"planted": copies_.size(), "max": copies_.max().round(3)})
    for line in LINES:
        summary[f"<{line}"] = copies_.apply(lambda d, t=line: int((d < t).sum()))
    summary["missed by the scan"] = ["yes" if f in MISSED else "" for f in summary.index]
    print(summary.to_string())
    print()
    for name, d in table[table["kind"] == "distinct"].groupby("set")["distance"]:
        shares = "  ".join(f"<{t}: {(d < t).mean():.3f}" for t in LINES)
        lowest = np.sort(d.to_numpy())[:5].round(3)
        print(f"distinct, {name}: {len(d)} pairs, lowest {lowest}; {shares}")
    print(f"\ncost: {seconds / max(compared, 1) * 1e3:.2f} ms per pair (both ways)")
    print()
    search_cost(args.drawings)


def line_drawings(n: int) -> ScanIndex:
    """`n` stroke drawings of 10 templates (scan_throughput's, 2 % exact and 2 % brightened
    copies among them) enlarged to 64 px: natively large enough for the warp check, and
    distinct drawings of one template align closely under a small warp."""
    root = Path(tempfile.mkdtemp(prefix="warp-probe-drawings-"))
    for path in make_images(root, n):
        Image.open(path).resize((64, 64), Image.Resampling.BICUBIC).save(path)
    return scan(root, workers=2, cache=False).index


def search_cost(n: int) -> None:
    """The near-duplicate search on the same index and graph, side by side: without the warp
    check (the scan before it) and with it; and what the warp check links."""
    for name, index in (("line drawings, 64 px", line_drawings(n)),):
        exact = exact_groups(index.table)
        graph = neighbor_graph(index.embeddings, np.flatnonzero(index.valid), NEAR_K + 8)
        eligible = eligible_thumbnails(index.pixels, low_information_mask(index))
        timed = {}
        for label, warpable in (("without", None), ("with", warpable_rows(index.table))):
            start = time.process_time()
            links = near_pairs(index.pixels, graph, exact, eligible=eligible, warpable=warpable)
            timed[label] = (time.process_time() - start, links)
        (base, plain), (cost, links) = timed["without"], timed["with"]
        edited = int((links.flip == EDITED).sum())
        print(f"{name}, {len(index.table)} images: near-duplicate search {base:.2f} CPU-s "
              f"without the warp check, {cost:.2f} with it (ratio {cost / base:.2f}, "
              f"+{(cost - base) / len(index.table) * 1e3:.2f} CPU-ms per image); links "
              f"{len(plain.a)} -> {len(links.a)}, {edited} of them edited copies "
              f"(each a false link: the set's only copies are exact and brightened)")  # fmt: skip


LINES = (0.06, 0.08, 0.1, 0.15)

if __name__ == "__main__":
    main()
