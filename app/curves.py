"""Plotly figures of training curves (built here, drawn by run_widgets): the live loss and
accuracy of one run, and the overlay of several. Per-step train values are noisy, so they are
drawn faint under their running mean; a long run is drawn from at most ~MAX_POINTS points per
trace that keep every bucket's extremes, so a five-figure step count still refreshes each second.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from app.palette import OKABE_ITO
from app.widgets import plot_text

SPLIT_STYLE = {  # per-step train values are noisy: faint, under their running mean
    "train": {"mode": "lines", "line": {"width": 1, "color": "rgba(0, 114, 178, 0.35)"}},
    "val": {"mode": "lines+markers", "line": {"width": 2.5, "color": OKABE_ITO[1]}},
}
SMOOTH_STYLE = {"mode": "lines", "line": {"width": 2, "color": OKABE_ITO[0]}}
OVERLAY_COLORS = list(OKABE_ITO)  # colour-blind safe (the old tab10 paired red with green)
SMOOTH_POINTS = 30  # the running mean spans 1/30 of the steps logged (no smoothing below 3)
MAX_POINTS = 1200  # points per drawn curve: ~2 per pixel of a half-width chart, sent each second


def curve_figures(
    metrics: pd.DataFrame, *, run_id: str, log_loss: bool, max_points: int | None = MAX_POINTS
) -> dict[str, go.Figure]:
    """Loss and accuracy against step, train (every step, under its running mean) and val
    (each evaluation); long runs are drawn from each bucket's min and max (see `decimate`;
    `max_points=None` draws every point)."""
    limit, figures = max_points or max(len(metrics), 1), {}
    for metric in ("loss", "accuracy"):
        fig, title = go.Figure(), metric
        for split, style in SPLIT_STYLE.items():
            split_rows = metrics[metrics["split"] == split]
            mean, window = running_mean(split_rows[metric])
            kept, bucket = decimate(split_rows[metric], max_points=limit)
            if split == "train" and window == 1:
                style = SMOOTH_STYLE  # too few steps to smooth: the raw curve is the curve
            if len(split_rows):
                x, y = split_rows["step"].iloc[kept], split_rows[metric].iloc[kept]
                fig.add_scatter(x=x, y=y, name=split, **style)
            if split == "train" and window > 1:
                name = f"train, mean of {window} steps"
                fig.add_scatter(x=split_rows["step"].iloc[kept], y=mean.iloc[kept], name=name,
                                **SMOOTH_STYLE)  # fmt: skip
            if bucket > 1:
                title = f"{metric} (min and max of every {bucket} {split} steps drawn)"
        _layout(fig, title, run_id)
        if metric == "loss" and log_loss:
            _log_axis(fig, metrics[metric])
        figures[metric] = fig
    return figures


FEW_POINTS = 20  # a compared run with at most this many points is drawn with markers


def overlay_figure(
    curves: Mapping[str, pd.DataFrame], *, metric: str, split: str, log: bool
) -> go.Figure:
    """One line per run (legend: run label) for one metric and split; per-step train values
    are drawn as their running mean, or the noise hides the difference between runs."""
    fig, title, values = go.Figure(), f"{split} {metric}", []
    for label, metrics in curves.items():
        rows = metrics[metrics["split"] == split]
        y, window = running_mean(rows[metric]) if split == "train" else (rows[metric], 1)
        if window > 1:
            title = f"{split} {metric} (running mean over 1/{SMOOTH_POINTS} of each run)"
        kept, _ = decimate(y)
        name = plot_text(label) if len(rows) else f"{plot_text(label)} (no {split} points yet)"
        # a short run's one or two points are invisible as a bare line: give them markers
        mode = "lines+markers" if len(kept) <= FEW_POINTS else "lines"
        fig.add_scatter(x=rows["step"].iloc[kept], y=y.iloc[kept], name=name, mode=mode)
        values.append(y)
    _layout(fig, title, "compare")
    fig.update_layout(height=380, colorway=OVERLAY_COLORS, showlegend=True,
                      legend={"yanchor": "top", "y": -0.2, "xanchor": "left", "x": 0})  # fmt: skip
    if log and metric == "loss" and values:
        _log_axis(fig, pd.concat(values))
    return fig


def running_mean(values: pd.Series) -> tuple[pd.Series, int]:
    """The mean of the last `window` values at each step (window: 1/SMOOTH_POINTS of them)."""
    window = len(values) // SMOOTH_POINTS
    if window < 3:
        return values, 1
    return values.rolling(window, min_periods=1).mean(), window


def decimate(values: pd.Series, *, max_points: int = MAX_POINTS) -> tuple[np.ndarray, int]:
    """Positions of at most ~`max_points` of `values` that draw the same curve at chart width,
    and the bucket size (1: all of them). Each bucket of consecutive values keeps its minimum
    and maximum, so a loss spike or collapse is never averaged away, plus every NaN/inf (a
    diverging run must show it) and the last value (the live end of the curve)."""
    n = len(values)
    if n <= max_points:
        return np.arange(n), 1
    size = math.ceil(n / (max_points // 2))
    v = values.to_numpy(dtype=np.float64)
    padded = np.full(math.ceil(n / size) * size, np.nan)
    padded[:n] = v
    finite = np.isfinite(padded).reshape(-1, size)  # (buckets, size)
    grid = padded.reshape(-1, size)
    start = np.arange(len(grid)) * size
    low = start + np.where(finite, grid, np.inf).argmin(axis=1)
    high = start + np.where(finite, grid, -np.inf).argmax(axis=1)
    odd = np.flatnonzero(~np.isfinite(v))
    kept = np.unique(np.concatenate([low, high, odd, [n - 1]]))
    return kept[kept < n], size


def _log_axis(fig: go.Figure, values: pd.Series) -> None:
    """Log y axis with readable ticks: 1-2-5 per decade over a few decades, else 1 per decade."""
    finite = values[np.isfinite(values) & (values > 0)]
    if finite.empty:
        return
    low, high = math.floor(math.log10(finite.min())), math.ceil(math.log10(finite.max()))
    mantissas = (1, 2, 5) if high - low <= 3 else (1,)
    ticks = [m * 10.0**e for e in range(low, high + 1) for m in mantissas]
    fig.update_yaxes(type="log", tickvals=ticks, tickformat=".0e" if high - low > 3 else "~g")


def _layout(fig: go.Figure, title: str, revision: str) -> None:
    # uirevision: live updates keep the user's zoom and hidden traces
    fig.update_layout(
        title=title,
        height=300,
        xaxis_title="step",
        uirevision=revision,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1},
    )


def debiased_ema(values: pd.Series, weight: float) -> pd.Series:
    """TensorBoard's smoothing: an exponential moving average with weight `weight` in [0, 1),
    divided by 1 - weight**n so the first points are not pulled towards zero."""
    if not 0 <= weight < 1:
        raise ValueError(f"smoothing weight {weight} is outside [0, 1); pick e.g. 0.6")
    out, last, n = [], 0.0, 0
    for value in values.astype(float):
        if math.isfinite(value):
            n += 1
            last = last * weight + (1 - weight) * value
        out.append(last / (1 - weight**n) if n else math.nan)
    return pd.Series(out, index=values.index)
