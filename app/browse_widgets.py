"""The sample detail drawer of Browse and Distributions: the image, why it was flagged,
curation, ◀ Previous / Next ▶ through the page's order (← / → keys), nearest neighbours that
open in the drawer, every statistic. (widgets.sample_detail is the Issues page's plain one.)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import streamlit as st

from app import access, pictures, state, widgets
from app.widgets import md
from recipe_core.explore.query import SampleTable
from recipe_core.explore.thumbnails import thumbnail_file
from recipe_core.explore.views import nearest_samples
from recipe_core.scan import ScanResult

N_NEIGHBOURS = 8
Around = tuple[int | None, int | None]  # sample_ids before and after, None at an end


def sample_detail(
    result: ScanResult,
    table: SampleTable,
    sample_id: int,
    *,
    around: Around = (None, None),
    beside: Callable[[int], None] | None = None,
) -> None:
    """Open the detail drawer of one sample (it stays open while the sample is selected);
    `around` is where Previous / Next lead, `beside(sample_id)` renders more under its
    issues (tags, a run's prediction history)."""
    hits = np.flatnonzero(table.frame["sample_id"].to_numpy() == sample_id)
    if len(hits) == 0:  # e.g. a rescan removed it
        state.select_sample(None)
        return
    _drawer(result, table, int(hits[0]), around, beside)


def _close() -> None:
    state.select_sample(None)


def _open(sample_id: int | None) -> None:
    state.select_sample(sample_id)
    st.rerun()  # the whole page: a dialog's button alone reruns only the dialog


@st.dialog("Sample details", width="large", position="right", on_dismiss=_close)
def _drawer(
    result: ScanResult,
    table: SampleTable,
    pos: int,
    around: Around,
    beside: Callable[[int], None] | None,
) -> None:
    frame = table.frame
    row = frame.iloc[pos]
    source = result.index.source
    step_ui(around)
    left, right = st.columns([1, 2])
    with left:
        widgets._large_image(source, str(row["path"]), str(row["decode_error"]))
    with right:
        st.text(f"{row['path']}\nlabel: {row['label']}    split: {row['split'] or '-'}")
        widgets._issue_rows(result.issues, int(row["sample_id"]))
        if beside is not None:
            beside(int(row["sample_id"]))
    widgets.curation_ui(source, row)
    st.markdown("**Nearest neighbours** (embedding distance: 0 = identical; Open shows one)")
    neighbours_ui(result, frame, pos)
    with st.expander("All statistics"):
        stats = pd.DataFrame({"statistic": frame.columns, "value": [str(v) for v in row]})
        st.dataframe(stats, hide_index=True, width="stretch")


def step_ui(around: Around) -> None:
    """◀ Previous / Next ▶ (keys ← / →) through the order the page lists its samples."""
    before, after = around
    a, b, c = st.columns([1, 1, 2], vertical_alignment="center")
    if a.button("◀ Previous", key="detail_prev", shortcut="Left", disabled=before is None,
                width="stretch"):  # fmt: skip
        _open(before)
    if b.button("Next ▶", key="detail_next", shortcut="Right", disabled=after is None,
                width="stretch"):  # fmt: skip
        _open(after)
    c.caption("← / → step through the matching samples in the page's sort order.")


def neighbours_ui(result: ScanResult, frame: pd.DataFrame, pos: int) -> None:
    """The nearest neighbours' thumbnails, each with an Open button that shows it here."""
    valid = result.index.valid
    if not valid[pos]:
        st.caption("An undecodable file has no embedding, so no neighbours.")
        return
    rows, dist = nearest_samples(result.index.embeddings, pos, N_NEIGHBOURS, valid=valid)
    cache = access.workspace().thumbnails
    source = result.index.source
    for cell, (_, row), d in zip(st.columns(N_NEIGHBOURS), frame.iloc[rows].iterrows(), dist,
                                 strict=False):  # fmt: skip
        sid = int(row["sample_id"])
        with cell:
            thumb = thumbnail_file(cache, source.abspath(str(row["path"])))
            text = f"d = {d:.3f} · {md(row['label'])}"
            if thumb is None:
                st.caption(text)
            else:
                pictures.image(thumb, caption=text, width="stretch")
            if st.button("Open", key=f"neighbour_{sid}", width="stretch"):
                _open(sid)
