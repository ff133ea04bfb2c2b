"""Record the exact inputs of `model(x)`: a forward pre-hook, usable around any training loop."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import torch
from torch import nn

from recipe_core.errors import ConfigError


@dataclass(frozen=True)
class CapturedBatch:
    call: int  # 0-based index of the model(x) call since the tap opened
    inputs: torch.Tensor = field(repr=False)  # detached CPU copy of the first argument
    training: bool  # model.training at the time of the call


class BatchTap:
    """Context manager recording the inputs of `model(x)`: the first `first` calls, then every
    `every`-th call (0 = never), keeping at most `limit` batches.

        with BatchTap(model, first=2, every=50) as tap:
            train(model, loader)
        view = inspect_batch(tap.captured[0].inputs, None)
    """

    def __init__(self, model: nn.Module, *, first: int = 3, every: int = 0, limit: int = 64):
        if first < 0 or every < 0 or limit < 1:
            raise ConfigError(
                f"BatchTap(first={first}, every={every}, limit={limit}): need first >= 0, "
                "every >= 0 (0 = only the first batches) and limit >= 1."
            )
        self.model, self.first, self.every, self.limit = model, first, every, limit
        self.captured: list[CapturedBatch] = []
        self.calls = 0
        self._handle: torch.utils.hooks.RemovableHandle | None = None

    def wants(self, call: int) -> bool:
        return call < self.first or (self.every > 0 and call % self.every == 0)

    def _hook(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        call, self.calls = self.calls, self.calls + 1
        if not args or not isinstance(args[0], torch.Tensor) or not self.wants(call):
            return
        if len(self.captured) < self.limit:
            x = args[0].detach().to("cpu", copy=True)
            self.captured.append(CapturedBatch(call=call, inputs=x, training=module.training))

    def __enter__(self) -> BatchTap:
        self._handle = self.model.register_forward_pre_hook(self._hook)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
