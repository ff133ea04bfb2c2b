"""Distributions: any statistic as a histogram or box plot by class; select bars to look at
exactly those samples."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app import (
    browse_state,
    browse_widgets,
    data_state,
    data_widgets,
    mistake_widgets,
    state,
    widgets,
)
from recipe_core.explore.query import SampleFilter, SampleTable, adjacent, filter_mask, query
from recipe_core.explore.views import Histogram, box_stats, histogram

PREFERRED = ("brightness", "contrast", "blur", "entropy", "max_score", "file_bytes", "width")
PER_PAGE = 24

st.title("📊 Distributions")
st.caption(
    "Visualise the distribution of every statistic and the outliers along any axis. Click a "
    "bar (or drag a box over a range) to see exactly those images below."
)

source, target, result, table = widgets.scanned_dataset()
run = mistake_widgets.run_picker_ui(target)
table = data_state.run_samples(target, table, run)
spec = data_widgets.filter_ui(table, source)
mask = filter_mask(table, spec)

columns = table.numeric_columns()
a, b, c, d = st.columns([3, 2, 2, 2], vertical_alignment="bottom")
default = next((columns.index(p) for p in PREFERRED if p in columns), 0)
column = a.selectbox("Statistic", columns, index=default, key="dist_column")
kind = (
    b.segmented_control("Chart", ["Histogram", "Box plot"], default="Histogram", key="dist_kind")
    or "Histogram"
)
by_class = c.toggle("Colour by class", value=True, key="dist_by_class")
log_y = d.toggle("Log scale", value=False, key="dist_log", help="See the rare tails.")
by = "label" if by_class else "split"
st.caption(f"{int(mask.sum()):,} samples ({data_widgets.describe_filter(spec)}).")


def histogram_figure(h: Histogram) -> go.Figure:
    centers = (h.edges[:-1] + h.edges[1:]) / 2
    width = float(h.edges[1] - h.edges[0])
    fig = go.Figure()
    for i in data_widgets.histogram_trace_order(h):
        name, counts = h.groups[i], h.counts[i]
        fig.add_bar(
            x=centers,
            y=counts,
            width=width,
            name=widgets.plot_text(name or "(none)"),
            customdata=np.stack([h.edges[:-1], h.edges[1:]], axis=1),
            hovertemplate="%{customdata[0]:.4g} – %{customdata[1]:.4g}: %{y} samples",
        )
    fig.update_layout(
        barmode="stack",
        height=380,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis_title=column,
        yaxis_title="samples",
        legend_title=by,
        yaxis_type="log" if log_y else "linear",
        legend_traceorder="normal",
    )
    return fig


def box_figure(table: SampleTable) -> go.Figure:
    stats = box_stats(table, column, mask, by=by)
    fig = go.Figure()
    for row in stats.itertuples():
        name = widgets.plot_text(row.group or "(none)")
        fig.add_trace(
            go.Box(
                name=name,
                x=[name],  # precomputed quartiles need their own x, or every box sits at x=0
                q1=[row.q1],
                median=[row.median],
                q3=[row.q3],
                lowerfence=[row.lowerfence],
                upperfence=[row.upperfence],
                boxpoints=False,
            )
        )
    fig.update_layout(
        height=380,
        showlegend=False,
        yaxis_title=column,
        xaxis={"type": "category", "title": by},
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
    )
    return fig


chosen: SampleFilter | None = None
if kind == "Histogram":
    h = histogram(table, column, mask, by=by)
    event = st.plotly_chart(
        histogram_figure(h),
        key=f"dist_hist_{column}_{by}",
        on_select="rerun",
        selection_mode=("points", "box"),
    )
    chosen = data_widgets.histogram_selection(event.selection, h, by_class=by_class)
    if h.n_missing:
        st.caption(f"{h.n_missing:,} samples have no {column} value (e.g. undecodable files).")
    if h.n_below or h.n_above:
        tails = [f"{h.n_below:,} below {h.edges[0]:.4g} in the first bar"] * bool(h.n_below) + [
            f"{h.n_above:,} above {h.edges[-1]:.4g} in the last bar"] * bool(h.n_above)  # fmt: skip
        st.caption(f"Far outliers (beyond 3 interquartile ranges) are counted in the edge bars, "
                   f"so they do not squeeze the rest into one bar: {'; '.join(tails)}. Select "
                   "an edge bar to see them.")  # fmt: skip
else:
    st.plotly_chart(box_figure(table), key=f"dist_box_{column}_{by}")

st.subheader("Embedding map")
scan_map = browse_state.scan_map(target)
if scan_map is None:
    st.info("This scan has no embeddings to map.", icon="ℹ️")
else:
    m1, m2 = st.columns([2, 3], vertical_alignment="center")
    colour = m1.segmented_control("Colour by", ["Class", "Issue"], default="Class",
                                  key="map_colour") or "Class"  # fmt: skip
    m2.caption(
        f"Each point is a sample, placed by its embedding's two principal components "
        f"({scan_map.explained[0]:.0%} and {scan_map.explained[1]:.0%} of the variance): "
        "similar images sit together. Click a point to open it."
    )
    rows = browse_widgets.map_points(scan_map.xy, mask)
    traces = browse_widgets.map_traces(table, rows, by="label" if colour == "Class" else "issue")
    event = st.plotly_chart(
        browse_widgets.map_figure(scan_map.xy, table, traces),
        key=f"dist_map_{colour}",
        on_select="rerun",
        selection_mode="points",
    )
    picked = browse_widgets.picked_point(event.selection, traces, table)
    point = browse_state.clicked_once("dist_map_pick", picked)
    if point is not None:
        state.select_sample(point)
    if len(rows) < int(mask.sum()):
        st.caption(f"{len(rows):,} of {int(mask.sum()):,} samples drawn, evenly spaced.")

st.subheader("Class balance")
widgets.class_counts_chart(
    source.samples.groupby(["split", "label"]).size().rename("count").reset_index()
)

st.subheader("Samples in the selection" if chosen else "Samples (select bars above to narrow)")
combined = (
    spec
    if chosen is None
    else replace(
        spec,
        labels=chosen.labels or spec.labels,
        splits=chosen.splits or spec.splits,
        ranges=spec.ranges + chosen.ranges,
    )
)
page = query(
    table,
    combined,
    sort_by=column,
    descending=True,
    per_page=PER_PAGE,
    page=state.page_number("dist_page"),
)
data_widgets.pager_ui(page.total, key="dist_page", per_page=PER_PAGE)
st.caption(
    f"**{page.total:,}** samples ({data_widgets.describe_filter(combined)}), highest "
    f"{widgets.md(column)} first."
)
if chosen is not None and st.button("Keep this selection as the Browse filter"):
    state.show_issues(())
    state.set_browse_filter(combined)
    st.switch_page("views/browse.py")
decisions = data_state.decisions(target)
grid_tab, table_tab = st.tabs(["Grid", "Table"])
with grid_tab:
    clicked = data_widgets.grid_ui(page.rows, source, decisions, key="dist_grid")
    if clicked is not None:
        state.select_sample(clicked)
with table_tab:
    picked = data_widgets.table_ui(page, source, decisions, key="dist_table", sort_by=column)
    if state.remember("dist_table_pick", picked) != picked and picked is not None:
        state.select_sample(picked)
selected = state.selected_sample()
if selected is not None:
    around = adjacent(table, combined, selected, sort_by=column, descending=True)
    browse_widgets.sample_detail(
        result, table, selected, around=around, beside=mistake_widgets.history_panel(run)
    )
