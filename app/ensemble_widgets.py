"""Renderers of the Ensembles page: the run picker, ensemble vs best single run (metrics, table,
bars) and the pictures of the samples the ensemble changes. Input widgets end in `_ui`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app import pictures
from app.widgets import md, plot_text
from recipe_core.explore.ensemble import (
    MAX_RUNS,
    Candidate,
    EnsembleResult,
    SampleOutcome,
)

COLUMNS = 8  # pictures per row
ENSEMBLE_COLOUR, RUN_COLOUR, BEST_COLOUR = "#0072B2", "#BBBBBB", "#E69F00"  # Okabe-Ito


def runs_ui(candidates: list[Candidate], *, key: str = "ensemble_runs") -> list[str]:
    """A multiselect of 2-5 of the finished runs; returns the chosen run ids."""
    by_id = {c.run_id: c for c in candidates}

    def label(run_id: str) -> str:
        c = by_id[run_id]
        loss = f"best val loss {c.best_val_loss:.4f}" if c.best_val_loss == c.best_val_loss else ""
        return f"{run_id} · {c.name} · seed {c.seed} · {loss}".rstrip(" ·")

    chosen = st.multiselect(
        f"Runs to ensemble (2 to {MAX_RUNS})",
        list(by_id),
        format_func=label,
        max_selections=MAX_RUNS,
        key=key,
        help="Finished runs of this dataset. Runs that differ only in their seed are the "
        "classic ensemble; different models work too.",
    )
    return [str(r) for r in chosen]


def result_ui(result: EnsembleResult, images: dict[int, np.ndarray]) -> None:
    """Ensemble vs best single run, then the samples it gets right (and wrong) against it."""
    best = result.best
    st.subheader("Ensemble vs best single run")
    a, b, c = st.columns(3)
    a.metric("Ensemble val loss", f"{result.val_loss:.4f}",
             delta=f"{result.val_loss - best.val_loss:+.4f} vs best single",
             delta_color="inverse")  # fmt: skip
    a.caption(f"best single run: {md(best.run_id)}, {best.val_loss:.4f}")
    b.metric("Ensemble val accuracy", f"{result.val_accuracy:.2%}",
             delta=f"{(result.val_accuracy - best.val_accuracy) * 100:+.2f} points")  # fmt: skip
    b.caption(f"best single run: {best.val_accuracy:.2%}")
    c.metric("Only the ensemble gets right", f"{len(result.only_ensemble_right)}")
    c.caption(f"of {result.val_size:,} validation samples; no member alone gets them right")
    st.dataframe(scores_frame(result), hide_index=True, width="stretch")
    st.caption(
        f"Evaluated {md(result.created)} on {md(result.device)}: each run's checkpoint (best "
        "validation loss, else the last) on the same validation split; the ensemble averages "
        "their softmax probabilities."
    )
    left, right = st.columns(2)
    with left:
        st.plotly_chart(_bars(result, "val_loss", "validation loss (lower is better)"),
                        width="stretch")  # fmt: skip
    with right:
        st.plotly_chart(_bars(result, "val_accuracy", "validation accuracy"), width="stretch")
    only = set(result.only_ensemble_right)
    _samples_ui(
        f"Only the ensemble gets right ({len(only)})",
        [o for o in result.better_than_best if o.sample_id in only], images,
        "No sample that every member gets wrong is right in the ensemble.",
    )  # fmt: skip
    _samples_ui(
        f"Ensemble right, best single run wrong ({len(result.better_than_best)})",
        list(result.better_than_best), images, "None.",
    )  # fmt: skip
    _samples_ui(
        f"Best single run right, ensemble wrong ({len(result.worse_than_best)})",
        list(result.worse_than_best), images, "None.",
    )  # fmt: skip


def scores_frame(result: EnsembleResult) -> pd.DataFrame:
    """One row per member and one for the ensemble: what the table and the bars show."""
    best = result.best.run_id
    rows = [{"model": m.run_id, "name": m.name, "checkpoint": f"{m.checkpoint} (step {m.step})",
             "val loss": m.val_loss, "val accuracy": m.val_accuracy,
             "best single": m.run_id == best} for m in result.members]  # fmt: skip
    rows.append({"model": "ensemble", "name": f"mean of {len(result.members)} runs",
                 "checkpoint": "", "val loss": result.val_loss,
                 "val accuracy": result.val_accuracy, "best single": False})  # fmt: skip
    return pd.DataFrame(rows)


def _bars(result: EnsembleResult, field: str, title: str) -> go.Figure:
    best = result.best.run_id
    names = [*(m.run_id for m in result.members), "ensemble"]
    values = [*(getattr(m, field) for m in result.members), getattr(result, field)]
    colours = [BEST_COLOUR if n == best else RUN_COLOUR for n in names[:-1]] + [ENSEMBLE_COLOUR]
    fig = go.Figure(go.Bar(x=[plot_text(n) for n in names], y=values, marker_color=colours,
                           text=[f"{v:.4f}" for v in values], textposition="outside"))  # fmt: skip
    fig.update_layout(title=title, height=320, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    fig.update_xaxes(type="category")
    return fig


def _samples_ui(
    title: str, outcomes: list[SampleOutcome], images: dict[int, np.ndarray], empty: str
) -> None:
    with st.expander(title, expanded=bool(outcomes)):
        if not outcomes:
            st.caption(empty)
            return
        for start in range(0, len(outcomes), COLUMNS):
            for cell, o in zip(st.columns(COLUMNS), outcomes[start : start + COLUMNS],
                               strict=False):  # fmt: skip
                with cell:
                    if o.sample_id in images:
                        pictures.image(images[o.sample_id], width="stretch")
                    st.caption(md(_caption(o)))


def _caption(o: SampleOutcome) -> str:
    return (f"#{o.sample_id} {o.label}: ensemble {o.ensemble} (p {o.p_label:.2f}), "
            f"best {o.best} (p {o.p_label_best:.2f})")  # fmt: skip
