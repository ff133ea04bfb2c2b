"""The model, optimizer and schedule a `TrainConfig` asks for."""

from __future__ import annotations

import math

import torch
from torch import nn

from recipe_core.errors import ConfigError
from recipe_core.train.config import TrainConfig
from recipe_core.train.models import ModelSpec, build_model, final_linear


def label_prior_bias(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """log p(class) over `labels` (N,): the bias that makes an untrained net predict the prior
    ("init well": the loss at step 0 is then the prior's entropy, not ln C). Classes absent
    from `labels` get the log of one pseudo-count, not -inf."""
    counts = torch.bincount(labels.cpu(), minlength=num_classes).double().clamp_min(1.0)
    return (counts / counts.sum()).log().float()


def insert_dropout(model: nn.Module, p: float) -> None:
    """Put `nn.Dropout(p)` in front of the model's final linear layer (in place)."""
    last = final_linear(model)
    if last is None:
        raise ConfigError("dropout needs a model with a final nn.Linear layer; set dropout=0.")
    name = next(n for n, m in model.named_modules() if m is last)
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, nn.Sequential(nn.Dropout(p), last))


def build_train_model(
    config: TrainConfig, *, in_channels: int, labels: torch.Tensor, num_classes: int
) -> nn.Module:
    """A freshly initialised built-in model (weights seeded by `config.seed`), with dropout and
    the prior-bias init applied when the config asks for them."""
    torch.manual_seed(config.seed)
    spec = ModelSpec(
        in_channels=in_channels,
        image_size=config.image_size,
        num_classes=num_classes,
        width=config.width,
    )
    model = build_model(config.model, spec)
    last = final_linear(model)
    if config.init_bias and last is not None and last.bias is not None:
        with torch.no_grad():
            last.bias.copy_(label_prior_bias(labels, num_classes))
    if config.dropout > 0:
        insert_dropout(model, config.dropout)
    return model


def make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """The config's optimizer; Adam/AdamW use the fused CUDA kernel on a GPU (fewer launches)."""
    params = [p for p in model.parameters() if p.requires_grad]
    fused = bool(params) and params[0].is_cuda
    if config.optimizer in ("adam", "adamw"):
        cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
        return cls(params, lr=config.lr, weight_decay=config.weight_decay, fused=fused or None)
    return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)


def make_schedule(
    config: TrainConfig, optimizer: torch.optim.Optimizer
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """Cosine from `lr` to 0 over `steps`; None for a constant LR (no per-step scheduler work)."""
    if config.lr_schedule == "constant":
        return None
    total = config.steps

    def factor(step: int) -> float:
        return 0.5 * (1 + math.cos(math.pi * min(step, total) / total))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
