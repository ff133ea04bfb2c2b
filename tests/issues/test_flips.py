"""Flipped copies (recipe_core.scan.issues.flips): a mirror image or an upside-down copy of
an image is found and verified; a symmetric image is not its own copy, flat images give no
candidates, and distinct images are not paired. Trusted answer: the planted pairs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recipe_core.scan.issues import flips
from recipe_core.scan.issues.dup_rows import duplicate_issue_rows
from recipe_core.scan.issues.duplicates import eligible_thumbnails
from recipe_core.scan.issues.flips import FLIP_LINE, average_hash, flipped_links
from recipe_core.scan.issues.pixel_match import closeness


def textured(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 32, 32) uint8 smooth random blobs: distinct, with content at every scale."""
    coarse = rng.uniform(0, 255, (n, 8, 8))
    big = np.kron(coarse, np.ones((4, 4)))
    return np.clip(big + rng.normal(0, 12, (n, 32, 32)), 0, 255).astype(np.uint8)


def test_mirrored_and_upside_down_copies_are_found_and_nothing_else() -> None:
    rng = np.random.default_rng(0)
    base = textured(rng, 300)
    symmetric = base[:20].copy()
    symmetric[:, :, 16:] = symmetric[:, :, :16][:, :, ::-1]  # its own mirror image
    mirrored = base[20:30, :, ::-1]
    upside = base[30:40, ::-1, :]
    noisy = np.clip(mirrored.astype(int) + rng.normal(0, 0.5, mirrored.shape), 0, 255)
    flat = np.full((30, 32, 32), 128, dtype=np.uint8)
    pixels = np.concatenate([symmetric, base[20:], mirrored, upside, noisy.astype(np.uint8), flat])
    # rows: 0-19 symmetric, 20-299 base, 300-309 mirrors of 20-29, 310-319 upside-down
    # copies of 30-39, 320-329 noisy mirrors of 20-29, 330-359 flat
    eligible = eligible_thumbnails(pixels)
    assert not eligible[330:].any()  # flat thumbnails are never checked
    a, b, evidence, kind = flipped_links(pixels, eligible)
    near, dist, residual = evidence.judge()
    assert near.all()
    found = {(int(x), int(y)): k for x, y, k in zip(a, b, kind, strict=True)}
    want = {(20 + i, 300 + i): "mirror image" for i in range(10)}
    want |= {(30 + i, 310 + i): "upside-down copy" for i in range(10)}
    want |= {(20 + i, 320 + i): "mirror image" for i in range(10)}
    # a mirror and a noisy mirror of one image are near copies of each other, not flipped
    assert found == want
    assert (closeness(dist, residual) <= FLIP_LINE).all() and (residual >= 0).all()
    # a stricter line re-draws the flipped ones' own line too
    strict = evidence.judge(0.5)
    assert (closeness(*strict[1:])[strict[0]] <= 0.5 * FLIP_LINE).all()
    # a flipped copy with 4 grey levels of noise is past FLIP_LINE: not called a copy
    rough = np.clip(base[20:30, :, ::-1] + rng.normal(0, 4, (10, 32, 32)), 0, 255)
    pixels = np.concatenate([base, rough.astype(np.uint8)])
    assert len(flipped_links(pixels, eligible_thumbnails(pixels))[0]) == 0


def test_the_hash_of_a_flipped_grid_is_the_flipped_hash() -> None:
    grid = np.random.default_rng(1).uniform(size=(50, 8, 8))
    plain, mirrored = average_hash(grid), average_hash(grid[:, :, ::-1])

    def bits(h: np.ndarray) -> np.ndarray:
        return np.unpackbits(h.view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")

    as_grid = bits(plain).reshape(-1, 8, 8)
    assert np.array_equal(bits(mirrored).reshape(-1, 8, 8), as_grid[:, :, ::-1])


def test_a_flipped_partner_is_named_in_the_issue_detail() -> None:
    table = pd.DataFrame({"sample_id": [1, 2], "path": ["a.png", "b.png"], "label": ["x", "x"],
                          "split": ["", ""], "byte_hash": ["h1", "h2"]})  # fmt: skip
    members = pd.DataFrame({"sample_id": [1, 2], "exact_group": ["", ""], "group": ["dup-1"] * 2,
                            "near": [True, True], "twin": [-1, -1], "partner": [2, 1],
                            "closeness": [0.1, 0.1]})  # fmt: skip
    rows = duplicate_issue_rows(table, members, {1: "mirror image"})
    detail = dict(zip(rows["sample_id"], rows["detail"], strict=True))
    assert "b.png is its mirror image" in detail[1]
    assert "mirror" not in detail[2]


def test_the_block_screen_keeps_flipped_copies_and_blocks_agree_with_one_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The block-sum screen passes every flipped copy (correlation ~1) and rules a distinct
    pair out with evidence near at no line; checking in blocks of a few pairs gives each pair
    the evidence one whole check gives it."""
    rng = np.random.default_rng(3)
    base = textured(rng, 40)
    pixels = np.concatenate([base, base[:, :, ::-1]])
    a = np.concatenate([np.arange(20), np.arange(20, 40)])
    b = np.concatenate([40 + np.arange(20), 40 + (np.arange(20, 40) + 7) % 40])
    corr = flips.grid_correlation(pixels, a, b, (2,))
    assert (corr[:20] > 0.999).all()  # mirror images of their partners
    assert (corr[20:] < flips.MIN_GRID_CORRELATION).all()  # mirrors of other images
    whole = flips.flipped_evidence(pixels, a, b, (2,), 1.0)
    near = whole.judge(2.0)[0]  # the loosest threshold the scan accepts
    assert near[:20].all() and not near[20:].any()
    assert np.isinf(whole.dist[20:]).all()
    monkeypatch.setattr(flips, "FLIP_BLOCK", 3)
    blocked = flips.flipped_evidence(pixels, a, b, (2,), 1.0)
    for name in ("dist", "residual", "coarse", "clipped", "line"):
        np.testing.assert_array_equal(getattr(blocked, name), getattr(whole, name))
    # a flat image has no correlation to speak of: ruled out, not a division error
    flat = np.concatenate([pixels, np.full((1, 32, 32), 90, dtype=np.uint8)])
    assert np.isnan(flips.grid_correlation(flat, np.array([80]), np.array([0]), (2,)))[0]
