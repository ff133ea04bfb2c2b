"""Built-in models: an explicit registry (no import magic) of small, honest baselines.

Every builder takes the input shape and class count and a `width` multiplier, so the checks can
climb a capacity ladder and jobs can complexify one step at a time.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import nn

from recipe_core.errors import ConfigError
from recipe_core.settings import Settings


@dataclass(frozen=True)
class ModelSpec:
    in_channels: int  # 1 (grayscale) or 3 (RGB)
    image_size: int  # square input side, px
    num_classes: int  # output width
    width: float = 1.0  # capacity multiplier (hidden units / channels)

    def __post_init__(self) -> None:
        if self.in_channels < 1 or self.image_size < 4 or self.num_classes < 1 or self.width <= 0:
            raise ConfigError(
                f"Invalid model spec {self}: need in_channels >= 1, image_size >= 4, "
                "num_classes >= 1 and width > 0."
            )


def _linear(spec: ModelSpec) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(), nn.Linear(spec.in_channels * spec.image_size**2, spec.num_classes)
    )


def _mlp(spec: ModelSpec) -> nn.Module:
    hidden = max(4, round(256 * spec.width))
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(spec.in_channels * spec.image_size**2, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, spec.num_classes),
    )


def _small_cnn(spec: ModelSpec) -> nn.Module:
    c = max(4, round(32 * spec.width))

    def block(cin: int, cout: int) -> list[nn.Module]:
        return [
            nn.Conv2d(cin, cout, 3, padding=1),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]

    return nn.Sequential(
        *block(spec.in_channels, c),
        *block(c, 2 * c),
        *block(2 * c, 4 * c),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4 * c, spec.num_classes),
    )


def _resnet18(spec: ModelSpec) -> nn.Module:
    from torchvision.models import resnet18

    # torchvision's BasicBlock fixes its width, so `width` does not apply to resnet18.
    net: nn.Module = resnet18(weights=None, num_classes=spec.num_classes)
    # Small images: a 3x3 stride-1 stem and no max-pool, else 32 px shrinks to 1 px too early.
    net.conv1 = nn.Conv2d(spec.in_channels, 64, 3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    return net


MODELS: dict[str, Callable[[ModelSpec], nn.Module]] = {
    "linear": _linear,
    "mlp": _mlp,
    "small_cnn": _small_cnn,
    "resnet18": _resnet18,
}


BUILTIN_MODELS = tuple(MODELS)
_PLUGIN_SOURCES: dict[str, str] = {}  # plugin model name -> the file that registered it


def register_model(name: str, builder: Callable[[ModelSpec], nn.Module], *, source: str) -> None:
    """Add an operator plugin's model to MODELS (see recipe_core.train.plugins). The same
    file registering the same name again (a second load) replaces its own entry."""
    from recipe_core.train.plugins import check_name

    if _PLUGIN_SOURCES.get(name) != source:
        check_name(name, list(MODELS))
    if not callable(builder):
        raise ConfigError(f"Model {name!r} from {source}: the builder {builder!r} is not callable.")
    MODELS[name] = builder
    _PLUGIN_SOURCES[name] = source


def load_plugin_folder(folder: str | os.PathLike[str]) -> list[str]:
    """Register every model of the operator's plugin folder; returns their names."""
    from recipe_core.train.plugins import load_plugins

    return load_plugins(folder, lambda name, build, file: register_model(name, build, source=file))


def build_model(name: str, spec: ModelSpec) -> nn.Module:
    """A fresh, randomly initialised built-in model (the global torch RNG sets its weights)."""
    if name not in MODELS:
        raise ConfigError(f"Unknown model {name!r}. Built-in models: {', '.join(MODELS)}.")
    return MODELS[name](spec)


def final_linear(model: nn.Module) -> nn.Linear | None:
    """The last nn.Linear in the module tree: the layer whose bias 'init well' sets."""
    last = None
    for module in model.modules():
        if isinstance(module, nn.Linear):
            last = module
    return last


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def model_factory(name: str, spec: ModelSpec, *, seed: int = 0) -> Callable[[], nn.Module]:
    """A zero-argument factory that builds the same weights every call (seeded)."""

    def build() -> nn.Module:
        torch.manual_seed(seed)
        return build_model(name, spec)

    return build


def scalable_factory(name: str, spec: ModelSpec, *, seed: int = 0) -> Callable[..., nn.Module]:
    """Like `model_factory`, but the factory also accepts `width=` (replacing `spec.width`), so
    the checks can climb a capacity ladder with the same seeded init."""

    def build(width: float | None = None) -> nn.Module:
        torch.manual_seed(seed)
        return build_model(name, spec if width is None else replace(spec, width=width))

    return build


def load_configured_plugins(settings: Settings) -> list[str]:
    """Register the operator's plugin models ($RECIPE_PLUGINS, set by `recipe serve` from
    [plugins] folder), so the server and every job or check process it starts (they inherit the
    variable) know the same model names. Called by the entry points, never on import."""
    return load_plugin_folder(settings.plugins) if settings.plugins else []
