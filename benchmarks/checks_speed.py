"""How long `recipe_core.checks.run_all` takes, against a plain training loop of the same steps.

    python benchmarks/checks_speed.py                    # mlp and small_cnn, 1 thread
    python benchmarks/checks_speed.py --threads 2        # both cores
    python benchmarks/checks_speed.py --device cuda      # on a GPU

Data: sample_data/digits (32x32 greyscale, the `recipe check` path: load_image_tensors ->
NormalizedImages -> make_loader, batch 64) or, when it has not been generated, sklearn's digits
upsampled to 32x32. For each model it prints side by side:

* run_all: wall seconds for every check, and the optimizer steps they took in all (counted by
  wrapping the optimizer factory, so the checks run exactly as `recipe check` runs them);
* plain loop: the same number of Adam 3e-4 steps over the same batches, nothing else;
* the ratio run_all / plain. Above 1 is the cost of everything that is not an optimizer step
  (forward-only probes, backprop dependency charts, evaluation, model builds); below 1 means
  the checks' steps are cheaper on average than a full-batch step of the full model (overfit
  steps use 16 samples, the capacity ladder trains narrower models on 32-sample batches).

The target is run_all <= 30 s for these models on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from recipe_core.checks import run_all
from recipe_core.data import open_dataset
from recipe_core.data.tensors import (
    ImageTensors,
    NormalizedImages,
    load_image_tensors,
    make_loader,
)
from recipe_core.train.models import ModelSpec, scalable_factory

SAMPLE_DIGITS = Path(__file__).resolve().parents[1] / "sample_data" / "digits"


class CountingAdam(torch.optim.Adam):
    steps = 0  # optimizer steps taken by every instance since the last reset

    def step(self, closure: Any = None) -> Any:
        CountingAdam.steps += 1
        return super().step(closure)


def digits_data() -> ImageTensors:
    if SAMPLE_DIGITS.exists():
        return load_image_tensors(open_dataset(SAMPLE_DIGITS), split="train", size=32)
    import numpy as np
    import pandas as pd
    from sklearn.datasets import load_digits

    d = load_digits()
    x = F.interpolate(torch.tensor(d.images, dtype=torch.float32)[:, None] / 16, size=32)
    return ImageTensors(
        images=(x * 255).round().to(torch.uint8), labels=torch.tensor(d.target),
        sample_ids=np.arange(len(d.target)), classes=tuple("0123456789"), skipped=pd.DataFrame(),
    )  # fmt: skip


def plain_loop(
    model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]], steps: int
) -> float:
    """Seconds for `steps` Adam steps cycling over `batches`: the floor of any training check."""
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    model.train()
    start = time.perf_counter()
    for i in range(steps):
        x, y = batches[i % len(batches)]
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
    if batches[0][0].is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def bench(name: str, data: ImageTensors, loader: Iterable[Any], device: str) -> None:
    spec = ModelSpec(data.channels, 32, len(data.classes))
    factory = scalable_factory(name, spec, seed=0)
    CountingAdam.steps = 0
    start = time.perf_counter()
    report = run_all(
        factory, loader, nn.CrossEntropyLoss(), num_classes=len(data.classes), device=device,
        optimizer=lambda p: CountingAdam(p, lr=3e-4),
    )  # fmt: skip
    checks = time.perf_counter() - start
    steps = CountingAdam.steps
    batches = [(x.to(device), y.to(device)) for x, y in list(loader)[:10]]
    plain = plain_loop(factory().to(device), batches, steps)
    slowest = sorted(report.seconds.items(), key=lambda kv: -kv[1])[:3]
    print(
        f"{name:10s} run_all {checks:6.1f}s  {steps:5d} steps  plain loop {plain:6.1f}s  "
        f"ratio {checks / max(plain, 1e-9):4.1f}x  {report.counts()}"
    )
    print(f"{'':10s} slowest: " + ", ".join(f"{k} {v:.1f}s" for k, v in slowest))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", nargs="+", default=["mlp", "small_cnn"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = digits_data()
    mean, std = data.channel_stats()
    loader = make_loader(NormalizedImages(data, mean=mean, std=std), batch_size=64, shuffle=True)
    print(f"{len(data)} images, device {args.device}, {args.threads} thread(s)")
    for name in args.models:
        bench(name, data, loader, args.device)


if __name__ == "__main__":
    main()
