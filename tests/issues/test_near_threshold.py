"""The adjustable near-duplicate line: monotone in its threshold, the effect table agrees with
a scan at each value, precision and recall move the way the Issues page says, and bad values
fail clearly (engine, CLI and scan job)."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from recipe_core.cli import cli
from recipe_core.errors import ConfigError
from recipe_core.jobs import scan_job
from recipe_core.scan import load_scan, scan
from recipe_core.scan.index.schema import ScanIndex
from recipe_core.scan.issues import find_duplicates
from recipe_core.scan.issues.duplicates import (
    NEAR_K,
    eligible_thumbnails,
    exact_groups,
    near_pairs,
    threshold_effect,
)
from recipe_core.scan.issues.neighbors import neighbor_graph
from recipe_core.scan.issues.pixel_match import check_threshold, is_near
from recipe_core.scan.issues.quality import low_information_mask
from recipe_core.workspace import open_workspace
from tests.issues.conftest import Planted

LEVELS = (0.25, 0.5, 1.0, 1.5, 2.0)
COPIES = ("near_duplicate", "conflicting_labels", "cross_split_duplicate")  # planted copies


@pytest.fixture(scope="module")
def index(planted_digits: Planted) -> ScanIndex:
    return scan(planted_digits.root, workers=0, cache=False).index


def link_set(pairs: pd.DataFrame) -> set[tuple[int, int]]:
    a, b = pairs["sample_id_a"].to_numpy(), pairs["sample_id_b"].to_numpy()
    return set(zip(np.minimum(a, b).tolist(), np.maximum(a, b).tolist(), strict=True))


def planted_links(index: ScanIndex, oracle: pd.DataFrame) -> set[tuple[int, int]]:
    """Pairs of samples the oracle planted as copies of one another (identical pairs are exact
    duplicates, never near links, so they do not change a near link's verdict)."""
    ids = dict(zip(index.table["path"], index.table["sample_id"], strict=True))
    pixel_hash = dict(zip(index.table["sample_id"], index.table["pixel_hash"], strict=True))
    out: set[tuple[int, int]] = set()
    for _, rows in oracle[oracle["issue"].isin(COPIES)].groupby("group"):
        members = sorted(int(ids[p]) for p in rows["path"] if p in ids)
        out |= {
            (a, b)
            for i, a in enumerate(members)
            for b in members[i + 1 :]
            if pixel_hash[a] != pixel_hash[b]
        }
    return out


def verified(index: ScanIndex, threshold: float) -> set[tuple[int, int]]:
    """The verified near links at `threshold`, before grouping (as sample ids)."""
    exact = exact_groups(index.table)
    graph = neighbor_graph(index.embeddings, np.flatnonzero(index.valid), NEAR_K + 4)
    eligible = eligible_thumbnails(index.pixels, low_information_mask(index))
    links = near_pairs(index.pixels, graph, exact, eligible=eligible, threshold=threshold)
    ids = index.table["sample_id"].to_numpy()
    return link_set(pd.DataFrame({"sample_id_a": ids[links.a], "sample_id_b": ids[links.b]}))


def test_a_looser_line_keeps_every_link_of_a_stricter_one(index: ScanIndex) -> None:
    """The verdict is monotone; the groups drawn from it may regroup (a looser line can hand
    a sample to a closer centre), so it is the verified links that only grow."""
    links = [verified(index, t) for t in LEVELS]
    for stricter, looser in itertools.pairwise(links):
        assert stricter <= looser
    assert len(links[0]) < len(links[2]) < len(links[-1])  # the line moves in both directions
    effect = threshold_effect(index, LEVELS)
    assert effect["links"].tolist() == [len(x) for x in links]


def test_the_effect_table_is_what_a_scan_at_each_threshold_reports(index: ScanIndex) -> None:
    effect = threshold_effect(index, LEVELS)
    assert effect["threshold"].tolist() == list(LEVELS)
    for row in effect.itertuples():
        found = find_duplicates(index, near_threshold=row.threshold)
        members = found.members
        near = members[members["near"]]
        assert row.links >= len(found.pairs)  # the reported ones are the links inside groups
        assert row.groups == near["group"].nunique()
        copies = near["exact_group"] != ""
        assert row.images == (~copies).sum() + near.loc[copies, "exact_group"].nunique()
        assert row.closeness < row.threshold  # the loosest pair admitted is inside the line
    assert effect["new_links"].sum() == effect["links"].iloc[-1]
    assert (effect["new_links"] >= 0).all()


def test_precision_falls_and_recall_rises_as_the_line_loosens(
    index: ScanIndex, planted_digits: Planted
) -> None:
    truth = planted_links(index, planted_digits.oracle)
    assert len(truth) >= 6
    scores = {}
    for t in (0.25, 1.0, 2.0):
        found = link_set(find_duplicates(index, near_threshold=t).pairs)
        scores[t] = (len(found & truth) / max(len(found), 1), len(found & truth) / len(truth))
    assert scores[1.0][0] >= 0.95 and scores[1.0][1] >= 0.9  # the calibrated default
    assert scores[0.25][1] < scores[1.0][1]  # stricter: copies are missed ...
    assert scores[0.25][0] >= scores[1.0][0]  # ... and nothing less sure is let in
    assert scores[2.0][0] < 0.5 * scores[1.0][0]  # looser: look-alikes come in
    assert scores[2.0][1] >= scores[1.0][1]


def test_is_near_is_monotone_in_its_threshold() -> None:
    rng = np.random.default_rng(0)
    dist, residual = rng.uniform(0, 0.5, 5000), rng.uniform(0, 12, 5000)
    verdicts = [is_near(dist, residual, t) for t in np.linspace(0.25, 2.0, 15)]
    for stricter, looser in itertools.pairwise(verdicts):
        assert not (stricter & ~looser).any()


@pytest.mark.parametrize("bad", [0.0, 0.1, 2.5, -1.0, math.nan, math.inf])
def test_a_threshold_out_of_range_names_the_range(bad: float) -> None:
    with pytest.raises(ConfigError, match=r"near-duplicate threshold .* outside \[0.25, 2.0\]"):
        check_threshold(bad)


def test_a_scan_records_its_threshold_and_refuses_a_bad_one_before_decoding(
    planted_digits: Planted,
) -> None:
    with pytest.raises(ConfigError, match="near-duplicate threshold"):
        scan(planted_digits.root, workers=0, cache=False, near_threshold=5)
    result = scan(planted_digits.root, workers=0, cache=False, near_threshold=0.25)
    assert result.summary.near_threshold == 0.25
    default = scan(planted_digits.root, workers=0, cache=False).issues
    near = "near_duplicate"
    assert (result.issues["issue"] == near).sum() < (default["issue"] == near).sum()


def test_the_cli_passes_the_threshold_and_refuses_one_out_of_range(
    planted_digits: Planted, tmp_path: pytest.TempPathFactory
) -> None:
    runner = CliRunner()
    bad = runner.invoke(cli, ["scan", str(planted_digits.root), "--near-threshold", "3"])
    assert bad.exit_code != 0 and "near-threshold" in bad.output
    ok = runner.invoke(
        cli,
        ["scan", str(planted_digits.root), "--near-threshold", "1.5", "--json", "--no-cache",
         "--workers", "0"],
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["near_threshold"] == 1.5


def test_the_scan_job_keeps_the_threshold_in_its_result(
    planted_digits: Planted, tmp_path: pytest.TempPathFactory
) -> None:
    ws = open_workspace(tmp_path / "ws")  # type: ignore[operator]
    folder = tmp_path / "job"  # type: ignore[operator]
    argv = [str(planted_digits.root), "--job-dir", str(folder), "--workspace", str(ws.root),
            "--workers", "0", "--near-threshold", "0.75"]  # fmt: skip
    assert scan_job.main(argv) == 0
    assert load_scan(folder / scan_job.RESULT_DIR).summary.near_threshold == 0.75
