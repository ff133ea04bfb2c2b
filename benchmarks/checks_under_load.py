"""The whole planted-bug zoo on a quiet CPU and again with the CPU busy: the verdicts must not
change, only the time they take.

    python benchmarks/checks_under_load.py                  # every setup, 3 busy loops
    python benchmarks/checks_under_load.py --loops 4        # busier
    python benchmarks/checks_under_load.py --only mlp_digits labels_shuffled

Each setup runs as tests/checks/test_zoo.py runs it (a bug: only the checks that must flag it;
a control: all checks or its subset), torch on one thread. Busy loops are `while True: pass`
processes, stopped when the loaded pass ends. It prints, side by side, the number of verdicts
(check statuses) that differ between the two passes, which ones, and the wall-time ratio
loaded / quiet. Budgets are steps and samples (no check reads the clock unless max_seconds is
set), so the expected difference is 0 verdicts and a ratio near (loops + 1) / cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the zoo lives with the tests
from tests.checks.test_budgets import busy_cpu  # the one CPU hog, shared with the test
from tests.checks.test_zoo import BUGS, CORRECT, FAMILIES, _run

Verdicts = dict[tuple[str, str], str]  # (setup, check) -> status


def run_zoo(names: list[str]) -> tuple[Verdicts, float]:
    """Every setup's statuses, and the wall seconds the whole pass took."""
    verdicts: Verdicts = {}
    # built anew per pass: a seeded loader's generator advances with every pass over it
    setups = {s.name: s for m in FAMILIES for s in [*m.bug_setups(), *m.correct_setups()]}
    start = time.perf_counter()
    for name in names:
        setup = setups[name]
        only = list(setup.flags) if name in BUGS else setup.checks
        report = _run(setup, only)
        verdicts.update({(name, r.name): str(r.status) for r in report.results})
    return verdicts, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loops", type=int, default=3, help="busy-loop processes when loaded")
    parser.add_argument("--only", nargs="+", help="setup names (default: the whole zoo)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = args.only or [*BUGS, *CORRECT]
    quiet, quiet_s = run_zoo(names)
    with busy_cpu(args.loops):
        loaded, loaded_s = run_zoo(names)
    differ = sorted(k for k in quiet.keys() | loaded.keys() if quiet.get(k) != loaded.get(k))
    print(f"{len(names)} setups, {len(quiet)} verdicts, {args.loops} busy loops")
    print(f"quiet {quiet_s:6.1f}s  loaded {loaded_s:6.1f}s  ratio {loaded_s / quiet_s:4.2f}x  "
          f"differing verdicts {len(differ)}")  # fmt: skip
    for setup, check in differ:
        print(f"  {setup} / {check}: quiet {quiet.get((setup, check))}, "
              f"loaded {loaded.get((setup, check))}")  # fmt: skip


if __name__ == "__main__":
    main()
