"""Browse: every sample with every statistic; sort by any column, filter by anything, look."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from app import browse_widgets, data_state, data_widgets, mistake_widgets, state, widgets
from recipe_core import RecipeError
from recipe_core.explore.query import adjacent, filter_mask, query

st.title("🔎 Browse samples")
st.caption(
    "Search, filter and sort by whatever you can think of; open a sample to see its statistics, "
    "its nearest neighbours and why it was flagged."
)

source, target, result, table = widgets.scanned_dataset()
run = mistake_widgets.run_picker_ui(target)
table = data_state.run_samples(target, table, run)
spec = data_widgets.filter_ui(table, source)
tag_ids, tag_choice = browse_widgets.tag_filter_ui(target)
if tag_ids is not None:
    spec = replace(spec, only_ids=tag_ids)
decisions = data_state.decisions(target)
view = mistake_widgets.mistakes_ui(run, key="browse") if run is not None else None

a, b = st.columns([3, 1], vertical_alignment="bottom")
with a:
    sort_by, descending = data_widgets.sort_ui(table, key="browse_sort")
if view is not None:
    spec, sort_by, descending = view.apply(spec, sort_by, descending)
here = browse_widgets.current_view(spec, sort_by, descending, tag_choice)
browse_widgets.saved_views_ui(target, here, data_widgets.sort_options(table))
per_page = int(
    b.selectbox("Rows per page", data_widgets.PER_PAGE_OPTIONS, index=1, key="browse_per_page")
)
try:
    page = query(
        table,
        spec,
        sort_by=sort_by,
        descending=descending,
        per_page=per_page,
        page=state.page_number("browse_page"),
    )
except RecipeError as error:
    st.error(widgets.md(error), icon="🚫")
    st.stop()
data_widgets.pager_ui(page.total, key="browse_page", per_page=per_page)
st.caption(
    f"**{page.total:,}** of {len(table):,} samples match "
    f"({data_widgets.describe_filter(spec)}{browse_widgets.describe_tags(tag_choice)}"
    f"{'; ' + view.note if view and view.note else ''}); page {page.page:,} of {page.n_pages:,}."
)
matching = table.frame["sample_id"].to_numpy()[filter_mask(table, spec)]
browse_widgets.bulk_tag_ui(target, [int(s) for s in matching])

table_tab, grid_tab = st.tabs(["Table", "Grid"])
with table_tab:
    picked = data_widgets.table_ui(page, source, decisions, key="browse_table", sort_by=sort_by)
    if state.remember("browse_table_pick", picked) != picked and picked is not None:
        state.select_sample(picked)
with grid_tab:
    clicked = data_widgets.grid_ui(page.rows, source, decisions, key="browse_grid")
    if clicked is not None:
        state.select_sample(clicked)

selected = state.selected_sample()
if selected is not None:
    around = adjacent(table, spec, selected, sort_by=sort_by, descending=descending)
    history = mistake_widgets.history_panel(run)
    tags = browse_widgets.tags_panel(target)

    def beside(sample_id: int) -> None:
        tags(sample_id)
        if history is not None:
            history(sample_id)

    browse_widgets.sample_detail(result, table, selected, around=around, beside=beside)
else:
    st.info(
        "Select a row in the table (or press Details in the grid) to see a sample in full.",
        icon="👆",
    )
