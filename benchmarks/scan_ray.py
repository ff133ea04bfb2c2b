"""Local scan vs Ray Data scan of the same synthetic image folder, side by side.

    python benchmarks/scan_ray.py                 # 10k synthetic 32 px PNGs
    python benchmarks/scan_ray.py --size 2000     # a quick run

Writes N PNGs (benchmarks/scan_throughput.py's generator), scans them with the local process
pool (`workers=2`), then starts a private Ray head on 127.0.0.1 (2 CPUs, its own temp dir) and
scans them again with `executor="ray"`. Prints images/s of the whole scan and of the index stage
(the part Ray Data runs), the Ray/local ratio, the head's start time, and whether both scans
wrote the same issues. On one small machine Ray can only add overhead (task scheduling, object
store copies, worker start-up); it pays off when the cluster has more cores than this machine.
The head is stopped by pid at the end (never `ray stop`: that stops every Ray on the machine).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from scan_throughput import make_images

from recipe_core.scan import ScanResult, scan

RAY_BIN = Path(sys.executable).parent / "ray"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_head(ray_temp: Path) -> str:
    port = free_port()
    cmd = [str(RAY_BIN), "start", "--head", "--node-ip-address", "127.0.0.1", "--port",
           str(port), "--include-dashboard", "false", "--temp-dir", str(ray_temp),
           "--num-cpus", "2", "--num-gpus", "0", "--disable-usage-stats"]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return f"127.0.0.1:{port}"


def stop_head(ray_temp: Path) -> None:
    """SIGKILL the processes whose command line names the head's temp dir, and their children."""
    marker, parents, roots = str(ray_temp).encode(), {}, set()
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
        if marker in cmdline and int(entry.name) != os.getpid():
            roots.add(int(entry.name))
    found, grew = set(roots), True
    while grew:
        new = {p for p, pp in parents.items() if pp in found and p not in found}
        found, grew = found | new, bool(new)
    for pid in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def timed(label: str, n: int, run: Callable[[], ScanResult]) -> tuple[ScanResult, float, float]:
    start = time.perf_counter()
    result = run()
    total = time.perf_counter() - start
    index_s = result.timings["index"]
    print(f"{label:<22} {total:7.2f} s  {n / total:8.0f} img/s   index stage {index_s:6.2f} s "
          f"{n / index_s:8.0f} img/s")  # fmt: skip
    return result, total, index_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000, help="images to scan")
    args = parser.parse_args()
    # Keep the driver on the loopback address the head was started on (read at Ray's import).
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    tmp = Path(tempfile.mkdtemp(prefix="scan-ray-"))
    ray_temp = Path(tempfile.mkdtemp(prefix="recipe-ray-bench-", dir="/tmp"))
    try:
        make_images(tmp / "data", args.size)
        n = args.size
        local, local_s, local_index = timed(
            "local (workers=2)", n, lambda: scan(tmp / "data", workers=2, cache=False)
        )
        started = time.perf_counter()
        address = start_head(ray_temp)
        print(f"ray head started in {time.perf_counter() - started:.1f} s at {address}")
        remote, ray_s, ray_index = timed(
            "ray data (2 CPUs)", n,
            lambda: scan(tmp / "data", executor="ray", ray_address=address, cache=False),
        )  # fmt: skip
        same = local.issues.equals(remote.issues) and local.index.table.equals(remote.index.table)
        print(f"ray / local time: whole scan {ray_s / local_s:.2f}x, index stage "
              f"{ray_index / local_index:.2f}x;  identical index and issues: {same}")  # fmt: skip
    finally:
        stop_head(ray_temp)
        shutil.rmtree(ray_temp, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
