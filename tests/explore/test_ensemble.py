"""Ensembles against trusted answers: the mean of the probabilities the training loop itself
recorded, each member's loss as its run logged it, and the done-when of issue 18 item 4 (three
baseline runs on the sample digits: the ensemble beats the best one on validation loss)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from recipe_core import open_workspace
from recipe_core.cli import cli
from recipe_core.errors import ConfigError, RunError
from recipe_core.explore.ensemble import (
    ensemble_candidates,
    ensemble_pictures,
    evaluate_ensemble,
    find_ensemble,
    list_ensembles,
    stale_members,
)
from recipe_core.runs import RunReader, RunWriter
from recipe_core.train import make_config, train
from recipe_core.workspace import Workspace
from tests.conftest import SAMPLE_DIGITS, write_image_folder

pytestmark = pytest.mark.usefixtures("one_torch_thread")
QUIET = dict(device="cpu", eval_every=0, log_every=50, dynamics_every=0, insides_every=0,
             capture_batches=0)  # fmt: skip
# lr 3e-3 for 300 steps takes the baseline MLP into the regime where it overfits (confident,
# and wrong in its own way per seed): the regime where averaging pays. At the preset's 3e-4
# the three runs are near-copies of each other.
DIGITS = dict(model="mlp", image_size=32, steps=300, lr=3e-3, **QUIET)
TINY = dict(model="linear", image_size=8, steps=30, batch_size=8, **QUIET)


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, list[str]]:
    """Three baseline runs on sample_data/digits, seeds 0, 1, 2 (about 5 s together)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    ws = open_workspace(tmp_path_factory.mktemp("ensemble") / "ws")
    ids = [train(make_config(str(SAMPLE_DIGITS), seed=s, **DIGITS), workspace=ws).run_id
           for s in (0, 1, 2)]  # fmt: skip
    torch.set_num_threads(before)
    return ws, ids


def _final_val_loss(run_dir: Path) -> float:
    metrics = RunReader(run_dir).metrics()
    return float(metrics.loc[metrics["split"] == "val", "loss"].iloc[-1])


def test_three_baseline_runs_ensemble_beats_the_best_one(
    digits: tuple[Workspace, list[str]],
) -> None:
    ws, ids = digits
    result = evaluate_ensemble(ws, ids, device="cpu")
    assert result.val_loss < result.best.val_loss  # the done-when of issue 18 item 4
    assert result.val_accuracy >= result.best.val_accuracy
    assert result.val_size == 367 and result.run_ids == tuple(ids)
    for member in result.members:  # each member's loss is the one its own training loop logged
        assert member.checkpoint == "best" and member.step == 300
        assert member.val_loss == pytest.approx(_final_val_loss(ws.runs / member.run_id), rel=1e-5)
    saved = find_ensemble(ws, list(reversed(ids)))  # the same set of runs, any order
    assert saved is not None and saved.to_dict() == result.to_dict()
    assert [e.ensemble_id for e in list_ensembles(ws)] == [result.ensemble_id]
    assert stale_members(ws, result) == []
    checkpoint = ws.runs / ids[1] / "checkpoints" / "last.pt"
    later = checkpoint.stat().st_mtime + 60  # as if the run was left training since
    os.utime(checkpoint, (later, later))
    assert stale_members(ws, result) == [ids[1]]
    better = {o.sample_id for o in result.better_than_best}
    assert set(result.only_ensemble_right) <= better
    assert all(o.ensemble == o.label != o.best for o in result.better_than_best)
    assert set(ensemble_pictures(ws, result)) == better | {
        o.sample_id for o in result.worse_than_best
    }


def test_the_cli_prints_the_same_numbers(digits: tuple[Workspace, list[str]]) -> None:
    ws, ids = digits
    prefixes = [run_id[:-1] for run_id in ids[:2]]  # unique prefixes are enough
    out = CliRunner().invoke(cli, ["ensemble", *prefixes, "--workspace", str(ws.root), "--json",
                                   "--device", "cpu"])  # fmt: skip
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    expected = evaluate_ensemble(ws, ids[:2], device="cpu", save=False)
    assert data["val_loss"] == pytest.approx(expected.val_loss)
    assert data["best_run_id"] == expected.best.run_id
    table = CliRunner().invoke(cli, ["ensemble", *ids, "--workspace", str(ws.root)])
    assert table.exit_code == 0 and "beats the best single run" in table.output
    one = CliRunner().invoke(cli, ["ensemble", ids[0], "--workspace", str(ws.root)])
    assert one.exit_code == 2 and "2 to 5 runs" in one.output


def test_candidates_are_the_finished_runs_of_the_dataset(
    digits: tuple[Workspace, list[str]],
) -> None:
    ws, ids = digits
    found = ensemble_candidates(ws, SAMPLE_DIGITS)
    assert sorted(c.run_id for c in found) == sorted(ids)
    assert all(c.val_size == 367 and math.isfinite(c.best_val_loss) for c in found)
    assert ensemble_candidates(ws, SAMPLE_DIGITS / "train") == []


def _probabilities(run_dir: Path, classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sample_ids, labels, probs (N, C)) as the training loop recorded them at its last
    evaluation: with C <= top-k, the recorded top-k is every class."""
    reader = RunReader(run_dir)
    frame = reader.predictions(reader.prediction_steps()[-1]).sort_values("sample_id")
    probs = np.zeros((len(frame), classes))
    for i in range(1, classes + 1):
        cls = frame[f"top{i}_class"].to_numpy().astype(int)
        probs[np.arange(len(frame)), cls] = frame[f"top{i}_prob"].to_numpy()
    return frame["sample_id"].to_numpy(), frame["label"].to_numpy(), probs


def test_ensemble_is_the_mean_of_the_recorded_probabilities(tmp_path: Path) -> None:
    """The trusted answer by hand: average the two runs' recorded probabilities per sample."""
    data = write_image_folder(tmp_path / "ds", classes=3, per_class=6, size=8)
    ws = open_workspace(tmp_path / "ws")
    runs = [train(make_config(str(data), lr=lr, **TINY), workspace=ws) for lr in (1e-2, 3e-3)]
    result = evaluate_ensemble(ws, [r.run_id for r in runs], device="cpu")

    (ids, labels, p1), (ids2, labels2, p2) = (_probabilities(r.run_dir, 3) for r in runs)
    assert np.array_equal(ids, ids2) and np.array_equal(labels, labels2)
    mean = (p1 + p2) / 2
    rows = np.arange(len(labels))
    assert result.val_size == len(labels) == 18
    assert result.val_loss == pytest.approx(float(-np.log(mean[rows, labels]).mean()), rel=1e-5)
    assert result.val_accuracy == pytest.approx(float((mean.argmax(1) == labels).mean()))
    for member, p in zip(result.members, (p1, p2), strict=True):
        assert member.val_loss == pytest.approx(float(-np.log(p[rows, labels]).mean()), rel=1e-5)
    right = (mean.argmax(1) == labels) & (p1.argmax(1) != labels) & (p2.argmax(1) != labels)
    assert sorted(result.only_ensemble_right) == sorted(ids[right].tolist())


def test_math_by_hand_on_two_members() -> None:
    """Two members, three samples, numbers small enough to check on paper."""
    from recipe_core.explore.ensemble import combine_outputs
    from recipe_core.explore.ensemble_eval import MemberOutput

    a = np.log(np.array([[0.6, 0.4], [0.2, 0.8], [0.45, 0.55]]))
    b = np.log(np.array([[0.9, 0.1], [0.6, 0.4], [0.45, 0.55]]))
    labels, ids = np.array([0, 0, 0]), np.array([10, 11, 12])
    outputs = [MemberOutput(f"r{i}", "n", "/d", ("x", "y"), "best", 5, lp)
               for i, lp in enumerate((a, b))]  # fmt: skip
    result = combine_outputs(outputs, labels, ids, device="cpu")
    # mean probabilities of class 0: 0.75, 0.4, 0.45 -> loss -(ln .75 + ln .4 + ln .45) / 3
    assert result.val_loss == pytest.approx(-(math.log(0.75) + math.log(0.4) + math.log(0.45)) / 3)
    assert result.val_accuracy == pytest.approx(1 / 3)
    assert result.members[0].val_loss == pytest.approx(-(math.log(0.6) + math.log(0.2)
                                                         + math.log(0.45)) / 3)  # fmt: skip
    assert result.best.run_id == "r1"  # b: -(ln .9 + ln .6 + ln .45) / 3 is lower
    assert result.only_ensemble_right == ()  # sample 10: member a is right too
    assert [o.sample_id for o in result.worse_than_best] == [11]  # b right (0.6), mean 0.4


def test_refuses_runs_it_cannot_ensemble(tmp_path: Path) -> None:
    mine = write_image_folder(tmp_path / "mine", classes=3, per_class=6, size=8)
    other = write_image_folder(tmp_path / "other", classes=3, per_class=6, size=8, seed=1)
    flat = write_image_folder(tmp_path / "flat", classes=3, per_class=6, size=8, splits=False)
    ws = open_workspace(tmp_path / "ws")
    a = train(make_config(str(mine), **TINY), workspace=ws).run_id
    b = train(make_config(str(other), **TINY), workspace=ws).run_id
    with pytest.raises(ConfigError, match=r"different datasets .* Pick runs of one dataset"):
        evaluate_ensemble(ws, [a, b], device="cpu")
    seeds = [train(make_config(str(flat), seed=s, **TINY), workspace=ws).run_id for s in (0, 1)]
    with pytest.raises(ConfigError, match=r"validate on different samples.*same seed and val_frac"):
        evaluate_ensemble(ws, seeds, device="cpu")
    with pytest.raises(ConfigError, match="2 to 5 runs, got 1"):
        evaluate_ensemble(ws, [a], device="cpu")
    with pytest.raises(ConfigError, match="listed twice"):
        evaluate_ensemble(ws, [a, a], device="cpu")
    queued = RunWriter.create(ws, name="waiting", config=make_config(str(mine)).to_dict()).run_id
    with pytest.raises(RunError, match=f"Run {queued} is queued: only finished"):
        evaluate_ensemble(ws, [a, queued], device="cpu")
    assert list_ensembles(ws) == []  # nothing saved by a refusal


def test_a_damaged_record_is_skipped(tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "ws")
    folder = ws.subdir("ensembles")
    (folder / "broken.json").write_text("{not json")
    (folder / "partial.json").write_text(json.dumps({"ensemble_id": "x"}))
    assert list_ensembles(ws) == []
    assert find_ensemble(ws, ["a", "b"]) is None
