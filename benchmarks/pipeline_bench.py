"""The user's own pipeline under Recipe, against the same work done by hand, for each example
pipeline (examples/): the checks' wall time against the 30 s target, and what recording a run
costs against a plain PyTorch loop. (train_overhead.py measures the built-in image loop; this is
its counterpart for pipelines, whose loaders and models are the user's.)

    python benchmarks/pipeline_bench.py                      # every example, 1 thread
    python benchmarks/pipeline_bench.py --threads 2 --steps 600 --repeats 5
    python benchmarks/pipeline_bench.py --only overhead --example char_lm

checks: `check_pipeline` on the example (every check, as `recipe check --pipeline` runs them),
wall seconds; the ratio to the 30 s target (<= 1 meets it). Loading the pipeline (imports, the
dataset) is timed apart, as `recipe check` pays it once.

overhead: the same model (same seed), loader, loss and optimizer for `--steps` steps, through a
plain loop (forward, loss, backward, step: no logging at all) and through `train_pipeline`
(metrics every 25 steps, probe dynamics every 25 steps for classification, the first 2 batches
captured, the final evaluation and checkpoint). After a warm-up, `--repeats` (plain, Recipe)
pairs run interleaved; ratios use process CPU time (steadier than wall time on a shared 2-core
machine). Reported: the median per-pair ratio with its range. Target: <= 1.05. Prints a `RESULT`
line per example.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from recipe_core import Pipeline, load_pipeline
from recipe_core.checks import check_pipeline
from recipe_core.train.pipeline import PipelineTrainConfig, train_pipeline

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NAMES = ("image_classifier", "char_lm", "tabular_mlp")
TARGET_S = 30.0


def spec(name: str) -> str:
    return f"{EXAMPLES / name}.py:pipeline"


def time_checks(name: str) -> tuple[float, float, dict[str, int]]:
    """(load s, checks s, status counts)."""
    started = time.perf_counter()
    pipeline = load_pipeline(spec(name))
    loaded = time.perf_counter()
    report = check_pipeline(pipeline)
    return loaded - started, time.perf_counter() - loaded, report.counts()


def plain_loop(pipeline: Pipeline, steps: int, seed: int) -> float:
    """CPU seconds of `steps` bare training steps over the pipeline's own pieces."""
    started = time.process_time()
    torch.manual_seed(seed)
    model = pipeline.model if isinstance(pipeline.model, nn.Module) else pipeline.model()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = (pipeline.optimizer(params) if pipeline.optimizer is not None
                 else torch.optim.Adam(params, lr=3e-4))  # fmt: skip
    model.train()
    done = 0
    while done < steps:
        for x, y in pipeline.train_batches():
            loss = pipeline.loss_fn(model(x).float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done += 1
            if done == steps:
                break
    return time.process_time() - started


def recipe_loop(pipeline: Pipeline, steps: int, seed: int, workspace: Path) -> float:
    config = PipelineTrainConfig("bench", preset="baseline", steps=steps, seed=seed,
                                 device="cpu", eval_every=0)  # fmt: skip
    started = time.process_time()
    train_pipeline(config, workspace=workspace, pipeline=pipeline)
    return time.process_time() - started


def overhead(name: str, steps: int, repeats: int) -> tuple[float, float, float, float, float]:
    """(plain median s, recipe median s, median ratio, min ratio, max ratio)."""
    pipeline = load_pipeline(spec(name))
    with tempfile.TemporaryDirectory() as tmp:
        plain_loop(pipeline, 20, 0)  # warm-up: first-call costs on both sides
        recipe_loop(pipeline, 20, 0, Path(tmp))
        pairs = [(plain_loop(pipeline, steps, 0), recipe_loop(pipeline, steps, 0, Path(tmp)))
                 for _ in range(repeats)]  # fmt: skip
    ratios = [r / p for p, r in pairs]
    return (statistics.median(p for p, _ in pairs), statistics.median(r for _, r in pairs),
            statistics.median(ratios), min(ratios), max(ratios))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--example", nargs="+", default=list(NAMES), choices=NAMES)
    parser.add_argument("--only", choices=("checks", "overhead"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), CPU")
    for name in args.example:
        if args.only != "overhead":
            load_s, checks_s, counts = time_checks(name)
            shown = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
            ratio = checks_s / TARGET_S
            print(f"RESULT checks {name:<17} load {load_s:5.1f} s  checks {checks_s:5.1f} s  "
                  f"target {TARGET_S:.0f} s  ratio {ratio:.2f}  ({shown})")  # fmt: skip
        if args.only != "checks":
            plain, recipe, ratio, low, high = overhead(name, args.steps, args.repeats)
            print(f"RESULT overhead {name:<15} plain {plain:6.2f} s  recipe {recipe:6.2f} s  "
                  f"ratio {ratio:.3f} (pairs {low:.3f}..{high:.3f}, {args.steps} steps, "
                  f"target <= 1.05)")  # fmt: skip


if __name__ == "__main__":
    main()
