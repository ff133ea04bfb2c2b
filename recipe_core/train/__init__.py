"""Training: configs and presets, the loop used by jobs, and the scripts API (`start_run`)."""

from __future__ import annotations

from recipe_core.jobs.state import JobCancelled
from recipe_core.train.config import PRESETS, TrainConfig, make_config
from recipe_core.train.device import amp_dtype, resolve_device
from recipe_core.train.loop import TrainEvent
from recipe_core.train.run import TrainResult, train
from recipe_core.train.script import Run, start_run

__all__ = [
    "PRESETS",
    "JobCancelled",
    "Run",
    "TrainConfig",
    "TrainEvent",
    "TrainResult",
    "amp_dtype",
    "make_config",
    "resolve_device",
    "start_run",
    "train",
]
