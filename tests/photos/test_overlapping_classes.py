"""Overlapping classes (recipe_core.scan.issues.labels.overlapping_classes): classes the label
model cannot tell apart are reported as such and get no label issues between them. Real
scans of the planted photo set (tests/photos/planted.py) with one class split in two at
random, and with random labels; the model's probabilities given directly for the unit cases.
Trusted answers: how the sets were made."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recipe_core.explore.mistakes import merge_label_issues
from recipe_core.scan import scan
from recipe_core.scan.issues.labels import (
    MIN_OVERLAP_SAMPLES,
    OVERLAP_RATIO,
    find_label_issues_from_probs,
    overlapping_classes,
)
from tests.issues.oracle import precision_recall
from tests.photos.planted import PlantedPhotos, make_planted_photos, split_class

OVERLAP = "overlapping_classes"


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> PlantedPhotos:
    return make_planted_photos(Path(tmp_path_factory.mktemp("photos")), seed=1)


def test_a_class_split_in_two_is_one_overlap_and_its_flips_are_still_found(
    planted: PlantedPhotos, tmp_path: Path
) -> None:
    moved = split_class(planted.images, tmp_path / "split", "pagoda", "pagoda2")
    issues = scan(tmp_path / "split", workers=0, cache=False).issues
    overlap = issues[issues["issue"] == OVERLAP]
    assert set(overlap["label"]) == {"pagoda", "pagoda2"}
    # a row for every sample of both that the label model scored (not the strays, copies)
    files = {f"{p.parent.parent.name}/{p.parent.name}/{p.name}"
             for p in (tmp_path / "split").glob("*/pagoda*/*")}  # fmt: skip
    assert set(overlap["path"]) <= files and len(overlap) >= 0.9 * len(files)
    assert overlap["detail"].str.contains("cannot tell class 'pagoda").all()
    assert (overlap["score"] >= OVERLAP_RATIO).all()
    labels = issues[issues["issue"] == "label_issue"]
    between = labels["label"].isin(["pagoda", "pagoda2"]) & labels["detail"].str.contains(
        "model says pagoda"
    )
    assert not between.any(), labels[between]["detail"].tolist()
    # The flips the split does not touch are found as in the unsplit set.
    oracle = planted.oracle.copy()
    oracle["path"] = [
        p.replace("/pagoda/", "/pagoda2/") if p.replace("/pagoda/", "/pagoda2/") in moved else p
        for p in oracle["path"]
    ]
    untouched = oracle[~oracle["given_label"].isin(["pagoda"]) & ~oracle["path"].isin(moved)]
    pr = precision_recall(labels, untouched).loc["label_issue"]
    assert pr["recall"] >= 0.85, pr.to_dict()


def test_random_labels_give_overlaps_and_no_label_issues(
    planted: PlantedPhotos, tmp_path: Path
) -> None:
    files = sorted(p for p in planted.images.rglob("*") if p.is_file())
    rng = np.random.default_rng(0)
    for i, p in enumerate(files):
        folder = tmp_path / "random" / f"c{rng.integers(6)}"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, folder / f"{i:05d}{p.suffix}")
    issues = scan(tmp_path / "random", workers=0, cache=False).issues
    assert (issues["issue"] == "label_issue").sum() == 0
    assert issues.loc[issues["issue"] == OVERLAP, "label"].nunique() == 6


def test_the_unsplit_photo_set_has_no_overlap(planted: PlantedPhotos) -> None:
    issues = scan(planted.images, workers=0, cache=False).issues
    assert not (issues["issue"] == OVERLAP).any()


def _probs(rng: np.random.Generator, y: np.ndarray, alike: set[int], k: int) -> np.ndarray:
    """Confident probabilities of each true class, except that the classes in `alike` get an
    even share of their joint mass."""
    probs = np.full((len(y), k), 0.02)
    probs[np.arange(len(y)), y] = 0.9
    for i in np.flatnonzero(np.isin(y, list(alike))):
        probs[i, list(alike)] = 0.9 / len(alike) + rng.normal(0, 0.05, len(alike))
    probs = np.clip(probs, 1e-3, None)
    out: np.ndarray = probs / probs.sum(axis=1, keepdims=True)
    return out


def test_overlap_needs_both_ways_and_enough_samples() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 40)
    mutual = overlapping_classes(y, _probs(rng, y, {0, 1}, 4))
    assert mutual[0, 1] == mutual[1, 0] >= OVERLAP_RATIO
    assert (mutual[2:] == 0).all() and (mutual[:, 2:] == 0).all()
    # one way only (class 2's samples look like 3 half the time, 3's never like 2): no overlap
    probs = _probs(rng, y, set(), 4)
    probs[y == 2, 3] = probs[y == 2, 2]
    assert not overlapping_classes(y, probs / probs.sum(axis=1, keepdims=True)).any()
    # too few samples to judge
    few = np.concatenate([np.repeat([0, 1], MIN_OVERLAP_SAMPLES - 1), np.repeat([2, 3], 40)])
    assert not overlapping_classes(few, _probs(rng, few, {0, 1}, 4)).any()


def test_a_runs_probabilities_get_the_same_rule_and_merge_replaces_the_scans_rows() -> None:
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(3), 30)
    classes = ("a", "b", "c")
    probs = _probs(rng, y, {0, 1}, 3)
    probs[5] = [0.02, 0.96, 0.02]  # labelled a, looks b: between overlapping classes
    probs[70] = [0.96, 0.02, 0.02]  # labelled c, looks a: a label issue
    table = pd.DataFrame({"sample_id": np.arange(90) + 100, "path": [f"{i}.png" for i in
                          range(90)], "label": np.asarray(classes)[y]})  # fmt: skip
    run = find_label_issues_from_probs(table, table["sample_id"].to_numpy(), probs, classes)
    kinds = run.issues.groupby("issue")["sample_id"].apply(set)
    assert kinds["label_issue"] == {170}
    assert kinds[OVERLAP] == set(range(100, 160))
    assert run.overlaps[["class_a", "class_b"]].values.tolist() == [["a", "b"]]
    scans = pd.DataFrame({"sample_id": [100, 101], "path": ["0.png", "1.png"], "label": ["a"] * 2,
                          "issue": [OVERLAP, "label_issue"], "score": [0.9, 0.8],
                          "group": ["", ""], "detail": ["scan's", "scan's"]})  # fmt: skip
    merged = merge_label_issues(scans, run, table)
    assert not (merged["signal"] == "scan").any()  # both of the scan's rows were replaced
    assert (merged["issue"] == OVERLAP).sum() == 60
