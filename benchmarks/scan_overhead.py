"""Scan fixed cost (issue 19): CPU seconds, peak memory and heavy imports of one `recipe scan`
in a fresh process, next to the decode-only floor of the same files, side by side.

    python benchmarks/scan_overhead.py                     # sample_data/digits (1,709 PNGs)
    python benchmarks/scan_overhead.py --dataset DIR --workers 2

Each measurement is a fresh interpreter (imports included, as a user's `recipe scan` pays
them), timed by its own resource usage (children included: the decode workers):

* floor: import numpy + Pillow, open and fully decode every file, one process;
* scan: `recipe_core.scan.scan(DIR, cache=False, workers=W)`: every file indexed, every
  detector run; it also reports which of torch / torchvision / sklearn / cleanlab / scipy the
  scan imported (none of torch, sklearn, cleanlab is needed on the CPU path).

Printed: CPU-s and peak RSS of both, the difference (the scan's cost above decoding) and the
ratio. Issue 19's targets: fixed overhead <= 3 CPU-s and <= 300 MB RSS.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision", "sklearn", "cleanlab", "scipy")

MEASURE = """
import json, resource, sys, time
start = time.perf_counter()
{body}
wall = time.perf_counter() - start
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({{
    "cpu_s": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
    "rss_mb": max(me.ru_maxrss, kids.ru_maxrss) / 1024,
    "wall_s": wall,
    "heavy": [m for m in {heavy!r} if m in sys.modules],
    **extra,
}}))
"""

FLOOR = """
import numpy as np
from pathlib import Path
from PIL import Image
n = 0
for p in sorted(Path({root!r}).rglob("*")):
    if p.is_file() and p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".webp"):
        try:
            with Image.open(p) as im:
                np.asarray(im.convert("RGB")); n += 1
        except OSError:  # the planted corrupt files
            pass
extra = {{"images": n}}
"""

SCAN = """
from recipe_core.scan import scan
result = scan({root!r}, cache=False, workers={workers})
extra = {{"images": len(result.index.table), "issues": len(result.issues)}}
"""


def measure(body: str) -> dict[str, object]:
    code = MEASURE.format(body=body, heavy=HEAVY)
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env=env, check=False)  # fmt: skip
    if out.returncode:
        raise SystemExit(f"measurement failed:\n{out.stderr[-3000:]}")
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default=str(REPO / "sample_data" / "digits"))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    floor = measure(FLOOR.format(root=args.dataset))
    full = measure(SCAN.format(root=args.dataset, workers=args.workers))
    print(f"{'':28}{'floor (decode)':>16}{'scan':>12}{'scan - floor':>14}{'ratio':>8}")
    for key, unit in (("cpu_s", "CPU-s"), ("rss_mb", "peak RSS MB"), ("wall_s", "wall s")):
        f, s = float(floor[key]), float(full[key])  # type: ignore[arg-type]
        print(f"{unit:28}{f:16.2f}{s:12.2f}{s - f:14.2f}{s / f:8.2f}")
    print(f"images: {floor['images']} decoded, {full['images']} scanned, "
          f"{full['issues']} issue rows")  # fmt: skip
    heavy = ", ".join(full["heavy"]) or "none"  # type: ignore[arg-type]
    print(f"heavy modules the scan imported: {heavy}")


if __name__ == "__main__":
    main()
