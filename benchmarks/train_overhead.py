"""What does recording a run cost? The same model, data and steps through a hand-written PyTorch
loop and through a Recipe job (metrics every 25 steps, prediction dynamics every 25 steps, the
first two input batches captured), side by side. Target: overhead <= 5 %.

    python benchmarks/train_overhead.py                          # CPU: small_cnn
    python benchmarks/train_overhead.py --model mlp small_cnn    # CPU: several models
    python benchmarks/train_overhead.py --preset host-bound      # CPU: Recipe's host cost, µs/step
    # GPU (H100): bf16 autocast + channels_last + fused Adam, 7 pairs of 600 timed steps each
    python benchmarks/train_overhead.py --device cuda --model small_cnn resnet18

`--preset host-bound` (linear model, 8x8 images, batch 8): a plain step is a few hundred µs of
Python and dispatch, the regime of a small net on an H100 (launches, not kernels, set the pace),
so Recipe's per-step host work shows in full; the `%` column scales it to an `--at-step-ms` step
(default 8.2 ms: resnet18, bf16, batch 128 on an H100).

Both loops keep the uint8 images on the device, draw seeded permutations and normalise on the
device, so the difference is Recipe's own bookkeeping. Both are timed over the same steps: from
the end of step 50 (after the two captured batches and the first window) to the end of the last
step, with a device sync at both marks on CUDA and none in between. After one warm-up each,
`--repeats` (plain, Recipe) pairs run interleaved, so drifting load hits both sides of a pair.
Ratios use CPU time on CPU (steadier on a shared machine), wall time on CUDA. Reported: medians,
the median per-pair ratio with its range, the ratio of medians, the overhead in µs per step, and
"inconclusive" when the pair-to-pair spread exceeds the effect. On CUDA one more Recipe job runs
under `torch.cuda.set_sync_debug_mode("warn")` and counts synchronizing calls in its timed steps
(expected 0). Periodic evaluation is off. Prints a `RESULT` line per model.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from recipe_core.train import make_config, train
from recipe_core.train.data import load_train_data
from recipe_core.train.device import (
    amp_dtype,
    autocast_factory,
    configure_backends,
    resolve_device,
    wants_channels_last,
)
from recipe_core.train.loop import TrainEvent, windows_in_flight
from recipe_core.train.models import ModelSpec, build_model

LOG_EVERY = 25  # Recipe's default metric flush and dynamics snapshot interval
START = 2 * LOG_EVERY  # the timed steps begin after this many
PRESETS = {
    "host-bound": dict(model=["linear"], image_size=8, batch_size=8, train_images=512, steps=4000)
}


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


@dataclass(frozen=True)
class Timing:
    wall: float  # seconds per timed step
    cpu: float  # process CPU seconds per timed step (meaningless on CUDA: the host waits)
    syncs: int = -1  # synchronizing CUDA calls in the timed steps (-1: not counted)


class Clock:
    """Wall and CPU time at the start (end of step START) and end (end of the last step) of
    the timed steps; `sync` (torch.cuda.synchronize on CUDA) runs first, so the marks time the
    device's work too."""

    def __init__(self, steps: int, sync: Callable[[], None]) -> None:
        self.steps, self.sync = steps, sync
        self.marks: dict[int, tuple[float, float]] = {}

    def mark(self, done: int) -> None:
        self.sync()
        self.marks[done] = (time.perf_counter(), time.process_time())

    def timing(self, syncs: int = -1) -> Timing:
        if set(self.marks) != {START, self.steps}:
            raise RuntimeError(f"clock marks at {sorted(self.marks)}, expected {START, self.steps}")
        (w0, c0), (w1, c1) = self.marks[START], self.marks[self.steps]
        n = self.steps - START
        return Timing(wall=(w1 - w0) / n, cpu=(c1 - c0) / n, syncs=syncs)


def device_sync(device: torch.device) -> Callable[[], None]:
    return torch.cuda.synchronize if device.type == "cuda" else lambda: None


def plain_loop(dataset: str, args: argparse.Namespace) -> Timing:
    """The hand-written baseline: what a careful user writes without Recipe."""
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
    gen, order, cursor, n = torch.Generator().manual_seed(0), torch.empty(0, dtype=torch.long), 0, 0
    b, cuda = min(args.batch_size, len(labels)), device.type == "cuda"
    clock = Clock(args.steps, device_sync(device))
    for step in range(args.steps):
        if cursor + b > n:
            perm = torch.randperm(len(labels), generator=gen)
            order = (perm.pin_memory() if cuda else perm).to(device, non_blocking=True)
            cursor, n = 0, len(perm)
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
        if step + 1 == START or step + 1 == args.steps:
            clock.mark(step + 1)
    return clock.timing()


def recipe_job(
    dataset: str,
    workspace: str,
    args: argparse.Namespace,
    *,
    count_syncs: bool = False,
    overrides: dict[str, object] | None = None,
) -> Timing:
    """A Recipe job, timed through its metric events; `count_syncs` (CUDA only) also counts
    the synchronizing CUDA calls made during the timed steps; `overrides`: config fields."""
    device = resolve_device(args.device)
    config = make_config(dataset, model=args.model, steps=args.steps, batch_size=args.batch_size,
                         image_size=args.image_size, device=args.device, eval_every=0,
                         log_every=LOG_EVERY, dynamics_every=LOG_EVERY,
                         capture_batches=2, **(overrides or {}))  # fmt: skip
    clock, lag = Clock(args.steps, device_sync(device)), windows_in_flight(device)

    def on_event(event: TrainEvent) -> None:
        if event.kind != "train":
            return
        if event.step + 1 + lag * LOG_EVERY == START:  # the host has queued START steps
            clock.mark(START)
            if count_syncs:
                torch.cuda.set_sync_debug_mode("warn")
        elif event.step + 1 == args.steps:  # the last window: everything is queued
            if count_syncs:
                torch.cuda.set_sync_debug_mode("default")
            clock.mark(args.steps)

    if not count_syncs:
        train(config, workspace=workspace, callbacks=[on_event])
        return clock.timing()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # every sync, not one per call site
        train(config, workspace=workspace, callbacks=[on_event])
    return clock.timing(syncs=sum("synchronizing" in str(w.message) for w in caught))


@dataclass(frozen=True)
class Summary:
    plain: float  # median images/s (on the ratio's clock)
    recipe: float
    ratios: list[float]  # per pair: recipe speed / plain speed
    overhead_us: list[float]  # per pair: Recipe's extra seconds per step, in µs
    wall_ratio: float  # median per-pair ratio on wall time (CPU: for reference)

    @property
    def median_ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def ratio_of_medians(self) -> float:
        return self.recipe / self.plain

    def verdict(self, target: float = 0.95) -> str:
        """Noise first (is the effect bigger than the pair-to-pair spread, and do both ratio
        estimates agree?), then the target (met / missed in every pair, else unsettled)."""
        effect, spread = 1 - self.median_ratio, (max(self.ratios) - min(self.ratios)) / 2
        disagree = (self.median_ratio - 1) * (self.ratio_of_medians - 1) < 0
        if spread > abs(effect) or disagree:
            noise = f"inconclusive: pair spread ±{spread:.1%} vs effect {effect:+.1%}"
        else:
            noise = f"effect {effect:+.1%} exceeds the pair spread ±{spread:.1%}"
        if min(self.ratios) >= target:
            goal = f"target met in every pair (worst {1 - min(self.ratios):+.1%})"
        elif max(self.ratios) < target:
            goal = "target MISSED in every pair"
        else:
            goal = "target unsettled: pairs on both sides of it"
        return f"{noise}; {goal}"


Runner = Callable[[argparse.Namespace], Timing]


def measure(
    dataset: str,
    workspace: str,
    args: argparse.Namespace,
    *,
    baseline: Runner | None = None,
    candidate: Runner | None = None,
) -> Summary:
    """`args.repeats` interleaved pairs after one warm-up of each, in alternating order (plain
    first, then Recipe first), so a slow drift (clocks, load) favours neither side. `baseline`
    and `candidate` replace the plain loop and the Recipe job (a section comparing two jobs)."""
    base = baseline or (lambda a: plain_loop(dataset, a))
    cand = candidate or (lambda a: recipe_job(dataset, workspace, a))
    warm = argparse.Namespace(**{**vars(args), "steps": START + 2 * LOG_EVERY})
    base(warm)
    cand(warm)
    pairs = []
    for i in range(args.repeats):
        if i % 2 == 0:
            plain = base(args)
            pairs.append((plain, cand(args)))
        else:
            recipe = cand(args)
            pairs.append((base(args), recipe))
    on_cpu = resolve_device(args.device).type == "cpu"
    seconds = [(p.cpu, r.cpu) if on_cpu else (p.wall, r.wall) for p, r in pairs]
    batch, med = args.batch_size, statistics.median
    return Summary(
        plain=batch / med(p for p, _ in seconds),
        recipe=batch / med(r for _, r in seconds),
        ratios=[p / r for p, r in seconds],
        overhead_us=[(r - p) * 1e6 for p, r in seconds],
        wall_ratio=med(p.wall / r.wall for p, r in pairs),
    )


def summary_line(device: torch.device, args: argparse.Namespace, s: Summary) -> str:
    clock = "cpu-time" if device.type == "cpu" else "wall"
    us = statistics.median(s.overhead_us)
    cuda = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if cuda else f"{torch.get_num_threads()} threads"
    return (
        f"RESULT device={device} ({name}) model={args.model} "
        f"batch={args.batch_size} size={args.image_size} steps={args.steps} "
        f"amp={amp_dtype(device)} pairs={args.repeats} | plain={s.plain:,.0f} img/s "
        f"recipe={s.recipe:,.0f} img/s ({clock}) | recipe/plain: median of pair ratios "
        f"{s.median_ratio:.3f} [min {min(s.ratios):.3f}, max {max(s.ratios):.3f}], ratio of "
        f"medians {s.ratio_of_medians:.3f}, wall {s.wall_ratio:.3f} | overhead "
        f"{us:+.1f} µs/step [min {min(s.overhead_us):+.1f}, max {max(s.overhead_us):+.1f}] = "
        f"{us / (args.at_step_ms * 10):+.2f}% of a {args.at_step_ms} ms step | {s.verdict()}"
    )


# --- section: insides of a run (per-layer statistics and first-layer snapshots) ---------------


def insides_line(dataset: str, workspace: str, args: argparse.Namespace) -> str:
    """Recipe with insides every LOG_EVERY steps vs the same job with them off: what item 3 of
    issue 18 costs on its own (the main line's Recipe job records them too, by default)."""
    off = partial(recipe_job, dataset, workspace, overrides={"insides_every": 0})
    on = partial(recipe_job, dataset, workspace, overrides={"insides_every": LOG_EVERY})
    s = measure(dataset, workspace, args, baseline=off, candidate=on)
    us = statistics.median(s.overhead_us)
    return (
        f"INSIDES model={args.model} every={LOG_EVERY} | off={s.plain:,.0f} img/s "
        f"on={s.recipe:,.0f} img/s | on/off: median of pair ratios {s.median_ratio:.3f} "
        f"[min {min(s.ratios):.3f}, max {max(s.ratios):.3f}], ratio of medians "
        f"{s.ratio_of_medians:.3f} | {us:+.1f} µs/step | {s.verdict()}"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), help="host-bound: see the docstring")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--model", default=["small_cnn"], nargs="+", help="one or more models")
    parser.add_argument("--steps", type=int, help="per run (default: 650 on CUDA, 200 on CPU)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7, help="interleaved (plain, Recipe) pairs")
    parser.add_argument("--train-images", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (0: torch default)")
    parser.add_argument("--insides", action="store_true",
                        help="also time insides on vs off (INSIDES line per model)")  # fmt: skip
    parser.add_argument("--at-step-ms", type=float, default=8.2, help="step time for the %% column")
    preset = parser.parse_known_args(argv)[0].preset
    parser.set_defaults(**PRESETS.get(preset or "", {}))
    args = parser.parse_args(argv)
    if args.steps is None:
        args.steps = 600 + START if resolve_device(args.device).type == "cuda" else 200
    if args.steps % LOG_EVERY or args.steps < START + LOG_EVERY:
        parser.error(f"--steps must be a multiple of {LOG_EVERY} and >= {START + LOG_EVERY}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    configure_backends(device)
    with tempfile.TemporaryDirectory() as tmp:
        dataset = str(write_synthetic(Path(tmp) / "data", n_train=args.train_images, n_val=256,
                                      size=args.image_size, classes=10))  # fmt: skip
        for model in args.model:
            run_args = argparse.Namespace(**{**vars(args), "model": model})
            summary = measure(dataset, str(Path(tmp) / "ws"), run_args)
            print(summary_line(device, run_args, summary), flush=True)
            if args.insides:
                print(insides_line(dataset, str(Path(tmp) / "ws"), run_args), flush=True)
            if device.type == "cuda":
                syncs = recipe_job(dataset, str(Path(tmp) / "ws"), run_args, count_syncs=True).syncs
                print(f"SYNCS model={model}: {syncs} synchronizing CUDA call(s) in Recipe's "
                      f"{args.steps - START} timed steps (expected 0)", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
