"""Outliers among colour photographs: a few greyscale images are strays by kind, though not
by kNN distance (every photo is far from every other). Before the rare-kind signal: 0 of 8."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recipe_core.scan import scan
from recipe_core.scan.issues import detect_issues
from tests.issues.conftest import Planted, draw_face, draw_shape
from tests.issues.planting import write_planted


def shapes(seed: int, n: int = 900) -> tuple[list[np.ndarray], list[str]]:
    rng = np.random.default_rng(seed)
    kinds = rng.integers(0, 5, n)
    return [draw_shape(int(k), rng) for k in kinds], [f"shape{k}" for k in kinds]


def top_k_ids(planted: Planted, k: int) -> set[int]:
    scores = planted.report.outliers.scores
    return set(scores[scores["scored"]].nlargest(k, "score")["sample_id"].tolist())


def scanned(root: Path, oracle: pd.DataFrame) -> Planted:
    return Planted(root, detect_issues(scan(root, workers=0, cache=False).index), oracle)


@pytest.fixture(scope="module")
def grey_faces(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    rng = np.random.default_rng(5)
    faces = [np.repeat(draw_face(rng)[..., None], 3, axis=2) for _ in range(8)]
    images, labels = shapes(7)
    root = tmp_path_factory.mktemp("grey_faces")
    return scanned(root, write_planted(root, images, labels, faces, seed=4))


@pytest.fixture(scope="module")
def clean_rgb(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    images, labels = shapes(11)
    root = tmp_path_factory.mktemp("clean_rgb")
    return scanned(root, write_planted(root, images, labels, [], seed=5))


def check_strays(planted: Planted) -> None:
    strays = set(planted.oracle.query("issue == 'outlier'")["path"])
    flagged = planted.issues.query("issue == 'outlier'")
    assert set(flagged["path"]) == strays  # all 8 flagged, nothing else: precision@8 = 1
    assert top_k_ids(planted, len(strays)) == set(flagged["sample_id"].tolist())  # ranked first
    assert flagged["detail"].str.startswith("a greyscale image among colour ones").all()
    assert flagged["score"].between(0.5, 1.0).all()


def test_grey_digits_among_photos_are_outliers(planted_shapes: Planted) -> None:
    check_strays(planted_shapes)


def test_grey_faces_among_photos_are_outliers(grey_faces: Planted) -> None:
    check_strays(grey_faces)


def test_clean_photos_have_no_outliers(clean_rgb: Planted) -> None:
    # before and after the rare-kind signal: 0 outliers here (least colourful photo is far
    # from the grey thresholds), so the signal adds no false alarm
    assert not (clean_rgb.issues["issue"] == "outlier").any()
    assert not clean_rgb.report.outliers.scores["rare_kind"].any()


def test_grey_digits_have_no_rare_kind(planted_digits: Planted) -> None:
    assert not planted_digits.report.outliers.scores["rare_kind"].any()
