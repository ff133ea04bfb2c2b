"""recipe_core.scan.issues.confident against cleanlab (the oracle, installed for the tests):
prune_by_class and confident_off_diagonal flag the same samples as cleanlab's
"prune_by_class" and "confident_learning" filters, sample for sample, on seeded random cases
and on the scan's own probabilities for digits; find_label_errors is their union kept at odds
>= MIN_ODDS; and the scan path imports neither cleanlab nor scikit-learn."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from cleanlab.count import compute_confident_joint
from cleanlab.filter import find_label_issues as cl_find_label_issues

from recipe_core.scan.issues.confident import (
    CONFIDENT_ODDS,
    CONFIDENT_P,
    MIN_ODDS,
    SURE_ODDS,
    _calibrated_joint,
    confident_off_diagonal,
    find_label_errors,
    prune_by_class,
)


def cleanlab_flags(
    labels: np.ndarray, probs: np.ndarray, filter_by: str = "prune_by_class"
) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "may not flag all label issues in class k"
        out = cl_find_label_issues(labels, probs, filter_by=filter_by, n_jobs=1)
    return np.asarray(out, dtype=bool)


def assert_same(labels: np.ndarray, probs: np.ndarray) -> int:
    ours, theirs = prune_by_class(labels, probs), cleanlab_flags(labels, probs)
    assert ours.dtype == bool and ours.shape == labels.shape
    diff = np.flatnonzero(ours != theirs)
    assert len(diff) == 0, f"{len(diff)} flags differ, first at {diff[:5]}"
    y = np.asarray(labels, dtype=np.int64)
    off, cl_off = (
        confident_off_diagonal(y, probs),
        cleanlab_flags(labels, probs, "confident_learning"),
    )
    diff = np.flatnonzero(off != cl_off)
    assert len(diff) == 0, f"{len(diff)} off-diagonal flags differ, first at {diff[:5]}"
    # and the calibrated confident joint behind them, entry for entry
    members = [np.flatnonzero(labels == c) for c in range(probs.shape[1])]
    counts = np.array([len(m) for m in members])
    joint = _calibrated_joint(np.asarray(labels, dtype=np.int64), probs, members, counts)
    np.testing.assert_array_equal(joint, compute_confident_joint(labels, probs))
    return int(ours.sum())


def noisy_case(
    rng: np.random.Generator,
    n: int,
    k: int,
    *,
    noise: float,
    concentration: float,
    prior: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """True classes from `prior`, probabilities Dirichlet around the true class (a model of
    varying sharpness), given labels flipped to another class at rate `noise`."""
    true = rng.choice(k, n, p=prior)
    alpha = np.full((n, k), 1.0)
    alpha[np.arange(n), true] += concentration * rng.uniform(0.2, 1.8, n)
    probs = np.vstack([rng.dirichlet(a) for a in alpha])
    given = true.copy()
    flip = rng.random(n) < noise
    given[flip] = (true[flip] + rng.integers(1, k, flip.sum())) % k
    return given, probs


def valid(labels: np.ndarray) -> bool:
    """Inputs cleanlab accepts: at least two classes in the labels (or all zero)."""
    return len(np.unique(labels)) >= 2 or bool((labels == 0).all())


CASES = [
    (k, n, seed) for k in (2, 3, 4, 5, 7, 10, 12) for n in (20, 57, 200, 1000) for seed in (0, 1)
]


@pytest.mark.parametrize(("k", "n", "seed"), CASES)
def test_random_noisy_labels(k: int, n: int, seed: int) -> None:
    rng = np.random.default_rng([k, n, seed])
    for noise in (0.0, 0.1, 0.3, 0.6):
        for concentration in (0.5, 4.0, 30.0):
            labels, probs = noisy_case(rng, n, k, noise=noise, concentration=concentration)
            if valid(labels):
                assert_same(labels, probs)


@pytest.mark.parametrize("k", [2, 5, 10, 12])
def test_large(k: int) -> None:
    rng = np.random.default_rng(k)
    labels, probs = noisy_case(rng, 5000, k, noise=0.15, concentration=6.0)
    flagged = assert_same(labels, probs)
    assert flagged > 0


def test_float32_probabilities() -> None:
    rng = np.random.default_rng(3)
    labels, probs = noisy_case(rng, 1000, 6, noise=0.2, concentration=5.0)
    assert_same(labels, probs.astype(np.float32))


@pytest.mark.parametrize("seed", range(12))
def test_classes_missing_from_the_labels(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    k = int(rng.integers(3, 13))
    n = int(rng.choice([20, 80, 400, 2000]))
    labels, probs = noisy_case(rng, n, k, noise=0.2, concentration=5.0)
    present = rng.choice(k, int(rng.integers(2, k)), replace=False)
    labels = present[labels % len(present)]  # only some classes are given; all have columns
    assert_same(labels, probs)


@pytest.mark.parametrize("seed", range(10))
def test_one_class_dominant_and_tiny_classes(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    k = int(rng.integers(2, 13))
    prior = np.full(k, 0.05 / max(k - 1, 1))
    prior[0] = 0.95 if k > 1 else 1.0
    prior /= prior.sum()
    for n in (20, 150, 3000):
        labels, probs = noisy_case(rng, n, k, noise=0.1, concentration=3.0, prior=prior)
        labels[: min(k, n)] = np.arange(min(k, n))  # classes of one sample each, too
        if valid(labels):
            assert_same(labels, probs)


@pytest.mark.parametrize("seed", range(10))
def test_exact_ties_and_near_ties(seed: int) -> None:
    """Quantised probabilities: many exactly equal values (argsort and argmax ties), rows
    exactly uniform, values a hair above and below the thresholds."""
    rng = np.random.default_rng(300 + seed)
    k = int(rng.integers(2, 13))
    for n in (20, 300, 2000):
        labels, probs = noisy_case(rng, n, k, noise=0.25, concentration=2.0)
        levels = int(rng.choice([2, 4, 10]))
        coarse = np.round(probs * levels) + 1e-3  # ties within a column, never all zero
        coarse /= coarse.sum(axis=1, keepdims=True)
        coarse[rng.random(n) < 0.1] = 1.0 / k  # exactly uniform rows
        if valid(labels):
            assert_same(labels, coarse)
        # near ties: every value nudged by under the 1e-6 comparison slack
        nudged = probs + rng.choice([-4e-7, 0.0, 4e-7], probs.shape)
        nudged = np.clip(nudged, 0.0, 1.0)
        if valid(labels):
            assert_same(labels, nudged)


@pytest.mark.parametrize("seed", range(6))
def test_plain_dirichlet_rows(seed: int) -> None:
    """Probabilities unrelated to the labels (all noise), flat and spiky Dirichlets."""
    rng = np.random.default_rng(400 + seed)
    for k in (2, 6, 12):
        for alpha in (0.1, 1.0, 10.0):
            n = int(rng.integers(20, 1500))
            probs = rng.dirichlet(np.full(k, alpha), n)
            labels = rng.integers(0, k, n)
            if valid(labels):
                assert_same(labels, probs)


def test_single_class_labels_flag_nothing() -> None:
    rng = np.random.default_rng(5)
    probs = rng.dirichlet(np.ones(4), 50)
    zeros = np.zeros(50, dtype=np.int64)
    assert assert_same(zeros, probs) == 0  # cleanlab accepts all-zero labels
    assert not prune_by_class(np.full(50, 2), probs).any()  # cleanlab raises on these


def test_edge_inputs() -> None:
    assert prune_by_class(np.zeros(0, dtype=np.int64), np.zeros((0, 3))).shape == (0,)
    with pytest.raises(ValueError):
        prune_by_class(np.array([0, 3]), np.full((2, 3), 1 / 3))
    with pytest.raises(ValueError):
        prune_by_class(np.array([0, 1, 1]), np.full((2, 3), 1 / 3))


def test_the_scans_own_probabilities_on_digits() -> None:
    """Probabilities from the scan's models (ridge + kNN vote) on digits with 8 % of the
    labels flipped: cleanlab and ours flag the same samples."""
    from recipe_core.scan.issues.labels import find_label_issues
    from tests.issues.arrays import index_from_arrays
    from tests.issues.conftest import render_digits

    images, labels = render_digits(600)
    rng = np.random.default_rng(0)
    for i in rng.choice(len(labels), 48, replace=False):
        labels[i] = str((int(labels[i]) + int(rng.integers(1, 10))) % 10)
    result = find_label_issues(index_from_arrays(np.stack(images), labels), seed=0)
    scored = result.scores[result.scores["scored"]]
    y = np.searchsorted(np.asarray(result.classes), scored["given_label"].to_numpy().astype(str))
    assert_same(y, result.pred_probs)
    expected = (
        cleanlab_flags(y, result.pred_probs)
        | cleanlab_flags(y, result.pred_probs, "confident_learning")
    ) & odds_at_least(y, result.pred_probs, MIN_ODDS)
    expected |= sure_flags(y, result.pred_probs)
    np.testing.assert_array_equal(scored["is_issue"].to_numpy(bool), expected)
    assert expected.sum() > 20


def sure_flags(y: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Flagged whatever the counts say: odds of SURE_ODDS, or CONFIDENT_ODDS with the
    suggested class at CONFIDENT_P or more."""
    others = probs.copy()
    others[np.arange(len(y)), y] = -1.0
    confident = odds_at_least(y, probs, CONFIDENT_ODDS) & (others.max(axis=1) >= CONFIDENT_P)
    return odds_at_least(y, probs, SURE_ODDS) | confident


def odds_at_least(y: np.ndarray, probs: np.ndarray, odds: float) -> np.ndarray:
    others = probs.copy()
    others[np.arange(len(y)), y] = -1.0
    return np.asarray(others.max(axis=1) >= odds * probs[np.arange(len(y)), y])


@pytest.mark.parametrize("seed", range(8))
def test_find_label_errors_is_the_union_kept_at_the_odds_plus_the_sure(seed: int) -> None:
    rng = np.random.default_rng(500 + seed)
    k = int(rng.integers(2, 11))
    labels, probs = noisy_case(rng, int(rng.integers(50, 3000)), k, noise=0.2, concentration=3.0)
    if not valid(labels):
        return
    union = cleanlab_flags(labels, probs) | cleanlab_flags(labels, probs, "confident_learning")
    kept = union & odds_at_least(labels, probs, MIN_ODDS)
    sure = sure_flags(labels, probs)
    np.testing.assert_array_equal(find_label_errors(labels, probs), kept | sure)
    assert kept.sum() < union.sum() or not union.any()  # the odds rule drops ambiguous flags


def test_the_union_finds_what_prune_by_class_undercounts() -> None:
    """25 samples of one true class filed under the four others: prune-by-class's calibrated
    per-class counts fall short of them, the confident joint's off-diagonal adds some back,
    and the odds rule keeps them while flagging no more correct labels than before."""
    rng = np.random.default_rng(11)
    n, k = 400, 5
    true = rng.choice(k, n)
    alpha = np.ones((n, k))
    alpha[np.arange(n), true] += 6 * rng.uniform(0.5, 1.5, n)
    probs = np.vstack([rng.dirichlet(a) for a in alpha])
    given = true.copy()
    moved = np.flatnonzero(true == 1)[:25]
    given[moved] = (true[moved] + rng.integers(1, k, len(moved))) % k
    wrong = given != true
    pbc, ours = prune_by_class(given, probs), find_label_errors(given, probs)
    assert (ours & wrong).sum() > (pbc & wrong).sum()  # measured: 16 against 13 of 25
    assert (ours & ~wrong).sum() <= (pbc & ~wrong).sum()


def test_scan_path_imports_neither_cleanlab_nor_sklearn() -> None:
    code = """
import sys
import numpy as np
import pandas as pd
from recipe_core.scan.issues.labels import find_label_issues_from_probs
rng = np.random.default_rng(0)
n, k = 300, 5
table = pd.DataFrame({"sample_id": np.arange(n), "label": [str(c) for c in rng.integers(0, k, n)]})
probs = rng.dirichlet(np.ones(k), n)
result = find_label_issues_from_probs(table, np.arange(n), probs, tuple(map(str, range(k))))
assert result.scores["scored"].all()
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("cleanlab", "sklearn"))
print("heavy:", heavy)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert "heavy: []" in out.stdout, out.stdout + out.stderr


def test_a_confident_bet_against_the_label_is_flagged_a_diffuse_one_is_not() -> None:
    """200 well-separated samples of 4 classes plus two under class 0 at odds 12 against it:
    one where the model puts 0.8 on class 1 (flagged by the confident rule), one where it
    splits 0.96 over three classes (0.32 each: no class is sure, and p(given) 0.04 is not
    SURE_ODDS against; not flagged)."""
    rng = np.random.default_rng(4)
    labels = np.repeat(np.arange(4), 50)
    probs = np.full((200, 4), 0.02)
    probs[np.arange(200), labels] = 0.94
    probs += rng.uniform(0, 0.01, probs.shape)
    probs /= probs.sum(axis=1, keepdims=True)
    odd = np.array([[0.0667, 0.8, 0.0667, 0.0666], [0.04, 0.32, 0.32, 0.32]])
    labels, probs = np.concatenate([labels, [0, 0]]), np.vstack([probs, odd])
    flags = find_label_errors(labels, probs)
    assert flags[-2] and not flags[-1]
    assert not flags[:-2].any()
