"""The scripts API: record your own training loop as a Recipe run the dashboard shows live.

run = recipe_core.start_run("my-experiment", config={"lr": 3e-4})
run.watch(model, probe=(x_probe, y_probe), every=50)   # exact inputs + prediction dynamics
for step, (x, y) in enumerate(loader):
    loss = ...
    run.log(step, loss=loss)        # tensors are fine: no per-step device sync; a diverging
                                    # train loss (see divergence.py) fails the run (RunError)
run.log_predictions(step, val_ids, probs, val_labels)   # per-sample predictions, (N, C) probs
run.finish()                        # or use `with start_run(...) as run:`
"""

from __future__ import annotations

import atexit
import os
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from recipe_core.errors import ConfigError
from recipe_core.runs import RunWriter
from recipe_core.runs.predictions import PredictionStore
from recipe_core.train.config import TrainConfig
from recipe_core.train.divergence import DivergenceWatch, divergence_error
from recipe_core.train.predictions import prediction_frame
from recipe_core.train.probes import DynamicsRecorder, InputCapture, write_probe
from recipe_core.train.run import describe_failure
from recipe_core.workspace import Workspace, open_workspace

Metric = float | int | torch.Tensor
FLUSH_ROWS = 25  # buffered log rows before a write (and the one device sync for tensor values)
FLUSH_SECONDS = 2.0  # ...or this long since the last write, so the dashboard stays live


class Run:
    """A run recorded from a user's own script. Create it with `start_run`."""

    def __init__(self, writer: RunWriter) -> None:
        self.writer = writer
        self.rows: list[dict[str, Any]] = []
        self.last_flush = time.monotonic()
        self.recorder: DynamicsRecorder | None = None
        self.captures: list[InputCapture] = []
        self.hooks: list[RemovableHandle] = []
        self.divergence = DivergenceWatch()  # the loops' rule, on the logged train loss
        self.predictions: PredictionStore | None = None  # made by the first log_predictions
        atexit.register(self._at_exit)

    @property
    def run_id(self) -> str:
        return self.writer.run_id

    @property
    def run_dir(self) -> os.PathLike[str]:
        return self.writer.run_dir

    def log(self, step: int, *, split: str = "train", **metrics: Metric) -> None:
        """Record metrics at `step` (e.g. loss=..., accuracy=..., lr=...). Tensor values are
        fetched in one batch every few rows, not one sync each."""
        row: dict[str, Any] = {"step": int(step), "split": split, "wall_time": time.time()}
        for key, value in metrics.items():
            row[key] = value.detach() if isinstance(value, torch.Tensor) else float(value)
        self.rows.append(row)
        if len(self.rows) >= FLUSH_ROWS or time.monotonic() - self.last_flush > FLUSH_SECONDS:
            self.flush()

    def watch(
        self,
        model: nn.Module,
        *,
        probe: tuple[torch.Tensor, torch.Tensor] | None = None,
        every: int = 50,
        capture: int = 2,
        classes: Sequence[str] = (),
    ) -> None:
        """Capture the first `capture` inputs exactly as `model` receives them, and every
        `every` training-mode forward calls record softmax(model(probe_x)) in eval mode."""
        if every < 1:
            raise ConfigError(f"watch(every={every}): every must be >= 1 forward calls.")
        self.captures.append(InputCapture(self.writer, model, count=capture))
        if probe is None:
            return
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        x, y = probe[0].to(device), probe[1]
        write_probe(self.writer, inputs=x, labels=y, classes=classes)
        self.recorder = DynamicsRecorder(self.writer, x)
        self.writer.update_status(device=str(device))
        calls = [0]

        def snapshot_hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            if module.training:  # the recorder's own eval-mode forward does not count
                if calls[0] % every == 0 and self.recorder is not None:
                    self.recorder.snapshot(module, calls[0])
                calls[0] += 1

        self.hooks.append(model.register_forward_pre_hook(snapshot_hook))

    def log_predictions(self, step: int, sample_ids: Any, probs: Any, labels: Any) -> None:
        """Record every held-out sample's prediction at `step`: `probs` (N, C) softmax
        probabilities, `labels` (N,) class ids, `sample_ids` (N,) int ids (the scan's, so the
        data pages can join them; positions in your val set otherwise). Kept bounded and read
        back as built-in runs' are (`RunReader.predictions`)."""
        if self.predictions is None:
            self.predictions = PredictionStore(self.writer.files)
        self.predictions.add(prediction_frame(int(step), sample_ids, probs, labels))

    def flush(self) -> None:
        """Write buffered metric rows and dynamics snapshots now."""
        self.last_flush = time.monotonic()
        if self.recorder is not None:
            self.recorder.flush()
        if not self.rows:
            return
        rows, self.rows = _fetch_tensors(self.rows), []
        self.writer.append_metrics(rows)
        self.writer.update_status(step=max(int(r["step"]) for r in rows), urgent=False)
        self._stop_if_diverged(rows)

    def _stop_if_diverged(self, rows: list[dict[str, Any]]) -> None:
        """Divergence ends a script's run as it ends a job: failed, with a RunError raised from
        `log`, since training on is pointless."""
        for row in rows:
            loss = row.get("loss")
            if row["split"] != "train" or not isinstance(loss, float):
                continue
            found = self.divergence.add(row["step"], loss)
            if found is not None:
                error = divergence_error(found, lr=row.get("lr"))
                self.finish("failed", error=str(error))
                raise error

    def finish(self, state: str = "succeeded", *, error: str = "") -> None:
        self.flush()
        for capture in self.captures:
            capture.close()
        for hook in self.hooks:
            hook.remove()
        self.captures, self.hooks = [], []
        self.writer.finish(state, error=error)
        atexit.unregister(self._at_exit)

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.finish()
        elif isinstance(exc, KeyboardInterrupt):
            self.finish("cancelled", error="Cancelled: KeyboardInterrupt in the script.")
        else:
            self.finish("failed", error=describe_failure(exc))

    def _at_exit(self) -> None:
        if not self.writer.status().finished:
            self.finish("failed", error="The script exited without calling run.finish().")


def _fetch_tensors(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Replace tensor values by floats with one device->host transfer per device."""
    slots = [(r, k) for r in rows for k, v in r.items() if isinstance(v, torch.Tensor)]
    by_device: dict[torch.device, list[tuple[dict[str, Any], str]]] = {}
    for row, key in slots:
        by_device.setdefault(row[key].device, []).append((row, key))
    for group in by_device.values():
        values = torch.stack([row[key].float().reshape(()) for row, key in group]).cpu().tolist()
        for (row, key), value in zip(group, values, strict=True):
            row[key] = value
    return rows


def start_run(
    name: str,
    *,
    config: Mapping[str, Any] | TrainConfig | None = None,
    workspace: Workspace | str | os.PathLike[str] | None = None,
) -> Run:
    """Start recording a run from your own script (state `running`, owned by this process)."""
    if isinstance(config, TrainConfig):
        data = config.to_dict()
    else:
        data = {k: _jsonable(v) for k, v in dict(config or {}).items()}
    ws = workspace if isinstance(workspace, Workspace) else open_workspace(workspace)
    writer = RunWriter.create(ws, name=name, config=data, kind="script")
    writer.start(device="", stage="training")  # the script's own loop, already under way
    return Run(writer)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return repr(value)
