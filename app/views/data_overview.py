"""Data overview: what is in the dataset — classes, splits, sizes — and the images themselves."""

from __future__ import annotations

import math

import streamlit as st

from app import state, widgets
from recipe_core import RecipeError

PER_PAGE = 48

st.title("🗂️ Data overview")
st.caption("Become one with the data: look at the images before you look at any metric.")

path = widgets.dataset_path_ui()
if st.button("Reload from disk", help="Re-list the files after adding or removing some."):
    state.reload_dataset()

try:
    source = state.dataset_source(path)
    overview = state.dataset_overview(path)
except RecipeError as error:
    st.error(str(error), icon="🚫")
    st.stop()

a, b, c, d = st.columns(4)
a.metric("Samples", f"{overview.n_samples:,}")
b.metric("Classes", overview.n_classes)
c.metric("Splits", ", ".join(s or "(none)" for s in source.splits))
d.metric("Unreadable files", overview.n_unreadable)

left, right = st.columns([3, 2])
with left:
    st.subheader("Samples per class and split")
    widgets.class_counts_chart(overview.counts)
with right:
    st.subheader("Image sizes and modes")
    st.dataframe(overview.sizes.head(20), hide_index=True, width="stretch")
    if overview.n_unreadable:
        bad = overview.headers[overview.headers["error"] != ""].merge(
            source.samples[["sample_id", "path"]], on="sample_id"
        )
        st.warning(f"{overview.n_unreadable} file(s) have unreadable headers.", icon="⚠️")
        st.dataframe(bad[["path", "error"]], hide_index=True, width="stretch")
    if source.skipped:
        st.info(
            f"{len(source.skipped)} non-image file(s) ignored: " + ", ".join(source.skipped[:5])
        )

st.subheader("Images")
f1, f2 = st.columns(2)
splits = f1.multiselect("Split", source.splits, default=list(source.splits), key="ov_splits")
classes = f2.multiselect("Class", source.classes, default=list(source.classes), key="ov_classes")
rows = source.samples
rows = rows[rows["split"].isin(splits) & rows["label"].isin(classes)]
n_pages = max(1, math.ceil(len(rows) / PER_PAGE))
state.clamp_page("ov_page", n_pages)
page = st.number_input(f"Page (of {n_pages})", min_value=1, max_value=n_pages, key="ov_page")
st.caption(f"{len(rows):,} images match; showing {PER_PAGE} per page.")
start = (int(page) - 1) * PER_PAGE
widgets.image_grid(source, rows.iloc[start : start + PER_PAGE])
