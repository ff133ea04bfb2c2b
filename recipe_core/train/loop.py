"""The training loop: steps, buffered metrics, evaluation, stopping rules and checkpoints.

Hot-path rule: no host<->device sync per step. Losses and correct counts stay on the device and
are fetched in one transfer every `log_every` steps (the "flush"), which also writes any pending
dynamics snapshots. Step numbers count optimizer updates: a number logged at step s was computed
with the weights after s updates (so step 0 is the untrained net).
"""

from __future__ import annotations

import io
import logging
import math
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from recipe_core.dynamics import DynamicsRecorder, InputCapture
from recipe_core.errors import RunError
from recipe_core.runs import RunWriter
from recipe_core.train.config import TrainConfig
from recipe_core.train.data import Batcher

log = logging.getLogger(__name__)

EVAL_CHUNK = 1024  # val images per forward pass


@dataclass(frozen=True)
class TrainEvent:
    kind: str  # "train" (a metric flush) | "eval" | "end"
    step: int
    metrics: Mapping[str, float] = field(default_factory=dict)


Callback = Callable[[TrainEvent], None]


@dataclass(frozen=True)
class LoopSummary:
    steps: int  # optimizer steps taken
    stop_reason: str  # "max_steps" | "target_loss" | "early_stopping"
    train_loss: float  # loss of the last step
    val_loss: float  # at the final evaluation; nan without a val set
    val_accuracy: float
    best_val_loss: float
    images_per_s: float  # training images per second, periodic evals included, final one not


@dataclass
class _Window:
    """Per-step values since the last flush; tensors stay on the device."""

    losses: list[torch.Tensor] = field(default_factory=list)
    correct: list[torch.Tensor] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    first_step: int = 0
    started: float = field(default_factory=time.perf_counter)


class Loop:
    def __init__(self, config: TrainConfig, model: nn.Module, *, batches: Batcher, val: Batcher,
                 writer: RunWriter, recorder: DynamicsRecorder, capture: InputCapture,
                 optimizer: torch.optim.Optimizer, schedule: torch.optim.lr_scheduler.LRScheduler,
                 autocast: Callable[[], AbstractContextManager[object]],
                 callbacks: tuple[Callback, ...] = (), checkpoint_meta: Mapping[str, object] = {},
                 ) -> None:  # fmt: skip
        self.config, self.model, self.batches, self.val = config, model, batches, val
        self.writer, self.recorder, self.capture = writer, recorder, capture
        self.optimizer, self.schedule, self.autocast = optimizer, schedule, autocast
        self.callbacks, self.checkpoint_meta = callbacks, dict(checkpoint_meta)
        self.window = _Window()
        self.last_loss = math.nan
        self.val_loss, self.val_accuracy, self.best_val = math.nan, math.nan, math.inf
        self.bad_evals, self.last_eval = 0, -1
        self.images = 0

    def run(self) -> LoopSummary:
        c, started, done, stop = self.config, time.perf_counter(), 0, "max_steps"
        self.model.train()
        for step in range(c.steps):
            if c.dynamics_every and step % c.dynamics_every == 0:
                self.recorder.snapshot(self.model, step)
            self._train_step(step)
            done = step + 1
            if done % c.log_every == 0:
                self.flush()
                if c.target_loss and self.last_loss < c.target_loss:
                    stop = "target_loss"
                    break
            evaluate_now = c.eval_every and done % c.eval_every == 0 and done < c.steps
            if evaluate_now and self._evaluate(done):
                stop = "early_stopping"
                break
            if c.checkpoint_every and done % c.checkpoint_every == 0:
                self.checkpoint("last", done)
        self.flush()  # the last partial window: its sync ends the timed training phase
        elapsed = time.perf_counter() - started
        self._finish(done)
        return LoopSummary(
            steps=done,
            stop_reason=stop,
            train_loss=self.last_loss,
            val_loss=self.val_loss,
            val_accuracy=self.val_accuracy,
            best_val_loss=self.best_val if self.best_val < math.inf else math.nan,
            images_per_s=self.images / max(elapsed, 1e-9),
        )

    def _train_step(self, step: int) -> None:
        x, y, idx = self.batches.next()
        if self.capture.active:
            self.capture.set_targets(y, self.batches.sample_ids[idx.numpy()])
        with self.autocast():
            logits = self.model(x)  # (B, C)
        loss = F.cross_entropy(logits.float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        w = self.window
        if not w.sizes:
            w.first_step = step
        w.lrs.append(float(self.optimizer.param_groups[0]["lr"]))
        self.optimizer.step()
        self.schedule.step()
        w.losses.append(loss.detach())
        w.correct.append((logits.detach().argmax(dim=1) == y).sum())
        w.sizes.append(len(idx))
        self.images += len(idx)

    def flush(self) -> None:
        """Fetch the window's losses in one transfer, append them to metrics.jsonl, write pending
        dynamics, and fail loudly on a non-finite loss."""
        w = self.window
        if not w.sizes:
            return
        values = torch.stack([torch.stack(w.losses).float(), torch.stack(w.correct).float()])
        losses, correct = values.cpu().tolist()  # the only sync of the window
        elapsed = time.perf_counter() - w.started
        speed, wall = sum(w.sizes) / max(elapsed, 1e-9), time.time()
        per_step = zip(losses, correct, w.sizes, w.lrs, strict=True)
        self.writer.append_metrics(
            {"step": w.first_step + i, "split": "train", "loss": loss, "accuracy": ok / size,
             "lr": lr, "images_per_s": speed, "wall_time": wall}
            for i, (loss, ok, size, lr) in enumerate(per_step)
        )  # fmt: skip
        self.recorder.flush()
        last_step = w.first_step + len(losses) - 1
        self.window = _Window()
        self.writer.update_status(step=last_step + 1)
        self.last_loss = losses[-1]
        self._emit("train", last_step, {"loss": losses[-1], "images_per_s": speed})
        bad = next((i for i, v in enumerate(losses) if not math.isfinite(v)), None)
        if bad is not None:
            raise self._diverged(w.first_step + bad, losses[bad], losses[:bad])

    def _diverged(self, step: int, value: float, before: list[float]) -> RunError:
        finite = [v for v in before if math.isfinite(v)]
        last = f"{finite[-1]:.4g}" if finite else "none in this window"
        return RunError(
            f"Training loss became {value} at step {step} (last finite loss: {last}). The run "
            f"diverged: lower the learning rate (lr={self.config.lr}), check the captured input "
            "batches for NaN/inf or extreme values, and re-run with --preset overfit to debug."
        )

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        """(mean loss, accuracy) on the whole val set, with one sync at the end."""
        n = len(self.val.labels)
        if n == 0:
            return math.nan, math.nan
        self.model.eval()
        total = torch.zeros(2, device=self.val.device)  # (loss sum, correct count)
        for start in range(0, n, EVAL_CHUNK):
            x = self.val.prepare(self.val.images[start : start + EVAL_CHUNK])
            y = self.val.labels[start : start + EVAL_CHUNK]
            with self.autocast():
                logits = self.model(x)
            total[0] += F.cross_entropy(logits.float(), y, reduction="sum")
            total[1] += (logits.argmax(dim=1) == y).sum()
        self.model.train()
        loss_sum, correct = total.cpu().tolist()
        return loss_sum / n, correct / n

    def _evaluate(self, step: int) -> bool:
        """Evaluate, log, keep the best checkpoint; True when early stopping says stop."""
        self.flush()
        self.last_eval = step
        self.val_loss, self.val_accuracy = self.evaluate()
        self.writer.append_metrics(
            [
                {
                    "step": step,
                    "split": "val",
                    "loss": self.val_loss,
                    "accuracy": self.val_accuracy,
                    "wall_time": time.time(),
                }
            ]
        )
        self._emit("eval", step, {"loss": self.val_loss, "accuracy": self.val_accuracy})
        if self.val_loss < self.best_val - 1e-4:
            self.best_val, self.bad_evals = self.val_loss, 0
            self.checkpoint("best", step)
        else:
            self.bad_evals += 1
        self.window = _Window()  # evaluation time is not training throughput
        patience = self.config.early_stopping
        return bool(patience) and self.bad_evals >= patience

    def _finish(self, step: int) -> None:
        if self.config.dynamics_every:
            self.recorder.snapshot(self.model, step)  # the final predictions
        self.flush()
        self.recorder.flush()
        if len(self.val.labels) and self.last_eval != step:
            self._evaluate(step)
        self.checkpoint("last", step)
        self._emit("end", step, {"loss": self.last_loss, "val_loss": self.val_loss})

    def checkpoint(self, name: str, step: int) -> None:
        buffer = io.BytesIO()
        state = {
            "model": self.model.state_dict(),
            "step": step,
            "val_loss": self.val_loss,
            **self.checkpoint_meta,
        }
        torch.save(state, buffer)
        self.writer.write_bytes(f"checkpoints/{name}.pt", buffer.getvalue())

    def _emit(self, kind: str, step: int, metrics: Mapping[str, float]) -> None:
        event = TrainEvent(kind=kind, step=step, metrics=dict(metrics))
        for callback in self.callbacks:
            callback(event)
