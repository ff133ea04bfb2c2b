"""`TrainConfig` and the recipe's presets.

A preset is a named set of field values on top of the defaults (which are the `baseline`); the
user's own overrides win over both. The config is persisted verbatim as the run's config.json.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from recipe_core.errors import ConfigError
from recipe_core.train.models import MODELS

log = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("constant", "cosine")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")

# Karpathy's recipe, step by step. The defaults are the baseline: Adam 3e-4 ("the safe choice"),
# constant LR, no augmentation or regularisation, a fixed seed, the full val set every 100 steps.
PRESETS: dict[str, dict[str, Any]] = {
    "baseline": {},
    # Overfit one small batch: a model that cannot drive its loss to ~0 on 16 images has a bug.
    "overfit": {
        "overfit_examples": 16, "batch_size": 16, "steps": 1000, "lr": 1e-3, "target_loss": 0.01,
        "eval_every": 0, "log_every": 10, "dynamics_every": 10,
    },
    # Zeroed inputs: what the net learns from the label prior alone. Real data must beat it.
    "input_independent": {"zero_inputs": True},
    # Regularise (augment, dropout, weight decay, early stopping), then decay the learning rate.
    "train": {
        "steps": 2000, "augment": True, "dropout": 0.2, "optimizer": "adamw",
        "weight_decay": 5e-4, "lr_schedule": "cosine", "early_stopping": 5,
    },
}  # fmt: skip


@dataclass(frozen=True)
class TrainConfig:
    dataset: str  # dataset path (an image folder), absolute for detached jobs
    model: str = "small_cnn"  # a key of recipe_core.train.models.MODELS
    preset: str = "baseline"  # the preset these values started from (a record, not re-applied)
    steps: int = 500  # optimizer steps (the most, when a stopping rule ends the run earlier)
    batch_size: int = 64  # images per optimizer step
    lr: float = 3e-4  # peak learning rate
    optimizer: str = "adam"  # adam | adamw | sgd (momentum 0.9)
    weight_decay: float = 0.0  # decoupled for adamw, L2 for adam/sgd
    lr_schedule: str = "constant"  # constant | cosine (to 0 at `steps`)
    augment: bool = False  # random rotations ±8° and shifts ±8%, on the device
    dropout: float = 0.0  # dropout probability before the final linear layer
    init_bias: bool = True  # "init well": final-layer bias = log of the training label prior
    zero_inputs: bool = False  # feed zeros instead of images (the input-independent baseline)
    overfit_examples: int = 0  # > 0: train on only this many examples (seeded, class-balanced)
    target_loss: float = 0.0  # > 0: stop once the training loss falls below this
    early_stopping: int = 0  # > 0: stop after this many evaluations without a better val loss
    eval_every: int = 100  # steps between full validation passes (0: only at the end)
    log_every: int = 25  # steps between metric flushes: one device sync each
    dynamics_every: int = 25  # steps between probe-batch snapshots (0: off)
    insides_every: int = 25  # steps between per-layer statistics recordings (0: off)
    probe_size: int = 64  # probe samples whose predictions are recorded at each snapshot
    capture_batches: int = 2  # first input batches saved exactly as fed to model(x)
    checkpoint_every: int = 0  # steps between checkpoints/last.pt saves (0: only at the end)
    image_size: int = 32  # images are resized to image_size x image_size px
    width: float = 1.0  # model capacity multiplier (see recipe_core.train.models)
    val_fraction: float = 0.2  # held out of train when the dataset has no val split
    seed: int = 0  # weights, batch order, augmentation and the probe choice
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # bf16 autocast on CUDA (no effect on CPU)
    channels_last: bool = True  # NHWC memory format for conv models on CUDA

    def __post_init__(self) -> None:
        _check_choice("model", self.model, tuple(MODELS), "--model")
        _check_choice("preset", self.preset, tuple(PRESETS), "--preset")
        _check_choice("optimizer", self.optimizer, OPTIMIZERS, "optimizer=")
        _check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES, "lr_schedule=")
        if not DEVICE_PATTERN.match(self.device):
            raise ConfigError(
                f"Unknown device {self.device!r}. Use 'auto', 'cpu', 'cuda' or 'cuda:N'."
            )
        for name in ("steps", "batch_size", "log_every", "image_size"):
            check_number(self, name, low=1, integer=True)
        for name in ("overfit_examples", "early_stopping", "eval_every", "dynamics_every",
                     "insides_every", "probe_size", "capture_batches", "checkpoint_every",
                     "seed"):  # fmt: skip
            check_number(self, name, low=0, integer=True)
        for name in ("weight_decay", "target_loss"):
            check_number(self, name, low=0)
        for name in ("lr", "width", "dropout", "val_fraction"):  # the last two: in range below
            check_number(self, name, low=0, above=name != "dropout")
        if not (0 <= self.dropout < 1 and 0 < self.val_fraction < 1):
            raise ConfigError(
                f"dropout ({self.dropout}) must be in [0, 1) and val_fraction "
                f"({self.val_fraction}) in (0, 1)."
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Read a persisted config; keys this version does not know are ignored (logged)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            log.warning("Ignoring unknown config keys %s", unknown)
        return cls(**{k: v for k, v in data.items() if k in known})


def make_config(dataset: str, *, preset: str = "baseline", **overrides: Any) -> TrainConfig:
    """The `preset`'s config for `dataset`, with `overrides` (TrainConfig fields) on top."""
    _check_choice("preset", preset, tuple(PRESETS), "--preset")
    known = {f.name for f in fields(TrainConfig)} - {"dataset", "preset"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(
            f"Unknown training option(s) {unknown}. Valid options: {', '.join(sorted(known))}."
        )
    return TrainConfig(dataset=dataset, preset=preset, **{**PRESETS[preset], **overrides})


def _check_choice(name: str, value: object, choices: tuple[str, ...], flag: str) -> None:
    if value not in choices:
        raise ConfigError(
            f"Unknown {name} {value!r}. Choose one of: {', '.join(choices)} ({flag})."
        )


def check_number(
    config: Any, name: str, *, low: float, above: bool = False, integer: bool = False
) -> None:
    """`config.name` must be a finite number (an int when `integer`) >= `low` (> with `above`):
    lr=inf or nan would train on garbage and look like a result."""
    value = getattr(config, name)
    kinds = (int,) if integer else (int, float)
    number = not isinstance(value, bool) and isinstance(value, kinds)
    if number and math.isfinite(value) and (value > low if above else value >= low):
        return
    kind = "an integer" if integer else "a finite number"
    default = next((f.default for f in fields(config) if f.name == name), None)
    hint = f" (default {default!r})" if isinstance(default, (int, float)) else ""
    raise ConfigError(
        f"{name} must be {kind} {'>' if above else '>='} {low}, got {value!r}. "
        f"Set {name} to such a number{hint}."
    )
