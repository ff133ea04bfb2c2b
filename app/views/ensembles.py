"""Ensembles: pick 2-5 finished runs of the open dataset, average their probabilities on the
validation split, and see the ensemble next to the best single run.

The evaluation (`recipe_core.explore.ensemble.evaluate_ensemble`) runs in the script thread,
with a spinner, on the CPU: it is one forward pass per run over the validation split (about a
second on the sample digits). Bigger work (more than IN_PAGE_SAMPLES validation samples over
the chosen runs) is not started here, since a rerun would kill it; the page gives the
`recipe ensemble` command instead, whose saved result this page then shows.
"""

from __future__ import annotations

import streamlit as st

from app import access, ensemble_widgets, state
from app.widgets import md
from recipe_core import RecipeError
from recipe_core.explore.ensemble import (
    MIN_RUNS,
    Candidate,
    EnsembleResult,
    ensemble_candidates,
    ensemble_pictures,
    evaluate_ensemble,
    find_ensemble,
    stale_members,
)

IN_PAGE_SAMPLES = 20_000  # validation samples x runs evaluated in the page (seconds on a CPU)
VIEWER_TEXT = "Viewers see saved ensembles; ask an operator for the runner role to evaluate one."

st.title("🎻 Ensembles")
st.caption(
    "Squeeze out the juice: a few models trained with different seeds, their probabilities "
    "averaged, almost always beat the best one of them. Pick finished runs of this dataset "
    "and see by how much, and on which samples."
)


def ensembles_page() -> None:
    try:
        target = state.current_target()
    except RecipeError as error:
        st.warning(f"Current dataset: {error}", icon="⚠️")
        return
    ws = access.workspace()
    candidates = ensemble_candidates(ws, target)
    if len(candidates) < MIN_RUNS:
        st.info(
            f"An ensemble needs at least {MIN_RUNS} finished runs of {md(target.name)}; "
            f"found {len(candidates)}. Start a few runs that differ only in their seed."
        )
        st.page_link("views/runs.py", label="Start runs", icon="🏃")
        return
    chosen = ensemble_widgets.runs_ui(candidates)
    if len(chosen) < MIN_RUNS:
        st.caption("Pick 2 to 5 runs.")
        return
    result = find_ensemble(ws, chosen)
    if access.can("start_run"):
        result = _evaluate_ui(chosen, result is not None, candidates) or result
    elif result is None:
        st.info(VIEWER_TEXT)
    if result is None:
        return
    stale = stale_members(ws, result)
    if stale:
        st.warning(
            f"Run(s) {md(', '.join(stale))} changed since this ensemble was evaluated (left "
            "training?): these numbers describe their old checkpoints. Evaluate again.",
            icon="⚠️",
        )
    ensemble_widgets.result_ui(result, ensemble_pictures(ws, result))


def _evaluate_ui(
    chosen: list[str], saved: bool, candidates: list[Candidate]
) -> EnsembleResult | None:
    """The evaluate button; the new result when it was pressed and the evaluation ran."""
    label = "Evaluate again" if saved else "Evaluate the ensemble"
    if not st.button(label, type="primary", key="ensemble_evaluate"):
        if not saved:
            st.caption("Not evaluated yet for these runs.")
        return None
    sizes = {c.run_id: c.val_size for c in candidates}
    work = sum(sizes.get(r, 0) for r in chosen)
    command = f"recipe ensemble {' '.join(chosen)}"
    if work > IN_PAGE_SAMPLES:
        st.warning(
            f"{work:,} validation predictions are too many to compute in the page (a rerun "
            f"would stop them). Run `{command}` in a terminal; its result appears here.",
            icon="⏳",
        )
        return None
    try:
        with st.spinner(f"Evaluating {len(chosen)} runs on the validation split…"):
            return evaluate_ensemble(access.workspace(), chosen, device="cpu")
    except RecipeError as error:
        st.error(md(str(error)), icon="🚫")
        return None


ensembles_page()
