"""embedding_map against a trusted answer: scikit-learn's exact PCA (up to each axis' sign)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA

from recipe_core.errors import ConfigError
from recipe_core.explore.embedding_map import embedding_map


def blobs(n: int = 400, d: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 5, (3, d))
    return (centers[rng.integers(0, 3, n)] + rng.normal(0, 1, (n, d))).astype(np.float32)


def test_map_matches_sklearn_pca_and_marks_invalid_rows() -> None:
    x = blobs()
    valid = np.ones(len(x), dtype=bool)
    valid[[3, 50]] = False
    m = embedding_map(x, valid=valid, block=64)  # several blocks
    want = PCA(n_components=2, svd_solver="full").fit(x[valid])
    ref = want.transform(x[valid])
    got = m.xy[valid].astype(np.float64)
    signs = np.sign((got * ref).sum(axis=0))
    assert np.allclose(got, ref * signs, atol=1e-3)
    assert np.allclose(m.explained, want.explained_variance_ratio_, atol=1e-6)
    assert np.isnan(m.xy[~valid]).all()


def test_map_is_deterministic_and_fits_on_a_subsample() -> None:
    x = blobs(n=2000)
    valid = np.ones(len(x), dtype=bool)
    a = embedding_map(x, valid=valid, max_fit=300)
    b = embedding_map(x.copy(), valid=valid, max_fit=300)
    assert a.n_fit == 300 and np.array_equal(a.xy, b.xy)
    full = embedding_map(x, valid=valid)
    # the three clusters dominate: the subsample finds nearly the same plane
    assert abs(np.corrcoef(a.xy[:, 0], full.xy[:, 0])[0, 1]) > 0.99


def test_degenerate_inputs() -> None:
    x = blobs(n=5)
    assert np.isnan(embedding_map(x, valid=np.zeros(5, dtype=bool)).xy).all()
    line = embedding_map(x[:, :1], valid=np.ones(5, dtype=bool))
    assert np.all(line.xy[:, 1] == 0) and line.explained[0] == pytest.approx(1.0)
    with pytest.raises(ConfigError, match=r"expected \(N, D\)"):
        embedding_map(x[:, 0], valid=np.ones(5, dtype=bool))
