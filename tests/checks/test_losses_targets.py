"""Losses, targets, language models and multi-label heads against trusted answers: ln V and the
unigram entropy computed by hand, per-example losses from torch's own cross-entropy, row sums."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from typer.testing import CliRunner

from recipe_core.checks import CheckReport, run_all
from recipe_core.checks.context import CheckContext
from recipe_core.checks.examples import EASY_MARGIN, HARD_MARGINS
from recipe_core.checks.targets import gate
from recipe_core.cli import cli
from tests.checks.setups_losses import (
    clamped_ce,
    head,
    lm_loss,
    multi_hot,
    padded_spans,
    scaled_head,
    seeded,
    smoothed,
    soft_cross_entropy,
)
from tests.checks.zoo import CausalGRU, TinyAttention, Wrap, digits, loader, mlp_factory


def context(model: Any, data: Any, loss: Any, task: str = "classification") -> CheckContext:
    return CheckContext(model, data, loss, task=task, num_classes=None, optimizer=None,
                        device="cpu", seed=0, max_seconds=None)  # fmt: skip


def statuses(report: CheckReport) -> dict[str, str]:
    return {r.name: str(r.status) for r in report.results}


# -- targets ------------------------------------------------------------------------------------
@pytest.mark.parametrize("task", ["classification", "multilabel"])
def test_multi_hot_targets_are_independent_labels_under_either_task(task: str) -> None:
    x, y = digits()
    t = gate(context(head(4), loader(x, multi_hot(y)), nn.BCEWithLogitsLoss(), task=task))
    assert t.loss_ok and t.targets is not None
    assert (t.targets.kind, t.targets.soft) == ("probs", False)
    rate = multi_hot(y).mean(0).numpy()  # the batches read are a shuffled sample of it
    assert np.allclose(t.targets.prior, rate, atol=0.05)


def test_smoothed_rows_are_soft_and_their_sums_are_measured() -> None:
    x, y = digits()
    ctx = context(mlp_factory(), loader(x, smoothed(y, 0.1, per_class=False)), soft_cross_entropy)
    t = gate(ctx).targets
    assert t is not None and t.soft
    assert t.row_sums == pytest.approx((1.9, 1.9), abs=1e-5)  # 0.9 + 10 * 0.1


def test_unnormalised_soft_targets_fail_with_their_row_sums() -> None:
    x, y = digits()
    bad, good = (
        run_all(mlp_factory(), loader(x, smoothed(y, 0.1, per_class=per_class)),
                soft_cross_entropy, num_classes=10, only=["loss_function"]).get("loss_function")
        for per_class in (False, True)
    )  # fmt: skip
    assert bad.status == "fail" and "1.9" in bad.observed and "eps/K" in bad.fix
    assert bad.evidence["row_sum_max"] == pytest.approx(1.9)
    assert good.status == "pass"


# -- LogSoftmax + NLLLoss -----------------------------------------------------------------------
def test_log_softmax_nll_passes_every_loss_check_and_init_well_finds_its_bias() -> None:
    x, y = digits()
    only = ["loss_function", "loss_at_init", "init_well", "example_gradients"]
    report = run_all(head(10, last=nn.LogSoftmax(dim=1)), loader(x, y), nn.NLLLoss(),
                     num_classes=10, only=only)  # fmt: skip
    assert statuses(report) == dict.fromkeys(only, "pass")
    assert report.get("init_well").evidence["layer"] == "0.3"


@pytest.mark.parametrize(
    ("last", "loss"),
    [(None, nn.NLLLoss()), (nn.Softmax(dim=1), nn.NLLLoss()),
     (nn.Softmax(dim=1), nn.CrossEntropyLoss())],
)  # fmt: skip
def test_scores_that_are_not_log_probabilities_still_fail_loss_function(
    last: nn.Module | None, loss: nn.Module
) -> None:
    x, y = digits()
    result = run_all(head(10, last=last), loader(x, y), loss, num_classes=10,
                     only=["loss_function"]).get("loss_function")  # fmt: skip
    assert result.status == "fail" and result.fix


# -- language models ----------------------------------------------------------------------------
def markov_lm(vocab: int, used: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids < `used` from a random walk, for a model with `vocab` outputs."""
    rng = np.random.default_rng(vocab)
    seq = np.cumsum(rng.integers(-2, 3, size=(256, 17)), axis=1) % used
    ids = torch.from_numpy(seq)
    return ids[:, :-1], ids[:, 1:]


def unigram_entropy(y: torch.Tensor) -> float:
    counts = torch.bincount(y[y != -100].flatten()).double()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * p.log()).sum())


@pytest.mark.parametrize(("vocab", "used"), [(8, 8), (64, 40), (512, 100)])
@pytest.mark.parametrize("kind", ["gru", "attention"])
def test_a_well_initialised_lm_passes_loss_at_init_against_ln_v(
    vocab: int, used: int, kind: str
) -> None:
    x, y = markov_lm(vocab, used)
    model = seeded(CausalGRU, vocab) if kind == "gru" else seeded(TinyAttention, vocab)
    report = run_all(model, loader(x, y, batch=32), lm_loss, task="sequence",
                     only=["loss_at_init", "init_well"])  # fmt: skip
    result = report.get("loss_at_init")
    assert statuses(report) == {"loss_at_init": "pass", "init_well": "pass"}
    assert result.evidence["uniform_loss"] == pytest.approx(math.log(vocab), rel=1e-5)
    seen = torch.cat([b for _, b in list(loader(x, y, batch=32))[:4]])
    assert result.evidence["prior_loss"] == pytest.approx(unigram_entropy(seen), abs=0.1)
    assert result.evidence["tokens_used"] == len(torch.unique(y)) <= used  # all batches read


def test_padding_is_left_out_of_the_lm_reference() -> None:
    x, y = padded_spans()
    result = run_all(seeded(TinyAttention, 512, steps=24), loader(x, y, batch=16), lm_loss,
                     task="sequence", only=["loss_at_init"]).get("loss_at_init")  # fmt: skip
    assert result.status == "pass" and "per token" in result.expected
    assert result.evidence["uniform_loss"] == pytest.approx(math.log(512), rel=1e-5)


@pytest.mark.parametrize("bug", ["x100", "temperature"])
def test_lm_with_blown_up_logits_still_fails(bug: str) -> None:
    x, y = markov_lm(64, 40)
    model = seeded(TinyAttention, 64)
    if bug == "x100":
        model = scaled_head(model, 100.0)
    else:  # a sampling temperature applied in training too
        model = Wrap(model, lambda net, ids: net(ids) / 0.05)
    result = run_all(model, loader(x, y, batch=32), lm_loss, task="sequence",
                     only=["loss_at_init"]).get("loss_at_init")  # fmt: skip
    assert result.status == "fail" and "ln(vocab)" in result.fix


# -- per-example gradients ----------------------------------------------------------------------
def test_clamped_loss_starves_exactly_the_examples_whose_loss_passes_the_clamp() -> None:
    x, y = digits()
    result = run_all(mlp_factory(), loader(x, y), clamped_ce, num_classes=10,
                     only=["example_gradients"]).get("example_gradients")  # fmt: skip
    margins = torch.tensor(result.evidence["margins"])
    wrong = torch.tensor(result.evidence["wrong"])
    # torch's own CE of a centred, confidently wrong output: 2m + log(1 + (C-1) e^-2m) ... by hand
    logits = -torch.ones(len(margins), 10) * margins[:, None]
    logits[:, 1] = margins
    by_hand = F.cross_entropy(logits, torch.zeros(len(margins), dtype=torch.long), reduction="none")
    starved = int(((by_hand > 3.0) & wrong).sum())
    assert result.status == "fail"
    assert result.observed.startswith(f"{starved} of {int(wrong.sum())} wrong examples")
    assert margins[~wrong].eq(EASY_MARGIN).all() and margins[wrong].max() == HARD_MARGINS[1]


def test_ignored_padding_and_zero_class_weights_are_not_counted_as_starved() -> None:
    x, y = padded_spans()
    lm = run_all(seeded(CausalGRU, 512), loader(x, y, batch=16), lm_loss, task="sequence",
                 only=["example_gradients"]).get("example_gradients")  # fmt: skip
    xd, yd = digits()
    weights = torch.tensor([0.0] * 5 + [1.0] * 5)  # classes 0-4 left out of the loss on purpose
    weighted = run_all(mlp_factory(), loader(xd, yd), nn.CrossEntropyLoss(weight=weights),
                       num_classes=10, only=["example_gradients"])  # fmt: skip
    weighted = weighted.get("example_gradients")
    assert (lm.status, weighted.status) == ("pass", "pass")
    assert sum(weighted.evidence["counted"]) < sum(weighted.evidence["wrong"])


# -- multi-label --------------------------------------------------------------------------------
def test_class_indices_under_multilabel_name_multi_hot() -> None:
    x, y = digits()
    report = run_all(head(4), loader(x, y), nn.BCEWithLogitsLoss(), task="multilabel",
                     num_classes=4, only=["labels_and_outputs"])  # fmt: skip
    result = report.get("labels_and_outputs")
    assert result.status == "fail" and "multi-hot" in result.summary and "0/1" in result.fix


PIPELINE = """
import torch
from torch import nn
from recipe_core import Pipeline
from tests.checks.setups_losses import head, multi_hot
from tests.checks.zoo import digits, loader

def pipeline():
    x, y = digits()
    return Pipeline(head(4), loader(x, multi_hot(y)), nn.BCEWithLogitsLoss(),
                    task="multilabel", num_classes=4)
"""


def test_recipe_check_runs_a_multilabel_pipeline(tmp_path: Path) -> None:
    spec = tmp_path / "multilabel_pipeline.py"
    spec.write_text(PIPELINE)
    result = CliRunner().invoke(cli, ["check", "--pipeline", f"{spec}:pipeline", "--json"])
    report = json.loads(result.stdout)
    alarms = {r["name"]: r["status"] for r in report["results"]
              if r["status"] not in ("pass", "skip")}  # fmt: skip
    assert result.exit_code == 0 and not alarms
    passed = {r["name"] for r in report["results"] if r["status"] == "pass"}
    assert {"loss_at_init", "init_well", "batch_independence", "overfit_one_batch",
            "input_independent_baseline", "example_gradients"} <= passed  # fmt: skip
