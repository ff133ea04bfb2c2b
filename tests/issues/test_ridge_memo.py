"""The label ridge's fold sums updated from the last scan's (`ridge_memo.memo_fold_sums`)
against the same sums computed in full, through rounds of edits: files whose content changed
(their old embeddings only in `ScanIndex.departed`), files removed and added, relabelled rows,
rows moved to another fold, rows set aside. Equal to rounding, and the update, not a full
pass, is what ran; where it cannot run (the classes changed, a departed embedding is nowhere)
the sums are computed in full, and still equal."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest

from recipe_core.scan.index.schema import Departed
from recipe_core.scan.issues.labels import N_FOLDS, ridge_fold_terms
from recipe_core.scan.issues.memo import IssueMemo
from recipe_core.scan.issues.ridge_memo import memo_fold_sums


@dataclass
class _Index:  # what memo_fold_sums reads of a ScanIndex
    embeddings: np.ndarray
    valid: np.ndarray
    departed: Departed | None = None
    table: pd.DataFrame = field(default_factory=pd.DataFrame)


def _hash(rng: np.random.Generator) -> str:
    return rng.bytes(16).hex()


def _round(index: _Index, rows, y, folds, classes, memo: IssueMemo, caplog) -> tuple:
    train = np.ones(len(rows), dtype=bool)
    full = ridge_fold_terms(index.embeddings, y, folds, train, len(classes), rows=rows,
                            n_folds=N_FOLDS)  # fmt: skip
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="recipe_core.scan.issues.ridge_memo"):
        got = memo_fold_sums(index, rows, y, folds, train, classes, N_FOLDS, memo,
                             lambda: full)  # fmt: skip
    np.testing.assert_allclose(got[0], full[0], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(got[1], full[1], rtol=1e-12, atol=1e-9)
    return "fold sums updated" in caplog.text


def test_updated_sums_equal_full_sums_through_edits_moves_and_removals(tmp_path, caplog) -> None:
    rng = np.random.default_rng(0)
    n, d, classes = 400, 24, ("a", "b", "c")
    x = rng.normal(size=(n, d)).astype(np.float32)
    hashes = [_hash(rng) for _ in range(n)]
    x[1], hashes[1] = x[0], hashes[0]  # two files with one content
    y = rng.integers(0, 3, n)
    folds = rng.integers(0, N_FOLDS, n)
    rows = np.arange(n)
    table = pd.DataFrame({"sample_id": np.arange(n) * 7, "byte_hash": hashes})
    memo = IssueMemo(table)
    assert not _round(_Index(x, np.ones(n, bool)), rows, y, folds, classes, memo, caplog)
    path = tmp_path / "scan.memo"
    memo.save(path)
    updates = 0
    for step in range(6):
        edited = rng.choice(n, 6, replace=False)
        departed = Departed(np.array([hashes[i] for i in edited]), x[edited].copy())
        for i in edited:  # new content; the old embedding lives on only in `departed`
            x[i], hashes[i] = rng.normal(size=d), _hash(rng)
        y[rng.choice(n, 3, replace=False)] = rng.integers(0, 3, 3)  # relabelled
        folds[rng.choice(n, 3, replace=False)] = rng.integers(0, N_FOLDS, 3)  # regrouped
        rows = np.sort(rng.choice(n, n - 10 - step, replace=False))  # some set aside
        table = pd.DataFrame({"sample_id": np.arange(n) * 7, "byte_hash": hashes})
        memo = IssueMemo.load(path, table)
        index = _Index(x, np.ones(n, bool), departed)
        updates += _round(index, rows, y[rows], folds[rows], classes, memo, caplog)
        memo.save(path)
    assert updates == 6  # every round was an update, not a full pass

    # An embedding that left is nowhere (no departed rows given): computed in full, still right.
    x[5], hashes[5] = rng.normal(size=d), _hash(rng)
    table = pd.DataFrame({"sample_id": np.arange(n) * 7, "byte_hash": hashes})
    memo = IssueMemo.load(path, table)
    assert not _round(_Index(x, np.ones(n, bool)), rows, y[rows], folds[rows], classes, memo,
                      caplog)  # fmt: skip
    memo.save(path)
    # Another class list: the stored columns mean something else, so a full pass.
    memo = IssueMemo.load(path, table)
    y4 = np.minimum(y, 1)
    assert not _round(_Index(x, np.ones(n, bool)), rows, y4[rows], folds[rows], ("a", "b"),
                      memo, caplog)  # fmt: skip


@pytest.mark.parametrize("planted", ["sign", "skip_departed"])
def test_a_wrong_update_is_caught(planted: str, tmp_path, caplog, monkeypatch) -> None:
    """The comparison above fails when the update is wrong: terms added twice instead of
    taken away, or departed terms not taken away at all."""
    from recipe_core.scan.issues import ridge_memo

    real_add = ridge_memo._add

    def broken(gram, cross, x, cls, fold, sign):
        if sign < 0 and planted == "skip_departed":
            return None
        return real_add(gram, cross, x, cls, fold, abs(sign) if planted == "sign" else sign)

    monkeypatch.setattr(ridge_memo, "_add", broken)
    rng = np.random.default_rng(1)
    n, d = 200, 12
    x = rng.normal(size=(n, d)).astype(np.float32)
    hashes = [_hash(rng) for _ in range(n)]
    y, folds = rng.integers(0, 2, n), rng.integers(0, N_FOLDS, n)
    table = pd.DataFrame({"sample_id": np.arange(n), "byte_hash": hashes})
    memo = IssueMemo(table)
    _round(_Index(x, np.ones(n, bool)), np.arange(n), y, folds, ("a", "b"), memo, caplog)
    memo.save(tmp_path / "m.memo")
    departed = Departed(np.array(hashes[:4]), x[:4].copy())
    x[:4] = rng.normal(size=(4, d))
    hashes[:4] = [_hash(rng) for _ in range(4)]
    table = pd.DataFrame({"sample_id": np.arange(n), "byte_hash": hashes})
    memo = IssueMemo.load(tmp_path / "m.memo", table)
    with pytest.raises(AssertionError):
        _round(_Index(x, np.ones(n, bool), departed), np.arange(n), y, folds, ("a", "b"), memo,
               caplog)  # fmt: skip
