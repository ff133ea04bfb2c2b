"""Prediction dynamics: the same probe images re-predicted every few steps. One step slider
moves every view together: thumbnails with their top predictions, the samples x snapshots
heatmap of p(label), and (for `overfit`) labels and predictions converging.

When each sample was learned and how often it was forgotten come from the engine
(`recipe_core.dynamics.sample_summary`); this page only draws them.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app import palette, run_state, run_widgets, state
from app.widgets import plot_text
from recipe_core.dynamics import Dynamics, sample_summary

TICK_S = 1.0  # seconds between slider advances while playing, and between live refreshes
PER_PAGE = 16  # probe thumbnails drawn at once (each carries TOP_K bars)
THRESHOLDS = {"top": None, "p50": 0.5, "p90": 0.9}
THRESHOLD_TEXT = {
    "top": "its label is the top prediction",
    "p50": "p(label) ≥ 0.5",
    "p90": "p(label) ≥ 0.9",
}
SHOW = {
    "all": "all probe samples",
    "wrong": "wrong at this step",
    "forgotten": "forgotten at least once",
    "never": "not learned by the end",
}

st.title("🎞️ Prediction dynamics")
st.caption(
    "The same probe images, re-predicted every few steps. Steady climbs mean learning; "
    "predictions that flip back and forth suggest a learning rate that is too high; nothing "
    "moving means the net is stuck. Drag the step slider, or press play."
)


def dynamics_view(run_id: str, preset: str, play: bool) -> None:
    """Everything the step slider drives (a fragment: moving it redraws only this part)."""
    dyn = run_state.run_dynamics(run_id)
    if not len(dyn.steps):
        st.info(
            "No prediction snapshots yet: the first ones arrive with the first metrics "
            "(a run started with dynamics_every=0 records none)."
        )
        return
    steps = [int(s) for s in dyn.steps]
    key = f"dyn_step_{run_id}"
    run_state.follow_step(key, steps, play=play)
    step = int(st.select_slider("Training step", options=steps, key=key))
    t = steps.index(step)
    left, right = st.columns(2)
    rule = str(
        left.selectbox(
            "A sample counts as learned when",
            list(THRESHOLDS),
            format_func=THRESHOLD_TEXT.__getitem__,
            key="dyn_rule",
        )
    )
    show = str(right.selectbox("Show", list(SHOW), format_func=SHOW.__getitem__, key="dyn_show"))
    summary = sample_summary(dyn, threshold=THRESHOLDS[rule])
    _headline(dyn, summary, t)
    samples = _chosen(dyn, summary, t, show)
    start = (_page_ui(len(samples)) - 1) * PER_PAGE
    shown = samples[start : start + PER_PAGE]
    st.caption(
        f"Snapshot {t + 1} of {len(steps)} (step {step}): {len(samples)} sample(s) match, "
        f"showing {len(shown)}. ✓ marks the label's bar."
    )
    run_widgets.probe_grid(dyn, run_state.probe_images(run_id), t, shown)
    if preset == "overfit":
        _converging(dyn, t)
    st.subheader("When each sample was learned")
    st.caption(
        "Rows: probe samples, learned earliest at the top; colour: p(label) at each "
        "snapshot; the dotted line is the slider's step."
    )
    order = np.lexsort((np.arange(len(summary)), summary["learned_at"].replace(-1, 2**62)))
    run_widgets.learning_heatmap(dyn, order.tolist(), step)
    _learning_table(dyn, summary.iloc[order])


@st.fragment(run_every=TICK_S)
def ticking_view(run_id: str, preset: str, play: bool) -> None:
    """Re-drawn every second: the next step while playing; new snapshots of a running job."""
    if not play and run_state.run_status(run_id).finished:
        st.rerun(scope="app")  # the job ended: draw once more, without the timer
    dynamics_view(run_id, preset, play)


@st.fragment
def still_view(run_id: str, preset: str, play: bool) -> None:
    dynamics_view(run_id, preset, play)


def _page_ui(n_samples: int) -> int:
    """Which page of PER_PAGE thumbnails to draw (no widget when one page holds them all)."""
    n_pages = max(1, math.ceil(n_samples / PER_PAGE))
    state.clamp_page("dyn_page", n_pages)
    if n_pages == 1:
        return 1
    box, _ = st.columns([1, 3])
    return int(box.number_input(f"Page (of {n_pages})", 1, n_pages, key="dyn_page"))


def _headline(dyn: Dynamics, summary: pd.DataFrame, t: int) -> None:
    labelled = dyn.labels >= 0
    right = (dyn.predictions()[t] == dyn.labels) & labelled
    a, b, c, d = st.columns(4)
    a.metric("Right at this step", f"{int(right.sum())} / {int(labelled.sum())}")
    b.metric("Learned by the end", int((summary["learned_at"] >= 0).sum()))
    c.metric("Forgotten at least once", int((summary["forgetting_events"] > 0).sum()))
    d.metric("Prediction flips", int(summary["flips"].sum()))


def _chosen(dyn: Dynamics, summary: pd.DataFrame, t: int, show: str) -> list[int]:
    """Probe positions to draw for the `show` filter."""
    keep = {
        "all": np.ones(len(summary), bool),
        "wrong": dyn.predictions()[t] != dyn.labels,
        "forgotten": summary["forgetting_events"].to_numpy() > 0,
        "never": summary["learned_at"].to_numpy() < 0,
    }[show]
    return np.flatnonzero(keep).tolist()


def _learning_table(dyn: Dynamics, rows: pd.DataFrame) -> None:
    names = [run_widgets.class_name(dyn, int(c)) for c in rows["label"]]
    table = pd.DataFrame(
        {
            "sample": [f"#{i}" for i in rows.index],
            "label": names,
            "learned at step": rows["learned_at"].where(rows["learned_at"] >= 0).astype("Int64"),
            "forgetting events": rows["forgetting_events"],
            "prediction flips": rows["flips"],
            "final p(label)": rows["p_label"].round(3),
            "sample_id": rows["sample_id"].astype(str),  # the key the data pages use
        }
    )
    st.dataframe(table, hide_index=True, width="stretch", height=300)
    st.caption(
        "Learned at: the step from which the sample stays learned (empty: not learned by "
        "the last snapshot). Forgetting event: learned at one snapshot, not at the next."
    )


def _converging(dyn: Dynamics, t: int) -> None:
    """Overfit: every probe label and its prediction at this step in one plot; on a healthy
    setup the dots land in the circles."""
    st.subheader("Overfitting the batch: labels and predictions converging")
    x = [f"#{i}" for i in range(len(dyn.labels))]
    names = [plot_text(run_widgets.class_name(dyn, int(c))) for c in range(dyn.probs.shape[2])]
    predicted = dyn.predictions()[t]
    fig = go.Figure()
    fig.add_scatter(
        x=x,
        y=[names[c] if c >= 0 else "" for c in dyn.labels],
        mode="markers",
        name="label",
        marker={"symbol": "circle-open", "size": 16, "line": {"width": 2}, "color": palette.BLUE},
    )
    fig.add_scatter(
        x=x,
        y=[names[c] for c in predicted],
        mode="markers",
        name="prediction",
        marker={"size": 8, "color": palette.ORANGE},
        customdata=dyn.probs[t].max(axis=1),
        hovertemplate="%{x}: predicted %{y} (p = %{customdata:.2f})<extra></extra>",
    )
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=names, title="class")
    fig.update_xaxes(type="category", title="probe sample")
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 10, "b": 10}, uirevision="conv")
    st.plotly_chart(fig, width="stretch", key="dyn_converging")


statuses = run_state.runs()
if not statuses:
    st.info(
        "No runs yet. Start one on the Runs page; its predictions on a fixed probe batch "
        "are recorded while it trains.",
        icon="🏁",
    )
    st.page_link("views/runs.py", label="Go to Runs", icon="🏃")
    st.stop()
status = run_widgets.run_picker_ui(statuses, key="dyn_pick")
run_widgets.status_banner(status)
preset = str(run_state.run_config(status.run_id).get("preset", ""))
play = st.toggle("Play: advance the step slider one snapshot per second", key="dyn_play")
if play or not status.finished:
    ticking_view(status.run_id, preset, play)
else:
    still_view(status.run_id, preset, play)
