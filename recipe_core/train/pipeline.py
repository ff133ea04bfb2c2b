"""Train the user's own pipeline under Recipe's loop, recorded like a built-in run.

`train_pipeline(PipelineTrainConfig("examples/char_lm.py:pipeline", preset="overfit"))` runs
their model, loader, loss and optimizer and writes what a built-in run writes: metrics (one
host sync per `log_every` steps), the first training inputs exactly as model(x) received them,
prediction dynamics on a probe batch from `val_loader` (classification), checkpoints, and a
terminal status, whatever happens. The job entry point (`jobs.train_job`) runs it when a run's
config.json names a pipeline.
"""

from __future__ import annotations

import io
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from recipe_core.data.pipeline import (
    Batch,
    Pipeline,
    default_optimizer,
    load_pipeline,
    user_call,
)
from recipe_core.errors import ConfigError, PipelineError, RecipeError
from recipe_core.jobs.state import JobCancelled
from recipe_core.runs import RunWriter
from recipe_core.runs.predictions import MAX_TOP_K
from recipe_core.train.config import check_number
from recipe_core.train.device import (
    autocast_factory,
    configure_backends,
    resolve_device,
    wants_channels_last,
)
from recipe_core.train.divergence import DivergenceWatch, chance_loss, divergence_error
from recipe_core.train.predictions import PredictionRecorder
from recipe_core.train.probes import DynamicsRecorder, InputCapture, write_probe
from recipe_core.train.run import describe_failure
from recipe_core.workspace import Workspace, open_workspace

log = logging.getLogger(__name__)

# preset -> (steps, what it changes): the recipe's jobs on the user's own setup
PIPELINE_PRESETS: dict[str, tuple[int, str]] = {
    "overfit": (1000, "one batch, repeated: the loss must go to ~0 (stops once it is there)"),
    "baseline": (500, "the pipeline as written"),
    "input_independent": (500, "inputs zeroed: the score to beat"),
    "train": (3000, "longer training"),
}
VAL_BATCHES = 20  # batches of val_loader per evaluation
OVERFIT_DONE = 0.02  # overfit stops once a window's mean loss is below this share of the first
STATUS_EVERY_S = 1.0  # status.json's step is for humans: once a second is plenty
AMP_TOLERANCE = 0.02  # bf16 autocast is used only if it moves the first loss less than this


@dataclass(frozen=True)
class PipelineTrainConfig:
    pipeline: str  # the spec, FILE.py:NAME or module:NAME
    preset: str = "baseline"
    steps: int = 0  # 0 = the preset's
    seed: int = 0
    device: str = "auto"
    lr: float | None = None  # overrides the default Adam's 3e-4 (not a pipeline's optimizer)
    log_every: int = 25  # metric flushes, as built-in runs
    eval_every: int = 100
    dynamics_every: int = 25  # probe snapshots (classification pipelines), as built-in runs
    capture_batches: int = 2
    probe_size: int = 64
    amp: bool = True  # bf16 autocast on CUDA, when it is safe for this model (see above)
    channels_last: bool = True  # NHWC on CUDA for conv nets, when it leaves the output unchanged

    def __post_init__(self) -> None:
        if self.preset not in PIPELINE_PRESETS:
            raise ConfigError(f"Unknown preset {self.preset!r} for a pipeline. Valid presets: "
                              f"{', '.join(PIPELINE_PRESETS)}.")  # fmt: skip
        for name in ("steps", "seed", "eval_every", "dynamics_every", "capture_batches",
                     "probe_size"):  # fmt: skip
            check_number(self, name, low=0, integer=True)
        check_number(self, "log_every", low=1, integer=True)  # metrics need an interval
        if self.lr is not None:  # 0 also means the default Adam's 3e-4
            check_number(self, "lr", low=0)

    @property
    def total_steps(self) -> int:
        return self.steps or PIPELINE_PRESETS[self.preset][0]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "pipeline", **asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PipelineTrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def pipeline_run_name(config: PipelineTrainConfig) -> str:
    """'overfit-char_lm' for examples/char_lm.py:pipeline, 'baseline-my_pkg.mod' for a module."""
    target = config.pipeline.rpartition(":")[0]
    return f"{config.preset}-{Path(target).stem if target.endswith('.py') else target}"


def is_pipeline_config(data: Mapping[str, Any]) -> bool:
    return data.get("kind") == "pipeline"


@dataclass(frozen=True)
class PipelineResult:
    run_id: str
    run_dir: Path
    device: str
    steps: int
    stop_reason: str  # "max_steps" | "target_loss" (overfit reached ~0)
    train_loss: float  # mean loss of the last logging window
    val_loss: float  # nan without a val_loader
    val_accuracy: float  # nan unless classification with a val_loader
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "run_dir": str(self.run_dir)}


def train_pipeline(
    config: PipelineTrainConfig,
    *,
    run: RunWriter | None = None,
    workspace: Workspace | str | None = None,
    pipeline: Pipeline | None = None,
    on_log: Callable[[int, float], None] | None = None,
) -> PipelineResult:
    """Train the pipeline `config` names (or the `pipeline` given) into `run`; the summary.
    Raises what stopped it, after recording it in status.json."""
    if run is None:
        ws = workspace if isinstance(workspace, Workspace) else open_workspace(workspace)
        run = RunWriter.create(ws, name=pipeline_run_name(config), config=config.to_dict())
    try:
        return PipelineLoop(config, run, pipeline, on_log).run()
    except (JobCancelled, KeyboardInterrupt):
        run.finish("cancelled", error="Cancelled: the job was asked to stop (SIGTERM or Ctrl+C).")
        raise
    except Exception as exc:
        report = log.error if isinstance(exc, RecipeError) else log.exception
        report("Run %s failed: %s", run.run_id, exc)
        user_traceback = getattr(exc, "user_traceback", "")
        error = describe_failure(exc) + (f"\n\n{user_traceback}" if user_traceback else "")
        run.finish("failed", error=error)
        raise


class PipelineLoop:
    def __init__(self, config: PipelineTrainConfig, writer: RunWriter, pipeline: Pipeline | None,
                 on_log: Callable[[int, float], None] | None) -> None:  # fmt: skip
        self.config, self.writer, self.on_log = config, writer, on_log
        torch.manual_seed(config.seed)
        self.device = resolve_device(config.device)
        configure_backends(self.device)
        writer.start(device=str(self.device))
        self.pipeline = pipeline or load_pipeline(config.pipeline)
        writer.update_status(stage="building model")
        self.model = self.pipeline.build_model().to(self.device)
        self.optimizer = self._optimizer()
        self.classify = self.pipeline.task in ("classification", "multilabel")
        self.divergence = DivergenceWatch(floor=chance_loss(self.pipeline.task,
                                                            self.pipeline.num_classes))  # fmt: skip
        # (step, loss, (logits, labels) for the accuracy): kept on the device until a flush
        self.pending: list[tuple[int, torch.Tensor, Batch | None]] = []
        self.last_loss = self.first_loss = math.nan
        self.status_written = -math.inf  # time.monotonic() of the last status.json update
        self.nhwc = False  # channels_last inputs (decided on the first batch, CUDA only)
        # per-sample predictions keyed by position in val_loader: its batches carry no ids
        self.predictions = (PredictionRecorder(writer, num_classes=self.pipeline.num_classes
                            or MAX_TOP_K, ids="position")
                            if self.pipeline.task == "classification" else None)  # fmt: skip

    def _optimizer(self) -> torch.optim.Optimizer:
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.pipeline.optimizer is not None:
            made = user_call("optimizer(params)", self.pipeline.optimizer, params)
            if not isinstance(made, torch.optim.Optimizer):
                raise PipelineError(f"optimizer(params) returned {type(made).__name__}, not a "
                                    "torch.optim.Optimizer.")  # fmt: skip
            return made
        if self.config.lr:  # None (or 0): the default
            return torch.optim.Adam(params, lr=self.config.lr)
        return default_optimizer(params)

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> PipelineResult:
        c, started = self.config, time.perf_counter()
        batches = self._train_batches()
        first_x, first_y = next(batches)
        self.nhwc = wants_channels_last(self.model, self.device, enabled=c.channels_last) and (
            safe_channels_last(self.model, first_x))  # fmt: skip
        autocast = self._autocast(first_x, first_y)
        probe = self._probe(first_x, first_y)
        recorder = DynamicsRecorder(self.writer, probe, autocast) if probe is not None else None
        capture = InputCapture(self.writer, self.model, count=c.capture_batches,
                               meta=self._meta())  # fmt: skip
        self.model.train()
        self.writer.update_status(stage="training")
        x, y = first_x, first_y
        done, stop = 0, "max_steps"
        try:
            for step in range(c.total_steps):
                if recorder is not None and c.dynamics_every and step % c.dynamics_every == 0:
                    recorder.snapshot(self.model, step)
                if capture.active:
                    capture.set_targets(y, np.arange(x.shape[0]))
                self._step(step, x, y, autocast)
                done = step + 1
                if done % c.log_every == 0:
                    self._flush(recorder)
                    if self._overfit_done():
                        stop = "target_loss"
                        break
                if c.eval_every and (step + 1) % c.eval_every == 0 and step + 1 < c.total_steps:
                    self._evaluate(step + 1, autocast)
                x, y = next(batches)
            if recorder is not None and c.dynamics_every:
                recorder.snapshot(self.model, done)
            self._flush(recorder)
        finally:
            capture.close()
        val_loss, val_accuracy = self._evaluate(done, autocast)
        self._checkpoint(done)
        self.writer.update_status(step=done)
        self.writer.finish("succeeded")
        return PipelineResult(self.writer.run_id, self.writer.run_dir, str(self.device), done,
                              stop, self.last_loss, val_loss, val_accuracy,
                              time.perf_counter() - started)  # fmt: skip

    def _overfit_done(self) -> bool:
        """`overfit` has done its job once the loss is a sliver of where it started."""
        return self.config.preset == "overfit" and not self.config.steps and (
            self.last_loss < OVERFIT_DONE * self.first_loss)  # fmt: skip

    def _train_batches(self) -> Iterator[Batch]:
        """The loader's batches on the device, cycled; for `overfit` the first batch forever;
        for `input_independent` with the inputs zeroed."""
        zero = self.config.preset == "input_independent"
        overfit = self.config.preset == "overfit"
        loader = self.pipeline.train_batches()
        fixed: Batch | None = None
        while True:
            empty = True
            for x, y in loader:
                empty = False
                batch = self._to_device(torch.zeros_like(x) if zero else x, y)
                if overfit:
                    fixed = batch
                    break
                yield batch
            if empty:
                raise PipelineError("train_loader yielded no batches; training needs (x, y).")
            if fixed is not None:
                while True:
                    yield fixed

    def _to_device(self, x: torch.Tensor, y: torch.Tensor) -> Batch:
        x = x.to(self.device, non_blocking=True)
        if self.nhwc and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(self.device, non_blocking=True)

    def _loss(self, out: Any, y: torch.Tensor) -> torch.Tensor:
        if not isinstance(out, torch.Tensor):
            raise PipelineError(f"model(x) returned {type(out).__name__}; Recipe's loop needs "
                                "a tensor (wrap the model to return its logits).")  # fmt: skip
        loss = user_call("loss_fn(output, y)", self.pipeline.loss_fn, out.float(), y)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise PipelineError(f"loss_fn(output, y) returned {shape}, not a scalar tensor. "
                                "Reduce it (reduction='mean').")  # fmt: skip
        return loss.reshape(())

    def _step(self, step: int, x: torch.Tensor, y: torch.Tensor,
              autocast: Callable[[], AbstractContextManager[object]]) -> None:  # fmt: skip
        with autocast():
            out = user_call("model(x)", self.model, x)
        loss = self._loss(out, y)
        self.optimizer.zero_grad(set_to_none=True)
        user_call("loss.backward()", loss.backward)
        self.optimizer.step()
        scored = None  # no kernel here: accuracies are computed per window at the flush
        if self.classify and out.ndim == 2 and y.ndim == 1 and not torch.is_floating_point(y):
            scored = (out.detach(), y)
        self.pending.append((step, loss.detach(), scored))

    def _flush(self, recorder: DynamicsRecorder | None) -> None:
        """One device->host transfer for the window's losses (and accuracies)."""
        if not self.pending:
            return
        steps = [s for s, _, _ in self.pending]
        losses = torch.stack([loss for _, loss, _ in self.pending]).float().cpu().tolist()
        acc_values = _accuracies([s for _, _, s in self.pending])
        self.pending.clear()
        lr = float(self.optimizer.param_groups[0]["lr"])
        now = time.time()
        rows = []
        for i, (step, loss) in enumerate(zip(steps, losses, strict=True)):
            row: dict[str, Any] = {"step": step, "split": "train", "loss": loss, "lr": lr,
                                   "wall_time": now}  # fmt: skip
            if acc_values is not None:
                row["accuracy"] = acc_values[i]
            rows.append(row)
        self.writer.append_metrics(rows)
        if recorder is not None:
            recorder.flush()
        if time.monotonic() - self.status_written >= STATUS_EVERY_S:
            self.writer.update_status(step=steps[-1] + 1, urgent=False)
            self.status_written = time.monotonic()
        for step, loss in zip(steps, losses, strict=True):
            if (found := self.divergence.add(step, loss)) is not None:
                raise divergence_error(found, lr=lr)
        self.last_loss = float(np.mean(losses))
        if math.isnan(self.first_loss):
            self.first_loss = self.last_loss
        if self.on_log is not None:
            self.on_log(steps[-1], self.last_loss)

    @torch.no_grad()
    def _evaluate(self, step: int, autocast: Callable[[], AbstractContextManager[object]]
                  ) -> tuple[float, float]:  # fmt: skip
        val = self.pipeline.val_batches()
        if val is None:
            return math.nan, math.nan
        self.model.eval()
        losses, correct, count = [], 0.0, 0
        try:
            for i, (x, y) in enumerate(val):
                if i >= VAL_BATCHES:
                    break
                x, y = self._to_device(x, y)
                with autocast():
                    out = user_call("model(x)", self.model, x)
                losses.append(float(self._loss(out, y)))
                if self.classify and out.ndim == 2 and y.ndim == 1:
                    correct += float((out.argmax(dim=1) == y).sum())
                    count += int(y.shape[0])
                if self.predictions is not None:
                    self.predictions.add(out, y)
        finally:
            self.model.train()
        if self.predictions is not None:
            self.predictions.write(step)  # ids: positions in the first VAL_BATCHES batches
        loss = float(np.mean(losses)) if losses else math.nan
        accuracy = correct / count if count else math.nan
        row: dict[str, Any] = {"step": step, "split": "val", "loss": loss, "wall_time": time.time()}
        if count:
            row["accuracy"] = accuracy
        self.writer.append_metrics([row])
        return loss, accuracy

    # -- what the run records besides metrics ----------------------------------------------
    def _probe(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
        """The probe batch whose predictions are recorded: from val_loader (the overfit batch
        itself for `overfit`); classification with (B, C) outputs only."""
        if not self.classify or not self.config.dynamics_every:
            return None
        val = self.pipeline.val_batches()
        if self.config.preset != "overfit" and val is not None:
            x, y = self._to_device(*next(iter(val)))
        x, y = x[: self.config.probe_size], y[: self.config.probe_size]
        with torch.no_grad():
            out = user_call("model(x)", self.model.eval(), x)
        self.model.train()
        if not isinstance(out, torch.Tensor) or out.ndim != 2 or y.ndim != 1:
            return None  # dynamics are per-sample class probabilities
        write_probe(self.writer, inputs=x, labels=y, classes=list(self.pipeline.classes or ()))
        return x

    def _autocast(self, x: torch.Tensor, y: torch.Tensor
                  ) -> Callable[[], AbstractContextManager[object]]:  # fmt: skip
        """bf16 autocast on CUDA when asked and safe: the first batch's loss under autocast
        must match the float32 loss within AMP_TOLERANCE (else float32, and the log says so)."""
        if self.device.type != "cuda" or not self.config.amp:
            return nullcontext
        candidate = autocast_factory(self.device, torch.bfloat16)
        with torch.no_grad():
            exact = float(self._loss(user_call("model(x)", self.model, x), y))
            with candidate():
                mixed = float(self._loss(user_call("model(x)", self.model, x), y))
        if math.isfinite(mixed) and abs(mixed - exact) <= AMP_TOLERANCE * max(abs(exact), 1e-6):
            return candidate
        log.warning("bf16 autocast changes this model's loss (%.4g vs %.4g): training in "
                    "float32", mixed, exact)  # fmt: skip
        return nullcontext

    def _meta(self) -> dict[str, Any]:
        p = self.pipeline
        meta: dict[str, Any] = {"classes": list(p.classes or ()), "task": p.task}
        if p.normalize is not None:
            meta["mean"], meta["std"] = list(p.normalize[0]), list(p.normalize[1])
        if isinstance(p.decode, (list, tuple)):
            meta["vocab"] = list(p.decode)
        return meta

    def _checkpoint(self, step: int) -> None:
        buffer = io.BytesIO()
        torch.save({"model": self.model.state_dict(), "step": step,
                    "config": self.config.to_dict()}, buffer)  # fmt: skip
        self.writer.write_bytes("checkpoints/last.pt", buffer.getvalue())


def _accuracies(scored: list[Batch | None]) -> list[float] | None:
    """Per-step accuracy of a window: one batched argmax when every step has (B, C) logits of
    one shape (the usual case), else step by step; None unless every step was scored."""
    if not scored or any(s is None for s in scored):
        return None
    pairs = [s for s in scored if s is not None]
    if len({(o.shape, t.shape) for o, t in pairs}) == 1:
        logits, labels = torch.stack([o for o, _ in pairs]), torch.stack([t for _, t in pairs])
        values: list[float] = (logits.argmax(dim=2) == labels).float().mean(dim=1).cpu().tolist()
        return values
    return [float((o.argmax(dim=1) == t).float().mean()) for o, t in pairs]


@torch.no_grad()
def safe_channels_last(model: nn.Module, x: torch.Tensor, tolerance: float = 1e-3) -> bool:
    """Switch `model` to channels_last if its output on the (B, C, H, W) batch `x` stays the
    same in NHWC (a user model that view()s its input raises there, one that indexes memory
    directly differs); True when switched, else the model is left as it was."""
    if x.ndim != 4:
        return False
    was_training = model.training
    model.eval()
    try:
        x = x.to(next(model.parameters()).device)
        reference = model(x)
        model.to(memory_format=torch.channels_last)
        nhwc = model(x.contiguous(memory_format=torch.channels_last))
        tensors = isinstance(reference, torch.Tensor) and isinstance(nhwc, torch.Tensor)
        same = tensors and bool(torch.allclose(reference.float(), nhwc.float(), rtol=tolerance,
                                               atol=tolerance))  # fmt: skip
    except Exception:  # the user's model does not take NHWC inputs: keep NCHW
        same = False
    finally:
        model.train(was_training)
    if not same:
        model.to(memory_format=torch.contiguous_format)
        log.info("channels_last changes this model's output: training in NCHW")
    return same
