"""The training loop: steps, buffered metrics, evaluation, stopping rules and checkpoints.

Hot-path rule: no host<->device sync per step. Losses and logits stay on the device and are
fetched in one asynchronous transfer every `log_every` steps (the "flush", see metrics.py),
together with the dynamics snapshots taken meanwhile.

Step numbers count optimizer updates: a number logged at step s was computed with the weights
after s updates (so step 0 is the untrained net).
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

from recipe_core.runs import RunWriter
from recipe_core.train.config import TrainConfig
from recipe_core.train.data import Batcher
from recipe_core.train.divergence import DivergenceWatch, divergence_error
from recipe_core.train.insides import InsidesRecorder
from recipe_core.train.metrics import ClosedWindow, Window
from recipe_core.train.predictions import PredictionRecorder
from recipe_core.train.probes import DynamicsRecorder, InputCapture, Snapshots

log = logging.getLogger(__name__)

EVAL_CHUNK = 1024  # val images per forward pass
STATUS_EVERY_S = 1.0  # status.json's step is for humans: rewriting it once a second is plenty


@dataclass(frozen=True)
class TrainEvent:
    kind: str  # "train" (a metric flush) | "eval" | "end"
    step: int
    metrics: Mapping[str, float] = field(default_factory=dict)


Callback = Callable[[TrainEvent], None]


def windows_in_flight(device: torch.device) -> int:
    """Closed windows left unwritten after a flush: on CUDA the newest one (its copy to the host
    is still running; it is written at the next flush, so nothing waits for the GPU), on CPU
    none. So a "train" event for the window ending at step s arrives once the host has queued
    min(s + 1 + windows_in_flight * log_every, steps) steps."""
    return 1 if device.type == "cuda" else 0


@dataclass(frozen=True)
class LoopSummary:
    steps: int  # optimizer steps taken
    stop_reason: str  # "max_steps" | "target_loss" | "early_stopping"
    train_loss: float  # loss of the last step
    val_loss: float  # at the final evaluation; nan without a val set
    val_accuracy: float
    best_val_loss: float
    images_per_s: float  # training images per second, periodic evals included, final one not


class Loop:
    def __init__(self, config: TrainConfig, model: nn.Module, *, batches: Batcher, val: Batcher,
                 writer: RunWriter, recorder: DynamicsRecorder, capture: InputCapture,
                 optimizer: torch.optim.Optimizer,
                 schedule: torch.optim.lr_scheduler.LRScheduler | None,
                 autocast: Callable[[], AbstractContextManager[object]],
                 callbacks: tuple[Callback, ...] = (),
                 checkpoint_meta: Mapping[str, object] | None = None,
                 chance_loss: float = 0.0,
                 insides: InsidesRecorder | None = None,
                 predictions: PredictionRecorder | None = None,
                 ) -> None:  # fmt: skip
        self.config, self.model, self.batches, self.val = config, model, batches, val
        self.writer, self.recorder, self.capture = writer, recorder, capture
        self.optimizer, self.schedule, self.autocast = optimizer, schedule, autocast
        self.callbacks, self.checkpoint_meta = callbacks, dict(checkpoint_meta or {})
        self.insides = insides  # per-layer statistics every N steps (train/insides.py)
        self.predictions = predictions  # every val sample at each evaluation (predictions.py)
        self.window = Window()
        self.divergence = DivergenceWatch(floor=chance_loss)  # see divergence.py
        self.in_flight: list[tuple[ClosedWindow, Snapshots | None]] = []
        self.lag = windows_in_flight(batches.device)
        self.last_loss = math.nan
        self.val_loss, self.val_accuracy, self.best_val = math.nan, math.nan, math.inf
        self.bad_evals, self.last_eval, self.best_step = 0, -1, -1
        self.start_step = self.done = 0  # start > 0: resuming a checkpoint (train/resume.py)
        self.status_written = -math.inf  # time.monotonic() of the last status.json step update
        self.images = 0

    def run(self) -> LoopSummary:
        c, started, done, stop = self.config, time.perf_counter(), self.start_step, "max_steps"
        self.model.train()
        for step in range(self.start_step, c.steps):
            # a resumed run recorded its start step's snapshot when it first ended
            fresh = step == 0 or step > self.start_step
            if c.dynamics_every and step % c.dynamics_every == 0 and fresh:
                self.recorder.snapshot(self.model, step)
            if self.insides is not None:
                self.insides.before_step(step)  # after the snapshot: hooks see training only
            self._train_step(step)
            done = self.done = step + 1
            first = done == self.start_step + 1  # a curve point at once, not after log_every
            if done % c.log_every == 0 or first:
                self.flush(wait=first)  # one sync for the first step only
                if first:  # the first full window writes its step to status.json too
                    self.status_written = -math.inf
                if c.target_loss and self.last_loss < c.target_loss:
                    stop = "target_loss"
                    break
            evaluate_now = c.eval_every and done % c.eval_every == 0 and done < c.steps
            if evaluate_now and self._evaluate(done):
                stop = "early_stopping"
                break
            if c.checkpoint_every and done % c.checkpoint_every == 0:
                self.checkpoint("last", done)
        self.flush(wait=True)  # the last windows: this sync ends the timed training phase
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
        """One update. Beyond a plain loop's work: one tuple appended to the window (no kernel,
        no host read), and, for the first `capture_batches` steps, the capture hook."""
        x, y, idx = self.batches.next()
        if self.capture.active:
            self.capture.set_targets(y, self.batches.sample_ids[idx.numpy()])
        with self.autocast():
            logits = self.model(x)  # (B, C)
        loss = F.cross_entropy(logits.float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        self.window.add(step, loss, logits, y, float(self.optimizer.param_groups[0]["lr"]))
        self.optimizer.step()
        if self.schedule is not None:
            self.schedule.step()
        self.images += self.batches.batch_size  # no partial batches

    def flush(self, *, wait: bool = False) -> None:
        """Close the open window (its copy to the host starts now) and write the windows whose
        copies are done: on CUDA all but the newest unless `wait`, on CPU all of them."""
        if self.window.records:
            self.in_flight.append((self.window.close(), self.recorder.take()))
            self.window = Window()
        while len(self.in_flight) > (0 if wait else self.lag):
            self._write(*self.in_flight.pop(0))
        if self.insides is not None:
            self.insides.flush(wait=wait)

    def _write(self, window: ClosedWindow, snapshots: Snapshots | None) -> None:
        """Append a window to metrics.jsonl (and its dynamics); stop the run once it diverged."""
        rows = window.rows()
        self.writer.append_metrics(rows)
        self.recorder.write(snapshots)
        last = rows[-1]
        if time.monotonic() - self.status_written >= STATUS_EVERY_S:
            self.writer.update_status(step=last["step"] + 1)
            self.status_written = time.monotonic()
        self.last_loss = last["loss"]
        self._emit(
            "train", last["step"], {"loss": last["loss"], "images_per_s": last["images_per_s"]}
        )
        for row in rows:
            found = self.divergence.add(row["step"], row["loss"])
            if found is not None:
                raise divergence_error(found, lr=row["lr"])

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
            if self.predictions is not None:
                self.predictions.add(logits, y)  # device only: fetched once, in _evaluate
        self.model.train()
        loss_sum, correct = total.cpu().tolist()
        return loss_sum / n, correct / n

    def _evaluate(self, step: int) -> bool:
        """Evaluate, log, keep the best checkpoint; True when early stopping says stop."""
        self.flush(wait=True)
        self.last_eval = step
        self.val_loss, self.val_accuracy = self.evaluate()
        if self.predictions is not None:
            self.predictions.write(step, self.val.sample_ids)
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
            self.best_val, self.bad_evals, self.best_step = self.val_loss, 0, step
            self.checkpoint("best", step)
        else:
            self.bad_evals += 1
        self.window.started = time.perf_counter()  # evaluation is not training throughput
        patience = self.config.early_stopping
        return bool(patience) and self.bad_evals >= patience

    def _finish(self, step: int) -> None:
        if self.config.dynamics_every:
            self.recorder.snapshot(self.model, step)  # the final predictions
        if self.insides is not None:
            self.insides.finish(step)  # the final first-layer weights
        self.flush(wait=True)
        self.recorder.flush()
        if len(self.val.labels) and self.last_eval != step:
            self._evaluate(step)
        self.checkpoint("last", step)
        self.writer.update_status(step=step)
        self._emit("end", step, {"loss": self.last_loss, "val_loss": self.val_loss})

    def checkpoint(self, name: str, step: int) -> None:
        buffer = io.BytesIO()
        state = {
            "model": self.model.state_dict(),
            "step": step,
            "val_loss": self.val_loss,
            "best_val_loss": self.best_val,
            "best_step": self.best_step,
            # what resuming needs for a true continuation (train/resume.py)
            "optimizer": self.optimizer.state_dict(),
            "schedule": None if self.schedule is None else self.schedule.state_dict(),
            **self.checkpoint_meta,
        }
        torch.save(state, buffer)
        self.writer.write_bytes(f"checkpoints/{name}.pt", buffer.getvalue())

    def _emit(self, kind: str, step: int, metrics: Mapping[str, float]) -> None:
        event = TrainEvent(kind=kind, step=step, metrics=dict(metrics))
        for callback in self.callbacks:
            callback(event)
