"""How long `recipe_core.checks.run_all` takes, against a plain training loop of the same steps.

    python benchmarks/checks_speed.py                    # mlp, small_cnn and two LMs, 1 thread
    python benchmarks/checks_speed.py --threads 2        # both cores
    python benchmarks/checks_speed.py --device cuda      # on a GPU

Data: sample_data/digits (32x32 greyscale, the `recipe check` path: load_image_tensors ->
NormalizedImages -> make_loader, batch 64) or, when it has not been generated, sklearn's digits
upsampled to 32x32; for the language models (the zoo's TinyAttention and CausalGRU, task
"sequence"), the zoo's Markov-chain tokens (512 sequences of 16 steps, vocabulary 8, batch 32).
For each model it prints side by side:

* run_all: wall seconds for every check, and the optimizer steps they took in all (counted by
  wrapping the optimizer factory, so the checks run exactly as `recipe check` runs them);
* plain loop: the same number of Adam 3e-4 steps over the same batches, nothing else;
* the ratio run_all / plain. Above 1 is the cost of everything that is not an optimizer step
  (forward-only probes, backprop dependency charts, evaluation, model builds); below 1 means
  the checks' steps are cheaper on average than a full-batch step of the full model (overfit
  steps use 16 samples, the capacity ladder trains narrower models on 32-sample batches).

The target is run_all <= 30 s for these models on 2 CPU cores. The three slowest checks are
printed too: budgets are steps (no check reads the clock), so they bound the slowest check.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from recipe_core.checks import CheckReport, run_all
from recipe_core.data import open_dataset
from recipe_core.data.tensors import (
    ImageTensors,
    NormalizedImages,
    load_image_tensors,
    make_loader,
)
from recipe_core.train.models import ModelSpec, scalable_factory

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the zoo's models and tokens
from tests.checks.zoo import CausalGRU, TinyAttention, seq_loader

LMS = ("attention_lm", "gru_lm")  # the zoo's causal language models on Markov tokens
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


def token_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(out.flatten(0, 1), y.flatten())


def plain_loop(
    model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]], steps: int, loss: Any
) -> float:
    """Seconds for `steps` Adam steps cycling over `batches`: the floor of any training check."""
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    model.train()
    start = time.perf_counter()
    for i in range(steps):
        x, y = batches[i % len(batches)]
        opt.zero_grad(set_to_none=True)
        loss(model(x), y).backward()
        opt.step()
    if batches[0][0].is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def bench(
    name: str, factory: Any, loader: Iterable[Any], loss: Any, device: str, **options: Any
) -> CheckReport:
    CountingAdam.steps = 0
    start = time.perf_counter()
    report = run_all(
        factory, loader, loss, device=device, optimizer=lambda p: CountingAdam(p, lr=3e-4),
        **options,
    )  # fmt: skip
    checks = time.perf_counter() - start
    steps = CountingAdam.steps
    batches = [(x.to(device), y.to(device)) for x, y in list(loader)[:10]]
    plain = plain_loop(factory().to(device), batches, steps, loss)
    show(name, report, checks, steps, plain)
    return report


def show(name: str, report: CheckReport, checks: float, steps: int, plain: float) -> None:
    slowest = sorted(report.seconds.items(), key=lambda kv: -kv[1])[:3]
    print(
        f"{name:10s} run_all {checks:6.1f}s  {steps:5d} steps  plain loop {plain:6.1f}s  "
        f"ratio {checks / max(plain, 1e-9):4.1f}x  {report.counts()}"
    )
    print(f"{'':10s} slowest: " + ", ".join(f"{k} {v:.1f}s" for k, v in slowest))


def image_case(name: str, data: ImageTensors, loader: Iterable[Any], device: str) -> None:
    spec = ModelSpec(data.channels, 32, len(data.classes))
    bench(name, scalable_factory(name, spec, seed=0), loader, nn.CrossEntropyLoss(), device,
          num_classes=len(data.classes))  # fmt: skip


def lm_case(name: str, device: str) -> None:
    model = {"attention_lm": TinyAttention, "gru_lm": CausalGRU}[name]

    def factory() -> nn.Module:
        torch.manual_seed(0)  # seeds its own init, as a user's factory should
        return model()

    bench(name, factory, seq_loader(), token_loss, device, task="sequence")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", nargs="+", default=["mlp", "small_cnn", *LMS])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = digits_data()
    mean, std = data.channel_stats()
    loader = make_loader(NormalizedImages(data, mean=mean, std=std), batch_size=64, shuffle=True)
    print(f"{len(data)} images, device {args.device}, {args.threads} thread(s)")
    for name in args.models:
        if name in LMS:
            lm_case(name, args.device)
        else:
            image_case(name, data, loader, args.device)


if __name__ == "__main__":
    main()
