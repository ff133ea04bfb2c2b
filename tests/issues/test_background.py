"""`recipe_core.scan.cpus.Background`: work beside the caller's thread is finished when the
block ends, its first error is raised there, and a caller's own error is not masked by it.
Also: a scan's index cache, written in the background, is complete when `scan` returns."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from recipe_core.scan import scan
from recipe_core.scan.cpus import Background
from recipe_core.scan.index import cache
from recipe_core.workspace import open_workspace
from tests.issues.conftest import Planted


def test_the_work_is_done_when_the_block_ends_and_runs_beside_the_caller() -> None:
    done, caller = [], threading.get_ident()

    def slow(value: int) -> None:
        time.sleep(0.05)
        done.append((value, threading.get_ident()))

    with Background() as background:
        background.submit(slow, 1)
        background.submit(slow, 2)
        assert len(done) < 2  # not waited for yet
    assert [v for v, _ in done] == [1, 2]  # in order, on one thread
    assert all(t != caller for _, t in done)


def test_its_first_error_is_raised_at_the_end_of_the_block() -> None:
    def fail() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"), Background() as background:
        background.submit(fail)


def test_a_callers_error_is_not_masked_by_the_background_work() -> None:
    finished = []
    with pytest.raises(KeyError), Background() as background:
        background.submit(lambda: (time.sleep(0.05), finished.append(True)))
        raise KeyError("the caller's")
    assert finished == [True]  # the work still ended before the caller went on


def test_the_index_cache_is_complete_when_a_scan_returns(
    planted_digits: Planted, tmp_path: Path
) -> None:
    ws = open_workspace(tmp_path / "ws")
    result = scan(planted_digits.root, workspace=ws, workers=0)
    latest = list((ws.scans / "latest").glob("*.json"))
    assert len(latest) == 1
    stored = cache.load_latest(ws.scans, latest[0].stem)
    assert stored is not None and len(stored.table) == len(result.index)
    assert not list(ws.scans.glob(".tmp-*"))  # no half-written scan left behind
