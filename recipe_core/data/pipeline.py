"""The user's own pipeline: their model, loaders (Dataset, transforms, collate) and loss.

    # my_project/recipe_pipeline.py
    from recipe_core import Pipeline
    def pipeline() -> Pipeline:
        return Pipeline(make_model, train_loader, nn.CrossEntropyLoss(),
                        task="classification", num_classes=10, val_loader=val_loader)

A pipeline is named by a spec, `FILE.py:NAME` or `package.module:NAME`, where NAME is a
zero-argument function returning a `Pipeline` (or a `Pipeline` itself). `load_pipeline` imports
it; that runs the user's code, so only job/check subprocesses and the CLI call it, never the
Streamlit process. Everything that goes wrong on the user's side is a `PipelineError` naming
the problem, the fix and the user's own traceback lines.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from recipe_core.data.specs import SPEC_HELP, parse_spec
from recipe_core.errors import PipelineError

TASKS = ("classification", "regression", "sequence", "multilabel")
_ENGINE = Path(__file__).resolve().parents[1]  # recipe_core/: frames here are not the user's

Batch = tuple[torch.Tensor, torch.Tensor]
TokenDecoder = Callable[[Sequence[int]], str] | Sequence[str] | Mapping[int, str]


@dataclass(frozen=True)
class Pipeline:
    """What Recipe needs of a training setup, with the user's own objects inside.

    `model` is an nn.Module or a zero-argument factory (a factory that also takes `width=` lets
    the capacity check climb a ladder); `train_loader` / `val_loader` yield `(x, y)` batches, or
    anything `to_xy` turns into one (a dict batch, a 3-tuple); `optimizer` is a
    `params -> Optimizer` factory (default Adam 3e-4). The rest is optional help for display:
    `classes` names the labels, `decode` turns token ids into text (a vocab list/dict or an
    `ids -> str` callable), `mean`/`std` are the image normalisation to undo, `layout` overrides
    the guess (image_chw, image_hwc, table, sequence, tokens, audio).
    """

    model: nn.Module | Callable[[], nn.Module]
    train_loader: Iterable[Any]
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    _: KW_ONLY
    task: str = "classification"
    num_classes: int | None = None
    val_loader: Iterable[Any] | None = None
    optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer] | None = None
    classes: Sequence[str] | None = None
    decode: TokenDecoder | None = None
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None
    to_xy: Callable[[Any], Batch] | None = None
    layout: str | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise PipelineError(f"Pipeline(task={self.task!r}) is not a task Recipe knows. "
                                f"Valid tasks: {', '.join(TASKS)}.")  # fmt: skip
        if not isinstance(self.model, nn.Module) and not callable(self.model):
            raise PipelineError(
                f"Pipeline(model={type(self.model).__name__}) is neither an nn.Module nor a "
                "zero-argument function returning one. Pass the module or its factory."
            )
        if not callable(self.loss_fn):
            raise PipelineError(
                f"Pipeline(loss_fn={type(self.loss_fn).__name__}) is not callable. Pass e.g. "
                "nn.CrossEntropyLoss() or a function (output, y) -> scalar tensor."
            )
        for name in ("train_loader", "val_loader"):
            loader = getattr(self, name)
            if loader is not None and not hasattr(loader, "__iter__"):
                raise PipelineError(
                    f"Pipeline({name}={type(loader).__name__}) is not iterable. Pass a "
                    "DataLoader (or any iterable) yielding (x, y) batches."
                )
        if (self.mean is None) != (self.std is None):
            raise PipelineError("Pipeline: give mean and std together (the Normalize to undo).")

    @property
    def normalize(self) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        if self.mean is None or self.std is None:
            return None
        return tuple(float(m) for m in self.mean), tuple(float(s) for s in self.std)

    def build_model(self) -> nn.Module:
        """The model: the module itself, or a fresh one from the factory (on the CPU)."""
        model = self.model
        made = model if isinstance(model, nn.Module) else user_call("the model factory", model)
        if not isinstance(made, nn.Module):
            raise PipelineError(f"The model factory returned {type(made).__name__}, not an "
                                "nn.Module. Return a fresh module from it.")  # fmt: skip
        return made

    def train_batches(self) -> Iterable[Batch]:
        """The training loader as (x, y) batches (through `to_xy`), re-iterable."""
        return XYLoader(self.train_loader, self.to_xy, "train_loader")

    def val_batches(self) -> Iterable[Batch] | None:
        if self.val_loader is None:
            return None
        return XYLoader(self.val_loader, self.to_xy, "val_loader")


def default_optimizer(params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """Adam at 3e-4, constant: the recipe's safe default ('adam is safe')."""
    return torch.optim.Adam(params, lr=3e-4)


class XYLoader:
    """A loader seen as (x, y) batches: `to_xy` applied, and anything else a clear error."""

    def __init__(self, loader: Iterable[Any], to_xy: Callable[[Any], Batch] | None, name: str):
        self.loader, self.to_xy, self.name = loader, to_xy, name

    def __iter__(self) -> Iterator[Batch]:
        for index, item in enumerate(user_call(f"iterating {self.name}", iter, self.loader)):
            yield self.as_xy(item, index)

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def as_xy(self, item: Any, index: int) -> Batch:
        if self.to_xy is not None:
            item = user_call(f"to_xy(batch {index} of {self.name})", self.to_xy, item)
        if isinstance(item, (tuple, list)) and len(item) == 2:
            x, y = item
            if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
                return x, y
        raise PipelineError(
            f"Batch {index} of {self.name} is {describe(item)}, not an (x, y) pair of tensors. "
            "Make the collate function return (inputs, targets), or give the Pipeline a "
            "to_xy=lambda batch: (batch['input'], batch['label']) hook."
        )


def describe(item: Any) -> str:
    if isinstance(item, Mapping):
        return f"a dict with keys {sorted(map(str, item))[:8]}"
    if isinstance(item, (tuple, list)):
        inner = ", ".join(type(v).__name__ for v in item[:4])
        return f"a {type(item).__name__} of {len(item)} ({inner})"
    return f"a {type(item).__name__}"


def user_call(where: str, fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args); an exception in the user's code becomes a PipelineError with their frames."""
    try:
        return fn(*args)
    except PipelineError:
        raise
    except Exception as error:
        raise PipelineError(
            f"{where} raised {type(error).__name__}: {error}. Fix your pipeline code (the "
            "traceback below shows your lines).",
            user_frames(error),
        ) from error


def user_frames(error: BaseException) -> str:
    """The traceback of `error` with Recipe's and the libraries' frames left out."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if _is_user_file(f.filename)]
    lines = traceback.format_list(frames)
    lines += traceback.format_exception_only(type(error), error)
    return "".join(lines).rstrip()


def _is_user_file(filename: str) -> bool:
    if filename.startswith("<") or "site-packages" in filename or "dist-packages" in filename:
        return False
    path = Path(filename).resolve()
    library = (_ENGINE, Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve())
    return not any(path.is_relative_to(root) for root in library)


def load_pipeline(spec: str, *, roots: Sequence[Path] | None = None) -> Pipeline:
    """Import the pipeline `spec` names and return it (named after the spec).

    `roots`, when given, are the folders a FILE.py spec must lie in (the app's allowed roots).
    """
    target, name = parse_spec(spec)
    if target.endswith(".py"):
        module = _import_file(_pipeline_file(target, roots))
    else:
        module = _import_module(target)
    if not hasattr(module, name):
        found = sorted(n for n in vars(module) if not n.startswith("_") and n.islower()
                       and callable(getattr(module, n)))  # fmt: skip
        raise PipelineError(f"{target} has no attribute {name!r}. Functions it defines: "
                            f"{', '.join(found[:12]) or 'none'}. {SPEC_HELP}")  # fmt: skip
    made = getattr(module, name)
    if not isinstance(made, Pipeline):
        if not callable(made):
            raise PipelineError(f"{spec} is a {type(made).__name__}, not a function. {SPEC_HELP}")
        made = user_call(f"{spec}()", made)
    if not isinstance(made, Pipeline):
        raise PipelineError(
            f"{spec}() returned {type(made).__name__}, not a recipe_core.Pipeline. Return "
            "Pipeline(model=..., train_loader=..., loss_fn=..., task=..., num_classes=...)."
        )
    return made if made.name else replace(made, name=spec)


def _pipeline_file(target: str, roots: Sequence[Path] | None) -> Path:
    path = Path(target).expanduser().resolve()
    if roots is not None and not any(path.is_relative_to(r.resolve()) for r in roots):
        allowed = ", ".join(str(r) for r in roots)
        raise PipelineError(f"Pipeline file {target} is outside the allowed folders "
                            f"({allowed}). Move it inside one, or start the app with "
                            "--data-root pointing at your project.")  # fmt: skip
    if not path.is_file():
        raise PipelineError(f"Pipeline file {target} does not exist. Check the path (relative "
                            f"to {Path.cwd()}). {SPEC_HELP}")  # fmt: skip
    return path


def _import_file(path: Path) -> Any:
    """Import a .py file as a module; its folder goes on sys.path so its own imports work."""
    module_name = f"recipe_user_pipeline_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PipelineError(f"Pipeline file {path} cannot be imported as Python. {SPEC_HELP}")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[module_name] = module
    try:
        user_call(f"importing {path.name}", spec.loader.exec_module, module)
    except PipelineError:
        sys.modules.pop(module_name, None)
        raise
    return module


def _import_module(target: str) -> Any:
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # `--pipeline my_pkg.mod:fn` run from the project
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as error:
        if error.name is not None and target.startswith(error.name):
            raise PipelineError(f"No module named {error.name!r} (from the spec's {target!r}). "
                                "Run from the folder that holds it, install it, or name the file "
                                f"as FILE.py:NAME. {SPEC_HELP}") from error  # fmt: skip
        message = f"importing {target} raised ModuleNotFoundError: {error}. Install it."
        raise PipelineError(message, user_frames(error)) from error
    except Exception as error:
        raise PipelineError(f"importing {target} raised {type(error).__name__}: {error}. Fix "
                            "your pipeline module (the traceback shows your lines).",
                            user_frames(error)) from error  # fmt: skip
