"""What does recording a run cost? The same model, data and steps through a hand-written PyTorch
loop and through a Recipe job (metrics every 25 steps, prediction dynamics every 25 steps, the
first two input batches captured), side by side. Target: overhead <= 5 %.

    python benchmarks/train_overhead.py                                  # CPU, small_cnn
    python benchmarks/train_overhead.py --device cuda --model resnet18   # GPU: bf16 + NHWC

Both loops keep the uint8 images on the device, draw seeded permutations, normalise on the
device and (on CUDA) use bf16 autocast and channels_last, so the difference is Recipe's own
bookkeeping. Both are timed over the same steady-state steps (from the end of the first
25-step window to the last step, so the one-off capture of the first two batches is outside
it); each is warmed up once, then they alternate `--repeats` times and medians are reported,
as wall-clock images/s and as a CPU-time ratio (steadier on a shared CPU machine; meaningless
on CUDA, where the host waits for the GPU). The job's periodic evaluation is off.
Prints one `RESULT` line per configuration.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from recipe_core.models import ModelSpec, build_model
from recipe_core.train import make_config, train
from recipe_core.train.data import load_train_data
from recipe_core.train.device import (
    amp_dtype,
    autocast_factory,
    configure_backends,
    resolve_device,
    wants_channels_last,
)

LOG_EVERY = 25  # Recipe's default metric flush and dynamics snapshot interval


def write_synthetic(root: Path, *, n_train: int, n_val: int, size: int, classes: int) -> Path:
    """A learnable RGB image folder: each class a coloured blob at its own place, plus noise."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    for split, n in (("train", n_train), ("val", n_val)):
        for i in range(n):
            c = i % classes
            cy, cx = rng.integers(size // 4, 3 * size // 4, 2) if c % 2 else (size // 2,) * 2
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (1 + c % 5) ** 2))
            colour = np.array([(c * 37) % 256, (c * 91) % 256, (c * 53) % 256]) / 255
            pixels = blob[..., None] * colour + rng.normal(0, 0.1, (size, size, 3))
            folder = root / split / f"class_{c}"
            folder.mkdir(parents=True, exist_ok=True)
            image = (np.clip(pixels, 0, 1) * 255).astype(np.uint8)
            Image.fromarray(image).save(folder / f"{i:05d}.png")
    return root


Rates = tuple[float, float]  # (images per wall second, images per CPU second; nan on CUDA)


class Clock:
    """Wall and CPU time at marks. On CPU both loops are marked at the end of the first and of
    the last 25-step window (the Recipe job through its metric events), which makes a CPU-time
    ratio possible: steadier than wall time on a shared machine. On CUDA, where the host only
    waits for the GPU and the job writes each window one window late (no sync), both are timed
    over the whole loop instead: plain from step 0 to a final synchronize, the job by its own
    `images_per_s` (loop start to its final, waited-for flush)."""

    def __init__(self) -> None:
        self.marks: list[tuple[float, float, int]] = []  # (wall s, cpu s, step)

    def mark(self, step: int) -> None:
        self.marks.append((time.perf_counter(), time.process_time(), step))

    def rates(self, batch: int) -> Rates:
        """(images per wall second, images per CPU second) between the first and last mark."""
        (w0, c0, s0), (w1, c1, s1) = self.marks[0], self.marks[-1]
        images = (s1 - s0) * batch
        return images / (w1 - w0), images / max(c1 - c0, 1e-9)


def plain_loop(dataset: str, args: argparse.Namespace) -> Rates:
    """The hand-written baseline (see `Clock` for what is timed)."""
    device = resolve_device(args.device)
    data = load_train_data(dataset, image_size=args.image_size, val_fraction=0.2, seed=0)
    torch.manual_seed(0)
    spec = ModelSpec(data.train.channels, args.image_size, len(data.classes))
    model = build_model(args.model, spec).to(device)
    nhwc = wants_channels_last(model, device)
    if nhwc:
        model = model.to(memory_format=torch.channels_last)
    autocast = autocast_factory(device, amp_dtype(device))
    images, labels = data.train.images.to(device), data.train.labels.to(device)
    mean = torch.tensor(data.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(data.std, device=device).view(1, -1, 1, 1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-4, fused=device.type == "cuda" or None)
    gen, order, cursor = torch.Generator().manual_seed(0), torch.empty(0, dtype=torch.long), 0
    b, clock, cuda = min(args.batch_size, len(labels)), Clock(), device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        clock.mark(-1)
    for step in range(args.steps):
        if cursor + b > len(order):
            order, cursor = torch.randperm(len(labels), generator=gen).to(device), 0
        idx = order[cursor : cursor + b]
        cursor += b
        x = images[idx].float().div_(255).sub_(mean).div_(std)
        if nhwc:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast():
            logits = model(x)
        loss = F.cross_entropy(logits.float(), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        if not cuda and (step + 1) % LOG_EVERY == 0:
            clock.mark(step)
    if cuda:
        torch.cuda.synchronize()
        clock.mark(args.steps - 1)
    wall, cpu = clock.rates(b)
    return wall, math.nan if cuda else cpu


def recipe_job(dataset: str, workspace: str, args: argparse.Namespace) -> Rates:
    config = make_config(
        dataset,
        model=args.model,
        steps=args.steps,
        batch_size=args.batch_size,
        image_size=args.image_size,
        device=args.device,
        eval_every=0,
        log_every=LOG_EVERY,
        dynamics_every=LOG_EVERY,
        capture_batches=2,
    )
    clock = Clock()
    result = train(
        config,
        workspace=workspace,
        callbacks=[lambda e: clock.mark(e.step) if e.kind == "train" else None],
    )
    if result.device.startswith("cuda"):
        return result.images_per_s, math.nan
    return clock.rates(min(args.batch_size, result.train_size))


def measure(dataset: str, workspace: str, args: argparse.Namespace) -> dict[str, float]:
    """Medians over `args.repeats` alternating (plain, recipe) pairs; ratios are per pair, so
    load that drifts over the minutes hits both sides of each ratio alike."""
    warm = argparse.Namespace(**{**vars(args), "steps": 2 * LOG_EVERY})
    plain_loop(dataset, warm)
    recipe_job(dataset, workspace, warm)
    pairs = []
    for _ in range(args.repeats):
        pairs.append((plain_loop(dataset, args), recipe_job(dataset, workspace, args)))
    med = statistics.median
    return {
        "plain": med(p[0] for p, _ in pairs),
        "recipe": med(r[0] for _, r in pairs),
        "wall_ratio": med(r[0] / p[0] for p, r in pairs),
        "cpu_ratio": med(r[1] / p[1] for p, r in pairs),
    }


def summary_line(
    device: torch.device, model: str, args: argparse.Namespace, r: dict[str, float]
) -> str:
    cpu = "n/a" if math.isnan(r["cpu_ratio"]) else f"{r['cpu_ratio']:.3f}"
    return (
        f"RESULT device={device} ({_device_name(device)}) model={model} "
        f"batch={args.batch_size} size={args.image_size} steps={args.steps} "
        f"amp={amp_dtype(device)} | plain={r['plain']:,.0f} img/s recipe={r['recipe']:,.0f} "
        f"img/s | recipe/plain wall={r['wall_ratio']:.3f} cpu-time={cpu} "
        f"(median of {args.repeats} pairs; target >= 0.95, i.e. overhead <= 5%)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--model", default="small_cnn", nargs="+", help="one or more models")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-images", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    configure_backends(device)
    models = args.model if isinstance(args.model, list) else [args.model]
    with tempfile.TemporaryDirectory() as tmp:
        dataset = str(
            write_synthetic(
                Path(tmp) / "data",
                n_train=args.train_images,
                n_val=256,
                size=args.image_size,
                classes=10,
            )
        )
        for model in models:
            run_args = argparse.Namespace(**{**vars(args), "model": model})
            r = measure(dataset, str(Path(tmp) / "ws"), run_args)
            print(summary_line(device, model, args, r), flush=True)
    return 0


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{torch.get_num_threads()} threads"


if __name__ == "__main__":
    sys.exit(main())
