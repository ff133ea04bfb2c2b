"""Renderers for "what the net sees" and the checks: the decoded batch grid, its per-channel
stats and warnings, a check job's progress, result cards, the overfit movie and the
batch-independence heatmap. Input widgets' functions end in `_ui` and return the choice.

Check texts, class names, paths and errors are data, never markup: they pass through `md`
where Streamlit renders Markdown and through `plot_text` in plotly (see app/widgets.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from PIL import Image
from plotly.subplots import make_subplots

from app import pictures
from app.palette import BLACK, BLUE, OKABE_ITO, ORANGE, SEQUENTIAL
from app.widgets import md, plot_text
from recipe_core.batch import BatchView, BatchWarning
from recipe_core.batch.see import frame_tiles
from recipe_core.checks import CheckResult
from recipe_core.explore.flags import FileFlags
from recipe_core.jobs.check_job import CheckJob
from recipe_core.jobs.state import JobProgress

Colour = Literal["blue", "orange", "red", "gray", "violet"]
# (badge colour, icon) per CheckResult.status: blue for pass, not green, so pass and fail never
# hinge on red vs green (the icon and the word say it too)
BADGES: dict[str, tuple[Colour, str]] = {
    "pass": ("blue", "✅"), "warn": ("orange", "⚠️"), "fail": ("red", "🚫"),
    "skip": ("gray", "⏭️"), "error": ("violet", "🐞"),
}  # fmt: skip
GRID_PX = 96  # batch images are upscaled (nearest: pixels stay pixels) to about this width
PALETTE = OKABE_ITO  # told apart with every common colour-vision deficiency (was tab10)


# --- what the net sees ------------------------------------------------------------------------


def batch_grid(view: BatchView, flags: pd.DataFrame | None = None) -> None:
    """Every image of the batch as the model received it (normalisation undone for display),
    captioned with its label, and with ⚠️ and the issue names where the scan flagged it
    (`flags`: check_state.batch_flags)."""
    if view.images is None:
        st.info(f"This batch is not images (layout {view.layout}): its table follows.")
        if view.table is not None:
            st.dataframe(view.table.head(200), hide_index=True)
        return
    names = view.label_names or tuple(str(v) for v in view.labels.tolist())
    marks = {} if flags is None else dict(zip(flags["position"], flags["issues"], strict=True))
    captions = [
        f"{i}: {md(name)}" + (f" ⚠️ {_short(marks[i])}" if i in marks else "")
        for i, name in enumerate(names)
    ]
    captions += [str(i) for i in range(len(captions), len(view.images))]
    pictures.image([upscale(img) for img in view.images], caption=captions, width=GRID_PX)


def _short(issues: str) -> str:
    """ "exact_duplicate, cross_split_duplicate" -> "exact duplicate +1": fits a thumbnail."""
    names = issues.split(", ")
    more = f" +{len(names) - 1}" if len(names) > 1 else ""
    return names[0].replace("_", " ") + more


def batch_flags_table(flags: pd.DataFrame | None, n_samples: int) -> None:
    """The batch's samples the scan flagged, or why none are shown."""
    if flags is None:
        st.info("This dataset has no scan yet: scan it on the Issues page to see which of "
                "these samples are duplicates, outliers or likely label errors.")  # fmt: skip
        st.page_link("views/issues.py", label="Scan it on the Issues page", icon="🔎")
        return
    if flags.empty:
        st.success(f"The scan flagged none of these {n_samples} samples.")
        return
    st.warning(f"The scan flagged {len(flags)} of these {n_samples} samples: the model trains "
               "on them as they are.", icon="⚠️")  # fmt: skip
    st.dataframe(flags.drop(columns="sample_id"), hide_index=True, width="stretch",
                 column_config={"worst": st.column_config.NumberColumn(format="%.2f")})  # fmt: skip
    st.page_link("views/issues.py", label="Review them on the Issues page", icon="🔎")


def upscale(image: np.ndarray) -> np.ndarray:
    """(H, W, C) uint8 enlarged by an integer factor to about GRID_PX wide; (H, W) if C == 1."""
    k = max(1, GRID_PX // max(1, image.shape[1]))
    big = np.repeat(np.repeat(image, k, axis=0), k, axis=1)
    return big[:, :, 0] if big.shape[2] == 1 else big


def batch_facts(view: BatchView) -> None:
    a, b, c, d = st.columns(4)
    a.metric("Shape", " × ".join(str(s) for s in view.shape))
    b.metric("dtype", view.dtype.removeprefix("torch."))
    corr = view.spatial_correlation
    c.metric("Neighbour-pixel correlation", "—" if corr is None else f"{corr:.2f}")
    d.metric("Normalize undone", "yes" if view.normalize is not None else "no")
    if view.normalize is not None:
        mean, std = view.normalize
        found = f"Normalize(mean={_floats(mean)}, std={_floats(std)}) found in the loader"
        st.caption(f"{found}: the grid shows its inverse so you see pixels, the table the raw "
                   "values the model receives.")  # fmt: skip


def _floats(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.3f}" for v in values) + ")"


def batch_warnings(warnings: Sequence[BatchWarning]) -> None:
    """One alert per warning, with its fix; a quiet success line when there is none."""
    if not warnings:
        st.success("Nothing looks wrong with this batch.", icon="✅")
    for w in warnings:
        text = f"{md(w.message)}  \nFix: {md(w.fix)}"
        if w.severity == "fail":
            st.error(text, icon="🚫")
        elif w.severity == "info":
            st.info(text, icon="ℹ️")
        else:
            st.warning(text, icon="⚠️")


# --- the user's pipeline ---------------------------------------------------------------------
PIPELINE, BUILT_IN = "Your pipeline", "A built-in model on a dataset"
TYPED = "Type FILE.py:NAME…"  # the local dashboard's extra choice


def source_ui(offered: Mapping[str, str], may_type: bool, label: str, *, key: str) -> str:
    """PIPELINE or BUILT_IN: the user's pipeline comes first whenever one is offered."""
    kinds = [PIPELINE, BUILT_IN] if offered or may_type else [BUILT_IN]
    return str(st.radio(label, kinds, index=0 if offered else len(kinds) - 1, horizontal=True,
                        key=key))  # fmt: skip


def pipeline_ui(offered: Mapping[str, str], may_type: bool, *, key: str) -> tuple[str, bool]:
    """(spec, typed): one the dashboard offers, or (locally, `may_type`) a typed FILE.py:NAME
    the caller checks against the allowed folders. Its code runs only in a job's process."""
    names = list(offered) + ([TYPED] if may_type else [])
    shown = {**{n: f"{n}  ({offered[n]})" for n in offered}, TYPED: TYPED}
    chosen = str(st.selectbox("Pipeline", names, key=f"{key}_pipeline", format_func=shown.get))
    if chosen != TYPED:
        return offered[chosen], False
    typed = st.text_input("Pipeline spec", key=f"{key}_typed_pipeline",
                          placeholder="my_project/recipe_pipeline.py:pipeline",
                          help="A zero-argument function returning recipe_core.Pipeline, "
                          "in a file inside the allowed folders, or a module:NAME.")  # fmt: skip
    return typed.strip(), True


def seen_batch_report(
    batch: Mapping[str, Any],
    picture: str,
    found: FileFlags | None = None,
    untraced: str | None = None,
) -> None:
    """One batch a see job captured: facts, warnings, the picture (the samples a scan flagged
    framed and numbered), what the scan found on them, per-channel statistics."""
    facts = md(f"{batch['layout']} · shape {tuple(batch['shape'])} · {batch['dtype']} on "
               f"{batch['device']}")  # fmt: skip
    st.markdown(f"**Batch {int(batch['index']) + 1}** · {facts}")
    batch_warnings([BatchWarning(**w) for w in batch["warnings"]])
    positions = [] if found is None else [int(p) for p in found.flags["position"]]
    if positions and batch.get("grid"):
        with Image.open(picture) as grid:
            pictures.image(np.asarray(frame_tiles(grid, batch["grid"], positions)),
                           width="content")  # fmt: skip
    else:
        pictures.image(picture, width="content")
    seen_batch_flags(batch, found, untraced)
    with st.expander("Per-channel / per-feature statistics"):
        st.dataframe(batch["stats"], hide_index=True, width="stretch")


def seen_batch_flags(
    batch: Mapping[str, Any], found: FileFlags | None, untraced: str | None
) -> None:
    """What the scan says of a pipeline batch's samples, or why it cannot say (for images:
    the scan reads image files, so a table or token batch has nothing to be marked with)."""
    n = int(batch["shape"][0]) if batch.get("shape") else 0
    if not batch.get("grid") and not batch.get("files"):
        return
    if not batch.get("files"):
        why = untraced or "the loader did not say which samples it drew"
        st.caption(md(f"Scan findings cannot be marked on this batch: {why}."))
        return
    if found is None:
        batch_flags_table(None, n)
        return
    st.caption(md(f"Scan of {found.root}: {found.matched} of these {n} samples are in it."))
    if found.matched == 0:
        st.info("The scan holds none of these files: rescan the folder on the Issues page if "
                "they were added since.")  # fmt: skip
        return
    batch_flags_table(found.flags, n)


# --- check jobs -------------------------------------------------------------------------------


def job_label(job: CheckJob) -> str:
    """One job as plain text (selectbox options are not Markdown)."""
    when = dt.datetime.fromtimestamp(job.created).strftime("%Y-%m-%d %H:%M:%S")
    return f"{when} · {job_subject(job)}"


def job_subject(job: CheckJob) -> str:
    """What was checked: a pipeline (from a job or a script's saved report) or a built-in model
    on a dataset."""
    if job.source == "script":
        return f"script report · {job.pipeline}"
    if job.pipeline:
        return f"pipeline {job.pipeline}"
    return f"{job.model} · {job.dataset}"


def job_progress(job: CheckJob, state: JobProgress) -> None:
    if state.total == 0:
        text = ("Importing the pipeline and reading its batches…" if job.pipeline
                else "Loading the dataset and building the model…")  # fmt: skip
    else:
        text = f"Check {min(state.done + 1, state.total)} of {state.total}: {state.current}"
    st.progress(state.fraction, text=md(text))
    budget = "none" if job.max_seconds is None else f"{job.max_seconds:g} s"
    st.caption(md(f"{job_subject(job)}, seed {job.seed}, time budget {budget}"))


def report_counts(counts: Mapping[str, int], seconds: float, device: str) -> None:
    cols = st.columns(len(BADGES) + 1)
    for col, (status, (_, icon)) in zip(cols, BADGES.items(), strict=False):
        col.metric(f"{icon} {status}", counts.get(status, 0))
    cols[-1].metric("Time", f"{seconds:.1f} s", help=f"on {device}")


def cut_short_banner(names: Sequence[str], budget_s: float | None) -> None:
    """Name the checks the time budget stopped: their verdict is undecided, never a pass."""
    if not names:
        return
    given = f" of {budget_s:g} s" if budget_s else ""
    st.warning(
        f"The time budget{given} cut {len(names)} check(s) short: "
        f"{', '.join(f'**{md(n)}**' for n in names)}. Each warns with what it measured so far "
        "(undecided, not passed). Run the checks again with a larger time budget, or with only "
        "these checks, to get their verdicts.",
        icon="⏱️",
    )


def result_card(result: CheckResult, *, key: str) -> None:
    """Status badge, summary, observed vs expected, the fix, and the check's plot if any."""
    colour, icon = BADGES.get(result.status, BADGES["error"])
    with st.container(border=True):
        head, badge = st.columns([5, 1])
        head.markdown(f"**{md(result.name)}**")
        with badge:
            st.badge(result.status.upper(), icon=icon, color=colour)
        st.markdown(md(result.summary))
        if result.status == "pass":  # folded: a report of passes stays one screen tall
            with st.expander(f"Evidence of {md(result.name)}: observed, expected, plots"):
                _card_evidence(result, key=key)
        else:
            _card_evidence(result, key=key)


def _card_evidence(result: CheckResult, *, key: str) -> None:
    """What a card shows below its summary: numbers, the fix, the user's traceback, plots."""
    if result.observed or result.expected:
        left, right = st.columns(2)
        left.caption("Observed")
        left.text(result.observed or "—")
        right.caption("Expected")
        right.text(result.expected or "—")
    if result.fix:
        st.info(f"Fix: {md(result.fix)}", icon="🔧")
    if result.evidence.get("traceback"):  # the user's own lines that raised
        st.caption("Where your code raised (Recipe's frames left out)")
        st.code(str(result.evidence["traceback"]), language="python")
    if result.name == "overfit_one_batch" and result.evidence.get("loss"):
        overfit_plot(result.evidence, key=f"{key}_overfit")
    if "dependency" in result.evidence:
        dependency_heatmap(result.evidence, key=f"{key}_dependency")
    if result.name == "layer_statistics" and result.evidence.get("after"):
        layer_plot(result.evidence, key=f"{key}_layers")


def overfit_plot(evidence: Mapping[str, Any], *, key: str) -> None:
    """Left: the loss on the tiny batch with the goal. Right: each of the first samples'
    prediction (solid) against its label (dashed, same colour) at every step."""
    loss = [v for v in evidence.get("loss", []) if v is not None]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "label (dashed) vs prediction"))
    fig.add_scatter(x=list(range(len(loss))), y=loss, name="loss", row=1, col=1,
                    line={"color": BLACK})  # fmt: skip
    if evidence.get("goal") is not None:
        fig.add_hline(y=evidence["goal"], line_dash="dot", row=1, col=1,
                      annotation_text="goal")  # fmt: skip
    _label_traces(fig, list(evidence.get("labels", [])), list(evidence.get("predictions", [])))
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="class", row=1, col=2)
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 40, "b": 10}, showlegend=False)
    st.plotly_chart(fig, width="stretch", key=key)


def _label_traces(fig: go.Figure, labels: list[Any], predictions: list[list[Any]]) -> None:
    shown = min(len(labels), len(PALETTE))
    steps = list(range(len(predictions)))
    for i in range(shown):
        colour = PALETTE[i]
        pred = [row[i] if i < len(row) else None for row in predictions]
        fig.add_scatter(x=steps, y=pred, mode="lines", name=f"sample {i} prediction",
                        line={"color": colour}, row=1, col=2)  # fmt: skip
        fig.add_scatter(x=[0, max(len(steps) - 1, 0)], y=[labels[i]] * 2, mode="lines",
                        name=plot_text(f"sample {i} label"), row=1, col=2,
                        line={"color": colour, "dash": "dash"})  # fmt: skip


def dependency_heatmap(evidence: Mapping[str, Any], *, key: str) -> None:
    """Gradient of output i (rows) with respect to input j (columns), scaled to the largest:
    a healthy model lights up the diagonal only."""
    matrix = np.asarray(evidence["dependency"], dtype=float)
    if matrix.ndim != 2 or matrix.size == 0:
        return
    columns = evidence.get("output_times")
    fig = go.Figure(go.Heatmap(z=matrix, colorscale=SEQUENTIAL, zmin=0, zmax=1,
                               colorbar={"title": "÷ max"}))  # fmt: skip
    fig.update_layout(
        height=320, width=380, margin={"l": 10, "r": 10, "t": 30, "b": 10},
        title="gradient dependency", yaxis={"autorange": "reversed", "title": "output"},
        xaxis={"title": "input" if columns is None else "input time"},
    )  # fmt: skip
    if max(matrix.shape) <= 16:  # one tick per sample: fractional ticks mean nothing here
        fig.update_xaxes(dtick=1)
        fig.update_yaxes(dtick=1)
    st.plotly_chart(fig, key=key)


def layer_plot(evidence: Mapping[str, Any], *, key: str) -> None:
    """Per layer, in forward order: the activation spread and the gradient reaching it (log
    scale), at init (dotted) and after the check's training steps (solid). A healthy net keeps
    both lines roughly level; a vanishing or exploding one slopes by orders of magnitude."""
    steps = evidence.get("after_steps", 0)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("activation spread", "gradient norm"))
    for when, dash, rows in (
        ("init", "dot", evidence.get("at_init", [])),
        (f"after {steps} steps", "solid", evidence.get("after", [])),
    ):
        names = [plot_text(str(r.get("name", "?"))) for r in rows]
        for col, field, colour in ((1, "scale", BLUE), (2, "grad", ORANGE)):
            values = [r.get(field) if (r.get(field) or 0) > 0 else None for r in rows]
            fig.add_scatter(
                x=names,
                y=values,
                mode="lines+markers",
                name=f"{field}, {when}",
                line={"color": colour, "dash": dash},
                row=1,
                col=col,
            )
    fig.update_yaxes(type="log")
    fig.update_layout(
        height=340, margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend={"orientation": "h"}
    )
    st.plotly_chart(fig, width="stretch", key=key)
