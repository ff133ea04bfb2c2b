"""The planted-bug zoo: realistic broken training setups and correct controls, on real small data
(sklearn's bundled digits and diabetes, and a Markov-chain token stream for sequences).

A `Setup` holds everything `run_all` takes plus `flags`: for a bug, the checks that must flag it
(and with which statuses); for a correct setup, nothing may warn, fail or error.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_diabetes, load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from recipe_core.train.models import ModelSpec, scalable_factory

FLAG = ("fail", "warn")  # a bug counts as caught when its check says either


@dataclass(frozen=True)
class Setup:
    name: str
    model: Any  # nn.Module or factory
    loader: Any
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    options: dict[str, Any] = field(default_factory=dict)  # task, num_classes, optimizer
    flags: dict[str, tuple[str, ...]] = field(default_factory=dict)  # check -> statuses
    checks: tuple[str, ...] | None = None  # a control's checks to run (None: all of them)
    family: str = ""  # the family of mistakes a bug (or its clean twin) belongs to


# -- data ---------------------------------------------------------------------------------------
@functools.cache
def digits(size: int = 8, rgb: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C, size, size) float32 normalised digits and (N,) int64 labels."""
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16
    if size != 8:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    if rgb:  # a tinted copy per channel: real colour images, not three identical planes
        x = torch.cat([x, x.pow(2), x.sqrt()], dim=1)
    mean, std = x.mean(dim=(0, 2, 3), keepdim=True), x.std(dim=(0, 2, 3), keepdim=True)
    return (x - mean) / std, torch.tensor(d.target, dtype=torch.int64)


@functools.cache
def diabetes() -> tuple[torch.Tensor, torch.Tensor]:
    """(442, 10) standardised features and (442, 1) raw targets (mean ~152, std ~77)."""
    d = load_diabetes()
    x = torch.tensor(d.data, dtype=torch.float32)
    x = (x - x.mean(0)) / x.std(0)
    return x, torch.tensor(d.target, dtype=torch.float32)[:, None]


@functools.cache
def tokens(n: int = 512, steps: int = 17, vocab: int = 8, seed: int = 0) -> torch.Tensor:
    """(n, steps) token ids from a sparse Markov chain: the next token is quite predictable."""
    rng = np.random.default_rng(seed)
    trans = rng.dirichlet(np.full(vocab, 0.2), size=vocab)
    seq = np.zeros((n, steps), dtype=np.int64)
    seq[:, 0] = rng.integers(0, vocab, n)
    for t in range(1, steps):
        u = rng.random(n)[:, None]
        seq[:, t] = (u > trans[seq[:, t - 1]].cumsum(1)).sum(1).clip(0, vocab - 1)
    return torch.from_numpy(seq)


def loader(x: torch.Tensor, y: torch.Tensor, *, batch: int = 64, shuffle: bool = True) -> Any:
    return DataLoader(
        TensorDataset(x, y), batch_size=batch, shuffle=shuffle,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip


class Mapped:
    """A loader whose batches pass through `fn` (the place most data bugs live)."""

    def __init__(self, base: Any, fn: Callable[[torch.Tensor, torch.Tensor], tuple[Any, Any]]):
        self.base, self.fn = base, fn

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        return (self.fn(x, y) for x, y in self.base)


# -- models -------------------------------------------------------------------------------------
def mlp_factory(size: int = 8, classes: int = 10, channels: int = 1) -> Callable[..., nn.Module]:
    return scalable_factory("mlp", ModelSpec(channels, size, classes))


def cnn_factory(size: int = 8, classes: int = 10, channels: int = 1) -> Callable[..., nn.Module]:
    return scalable_factory("small_cnn", ModelSpec(channels, size, classes))


def linear(features: int = 64, classes: int = 10) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(features, classes))


def regressor(bias: float = 0.0, features: int = 10) -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(features, 64), nn.ReLU(), nn.Linear(64, 1))
    with torch.no_grad():
        net[2].bias.fill_(bias)
    return net


class Wrap(nn.Module):
    """A model whose forward is `fn(self.net, x)`: how the zoo plants bugs inside forward."""

    def __init__(self, net: nn.Module, fn: Callable[[nn.Module, torch.Tensor], torch.Tensor]):
        super().__init__()
        self.net, self.fn = net, fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.net, x)


class CausalGRU(nn.Module):
    def __init__(self, vocab: int = 8, hidden: int = 32, bidirectional: bool = False):
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.rnn = nn.GRU(hidden, hidden, batch_first=True, bidirectional=bidirectional)
        self.head = nn.Linear(hidden * (2 if bidirectional else 1), vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T) ids -> (B, T, V) logits
        return self.head(self.rnn(self.embed(x))[0])


class CausalConv(nn.Module):
    """Left-padded 1-D convolutions; `centred=True` pads both sides (sees the future)."""

    def __init__(self, vocab: int = 8, hidden: int = 32, kernel: int = 3, centred: bool = False):
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.pad = (kernel // 2, kernel // 2) if centred else (kernel - 1, 0)
        self.conv1 = nn.Conv1d(hidden, hidden, kernel)
        self.conv2 = nn.Conv1d(hidden, hidden, kernel)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x).transpose(1, 2)  # (B, D, T)
        h = torch.relu(self.conv1(F.pad(h, self.pad)))
        h = torch.relu(self.conv2(F.pad(h, self.pad)))
        return self.head(h.transpose(1, 2))


class TinyAttention(nn.Module):
    """One masked self-attention block with learned positions; `causal=False` drops the mask."""

    def __init__(self, vocab: int = 8, dim: int = 32, steps: int = 16, causal: bool = True):
        super().__init__()
        self.embed, self.pos = nn.Embedding(vocab, dim), nn.Embedding(steps, dim)
        self.attn = nn.MultiheadAttention(dim, 2, batch_first=True)
        self.norm, self.head, self.causal = nn.LayerNorm(dim), nn.Linear(dim, vocab), causal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        h = self.embed(x) + self.pos(torch.arange(t, device=x.device))
        mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1) if self.causal else None
        h = h + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return self.head(self.norm(h))


def seq_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(out.flatten(0, 1), y.flatten())


def seq_loader(*, shuffle: bool = True) -> Any:
    seq = tokens()
    return loader(seq[:, :-1], seq[:, 1:], batch=32, shuffle=shuffle)
