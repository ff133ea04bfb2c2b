"""Data overview: what is in the dataset — classes, splits, sizes — its scan's issue summary,
and the images themselves."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from app import data_state, state, widgets
from recipe_core import RecipeError
from recipe_core.explore.query import ISSUE_SCORE
from recipe_core.scan import ScanResult
from recipe_core.scan.issues import CLASS_ISSUES, QUALITY_ISSUES, IssueType

PER_PAGE = 48
# (card title, issue types it counts, what it means); each card opens Browse filtered to it
CARDS = (
    (
        "Duplicates",
        (IssueType.EXACT_DUPLICATE.value, IssueType.NEAR_DUPLICATE.value),
        "Identical or near-identical files: they over-weight some images.",
    ),
    (
        "Conflicting labels",
        (IssueType.CONFLICTING_LABELS.value,),
        "Copies of one image filed under different classes.",
    ),
    (
        "Train/val leaks",
        (IssueType.CROSS_SPLIT_DUPLICATE.value,),
        "Copies in two splits: validation scores look better than they are.",
    ),
    (
        "Corrupt files",
        (IssueType.CORRUPT.value,),
        "Files that do not decode: a loader would crash or skip.",
    ),
    ("Outliers", (IssueType.OUTLIER.value,), "Far from every other image: out of domain?"),
    (
        "Likely label errors",
        (IssueType.LABEL_ISSUE.value,),
        "The label disagrees with similar images.",
    ),
    (
        "Image quality",
        QUALITY_ISSUES,
        "Too dark or light, blank, blurry or odd sizes.",
    ),
    (
        "Class imbalance",
        (IssueType.CLASS_IMBALANCE.value,),
        "Classes with far fewer samples than others.",
    ),
    (
        "Overlapping classes",
        (IssueType.OVERLAPPING_CLASSES.value,),
        "Classes the label model cannot tell apart: one class under two names?",
    ),
)

st.title("🗂️ Data overview")
st.caption("Become one with the data: look at the images before you look at any metric.")

path = widgets.dataset_path_ui()
if st.button("Reload from disk", help="Re-list the files after adding or removing some."):
    data_state.reload_dataset()

try:
    source = data_state.dataset_source(path)
    overview = data_state.dataset_overview(path)
    target = state.current_target()
except RecipeError as error:
    st.error(widgets.md(error), icon="🚫")
    st.stop()

a, b, c, d = st.columns(4)
a.metric("Samples", f"{overview.n_samples:,}")
b.metric("Classes", overview.n_classes)
c.metric("Splits", ", ".join(s or "(none)" for s in source.splits))
unreadable = d.empty()  # the header pass's count now, the scan's full decode once there is one
unreadable.metric("Unreadable files", overview.n_unreadable,
                  help="Files whose header does not parse. Scan decodes every file in full and "
                  "may find more (truncated data, bad CRCs).")  # fmt: skip


def issue_cards(result: ScanResult) -> None:
    """One card per issue family: how many samples, what it means, a link to see them."""
    issues = result.issues
    st.caption("Each card counts the samples flagged with that problem; open them to look.")
    cols = st.columns(3)  # nine cards: three rows of three
    for i, (title, kinds, meaning) in enumerate(CARDS):
        rows = issues.loc[issues["issue"].isin(kinds)]
        n = int(rows["sample_id"].nunique())
        with cols[i % 3].container(border=True):
            if kinds[0] in CLASS_ISSUES:  # a property of classes, not files
                classes = int(rows["label"].nunique())
                st.metric(title, f"{classes:,} class{'es' if classes != 1 else ''}",
                          help=f"{n:,} samples in those classes")  # fmt: skip
            else:
                st.metric(title, f"{n:,}")
            st.caption(meaning)
            if st.button("Show them →", key=f"card_{kinds[0]}", disabled=n == 0, width="stretch"):
                state.show_issues(kinds, sort_by=ISSUE_SCORE)  # its own issues, worst first
                st.switch_page("views/browse.py")
    st.page_link(
        "views/issues.py",
        label="Review issues side by side (duplicate groups, "
        "outliers, label errors, corrupt files)",
        icon="🧹",
    )


st.subheader("Scan for problems")
scan = widgets.scan_panel(target)
if scan is not None and data_state.scan_state(target).state != "running":
    corrupt = scan.issues.loc[scan.issues["issue"] == IssueType.CORRUPT.value, "sample_id"]
    unreadable.metric("Unreadable files", int(corrupt.nunique()),
                      help="Files that do not decode in full (the scan's Corrupt files): "
                      f"{overview.n_unreadable} of them already fail at the header.")  # fmt: skip
    issue_cards(scan)

left, right = st.columns([3, 2])
with left:
    st.subheader("Samples per class and split")
    widgets.class_counts_chart(overview.counts)
    counts = overview.counts.pivot_table(
        index="label", columns="split", values="count", fill_value=0, aggfunc="sum"
    )
    counts.columns = [str(s) or "(no split)" for s in counts.columns]
    st.dataframe(
        counts.assign(total=counts.sum(axis=1)).reset_index(),
        hide_index=True,
        width="stretch",
        height=min(400, 38 + 35 * len(counts)),
    )
with right:
    st.subheader("Image sizes and modes")
    st.dataframe(overview.sizes.head(20), hide_index=True, width="stretch")
    if overview.n_unreadable:
        bad = overview.headers[overview.headers["error"] != ""].merge(
            source.samples[["sample_id", "path"]], on="sample_id"
        )
        st.warning(f"{overview.n_unreadable} file(s) have a header that does not parse (the "
                   "scan's Corrupt files card counts every file that does not decode).",
                   icon="⚠️")  # fmt: skip
        st.dataframe(bad[["path", "error"]], hide_index=True, width="stretch")
    if source.skipped:
        st.info(f"{len(source.skipped)} non-image file(s) ignored, e.g.:", icon="ℹ️")
        st.dataframe(pd.DataFrame({"path": source.skipped[:20]}), hide_index=True)
    if source.not_followed:
        st.warning(
            f"{len(source.not_followed)} folder(s) not listed (their files are not samples):",
            icon="⚠️",
        )
        st.dataframe(
            pd.DataFrame([vars(e) for e in source.not_followed]), hide_index=True, width="stretch"
        )

st.subheader("Images")
f1, f2 = st.columns(2)
splits = f1.multiselect("Split", source.splits, default=list(source.splits), key="ov_splits")
classes = f2.multiselect("Class", source.classes, default=list(source.classes), key="ov_classes")
rows = source.samples
rows = rows[rows["split"].isin(splits) & rows["label"].isin(classes)]
n_pages = max(1, math.ceil(len(rows) / PER_PAGE))
state.clamp_page("ov_page", n_pages)
page = st.number_input(f"Page (of {n_pages})", min_value=1, max_value=n_pages, key="ov_page")
st.caption(f"{len(rows):,} images match; showing {PER_PAGE} per page.")
start = (int(page) - 1) * PER_PAGE
widgets.image_grid(source, rows.iloc[start : start + PER_PAGE])
