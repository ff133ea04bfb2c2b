"""Is a rescan's neighbour graph what it says it is? The memo's lists against brute force.

    python benchmarks/rescan_graph_exactness.py                 # 8k images, 8 rescans of 1 %
    python benchmarks/rescan_graph_exactness.py --n 4000 --rescans 4

A cold scan's graph comes from the approximate (IVF) search above ~7k images; a rescan
updates it (`recipe_core.scan.issues.graph_update`) and claims every list it touched is exact.
After the cold scan and each rescan this prints, against exact distances (float64):

* lists whose first k distances are wrong (what the detectors read);
* of those, lists that were right in their whole stored width before and are wrong now: what
  an update broke. It must stay 0; the rest is the cold search's approximation, kept by rows
  that did not change.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
from scan_rescan import redraw
from scan_throughput import make_images

from recipe_core.scan import scan
from recipe_core.scan.index.cache import memo_path
from recipe_core.scan.issues.find import _graph_k
from recipe_core.scan.issues.memo import IssueMemo
from recipe_core.workspace import Workspace, open_workspace

BLOCK = 1000  # rows per brute-force block
TOLERANCE = 1e-5  # on squared distances of unit-length embeddings


def wrong_lists(root: Path, ws: Workspace) -> tuple[set[int], set[int]]:
    """(rows wrong in their first k, rows wrong anywhere in their stored width) of the graph
    the scan stored in its memo, over the decoded rows in order."""
    index = scan(root, workspace=ws, workers=2).index
    valid = np.flatnonzero(index.valid)
    k = _graph_k(len(valid))
    memo = IssueMemo.load(memo_path(ws.scans, index.source, index.embedding_name), index.table)
    stored, neighbours = memo.stored("graph.distances"), memo.stored("graph.neighbours")
    assert stored is not None and neighbours is not None and len(stored) == len(valid)
    held = (neighbours >= 0).sum(axis=1)
    x = np.asarray(index.embeddings[valid], dtype=np.float64)
    sq = (x * x).sum(axis=1)
    first, anywhere = set(), set()
    for start in range(0, len(x), BLOCK):
        d2 = sq[start : start + BLOCK, None] + sq[None] - 2 * x[start : start + BLOCK] @ x.T
        d2[np.arange(len(d2)), np.arange(start, start + len(d2))] = np.inf
        truth = np.sqrt(np.maximum(np.sort(d2, axis=1)[:, : stored.shape[1]], 0))
        got = stored[start : start + BLOCK]
        inside = np.arange(got.shape[1])[None, :] < held[start : start + BLOCK, None]
        # squared distances: float32's |q|^2 + |p|^2 - 2 q.p is off by ~1e-6 at any distance
        # (0.001 at distance 0, an identical copy)
        gap = np.abs(np.square(got) - np.square(truth))
        off_k = (gap[:, :k] > TOLERANCE).any(axis=1)  # a missing entry (inf) is wrong too
        off_all = (np.where(inside, gap, 0) > TOLERANCE).any(axis=1)
        first |= set((start + np.flatnonzero(off_k)).tolist())
        anywhere |= set((start + np.flatnonzero(off_all)).tolist())
    return first, anywhere


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=8000)
    parser.add_argument("--rescans", type=int, default=8)
    parser.add_argument("--share", type=float, default=0.01)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="recipe-graph-"))
    try:
        root, ws = tmp / "data", open_workspace(tmp / "ws")
        make_images(root, args.n)
        before: set[int] = set()
        for step in range(args.rescans + 1):
            if step:
                redraw(root, args.share, seed=100 + step)
            first, anywhere = wrong_lists(root, ws)
            broken = first - before
            label = "cold scan" if step == 0 else f"rescan {step}"
            print(f"{label:<10} lists wrong in their first k: {len(first):4d} of {args.n}; "
                  f"broken by this update: {0 if step == 0 else len(broken)}")  # fmt: skip
            before = anywhere
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
