"""Layer statistics and train-vs-eval mode against trusted answers: the probe's numbers equal
torch's own on a hand-built net, and the verdicts follow the measured ratios."""

from __future__ import annotations

import torch
from torch import nn

from recipe_core.checks import run_all
from recipe_core.checks.context import CheckContext
from recipe_core.checks.layer_probe import LayerStats, dead_share, probe_layers
from recipe_core.checks.layers import VANISH, findings
from recipe_core.checks.train_eval import train_only_zeroing
from tests.checks.zoo import digits, loader

CE = nn.CrossEntropyLoss()


def _ctx(model: nn.Module) -> CheckContext:
    x, y = digits()
    return CheckContext(model, loader(x, y), CE, task="classification", num_classes=10,
                        optimizer=None, device="cpu", seed=0, max_seconds=None)  # fmt: skip


def test_probe_matches_torch_on_a_hand_built_net() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    ctx = _ctx(net)
    x, y = ctx.train_batches[0]
    stats = {s.name: s for s in probe_layers(ctx, net, (x, y))}
    hidden = net[1](x.flatten(1))
    hidden.retain_grad()
    CE(net[3](torch.relu(hidden)), y).backward()
    assert torch.isclose(torch.tensor(stats["1"].scale), hidden.std(0, unbiased=False).square()
                         .mean().sqrt(), rtol=1e-4)  # fmt: skip
    assert stats["1"].grad is not None and hidden.grad is not None
    assert abs(stats["1"].grad - float(hidden.grad.norm())) < 1e-5 * float(hidden.grad.norm())
    assert stats["2"].dead == float((torch.relu(hidden) == 0).all(0).float().mean())
    assert [s.name for s in stats.values()] == ["0", "1", "2", "3"]  # execution order


def test_dead_share_counts_units_silent_for_every_sample() -> None:
    out = torch.ones(8, 4, 3, 3)
    out[:, :3] = 0.0  # three of four channels never fire
    assert dead_share(out) == 0.75
    seq = torch.ones(8, 5, 6)
    seq[..., :3] = 0.0  # (B, T, D): half the features are dead at every step
    assert dead_share(seq) == 0.5


def _layer(name: str, scale: float, grad: float | None = None) -> LayerStats:
    return LayerStats(name, "Linear", True, scale, grad, None, None)


def test_trends_are_judged_against_the_extreme_seen_before_and_skip_the_output() -> None:
    healthy = [_layer(str(i), 0.5 / 2.4**i, 1.0) for i in range(6)] + [_layer("out", 1e-9)]
    assert findings(healthy) == []  # 80x over 6 default-init layers, a zero-ish head
    fading = [_layer(str(i), 0.5 * VANISH / 10 if i == 5 else 0.5, 1.0) for i in range(6)]
    found = findings([*fading, _layer("out", 1.0)])
    assert [f.kind for f in found] == ["vanishing"] and "'0' (Linear)" in found[0].message
    silent = [_layer("a", 0.5, 0.0), _layer("b", 0.5, 0.0), _layer("out", 1.0)]
    assert findings(silent) == []  # zero gradients under a zero-initialised head: by design


def test_train_only_zeroing_measures_the_dropout_rate_not_relus() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Dropout(0.9), nn.Linear(64, 128), nn.ReLU(),
                        nn.Dropout(0.3, inplace=True), nn.Linear(128, 10))  # fmt: skip
    ctx = _ctx(net)
    rates = train_only_zeroing(ctx, net, ctx.train_batches[0][0])
    assert set(rates) == {"1", "4"}  # the ReLU zeroes in both modes
    assert abs(rates["1"] - 0.9) < 0.02 and abs(rates["4"] - 0.3) < 0.03


def test_new_checks_leave_the_callers_model_and_batchnorm_statistics_alone() -> None:
    x, y = digits()
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(),
                        nn.Dropout(0.2), nn.Linear(32, 10))  # fmt: skip
    before = {k: v.clone() for k, v in net.state_dict().items()}
    report = run_all(net, loader(x, y), CE, num_classes=10,
                     only=["layer_statistics", "train_eval_gap"])  # fmt: skip
    assert [r.status for r in report.results] == ["pass", "pass"]
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
