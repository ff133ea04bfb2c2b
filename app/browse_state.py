"""State of the Browse reading aids: the scan's embedding map (cached per scan result), a
map click remembered so it opens a sample once, tags and saved views in the workspace."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app import data_state
from recipe_core.explore.embedding_map import EmbeddingMap, embedding_map


def scan_map(root: Path) -> EmbeddingMap | None:
    """The 2-D map of the scan of `root` (computed once per scan result), None without one."""
    written = data_state.scan_written(root)
    return None if not written else _scan_map(str(root), written)


@st.cache_resource(show_spinner="Projecting the embeddings…", max_entries=4)
def _scan_map(root: str, written: float) -> EmbeddingMap | None:
    result = data_state.scan_result(Path(root))
    if result is None:
        return None
    return embedding_map(result.index.embeddings, valid=result.index.valid)


def clicked_once(key: str, sample_id: int | None) -> int | None:
    """`sample_id` the first run a chart selection shows it, else None: a selection persists
    across reruns, and closing the detail must not reopen it."""
    previous = st.session_state.get(key)
    st.session_state[key] = sample_id
    return sample_id if sample_id is not None and sample_id != previous else None
