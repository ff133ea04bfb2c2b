"""Per-step training metrics without per-step syncs.

Each step appends its device tensors (loss, logits, targets) to the open `Window`: one tuple,
no kernel, no host read. Every `log_every` steps the window is closed: a handful of kernels for
the whole window, one non-blocking copy to pinned host memory and a CUDA event. The loop writes
a closed window only once the next one closes (on CUDA), by which time the copy is long done,
so the CPU never waits for the GPU to drain its queue and the GPU never idles while the CPU
writes files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from recipe_core.train.probes import HostCopy

# One step's record: loss () float32, logits (B, C), targets (B,) int64, learning rate.
StepRecord = tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]


@dataclass(frozen=True)
class ClosedWindow:
    first_step: int
    sizes: list[int]  # images per step
    lrs: list[float]  # learning rate used at each step
    elapsed: float  # host seconds the window took to enqueue (= device time in steady state)
    values: HostCopy  # (2, K): loss, correct count per step

    def rows(self) -> list[dict[str, Any]]:
        """metrics.jsonl rows, one per step (waits for the copy if it is still in flight)."""
        losses, correct = self.values.get().tolist()
        speed, wall = sum(self.sizes) / max(self.elapsed, 1e-9), time.time()
        per_step = zip(losses, correct, self.sizes, self.lrs, strict=True)
        return [
            {"step": self.first_step + i, "split": "train", "loss": loss, "accuracy": ok / size,
             "lr": lr, "images_per_s": speed, "wall_time": wall}
            for i, (loss, ok, size, lr) in enumerate(per_step)
        ]  # fmt: skip


@dataclass
class Window:
    """Per-step values since the last flush; tensors stay on the device."""

    first_step: int = 0
    records: list[StepRecord] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def __len__(self) -> int:
        return len(self.records)

    def add(
        self, step: int, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor, lr: float
    ) -> None:
        """The per-step hot path: one tuple appended (detached, so no graph is kept alive)."""
        if not self.records:
            self.first_step = step
        self.records.append((loss.detach(), logits.detach(), y, lr))

    def close(self) -> ClosedWindow:
        """A handful of kernels for the whole window, then an asynchronous copy to the host."""
        losses, logits, targets, lrs = zip(*self.records, strict=True)
        sizes = [t.shape[0] for t in targets]
        if len(set(sizes)) == 1:  # every step the same batch size
            hits = torch.stack(logits).argmax(dim=2) == torch.stack(targets)
            correct = hits.sum(dim=1)  # (K,)
        else:
            correct = torch.stack(
                [(lg.argmax(1) == t).sum() for lg, t in zip(logits, targets, strict=True)]
            )
        values = torch.stack([torch.stack(losses).float(), correct.float()])  # (2, K)
        return ClosedWindow(
            first_step=self.first_step,
            sizes=sizes,
            lrs=list(lrs),
            elapsed=time.perf_counter() - self.started,
            values=HostCopy(values),
        )
