"""What joining a run's mistakes costs the data pages: the server time of one Browse rerun on the
sample digits (1,709 samples) without a run, with a run picked (its loss, prediction,
confidence, correct and margin columns joined, the confusion matrix and per-class accuracy
drawn), and with a confusion-matrix cell chosen, side by side (AppTest, the real app/main.py,
median of N reruns after a warm-up; the browser's drawing is not included).

    python benchmarks/mistakes_page.py [--reruns 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def median_rerun_ms(at: object, reruns: int) -> float:
    times = []
    for _ in range(reruns):
        start = time.perf_counter()
        at.run()  # type: ignore[attr-defined]
        times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reruns", type=int, default=15)
    reruns = parser.parse_args().reruns
    import torch
    from streamlit.testing.v1 import AppTest

    from recipe_core.data import open_dataset
    from recipe_core.jobs.scan_job import RESULT_DIR, job_dir
    from recipe_core.scan import scan, write_result
    from recipe_core.train import make_config, train
    from recipe_core.workspace import open_workspace
    from tests.app.helpers import MAIN, open_page

    digits = REPO / "sample_data" / "digits"
    with tempfile.TemporaryDirectory() as tmp:
        ws = open_workspace(Path(tmp) / "ws")
        root = open_dataset(digits).root
        write_result(scan(root, workspace=ws, workers=0), job_dir(ws, root) / RESULT_DIR)
        torch.set_num_threads(1)
        config = make_config(str(digits), steps=60, image_size=16, eval_every=30, log_every=30,
                             device="cpu")  # fmt: skip
        run = train(config, workspace=ws.root).run_dir
        os.environ["RECIPE_WORKSPACE"] = str(ws.root)
        at = open_page(AppTest.from_file(str(MAIN), default_timeout=120).run(), "browse")
        plain = median_rerun_ms(at, reruns)
        at.selectbox(key="mistakes_run_choice").set_value(run.name).run()
        picked = median_rerun_ms(at, reruns)
        cells = at.selectbox(key=f"browse_cell_{run.name}_60")
        cells.set_value(cells.options[1]).run()
        cell = median_rerun_ms(at, reruns)
    print(f"Browse rerun on 1,709 samples, server time, median of {reruns}:")
    print(f"  no run:              {plain:7.1f} ms")
    print(f"  a run picked:        {picked:7.1f} ms   ratio {picked / plain:.2f}x the plain page")
    print(f"  + a confusion cell:  {cell:7.1f} ms   ratio {cell / plain:.2f}x the plain page")


if __name__ == "__main__":
    main()
