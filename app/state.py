"""Session state shared by the pages: the current dataset, the Browse filter, the selected
sample and page numbers. Only app/*state.py and app/access.py touch `st.session_state` and
`st.cache_*`; `cache_resource` (not `cache_data`) because the results are large and read-only,
and `cache_data` would copy them on every rerun. Cache keys carry the workspace root and file
stamps, so a rescan or another workspace never sees stale entries."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from app import access
from recipe_core.explore.query import SampleFilter

if TYPE_CHECKING:
    pass


REPO_ROOT = Path(__file__).resolve().parents[1]


SAMPLE_DATASET = REPO_ROOT / "sample_data" / "digits"


DATASET_KEY = "dataset_path"


FILTER_KEY = "sample_filter"  # the Browse filter (a SampleFilter), shared by the data pages


SELECTED_KEY = "selected_sample"  # sample_id of the sample in the detail panel


def default_dataset() -> str:
    """The dataset `recipe app DATASET` was started with, else the bundled sample data (in
    serve mode: the first configured data root)."""
    config = access.serve_config()
    if config is not None:
        return str(config.roots[0])
    return access.settings().dataset or str(SAMPLE_DATASET)


def current_dataset() -> str:
    if DATASET_KEY not in st.session_state:
        st.session_state[DATASET_KEY] = default_dataset()
    return str(st.session_state[DATASET_KEY])


def current_target() -> Path:
    """The current dataset's resolved path (folder or manifest file): the key of its scan
    and its curation data_state.decisions."""
    return access.path_policy().resolve(current_dataset())


def set_dataset(path: str) -> None:
    if st.session_state.get(DATASET_KEY) != path:
        st.session_state[FILTER_KEY] = SampleFilter()  # another dataset's classes don't apply
        st.session_state.pop(SELECTED_KEY, None)
    st.session_state[DATASET_KEY] = path


def typed_dataset(key: str) -> str:
    """What the dataset path box `key` holds this run ("" before it was first drawn)."""
    return str(st.session_state.get(key, "")).strip()


def point_dataset_pick(key: str, options: list[str]) -> None:
    """Point the dataset picker `key` at the current dataset before it is drawn (the first
    option when that is not among `options`), so every page's picker shows the same one."""
    current = current_dataset()
    st.session_state[key] = current if current in options else options[0]


def pick_dataset(pick_key: str, text_key: str) -> None:
    """on_change of a dataset picker: its choice becomes the current dataset, and the path box
    beside it shows that path."""
    set_dataset(str(st.session_state[pick_key]))
    st.session_state.pop(text_key, None)  # redrawn with the new dataset as its value


def page_number(key: str) -> int:
    """The page a page-number widget shows (1 before it was first drawn)."""
    return int(st.session_state.get(key, 1))


def clamp_page(key: str, n_pages: int) -> None:
    """Keep a page-number widget's value in range when a filter shrinks the page count."""
    page = int(st.session_state.get(key, 1))
    st.session_state[key] = min(max(page, 1), max(n_pages, 1))


def browse_filter() -> SampleFilter:
    spec = st.session_state.get(FILTER_KEY)
    return spec if isinstance(spec, SampleFilter) else SampleFilter()


def set_browse_filter(spec: SampleFilter) -> None:
    st.session_state[FILTER_KEY] = spec


def show_issues(issues: tuple[str, ...], *, sort_by: str | None = None) -> None:
    """Reset the Browse filter to `issues` only (the overview's issue cards link here), and
    with `sort_by` sort Browse by that column, largest first."""
    set_browse_filter(replace(SampleFilter(), issues=issues))
    for key in [k for k in st.session_state if str(k).startswith("flt_")]:
        del st.session_state[key]  # filter widgets re-read the new filter
    if sort_by is not None:
        st.session_state["browse_sort_col"], st.session_state["browse_sort_desc"] = sort_by, True


def widget_value(key: str, default: object) -> None:
    """Seed a widget's session value once (so a filter set elsewhere shows in its widget)."""
    if key not in st.session_state:
        st.session_state[key] = default


def selected_sample() -> int | None:
    value = st.session_state.get(SELECTED_KEY)
    return int(value) if value is not None else None


def select_sample(sample_id: int | None) -> None:
    st.session_state[SELECTED_KEY] = sample_id


def remember(key: str, value: object) -> object:
    """Store `value` under `key`; returns the previous value (None when new)."""
    previous = st.session_state.get(key)
    st.session_state[key] = value
    return previous


def shift_page(key: str, delta: int, n_pages: int) -> None:
    """on_click of previous/next buttons: move the page-number widget `key` by `delta`."""
    st.session_state[key] = min(max(page_number(key) + delta, 1), max(n_pages, 1))
