"""The detectors' memo: a rescan after a few files change redoes only their work, and finds
exactly what a cold scan of the same files finds."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from recipe_core.scan import scan
from recipe_core.scan.index.cache import memo_path
from recipe_core.scan.issues._common import sorted_distinct
from recipe_core.scan.issues.graph_update import MIN_SPARE, memo_graph
from recipe_core.scan.issues.memo import (
    IssueMemo,
    content_keys,
    first_of_each,
    lookup,
    pair_keys,
    read_arrays,
    write_arrays,
)
from recipe_core.scan.issues.neighbors import nearest_neighbors
from recipe_core.scan.result import ScanResult
from recipe_core.workspace import open_workspace

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "digits"


def _table(ids: np.ndarray, hashes: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"sample_id": ids, "byte_hash": hashes})


def _hash(rng: np.random.Generator) -> str:
    return bytes(rng.integers(0, 256, 16, dtype=np.uint8)).hex()


def _exact(data: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    return nearest_neighbors(data, k, method="exact")


def test_the_updated_graph_equals_a_fresh_exact_search(tmp_path: Path, caplog) -> None:
    """600 points; then 6 removed, 8 moved (new content), 5 added, and every one of row 0's 12
    nearest moved too (more than its spare entries lost: that row is searched again). The
    updated graph's neighbours and distances are the exact search's, and it was an update, not
    a new search."""
    rng = np.random.default_rng(0)
    n, k = 600, 10
    data = rng.normal(size=(n, 12)).astype(np.float32)
    ids = np.arange(n, dtype=np.int64) * 7919
    hashes = [_hash(rng) for _ in range(n)]
    first = IssueMemo(_table(ids, hashes))
    graph0 = memo_graph(data, np.arange(n), k, first)
    want_i, _ = _exact(data, k)
    assert np.array_equal(graph0.indices, want_i)
    path = tmp_path / "scan.memo"
    first.save(path)

    nearest_to_0 = _exact(data, 12)[0][0]
    assert len(nearest_to_0) > MIN_SPARE
    moved = np.unique(np.concatenate([rng.choice(np.arange(1, n), 8, replace=False), nearest_to_0]))
    removed = rng.choice(np.setdiff1d(np.arange(1, n), moved), 6, replace=False)
    data2, hashes2 = data.copy(), list(hashes)
    for i in moved:
        data2[i] = rng.normal(size=12)
        hashes2[i] = _hash(rng)
    keep = np.setdiff1d(np.arange(n), removed)
    added = rng.normal(size=(5, 12)).astype(np.float32)
    data2 = np.concatenate([data2[keep], added])
    ids2 = np.concatenate([ids[keep], np.arange(n, n + 5) * 7919])
    hashes2 = [hashes2[i] for i in keep] + [_hash(rng) for _ in range(5)]

    second = IssueMemo.load(path, _table(ids2, hashes2))
    with caplog.at_level(logging.INFO, logger="recipe_core.scan.issues.graph_update"):
        graph = memo_graph(data2, np.arange(len(data2)), k, second)
    assert "neighbour graph updated" in caplog.text
    want_i, want_d = _exact(data2, k)
    assert np.array_equal(graph.indices, want_i)
    np.testing.assert_allclose(graph.distances, want_d, rtol=1e-4, atol=1e-5)


def test_many_rescans_in_a_row_keep_the_graph_exact_as_lists_wear_and_are_renewed(
    tmp_path: Path, caplog
) -> None:
    """Twelve rounds of 5 % of 400 points moved, each from the last round's memo: every
    round's graph is the exact search's. Lists lose entries round after round until rows are
    searched again (and stored wider than a full search keeps them): both happen here."""
    rng = np.random.default_rng(5)
    n, k = 400, 12
    data = rng.normal(size=(n, 10)).astype(np.float32)
    ids = np.arange(n, dtype=np.int64) * 7919
    hashes = [_hash(rng) for _ in range(n)]
    path = tmp_path / "scan.memo"
    memo = IssueMemo(_table(ids, hashes))
    memo_graph(data, np.arange(n), k, memo)
    memo.save(path)
    searched_again, widths = 0, set()
    for _ in range(12):
        for i in rng.choice(n, n // 20, replace=False):
            data[i], hashes[i] = rng.normal(size=10), _hash(rng)
        memo = IssueMemo.load(path, _table(ids, hashes))
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="recipe_core.scan.issues.graph_update"):
            graph = memo_graph(data, np.arange(n), k, memo)
        assert "neighbour graph updated" in caplog.text
        searched_again += int(caplog.text.split("new or changed, ")[1].split(" ")[0])
        want_i, want_d = _exact(data, k)
        assert np.array_equal(graph.indices, want_i)
        np.testing.assert_allclose(graph.distances, want_d, rtol=1e-4, atol=1e-5)
        memo.save(path)
        widths.add(read_arrays(path)["graph.neighbours"].shape[1])
    assert searched_again > 0  # worn lists were renewed
    assert max(widths) > k + MIN_SPARE  # ... wider than a full search keeps them


def test_a_memo_of_other_rows_or_no_memo_gives_the_same_graph(tmp_path: Path) -> None:
    """A memo saved for unrelated rows, a damaged file and a missing file: a full search."""
    rng = np.random.default_rng(1)
    data = rng.normal(size=(300, 8)).astype(np.float32)
    table = _table(np.arange(300), [_hash(rng) for _ in range(300)])
    other = IssueMemo(_table(np.arange(300) + 10_000, [_hash(rng) for _ in range(300)]))
    memo_graph(rng.normal(size=(300, 8)).astype(np.float32), np.arange(300), 5, other)
    other.save(tmp_path / "other.memo")
    (tmp_path / "damaged.memo").write_bytes(b"not a memo file")
    want, _ = _exact(data, 5)
    for name in ("other.memo", "damaged.memo", "missing.memo"):
        memo = IssueMemo.load(tmp_path / name, table)
        assert np.array_equal(memo_graph(data, np.arange(300), 5, memo).indices, want), name


def test_per_image_and_per_pair_values_are_computed_once_per_content(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    hashes = [_hash(rng) for _ in range(5)]
    table = _table(np.arange(5), hashes)
    calls: list[np.ndarray] = []

    def compute(rows: np.ndarray) -> np.ndarray:
        calls.append(rows.copy())
        return np.column_stack([rows * 10.0, rows + 0.5])

    memo = IssueMemo(table)
    np.testing.assert_array_equal(
        memo.per_image("x", np.arange(5), compute)[:, 0], np.arange(5) * 10
    )
    memo.save(tmp_path / "m.memo")
    # row 4 is edited (new bytes), a copy of row 1's file is added under a new path
    table2 = _table(np.arange(6), [*hashes[:4], _hash(rng), hashes[1]])
    again = IssueMemo.load(tmp_path / "m.memo", table2)
    calls.clear()
    out = again.per_image("x", np.arange(6), compute)
    assert [c.tolist() for c in calls] == [[4]]  # only the edited file
    np.testing.assert_array_equal(out[:, 0], [0, 10, 20, 30, 40, 10])
    assert (again.reused["x"], again.computed["x"]) == (5, 1)

    keys = content_keys(table2)
    assert keys[1] == keys[5] and len(set(keys.tolist())) == 5
    assert pair_keys(keys[:1], keys[1:2]) != pair_keys(keys[1:2], keys[:1])  # ordered pairs


def _edit(root: Path, rng: np.random.Generator) -> None:
    """About 1 % of the files change: 10 redrawn, 3 removed, a copy and 4 new files added."""
    files = sorted(root.rglob("*.png"))
    picks = rng.choice(len(files), 17, replace=False)
    for i in picks[:10]:
        pixels = np.asarray(Image.open(files[i]).convert("L"), dtype=np.int16)
        shifted = np.roll(pixels, int(rng.integers(3, 9)), axis=int(rng.integers(0, 2)))
        Image.fromarray(np.clip(shifted + 10, 0, 255).astype(np.uint8)).save(files[i])
    for i in picks[10:13]:
        files[i].unlink()
    shutil.copyfile(files[picks[13]], files[picks[13]].with_name("copy_of_one.png"))
    for j, i in enumerate(picks[14:17]):
        noise = rng.integers(0, 256, (32, 32), dtype=np.uint8)
        Image.fromarray(noise).save(files[i].with_name(f"new_{j}.png"))
    Image.fromarray(np.full((32, 32), 200, np.uint8)).save(files[0].with_name("new_flat.png"))


@pytest.mark.skipif(not SAMPLE.is_dir(), reason="sample_data/digits is not there")
def _scanned_digits(tmp_path: Path) -> tuple[Path, Path, ScanResult, Path]:
    """A copy of the sample digits scanned into a fresh workspace, and that scan's memo file."""
    root, ws = tmp_path / "digits", tmp_path / "ws"
    shutil.copytree(SAMPLE, root)
    first = scan(root, workspace=ws, workers=1)
    memo_file = memo_path(open_workspace(ws).scans, first.index.source, first.index.embedding_name)
    return root, ws, first, memo_file


def test_a_rescan_after_a_few_edits_finds_what_a_cold_scan_finds(tmp_path: Path, caplog) -> None:
    """The sample digits (planted duplicates, strays, label errors), scanned; ~1 % of files
    edited, removed or added; scanned again with the memo. Its issue table equals a cold scan
    of the edited files (no cache, no memo), and the memo did spare work."""
    root, ws, _, memo_file = _scanned_digits(tmp_path)
    assert memo_file.is_file()
    _edit(root, np.random.default_rng(3))
    with caplog.at_level(logging.INFO, logger="recipe_core.scan"):
        again = scan(root, workspace=ws, workers=1)
    assert "neighbour graph updated" in caplog.text  # not searched again in full
    cold = scan(root, workers=1, cache=False)
    assert again.index.reused > 0.95 * len(again.index)
    pd.testing.assert_frame_equal(again.issues, cold.issues)
    memo = IssueMemo.load(memo_file, again.index.table)
    assert memo.stored("graph.identity") is not None
    assert len(memo.stored("graph.identity")) == int(again.index.valid.sum())


def test_a_damaged_memo_costs_time_not_results(tmp_path: Path) -> None:
    root, ws, first, memo_file = _scanned_digits(tmp_path)
    memo_file.write_bytes(memo_file.read_bytes()[:1000])  # cut short
    again = scan(root, workspace=ws, workers=1)
    pd.testing.assert_frame_equal(again.issues, first.issues)


def test_the_memo_file_holds_its_arrays_exactly_and_refuses_damaged_files(tmp_path: Path) -> None:
    """`write_arrays` / `read_arrays`: every dtype and shape the memo keeps comes back equal
    (empty arrays too); a mapped array written to leaves the file as it was (copy-on-write);
    a file cut short, or not a memo, is a ValueError (which `IssueMemo.load` turns into an
    empty memo), never arrays of garbage."""
    rng = np.random.default_rng(0)
    arrays = {
        "ids": rng.integers(0, 2**63, 1000, dtype=np.int64).view(np.uint64),
        "graph": rng.integers(-1, 500, (300, 17), dtype=np.int64).astype(np.int32),
        "dist": rng.random((300, 17)).astype(np.float32),
        "stats": rng.random((5, 3)),
        "none": np.zeros((0, 4), dtype=np.float32),
        "one": np.array([2]),
        "scalar": np.array(3.5),
        "strided": np.arange(40, dtype=np.int16).reshape(8, 5)[:, ::2],
    }
    path = tmp_path / "x.memo"
    write_arrays(path, arrays)
    back = read_arrays(path)
    assert list(back) == list(arrays)
    for name, array in arrays.items():
        assert back[name].dtype == array.dtype and np.array_equal(back[name], array), name
    back["graph"][:] = -7  # patched in place, as the graph update does
    assert np.array_equal(read_arrays(path)["graph"], arrays["graph"])
    whole = path.read_bytes()
    for cut in (len(whole) - 1, len(whole) // 2, 30, 5):
        (tmp_path / "cut.memo").write_bytes(whole[:cut])
        with pytest.raises(ValueError):
            read_arrays(tmp_path / "cut.memo")
    (tmp_path / "zip.memo").write_bytes(b"PK\x03\x04" + whole[4:])
    with pytest.raises(ValueError, match="not a Recipe issue memo"):
        read_arrays(tmp_path / "zip.memo")


def test_a_memo_of_the_old_format_is_ignored_and_replaced(tmp_path: Path) -> None:
    root, ws, first, memo_file = _scanned_digits(tmp_path)
    old = memo_file.with_suffix(".npz")
    np.savez(old, _format=np.array([1]))  # what format 1 left behind
    memo_file.unlink()
    again = scan(root, workspace=ws, workers=1)
    pd.testing.assert_frame_equal(again.issues, first.issues)
    assert memo_file.is_file() and not old.exists()


@pytest.mark.parametrize("n", [0, 1, 2, 7, 5000])
def test_the_sort_based_set_helpers_equal_numpys(n: int) -> None:
    """`sorted_distinct`, `first_of_each` and `lookup` give what np.unique / a search give,
    repeats, ties and absent keys included (they replace them on the rescan's hot path)."""
    rng = np.random.default_rng(n)
    keys = rng.integers(0, max(1, n // 3), n).astype(np.uint64)  # many repeats
    assert np.array_equal(sorted_distinct(keys), np.unique(keys))
    assert sorted_distinct(keys.astype(np.int64)).dtype == np.int64
    distinct, first = first_of_each(keys)
    want, want_first = np.unique(keys, return_index=True)
    assert np.array_equal(distinct, want) and np.array_equal(first, want_first)
    stored = np.unique(rng.integers(0, n + 5, n).astype(np.uint64))
    queries = rng.integers(0, n + 5, n).astype(np.uint64)
    found = lookup(stored, queries)
    expected = np.where(np.isin(queries, stored), np.searchsorted(stored, queries), -1)
    assert found.dtype == np.int64 and np.array_equal(found, expected)
