"""Plotly figures of training curves (built here, drawn by run_widgets): the charts of one run
(any logged metric, every split) and the overlay of several runs. The Runs page's controls
are a `ChartView`: smoothing (TensorBoard's debiased EMA, the raw line kept faint behind it),
log y, and step or wall time on x. A long run is drawn from at most ~MAX_POINTS points per
trace that keep every bucket's extremes, so a five-figure step count still refreshes live.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from app.palette import OKABE_ITO
from app.widgets import plot_text

OVERLAY_COLORS = list(OKABE_ITO)  # colour-blind safe (the old tab10 paired red with green)
MAX_POINTS = 1200  # points per drawn curve: ~2 per pixel of a half-width chart, sent each second
FEW_POINTS = 20  # a curve with at most this many points is drawn with markers
RAW_OPACITY = 0.3  # the raw values behind a smoothed line: there, but not the eye's first stop
X_AXES = {"step": "step", "wall time": "wall time (s since the run's first row)"}
NOT_METRICS = ("step", "wall_time")  # the x axes, not something to chart
FIRST_METRICS = ("loss", "accuracy")  # listed first, the rest in the order the run logged them


@dataclass(frozen=True)
class ChartView:
    """How run curves are drawn (the Runs page's chart controls)."""

    metrics: tuple[str, ...] = FIRST_METRICS  # metrics.jsonl columns, one chart each
    smoothing: float = 0.6  # debiased EMA weight in [0, 1); 0 draws the raw values alone
    log_y: bool = False
    x: str = "step"  # a key of X_AXES; "wall time": seconds since the run's first row

    def __post_init__(self) -> None:
        if not 0 <= self.smoothing < 1:
            raise ValueError(f"smoothing {self.smoothing} is outside [0, 1); pick e.g. 0.6")
        if self.x not in X_AXES:
            raise ValueError(f"x axis {self.x!r} is not one of {list(X_AXES)}")


def chart_metrics(*frames: pd.DataFrame) -> list[str]:
    """Every numeric column the runs logged with at least one value (loss and accuracy first):
    what the metric picker offers, custom script metrics included."""
    found: list[str] = []
    for frame in frames:
        for column in frame.columns:
            values = frame[column]
            numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(
                values
            )
            if (
                numeric
                and column not in NOT_METRICS
                and column not in found
                and values.notna().any()
            ):
                found.append(str(column))
    return sorted(found, key=lambda m: FIRST_METRICS.index(m) if m in FIRST_METRICS else 2)


def x_values(metrics: pd.DataFrame, x: str) -> pd.Series:
    """The x of every row: its step, or its wall_time in seconds since the run's first row
    (NaN for rows logged without one)."""
    if x == "step":
        return metrics["step"]
    wall = pd.to_numeric(metrics.get("wall_time", pd.Series(np.nan, index=metrics.index)),
                         errors="coerce")  # fmt: skip
    return wall - wall.min()


def has_wall_time(metrics: pd.DataFrame) -> bool:
    return "wall_time" in metrics and bool(
        pd.to_numeric(metrics["wall_time"], errors="coerce").notna().any()
    )


def curve_figures(
    metrics: pd.DataFrame,
    view: ChartView = ChartView(),
    *,
    run_id: str,
    max_points: int | None = MAX_POINTS,
    log_loss: bool | None = None,
) -> dict[str, go.Figure]:
    """One figure per metric of `view`, every split the run logged it for (train per step,
    val per evaluation, a script's own splits). Long runs are drawn from each bucket's min and
    max (see `decimate`; `max_points=None` draws every point). `log_loss`, when given, sets the
    log axis (the old signature, kept for benchmarks/runs_page_refresh.py)."""
    log_y = view.log_y if log_loss is None else log_loss
    limit = max_points or max(len(metrics), 1)
    xs = x_values(metrics, view.x)
    splits = [s for s in pd.unique(metrics["split"]) if isinstance(s, str)]
    figures = {}
    for metric in view.metrics:
        fig, notes = go.Figure(), []
        values = metrics[metric] if metric in metrics else pd.Series(np.nan, index=metrics.index)
        for i, split in enumerate(splits):
            rows = _drawn_rows(metrics["split"] == split, values) & xs.notna()
            if not rows.any():
                continue
            bucket = _add_series(fig, xs[rows], values[rows], name=split,
                                 colour=OKABE_ITO[i % len(OKABE_ITO)],
                                 smoothing=view.smoothing, max_points=limit)  # fmt: skip
            if bucket > 1:
                notes.append(f"min and max of every {bucket} {split} points drawn")
        if log_y:
            notes += _log_axis(fig, values)
        _layout(fig, metric + (f" ({'; '.join(notes)})" if notes else ""), run_id, view.x)
        figures[metric] = fig
    return figures


def overlay_figure(
    curves: Mapping[str, pd.DataFrame],
    *,
    metric: str,
    split: str,
    log: bool,
    smoothing: float = 0.0,
    x: str = "step",
) -> go.Figure:
    """One line per run (legend: run label, always shown, even for one run) for one metric and
    split, each in its own Okabe-Ito colour, smoothed like the Runs page (one line per run:
    several runs' faint raw values would hide the difference between them)."""
    ChartView(smoothing=smoothing, x=x)  # the same checks as the Runs page's controls
    fig, values = go.Figure(), []
    for i, (label, metrics) in enumerate(curves.items()):
        xs = x_values(metrics, x)
        column = metrics[metric] if metric in metrics else pd.Series(np.nan, index=metrics.index)
        rows = _drawn_rows(metrics["split"] == split, column) & xs.notna()
        name = plot_text(label) if rows.any() else f"{plot_text(label)} (no {split} points yet)"
        _add_series(fig, xs[rows], column[rows], name=name, colour=OVERLAY_COLORS[i % 8],
                    smoothing=smoothing, max_points=MAX_POINTS, raw=False)  # fmt: skip
        values.append(column[rows])
    smoothed = f" (smoothed {smoothing:g})" if smoothing else ""
    _layout(fig, f"{split} {metric}{smoothed}", "compare", x)
    fig.update_layout(height=380, colorway=OVERLAY_COLORS, showlegend=True,
                      legend={"yanchor": "top", "y": -0.2, "xanchor": "left", "x": 0})  # fmt: skip
    if log and values:
        _log_axis(fig, pd.concat(values))
    return fig


def _drawn_rows(in_split: pd.Series, values: pd.Series) -> pd.Series:
    """The split's rows that carry the metric, plus the NaN tail after its last value: a run
    that diverged logs NaN until it stops, and the curve must show where (NaN rows in between
    are steps that logged other metrics; drawn, they would cut a sparse metric's line)."""
    logged = in_split & values.notna()
    if not logged.any():
        return logged
    last = np.flatnonzero(logged.to_numpy())[-1]
    tail = in_split & (np.arange(len(values)) > last)
    return logged | tail


def _add_series(
    fig: go.Figure,
    x: pd.Series,
    y: pd.Series,
    *,
    name: str,
    colour: str,
    smoothing: float,
    max_points: int,
    raw: bool = True,
) -> int:
    """The values (faint behind their debiased EMA when smoothed, the legend naming the EMA;
    left out with `raw=False`) in one colour and legend group; returns the decimation bucket.
    A series of at most FEW_POINTS (val evaluations, a run just started) is drawn unsmoothed,
    with markers: one or two points are invisible as a bare line (Compare once showed a short
    run as nothing). The smoothed line breaks where a value is NaN or inf, as the raw one does."""
    kept, bucket = decimate(y, max_points=max_points)
    mode = "lines+markers" if len(kept) <= FEW_POINTS else "lines"
    drawn_x, values = x.iloc[kept], y.iloc[kept]
    if smoothing == 0 or len(y) <= FEW_POINTS:  # an EMA over a few evaluations only lags
        fig.add_scatter(x=drawn_x, y=values, name=name, mode=mode, legendgroup=name,
                        line={"color": colour, "width": 2})  # fmt: skip
        return bucket
    smooth = debiased_ema(y, smoothing).iloc[kept]  # smoothed over every point, then thinned
    smooth = smooth.where(np.isfinite(pd.to_numeric(values, errors="coerce")))
    if raw:
        fig.add_scatter(x=drawn_x, y=values, name=name, mode=mode, legendgroup=name,
                        showlegend=False, opacity=RAW_OPACITY,
                        line={"color": colour, "width": 1})  # fmt: skip
    fig.add_scatter(x=drawn_x, y=smooth, name=f"{name}, smoothed {smoothing:g}" if raw else name,
                    mode=mode, legendgroup=name, line={"color": colour, "width": 2.5})  # fmt: skip
    return bucket


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


def _log_axis(fig: go.Figure, values: pd.Series) -> list[str]:
    """Log y axis with readable ticks: 1-2-5 per decade over a few decades, else 1 per decade.
    Returns what the title should say about values a log axis cannot draw."""
    values = pd.to_numeric(values, errors="coerce")
    finite = values[np.isfinite(values) & (values > 0)]
    if finite.empty:
        return ["no positive values: linear scale"]
    low, high = math.floor(math.log10(finite.min())), math.ceil(math.log10(finite.max()))
    mantissas = (1, 2, 5) if high - low <= 3 else (1,)
    ticks = [m * 10.0**e for e in range(low, high + 1) for m in mantissas]
    fig.update_yaxes(type="log", tickvals=ticks, tickformat=".0e" if high - low > 3 else "~g")
    hidden = int((values <= 0).sum())
    return [f"{hidden} value{'s' if hidden > 1 else ''} <= 0 not drawn on log y"] if hidden else []


def _layout(fig: go.Figure, title: str, revision: str, x: str) -> None:
    # uirevision: live updates keep the user's zoom and hidden traces (a new x axis resets them)
    fig.update_layout(
        title=title,
        height=340,
        xaxis_title=X_AXES[x],
        uirevision=f"{revision}:{x}",
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        # below the chart: a title with notes would run into a legend above it
        legend={"orientation": "h", "yanchor": "top", "y": -0.25, "xanchor": "left", "x": 0},
    )


def debiased_ema(values: pd.Series, weight: float) -> pd.Series:
    """TensorBoard's smoothing: an exponential moving average with weight `weight` in [0, 1),
    divided by 1 - weight**n so the first points are not pulled towards zero. NaN and inf are
    skipped (the curve holds its last value there); NaN before the first finite value.
    pandas' adjusted EWM is exactly this normalised sum (vectorised: 50k steps in ~1 ms)."""
    if not 0 <= weight < 1:
        raise ValueError(f"smoothing weight {weight} is outside [0, 1); pick e.g. 0.6")
    finite = pd.to_numeric(values, errors="coerce").astype(float)
    finite = finite.where(np.isfinite(finite))
    smooth = finite.ewm(alpha=1 - weight, adjust=True, ignore_na=True).mean()
    return smooth.ffill()
