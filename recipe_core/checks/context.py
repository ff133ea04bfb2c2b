"""The setup every check reads: fresh models, a few real batches, the loss and the optimizer.

Calls into the user's code (model, loss, optimizer) go through `CheckContext` so an exception
there becomes a finding about the user's setup (`UserCodeError`), not a Recipe crash.
"""

from __future__ import annotations

import copy
import inspect
import logging
import math
import time
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

import torch
from torch import nn

from recipe_core.data.pipeline import TASKS, default_optimizer, user_frames
from recipe_core.errors import ConfigError, RecipeError

log = logging.getLogger(__name__)

MAX_BATCHES = 12  # batches read from the loader: enough to see shuffling and a held-out pair
MAX_SAMPLES = 2048  # ... or this many samples, whichever comes first
MAX_HELDOUT = 2  # batches read from a separate val_loader
MAX_STEP_BATCH = 128  # samples per training step in checks; larger batches are sliced (CPU time)

Batch = tuple[torch.Tensor, torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


class UserCodeError(Exception):
    """The user's model, loss or optimizer raised: a finding about the setup."""

    def __init__(self, where: str, error: BaseException) -> None:
        super().__init__(f"{where} raised {type(error).__name__}: {error}")
        self.where = where
        self.traceback = user_frames(error)  # the user's own lines, Recipe's frames left out


class SkipCheck(Exception):
    """A check that cannot run on this setup; the message is the reason shown to the user."""


class OutOfTime(Exception):
    """The running check spent its share of `max_seconds`. Not a SkipCheck: a check cut short
    reports what it measured so far as a warning (undecided is not a pass)."""

    def __init__(self, share: float) -> None:
        super().__init__(f"its share of max_seconds ({share:.3g} s) ran out")
        self.share = share


T = TypeVar("T")


class WorkKey(Generic[T]):
    """The typed name of a piece of work checks share (a trained model, a forward pass), so
    `SharedWork` hands each reader the type its maker returned."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"WorkKey({self.name!r})"


class SharedWork:
    """Work done once per `run_all` and read by several checks, keyed by `WorkKey`."""

    def __init__(self) -> None:
        self._done: dict[str, Any] = {}

    def get(self, key: WorkKey[T], make: Callable[[], T]) -> T:
        """The value made for `key`, making it with `make()` the first time."""
        if key.name not in self._done:
            self._done[key.name] = make()
        value: T = self._done[key.name]
        return value


class CheckContext:
    def __init__(
        self,
        model: nn.Module | Callable[[], nn.Module],
        loader: Iterable[Any],
        loss_fn: LossFn,
        *,
        task: str,
        num_classes: int | None,
        optimizer: OptimizerFactory | None,
        device: str | torch.device | None,
        seed: int,
        max_seconds: float | None,
        val_loader: Iterable[Any] | None = None,
    ) -> None:
        _validate(task, num_classes, max_seconds, loss_fn)
        self.task, self.num_classes, self.seed = task, num_classes, seed
        self.loss_fn, self.loader = loss_fn, loader
        self.optimizer_factory = optimizer or default_optimizer
        self.uses_default_optimizer = optimizer is None
        self.deadline = None if max_seconds is None else time.monotonic() + max_seconds
        self.share = math.inf  # seconds the running check may take (inf: max_seconds unset)
        self.share_deadline = math.inf  # ... as a time.monotonic() deadline
        self.ran_short = False  # max_seconds cut the running check short
        self.is_factory = not isinstance(model, nn.Module)
        self.device = _resolve_device(model, device)
        self._factory = _as_factory(model)
        self.width_factory = _width_factory(model)
        if val_loader is None:
            self.batches = gather_batches(loader, self.device)
            self.train_batches, self.heldout_batches = split_heldout(self.batches)
        else:  # held-out checks read the user's own validation batches
            train = gather_batches(loader, self.device, limit=MAX_BATCHES - MAX_HELDOUT)
            self.train_batches = [(x[:MAX_STEP_BATCH], y[:MAX_STEP_BATCH]) for x, y in train]
            self.heldout_batches = gather_batches(val_loader, self.device, limit=MAX_HELDOUT)
            self.batches = train + self.heldout_batches
        self.cache = SharedWork()

    # -- models -------------------------------------------------------------------------------
    def build(self, width: float | None = None) -> nn.Module:
        """A fresh model on `device`, torch's RNG seeded with `seed` first (so an honest factory
        builds identical weights every call)."""
        torch.manual_seed(self.seed)
        try:
            made = self._factory() if width is None else self.width_factory(width)  # type: ignore[misc]
        except Exception as error:
            raise UserCodeError("the model factory", error) from error
        if not isinstance(made, nn.Module):
            raise ConfigError(
                f"The model factory returned {type(made).__name__}, not an nn.Module. Pass a "
                "module or a zero-argument function that returns a fresh one."
            )
        return made.to(self.device)

    def forward(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        try:
            out = model(x)
        except Exception as error:
            raise UserCodeError("model(x)", error) from error
        if not isinstance(out, torch.Tensor) or not torch.is_floating_point(out):
            raise UserCodeError(
                "model(x)", TypeError(f"returned {type(out).__name__}, expected a float tensor")
            )
        return out

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        try:
            value = self.loss_fn(out, y)
        except Exception as error:
            raise UserCodeError("loss_fn(output, y)", error) from error
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise UserCodeError(
                "loss_fn(output, y)", TypeError(f"returned {shape}; expected a scalar tensor")
            )
        return value.reshape(())

    def optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        params = [p for p in model.parameters() if p.requires_grad]
        try:
            return self.optimizer_factory(params)
        except Exception as error:
            raise UserCodeError("optimizer(params)", error) from error

    def backward(self, loss: torch.Tensor) -> None:
        try:
            torch.autograd.backward(loss)
        except Exception as error:
            raise UserCodeError("loss.backward()", error) from error

    # -- time ---------------------------------------------------------------------------------
    # No check reads the clock on its own: work is budgeted in steps and samples, so a loaded
    # machine gets the same verdicts, only later. Wall time matters only when the user sets
    # max_seconds, and then each check gets a share of it.
    def start_check(self, remaining: int) -> None:
        """Open the next check's share: an equal part of what is left for the `remaining`
        checks, so time a cheap check leaves unused passes on to the checks after it."""
        self.ran_short = False
        if self.deadline is not None:
            self.share = max(0.0, self.seconds_left()) / max(1, remaining)
            self.share_deadline = time.monotonic() + self.share

    def check_time(self) -> None:
        """Raise OutOfTime once the running check's share of max_seconds is spent."""
        if time.monotonic() > self.share_deadline:
            self.ran_short = True
            raise OutOfTime(self.share)

    def seconds_left(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()


def _validate(
    task: str, num_classes: int | None, max_seconds: float | None, loss_fn: object
) -> None:
    if task not in TASKS:
        raise ConfigError(f"Unknown task {task!r}. Valid tasks: {', '.join(TASKS)}.")
    if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
        raise ConfigError(
            f"num_classes={num_classes!r} is invalid: pass a positive integer (the number of "
            "classes your labels use) or None to take it from the model's output width."
        )
    if max_seconds is not None and max_seconds <= 0:
        raise ConfigError(f"max_seconds={max_seconds!r}: pass a positive number or None.")
    if not callable(loss_fn):
        raise ConfigError(
            f"loss_fn {loss_fn!r} is not callable: pass e.g. nn.CrossEntropyLoss() or a function "
            "(output, y) -> scalar tensor."
        )


def _resolve_device(model: object, device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    if isinstance(model, nn.Module):
        first = next(iter(model.parameters()), None)
        if first is not None:
            return first.device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _as_factory(model: nn.Module | Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    if isinstance(model, nn.Module):
        pristine = copy.deepcopy(model)  # the caller's module is never touched again
        return lambda: copy.deepcopy(pristine)
    if not callable(model):
        raise ConfigError(
            f"model={model!r} is neither an nn.Module nor a zero-argument factory returning one."
        )
    return model


def _width_factory(model: object) -> Callable[[float], nn.Module] | None:
    """A factory accepting `width=` (a capacity multiplier) lets the checks climb a ladder."""
    if isinstance(model, nn.Module) or not callable(model):
        return None
    try:
        params = inspect.signature(model).parameters
    except (TypeError, ValueError):
        return None
    if "width" not in params:
        return None
    return lambda width: model(width=width)


def gather_batches(
    loader: Iterable[Any], device: torch.device, *, limit: int = MAX_BATCHES
) -> list[Batch]:
    """The first few (x, y) batches, on `device`: every check sees these same tensors."""
    try:
        iterator = iter(loader)
    except TypeError as error:
        raise ConfigError(
            f"loader {type(loader).__name__} is not iterable: pass a DataLoader yielding (x, y)."
        ) from error
    batches: list[Batch] = []
    seen = 0
    while len(batches) < limit and seen < MAX_SAMPLES:
        try:
            item = next(iterator)
        except StopIteration:
            break
        except RecipeError:
            raise
        except Exception as error:
            raise ConfigError(
                f"The loader raised {type(error).__name__} while reading batch {len(batches)}: "
                f"{error}. Fix the dataset or collate code so it yields (x, y) batches."
            ) from error
        batches.append(_as_batch(item, device))
        seen += int(batches[-1][0].shape[0])
    if not batches:
        raise ConfigError("The loader yielded no batches; checks need at least one (x, y) batch.")
    return batches


def _as_batch(item: object, device: torch.device) -> Batch:
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        size = len(item) if hasattr(item, "__len__") else "?"
        raise ConfigError(
            f"The loader yielded {type(item).__name__} of length {size}; checks need (x, y) "
            "pairs. Wrap your loader so each batch is (inputs, targets)."
        )
    try:
        x, y = (torch.as_tensor(t) for t in item)
    except (TypeError, ValueError, RuntimeError) as error:
        raise ConfigError(
            f"A batch is not a pair of tensors ({error}); checks need the loader to yield "
            "(x, y) with x and y tensors (or arrays)."
        ) from error
    if x.ndim == 0 or y.ndim == 0 or x.shape[0] != y.shape[0]:
        raise ConfigError(
            f"Batch inputs {tuple(x.shape)} and targets {tuple(y.shape)} do not share a "
            "leading batch dimension; yield x of shape (B, ...) and y of shape (B, ...)."
        )
    return x.to(device), y.to(device)


def split_heldout(batches: list[Batch]) -> tuple[list[Batch], list[Batch]]:
    """Training batches and held-out batches (the last one or two; half a batch if only one)."""
    if len(batches) == 1:
        x, y = batches[0]
        half = max(1, x.shape[0] // 2)
        return [(x[:half], y[:half])], [(x[half:], y[half:])] if x.shape[0] > 1 else []
    held = 2 if len(batches) >= 5 else 1
    train = [(x[:MAX_STEP_BATCH], y[:MAX_STEP_BATCH]) for x, y in batches[:-held]]
    return train, batches[-held:]
