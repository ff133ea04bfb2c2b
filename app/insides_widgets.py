"""Renderers for a run's insides (recorded by recipe_core/train/insides.py): the engine's
warnings, the first-layer step slider and grid, and per-layer lines over steps.

Layer names are data: they pass through `md` in Markdown and `plot_text` in plotly.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app import run_state
from app.widgets import md, plot_text
from recipe_core.dynamics.insides import UPDATE_HEALTHY, UPDATE_HIGH, UPDATE_LOW, InsidesWarning

# Okabe-Ito: distinguishable with every common colour-vision deficiency; layers beyond seven
# repeat a colour with another dash, so no two lines look alike.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442")
DASHES = ("solid", "dash", "dot", "dashdot")
# (column, title, log axis): spreads, gradients and ratios span orders of magnitude
LINES = (
    ("act_std", "activation std", True),
    ("dead", "dead units (share, ReLU)", False),
    ("grad_norm", "gradient norm (weights)", True),
    (
        "update_ratio",
        f"update / weight ratio per step (healthy ~{UPDATE_HEALTHY:g}, dotted; "
        f"warned outside {UPDATE_LOW:g} .. {UPDATE_HIGH:g}, dashed)",
        True,
    ),
)
WARNING_TITLES = {"dead": "dead units", "saturated": "saturated units",
                  "update_small": "update ratio too small",
                  "update_large": "update ratio too large"}  # fmt: skip


def insides_warnings(warnings: Sequence[InsidesWarning]) -> None:
    """One warning per layer and problem, with the engine's numbers and fix."""
    if not warnings:
        st.success("No layer has mostly dead or saturated units, and every update-to-weight "
                   f"ratio stays within [{UPDATE_LOW:g}, {UPDATE_HIGH:g}].", icon="✅")  # fmt: skip
    for w in warnings:
        st.warning(f"**{WARNING_TITLES.get(w.kind, w.kind)}** in layer `{md(w.layer)}`, step "
                   f"{w.step}: {md(w.message)} {md(w.fix)}", icon="⚠️")  # fmt: skip


def first_layer_step_ui(steps: Sequence[int], *, key: str) -> int:
    """Choose a first-layer snapshot; starts at (and, while live, follows) the newest."""
    run_state.follow_step(key, list(steps), play=False)
    return int(st.select_slider("First-layer weights at step", options=list(steps), key=key))


def layer_figures(frame: pd.DataFrame) -> dict[str, go.Figure]:
    """One figure per LINES column that some layer recorded: a line per layer over steps."""
    figures = {}
    for column, title, log in LINES:
        rows = frame.dropna(subset=[column])
        if log:
            rows = rows[rows[column] > 0]  # a log axis cannot draw 0 (a frozen layer's ratio)
        if rows.empty:
            continue
        fig = go.Figure()
        for i, (layer, part) in enumerate(rows.groupby("layer", sort=False)):
            style = {"color": OKABE_ITO[i % 7], "dash": DASHES[i // 7 % len(DASHES)]}
            name = plot_text(f"{layer} {part['kind'].iloc[0]}")
            fig.add_scatter(x=part["step"], y=part[column], name=name, mode="lines+markers",
                            line=style, marker={"size": 4})  # fmt: skip
        if column == "update_ratio":
            _band(fig)
        fig.update_layout(title={"text": title, "font": {"size": 13}}, height=320,
                          xaxis_title="step", uirevision=column,
                          margin={"l": 10, "r": 10, "t": 40, "b": 10},
                          legend={"font": {"size": 10}})  # fmt: skip
        if log:
            fig.update_yaxes(type="log")
        else:
            fig.update_yaxes(range=[-0.02, 1.02])  # a share: all of it, even when all are 0
        figures[column] = fig
    return figures


def _band(fig: go.Figure) -> None:
    """The healthy ~1e-3 (dotted) and the warning limits 1e-5 and 1e-1 (dashed); named in the
    title, since plotly misplaces line annotations on a log axis."""
    fig.add_hline(y=UPDATE_HEALTHY, line={"color": "#000000", "dash": "dot", "width": 1})
    for limit in (UPDATE_LOW, UPDATE_HIGH):
        fig.add_hline(y=limit, line={"color": "#D55E00", "dash": "dash", "width": 1})


def layer_lines(frame: pd.DataFrame, *, key: str) -> None:
    """The layer figures two per row."""
    figures = list(layer_figures(frame).items())
    for start in range(0, len(figures), 2):
        for column, (name, fig) in zip(st.columns(2), figures[start : start + 2], strict=False):
            column.plotly_chart(fig, width="stretch", key=f"{key}_{name}")
