"""The zoo's inhabitants: correct controls and one realistic planted bug per entry."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from recipe_core.data.tensors import ImageTensors, NormalizedImages, make_loader
from tests.checks.zoo import (
    FLAG,
    CausalConv,
    CausalGRU,
    Mapped,
    Setup,
    TinyAttention,
    Wrap,
    cnn_factory,
    diabetes,
    digits,
    linear,
    loader,
    mlp_factory,
    regressor,
    seq_loader,
    seq_loss,
)

CE = nn.CrossEntropyLoss()
MSE = nn.MSELoss()
SEQ = {"task": "sequence"}
REG = {"task": "regression"}
TEN = {"num_classes": 10}


def imbalanced() -> tuple[torch.Tensor, torch.Tensor]:
    """Digits as 'is it a zero?': ~10 % positives."""
    x, y = digits()
    return x, (y == 0).long()


def prior_init_mlp(prior: float) -> nn.Module:
    """An MLP for 2 classes whose final bias starts at the log prior (init well)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
    with torch.no_grad():
        net[3].bias.copy_(torch.log(torch.tensor([1 - prior, prior])))
    return net


def normalized_images(size: int = 8, *, twice: bool = False) -> Any:
    """Digits through Recipe's own NormalizedImages + make_loader (the CLI's path)."""
    d = load_digits()
    pixels = torch.tensor(d.images * 255 / 16, dtype=torch.float32).round().to(torch.uint8)
    data = ImageTensors(
        images=pixels[:, None], labels=torch.tensor(d.target), classes=tuple("0123456789"),
        sample_ids=np.arange(len(d.target)), skipped=pd.DataFrame(),
    )  # fmt: skip
    mean, std = data.channel_stats()
    kind = TwiceNormalized if twice else NormalizedImages
    return make_loader(kind(data, mean=mean, std=std), batch_size=64, shuffle=True, seed=0)


class TwiceNormalized(NormalizedImages):
    """The classic: Normalize applied again on top of already-normalised tensors."""

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = super().__getitem__(i)
        return self.normalize(x), y


def binary_head(sigmoid: bool, prior: float | None = None) -> nn.Module:
    """One logit (optionally through a sigmoid); `prior` sets the bias to logit(prior)."""
    torch.manual_seed(0)
    layers = [nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1)]
    if prior is not None:
        with torch.no_grad():
            layers[3].bias.fill_(float(np.log(prior / (1 - prior))))
    return nn.Sequential(*layers, *([nn.Sigmoid()] if sigmoid else []))


def zero_final(net: nn.Module) -> nn.Module:
    with torch.no_grad():
        list(net.modules())[-1].weight.zero_()
    return net


class Squeeze(nn.Module):
    """(B, 1) -> (B,): one logit per sample, the BCEWithLogitsLoss way."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


def correct_setups() -> list[Setup]:
    x, y = digits()
    xr, yr = diabetes()
    ystd = (yr - yr.mean()) / yr.std()
    xi, yi = imbalanced()
    prior = float(yi.float().mean())
    binary = {"num_classes": 2}
    rgb_checks = ("labels_and_outputs", "batch_stats", "batch_independence", "loss_at_init")
    sgd = {**TEN, "optimizer": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)}
    dropout = nn.Sequential(
        nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, 10)
    )
    return [
        Setup("linear_digits", linear(), loader(x, y), CE, TEN),
        Setup("mlp_digits", mlp_factory(), loader(x, y), CE, TEN),
        Setup("cnn_digits", cnn_factory(), loader(x, y), CE, TEN),
        Setup("cnn_digits_rgb16", cnn_factory(16, 10, 3), loader(*digits(16, True)), CE, TEN,
              checks=rgb_checks),
        Setup("regression_mean_bias", regressor(float(yr.mean())), loader(xr, yr, batch=32),
              MSE, REG),
        Setup("regression_standardised", regressor(), loader(xr, ystd, batch=32), MSE, REG),
        Setup("imbalanced_prior_init", prior_init_mlp(prior), loader(xi, yi), CE, binary),
        Setup("gru_sequence", CausalGRU(), seq_loader(), seq_loss,
              {**SEQ, "optimizer": lambda p: torch.optim.Adam(p, lr=1e-3)}),
        Setup("causal_conv_sequence", CausalConv(), seq_loader(), seq_loss, SEQ),
        Setup("masked_attention_sequence", TinyAttention(), seq_loader(), seq_loss, SEQ),
        Setup("dropout_mlp", dropout, loader(x, y), CE, TEN),
        Setup("label_smoothing", mlp_factory(), loader(x, y),
              nn.CrossEntropyLoss(label_smoothing=0.1), TEN),
        Setup("normalized_images_cnn", cnn_factory(), normalized_images(), CE, TEN),
        Setup("bce_single_logit", binary_head(False, prior), loader(xi, yi.float()[:, None]),
              nn.BCEWithLogitsLoss(), binary),
        Setup("bceloss_on_sigmoid", binary_head(True, prior), loader(xi, yi.float()[:, None]),
              nn.BCELoss(), binary),
        Setup("zero_init_final_layer", zero_final(linear()), loader(x, y), CE, TEN),
        Setup("one_logit_squeezed", Squeeze(binary_head(False, prior)), loader(xi, yi.float()),
              nn.BCEWithLogitsLoss(), binary),
        Setup("sgd_momentum_cnn", cnn_factory(), loader(x, y), CE, sgd,
              checks=("gradient_flow", "optimizer_sanity", "overfit_one_batch")),
    ]  # fmt: skip


def _probs_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10), nn.Softmax(-1)
    )


def _scaled_final(scale: float) -> nn.Module:
    net = linear()
    with torch.no_grad():
        net[1].weight.mul_(scale)
    return net


def _noisy_init_factory() -> nn.Module:
    net = linear()
    with torch.no_grad():  # numpy's global RNG: not reached by torch.manual_seed
        net[1].weight.add_(torch.from_numpy(np.random.randn(10, 64)).float() * 0.01)
    return net


def _noisy_forward(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return net(x + torch.from_numpy(np.random.randn(*x.shape)).float() * 0.1)


def _mix_batch(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    flat = x.flatten(1)  # (B, 64)
    return net(flat.t().reshape(flat.shape))  # 'reshape instead of transpose' mixes the batch


def _bad_width_factory(width: float = 1.0) -> nn.Module:
    """An MLP initialised with N(0, 1) weights regardless of fan-in."""
    torch.manual_seed(0)
    hidden = int(256 * width)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 1)
    return net


def _nan_pixel(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.clone()
    x[0, 0, 0, 0] = float("nan")  # e.g. a division by a zero std in one image
    return x, y


def _all_zero_mlp() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
    return net


class NoZeroGrad(torch.optim.SGD):
    """SGD whose zero_grad does nothing: gradients pile up across steps."""

    def zero_grad(self, set_to_none: bool = True) -> None:
        return None


def _view_scramble(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    return net(x.permute(0, 2, 3, 1).reshape(b, c, h, w))  # 'to channels-last' done with a view


def bug_setups() -> list[Setup]:
    x, y = digits()
    xr, yr = diabetes()
    ystd = (yr - yr.mean()) / yr.std()
    xi, yi = imbalanced()
    order = torch.argsort(y, stable=True)
    shuffled_y = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(1))]
    x16, y16 = digits(16, True)
    plus_one = Mapped(loader(x, y), lambda a, b: (a, b + 1))
    to_255 = Mapped(loader(x, y), lambda a, b: ((a - a.min()) / (a.max() - a.min()) * 255, b))
    hwc = Mapped(loader(x16, y16), lambda a, b: (a.permute(0, 2, 3, 1).reshape(a.shape), b))
    binary, fail = {"num_classes": 2}, ("fail",)
    return [
        Setup("labels_one_based", linear(), plus_one, CE, TEN, {"labels_and_outputs": fail}),
        Setup("labels_one_based_undeclared", linear(), plus_one, CE, {},
              {"labels_and_outputs": fail}),
        Setup("too_few_outputs", linear(64, 9), loader(x, y), CE, TEN,
              {"labels_and_outputs": fail}),
        Setup("softmax_in_model", _probs_model(), loader(x, y), CE, TEN,
              {"loss_function": fail}),
        Setup("loss_on_probabilities", mlp_factory(), loader(x, y),
              lambda o, t: F.cross_entropy(o.softmax(-1), t), TEN, {"loss_function": fail}),
        Setup("nll_on_logits", mlp_factory(), loader(x, y), lambda o, t: F.nll_loss(o, t), TEN,
              {"loss_function": fail, "loss_at_init": fail}),
        Setup("unnormalised_0_255", mlp_factory(), to_255, CE, TEN, {"batch_stats": fail}),
        Setup("not_shuffled", mlp_factory(), loader(x[order], y[order], shuffle=False), CE, TEN,
              {"batch_stats": fail}),
        Setup("hwc_scramble", cnn_factory(16, 10, 3), hwc, CE, TEN, {"batch_stats": fail}),
        Setup("batch_mean_in_forward", Wrap(linear(), lambda n, a: n(a - a.mean(0))),
              loader(x, y), CE, TEN, {"batch_independence": fail}),
        Setup("reshape_mixes_batch", Wrap(linear(), _mix_batch), loader(x, y), CE, TEN,
              {"batch_independence": fail}),
        Setup("regression_bias_far", regressor(0.0), loader(xr, yr, batch=32), MSE, REG,
              {"loss_at_init": fail, "init_well": fail}),
        Setup("final_weights_x100", _scaled_final(100.0), loader(x, y), CE, TEN,
              {"loss_at_init": fail, "init_well": fail}),
        Setup("dropout_at_eval", Wrap(linear(), lambda n, a: n(F.dropout(a, 0.3, training=True))),
              loader(x, y), CE, TEN, {"eval_determinism": fail}),
        Setup("bidirectional_gru", CausalGRU(bidirectional=True), seq_loader(), seq_loss, SEQ,
              {"causal_dependence": fail}),
        Setup("centred_conv", CausalConv(centred=True), seq_loader(), seq_loss, SEQ,
              {"causal_dependence": fail}),
        Setup("unmasked_attention", TinyAttention(causal=False), seq_loader(), seq_loss, SEQ,
              {"causal_dependence": fail}),
        Setup("unseeded_factory", _noisy_init_factory, loader(x, y), CE, TEN,
              {"reproducibility": fail}),
        Setup("unseeded_forward_noise", Wrap(linear(), _noisy_forward), loader(x, y), CE, TEN,
              {"reproducibility": fail, "eval_determinism": fail}),
        Setup("lr_10_sgd", mlp_factory(), loader(x, y), CE,
              {**TEN, "optimizer": lambda p: torch.optim.SGD(p, lr=10.0)},
              {"optimizer_sanity": fail}),
        Setup("lr_10_adam", mlp_factory(), loader(x, y), CE,
              {**TEN, "optimizer": lambda p: torch.optim.Adam(p, lr=10.0)},
              {"optimizer_sanity": fail}),
        Setup("detached_output", Wrap(linear(), lambda n, a: n(a).detach().requires_grad_()),
              loader(x, y), CE, TEN, {"gradient_flow": fail, "overfit_one_batch": fail}),
        Setup("frozen_model", linear().requires_grad_(False), loader(x, y), CE, TEN,
              {"gradient_flow": fail}),
        Setup("optimizer_on_wrong_params", mlp_factory(), loader(x, y), CE,
              {**TEN, "optimizer": lambda p: torch.optim.Adam([nn.Parameter(torch.zeros(1))])},
              {"gradient_flow": fail, "overfit_one_batch": fail}),
        Setup("imbalanced_uniform_init", mlp_factory(8, 2), loader(xi, yi), CE, binary,
              {"loss_at_init": FLAG, "init_well": FLAG}),
        Setup("regression_broadcast", regressor(float(ystd.mean())),
              loader(xr, ystd[:, 0], batch=32), MSE, REG, {"loss_function": fail}),
        Setup("labels_shuffled", linear(), loader(x, shuffled_y), CE, TEN,
              {"input_independent_baseline": fail}),
        Setup("input_ignored", Wrap(linear(), lambda n, a: n(a * 0)), loader(x, y), CE, TEN,
              {"input_independent_baseline": fail, "batch_independence": fail}),
        Setup("width_ignores_fan_in", _bad_width_factory, loader(x, y), CE, TEN,
              {"capacity_ladder": fail}),
        Setup("nan_in_inputs", linear(), Mapped(loader(x, y), _nan_pixel), CE, TEN,
              {"batch_stats": fail}),
        Setup("double_sigmoid", binary_head(True), loader(xi, yi.float()[:, None]),
              nn.BCEWithLogitsLoss(), binary, {"loss_function": fail}),
        Setup("all_zero_init", _all_zero_mlp(), loader(x, y), CE, TEN, {"gradient_flow": fail}),
        Setup("zero_grad_forgotten", mlp_factory(), loader(x, y), CE,
              {**TEN, "optimizer": lambda p: NoZeroGrad(p, lr=0.1)}, {"gradient_flow": fail}),
        Setup("scramble_in_forward", Wrap(cnn_factory(16, 10, 3)(), _view_scramble),
              loader(x16, y16), CE, TEN, {"batch_stats": fail}),
        Setup("normalize_twice", cnn_factory(), normalized_images(twice=True), CE, TEN,
              {"batch_stats": fail}),
        Setup("relu_on_logits", nn.Sequential(linear(), nn.ReLU()), loader(x, y), CE, TEN,
              {"loss_function": fail}),
        Setup("label_smoothing_1", linear(), loader(x, y), nn.CrossEntropyLoss(label_smoothing=1.0),
              TEN, {"loss_function": fail}),
        Setup("targets_not_shifted", CausalGRU(), Mapped(seq_loader(), lambda a, b: (a, a)),
              seq_loss, SEQ, {"batch_stats": fail}),
    ]  # fmt: skip
