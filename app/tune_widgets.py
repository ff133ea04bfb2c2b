"""Random search from the Runs page (the recipe's step 5, "tune"): the form that starts one and
each search's trials, with its best marked and every searched value against the metric.

The search runs as a background job (recipe_core.tune.job): its trials are ordinary runs, so
the runs table, the run detail and Compare show them like any other; this panel groups them.
"""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app import access, data_state, palette, run_state, widgets
from recipe_core import RecipeError
from recipe_core.train import PRESETS, make_config
from recipe_core.train.models import MODELS
from recipe_core.tune.job import MAX_TRIALS, SearchSummary
from recipe_core.tune.space import tunable_fields
from recipe_core.tune.trials import METRICS

DEFAULT_SPACE = "lr=loguniform:1e-4:1e-2\nbatch_size=choice:32,64,128"
SPACE_HELP = (
    "One parameter per line, FIELD=DIST:ARGS. DIST: loguniform:LOW:HIGH, uniform:LOW:HIGH, "
    "randint:LOW:HIGH (both included), choice:A,B,C. E.g. lr=loguniform:1e-4:1e-2, "
    "dropout=uniform:0:0.5, model=choice:mlp,small_cnn. Fields: "
)
PARALLEL_HELP = "Trials training at the same time, each one background job."
SHOWN = 5  # searches listed (newest first); older ones stay in the runs table


def search_form() -> None:
    """Dataset, model, preset, the space, trials and how many at once; starts the search."""
    if access.settings().executor not in ("", "local"):
        st.info(
            "A search started here runs its trials on this machine; this dashboard trains on "
            "Ray. Run `recipe tune DATASET -p ... --executor ray` for a search on the cluster "
            "(Ray Tune with early stopping): its trials show up here as runs.",
            icon="☁️",
        )
        return
    a, b, c = st.columns([3, 1, 3])
    path = widgets.dataset_path_ui(key="tune_dataset", where=a, suffix=" (every trial)")
    model = b.selectbox("Model (every trial)", list(MODELS), index=list(MODELS).index("small_cnn"),
                        key="tune_model")  # fmt: skip
    preset = str(c.selectbox("Preset the trials start from", list(PRESETS), key="tune_preset"))
    defaults = make_config("", preset=preset)
    fields = ", ".join(sorted(tunable_fields()))
    text = st.text_area("Parameters to search, one per line", DEFAULT_SPACE, key="tune_space",
                        help=SPACE_HELP + fields)  # fmt: skip
    d, e, f, g, h = st.columns(5)
    trials = int(d.number_input("Trials", min_value=1, max_value=MAX_TRIALS, value=6,
                                key="tune_trials"))  # fmt: skip
    parallel = int(e.number_input("At once", min_value=1, max_value=8, value=1,
                                  key="tune_parallel", help=PARALLEL_HELP))  # fmt: skip
    cap = access.max_steps()
    steps = int(f.number_input("Steps per trial", min_value=1, max_value=cap,
                               value=min(defaults.steps, cap or defaults.steps),
                               key=f"tune_steps_{preset}"))  # fmt: skip
    seed = int(g.number_input("Seed of the draw", min_value=0, value=0, key="tune_seed",
                              help="The same seed draws the same trials."))  # fmt: skip
    metric = str(h.selectbox("Best by", list(METRICS), key="tune_metric",
                             format_func=_metric_label))  # fmt: skip
    device = "cuda" if run_state.cuda_available() else "cpu"
    if st.button("Start search", type="primary", key="tune_start"):
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        try:
            data_state.dataset_source(path)
            config = make_config(str(access.path_policy().resolve(path)), preset=preset,
                                 model=str(model), steps=steps, device=device)  # fmt: skip
            job = run_state.start_search(config, lines, trials=trials, parallel=parallel,
                                         seed=seed, metric=metric)  # fmt: skip
        except RecipeError as error:
            st.error(widgets.md(error), icon="🚫")
            return
        st.toast(f"Started search {job.search_id}: {len(job.run_ids)} trials", icon="🔎")


def searches_panel(summaries: list[SearchSummary]) -> None:
    for summary in summaries[:SHOWN]:
        with st.container(border=True):
            _search(summary)
    if len(summaries) > SHOWN:
        st.caption(f"{len(summaries) - SHOWN} older searches: their trials are in the runs table "
                   "(named tune-ID-tNN).")  # fmt: skip


def _search(summary: SearchSummary) -> None:
    result = summary.result
    best = result.best
    n = len(result.trials)
    state = "finished" if summary.finished else f"{summary.done} of {n} trials done"
    best_text = (f"best {result.metric} **{best.best:.4g}** (trial {best.trial})"
                 if best is not None else f"no {result.metric} yet")  # fmt: skip
    st.markdown(f"**Search {summary.search_id}** · {state} · {best_text}")
    st.caption("Searching " + "; ".join(f"`{s.replace('`', '')}`" for s in summary.space))
    st.dataframe(trial_table(summary), hide_index=True, width="stretch",
                 height=min(320, 38 + 35 * n))  # fmt: skip
    figure = value_charts(summary)
    if figure is not None:
        st.plotly_chart(
            figure, key=f"tune_chart_{summary.search_id}", config={"displaylogo": False}
        )
        st.caption("Each dot is a trial, at the value it drew; the orange one is the best.")
    left, right = st.columns(2)
    ids = [t.run_id for t in result.trials]
    left.button("Compare these trials", key=f"tune_compare_{summary.search_id}",
                on_click=run_state.compare_runs, args=(ids,),
                help="Overlay their curves below.")  # fmt: skip
    cancel = not summary.finished and access.can("cancel_run")
    if cancel and right.button("Cancel search", key=f"tune_cancel_{summary.search_id}"):
        try:
            with st.spinner(f"Stopping search {summary.search_id}…"):
                run_state.cancel_search(summary.search_id)
        except RecipeError as error:
            st.error(widgets.md(error), icon="🚫")
            return
        st.rerun(scope="app")


def trial_table(summary: SearchSummary) -> pd.DataFrame:
    """One row per trial: its values, best metric (the search's best starred), state, steps."""
    result, best = summary.result, summary.result.best
    names = sorted({k for t in result.trials for k in t.params})
    rows = []
    for t in result.trials:
        star = " ★" if best is not None and t.run_id == best.run_id else ""
        row: dict[str, object] = {"trial": f"{t.trial}{star}"}
        row.update({name: t.params.get(name) for name in names})
        row[f"best {result.metric}"] = t.best if math.isfinite(t.best) else None
        row.update({"state": t.state, "steps": t.steps, "run id": t.run_id, "reason": t.error})
        rows.append(row)
    return pd.DataFrame(rows)


def value_charts(summary: SearchSummary) -> go.Figure | None:
    """Each searched number against the trials' best metric, side by side (log x for a
    loguniform range); None until a trial has a value."""
    result = summary.result
    scored = [t for t in result.trials if math.isfinite(t.best)]
    numeric = sorted({k for t in scored for k, v in t.params.items()
                      if isinstance(v, int | float) and not isinstance(v, bool)})  # fmt: skip
    if not scored or not numeric:
        return None
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=1, cols=len(numeric), shared_yaxes=True,
                           subplot_titles=numeric, horizontal_spacing=0.06)  # fmt: skip
    best = result.best
    for i, name in enumerate(numeric, start=1):
        xs = [t.params[name] for t in scored]
        colours = [palette.VERMILLION if best and t.run_id == best.run_id else palette.BLUE
                   for t in scored]  # fmt: skip
        figure.add_trace(go.Scatter(
            x=xs, y=[t.best for t in scored], mode="markers", showlegend=False,
            marker={"size": 10, "color": colours},
            text=[f"trial {t.trial}" for t in scored],
            hovertemplate=f"{name} %{{x:.4g}}<br>{result.metric} %{{y:.4g}}<br>%{{text}}"
            "<extra></extra>",
        ), row=1, col=i)  # fmt: skip
        if any(f"{name}=loguniform" in s.replace(" ", "") for s in summary.space):
            figure.update_xaxes(type="log", row=1, col=i)
    figure.update_yaxes(title_text=f"best {result.metric}", row=1, col=1)
    figure.update_layout(height=260, margin={"l": 50, "r": 10, "t": 30, "b": 30})
    return figure


def _metric_label(metric: str) -> str:
    return f"{metric} ({'lowest' if METRICS[metric] == 'min' else 'highest'} wins)"
