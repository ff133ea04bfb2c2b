"""The only module that touches `st.session_state` and `st.cache_*`.

Everything cached here is a `recipe_core` result; `cache_resource` (not `cache_data`) because the
results are large and read-only, and `cache_data` would copy them on every rerun.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from recipe_core import DatasetOverview, DatasetSource, Workspace, open_dataset, open_workspace
from recipe_core import summarize as summarize_dataset

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DATASET = REPO_ROOT / "sample_data" / "digits"
DATASET_KEY = "dataset_path"


def default_dataset() -> str:
    """The dataset `recipe app DATASET` was started with, else the bundled sample data."""
    return os.environ.get("RECIPE_DATASET") or str(SAMPLE_DATASET)


def current_dataset() -> str:
    if DATASET_KEY not in st.session_state:
        st.session_state[DATASET_KEY] = default_dataset()
    return str(st.session_state[DATASET_KEY])


def set_dataset(path: str) -> None:
    st.session_state[DATASET_KEY] = path


@st.cache_resource(show_spinner=False)
def workspace() -> Workspace:
    return open_workspace()


@st.cache_resource(show_spinner="Listing the dataset…", max_entries=16)
def dataset_source(path: str) -> DatasetSource:
    return open_dataset(path)


@st.cache_resource(show_spinner="Reading image headers…", max_entries=16)
def dataset_overview(path: str) -> DatasetOverview:
    return summarize_dataset(dataset_source(path))


def reload_dataset() -> None:
    """Forget cached listings (after files were added or removed on disk)."""
    dataset_source.clear()
    dataset_overview.clear()


def clamp_page(key: str, n_pages: int) -> None:
    """Keep a page-number widget's value in range when a filter shrinks the page count."""
    page = int(st.session_state.get(key, 1))
    st.session_state[key] = min(max(page, 1), max(n_pages, 1))
