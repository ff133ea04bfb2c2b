"""Reusable renderers. Input widgets' functions end in `_ui` and return what the user chose."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.express as px
import streamlit as st

from app import state
from recipe_core import DatasetSource
from recipe_core.thumbnails import thumbnail_file


def dataset_path_ui(*, key: str = "dataset_input") -> str:
    """A dataset path box prefilled with the current dataset; returns the chosen path."""
    current = state.current_dataset()
    chosen = st.text_input(
        "Dataset path",
        value=current,
        key=key,
        help="An image folder: one sub-folder per class, optionally inside train/val/test.",
    ).strip()
    if chosen and chosen != current:
        state.set_dataset(chosen)
    return chosen or current


def class_counts_chart(counts: pd.DataFrame) -> None:
    """Bar chart of samples per class, one bar colour per split."""
    frame = counts.assign(split=counts["split"].replace("", "(no split)"))
    fig = px.bar(
        frame, x="label", y="count", color="split", barmode="group",
        labels={"label": "class", "count": "samples"},
        category_orders={"label": sorted(frame["label"].unique(), key=_natural_key)},
    )  # fmt: skip
    fig.update_xaxes(type="category")  # one tick per class, even for numeric class names
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 30, "b": 10})
    st.plotly_chart(fig, width="stretch")


def image_grid(
    source: DatasetSource,
    rows: pd.DataFrame,
    *,
    columns: int = 8,
    captions: Sequence[str] | None = None,
) -> None:
    """Thumbnails of `rows` (sample table rows) with captions; unreadable files say so."""
    cache = state.workspace().thumbnails
    texts = list(captions) if captions is not None else [_caption(r) for r in rows.itertuples()]
    paths = rows["path"].tolist()
    for start in range(0, len(paths), columns):
        cells = st.columns(columns)
        for cell, path, text in zip(
            cells, paths[start : start + columns], texts[start:], strict=False
        ):
            thumb = thumbnail_file(cache, source.abspath(path))
            with cell:
                if thumb is None:
                    st.warning("unreadable", icon="⚠️")
                    st.caption(text)
                else:
                    st.image(str(thumb), caption=text, width="stretch")


def _caption(row: object) -> str:
    label = getattr(row, "label", "")
    split = getattr(row, "split", "")
    return f"{label} · {split}" if split else str(label)


def _natural_key(value: str) -> tuple[int, int | str]:
    return (0, int(value)) if value.isdigit() else (1, value)
