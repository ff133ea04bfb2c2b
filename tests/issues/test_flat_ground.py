"""outlier_features.flat_ground: the share of a thumbnail's pixels at its commonest grey level,
against a plain per-image count; and the drawn kind stays quiet where every image is drawn."""

from __future__ import annotations

import numpy as np

from recipe_core.scan.issues import outlier_features as of


def test_flat_ground_is_the_commonest_levels_share() -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (of.GROUND_CHUNK + 7, 32, 32)).astype(np.uint8)
    pixels[3, :20] = 255  # 640 of 1024 pixels at one level
    pixels[-1] = 9
    want = np.array([np.bincount(p.ravel(), minlength=256).max() / p.size for p in pixels])
    got = of.flat_ground(pixels)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert got[3] >= 640 / 1024 and got[-1] == 1.0
    assert of.flat_ground(pixels[:0]).shape == (0,)


def test_a_kind_held_by_most_images_is_not_rare() -> None:
    drawn = np.ones(200, dtype=bool)
    drawn[:3] = False
    kinds = [of.Kind("drawn", "photographic", drawn, both_ways=False)]
    assert of.rare_kinds(kinds, np.arange(200), k=20) == []  # only the drawn side may be rare
    kinds = [of.Kind("drawn", "photographic", ~drawn, both_ways=False)]
    ((name, _, members),) = of.rare_kinds(kinds, np.arange(200), k=20)
    assert name == "drawn" and members.sum() == 3
