"""A run's mistakes on the data pages: the run picker, the presets, the confusion matrix whose
cell choice filters the samples, per-class accuracy, a sample's prediction history, and the
label-issue signal of the Issues page. The numbers come from recipe_core.explore.mistakes;
these functions only render them and return what the user chose."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app import data_state, palette
from app.widgets import md, plot_text
from recipe_core import RecipeError
from recipe_core.explore.mistakes import (
    MISTAKE_PRESETS,
    RunPredictions,
    class_accuracy,
    confusion_cell,
    confusion_matrix,
)
from recipe_core.explore.query import SampleFilter
from recipe_core.scan import ScanResult

NO_RUN = "(none)"
ALL_CELLS = "(all cells)"
SCAN_SIGNAL = "scan baselines"
HISTORY_COLUMNS = ("step", "predicted", "correct", "p_label", "confidence", "loss", "margin")


@dataclass(frozen=True)
class MistakeView:
    """What the mistakes panel narrows a page to: a preset and / or one confusion cell."""

    preset: str | None
    cell: SampleFilter | None  # the samples of the chosen confusion-matrix cell
    note: str  # Markdown-safe description, "" when nothing is chosen

    def apply(
        self, spec: SampleFilter, sort_by: str | None, descending: bool
    ) -> tuple[SampleFilter, str | None, bool]:
        """`spec` narrowed to the preset and the cell; the preset's sort replaces the page's."""
        if self.preset is not None:
            p = MISTAKE_PRESETS[self.preset]
            spec = replace(spec, ranges=spec.ranges + p.spec.ranges)
            sort_by, descending = p.sort_by, p.descending
        if self.cell is not None:
            spec = replace(spec, sample_ids=self.cell.sample_ids)
        return spec, sort_by, descending


def run_picker_ui(target: Path) -> RunPredictions | None:
    """Sidebar choice of a run trained on this dataset; its predictions, or None."""
    runs = data_state.prediction_runs(target)
    with st.sidebar:
        st.header("Model run")
        if not runs:
            st.caption(
                "No run on this dataset has per-sample predictions yet: train one on the Runs "
                "page (its validation samples get loss, prediction and confidence columns)."
            )
            return None
        labels = {"": NO_RUN} | {s.run_id: f"{s.name} · {s.state} · {s.run_id}" for s in runs}
        data_state.point_run_choice("mistakes_run_choice", list(labels))
        run_id = st.selectbox(
            "Join a run's predictions",
            list(labels),
            key="mistakes_run_choice",
            format_func=labels.__getitem__,
            on_change=data_state.run_pick_changed,
            args=("mistakes_run_choice",),
            help="Adds the run's loss, prediction, confidence, correct and margin columns to "
            "the samples it evaluated (its validation split); the train split gets none.",
        )
        if not run_id:
            return None
        try:
            run = data_state.run_predictions(str(run_id))
        except RecipeError as error:
            st.error(md(error), icon="🚫")
            return None
        st.caption(f"Predictions of {md(run.label)}: {len(run.frame):,} samples.")
        return run


def mistakes_ui(run: RunPredictions, *, key: str) -> MistakeView:
    """The presets, the confusion matrix with its cell choice, and per-class accuracy."""
    st.subheader("Mistakes of " + md(run.label))
    preset = st.segmented_control("Show", list(MISTAKE_PRESETS), key=f"{key}_preset")
    matrix = confusion_matrix(run)
    left, right = st.columns([3, 2])
    with left:
        clicked = confusion_chart_ui(matrix, key=f"{key}_confusion_{run.run_id}_{run.step}")
        chosen, label = cell_choice_ui(matrix, clicked, key=f"{key}_cell_{run.run_id}_{run.step}")
    with right:
        accuracy_table(run)
    cell = None if chosen is None else confusion_cell(run, *chosen)
    parts = [_preset_note(preset)] if preset else []
    parts += [md(label)] if chosen else []
    return MistakeView(preset, cell, "; ".join(parts))


def confusion_chart_ui(matrix: pd.DataFrame, *, key: str) -> tuple[str, str] | None:
    """The matrix as a chart; the (true, predicted) cell the user clicked, else None."""
    event = st.plotly_chart(
        confusion_figure(matrix), key=key, on_select="rerun", selection_mode="points"
    )
    return confusion_selection(event.selection, matrix)


def cell_choice_ui(
    matrix: pd.DataFrame, clicked: tuple[str, str] | None, *, key: str
) -> tuple[tuple[str, str] | None, str]:
    """The cell to filter by: the clicked one, else the selectbox's; and how to name it."""
    cells = {ALL_CELLS: None} | {cell_name(matrix, t, p): (t, p) for t in matrix.index
                                 for p in matrix.columns if matrix.loc[t, p] > 0}  # fmt: skip
    choice = st.selectbox(
        "Confusion cell", list(cells), key=key, disabled=clicked is not None,
        help="Show only the samples of one cell (true class, prediction): choose it here or "
        "click it in the matrix (double-click the matrix to clear a click).",
    )  # fmt: skip
    if clicked is not None:
        st.caption(
            f"Clicked: {md(cell_name(matrix, *clicked))} (double-click the matrix to clear)."
        )
        return clicked, cell_name(matrix, *clicked)
    return cells[choice], choice


def cell_name(matrix: pd.DataFrame, true: str, predicted: str) -> str:
    return f"true {true} → predicted {predicted} ({matrix.loc[true, predicted]})"


def confusion_selection(
    selection: Mapping[str, Any] | None, matrix: pd.DataFrame
) -> tuple[str, str] | None:
    """A plotly selection on `confusion_figure` as the (true, predicted) cell clicked: the
    cells' trace (curve 1) lists every cell row by row, true class first."""
    points = [p for p in (selection or {}).get("points") or [] if p.get("curve_number") == 1]
    if not points or "point_index" not in points[0]:
        return None
    i, k = int(points[0]["point_index"]), len(matrix.columns)
    if not 0 <= i < len(matrix.index) * k:
        return None
    return str(matrix.index[i // k]), str(matrix.columns[i % k])


def _preset_note(name: str) -> str:
    p = MISTAKE_PRESETS[name]
    return f"{md(name).lower()}, {md(p.sort_by)} {'highest' if p.descending else 'lowest'} first"


def confusion_figure(matrix: pd.DataFrame) -> go.Figure:
    """Counts as a heatmap, true class down, prediction across; off-diagonal cells are errors.
    An invisible marker on every cell (curve 1) makes cells clickable: plotly heatmaps emit no
    selection events."""
    xs, ys = [plot_text(c) for c in matrix.columns], [plot_text(c) for c in matrix.index]
    counts = matrix.to_numpy()
    fig = go.Figure(
        go.Heatmap(z=counts, x=xs, y=ys, colorscale=palette.SEQUENTIAL, text=counts,
                   texttemplate="%{text}", hoverinfo="skip")
    )  # fmt: skip
    k = len(xs)
    fig.add_scatter(
        x=xs * len(ys),
        y=[y for y in ys for _ in range(k)],
        customdata=counts.ravel(),
        mode="markers",
        marker={"symbol": "square", "size": max(12, 300 // max(k, 1)), "opacity": 0},
        selected={"marker": {"opacity": 0.45, "color": palette.ORANGE}},
        unselected={"marker": {"opacity": 0}},
        hovertemplate="true %{y}, predicted %{x}: %{customdata} samples (click to filter)"
        "<extra></extra>",
        showlegend=False,
    )
    fig.update_layout(
        height=360,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis_title="predicted",
        yaxis_title="true",
        yaxis_autorange="reversed",
        xaxis_type="category",
        yaxis_type="category",
        dragmode=False,
    )
    return fig


def accuracy_table(run: RunPredictions) -> None:
    per_class = class_accuracy(run)
    st.markdown(f"**Per-class accuracy** at step {run.step}")
    st.dataframe(
        per_class.rename(columns={"mistaken_for": "most often taken for"}),
        hide_index=True,
        width="stretch",
        key=f"class_accuracy_{run.run_id}",
        column_config={
            "accuracy": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0,
                                                        format="%.2f"),
            "loss": st.column_config.NumberColumn(format="%.3f"),
        },
    )  # fmt: skip


def history_panel(run: RunPredictions | None) -> Callable[[int], None] | None:
    """The sample detail's prediction history under its scan issues (None without a run)."""
    if run is None:
        return None

    def show(sample_id: int) -> None:
        st.markdown(f"**Prediction history** ({md(run.label)})")
        try:
            history = data_state.prediction_history(run.run_id, sample_id)
        except RecipeError as error:
            st.error(md(error), icon="🚫")
            return
        if history.empty:
            st.caption("The run did not evaluate this sample (it is not in its validation set).")
            return
        names = np.asarray(run.classes, dtype=object)
        shown = history.assign(predicted=names[history["predicted"].to_numpy()])
        numbers = {c: st.column_config.NumberColumn(format="%.3f") for c in HISTORY_COLUMNS[3:]}
        st.dataframe(shown[list(HISTORY_COLUMNS)], hide_index=True, width="stretch",
                     key=f"history_{sample_id}", column_config=numbers)  # fmt: skip

    return show


def label_signal_ui(root: Path, result: ScanResult, run: RunPredictions | None) -> tuple[
    pd.DataFrame, str
]:  # fmt: skip
    """The issues to show and the label-issue signal they came from: the scan's baselines, or
    confident learning on the picked run's validation probabilities."""
    if run is None:
        return result.issues, SCAN_SIGNAL
    with st.sidebar:
        choice = st.radio(
            "Label-issue signal",
            [SCAN_SIGNAL, run.label],
            key="label_signal",
            help="Scan baselines: out-of-fold ridge + kNN on the embeddings, every labelled "
            "sample. A run: confident learning on its validation probabilities, for the "
            "samples it evaluated (the scan's verdict stays for the rest).",
        )
    if choice == SCAN_SIGNAL:
        return result.issues, SCAN_SIGNAL
    try:
        return data_state.run_issues(root, run), run.label
    except RecipeError as error:
        st.error(md(error), icon="🚫")
        return result.issues, SCAN_SIGNAL


def signal_note(rows: pd.DataFrame, signal: str, run: RunPredictions | None) -> str:
    """The label tab's caption: which signal found `rows` (label_issue rows), and for a run's,
    how many it found among the samples it evaluated and how many are the scan's."""
    note = f"Signal: {md(signal)}."
    if run is None or signal == SCAN_SIGNAL or "signal" not in rows.columns:
        return note
    found = int((rows["signal"] == "run").sum())
    return (
        f"{note} It flags {found} of the {len(run.frame):,} samples it evaluated; the other "
        f"{len(rows) - found} rows are the scan's, for samples the run did not evaluate."
    )
