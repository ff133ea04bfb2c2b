"""The sample detail drawer of Browse and Distributions: the image, why it was flagged,
curation, ◀ Previous / Next ▶ through the page's order (← / → keys), nearest neighbours that
open in the drawer, every statistic. (widgets.sample_detail is the Issues page's plain one.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app import access, browse_state, pictures, state, widgets
from app.palette import CATEGORICAL
from app.widgets import md
from recipe_core import RecipeError
from recipe_core.explore.query import SampleFilter, SampleTable
from recipe_core.explore.saved_views import SavedView
from recipe_core.explore.tags import tag_names, tagged
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


# --- the embedding map ------------------------------------------------------------------------

MAX_POINTS = 20_000  # drawn at most (evenly spaced): scattergl stays fluid, the shape stays
NO_ISSUE = "(no issue)"
UNFLAGGED = {"size": 4, "color": "#c9c9c9"}  # unflagged samples: a quiet grey background


def map_groups(table: SampleTable, rows: np.ndarray, *, by: str) -> np.ndarray:
    """(len(rows),) object: each row's colour group, its label or its worst issue type."""
    frame = table.frame.iloc[rows]
    if by == "label" or not table.issue_types:
        return frame["label"].astype(str).to_numpy(dtype=object)
    scores = np.stack([frame[table.score_column(t)].to_numpy(dtype=np.float64)
                       for t in table.issue_types], axis=1)  # fmt: skip  # (R, T), NaN = none
    filled = np.where(np.isnan(scores), -1.0, scores)
    worst = np.asarray(table.issue_types, dtype=object)[filled.argmax(axis=1)]
    return np.where(np.isnan(scores).all(axis=1), NO_ISSUE, worst)


def map_points(xy: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Row positions to draw: matching rows with a map position, at most MAX_POINTS."""
    rows = np.flatnonzero(mask & np.isfinite(xy[:, 0]))
    if len(rows) > MAX_POINTS:
        rows = rows[np.linspace(0, len(rows) - 1, MAX_POINTS).round().astype(np.int64)]
    return rows


MapTraces = list[tuple[str, np.ndarray]]  # (group name, its rows) per trace, in trace order
SYMBOLS = ("circle", "diamond", "square", "x", "triangle-up")  # beyond the palette's colours


def map_traces(table: SampleTable, rows: np.ndarray, *, by: str) -> MapTraces:
    """The map's traces: one per colour group, natural order; "(no issue)" first, so it is
    drawn underneath and the flagged samples stay visible on top of it."""
    groups = map_groups(table, rows, by=by)
    names = sorted(set(groups), key=lambda g: (g != NO_ISSUE, widgets.natural_key(g)))
    return [(name, rows[groups == name]) for name in names]


def map_figure(xy: np.ndarray, table: SampleTable, traces: MapTraces) -> go.Figure:
    """Plotly scattergl of `traces`; hovering names the file. No sample_id rides along: a
    64-bit id loses digits as a JavaScript number, so a click maps back by trace and index."""
    fig = go.Figure()
    paths = table.frame["path"].to_numpy()
    for i, (name, mine) in enumerate(traces):
        fig.add_trace(go.Scattergl(
            x=xy[mine, 0], y=xy[mine, 1], mode="markers", name=widgets.plot_text(name or "(none)"),
            text=[widgets.plot_text(p) for p in paths[mine]],
            hovertemplate="%{text}<extra>%{fullData.name}</extra>",
            marker=UNFLAGGED if name == NO_ISSUE else
            {"size": 6, "symbol": SYMBOLS[i // len(CATEGORICAL) % len(SYMBOLS)]},
        ))  # fmt: skip
    fig.update_layout(height=460, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      xaxis_title="PC 1", yaxis_title="PC 2")  # fmt: skip
    return fig


def picked_point(selection: Any, traces: MapTraces, table: SampleTable) -> int | None:
    """The sample_id of the point clicked on the map (None when none is)."""
    for point in (selection or {}).get("points") or []:
        curve, index = point.get("curve_number"), point.get("point_index")
        if curve is not None and index is not None and curve < len(traces):
            rows = traces[int(curve)][1]
            if int(index) < len(rows):
                return int(table.frame["sample_id"].iloc[rows[int(index)]])
    return None


# --- tags -------------------------------------------------------------------------------------


def tags_panel(root: Path) -> Callable[[int], None]:
    """The detail drawer's tags: chips with a remove button each, and a box to add one."""

    def show(sample_id: int) -> None:
        mine = browse_state.tags(root).get(sample_id, ())
        st.markdown("**Tags** " + (", ".join(f"“{md(t)}”" for t in mine) if mine else "none"))
        if not access.can("curation_decision"):
            return
        a, b = st.columns([3, 1], vertical_alignment="bottom")
        word = a.text_input("Add a tag", key=f"tag_new_{sample_id}", placeholder="e.g. review")
        if b.button("Add tag", key=f"tag_add_{sample_id}", disabled=not word.strip()):
            _safely(lambda: browse_state.tag(root, [sample_id], word))
        for i, t in enumerate(mine):
            if st.button(f"✕ {t}", key=f"tag_rm_{sample_id}_{i}", help="Remove this tag"):
                _safely(lambda t=t: browse_state.untag(root, [sample_id], t))

    return show


def _safely(change: Callable[[], None]) -> None:
    try:
        change()
    except RecipeError as error:
        st.error(md(error), icon="🚫")
        return
    st.rerun()  # the whole page: the tag filter and counts change too


def tag_filter_ui(root: Path) -> tuple[tuple[int, ...] | None, tuple[str, ...]]:
    """Sidebar: samples carrying any chosen tag (None when no tag is chosen), the tags."""
    tags = browse_state.tags(root)
    names = tag_names(tags)
    with st.sidebar:
        chosen = st.multiselect("Tag", names, key="flt_tags",
                                placeholder="any" if names else "no tags yet",
                                help="Tag a sample in its details, or every matching sample "
                                "at once above the table.")  # fmt: skip
    return (tagged(tags, *chosen) if chosen else None), tuple(chosen)


def describe_tags(chosen: tuple[str, ...]) -> str:
    """The tag filter for the Browse caption ("" without one), Markdown-safe."""
    return "; tagged " + " or ".join(f"“{md(t)}”" for t in chosen) if chosen else ""


def bulk_tag_ui(root: Path, sample_ids: list[int]) -> None:
    """Tag every sample the filter keeps at once."""
    if not access.can("curation_decision") or not sample_ids:
        return
    with st.expander(f"Tag the {len(sample_ids):,} matching samples"):
        a, b = st.columns([3, 1], vertical_alignment="bottom")
        word = a.text_input("Tag", key="bulk_tag_word", placeholder="e.g. review")
        if b.button("Tag them", key="bulk_tag", disabled=not word.strip(), width="stretch"):
            _safely(lambda: browse_state.tag(root, sample_ids, word))


# --- saved views ------------------------------------------------------------------------------


def current_view(
    spec: SampleFilter, sort_by: str | None, descending: bool, tags: tuple[str, ...]
) -> SavedView | None:
    """The page's filter and sort as a view named as the Save box says (None while empty)."""
    name = browse_state.view_name()
    if not name:
        return None
    try:
        return SavedView(name, spec, sort_by, descending, tags)
    except RecipeError as error:
        st.sidebar.error(md(error), icon="🚫")
        return None


def saved_views_ui(root: Path, current: SavedView | None, sort_options: list[str]) -> None:
    """Sidebar: pick a saved view (filter + sort + tags) and apply it; save the current one
    (`current` is it, None while its name box is empty)."""
    views = browse_state.views(root)
    by_name = {v.name: v for v in views}
    tag_options = tag_names(browse_state.tags(root))
    with st.sidebar:
        st.header("Saved views")
        pick = st.selectbox("View", list(by_name), index=None, key="saved_view_pick",
                            placeholder="choose a view" if views else "none saved yet")  # fmt: skip
        a, b = st.columns(2)
        a.button("Apply view", key="saved_view_apply", disabled=pick is None, width="stretch",
                 on_click=browse_state.apply_view,
                 args=(by_name.get(str(pick)), sort_options, tag_options))  # fmt: skip
        if (
            access.can("curation_decision")
            and pick is not None
            and b.button("Delete", key="saved_view_delete", width="stretch")
        ):
            _safely(lambda: browse_state.forget(root, str(pick)))
        if not access.can("curation_decision"):
            return
        st.text_input("Save the current filter and sort as", key="saved_view_name",
                      placeholder="e.g. review queue")  # fmt: skip
        if st.button("Save view", key="saved_view_save", disabled=current is None,
                     width="stretch") and current is not None:  # fmt: skip
            _safely(lambda: browse_state.save(root, current))
