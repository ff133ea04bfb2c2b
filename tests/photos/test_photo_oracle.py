"""Scan the planted photo set (tests/photos/planted.py) and check it against its oracle: near
duplicates P and R >= 0.95, no reported group joining images of different planted groups,
the distinct flat images reported as low_information and in no duplicate group, label
issues P and R >= 0.9, and outliers: the colour ramps by their image statistics, the
noise as a rare kind, P@k >= 0.9 (measured 0.91: the line drawing is not found yet)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from benchmarks.scan_photos import chained_groups, outlier_precision_at_k
from recipe_core.scan import ScanResult, scan
from tests.issues.oracle import precision_recall
from tests.photos.planted import PlantedPhotos, make_planted_photos

DUPLICATES = ["near_duplicate", "exact_duplicate"]


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> PlantedPhotos:
    return make_planted_photos(Path(tmp_path_factory.mktemp("photos")), seed=0)


@pytest.fixture(scope="module")
def scanned(planted: PlantedPhotos) -> ScanResult:
    return scan(planted.images, workers=0, cache=False)


def test_generation_is_deterministic(planted: PlantedPhotos, tmp_path: Path) -> None:
    again = make_planted_photos(tmp_path, seed=0)
    pd.testing.assert_frame_equal(again.oracle, planted.oracle)


def test_near_duplicates_precision_and_recall(planted: PlantedPhotos, scanned: ScanResult) -> None:
    table = precision_recall(scanned.issues, planted.oracle)
    for issue in [*DUPLICATES, "cross_split_duplicate"]:
        row = table.loc[issue]
        assert row["precision"] >= 0.95 and row["recall"] >= 0.95, (issue, row.to_dict())


def test_no_chained_groups(planted: PlantedPhotos, scanned: ScanResult) -> None:
    assert chained_groups(scanned.issues, planted.oracle) == []


def test_flat_images_are_low_information_and_not_grouped(
    planted: PlantedPhotos, scanned: ScanResult
) -> None:
    issues = scanned.issues
    low = set(issues.loc[issues["issue"] == "low_information", "path"])
    assert set(planted.flat) <= low
    grouped = set(issues.loc[issues["issue"].isin(DUPLICATES), "path"])
    assert not set(planted.flat) & grouped


def test_label_issues(planted: PlantedPhotos, scanned: ScanResult) -> None:
    row = precision_recall(scanned.issues, planted.oracle).loc["label_issue"]
    # measured P / R 0.94 / 0.94 (seeds 1, 2: 0.94 / 1.00, 0.94 / 0.94) since the set holds no
    # mirrored crop of the same place (a copy: scan.issues.flips); issue 19's target: 0.9
    assert row["precision"] >= 0.9 and row["recall"] >= 0.9, row.to_dict()


def test_outliers_include_the_ramps_by_their_statistics(
    planted: PlantedPhotos, scanned: ScanResult
) -> None:
    issues, oracle = scanned.issues, planted.oracle
    ramps = oracle.loc[(oracle["issue"] == "outlier") & (oracle["note"] == "gradient"), "path"]
    rows = issues[(issues["issue"] == "outlier") & issues["path"].isin(ramps)]
    assert len(ramps) >= 2 and set(rows["path"]) == set(ramps)
    assert rows["detail"].str.contains("image statistics unlike").all()
    assert outlier_precision_at_k(issues, oracle) >= 0.9  # measured 0.91 on seeds 0-2
    row = precision_recall(issues, oracle).loc["outlier"]
    assert row["precision"] == 1.0, row["extra"]


def test_planted_noise_is_an_outlier_of_a_rare_kind(
    planted: PlantedPhotos, scanned: ScanResult
) -> None:
    issues, oracle = scanned.issues, planted.oracle
    noise = oracle.loc[(oracle["issue"] == "outlier") & (oracle["note"] == "noise"), "path"]
    rows = issues[(issues["issue"] == "outlier") & issues["path"].isin(noise)]
    assert len(noise) >= 2 and set(rows["path"]) == set(noise)
    assert rows["detail"].str.contains("a noise-like image among structured ones").all()
