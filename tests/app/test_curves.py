"""Live curves draw at most ~MAX_POINTS points per trace, yet never hide what a curve shows:
spikes, collapses, NaN/inf and the live end survive decimation."""

from __future__ import annotations

import math

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


def test_debiased_ema_skips_nan_and_inf_like_the_reference() -> None:
    from app.curves import debiased_ema

    values, weight = [math.nan, 2.0, math.inf, 4.0, math.nan, 1.0], 0.5
    expected, last, n = [], 0.0, 0
    for v in values:  # the reference: non-finite values leave the average where it was
        if math.isfinite(v):
            n += 1
            last = last * weight + (1 - weight) * v
        expected.append(last / (1 - weight**n) if n else math.nan)
    got = debiased_ema(pd.Series(values), weight).to_numpy()
    assert np.allclose(got, expected, equal_nan=True)
    with pytest.raises(ValueError, match=r"outside \[0, 1\)"):
        debiased_ema(pd.Series(values), 1.0)


def frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def test_chart_metrics_lists_every_logged_numeric_column_loss_first() -> None:
    from app.curves import chart_metrics

    rows = frame([{"step": 0, "split": "train", "wall_time": 1.0, "grad_norm": 2.0, "loss": 1.0,
                   "lr": np.nan, "note": "x", "accuracy": 0.5}])  # fmt: skip
    other = frame([{"step": 0, "split": "val", "loss": 1.0, "bleu": 3.0}])
    assert chart_metrics(rows, other) == ["loss", "accuracy", "grad_norm", "bleu"]


def test_views_are_checked() -> None:
    from app.curves import ChartView

    with pytest.raises(ValueError, match="outside"):
        ChartView(smoothing=0.995 + 0.01)
    with pytest.raises(ValueError, match="not one of"):
        ChartView(x="epoch")


def test_smoothed_figure_keeps_raw_faint_and_the_diverged_tail() -> None:
    from app.curves import ChartView, curve_figures, debiased_ema

    loss = [3.0 / (s + 1) for s in range(25)] + [math.nan, math.nan]
    rows = frame([{"step": s, "split": "train", "loss": v, "wall_time": 100.0 + 2 * s}
                  for s, v in enumerate(loss)] + [{"step": 1, "split": "val", "loss": 2.2,
                  "wall_time": 103.0}])  # fmt: skip
    view = ChartView(metrics=("loss",), smoothing=0.5, x="wall time")
    fig = curve_figures(rows, view, run_id="r")["loss"]
    by_name = {t.name: t for t in fig.data}
    assert set(by_name) == {"train", "train, smoothed 0.5", "val"}  # one val point: raw
    raw = by_name["train"]
    assert raw.opacity < 0.5 and raw.showlegend is False
    assert list(raw.x) == [2.0 * s for s in range(27)]  # the NaN tail is drawn too
    smooth = list(by_name["train, smoothed 0.5"].y)
    expected = debiased_ema(pd.Series(loss[:25]), 0.5).tolist()
    assert np.allclose(smooth[:25], expected) and all(math.isnan(v) for v in smooth[25:])
    assert fig.layout.xaxis.title.text.startswith("wall time")
    assert fig.layout.yaxis.type is None
    logged = curve_figures(rows, ChartView(metrics=("loss",), log_y=True), run_id="r")["loss"]
    assert logged.layout.yaxis.type == "log"


def test_log_axis_says_what_it_cannot_draw_and_sparse_metrics_stay_lines() -> None:
    from app.curves import ChartView, curve_figures

    rows = frame([{"step": s, "split": "train", "margin": float(s - 1) if s % 2 else None}
                  for s in range(6)])  # fmt: skip
    fig = curve_figures(rows, ChartView(metrics=("margin",), smoothing=0, log_y=True),
                        run_id="r")["margin"]  # fmt: skip
    assert list(fig.data[0].x) == [1, 3, 5]  # steps without the metric are no gaps
    assert "1 value <= 0 not drawn" in fig.layout.title.text
