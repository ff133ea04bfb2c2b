"""`train(config)`: one training run, start to finish, recorded in a run directory.

Whatever happens, the run directory ends in a terminal state: `succeeded`, `failed` with the
error text, or `cancelled` (SIGTERM / Ctrl+C). Metrics written before a failure stay readable.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
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
    try:
        return _train(config, run, tuple(callbacks))
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


def _train(config: TrainConfig, writer: RunWriter, callbacks: tuple[Callback, ...]) -> TrainResult:
    device = resolve_device(config.device)
    configure_backends(device)
    writer.start(device=str(device))
    data = load_train_data(config.dataset, image_size=config.image_size, seed=config.seed,
                           val_fraction=config.val_fraction,
                           overfit_examples=config.overfit_examples)  # fmt: skip
    _record_data(writer, data)
    summary = _build_loop(config, data, device, writer, callbacks).run()
    writer.finish("succeeded")
    log.info("Run %s succeeded after %d steps (%s)", writer.run_id, summary.steps,
             summary.stop_reason)  # fmt: skip
    return _result(writer, str(device), summary, data)


def _build_loop(config: TrainConfig, data: TrainData, device: torch.device, writer: RunWriter,
                callbacks: tuple[Callback, ...]) -> Loop:  # fmt: skip
    """Model (on the device, NHWC when it pays), batchers, probe, capture hook and optimizer."""
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
    return Loop(
        config,
        model,
        batches=batches,
        val=val,
        writer=writer,
        recorder=DynamicsRecorder(writer, probe_x, autocast),
        capture=InputCapture(writer, model, count=config.capture_batches, meta=meta),
        optimizer=optimizer,
        schedule=make_schedule(config, optimizer),
        autocast=autocast,
        callbacks=callbacks,
        checkpoint_meta={**meta, "config": config.to_dict()},
        chance_loss=chance_loss("classification", len(data.classes)),
        insides=insides_recorder(config, writer, model, optimizer, image_shape=probe_x.shape[1:]),
        predictions=PredictionRecorder(writer, num_classes=len(data.classes)),
    )


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
