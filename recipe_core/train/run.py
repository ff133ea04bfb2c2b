"""`train(config)`: one training run, start to finish, recorded in a run directory.

Whatever happens, the run directory ends in a terminal state: `succeeded`, `failed` with the
error text, or `cancelled` (SIGTERM / Ctrl+C). Metrics written before a failure stay readable.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from recipe_core.errors import RecipeError
from recipe_core.jobs.state import JobCancelled
from recipe_core.runs import RunWriter
from recipe_core.train.config import TrainConfig
from recipe_core.train.data import Batcher, TrainData, load_train_data
from recipe_core.train.device import (
    amp_dtype,
    autocast_factory,
    configure_backends,
    resolve_device,
    wants_channels_last,
)
from recipe_core.train.divergence import chance_loss
from recipe_core.train.insides import insides_recorder
from recipe_core.train.loop import EVAL_CHUNK, Callback, Loop, LoopSummary
from recipe_core.train.predictions import PredictionRecorder
from recipe_core.train.probes import DynamicsRecorder, InputCapture, choose_probe, write_probe
from recipe_core.train.setup import build_train_model, make_optimizer, make_schedule
from recipe_core.workspace import Workspace, open_workspace

log = logging.getLogger(__name__)

STOP_FILE = "stop.json"  # {reason, step, patience, best_val_loss, best_step, ...}: see write_stop
Restore = Callable[[Loop], None]


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    run_dir: Path
    device: str  # "cpu" | "cuda:0" | ...
    steps: int  # optimizer steps taken
    stop_reason: str  # "max_steps" | "target_loss" | "early_stopping"
    train_loss: float  # loss of the last step
    val_loss: float  # final full-val-set loss
    val_accuracy: float
    best_val_loss: float
    images_per_s: float  # training throughput over the whole loop
    train_size: int  # training images used
    val_size: int
    skipped: int  # dataset files that did not decode

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "run_dir": str(self.run_dir)}


def describe_failure(exc: BaseException) -> str:
    """The one-line error kept in status.json: a RecipeError's message is already user-facing."""
    if isinstance(exc, RecipeError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"[:2000]


def default_run_name(config: TrainConfig) -> str:
    return f"{config.preset}-{config.model}"


def train(
    config: TrainConfig,
    *,
    run: RunWriter | None = None,
    workspace: Workspace | str | None = None,
    name: str | None = None,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    """Train `config` into `run` (or a new run in `workspace`); return the summary.

    Raises what stopped the run (after recording it in status.json): a RecipeError for bad
    input or divergence, JobCancelled / KeyboardInterrupt when stopped.
    """
    if run is None:
        ws = workspace if isinstance(workspace, Workspace) else open_workspace(workspace)
        run = RunWriter.create(ws, name=name or default_run_name(config), config=config.to_dict())
    return run_training(config, run, tuple(callbacks))


def run_training(config: TrainConfig, run: RunWriter, callbacks: tuple[Callback, ...], *,
                 restore: Restore | None = None) -> TrainResult:  # fmt: skip
    """`train` into an existing run directory, ending it in a terminal state whatever happens;
    `restore(loop)` (train/resume.py) loads a checkpoint into the built loop before it runs."""
    try:
        return _train(config, run, callbacks, restore)
    except (JobCancelled, KeyboardInterrupt):
        run.finish("cancelled", error="Cancelled: the job was asked to stop (SIGTERM or Ctrl+C).")
        raise
    except Exception as exc:
        if isinstance(exc, RecipeError):
            log.error("Run %s failed: %s", run.run_id, exc)
        else:
            log.exception("Run %s failed", run.run_id)
        run.finish("failed", error=describe_failure(exc))
        raise


def _train(config: TrainConfig, writer: RunWriter, callbacks: tuple[Callback, ...],
           restore: Restore | None) -> TrainResult:  # fmt: skip
    device = resolve_device(config.device)
    configure_backends(device)
    writer.start(device=str(device))
    data = load_train_data(config.dataset, image_size=config.image_size, seed=config.seed,
                           val_fraction=config.val_fraction,
                           overfit_examples=config.overfit_examples)  # fmt: skip
    _record_data(writer, data)
    writer.update_status(stage="building model")
    loop = _build_loop(config, data, device, writer, callbacks, fresh=restore is None)
    if restore is not None:
        restore(loop)
    writer.update_status(stage="training")
    try:
        summary = loop.run()
    except (JobCancelled, KeyboardInterrupt):
        loop.checkpoint("last", loop.done)  # so a cancelled run can be left training later
        raise
    write_stop(writer, config, summary, best_step=loop.best_step)
    writer.finish("succeeded")
    log.info("Run %s succeeded after %d steps (%s)", writer.run_id, summary.steps,
             summary.stop_reason)  # fmt: skip
    return _result(writer, str(device), summary, data)


def _build_loop(config: TrainConfig, data: TrainData, device: torch.device, writer: RunWriter,
                callbacks: tuple[Callback, ...], *, fresh: bool = True) -> Loop:  # fmt: skip
    """Model (on the device, NHWC when it pays), batchers, probe, capture hook and optimizer.
    Not `fresh` (a resumed run): its first batches were captured when it started."""
    model = build_train_model(config, in_channels=data.train.channels, labels=data.train.labels,
                              num_classes=len(data.classes)).to(device)  # fmt: skip
    channels_last = wants_channels_last(model, device, enabled=config.channels_last)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    autocast = autocast_factory(device, amp_dtype(device, enabled=config.amp))
    shared: dict[str, Any] = dict(
        mean=data.mean,
        std=data.std,
        device=device,
        seed=config.seed,
        zero_inputs=config.zero_inputs,
        channels_last=channels_last,
    )
    batches = Batcher(data.train, batch_size=config.batch_size, augment=config.augment, **shared)
    val = Batcher(data.val, batch_size=EVAL_CHUNK, **shared)
    probe_x = _write_probe(writer, config, batches if config.overfit_examples else val, data)
    meta = {"mean": data.mean, "std": data.std, "classes": list(data.classes)}
    optimizer = make_optimizer(config, model)
    capture = config.capture_batches if fresh else 0  # a resumed run captured them at its start
    return Loop(
        config,
        model,
        batches=batches,
        val=val,
        writer=writer,
        recorder=DynamicsRecorder(writer, probe_x, autocast),
        capture=InputCapture(writer, model, count=capture, meta=meta),
        optimizer=optimizer,
        schedule=make_schedule(config, optimizer),
        autocast=autocast,
        callbacks=callbacks,
        checkpoint_meta={**meta, "config": config.to_dict()},
        chance_loss=chance_loss("classification", len(data.classes)),
        insides=insides_recorder(config, writer, model, optimizer, image_shape=probe_x.shape[1:]),
        predictions=PredictionRecorder(writer, num_classes=len(data.classes)),
    )


def write_stop(
    writer: RunWriter, config: TrainConfig, summary: LoopSummary, *, best_step: int
) -> None:
    """stop.json: when and why the run stopped, so the Runs page can say "stopped early at step
    S: val loss did not improve for P evaluations (best B at step T)" instead of guessing."""
    writer.write_json(STOP_FILE, {
        "reason": summary.stop_reason, "step": summary.steps, "max_steps": config.steps,
        "patience": config.early_stopping, "target_loss": config.target_loss,
        "train_loss": _finite(summary.train_loss), "best_val_loss": _finite(summary.best_val_loss),
        "best_step": best_step if best_step >= 0 else None,
    })  # fmt: skip


def describe_stop(stop: Mapping[str, Any]) -> str:
    """One sentence from stop.json: when and why the run stopped ("" when it ran every step)."""
    reason, step, limit = stop.get("reason"), stop.get("step"), stop.get("max_steps")
    best, best_step = stop.get("best_val_loss"), stop.get("best_step")
    kept = f" (best val loss {best:.4g} at step {best_step}, kept in checkpoints/best.pt)" if (
        isinstance(best, float) and best_step is not None) else ""  # fmt: skip
    if reason == "early_stopping":
        return (f"Stopped early at step {step} of {limit}: the validation loss did not improve "
                f"for {stop.get('patience')} evaluations in a row{kept}.")  # fmt: skip
    if reason == "target_loss":
        return (f"Stopped at step {step} of {limit}: the training loss fell below the target "
                f"{stop.get('target_loss'):g}{kept}.")  # fmt: skip
    return ""


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _record_data(writer: RunWriter, data: TrainData) -> None:
    log.info(
        "Training on %d images, validating on %d (%s); %d file(s) skipped",
        len(data.train),
        len(data.val),
        data.val_source,
        len(data.skipped),
    )
    writer.write_json("data.json", {
        "classes": list(data.classes), "train_size": len(data.train), "val_size": len(data.val),
        "val_source": data.val_source, "channels": data.train.channels,
        "mean": list(data.mean), "std": list(data.std), "skipped": len(data.skipped),
    })  # fmt: skip
    if len(data.skipped):
        writer.write_table("skipped.csv", data.skipped)


def _write_probe(
    writer: RunWriter, config: TrainConfig, source: Batcher, data: TrainData
) -> torch.Tensor:
    """Pick the probe (from val; from the overfit set itself for `overfit`), store it once and
    return its prepared inputs on the device."""
    labels = source.labels.cpu()
    index = choose_probe(labels.numpy(), size=config.probe_size, seed=config.seed)
    pixels = source.images[torch.as_tensor(index).to(source.images.device)]  # (P, C, H, W) uint8
    x = source.prepare(pixels)
    write_probe(
        writer,
        inputs=x,
        labels=labels[index],
        sample_ids=source.sample_ids[index],
        images=pixels.cpu().numpy(),
        classes=data.classes,
    )
    return x


def _result(writer: RunWriter, device: str, summary: LoopSummary, data: TrainData) -> TrainResult:
    return TrainResult(
        run_id=writer.run_id, run_dir=writer.run_dir, device=device, steps=summary.steps,
        stop_reason=summary.stop_reason, train_loss=summary.train_loss,
        val_loss=summary.val_loss, val_accuracy=summary.val_accuracy,
        best_val_loss=summary.best_val_loss, images_per_s=summary.images_per_s,
        train_size=len(data.train), val_size=len(data.val), skipped=len(data.skipped),
    )  # fmt: skip
