"""Home: the recipe's steps, and where Recipe helps with each."""

from __future__ import annotations

import streamlit as st

from app import access, state
from app.widgets import md
from recipe_core import RecipeError
from recipe_core.explore.checklist import dataset_family, recipe_checklist

STEPS = [
    (
        "1. Become one with the data",
        "Scan through thousands of examples, understand their distribution and look for "
        "patterns: duplicates, corrupt images, label noise, imbalance, train/val leaks.",
        "views/data_overview.py",
        "Open the data overview",
    ),
    (
        "2. Set up the end-to-end skeleton and get dumb baselines",
        "Fix the random seed, verify loss at init, init well, beat an input-independent "
        "baseline, overfit one batch, visualise just before the net.",
        "views/checks.py",
        "Run the sanity checks",
    ),
    (
        "3. Overfit",
        "Pick a model big enough to overfit, then complexify only one thing at a time.",
        "views/runs.py",
        "Start baseline and overfit runs",
    ),
    (
        "4. Regularise",
        "Get more data, augment, add dropout and weight decay, stop early.",
        "views/runs.py",
        "Start a regularised run (the train preset)",
    ),
    (
        "5. Tune",
        "Random search over grid search: `recipe tune DATASET --param lr=loguniform:1e-4:1e-2`; "
        "every trial is a run on the Runs page.",
        "views/runs.py",
        "Compare the search's trials",
    ),
    (
        "6. Squeeze out the juice",
        "Ensembles, and leave it training.",
        "views/ensembles.py",
        "Ensemble finished runs",
    ),
]
MORE_LINKS = {  # further pages of a step, after its main link
    "1. Become one with the data": [
        ("views/browse.py", "Browse, sort and filter every sample", "🔎"),
        ("views/distributions.py", "See the distribution of every statistic", "📊"),
        ("views/issues.py", "Review duplicates, outliers, label errors", "🧹"),
    ],
    "2. Set up the end-to-end skeleton and get dumb baselines": [
        ("views/net_sees.py", "See exactly what the net sees", "👁️"),
    ],
    "3. Overfit": [
        ("views/dynamics.py", "Watch prediction dynamics on a fixed batch", "🎞️"),
    ],
    "6. Squeeze out the juice": [
        ("views/runs.py", "Leave a finished run training for more steps", "⏩"),
    ],
}

st.title("🧪 Recipe")
st.markdown(
    "Neural-net training fails **silently**: a wrong label, a stray normalisation or a shuffled "
    "batch dimension rarely crashes, it just trains worse. Recipe turns Andrej Karpathy's "
    "*A Recipe for Training Neural Networks* into a tool that makes those failures loud. "
    "Work through the steps in order; each one builds trust in the next."
)


def checklist_ui() -> None:
    """The recipe as a checklist for the current dataset: which steps have evidence."""
    try:
        target = state.current_target()
    except RecipeError as error:
        st.warning(f"Current dataset: {error}", icon="⚠️")
        return
    items = recipe_checklist(access.workspace(), target)
    family = dataset_family(access.workspace(), target)
    done = sum(item.done for item in items)
    with st.container(border=True):
        st.subheader(f"Your progress on {md(family[0].label)}: {done} of {len(items)} steps done")
        st.caption(f"Dataset: {target}")
        if len(family) > 1:
            kinds = [f"{md(m.label)} ({'cleaned' if m.cleaned else 'raw'})" for m in family]
            st.caption(
                "Counted across the raw dataset and its cleaned exports: "
                + " · ".join(kinds)
                + ". Each step says which one its evidence is on."
            )
        for item in items:
            mark = "✅" if item.done else "⬜"
            left, right = st.columns([3, 2])
            left.markdown(f"{mark} **{item.title}**  \n{md(item.evidence)}")
            with right:
                st.page_link(item.page, label="Go there", icon="➡️")


checklist_ui()
for title, text, page, link in STEPS:
    with st.container(border=True):
        st.subheader(title)
        st.write(text)
        if page is not None and link is not None:
            st.page_link(page, label=link, icon="➡️")
        for more_page, more_label, icon in MORE_LINKS.get(title, []):
            st.page_link(more_page, label=more_label, icon=icon)
