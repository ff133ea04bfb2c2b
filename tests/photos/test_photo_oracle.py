"""Scan the planted photo set (tests/photos/planted.py) and check it against its oracle: near
duplicates P and R >= 0.95, no reported group joining images of different planted groups,
the distinct flat images reported as low_information and in no duplicate group, label
issues P and R >= 0.9 (pooled over three seeds), and outliers: the colour ramps by their image
statistics, the noise and the line drawing as rare kinds, P@k >= 0.9 (measured 1.00)."""

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


def test_label_issues(planted: PlantedPhotos, scanned: ScanResult, tmp_path: Path) -> None:
    """Pooled over the benchmark's three seeds (one seed's 16 flips move P or R by 0.06 per
    image: seed 0 flags two crops that look like another class's, a mostly green "bud" and a
    nearly black "bokeh"). Measured P / R per seed 0.88 / 0.94, 0.94 / 0.94, 1.00 / 0.88;
    pooled 0.94 / 0.92. Issue 19's target: 0.9."""
    rows = [precision_recall(scanned.issues, planted.oracle).loc["label_issue"]]
    for seed in (1, 2):
        other = make_planted_photos(tmp_path / str(seed), seed=seed)
        issues = scan(other.images, workers=0, cache=False).issues
        rows.append(precision_recall(issues, other.oracle).loc["label_issue"])
    table = pd.DataFrame(rows)
    precision = table["correct"].sum() / table["rows"].sum()
    recall = 1 - table["missed"].map(len).sum() / table["planted"].sum()
    assert precision >= 0.9 and recall >= 0.9, table.to_dict("records")
    assert (table["precision"] >= 0.85).all() and (table["recall"] >= 0.85).all()


def test_outliers_include_the_ramps_by_their_statistics(
    planted: PlantedPhotos, scanned: ScanResult
) -> None:
    issues, oracle = scanned.issues, planted.oracle
    ramps = oracle.loc[(oracle["issue"] == "outlier") & (oracle["note"] == "gradient"), "path"]
    rows = issues[(issues["issue"] == "outlier") & issues["path"].isin(ramps)]
    assert len(ramps) >= 2 and set(rows["path"]) == set(ramps)
    assert rows["detail"].str.contains("image statistics unlike").all()
    assert outlier_precision_at_k(issues, oracle) >= 0.9  # measured 1.00 on seeds 0-2
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


def test_the_planted_line_drawing_is_an_outlier_of_a_rare_kind(
    planted: PlantedPhotos, scanned: ScanResult
) -> None:
    """A colour diagram on a white ground among photo crops: close enough to some crops in
    embedding space to pass the distance signal (robust z 2.9-3.5), found as a drawing on a
    flat ground (outlier_features.flat_ground)."""
    issues, oracle = scanned.issues, planted.oracle
    drawn = oracle.loc[(oracle["issue"] == "outlier") & (oracle["note"] == "drawing"), "path"]
    rows = issues[(issues["issue"] == "outlier") & issues["path"].isin(drawn)]
    assert len(drawn) == 1 and set(rows["path"]) == set(drawn)
    assert rows["detail"].str.contains("a drawn image among photographic ones").all()
    assert not issues.loc[issues["path"].isin(drawn), "issue"].eq("label_issue").any()
