"""Live curves draw at most ~MAX_POINTS points per trace, yet never hide what a curve shows:
spikes, collapses, NaN/inf and the live end survive decimation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from app.curves import MAX_POINTS, decimate


def test_short_curves_are_drawn_whole() -> None:
    kept, bucket = decimate(pd.Series(np.arange(MAX_POINTS, dtype=float)))
    assert bucket == 1 and kept.tolist() == list(range(MAX_POINTS))


def test_long_curve_keeps_spike_dip_nan_and_last_point() -> None:
    rng = np.random.default_rng(0)
    loss = np.exp(-np.arange(50_000) / 9_000) + 0.01 * rng.random(50_000)
    loss[777], loss[31_337], loss[40_001], loss[49_000] = 9.0, -3.0, np.nan, np.inf
    kept, bucket = decimate(pd.Series(loss))
    assert bucket > 1 and len(kept) <= MAX_POINTS + 4
    assert {777, 31_337, 40_001, 49_000, 49_999} <= set(kept.tolist())
    assert np.all(np.diff(kept) > 0)  # in step order, no repeats


@settings(max_examples=60, deadline=None)
@given(
    hs.lists(hs.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=3000),
    hs.integers(min_value=4, max_value=400),
)
def test_every_bucket_keeps_its_extremes(values: list[float], max_points: int) -> None:
    v = np.asarray(values, dtype=np.float64)
    kept, size = decimate(pd.Series(v), max_points=max_points)
    assert np.all(np.diff(kept) > 0) and kept[-1] == len(v) - 1
    assert len(kept) <= max(len(v) if len(v) <= max_points else 0, max_points + 1) + np.sum(
        ~np.isfinite(v)
    )
    for start in range(0, len(v), size):  # each bucket's finite min and max are drawn
        chunk = v[start : start + size]
        finite = chunk[np.isfinite(chunk)]
        drawn = v[kept[(kept >= start) & (kept < start + size)]]
        if finite.size:
            assert finite.min() in drawn and finite.max() in drawn
    assert set(np.flatnonzero(~np.isfinite(v))) <= set(kept.tolist())


def test_compare_draws_a_short_run_and_always_shows_the_legend() -> None:
    """A run with one val point was invisible as a bare line and plotly hides the legend of a
    lone trace: every run is in the legend, short runs get markers, an empty one says so."""
    from app.curves import overlay_figure

    def rows(steps: list[int]) -> pd.DataFrame:
        return pd.DataFrame({"step": steps, "split": "val", "loss": [1.0 / (s + 1) for s in steps]})

    long_run = rows(list(range(0, 1000, 10)))
    fig = overlay_figure({"long": long_run, "short": rows([10]), "new": rows([])},
                         metric="loss", split="val", log=False)  # fmt: skip
    assert fig.layout.showlegend is True
    modes = {t.name: t.mode for t in fig.data}
    assert modes == {"long": "lines", "short": "lines+markers",
                     "new (no val points yet)": "lines+markers"}  # fmt: skip
    assert list(fig.data[1].x) == [10]


def test_debiased_ema_matches_tensorboard_reference() -> None:
    import numpy as np
    import pandas as pd

    from app.curves import debiased_ema

    values, weight = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0], 0.6
    expected, last = [], 0.0
    for i, v in enumerate(values, start=1):  # TensorBoard's smoothing, written out
        last = last * weight + (1 - weight) * v
        expected.append(last / (1 - weight**i))
    got = debiased_ema(pd.Series(values), weight)
    assert np.allclose(got.to_numpy(), expected)
    assert got.iloc[0] == pytest.approx(3.0)  # debiased: the first point is itself, not 0.4 * 3


def test_overlay_colours_are_okabe_ito() -> None:
    from app.curves import OVERLAY_COLORS
    from app.palette import OKABE_ITO

    assert tuple(OVERLAY_COLORS) == OKABE_ITO
    assert "#d62728" not in OVERLAY_COLORS and "#2ca02c" not in OVERLAY_COLORS
