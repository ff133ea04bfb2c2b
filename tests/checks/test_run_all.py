"""The `run_all` contract: never touches the caller's model or RNG, honours the time budget,
isolates crashes, reports JSON, rejects bad arguments with helpful errors, and its references
are the trusted answers (entropy of the label prior, log prior bias, target mean)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import entropy
from torch import nn

from recipe_core.checks import (
    CHECKS,
    STATUSES,
    CheckReport,
    CheckResult,
    default_optimizer,
    run_all,
)
from recipe_core.checks.context import CheckContext
from recipe_core.checks.runner import run_check
from recipe_core.errors import ConfigError
from tests.checks.zoo import diabetes, digits, linear, loader, mlp_factory, regressor

CE = nn.CrossEntropyLoss()


def scipy_kl(p: np.ndarray, q: np.ndarray) -> float:
    return float(entropy(p, q))


def test_caller_model_weights_mode_and_rng_are_untouched() -> None:
    x, y = digits()
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(),
                          nn.Linear(32, 10)).train()  # fmt: skip
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(123)
    rng = torch.get_rng_state()
    report = run_all(model, loader(x, y), CE, num_classes=10,
                     only=["gradient_flow", "optimizer_sanity", "overfit_one_batch"])  # fmt: skip
    assert [r.status for r in report.results] == ["pass", "pass", "pass"]
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BatchNorm buffers included
    assert model.training and torch.equal(torch.get_rng_state(), rng)


def test_factory_is_called_with_torch_seeded_each_time() -> None:
    calls: list[torch.Tensor] = []

    def factory() -> nn.Module:
        calls.append(torch.rand(1))
        return linear()

    x, y = digits()
    report = run_all(factory, loader(x, y), CE, seed=7, only=["reproducibility"])
    assert report.get("reproducibility").status == "pass"
    assert len(calls) >= 2 and all(torch.equal(c, calls[0]) for c in calls)


def test_time_budget_skips_the_checks_left() -> None:
    x, y = digits()
    report = run_all(mlp_factory(), loader(x, y), CE, max_seconds=1e-3)
    assert [r.status for r in report.results] == ["skip"] * len(CHECKS)
    assert all("time budget" in r.summary for r in report.results)
    assert report.cut_short == tuple(CHECKS)  # the report names every check it cut short


def test_a_check_cut_short_warns_with_its_numbers_and_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Shuffled labels never let real inputs win, so the baseline cannot decide in a tiny
    share of max_seconds: it must warn with what it measured, not pass and not skip."""
    x, y = digits()
    shuffled = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(1))]
    ticks = iter(range(10**6))  # a fake clock: every read is one second later
    monkeypatch.setattr("recipe_core.checks.context.time.monotonic", lambda: float(next(ticks)))
    names = ["optimizer_sanity", "input_independent_baseline"]
    report = run_all(linear(), loader(x, shuffled), CE, num_classes=10, max_seconds=400,
                     only=names)  # fmt: skip
    result = report.get("input_independent_baseline")
    assert result.status == "warn" and "max_seconds cut this check short" in result.summary
    assert "real inputs score" in result.observed and result.fix
    assert "input_independent_baseline" in report.cut_short
    assert CheckReport.from_dict(json.loads(report.to_json())).cut_short == report.cut_short


def test_a_report_saved_before_cut_short_existed_still_loads() -> None:
    old = {"device": "cpu", "seed": 0, "seconds": {"labels_and_outputs": 0.1},
           "results": [{"name": "labels_and_outputs", "status": "pass", "summary": "ok",
                        "observed": "", "expected": ""}]}  # fmt: skip
    report = CheckReport.from_dict(old)
    assert report.cut_short == () and report.get("labels_and_outputs").status == "pass"
    assert report.to_dict()["cut_short"] == []


def test_without_max_seconds_no_check_reads_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Budgets are steps and samples: a clock that jumps an hour per read changes nothing."""
    x, y = digits()
    names = ["optimizer_sanity", "input_independent_baseline", "overfit_one_batch"]
    quiet = run_all(mlp_factory(), loader(x, y), CE, num_classes=10, only=names)
    ticks = iter(range(0, 10**9, 3600))
    monkeypatch.setattr("recipe_core.checks.context.time.monotonic", lambda: float(next(ticks)))
    jumpy = run_all(mlp_factory(), loader(x, y), CE, num_classes=10, only=names)
    assert [r.status for r in jumpy.results] == [r.status for r in quiet.results] == ["pass"] * 3
    assert [r.observed for r in jumpy.results] == [r.observed for r in quiet.results]
    assert jumpy.cut_short == ()


def test_report_is_json_and_progress_counts_every_check() -> None:
    x, y = digits()
    seen: list[tuple[int, int, str]] = []
    report = run_all(linear(), loader(x, y), CE, num_classes=10,
                     progress=lambda d, t, n: seen.append((d, t, n)))  # fmt: skip
    data = json.loads(report.to_json())
    assert [r["name"] for r in data["results"]] == list(CHECKS)
    assert all(r["status"] in STATUSES for r in data["results"])
    assert seen[0] == (0, len(CHECKS), "labels_and_outputs")
    assert seen[-1] == (len(CHECKS), len(CHECKS), "")
    overfit = report.get("overfit_one_batch").evidence
    assert len(overfit["predictions"]) == len(overfit["loss"]) and len(overfit["labels"]) == 16


def test_a_crashing_check_is_an_error_result_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(ctx: CheckContext) -> CheckResult:
        raise ZeroDivisionError("planted")

    monkeypatch.setitem(CHECKS, "eval_determinism", broken)
    x, y = digits()
    report = run_all(linear(), loader(x, y), CE, only=["eval_determinism", "labels_and_outputs"])
    assert [r.status for r in report.results] == ["pass", "error"]
    assert "bug in Recipe" in report.get("eval_determinism").summary


def test_out_of_range_labels_block_loss_checks_without_calling_the_loss() -> None:
    x, y = digits()

    def loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise AssertionError("the loss must not see out-of-range labels")

    report = run_all(linear(), loader(x, y + 1), loss, num_classes=10)
    assert report.get("labels_and_outputs").status == "fail"
    assert report.get("loss_at_init").status == "skip"
    assert "0..C-1" in report.get("labels_and_outputs").fix


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"task": "segmentation"}, "Valid tasks: classification, regression, sequence"),
     ({"num_classes": 0}, "num_classes=0 is invalid"),
     ({"max_seconds": -1.0}, "max_seconds=-1.0"),
     ({"only": ["overfit"]}, "Valid checks: labels_and_outputs")],
)  # fmt: skip
def test_bad_arguments_raise_config_errors(kwargs: dict[str, object], match: str) -> None:
    x, y = digits()
    with pytest.raises(ConfigError, match=match):
        run_all(linear(), loader(x, y), CE, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("batches", "match"),
    [([{"x": 1}], "checks need \\(x, y\\) pairs"),
     ([(torch.zeros(4, 2), torch.zeros(3))], "do not share a leading batch dimension"),
     ([], "yielded no batches")],
)  # fmt: skip
def test_bad_loaders_raise_config_errors(batches: list[object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        run_all(linear(), batches, CE)


def test_loss_at_init_reference_is_the_entropy_of_the_label_prior() -> None:
    x, y = digits()
    keep = (y < 3) | (torch.arange(len(y)) % 4 == 0)  # imbalanced: classes 0-2 dominate
    xs, ys = x[keep], y[keep]
    report = run_all(linear(), loader(xs, ys), CE, num_classes=10, only=["loss_at_init"])
    evidence = report.get("loss_at_init").evidence
    batches = [b.numpy() for _, b in loader(xs, ys)][:12]  # what run_all reads
    prior = np.bincount(np.concatenate(batches), minlength=10) / sum(len(b) for b in batches)
    # loss_fn on log-prior logits = cross-entropy of each batch's labels against the prior
    expected = np.mean([entropy(np.bincount(b, minlength=10) / len(b)) +
                        scipy_kl(np.bincount(b, minlength=10) / len(b), prior)
                        for b in batches[:4]])  # fmt: skip
    assert evidence["prior_loss"] == pytest.approx(expected, abs=1e-4)
    assert evidence["prior_loss"] == pytest.approx(entropy(prior), abs=0.05)
    assert evidence["uniform_loss"] == pytest.approx(math.log(10), abs=1e-6)


def test_init_well_bias_is_the_log_prior_and_it_gives_the_entropy() -> None:
    x, y = digits()
    keep = (y < 2) | (torch.arange(len(y)) % 5 == 0)
    xs, ys = x[keep], y[keep]
    model = linear()
    report = run_all(model, loader(xs, ys), CE, num_classes=10, only=["init_well"])
    evidence = report.get("init_well").evidence
    labels = torch.cat([b for _, b in loader(xs, ys)][:12])
    freq = np.bincount(labels.numpy(), minlength=10) / len(labels)
    assert np.allclose(evidence["suggested_bias"], np.log(freq + 1e-12), atol=1e-3)
    with torch.no_grad():  # a zero-weight layer with that bias scores exactly the prior loss
        model[1].weight.zero_()
        model[1].bias.copy_(torch.tensor(evidence["suggested_bias"]))
    first = next(iter(loader(xs, ys)))
    with torch.no_grad():
        got = float(CE(model(first[0]), first[1]))
    expected = -np.mean(np.log(freq[first[1].numpy()]))
    assert got == pytest.approx(expected, rel=1e-4)


def test_regression_init_well_suggests_the_target_mean() -> None:
    xr, yr = diabetes()
    report = run_all(regressor(0.0), loader(xr, yr, batch=32), nn.MSELoss(), task="regression",
                     only=["init_well"])  # fmt: skip
    result = report.get("init_well")
    assert result.status == "fail"
    seen = torch.cat([t for _, t in loader(xr, yr, batch=32)][:12])  # the batches run_all reads
    assert result.evidence["suggested_bias"][0] == pytest.approx(float(seen.mean()), rel=1e-5)
    assert result.evidence["layer"] == "2"


def test_default_optimizer_is_adam_3e_4() -> None:
    opt = default_optimizer(nn.Linear(2, 2).parameters())
    assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["lr"] == 3e-4


def test_check_result_rejects_unknown_status() -> None:
    with pytest.raises(ValueError, match="status 'ok'"):
        CheckResult("x", "ok", "", "", "")


def test_run_check_reports_user_code_failures_as_fail() -> None:
    x, y = digits()

    class Crashes(nn.Module):
        def forward(self, t: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("shape mismatch in my model")

    ctx = CheckContext(Crashes(), loader(x, y), CE, task="classification", num_classes=None,
                       optimizer=None, device="cpu", seed=0, max_seconds=None)  # fmt: skip
    result = run_check(ctx, "labels_and_outputs")
    assert result.status == "fail" and "shape mismatch in my model" in result.summary
    assert run_check(ctx, "loss_at_init").status == "skip"


def test_leak_scan_scores_are_pearson_r_and_the_correlation_ratio() -> None:
    """Trusted answers: numpy's corrcoef for values, pandas' groupby for the correlation ratio
    (eta^2 = between-class variance / total variance)."""
    from recipe_core.checks.leakage import _correlation_ratio, _pearson

    x, y = digits()
    flat = x.flatten(1).double()
    eta = _correlation_ratio(flat, y)
    assert eta is not None
    frame = pd.DataFrame(flat.numpy()).assign(label=y.numpy())
    means = frame.groupby("label").transform("mean").to_numpy()
    total = ((flat.numpy() - flat.numpy().mean(0)) ** 2).sum(0)
    between = ((means - flat.numpy().mean(0)) ** 2).sum(0)
    expected = np.sqrt(np.divide(between, total, out=np.zeros_like(total), where=total > 0))
    assert np.allclose(eta.numpy(), expected, atol=1e-9)
    xr, yr = diabetes()
    r = _pearson(xr.double(), yr.double())
    numpy_r = [abs(np.corrcoef(xr[:, j].numpy(), yr[:, 0].numpy())[0, 1]) for j in range(10)]
    assert np.allclose(r.numpy(), numpy_r, atol=1e-6)


def test_a_reconstruction_target_is_not_a_leak() -> None:
    """An autoencoder's targets are its inputs by design: not too good to be true."""
    xr, _ = diabetes()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 3), nn.ReLU(), nn.Linear(3, 10))
    report = run_all(model, loader(xr, xr.clone(), batch=32), nn.MSELoss(), task="regression",
                     only=["too_good_to_be_true"])  # fmt: skip
    result = report.get("too_good_to_be_true")
    assert result.status == "pass" and "reconstruction" in result.evidence["scanned"]
