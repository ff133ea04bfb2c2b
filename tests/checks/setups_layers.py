"""The zoo's layers families: signals that die with depth, train-mode noise, inputs that carry
almost nothing, and factories that are reproducible only because Recipe seeds them. Each bug has
a clean twin: the same model (or data) done right, which must stay quiet."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from sklearn.datasets import load_digits
from torch import nn

from tests.checks.zoo import FLAG, Setup, cnn_factory, digits, linear, loader

CE = nn.CrossEntropyLoss()
TEN = {"num_classes": 10}
DEPTH, INIT, NOISE, INPUTS, SEED = "depth", "init", "train_mode", "inputs", "reproducibility"


# -- depth: residuals, init scale ---------------------------------------------------------------
class Block(nn.Module):
    """Linear-ReLU-Linear; `skip=False` is the residual connection dropped in a refactor."""

    def __init__(self, width: int, skip: bool) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2, self.skip = (
            nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width), skip,
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc2(self.act(self.fc1(x)))
        return x + h if self.skip else torch.relu(h)


def res_mlp(skip: bool, blocks: int = 8, width: int = 64) -> nn.Module:
    torch.manual_seed(0)
    body = [Block(width, skip) for _ in range(blocks)]
    return nn.Sequential(nn.Flatten(), nn.Linear(64, width), *body, nn.Linear(width, 10))


class ConvBlock(nn.Module):
    """Two 3x3 convolutions without normalisation; `skip=False` drops the identity path."""

    def __init__(self, channels: int, skip: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.skip = skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(torch.relu(self.conv1(x)))
        return torch.relu(x + h if self.skip else h)


def res_cnn(skip: bool, blocks: int = 6, channels: int = 16) -> nn.Module:
    torch.manual_seed(0)
    body = [ConvBlock(channels, skip) for _ in range(blocks)]
    head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 10)]
    return nn.Sequential(nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), *body, *head)


def deep_mlp(init: Callable[[torch.Tensor], Any], *, act: type[nn.Module] = nn.ReLU,
             depth: int = 6, width: int = 64) -> nn.Module:  # fmt: skip
    """A plain MLP whose hidden weights all go through `init` (biases start at 0)."""
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Flatten()]
    for i in range(depth):
        layers += [nn.Linear(64 if i == 0 else width, width), act()]
    layers.append(nn.Linear(width, 10))
    with torch.no_grad():
        for m in layers[:-1]:
            if isinstance(m, nn.Linear):
                init(m.weight)
                m.bias.zero_()
    return nn.Sequential(*layers)


def unit_normal(net: nn.Module) -> nn.Module:
    """Every weight drawn from N(0, 1), ignoring fan-in (biases left as they were)."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("weight"):
                p.normal_(0, 1)
    return net


def kaiming(w: torch.Tensor) -> None:
    nn.init.kaiming_normal_(w, nonlinearity="relu")


def bias_mlp(bias: float) -> nn.Module:
    """An MLP whose hidden biases were all set to `bias` (a loop meant for the output layer)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128),
                        nn.ReLU(), nn.Linear(128, 10))  # fmt: skip
    with torch.no_grad():
        for m in (net[1], net[3]):
            m.bias.fill_(bias)
    return net


# -- train-mode noise: dropout rates and BatchNorm statistics ------------------------------------
def dropout_mlp(p: float, *, on_inputs: bool = False) -> nn.Module:
    """Dropout on the hidden layer, or on the inputs (`on_inputs`)."""
    torch.manual_seed(0)
    first = [nn.Dropout(p)] if on_inputs else []
    hidden = [] if on_inputs else [nn.Dropout(p)]
    return nn.Sequential(nn.Flatten(), *first, nn.Linear(64, 128), nn.ReLU(), *hidden,
                         nn.Linear(128, 10))  # fmt: skip


def bn_cnn(momentum: float | None = 0.1) -> Callable[[], nn.Module]:
    """The built-in BatchNorm CNN with every BatchNorm's momentum set (0: 'frozen' stats)."""
    base = cnn_factory()

    def build() -> nn.Module:
        net = base()
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = momentum
        return net

    return build


def bn_mlp(depth: int = 8) -> nn.Module:
    """A deep plain MLP (no residuals) kept in scale by BatchNorm after every Linear."""
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Flatten()]
    for _ in range(depth):
        layers += [nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(64, 10))


def frozen_backbone() -> nn.Module:
    """A frozen feature extractor (256 random ReLU features) with a trainable head: only the
    head learns, by design, so the backbone carries no gradient."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
    net[1].requires_grad_(False)
    return net


# the deep CNN's own checks: the training-length checks cost ~40 s on it and test nothing new
DEEP_CNN_CHECKS = (
    "labels_and_outputs",
    "batch_stats",
    "gradient_flow",
    "layer_statistics",
    "eval_determinism",
    "train_eval_gap",
    "reproducibility",
    "optimizer_sanity",
)


# -- inputs -------------------------------------------------------------------------------------
def unit_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 1, 8, 8) digits on ToTensor's [0, 1] scale and (N,) labels."""
    d = load_digits()
    return torch.tensor(d.images, dtype=torch.float32)[:, None] / 16, torch.tensor(d.target)


def normalised_with(scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """[0, 1] digits normalised with their mean and std measured on `scale` x the pixels
    (255: statistics of the 0-255 images applied to 0-1 tensors)."""
    x, y = unit_digits()
    return (x - scale * x.mean()) / (scale * x.std()), y


# -- reproducibility: who seeds the init ---------------------------------------------------------
def unseeded_mlp() -> nn.Module:
    """A factory drawing its init from torch's global RNG without seeding it."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def seeded_mlp() -> nn.Module:
    """The same factory seeding torch first: every call builds the same weights."""
    torch.manual_seed(1234)
    return unseeded_mlp()


def correct_setups() -> list[Setup]:
    x, y = digits()
    pixels, yb = unit_digits()
    binary = (pixels > 0.5).float()  # "is the pixel inked": 0/1 features
    return [
        Setup("deep_mlp_with_residuals", res_mlp(skip=True), loader(x, y), CE, TEN,
              family=DEPTH),
        Setup("deep_cnn_with_residuals", res_cnn(skip=True), loader(x, y), CE, TEN,
              checks=DEEP_CNN_CHECKS, family=DEPTH),
        Setup("deep_mlp_kaiming_init", deep_mlp(kaiming), loader(x, y), CE, TEN, family=INIT),
        Setup("deep_tanh_xavier_init", deep_mlp(nn.init.xavier_normal_, act=nn.Tanh),
              loader(x, y), CE, TEN, family=INIT),
        Setup("relu_biases_zero", bias_mlp(0.0), loader(x, y), CE, TEN, family=INIT),
        Setup("deep_cnn_default_init", res_cnn(skip=False, blocks=2), loader(x, y), CE, TEN,
              family=INIT),
        Setup("dropout_0_1_hidden", dropout_mlp(0.1), loader(x, y), CE, TEN, family=NOISE),
        Setup("dropout_0_5_hidden", dropout_mlp(0.5), loader(x, y), CE, TEN, family=NOISE),
        Setup("dropout_0_2_inputs", dropout_mlp(0.2, on_inputs=True), loader(x, y), CE, TEN,
              family=NOISE),
        Setup("batchnorm_default_momentum", bn_cnn(), loader(x, y), CE, TEN, family=NOISE),
        Setup("deep_mlp_batchnorm_no_residual", bn_mlp(), loader(x, y), CE, TEN, family=DEPTH),
        Setup("frozen_backbone_head_only", frozen_backbone(), loader(x, y), CE, TEN,
              family=DEPTH),
        Setup("pixels_normalised_right_stats", cnn_factory(), loader(*normalised_with(1.0)), CE,
              TEN, family=INPUTS),
        Setup("binary_pixel_features", linear(), loader(binary.flatten(1), yb), CE, TEN,
              family=INPUTS),
        Setup("factory_seeds_torch", seeded_mlp, loader(x, y), CE, TEN, family=SEED),
    ]  # fmt: skip


def bug_setups() -> list[Setup]:
    x, y = digits()
    return [
        Setup("deep_mlp_residual_dropped", res_mlp(skip=False), loader(x, y), CE, TEN,
              {"layer_statistics": FLAG}, family=DEPTH),
        Setup("deep_cnn_residual_dropped", res_cnn(skip=False), loader(x, y), CE, TEN,
              {"layer_statistics": FLAG}, family=DEPTH),
        Setup("deep_mlp_tiny_init", deep_mlp(lambda w: nn.init.normal_(w, 0, 0.01)),
              loader(x, y), CE, TEN, {"layer_statistics": FLAG}, family=INIT),
        Setup("deep_tanh_unit_normal_init", deep_mlp(nn.init.normal_, act=nn.Tanh),
              loader(x, y), CE, TEN, {"layer_statistics": FLAG}, family=INIT),
        Setup("relu_biases_negative", bias_mlp(-3.0), loader(x, y), CE, TEN,
              {"layer_statistics": FLAG}, family=INIT),
        Setup("deep_cnn_unit_normal_init", unit_normal(res_cnn(skip=False, blocks=2)),
              loader(x, y), CE, TEN, {"layer_statistics": FLAG}, family=INIT),
        Setup("dropout_keep_written_as_drop", dropout_mlp(0.9), loader(x, y), CE, TEN,
              {"train_eval_gap": FLAG}, family=NOISE),
        Setup("input_dropout_keep_as_drop", dropout_mlp(0.8, on_inputs=True), loader(x, y), CE,
              TEN, {"train_eval_gap": FLAG}, family=NOISE),
        Setup("batchnorm_momentum_zero", bn_cnn(0.0), loader(x, y), CE, TEN,
              {"train_eval_gap": FLAG}, family=NOISE),
        Setup("normalised_with_0_255_stats", cnn_factory(), loader(*normalised_with(255.0)), CE,
              TEN, {"batch_stats": ("fail",)}, family=INPUTS),
        Setup("factory_without_torch_seed", unseeded_mlp, loader(x, y), CE, TEN,
              {"reproducibility": ("warn",)}, family=SEED),
    ]  # fmt: skip
