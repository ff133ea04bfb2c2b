"""Checks: the recipe's sanity checks (loss at init, init well, overfit one batch, batch
independence, ...) on the user's own pipeline or on a built-in model over the dataset, as a
background job; reports that scripts saved (`report.save(workspace)`) are listed with the jobs.

The job is a detached process (recipe_core.jobs.check_job), never the script thread, which a rerun
kills; the page polls its folder, so jobs started earlier (or before a restart) are listed too.
"""

from __future__ import annotations

import streamlit as st

from app import access, check_state, check_widgets, widgets
from recipe_core import RecipeError
from recipe_core.jobs.check_job import CheckJob
from recipe_core.jobs.state import JobState
from recipe_core.train.models import MODELS

POLL_S = 1.0  # seconds between looks at a running job's progress
ORDER = {"fail": 0, "error": 1, "warn": 2, "pass": 3, "skip": 4}  # cards: problems first

st.title("✅ Checks")
st.caption(
    "Set up the end-to-end skeleton and verify it before training for real: loss at init, "
    "init well, input-independent baseline, overfit one batch, batch independence and more."
)


def start_form() -> None:
    offered = access.pipelines()
    kind = check_widgets.source_ui(offered, access.may_type_pipelines(), "What to check",
                                   key="ck_kind")  # fmt: skip
    spec, was_typed = ("", False)
    if kind == check_widgets.PIPELINE:
        spec, was_typed = check_widgets.pipeline_ui(offered, access.may_type_pipelines(),
                                                    key="ck")  # fmt: skip
    if kind == check_widgets.BUILT_IN:
        path = widgets.dataset_path_ui(key="ck_dataset")
        a, b, c = st.columns(3)
        model = str(a.selectbox("Model", list(MODELS), index=list(MODELS).index("mlp"),
                                key="ck_model"))  # fmt: skip
    else:
        b, c = st.columns(2)
    seed = int(b.number_input("Seed", min_value=0, value=0, key="ck_seed"))
    cap = access.max_check_seconds()  # a team server's cap; the local app has none
    budget = float(c.number_input("Time budget, s", min_value=1, max_value=cap,
                                  value=min(60, cap or 60), key="ck_budget",
                                  help="Split into equal shares per check; a check cut short "
                                  "warns with what it measured (never passes)."
                                  + (f" This dashboard stops a check job at {cap:,} s."
                                     if cap else "")))  # fmt: skip
    if st.button("Run checks", type="primary"):
        try:
            if kind == check_widgets.BUILT_IN:
                check_state.start_checks(path, model, seed=seed, max_seconds=budget)
            elif spec:
                checked = access.typed_pipeline(spec) if was_typed else spec
                check_state.start_pipeline_checks(checked, seed=seed, max_seconds=budget)
            else:
                st.warning("Choose a pipeline (or type FILE.py:NAME) first.", icon="👆")
        except RecipeError as error:
            st.error(widgets.md(error), icon="🚫")


@st.fragment(run_every=POLL_S)
def live_progress(job: CheckJob) -> None:
    """Redrawn every POLL_S while the job runs; reruns the page once it ended."""
    now = check_state.check_job_state(job.job_id)
    if now.state != "running":
        st.rerun(scope="app")
    check_widgets.job_progress(job, now)
    if access.can("start_checks") and st.button("Cancel checks", key=f"cancel_{job.job_id}"):
        check_state.cancel_checks(job.job_id)
        st.rerun(scope="app")


def show_job(job: CheckJob) -> None:
    now = check_state.check_job_state(job.job_id)
    if now.state == "running":
        live_progress(job)
    elif now.state == "failed":
        st.error(f"The checks failed: {widgets.md(now.message)}", icon="🚫")
    elif now.state == JobState.SUCCEEDED:
        show_report(job)
    else:
        st.warning(f"No progress file in {widgets.md(job.folder)}: start the checks again.")


def show_report(job: CheckJob) -> None:
    try:
        report = check_state.check_report(job.job_id)
    except RecipeError as error:
        st.error(widgets.md(error), icon="🚫")
        return
    check_widgets.report_counts(report.counts(), sum(report.seconds.values()), report.device)
    check_widgets.cut_short_banner(report.cut_short, job.max_seconds)
    for result in sorted(report.results, key=lambda r: ORDER.get(r.status, 5)):
        check_widgets.result_card(result, key=f"{job.job_id}_{result.name}")


if access.can("start_checks"):
    start_form()
else:
    st.info("Viewers can read check reports; ask an operator for the runner role to run checks.",
            icon="👀")  # fmt: skip
jobs = check_state.check_jobs()
if not jobs:
    st.info("No checks have run in this workspace yet: choose a pipeline or a model and press "
            "Run checks (or save a script's report with report.save()).")  # fmt: skip
    st.stop()
by_id = {job.job_id: job for job in jobs}
check_state.selected_check_job(list(by_id))
st.subheader("Report")
chosen = st.selectbox("Check job (newest first)", list(by_id), key=check_state.CHECK_JOB_KEY,
                      format_func=lambda j: check_widgets.job_label(by_id[j]))  # fmt: skip
show_job(by_id[str(chosen)])
