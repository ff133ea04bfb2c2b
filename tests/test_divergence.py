"""Divergence is a failure: one rule (recipe_core.train.divergence) for built-in runs, pipeline
runs, script runs and the checks' optimizer sanity; and configs refuse non-finite numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from recipe_core import Pipeline
from recipe_core.checks import run_all
from recipe_core.errors import ConfigError, RunError
from recipe_core.runs import RunReader
from recipe_core.train import make_config, start_run, train
from recipe_core.train.divergence import chance_loss, find_divergence
from recipe_core.train.pipeline import PipelineTrainConfig, train_pipeline
from tests.conftest import SAMPLE_DIGITS
from tests.test_pipeline import linear_pipeline
from tests.test_train import FAST, make_digits

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DIVERGED = (
    r"Training diverged at step (\d+): train loss (\S+) \(median of recent steps\) is (\S+)x "
    r"its starting (\S+); lower the learning rate \(now lr=1e\+06\)"
)


# ---- the rule --------------------------------------------------------------------------------


def test_noisy_training_and_single_spikes_raise_no_alarm() -> None:
    rng = np.random.default_rng(0)
    steps = np.arange(3000)
    noisy = 2.3 * np.exp(-steps / 500) * rng.lognormal(0, 1, len(steps))  # ~e^3 batch to batch
    noisy[[10, 11, 500, 2000]] = 2.3 * 1e4  # lone bad batches, even two in a row
    assert find_divergence(noisy.tolist()) is None
    assert find_divergence([2.3, 2.1, 0.01, 0.02, 0.5, 1.0, 2.0]) is None  # back to where it was


def test_sustained_growth_and_non_finite_losses_diverge() -> None:
    found = find_divergence([2.27, 1.9, 3e3, 3e20, 1e24, 1e24], first_step=10)
    assert found is not None and (found.step, found.start, found.nonfinite) == (14, 2.27, False)
    assert found.describe() == (
        "at step 14: train loss 3e+03 (median of recent steps) is 1.32e+03x its starting 2.27"
    )
    nan = find_divergence([2.3, 2.2, math.nan])
    assert nan is not None and nan.nonfinite and nan.step == 2
    assert nan.describe() == (
        "at step 2: the train loss became nan (last finite loss 2.2, it started at 2.3)"
    )


def test_a_lucky_first_batch_does_not_lower_the_bar_below_a_uniform_guess() -> None:
    lucky = [0.001, 0.4, 0.6, 0.5, 0.7, 0.5]  # a 10-class loss that is just learning
    assert find_divergence(lucky) is not None  # 500x its start...
    assert find_divergence(lucky, floor=chance_loss("classification", 10)) is None  # ...< ln 10
    assert chance_loss("regression", None) == 0 and chance_loss("multilabel", 5) == math.log(2)


# ---- configs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value"), [
    ("lr", math.inf), ("lr", math.nan), ("lr", -1.0), ("lr", 0.0), ("width", math.inf),
    ("weight_decay", math.nan), ("target_loss", math.inf), ("weight_decay", -1e-4),
])  # fmt: skip
def test_every_numeric_config_field_must_be_finite(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=rf"{field} must be a finite number >=? 0, got {value}\. "
                                          rf"Set {field} to such a number \(default "):  # fmt: skip
        make_config("d", **{field: value})


@pytest.mark.parametrize("value", [math.inf, math.nan, -1.0])
def test_a_pipeline_run_refuses_a_non_finite_lr(value: float) -> None:
    with pytest.raises(ConfigError, match=rf"lr must be a finite number >= 0, got {value}"):
        PipelineTrainConfig("x.py:pipeline", lr=value)
    with pytest.raises(ConfigError, match=r"log_every must be an integer >= 1, got 0"):
        PipelineTrainConfig("x.py:pipeline", log_every=0)


# ---- the loops -------------------------------------------------------------------------------


def test_a_built_in_run_at_lr_1e6_fails_at_its_first_flush(tmp_path: Path) -> None:
    digits = SAMPLE_DIGITS if SAMPLE_DIGITS.is_dir() else make_digits(tmp_path / "d", limit=200)
    config = make_config(str(digits), model="linear", lr=1e6, steps=200, log_every=10, **FAST)
    with pytest.raises(RunError, match=DIVERGED):
        train(config, workspace=tmp_path / "ws")
    (run,) = (tmp_path / "ws" / "runs").iterdir()
    reader = RunReader(run)
    status = reader.status()
    assert status.state == "failed" and "x its starting 2." in status.error
    assert reader.metrics()["step"].max() == 9  # stopped at the first flush, 190 steps early
    assert status.step == 10


def test_a_pipeline_run_diverging_to_finite_values_fails(tmp_path: Path) -> None:
    made = linear_pipeline(optimizer=None)  # the default Adam, at the config's lr
    config = PipelineTrainConfig("inline", steps=200, lr=1e6, log_every=10, eval_every=0)
    with pytest.raises(RunError, match=DIVERGED):
        train_pipeline(config, workspace=tmp_path / "ws", pipeline=made)
    (run,) = (tmp_path / "ws" / "runs").iterdir()
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "failed" and status["step"] == 10
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in rows) == 9 and all(math.isfinite(r["loss"]) for r in rows)


def test_a_loss_that_turns_inf_names_the_step(tmp_path: Path) -> None:
    calls = [0]

    def breaks_at_step_7(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        loss = nn.functional.cross_entropy(out, y)
        return loss * math.inf if calls[0] > 7 else loss

    plain = linear_pipeline()
    made = Pipeline(plain.model, plain.train_loader, breaks_at_step_7, num_classes=2)
    config = PipelineTrainConfig("inline", steps=50, log_every=5, eval_every=0, amp=False)
    with pytest.raises(RunError, match=r"diverged at step 7: the train loss became inf \(last fi"):
        train_pipeline(config, workspace=tmp_path / "ws", pipeline=made)


def test_a_script_run_stops_and_fails_when_its_loss_diverges(tmp_path: Path) -> None:
    losses = [2.3, 2.2, 2.1] + [2.3e8] * 40
    expected = (
        r"diverged at step 5: .* 1e\+08x its starting 2.3; lower the learning rate \(now lr=1e\+"
    )
    with pytest.raises(RunError, match=expected), start_run("mine", workspace=tmp_path) as run:
        for step, loss in enumerate(losses):
            run.log(step, loss=loss, lr=1e6)
    reader = RunReader(Path(run.run_dir))
    assert reader.status().state == "failed" and "lr=1e+06" in reader.status().error
    assert reader.metrics()["step"].max() == 24  # the first flush: FLUSH_ROWS rows


def test_optimizer_sanity_judges_divergence_by_the_same_rule() -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(128, 6, generator=g), torch.randint(0, 4, (128,), generator=g)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
    report = run_all(lambda: nn.Linear(6, 4), loader, nn.CrossEntropyLoss(), num_classes=4,
                     optimizer=lambda p: torch.optim.Adam(p, lr=1e6),
                     only=["optimizer_sanity"])  # fmt: skip
    result = report.get("optimizer_sanity")
    trainer_losses = result.evidence["loss"]
    same = find_divergence(trainer_losses, floor=chance_loss("classification", 4))
    assert same is not None and result.status == "fail"
    assert f"the loss diverges {same.describe()}" in result.summary
    assert result.evidence["diverged_at_step"] == same.step == len(trainer_losses) - 1
