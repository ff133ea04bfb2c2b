"""Renderers shared by the data pages: the sample filter, the paged table and grid, and the
histogram selection. (Scan status and the sample detail drawer are in widgets.py.)

User data (file names, labels) is shown as text: Streamlit renders captions, alerts and
labels as Markdown, so every user string passes through `widgets.md`; tables and `st.text`
need nothing. Input widgets' functions end in `_ui` and return what the user chose.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from app import access, pictures, state
from app.widgets import md, natural_key
from recipe_core import DatasetSource
from recipe_core.explore.curation import Decision
from recipe_core.explore.query import ISSUE_SCORE, QueryPage, Range, SampleFilter, SampleTable
from recipe_core.explore.thumbnails import thumbnail_file
from recipe_core.explore.views import OTHER, Histogram

PER_PAGE_OPTIONS = (25, 50, 100, 200)
ROW_HEIGHT = 48  # px: a readable 32 px thumbnail per table row
# The table's first columns; every other column of the sample table follows (sort column first).
LEAD_COLUMNS = ("thumbnail", "path", "label", "split", "issues", "max_score", "decision")


def thumb_uri(source: DatasetSource, path: str, *, size: int = 64) -> str | None:
    """A data-URI PNG thumbnail of one sample (made once, then read from the disk cache)."""
    thumb = thumbnail_file(access.workspace().thumbnails, source.abspath(path), size=size)
    if thumb is None:
        return None
    return pictures.data_uri(thumb)


# --- filters ----------------------------------------------------------------------------------

FLAG_OPTIONS = {"Any": None, "With issues": True, "Without issues": False}


def filter_ui(table: SampleTable, source: DatasetSource) -> SampleFilter:
    """Sidebar filter widgets, seeded from (and saved to) the shared Browse filter."""
    spec = state.browse_filter()
    with st.sidebar:
        st.header("Filter")
        labels = _multi("Class", source.classes, spec.labels, "flt_labels")
        splits = _multi("Split", source.splits, spec.splits, "flt_splits")
        issues = _multi("Issue type", table.issue_types, spec.issues, "flt_issues")
        flag = {v: k for k, v in FLAG_OPTIONS.items()}.get(spec.flagged, "Any")
        state.widget_value("flt_flagged", flag)
        flagged = FLAG_OPTIONS[
            st.radio("Samples", list(FLAG_OPTIONS), key="flt_flagged", horizontal=True)
        ]
        state.widget_value("flt_score", spec.min_score)
        min_score = st.slider(
            "Minimum issue score",
            0.0,
            1.0,
            step=0.05,
            key="flt_score",
            help="Highest score among the chosen issue types (1 = worst).",
        )
        ranges = _range_ui(table, spec.ranges)
        state.widget_value("flt_path", spec.path_contains)
        text = st.text_input("Path contains", key="flt_path", placeholder="e.g. train/3/")
        new = SampleFilter(labels, splits, issues, min_score, ranges, text.strip(), flagged)
        if st.button("Clear filters", width="stretch"):
            state.show_issues(())
            st.rerun()
    state.set_browse_filter(new)
    return new


def _multi(label: str, options: Sequence[str], chosen: Sequence[str], key: str) -> tuple[str, ...]:
    state.widget_value(key, [c for c in chosen if c in options])
    picked = st.multiselect(label, list(options), key=key, placeholder="any")
    return tuple(picked)


def _range_ui(table: SampleTable, current: tuple[Range, ...]) -> tuple[Range, ...]:
    columns = ["(none)", *table.numeric_columns()]
    first = current[0] if current and current[0].column in columns else None  # e.g. run's gone
    state.widget_value("flt_range_col", first.column if first else "(none)")
    column = st.selectbox("Range of a statistic", columns, key="flt_range_col")
    if column == "(none)":
        return ()
    values = table.sort_key(column)
    finite = values[np.isfinite(values)]
    lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 0.0)
    same = first is not None and first.column == column
    low_key, high_key = f"flt_range_lo_{column}", f"flt_range_hi_{column}"
    state.widget_value(low_key, max(lo, first.low) if first is not None and same else lo)
    state.widget_value(high_key, min(hi, first.high) if first is not None and same else hi)
    a, b = st.columns(2)
    low = a.number_input("from", key=low_key, format="%.4g")
    high = b.number_input("to", key=high_key, format="%.4g")
    return (Range(column, float(low), float(high)),)


def describe_filter(spec: SampleFilter) -> str:
    """A one-line, Markdown-safe summary of the active filter."""
    parts = []
    if spec.labels:
        parts.append("class " + ", ".join(md(x) for x in spec.labels))
    if spec.splits:
        parts.append("split " + ", ".join(md(x) for x in spec.splits))
    if spec.issues:
        parts.append("issue " + ", ".join(md(x) for x in spec.issues))
    if spec.flagged is not None:
        parts.append("with issues" if spec.flagged else "without issues")
    if spec.min_score > 0:
        parts.append(f"score ≥ {spec.min_score:.2f}")
    parts += [f"{md(r.column)} in \\[{r.low:.4g}, {r.high:.4g}\\]" for r in spec.ranges]
    if spec.path_contains:
        parts.append(f"path contains “{md(spec.path_contains)}”")
    return "; ".join(parts) or "no filter"


def sort_options(table: SampleTable) -> list[str]:
    columns = [c for c in table.frame.columns if c != "sample_id"]
    return ["(table order)", *([ISSUE_SCORE] if table.issue_types else []), *columns]


def sort_ui(table: SampleTable, *, key: str = "sort") -> tuple[str | None, bool]:
    """Sort column and direction; "(table order)" keeps the index's path order, ISSUE_SCORE
    ranks by the filter's issue types only (the issue cards open Browse sorted by it)."""
    options = sort_options(table)
    a, b = st.columns([3, 1], vertical_alignment="bottom")
    column = a.selectbox("Sort by", options, key=f"{key}_col")
    descending = b.toggle("Descending", key=f"{key}_desc", value=True,
                          disabled=column == "(table order)")  # fmt: skip
    return (None if column == "(table order)" else column), descending


def pager_ui(total: int, *, key: str, per_page: int) -> int:
    n_pages = max(1, math.ceil(total / per_page))
    state.clamp_page(key, n_pages)
    return int(st.number_input(f"Page (of {n_pages:,})", 1, n_pages, key=key))


# --- the table and the grid -------------------------------------------------------------------


def decision_text(decision: Decision | None) -> str:
    if decision is None:
        return ""
    return "drop" if decision.action == "drop" else f"relabel → {decision.label}"


def page_frame(
    page: QueryPage,
    source: DatasetSource,
    decisions: dict[int, Decision],
    sort_by: str | None = None,
) -> pd.DataFrame:
    """The page's rows as shown: a thumbnail data URI and the curation decision first, then
    the sort column, then every other statistic."""
    rows = page.rows
    frame = rows.assign(
        thumbnail=[thumb_uri(source, p) for p in rows["path"]],
        decision=[decision_text(decisions.get(int(s))) for s in rows["sample_id"]],
    )
    if "phash" in frame.columns:  # 64-bit values lose digits as JavaScript numbers: show hex
        frame["phash"] = [f"{int(v) & (2**64 - 1):016x}" for v in frame["phash"]]
    first = [*LEAD_COLUMNS, *([sort_by] if sort_by and sort_by not in LEAD_COLUMNS else [])]
    rest = [c for c in frame.columns if c not in first and c != "sample_id"]
    return frame[[*first, *rest]].reset_index(drop=True)


def table_ui(
    page: QueryPage,
    source: DatasetSource,
    decisions: dict[int, Decision],
    *,
    key: str,
    sort_by: str | None = None,
) -> int | None:
    """The page as a table with thumbnails; returns the sample_id the user just selected.

    Streamlit's selection is a row position that would survive a filter change and point at
    another sample, so the widget key changes with the page contents and the position is
    turned into a sample_id at once.
    """
    ids = page.rows["sample_id"].tolist()
    digest = abs(hash((key, tuple(ids)))) % 10**12
    event = st.dataframe(
        page_frame(page, source, decisions, sort_by),
        key=f"{key}_{digest}",
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        row_height=ROW_HEIGHT,
        height=min(ROW_HEIGHT * len(ids) + 40, 800),
        column_config={
            "thumbnail": st.column_config.ImageColumn("image", width="small"),
            "max_score": st.column_config.ProgressColumn(
                "max score", min_value=0.0, max_value=1.0, format="%.2f"
            ),
        },
    )
    rows = event.selection.rows if event is not None else []
    return int(ids[rows[0]]) if rows and rows[0] < len(ids) else None


def caption_of(row: pd.Series, decision: Decision | None, extra: str = "") -> str:
    """A grid caption: label · split, issue names, decision; Markdown-safe."""
    parts = [md(row["label"]) + (f" · {md(row['split'])}" if row["split"] else "")]
    if row.get("issues"):
        parts.append("⚠️ " + md(row["issues"]))
    if decision is not None:
        parts.append("✂️ " + md(decision_text(decision)))
    if extra:
        parts.append(extra)
    return "  \n".join(parts)


def grid_ui(
    rows: pd.DataFrame,
    source: DatasetSource,
    decisions: dict[int, Decision],
    *,
    key: str,
    columns: int = 8,
    extras: Sequence[str] | None = None,
) -> int | None:
    """Thumbnails with label / issue badges and a Details button each; the clicked sample_id."""
    clicked = None
    records = list(rows.iterrows())
    for start in range(0, len(records), columns):
        cells = st.columns(columns)
        for j, (cell, (_, row)) in enumerate(
            zip(cells, records[start : start + columns], strict=False)
        ):
            sid = int(row["sample_id"])
            extra = extras[start + j] if extras is not None else ""
            with cell:
                _thumb_cell(source, row, decisions.get(sid), extra)
                if st.button("Details", key=f"{key}_{sid}", width="stretch"):
                    clicked = sid
    return clicked


def _thumb_cell(
    source: DatasetSource, row: pd.Series, decision: Decision | None, extra: str
) -> None:
    thumb = thumbnail_file(access.workspace().thumbnails, source.abspath(str(row["path"])))
    text = caption_of(row, decision, extra)
    if thumb is None:
        st.warning("unreadable", icon="⚠️")
        st.caption(text)
    else:
        pictures.image(thumb, caption=text, width="stretch")


# --- chart selections -------------------------------------------------------------------------


def histogram_trace_order(h: Histogram) -> list[int]:
    """Rows of `h.counts` in legend order: classes in natural order, OTHER last."""
    return sorted(range(len(h.groups)), key=lambda i: (h.groups[i] == OTHER,
                                                        natural_key(h.groups[i])))  # fmt: skip


def histogram_selection(
    selection: Mapping[str, Any] | None, h: Histogram, *, by_class: bool
) -> SampleFilter | None:
    """A plotly selection on the histogram (traces in `histogram_trace_order`) as a filter:
    a dragged box is an x-range; clicked bars are their bins' range (first to last) and their
    groups (classes, or splits when not coloured by class). None when nothing is selected."""
    if not selection:
        return None
    boxes = selection.get("box") or []
    if boxes and boxes[0].get("x"):
        lo, hi = sorted(float(x) for x in boxes[0]["x"][:2])
        return SampleFilter(ranges=(Range(h.column, lo, hi),))
    points = selection.get("points") or []
    if not points:
        return None
    bins = sorted({h.bin_of(float(p["x"])) for p in points})
    order = histogram_trace_order(h)
    groups = {h.groups[order[int(p["curve_number"])]] for p in points if "curve_number" in p}
    lo, hi = float(h.edges[bins[0]]), float(h.edges[bins[-1] + 1])
    last = bins[-1] == len(h.edges) - 2  # the last bin is closed, as in np.histogram
    if bins[0] == 0 and h.n_below:  # the edge bins also hold the far outliers beyond them
        lo = -math.inf
    if last and h.n_above:
        hi = math.inf
    picked = () if OTHER in groups else tuple(sorted(groups))
    return SampleFilter(
        labels=picked if by_class else (),
        splits=() if by_class else picked,
        ranges=(Range(h.column, lo, hi, include_high=last),),
    )
