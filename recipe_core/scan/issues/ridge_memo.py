"""The label ridge's fold sums, updated from the last scan's instead of computed again.

Each fold's [X 1]^T [X 1] and [X 1]^T Y (`labels.ridge_fold_terms`) is a sum over its training
rows, and a row's term depends only on its embedding (so on its file's content), its class and
its fold. The memo keeps each fold's sums with the multiset of terms in them, each named by
(content, class, fold). A rescan then takes the stored sums, subtracts the terms that left
(a file edited or removed, a row moved to another fold or class, or set aside as a stray) and
adds the terms that came: for a 1 % rescan of 50k images that is a few hundred rows, where the
sums over every row were the label stage's largest pass (50k x 465^2 multiply-adds).

A departed term's embedding is taken from a current row with the same content, or from the
previous scan's rows that changed or left (`ScanIndex.departed`); when neither has it, or
more than MAX_CHANGED_SHARE of the terms changed, or the classes or dimensions differ, the
sums are computed in full. The sums are float64 over float32 embeddings, whose products are
exact in float64, so updated and recomputed sums agree to rounding in the 15th digit.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

import numpy as np

from recipe_core.scan.index.schema import ScanIndex
from recipe_core.scan.issues.memo import IssueMemo, hash_keys, lookup, pair_keys

log = logging.getLogger(__name__)

MAX_CHANGED_SHARE = 0.25  # more terms changed than this share: the sums are computed in full
_KEYS, _CONTENT, _CLASS, _FOLD = "ridge.keys", "ridge.content", "ridge.class", "ridge.fold"
_GRAM, _CROSS, _CLASSES = "ridge.gram", "ridge.cross", "ridge.classes"

FoldSums = tuple[np.ndarray, np.ndarray]  # (F, D+1, D+1) grams, (F, D+1, K) crosses


def memo_fold_sums(
    index: ScanIndex,
    rows: np.ndarray,
    y: np.ndarray,
    folds: np.ndarray,
    train: np.ndarray,
    classes: tuple[str, ...],
    n_folds: int,
    memo: IssueMemo,
    compute: Callable[[], FoldSums],
) -> FoldSums:
    """Each fold's sums over the training rows `rows[train]` (classes `y`, folds `folds`),
    updated from `memo` where it can be (see the module doc), else `compute()`d
    (`labels.ridge_fold_terms`); this scan's sums and their terms are kept in `memo` for the
    next scan."""
    fit = np.asarray(rows)[train]
    content = memo.content[fit]
    cls, fold = np.asarray(y)[train].astype(np.int64), np.asarray(folds)[train].astype(np.int64)
    keys = _term_keys(content, cls, fold, n_folds)
    order = np.argsort(keys, kind="stable")  # terms are kept and compared sorted by key
    keys, fit, content, cls, fold = keys[order], fit[order], content[order], cls[order], fold[order]
    stamp = _classes_stamp(classes, index.embeddings.shape[1], n_folds)
    sums = _updated(index, memo, keys, fit, cls, fold, stamp)
    if sums is None:
        sums = compute()
    else:
        log.info("label ridge: fold sums updated from the last scan's")
    memo.keep(_KEYS, keys)
    memo.keep(_CONTENT, content)
    memo.keep(_CLASS, cls.astype(np.int32))
    memo.keep(_FOLD, fold.astype(np.int32))
    memo.keep(_GRAM, sums[0])
    memo.keep(_CROSS, sums[1])
    memo.keep(_CLASSES, stamp)
    return sums


def _updated(
    index: ScanIndex,
    memo: IssueMemo,
    keys: np.ndarray,
    fit: np.ndarray,
    cls: np.ndarray,
    fold: np.ndarray,
    stamp: np.ndarray,
) -> FoldSums | None:
    """The stored sums with this scan's terms (sorted by `keys`; rows `fit`, classes `cls`,
    folds `fold` in that order) in place of the last scan's, or None (see the module doc)."""
    old_keys, old_content = memo.stored(_KEYS), memo.stored(_CONTENT)
    old_class, old_fold = memo.stored(_CLASS), memo.stored(_FOLD)
    gram, cross, old_stamp = memo.stored(_GRAM), memo.stored(_CROSS), memo.stored(_CLASSES)
    if (old_keys is None or old_content is None or old_class is None or old_fold is None
            or gram is None or cross is None or old_stamp is None
            or not np.array_equal(old_stamp, stamp)):  # fmt: skip
        return None
    d = index.embeddings.shape[1]
    if gram.shape[1:] != (d + 1, d + 1) or cross.shape[:2] != gram.shape[:2]:
        return None
    gone, came = _surplus(old_keys, keys), _surplus(keys, old_keys)
    if len(gone) + len(came) > MAX_CHANGED_SHARE * max(len(keys), 1):
        return None
    old_x = _embeddings_of(index, memo, old_content[gone])
    if old_x is None:
        return None
    new_x = np.asarray(index.embeddings[fit[came]], dtype=np.float32)
    gram, cross = np.array(gram, dtype=np.float64), np.array(cross, dtype=np.float64)
    _add(gram, cross, old_x, old_class[gone], old_fold[gone], -1.0)
    _add(gram, cross, new_x, cls[came], fold[came], 1.0)
    return gram, cross


def add_terms(
    gram: np.ndarray, cross: np.ndarray, x: np.ndarray, cls: np.ndarray, sign: float = 1.0
) -> None:
    """Add (sign 1) or take away (-1) the terms of rows `x` (float64, (M, D)) of classes `cls`
    to one fold's [X 1]^T [X 1] (`gram`, (D+1, D+1)) and [X 1]^T Y (`cross`), in place."""
    d = x.shape[1]
    onehot = np.zeros((len(x), cross.shape[1]))
    onehot[np.arange(len(x)), cls] = 1.0
    sums = x.sum(axis=0)
    gram[:d, :d] += sign * (x.T @ x)
    gram[:d, d] += sign * sums
    gram[d, :d] += sign * sums
    gram[d, d] += sign * len(x)
    cross[:d] += sign * (x.T @ onehot)
    cross[d] += sign * onehot.sum(axis=0)


def _add(
    gram: np.ndarray,
    cross: np.ndarray,
    x: np.ndarray,
    cls: np.ndarray,
    fold: np.ndarray,
    sign: float,
) -> None:
    """`add_terms` of rows `x` in their folds (`gram`, `cross` are per fold), in place."""
    for f in np.unique(fold):
        at = np.flatnonzero(fold == f)
        add_terms(gram[f], cross[f], x[at].astype(np.float64), cls[at], sign)


def _embeddings_of(index: ScanIndex, memo: IssueMemo, wanted: np.ndarray) -> np.ndarray | None:
    """(len(wanted), D) the embedding of each content key: from a decoded row of this scan
    with that content, else from the previous scan's departed rows; None if one is in neither."""
    out = np.zeros((len(wanted), index.embeddings.shape[1]), dtype=np.float32)
    if len(wanted) == 0:
        return out
    valid = np.flatnonzero(index.valid & (memo.content != 0))
    order = np.argsort(memo.content[valid], kind="stable")
    here = lookup(memo.content[valid][order], wanted)
    found = here >= 0
    out[found] = index.embeddings[valid[order[here[found]]]]
    if found.all():
        return out
    departed = index.departed
    if departed is None or len(departed.byte_hash) == 0:
        return None
    keys = hash_keys(departed.byte_hash)
    order = np.argsort(keys, kind="stable")
    there = lookup(keys[order], wanted[~found])
    if (there < 0).any():
        return None
    out[~found] = departed.embeddings[order[there]]
    return out


def _surplus(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Positions into sorted `a` of its copies of each value beyond sorted b's count of it:
    `a`'s side of the multiset difference."""
    if len(a) == 0:
        return np.zeros(0, dtype=np.int64)
    first = np.searchsorted(a, a, side="left")
    rank = np.arange(len(a)) - first  # 0 for a value's first copy, 1 for its second, ...
    in_b = np.searchsorted(b, a, side="right") - np.searchsorted(b, a, side="left")
    out: np.ndarray = np.flatnonzero(rank >= in_b)
    return out


def _term_keys(content: np.ndarray, cls: np.ndarray, fold: np.ndarray, n_folds: int) -> np.ndarray:
    """(M,) uint64 naming (content, class, fold)."""
    return pair_keys(content, (cls * n_folds + fold).astype(np.uint64))


def _classes_stamp(classes: tuple[str, ...], dims: int, n_folds: int) -> np.ndarray:
    """(2,) uint64: what the stored sums' columns and shapes mean (the classes, in order, the
    embedding's dimensions, the folds): other stamps, other sums."""
    text = "\0".join(classes).encode() + f"\0{dims}\0{n_folds}".encode()
    digest = hashlib.blake2b(text, digest_size=16).digest()
    return np.frombuffer(digest, dtype="<u8").copy()
