"""Per-sample learning analysis of prediction dynamics: `learned_at`, `forgetting_events` and
`sample_summary`, against hand-worked answers, a brute-force reference, and real short runs
(overfit learns every probe sample; a net fed zeroed inputs can learn at most one class)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from recipe_core.dynamics import (
    Dynamics,
    forgetting_events,
    learned_at,
    learned_mask,
    read_dynamics,
    sample_summary,
)
from recipe_core.runs import RunReader
from recipe_core.train import make_config, train
from tests.conftest import write_image_folder

STEPS = np.array([0, 10, 20, 30], np.int64)


def one_hot_run(predicted: list[list[int]], labels: list[int], classes: int = 3) -> Dynamics:
    """Dynamics whose snapshot t predicts class predicted[t][i] for sample i with p = 0.8."""
    pred = np.asarray(predicted)  # (T, P)
    probs = np.full((*pred.shape, classes), 0.2 / (classes - 1), np.float32)
    np.put_along_axis(probs, pred[..., None], 0.8, axis=2)
    n = pred.shape[1]
    return Dynamics(
        steps=STEPS[: len(pred)],
        probs=probs,
        labels=np.asarray(labels, np.int64),
        sample_ids=np.arange(100, 100 + n, dtype=np.int64),
    )


# Columns are samples. Label of every sample: 0 (the last one is unlabelled).
#   s0 right throughout; s1 wrong, right, wrong, right; s2 never right;
#   s3 right, wrong, wrong, wrong; s4 wrong, wrong, right, right; s5 unlabelled.
HAND = one_hot_run(
    [[0, 1, 1, 0, 1, 0], [0, 0, 2, 1, 1, 0], [0, 1, 1, 1, 0, 0], [0, 0, 2, 1, 0, 0]],
    [0, 0, 0, 0, 0, -1],
)


def test_learned_at_is_the_step_from_which_a_sample_stays_learned() -> None:
    assert learned_at(HAND).tolist() == [0, 30, -1, -1, 20, -1]


def test_forgetting_events_count_learned_to_unlearned_transitions() -> None:
    assert forgetting_events(HAND).tolist() == [0, 1, 0, 1, 0, 0]


def test_threshold_is_stricter_than_top_prediction() -> None:
    """p(label) = 0.4 is the top prediction among 10 classes, but not >= 0.5."""
    probs = np.full((2, 1, 10), 0.6 / 9, np.float32)
    probs[:, 0, 3] = [0.4, 0.95]
    dyn = Dynamics(steps=np.array([0, 5]), probs=probs, labels=np.array([3]),
                   sample_ids=np.array([7]))  # fmt: skip
    assert learned_at(dyn).tolist() == [0]
    assert learned_at(dyn, threshold=0.5).tolist() == [5]
    assert learned_mask(dyn, threshold=0.5).tolist() == [[False], [True]]


def test_summary_is_keyed_by_sample_id_with_the_last_snapshot() -> None:
    table = sample_summary(HAND)
    assert table["sample_id"].tolist() == [100, 101, 102, 103, 104, 105]
    assert table["learned_at"].tolist() == [0, 30, -1, -1, 20, -1]
    assert table["predicted"].tolist() == [0, 0, 2, 1, 0, 0]
    assert table["flips"].tolist() == [0, 3, 3, 1, 1, 0]
    assert np.allclose(table["p_label"].to_numpy()[:5], [0.8, 0.8, 0.1, 0.1, 0.8])
    assert np.isnan(table["p_label"].iloc[5])


def test_no_snapshots_yet_means_nothing_learned() -> None:
    dyn = Dynamics(steps=np.zeros(0, np.int64), probs=np.zeros((0, 0, 0), np.float32),
                   labels=np.array([0, 1]), sample_ids=np.array([3, 4]))  # fmt: skip
    assert learned_at(dyn).tolist() == [-1, -1]
    assert forgetting_events(dyn).tolist() == [0, 0]
    assert sample_summary(dyn)["learned_at"].tolist() == [-1, -1]


def brute_force(ok: np.ndarray, steps: np.ndarray) -> tuple[list[int], list[int]]:
    """Per sample, walk the snapshots one by one."""
    learned, forgot = [], []
    for column in ok.T:
        since, events = -1, 0
        for t, hit in enumerate(column):
            if hit and since == -1:
                since = int(steps[t])
            if not hit:
                since = -1
            if t and column[t - 1] and not hit:
                events += 1
        learned.append(since)
        forgot.append(events)
    return learned, forgot


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 6), st.integers(1, 5), st.integers(2, 4), st.integers(0, 2**31 - 1),
    st.sampled_from([None, 0.3, 0.6]),
)  # fmt: skip
def test_matches_a_brute_force_walk(t: int, p: int, c: int, seed: int, thr: float | None) -> None:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(c), size=(t, p)).astype(np.float32)
    labels = rng.integers(-1, c, p)
    steps = np.cumsum(rng.integers(1, 20, t))
    dyn = Dynamics(steps=steps, probs=probs, labels=labels, sample_ids=np.arange(p))
    learned, forgot = brute_force(learned_mask(dyn, threshold=thr), steps)
    assert learned_at(dyn, threshold=thr).tolist() == learned
    assert forgetting_events(dyn, threshold=thr).tolist() == forgot


# ---- real runs ----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run_dynamics(tmp_path: Path, preset: str) -> Dynamics:
    data = write_image_folder(tmp_path / "ds", classes=3, per_class=8, size=8)
    config = make_config(str(data), preset=preset, model="mlp", steps=60, target_loss=0.0,
                         image_size=8, device="cpu", overfit_examples=12, batch_size=12,
                         log_every=10, dynamics_every=10, probe_size=12, eval_every=0)  # fmt: skip
    result = train(config, workspace=tmp_path / "ws")
    return read_dynamics(RunReader(result.run_dir))


def test_overfit_learns_every_probe_sample(tmp_path: Path) -> None:
    dyn = run_dynamics(tmp_path, "overfit")
    assert len(dyn.steps) == 7 and dyn.steps[-1] == 60
    assert (learned_at(dyn) >= 0).all()
    assert (learned_at(dyn) > 0).any(), "nothing to learn: the untrained net was already right"


def test_zeroed_inputs_learn_at_most_one_class(tmp_path: Path) -> None:
    """Planted bug: inputs replaced by zeros. Every prediction is the same class, so only the
    samples of that one class can count as learned."""
    dyn = run_dynamics(tmp_path, "input_independent")
    learned = learned_at(dyn) >= 0
    assert len(np.unique(dyn.labels[learned])) <= 1
    assert learned.sum() <= np.bincount(dyn.labels).max()
