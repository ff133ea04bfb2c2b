"""The aligned pixel distance: against a brute-force reference, and on real digits: planted
edits pass, different images of the same digit do not."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from recipe_core.scan.issues import aligned_distance
from recipe_core.scan.issues.duplicates import verdict
from recipe_core.scan.issues.pixel_match import (
    NEAR_THRESHOLD,
    beyond_rounding,
    is_near,
    verify_pairs,
)
from tests.issues.conftest import render_digits
from tests.issues.planting import NEAR_EDITS


def reference(a: np.ndarray, b: np.ndarray, s: int = 2) -> float:
    """Plain definition: best Pearson r over the overlaps of all shifts (np.corrcoef)."""
    best = -1.0
    h, w = a.shape
    for dy in range(-s, s + 1):
        for dx in range(-s, s + 1):
            x = a[max(0, dy) : h + min(0, dy), max(0, dx) : w + min(0, dx)].ravel()
            y = b[max(0, -dy) : h + min(0, -dy), max(0, -dx) : w + min(0, -dx)].ravel()
            if x.std() > 0 and y.std() > 0:
                best = max(best, float(np.corrcoef(x, y)[0, 1]))
    return float(np.sqrt(max(0.0, 2 * (1 - best))))


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    images, labels = render_digits(600)
    return np.stack(images), np.asarray(labels)


def test_matches_the_plain_definition(digits: tuple[np.ndarray, np.ndarray]) -> None:
    pix = digits[0]
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, len(pix), 40), rng.integers(0, len(pix), 40)
    ours = aligned_distance(pix[a], pix[b])
    ref = [reference(pix[i].astype(float), pix[j].astype(float)) for i, j in zip(a, b, strict=True)]
    np.testing.assert_allclose(ours, ref, atol=3e-3)  # float32 products


def test_shifted_copies_align_exactly(digits: tuple[np.ndarray, np.ndarray]) -> None:
    """Every shift within the range is searched: a pure translation (content kept in frame)
    scores ~0, one beyond the range does not."""
    pix = np.pad(digits[0][:50], ((0, 0), (3, 3), (3, 3)), constant_values=255)  # 38 px
    for dy, dx in ((2, -2), (-1, 2), (0, 1)):
        moved = np.roll(pix, (dy, dx), axis=(1, 2))
        assert aligned_distance(pix, moved).max() < 1e-2, (dy, dx)
    assert aligned_distance(pix, np.roll(pix, (3, 0), axis=(1, 2))).min() > 1e-2


@pytest.mark.parametrize("edit", sorted(NEAR_EDITS))
def test_planted_edits_are_near_duplicates(
    digits: tuple[np.ndarray, np.ndarray], edit: str
) -> None:
    pix = digits[0][:200]
    rng = np.random.default_rng(2)
    copies = np.stack([NEAR_EDITS[edit](x, rng) for x in pix])
    both = np.concatenate([pix, copies])
    dist, residual = verify_pairs(both, np.arange(200), np.arange(200, 400))
    assert is_near(dist, residual).mean() >= 0.99, edit


def test_different_digits_of_one_class_are_not(digits: tuple[np.ndarray, np.ndarray]) -> None:
    """The hard negatives: the closest pairs of *different* images of the same class."""
    pix, labels = digits
    pairs = [
        (i, j) for c in np.unique(labels) for i in np.flatnonzero(labels == c)
        for j in np.flatnonzero(labels == c) if i < j
    ]  # fmt: skip
    a, b = map(np.asarray, zip(*pairs, strict=True))
    coarse = np.linalg.norm(pix[a].reshape(len(a), -1) - pix[b].reshape(len(b), -1), axis=1)
    near = np.argsort(coarse)[:300]  # the most alike pairs by plain pixel distance
    dist, residual = verify_pairs(pix, a[near], b[near])
    assert not is_near(dist, residual).any()
    assert dist.min() > NEAR_THRESHOLD


def test_flat_images_never_match_structured_ones() -> None:
    flat = np.full((1, 32, 32), 200, np.uint8)
    grad = np.tile(np.arange(32, dtype=np.uint8) * 8, (1, 32, 1))
    assert aligned_distance(flat, grad)[0] == pytest.approx(np.sqrt(2) * np.sqrt(2), abs=1e-6)


def test_jpeg_of_a_low_contrast_image_passes_on_the_residual() -> None:
    """A pale photo (std ~10 grey levels): JPEG's error is small in grey levels but large
    relative to the contrast, so only the absolute residual test recognises the copy."""
    rng = np.random.default_rng(3)
    field = np.kron(rng.normal(0, 1, (8, 8)), np.ones((4, 4)))
    smooth = np.asarray(Image.fromarray(((field + 4) * 30).astype(np.uint8)).resize((32, 32)))
    pale = (120 + (smooth.astype(np.float64) - smooth.mean()) / smooth.std() * 10).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pale).save(buf, "JPEG", quality=70)
    copy = np.asarray(Image.open(buf))
    dist, residual = verify_pairs(np.stack([pale, copy]), np.array([0]), np.array([1]))
    assert is_near(dist, residual).all() and residual[0] < 6


def _pale(field: np.ndarray, std: float = 12.0) -> np.ndarray:
    smooth = np.asarray(
        Image.fromarray(((field + 4) * 30).clip(0, 255).astype(np.uint8)).resize((32, 32))
    )
    z = (smooth.astype(np.float64) - smooth.mean()) / smooth.std()
    return np.clip(120 + z * std, 0, 255).astype(np.uint8)


def test_noise_on_a_pale_image_is_a_copy_but_two_pale_images_are_not() -> None:
    """Pairs admitted on the residual alone are checked at half resolution: white noise
    (std 3 on std 12) halves there and stays a copy (the planted shapes' circle pair that a
    fixed half-size bar of 0.12 lost); pale images whose coarse structure differs a little
    are not copies, however small their residual."""
    rng = np.random.default_rng(7)
    field = np.kron(rng.normal(0, 1, (8, 8)), np.ones((4, 4)))
    pale = _pale(field)
    noisy = np.clip(pale + rng.normal(0, 3, pale.shape), 0, 255).astype(np.uint8)
    others = [
        _pale(field + 0.2 * np.kron(rng.normal(0, 1, (4, 4)), np.ones((8, 8)))) for _ in range(10)
    ]
    pixels = np.stack([pale, noisy, *others])
    a = np.array([0] * 11)
    b = np.arange(1, 12)
    near, dist, residual = verdict(pixels, a, b)
    assert near[0] and dist[0] >= NEAR_THRESHOLD  # admitted on the residual, then kept
    assert is_near(dist, residual).all()  # the residual alone admits all, at like distances ...
    assert not near[1:].any()  # ... the half-size check does not


def test_the_gpu_cross_products_equal_the_numpy_ones() -> None:
    """verify_pairs' torch path (a GPU `device`: grouped convolution, images uploaded once)
    and its numpy path compute the same cross products; run here on torch's CPU device."""
    from recipe_core.scan.issues import pixel_match

    rng = np.random.default_rng(3)
    images = pixel_match._centred(rng.integers(0, 256, (40, 32, 32)))
    a, b = rng.integers(0, 40, 300), rng.integers(0, 40, 300)
    expected = pixel_match._numpy_cross_products(images, 2)(a, b)
    got = pixel_match._torch_cross_products(images, 2, "cpu")(a, b)
    assert got.shape == expected.shape == (300, 25)
    # float32 sums of ~1e5 added in another order: equal to a few ulps of the largest product
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * scale)
    assert (np.argmax(got, axis=1) == np.argmax(expected, axis=1)).mean() > 0.99


def _bright_field(rng: np.random.Generator) -> np.ndarray:
    field = np.kron(rng.normal(0, 1, (8, 8)), np.ones((4, 4))) + 0.3 * rng.normal(0, 1, (32, 32))
    return np.clip(212 + 25 * field, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("shift", [20, 35])
def test_a_brightened_copy_whose_highlights_clip_is_a_copy(shift: int) -> None:
    """A bright image (mean 212) brightened by 20-35 grey levels: much of the copy is
    clipped white (18-40 %), which no gain and offset explains (the plain verdict says no); compared
    with the original clipped alike, it is a copy. Distinct bright images clipped the same
    way, and the copy of one against another, are not."""
    rng = np.random.default_rng(shift)
    originals = [_bright_field(rng) for _ in range(8)]
    copy = np.clip(originals[0].astype(np.int16) + shift, 0, 255).astype(np.uint8)
    clipped_others = [np.clip(o.astype(np.int16) + shift, 0, 255).astype(np.uint8)
                      for o in originals[1:]]  # fmt: skip
    assert (copy == 255).mean() > 0.15
    pixels = np.stack([*originals, copy, *clipped_others])
    n = len(originals)
    a = np.array([0] + [0] * 7 + list(range(1, 8)))
    b = np.array([n] + list(range(n + 1, 2 * n)) + [n] * 7)
    plain = verify_pairs(pixels, a[:1], b[:1])[0]
    assert plain[0] >= NEAR_THRESHOLD  # too far for the strict line without matched clipping
    near, dist, _ = verdict(pixels, a, b)
    assert near[0] and dist[0] < NEAR_THRESHOLD
    assert not near[1:].any(), dist[1:]


def test_no_pairs_give_empty_answers() -> None:
    from recipe_core.scan.issues.pixel_match import clipped_distance, clipping_mismatch

    pixels, none = np.zeros((3, 32, 32), np.uint8), np.zeros(0, np.int64)
    assert clipping_mismatch(pixels, none, none).shape == (0,)
    assert [x.shape for x in clipped_distance(pixels, none, none)] == [(0,), (0,)]
    assert [x.shape for x in verdict(pixels, none, none)] == [(0,), (0,), (0,)]


def _dark(field: np.ndarray, shift: int = 0) -> np.ndarray:
    """A dark smooth photo-like 32 px thumbnail (std ~5 grey levels, mean ~20) of a 64 px
    image whose content is moved `shift` px right and down (as a re-cropped copy)."""
    big = np.asarray(
        Image.fromarray(((field + 4) * 30).clip(0, 255).astype(np.uint8)).resize((72, 72))
    )
    big = big[4 - shift : 68 - shift, 4 - shift : 68 - shift].astype(np.float64)
    z = (big - big.mean()) / big.std()
    dark = Image.fromarray(np.clip(20 + z * 5, 0, 255).astype(np.uint8)).resize((32, 32))
    return np.asarray(dark)


def test_a_dark_photo_and_its_shifted_copy_differ_by_rounding_alone() -> None:
    """At 5 grey levels of std, rounding to whole grey levels alone leaves a standardised
    distance near the line (seed 1's dark bokeh crop and its 2 px shifted copy: 0.098, missed
    before `beyond_rounding`); distinct dark images stay far however small their residual."""
    rng = np.random.default_rng(11)
    fields = [np.kron(rng.normal(0, 1, (24, 24)), np.ones((3, 3))) for _ in range(6)]
    originals = [_dark(f) for f in fields]
    copies = [_dark(f, shift=2) for f in fields]
    nearly = [_dark(f + 0.3 * np.kron(rng.normal(0, 1, (3, 3)), np.ones((24, 24)))) for f in fields]
    pixels = np.stack([*originals, *copies, *nearly])
    a = np.concatenate([np.arange(6), np.arange(6)])
    b = np.concatenate([np.arange(6, 12), np.arange(12, 18)])
    near, dist, residual = verdict(pixels, a, b)
    assert near[:6].all(), (dist[:6], residual[:6])
    assert not near[6:].any(), (dist[6:], residual[6:])
    assert (beyond_rounding(dist, residual) <= dist).all()


def test_beyond_rounding_leaves_contrasted_pairs_alone() -> None:
    dist = np.array([0.05, 0.09, 0.2, 0.09, 0.09], dtype=np.float32)
    residual = np.array([3.0, 6.0, 12.0, 0.3, 0.4], dtype=np.float32)
    out = beyond_rounding(dist, residual)
    assert np.allclose(out[:3], dist[:3], rtol=0.01)  # rounding is a few % of these
    assert out[3] == 0 and out[4] == 0  # residual at or below rounding: nothing beyond it
    assert (np.diff(beyond_rounding(np.full(50, 0.1), np.linspace(0.5, 20, 50))) >= 0).all()


def test_clip_shares_count_both_ends_and_take_no_images() -> None:
    """The per-image numbers behind `clipping_mismatch` (memoised by content on a rescan, when
    every image may be known already: no images at all)."""
    from recipe_core.scan.issues.pixel_match import clip_shares, clipping_mismatch

    images = np.full((3, 32, 32), 128, dtype=np.uint8)
    images[1, :8] = 255  # a quarter of its pixels clipped white
    images[2, :4] = 0  # an eighth black
    np.testing.assert_allclose(clip_shares(images), [[0, 0], [0.25, 0], [0, 0.125]])
    assert clip_shares(images[:0]).shape == (0, 2)
    got = clipping_mismatch(images, np.array([0, 0, 1]), np.array([1, 2, 2]))
    assert got.tolist() == [True, True, True]
    asked = []
    shares_of = lambda rows: asked.append(rows.tolist()) or clip_shares(images[rows])  # noqa: E731
    assert clipping_mismatch(images, np.array([0]), np.array([1]), shares_of).tolist() == [True]
    assert asked == [[0, 1]]  # each image of the pairs once
    assert not clipping_mismatch(images, np.array([0]), np.array([0])).any()


@pytest.mark.parametrize(("h", "w", "s"), [(32, 32, 2), (12, 20, 3), (7, 5, 1)])
def test_the_cross_products_are_the_plain_sums_over_each_shifts_overlap(
    h: int, w: int, s: int
) -> None:
    """Every shift's sum of a[y + dy, x + dx] * b[y, x] over the overlap, as the padded,
    flattened dot products compute it (rows of a run into b's zero padding, never into b)."""
    from recipe_core.scan.issues.pixel_match import _numpy_cross_products, shifts

    rng = np.random.default_rng(h * w + s)
    images = rng.normal(size=(6, h, w)).astype(np.float32)
    a, b = np.array([0, 1, 2, 5]), np.array([3, 4, 2, 0])
    got = _numpy_cross_products(images, s)(a, b)
    for p, (i, j) in enumerate(zip(a, b, strict=True)):
        for col, (dy, dx) in enumerate(shifts(s)):
            want = sum(
                float(images[i, y + dy, x + dx]) * float(images[j, y, x])
                for y in range(h) for x in range(w)
                if 0 <= y + dy < h and 0 <= x + dx < w
            )  # fmt: skip
            assert got[p, col] == pytest.approx(want, rel=1e-4, abs=1e-3), (p, dy, dx)
