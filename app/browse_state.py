"""State of the Browse reading aids: the scan's embedding map (cached per scan result), a
map click remembered so it opens a sample once, tags and saved views in the workspace."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app import access, data_state, state
from recipe_core.explore.embedding_map import EmbeddingMap, embedding_map
from recipe_core.explore.saved_views import (
    SavedView,
    delete_view,
    load_views,
    save_view,
    views_file,
)
from recipe_core.explore.tags import Tags, add_tag, load_tags, remove_tag, tags_file


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


# --- tags (recipe_core/explore/tags.py) -------------------------------------------------------


def tags(root: Path) -> Tags:
    """Every tagged sample's tags for dataset `root` (re-read when the file changes)."""
    path = tags_file(access.workspace(), root)
    try:
        stamp = path.stat().st_mtime_ns, path.stat().st_size
    except OSError:
        return {}
    return dict(_tags(str(access.workspace().root), str(root), stamp))


@st.cache_resource(show_spinner=False, max_entries=8)
def _tags(ws_root: str, root: str, stamp: tuple[int, int]) -> Tags:
    return load_tags(access.workspace(), root)


def tag(root: Path, sample_ids: list[int], word: str) -> None:
    """Tag samples (runners only, like curation: tags are shared by the team)."""
    with access.guard().acting("curation_decision", f"{root} tag {word} x{len(sample_ids)}"):
        add_tag(access.workspace(), access.path_policy().resolve(root), sample_ids, word)


def untag(root: Path, sample_ids: list[int], word: str) -> None:
    with access.guard().acting("curation_decision", f"{root} untag {word} x{len(sample_ids)}"):
        remove_tag(access.workspace(), access.path_policy().resolve(root), sample_ids, word)


# --- saved views (recipe_core/explore/saved_views.py) -----------------------------------------


def views(root: Path) -> list[SavedView]:
    """The dataset's saved views (re-read when the file changes)."""
    path = views_file(access.workspace(), root)
    try:
        stamp = path.stat().st_mtime_ns, path.stat().st_size
    except OSError:
        return []
    return list(_views(str(access.workspace().root), str(root), stamp))


@st.cache_resource(show_spinner=False, max_entries=8)
def _views(ws_root: str, root: str, stamp: tuple[int, int]) -> list[SavedView]:
    return load_views(access.workspace(), root)


def save(root: Path, view: SavedView) -> None:
    """Save a view for everyone browsing this dataset (runners only)."""
    with access.guard().acting("curation_decision", f"{root} save view {view.name}"):
        save_view(access.workspace(), access.path_policy().resolve(root), view)


def forget(root: Path, name: str) -> None:
    with access.guard().acting("curation_decision", f"{root} delete view {name}"):
        delete_view(access.workspace(), access.path_policy().resolve(root), name)


def apply_view(view: SavedView, sort_options: list[str], tag_options: list[str]) -> None:
    """on_click: make `view` the Browse filter, sort and tag choice before the widgets draw
    (a sort column or tag that no longer exists is left out)."""
    state.show_issues(())  # clears the filter widgets so they re-read the new filter
    state.set_browse_filter(view.spec)
    st.session_state["flt_tags"] = [t for t in view.tags if t in tag_options]
    column = view.sort_by if view.sort_by in sort_options else "(table order)"
    st.session_state["browse_sort_col"] = column
    st.session_state["browse_sort_desc"] = view.descending
    st.session_state["browse_page"] = 1


def view_name() -> str:
    """What the "Save … as" box holds (read before the box is drawn, further down the page)."""
    return str(st.session_state.get("saved_view_name", "")).strip()
