"""Record the exact inputs of `model(x)`: the one forward pre-hook Recipe captures batches with.

`BatchTap` serves scripts and checks (batches kept in memory) and the training loop's
`InputCapture` (batches handed to a callback that writes them into the run), so what "the net
sees" means the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import torch
from torch import nn

from recipe_core.errors import ConfigError


@dataclass(frozen=True)
class CapturedBatch:
    call: int  # 0-based index of the model(x) call since the tap opened (counted calls only)
    inputs: torch.Tensor = field(repr=False)  # detached CPU copy of the first argument
    training: bool  # model.training at the time of the call


class BatchTap:
    """Context manager recording the inputs of `model(x)`: the first `first` calls, then every
    `every`-th call (0 = never), keeping at most `limit` batches.

        with BatchTap(model, first=2, every=50) as tap:
            train(model, loader)
        view = inspect_batch(tap.captured[0].inputs, None)

    `training_only` counts only calls in training mode (evaluation passes are not what the net
    learns from); `on_batch` receives each captured batch as it happens (then nothing is kept
    in `captured`). With `every=0` the hook removes itself once the first batches are in.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        first: int = 3,
        every: int = 0,
        limit: int = 64,
        training_only: bool = False,
        on_batch: Callable[[CapturedBatch], None] | None = None,
    ):
        if first < 0 or every < 0 or limit < 1:
            raise ConfigError(
                f"BatchTap(first={first}, every={every}, limit={limit}): need first >= 0, "
                "every >= 0 (0 = only the first batches) and limit >= 1."
            )
        self.model, self.first, self.every, self.limit = model, first, every, limit
        self.training_only, self.on_batch = training_only, on_batch
        self.captured: list[CapturedBatch] = []
        self.calls = 0
        self.taken = 0  # batches captured so far (kept or handed to on_batch)
        self._handle: torch.utils.hooks.RemovableHandle | None = None

    @property
    def active(self) -> bool:
        return self._handle is not None

    def wants(self, call: int) -> bool:
        return call < self.first or (self.every > 0 and call % self.every == 0)

    def _hook(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        if self.training_only and not module.training:
            return
        call, self.calls = self.calls, self.calls + 1
        if not args or not isinstance(args[0], torch.Tensor) or not self.wants(call):
            return
        if self.on_batch is None and len(self.captured) >= self.limit:
            return
        x = args[0].detach().to("cpu", copy=True)
        batch = CapturedBatch(call=call, inputs=x, training=module.training)
        self.taken += 1
        if self.on_batch is None:
            self.captured.append(batch)
        else:
            self.on_batch(batch)
        if self.every == 0 and self.taken >= self.first:
            self.close()  # nothing more to take: no hook left on the hot path

    def open(self) -> BatchTap:
        if self._handle is None and (self.first > 0 or self.every > 0):
            self._handle = self.model.register_forward_pre_hook(self._hook)
        return self

    def close(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def __enter__(self) -> BatchTap:
        return self.open()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
