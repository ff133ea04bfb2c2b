"""What the net sees: the exact batch `model(x)` receives — after the loader, augmentation and
normalisation — decoded back to pixels (or tokens, table rows, waveforms), measured per
channel, with what looks wrong.

The batch is captured by a BatchTap at the model's door while the model runs (no training), so
it is what training would feed, not a re-rendering of the files. For the user's own pipeline
the capture runs in a background process (recipe_core.jobs.see_job): the dashboard never
imports user code.
"""

from __future__ import annotations

import streamlit as st

# The title first: on the server's first visit the imports below bring in PyTorch (2.5 s
# cold on 2 cores, benchmarks/page_load.py), and the page should say what it is meanwhile.
st.title("👁️ What the net sees")
st.caption(
    "Visualise just before the net: the only place the truth is. These are the tensors "
    "model(x) receives, captured at its input, then decoded for display."
)

from app import access, check_state, check_widgets, state, widgets  # noqa: E402
from recipe_core import RecipeError  # noqa: E402
from recipe_core.batch import BatchWarning  # noqa: E402
from recipe_core.train.models import MODELS  # noqa: E402

BATCHES = 8  # batches one can page through: each is a model run over the loader's first ones
BATCH_KEY = "ns_batch_index"
POLL_S = 1.0


@st.fragment(run_every=POLL_S)
def capture_progress(job_id: str) -> None:
    if check_state.see_state(job_id).state != "running":
        st.rerun(scope="app")
    st.progress(0.0, text="Importing the pipeline and capturing its batches at model(x)…")


def pipeline_page() -> None:
    """Capture the pipeline's batches in a job, then show each as model(x) received it."""
    offered = access.pipelines()
    spec, was_typed = check_widgets.pipeline_ui(offered, access.may_type_pipelines(), key="ns")
    batches = int(st.number_input("Batches to capture", min_value=1, max_value=8, value=2,
                                  key="ns_batches"))  # fmt: skip
    if access.can("start_checks") and st.button("Capture batches", type="primary"):
        try:
            if not spec:
                raise RecipeError("Choose a pipeline (or type FILE.py:NAME) first.")
            checked = access.typed_pipeline(spec) if was_typed else spec
            check_state.start_see(checked, batches=batches)
        except RecipeError as error:
            st.error(widgets.md(error), icon="🚫")
    jobs = check_state.see_jobs()
    if not jobs:
        st.info("Press Capture batches: a background process imports your pipeline, feeds its "
                "first batches to model(x) and decodes what the model received.")  # fmt: skip
        return
    job_id = check_state.selected_see_job(jobs)
    st.caption(widgets.md(f"Capture {job_id} of {check_state.see_spec(job_id)}"))
    now = check_state.see_state(job_id)
    if now.state == "running":
        capture_progress(job_id)
        return
    if now.state != "succeeded":
        st.error(f"The capture failed: {widgets.md(now.message)}", icon="🚫")
        return
    seen = check_state.seen(job_id)
    if seen["warnings"]:  # across batches (an unshuffled loader)
        check_widgets.batch_warnings([BatchWarning(**w) for w in seen["warnings"]])
    folder = check_state.see_folder(job_id)
    for batch in seen["batches"]:
        found = check_state.pipeline_flags(batch.get("files"))
        check_widgets.seen_batch_report(batch, str(folder / batch["picture"]), found,
                                        seen.get("untraced"))  # fmt: skip


kind = check_widgets.source_ui(access.pipelines(), access.may_type_pipelines(), "Look at",
                               key="ns_kind")  # fmt: skip
if kind == check_widgets.PIPELINE:
    pipeline_page()
    st.stop()

path = widgets.dataset_path_ui(key="ns_dataset")
a, b, c = st.columns([1, 1, 1])
model = str(a.selectbox("Model", list(MODELS), index=list(MODELS).index("mlp"), key="ns_model"))
batch_size = int(b.number_input("Batch size", min_value=2, max_value=256, value=64,
                                key="ns_batch_size"))  # fmt: skip
augment = c.toggle("Training augmentation", key="ns_augment",
                   help="Random shifts and small rotations, as a regularised training run "
                   "applies them.")  # fmt: skip

left, mid, right = st.columns([1, 2, 1], vertical_alignment="bottom")
left.button("← Previous batch", on_click=state.shift_page, args=(BATCH_KEY, -1, BATCHES),
            disabled=state.page_number(BATCH_KEY) <= 1, width="stretch")  # fmt: skip
right.button("Next batch →", on_click=state.shift_page, args=(BATCH_KEY, 1, BATCHES),
             disabled=state.page_number(BATCH_KEY) >= BATCHES, width="stretch")  # fmt: skip
number = int(mid.number_input(f"Batch (1–{BATCHES}, in the loader's seeded order)",
                              min_value=1, max_value=BATCHES, key=BATCH_KEY))  # fmt: skip

try:
    view = check_state.seen_batch(path, model, number - 1, batch_size=batch_size, augment=augment)
except RecipeError as error:
    st.error(widgets.md(error), icon="🚫")
    st.stop()

check_widgets.batch_facts(view)
st.subheader("What looks wrong")
check_widgets.batch_warnings(view.warnings)
flags = check_state.batch_flags(path, view)
st.subheader(f"Batch {number}, as fed")
check_widgets.batch_grid(view, flags)
st.subheader("What the scan found in this batch")
check_widgets.batch_flags_table(flags, view.shape[0])
st.subheader("Per-channel statistics of the raw input")
st.caption("Values model(x) receives (after Normalize): a healthy input has mean ≈ 0, std ≈ 1.")
st.dataframe(view.stats, hide_index=True, width="stretch")
st.page_link("views/checks.py", label="Run the recipe's sanity checks on this setup", icon="✅")
