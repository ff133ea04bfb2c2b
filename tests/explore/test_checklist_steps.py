"""The checklist's steps 4-6 (regularise, tune, squeeze out the juice): each turns done on the
workspace's evidence, only then, and names the numbers it found (read back from the runs)."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from recipe_core import open_workspace
from recipe_core.explore.checklist import LONG_RUN_STEPS, StepEvidence, recipe_checklist
from recipe_core.explore.ensemble import evaluate_ensemble
from recipe_core.runs import RunReader, RunWriter
from recipe_core.train import TrainConfig, make_config, train
from recipe_core.tune.trials import create_trials
from recipe_core.workspace import Workspace
from tests.conftest import SAMPLE_DIGITS

pytestmark = pytest.mark.usefixtures("one_torch_thread")
QUICK = dict(model="linear", image_size=8, steps=30, device="cpu", eval_every=0, log_every=10,
             dynamics_every=0, insides_every=0, capture_batches=0)  # fmt: skip
STALLED = 1e-5  # a learning rate at which 30 steps barely move the loss: the worse run
REGULARISED = dict(weight_decay=1e-4, dropout=0.1)


def _items(ws: Workspace) -> dict[str, StepEvidence]:
    return {item.key: item for item in recipe_checklist(ws, SAMPLE_DIGITS)}


def _best_val(run_dir: Path) -> float:
    metrics = RunReader(run_dir).metrics()
    return float(metrics.loc[metrics["split"] == "val", "loss"].min())


def _train(ws: Workspace, **overrides: object) -> Path:
    return train(make_config(str(SAMPLE_DIGITS), **{**QUICK, **overrides}), workspace=ws).run_dir


def test_regularise_needs_a_regularised_run_that_beats_the_plain_one(tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "ws")
    step = _items(ws)["regularized"]
    assert not step.done and "train preset" in step.evidence and step.page == "views/runs.py"

    reg = _train(ws, lr=1e-2, **REGULARISED)
    step = _items(ws)["regularized"]
    assert not step.done and "run an unregularised baseline to compare" in step.evidence

    _train(ws, lr=1e-2, overfit_examples=16)  # an overfit run is no reference: too few images
    _train(ws, lr=1e-2, zero_inputs=True)  # nor a blind one
    assert not _items(ws)["regularized"].done
    plain = _train(ws, lr=STALLED)
    step = _items(ws)["regularized"]
    assert step.done, step.evidence
    assert step.evidence == (
        f"Regularised run {reg.name} (weight decay 0.0001, dropout 0.1): best val loss "
        f"{_best_val(reg):.4f} vs unregularised {plain.name}: {_best_val(plain):.4f}."
    )


def test_regularise_is_not_done_when_the_plain_run_is_better(tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "ws")
    _train(ws, lr=STALLED, augment=True)
    _train(ws, lr=1e-2)
    step = _items(ws)["regularized"]
    assert not step.done and "augmentation" in step.evidence, step.evidence


def test_tune_needs_a_search_with_a_finished_trial(tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "ws")
    _train(ws)  # an ordinary run is no search
    assert not _items(ws)["tuned"].done and "recipe tune" in _items(ws)["tuned"].evidence
    base = make_config(str(SAMPLE_DIGITS), **QUICK)
    trials = create_trials(ws, base, [{"lr": 1e-2}, {"lr": STALLED}], search_id="abc123",
                           metric="val_loss")  # fmt: skip
    assert not _items(ws)["tuned"].done  # queued trials: nothing finished yet
    for trial in trials:
        train(trial.config, run=RunWriter(trial.run_dir))
    step = _items(ws)["tuned"]
    best = min(trials, key=lambda t: _best_val(t.run_dir))
    assert step.done and step.evidence == (
        f"Search abc123: 2 trial(s), 2 finished; best {best.run_id} with val loss "
        f"{_best_val(best.run_dir):.4f} (1 search(es) in all)."
    )


def test_squeeze_needs_an_ensemble_or_a_long_run(tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "ws")
    a, b = _train(ws, seed=0, lr=1e-2), _train(ws, seed=1, lr=1e-2)
    step = _items(ws)["squeezed"]
    assert not step.done and step.page == "views/ensembles.py"
    assert f">= {LONG_RUN_STEPS:,} steps" in step.evidence

    # resumed once: resume.json's history as train/resume.py writes it
    (a / "resume.json").write_text(json.dumps({"history": [{"from_step": 30, "more": 30}]}))
    step = _items(ws)["squeezed"]
    assert step.done and step.evidence == f"Long run {a.name}: 30 steps, resumed 1x."

    result = evaluate_ensemble(ws, [a.name, b.name], device="cpu")
    step = _items(ws)["squeezed"]
    assert step.done and step.evidence.startswith(
        f"Ensemble of 2 runs: val loss {result.val_loss:.4f} vs best single "
        f"{result.best.run_id} {result.best.val_loss:.4f}."
    )


def test_a_long_run_is_four_times_the_baseline() -> None:
    default = next(f.default for f in fields(TrainConfig) if f.name == "steps")
    assert 4 * default == LONG_RUN_STEPS  # the checklist avoids importing torch to know it


def test_steps_4_to_6_ignore_other_datasets(tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "ws")
    other = tmp_path / "copy"
    other.symlink_to(SAMPLE_DIGITS / "train", target_is_directory=True)
    train(make_config(str(other), lr=1e-2, **{**QUICK, **REGULARISED}), workspace=ws)
    items = _items(ws)
    assert not any(items[k].done for k in ("regularized", "tuned", "squeezed"))
