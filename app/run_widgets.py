"""Renderers for training runs: the run picker, status and failure, live curves, run
comparison, and the probe batch's prediction dynamics (thumbnails with probability bars, the
p(label) heatmap). Input widgets' functions end in `_ui` and return what the user chose.

Run names, class names and errors are data, never markup: they pass through `md` where
Streamlit renders Markdown and through `plot_text` in plotly (see app/widgets.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app import pictures, run_state
from app.curves import (
    FIRST_METRICS,
    X_AXES,
    ChartView,
    chart_metrics,
    has_wall_time,
    overlay_figure,
)
from app.palette import SEQUENTIAL, VERMILLION
from app.widgets import md, plot_text
from recipe_core.runs import RunStatus

if TYPE_CHECKING:
    from streamlit.delta_generator import DeltaGenerator

    from recipe_core.dynamics import Dynamics

STATE_ICONS = {"queued": "⏳", "running": "🏃", "succeeded": "✅", "failed": "🚫", "cancelled": "⏹️",
               "unknown": "❓"}  # fmt: skip
THUMB_PX = 64  # probe thumbnails are upscaled (nearest) to at least this many pixels
TOP_K = 3  # probability bars per probe sample


def run_label(status: RunStatus) -> str:
    """One run as plain text (selectbox options are not Markdown)."""
    return f"{STATE_ICONS.get(status.state, '')} {status.name} · {status.state} · {status.run_id}"


def run_picker_ui(statuses: Sequence[RunStatus], *, key: str) -> RunStatus:
    """Choose one run; the choice is shared by the Runs and Prediction dynamics pages."""
    by_id = {s.run_id: s for s in statuses}
    run_state.run_choice(key, list(by_id))
    run_id = st.selectbox(
        "Run",
        list(by_id),
        key=key,
        format_func=lambda r: run_label(by_id[r]),
        on_change=run_state.run_picked,
        args=(key,),
    )
    return by_id[str(run_id)]


def runs_table(statuses: Sequence[RunStatus]) -> None:
    frame = pd.DataFrame(
        {
            "run": [s.name for s in statuses],
            "state": [f"{STATE_ICONS.get(s.state, '')} {s.state}" for s in statuses],
            "step": [s.step for s in statuses],
            "device": [s.device for s in statuses],
            "started (UTC)": [s.started[:19].replace("T", " ") for s in statuses],
            "reason": [s.error for s in statuses],
            "run id": [s.run_id for s in statuses],
        }
    )
    st.dataframe(frame, hide_index=True, width="stretch", height=min(320, 38 + 35 * len(frame)))


# what an unfinished run's stage (runs.status.STAGES) means to the person waiting for it
STAGE_TEXT = {"": "waiting for the executor", "spawning": "spawning the job process",
              "starting": "importing PyTorch", "loading data": "loading data",
              "building model": "building the model"}  # fmt: skip


def status_banner(status: RunStatus, *, step: int | None = None, total: int | None = None) -> None:
    """What happened to the run; for failed and cancelled runs, why (their metrics stay shown);
    for a queued or running one, the stage it is at, from its first second. `step`: the last
    step in its metrics, fresher than status.json's once-a-second count; `total`: the steps it
    runs for (default: its config's)."""
    at = status.step if step is None else step
    if status.state == "failed":
        st.error(f"**failed** at step {at}: {md(status.error)}", icon="🚫")
    elif status.state == "cancelled":
        st.warning(f"**cancelled** at step {at}: {md(status.error)}", icon="⏹️")
    elif status.state in ("queued", "running"):
        if status.stage == "training" or (status.state == "running" and not status.stage):
            limit = total if total is not None else run_state.run_config(status.run_id).get("steps")
            doing = f"step {at} of {limit}" if isinstance(limit, int) else f"step {at}"
        else:
            doing = STAGE_TEXT.get(status.stage, md(status.stage))
        st.info(f"**{status.state}**: {doing}", icon=STATE_ICONS[status.state])
    elif status.state == "unknown":
        st.warning(f"**state unknown**: {md(status.error)}", icon="❓")


def skipped_rows_warning(skipped: Mapping[str, int]) -> None:
    """Say how many rows of the run's files were unreadable (the curves leave them out)."""
    lost = [f"{n} in {name}" for name, n in skipped.items() if n]
    if lost:
        st.warning(f"Skipped unreadable rows ({', '.join(lost)}): lines that are not JSON "
                   "objects with the fields a run writes. The rest of the run is shown.",
                   icon="⚠️")  # fmt: skip


def chart_view_ui(
    offered: list[str], *, key: str, wall_time: bool, default: tuple[str, ...] = FIRST_METRICS
) -> ChartView:
    """The chart controls: which logged metrics (every numeric column, custom ones too),
    smoothing, log y and the x axis; wall time only when the rows carry one."""
    pick, smooth, log, axis = st.columns([4, 2, 1, 2], vertical_alignment="bottom")
    run_state.chart_choice(f"{key}_metrics", offered, list(default))
    metrics = pick.multiselect(
        "Metrics", offered, key=f"{key}_metrics", help="Every numeric column in metrics.jsonl."
    )
    smoothing, log_y, x = _shared_controls((smooth, log, axis), key=key, wall_time=wall_time)
    return ChartView(metrics=tuple(metrics), smoothing=smoothing, log_y=log_y, x=x)


def _shared_controls(
    columns: Sequence[DeltaGenerator], *, key: str, wall_time: bool
) -> tuple[float, bool, str]:
    """Smoothing, log y and x axis, for the Runs page and Compare alike."""
    smooth, log, axis = columns
    smoothing = smooth.slider("Smoothing", 0.0, 0.99, 0.6, step=0.01, key=f"{key}_smoothing",
                              help="TensorBoard's debiased exponential moving average; the raw "
                              "values stay drawn, faint. 0: raw values only.")  # fmt: skip
    log_y = log.toggle("Log y", key=f"{key}_log")
    axes = list(X_AXES) if wall_time else ["step"]
    run_state.option_choice(f"{key}_x", axes, "step")
    why = None if wall_time else "These rows carry no wall_time: step only."
    x = axis.radio("X axis", axes, horizontal=True, key=f"{key}_x", help=why)
    return float(smoothing), bool(log_y), str(x)


def metric_curves(metrics: pd.DataFrame, *, run_id: str, view: ChartView) -> None:
    """One chart per chosen metric, two per row: every split, smoothed as `view` says."""
    figures = list(run_state.curve_figures(run_id, metrics, view).items())
    for start in range(0, len(figures), 2):
        for column, (metric, fig) in zip(st.columns(2), figures[start : start + 2], strict=False):
            column.plotly_chart(fig, width="stretch", key=f"curve_{metric}")


def overlay_controls_ui(
    curves: Mapping[str, pd.DataFrame], *, key: str
) -> tuple[str, str, float, bool, str]:
    """Compare's controls: one metric (any the chosen runs logged), the split, smoothing, log
    y and the x axis (wall time when every run's rows carry one)."""
    frames = list(curves.values())
    offered = chart_metrics(*frames) or ["loss"]
    splits = sorted({str(s) for f in frames for s in f["split"].dropna().unique()}) or ["train"]
    a, b, c, d, e = st.columns([2, 2, 2, 1, 2], vertical_alignment="bottom")
    run_state.option_choice(f"{key}_metric", offered, "loss")
    metric = a.selectbox("Metric", offered, key=f"{key}_metric")
    run_state.option_choice(f"{key}_split", splits, "train")
    split = b.radio("Split", splits, horizontal=True, key=f"{key}_split")
    wall = all(has_wall_time(f) for f in frames)
    smoothing, log_y, x = _shared_controls((c, d, e), key=key, wall_time=wall)
    return str(metric), str(split), smoothing, log_y, x


def overlay_curves(
    curves: Mapping[str, pd.DataFrame],
    *,
    metric: str,
    split: str,
    log: bool,
    smoothing: float = 0.0,
    x: str = "step",
) -> None:
    """One line per run (legend: run label) for one metric and split."""
    fig = overlay_figure(curves, metric=metric, split=split, log=log, smoothing=smoothing, x=x)
    st.plotly_chart(fig, width="stretch", key="compare_curves")


def config_changes(parent: Mapping[str, object], child: Mapping[str, object]) -> list[str]:
    """Config fields whose values differ between two runs, in the parent's field order."""
    keys = list(parent) + [k for k in child if k not in parent]
    return [k for k in keys if parent.get(k) != child.get(k)]


def config_diff(
    parent: str, configs: Mapping[str, Mapping[str, object]], *, search: str = ""
) -> None:
    """The fields each run changed against `parent` (a key of `configs`): one row per field.
    `search`: the id of the random search all the runs are trials of (their fields vary
    together by design: one note instead of a warning per run)."""
    base = configs[parent]
    changed = {
        label: config_changes(base, cfg) for label, cfg in configs.items() if label != parent
    }
    fields = [f for f in base if any(f in c for c in changed.values())]
    fields += sorted({f for c in changed.values() for f in c} - set(fields))
    if not fields:
        st.info("The runs share the parent's configuration exactly.", icon="🟰")
        return
    table = pd.DataFrame({"field": fields, f"parent: {parent}": [str(base.get(f)) for f in fields]})
    for label, cfg in configs.items():
        if label != parent:
            table[label] = [str(cfg.get(f)) if f in changed[label] else "" for f in fields]
    st.dataframe(table, hide_index=True, width="stretch")
    if search:
        st.info(
            f"These runs are trials of search {md(search)}: each draws every searched field at "
            "once, by design. The search's chart shows each field against the metric; to know "
            "what one change does, start a run that changes only it.",
            icon="🔎",
        )
        return
    for label, fields_changed in changed.items():
        if len(fields_changed) == 1:
            st.success(
                f"{md(label)} changes one thing, {md(fields_changed[0])}: any difference "
                "in its curves comes from that change (or from noise).",
                icon="✅",
            )
        elif len(fields_changed) > 1:
            st.warning(
                f"{md(label)} changes {len(fields_changed)} things at once "
                f"({md(', '.join(fields_changed))}): when it does better or worse you cannot "
                "tell which change did it. Complexify one thing at a time.",
                icon="⚠️",
            )


# --- prediction dynamics -----------------------------------------------------------------------


def class_name(dyn: Dynamics, index: int) -> str:
    if index < 0:
        return "(no label)"
    return dyn.classes[index] if index < len(dyn.classes) else str(index)


def probe_grid(
    dyn: Dynamics, images: np.ndarray, t: int, samples: Sequence[int], *, columns: int = 8
) -> None:
    """Probe samples at snapshot `t`: thumbnail, label vs prediction, top-class bars (✓ = label)."""
    probs = dyn.probs[t]  # (P, C)
    for start in range(0, len(samples), columns):
        for cell, i in zip(st.columns(columns), samples[start : start + columns], strict=False):
            with cell:
                if i < len(images):
                    pictures.image(upscale(images[i]), width="stretch")
                _prediction_bars(dyn, probs[i], int(dyn.labels[i]), i)


def _prediction_bars(dyn: Dynamics, probs: np.ndarray, label: int, i: int) -> None:
    predicted = int(probs.argmax())
    mark = "✓" if predicted == label else "✗"
    st.caption(
        f"#{i} {mark} label {md(class_name(dyn, label))} · "
        f"predicted {md(class_name(dyn, predicted))}"
    )
    for c in np.argsort(-probs, kind="stable")[:TOP_K]:
        tick = "✓ " if c == label else ""
        st.progress(float(probs[c]), text=f"{tick}{md(class_name(dyn, int(c)))}: {probs[c]:.2f}")


def upscale(image: np.ndarray) -> np.ndarray:
    """(C, H, W) uint8 -> (H', W[, C]) nearest-neighbour upscaled, so small images stay sharp."""
    factor = max(1, THUMB_PX // max(image.shape[1:]))
    pixels = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    return np.repeat(np.repeat(pixels, factor, axis=0), factor, axis=1)


def learning_heatmap(dyn: Dynamics, order: Sequence[int], step: int) -> None:
    """Samples (rows, in `order`) x snapshots (columns), coloured by p(label); a line marks
    the slider's step."""
    p_label = dyn.true_class_prob()[:, list(order)].T  # (P, T)
    rows = [f"#{i} · {plot_text(class_name(dyn, int(dyn.labels[i])))}" for i in order]
    fig = go.Figure(
        go.Heatmap(
            z=p_label,
            x=dyn.steps,
            y=rows,
            zmin=0,
            zmax=1,
            colorscale=SEQUENTIAL,  # colour-blind safe (red/green was not), dark = low p
            colorbar={"title": {"text": "p(label)"}},
            hovertemplate="step %{x}<br>%{y}<br>p(label) = %{z:.2f}<extra></extra>",
        )
    )
    fig.add_vline(x=step, line={"color": VERMILLION, "width": 2, "dash": "dot"})  # dark and light
    fig.update_yaxes(type="category", autorange="reversed")
    fig.update_layout(
        height=min(900, 80 + 18 * len(rows)),
        xaxis_title="step",
        uirevision="heat",
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
    )
    st.plotly_chart(fig, width="stretch", key="dyn_heatmap")
