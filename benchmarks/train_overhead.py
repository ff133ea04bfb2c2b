"""What does recording a run cost? The same model, data and steps through a hand-written PyTorch
loop and through a Recipe job (metrics every 25 steps, prediction dynamics every 25 steps, the
first two input batches captured), side by side. Target: overhead <= 5 %.

    python benchmarks/train_overhead.py                                  # CPU, small_cnn
    python benchmarks/train_overhead.py --device cuda --model resnet18   # GPU: bf16 + NHWC

Both loops keep the uint8 images on the device, draw seeded permutations, normalise on the
device and (on CUDA) use bf16 autocast and channels_last, so the difference is Recipe's own
bookkeeping. Each is warmed up once, then they alternate `--repeats` times; medians are
reported. The Recipe job's periodic evaluation is off (its final evaluation is not timed).
Prints one `RESULT` line per configuration.
"""

from __future__ import annotations

import argparse
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


def plain_loop(dataset: str, args: argparse.Namespace) -> float:
    """The hand-written baseline: images/s over `args.steps` steps."""
    device = resolve_device(args.device)
    data = load_train_data(dataset, image_size=args.image_size, val_fraction=0.2, seed=0)
    torch.manual_seed(0)
    spec = ModelSpec(data.train.channels, args.image_size, len(data.classes))
    model = build_model(args.model, spec).to(device)
    nhwc = wants_channels_last(model, device)
    if nhwc:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    autocast = autocast_factory(device, amp_dtype(device))
    images, labels = data.train.images.to(device), data.train.labels.to(device)
    mean = torch.tensor(data.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(data.std, device=device).view(1, -1, 1, 1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    gen, order, cursor = torch.Generator().manual_seed(0), torch.empty(0, dtype=torch.long), 0
    b = min(args.batch_size, len(labels))
    started = time.perf_counter()
    for _ in range(args.steps):
        if cursor + b > len(order):
            order, cursor = torch.randperm(len(labels), generator=gen), 0
        idx = order[cursor : cursor + b].to(device, non_blocking=True)
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
    float(loss)  # wait for the device, once
    return args.steps * b / (time.perf_counter() - started)


def recipe_job(dataset: str, workspace: str, args: argparse.Namespace) -> float:
    config = make_config(dataset, model=args.model, steps=args.steps, batch_size=args.batch_size,
                         image_size=args.image_size, device=args.device, eval_every=0)
    return train(config, workspace=workspace).images_per_s


def measure(dataset: str, workspace: str, args: argparse.Namespace) -> tuple[float, float]:
    warm = argparse.Namespace(**{**vars(args), "steps": max(20, args.steps // 10)})
    plain_loop(dataset, warm)
    recipe_job(dataset, workspace, warm)
    plain, recipe = [], []
    for _ in range(args.repeats):  # alternate, so drifting machine load hits both alike
        plain.append(plain_loop(dataset, args))
        recipe.append(recipe_job(dataset, workspace, args))
    return statistics.median(plain), statistics.median(recipe)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--model", default="small_cnn", nargs="+", help="one or more models")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-images", type=int, default=4096)
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    configure_backends(device)
    models = args.model if isinstance(args.model, list) else [args.model]
    with tempfile.TemporaryDirectory() as tmp:
        dataset = str(write_synthetic(Path(tmp) / "data", n_train=args.train_images, n_val=256,
                                      size=args.image_size, classes=10))
        for model in models:
            run_args = argparse.Namespace(**{**vars(args), "model": model})
            plain, recipe = measure(dataset, str(Path(tmp) / "ws"), run_args)
            overhead = (plain / recipe - 1) * 100
            print(f"RESULT device={device} ({_device_name(device)}) model={model} "
                  f"batch={args.batch_size} size={args.image_size} steps={args.steps} "
                  f"amp={amp_dtype(device)} plain={plain:,.0f} img/s recipe={recipe:,.0f} img/s "
                  f"ratio={recipe / plain:.3f} overhead={overhead:+.1f}% "
                  f"(median of {args.repeats}; target <= 5%)", flush=True)
    return 0


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{torch.get_num_threads()} threads"


if __name__ == "__main__":
    sys.exit(main())
