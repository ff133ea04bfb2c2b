"""Issues: duplicate groups side by side, ranked outliers, likely label errors, corrupt files,
image-quality problems; mark samples to drop or relabel, and export a cleaned dataset (a
manifest in the workspace that every dataset picker offers by name)."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from app import access, data_state, data_widgets, mistake_widgets, state, widgets
from recipe_core import DatasetSource, RecipeError
from recipe_core.explore.curation import Decision, decision_log
from recipe_core.explore.query import SampleFilter, query
from recipe_core.explore.views import duplicate_groups, label_suggestions
from recipe_core.scan.issues import QUALITY_ISSUES, IssueType
from recipe_core.scan.issues.labels import OVERLAP_SHARED

GROUP_COLUMNS = 6
LABELS_PER_PAGE = 50
# the threshold table's columns, of `threshold_effect`'s
EFFECT_COLUMNS = [
    "threshold",
    "used",
    "links",
    "new_links",
    "flipped",
    "edited",
    "groups",
    "images",
    "closeness",
]

st.title("🧹 Issues")
st.caption(
    "What the scan found, one kind at a time. Marking a sample to drop or relabel never "
    "touches its file: decisions go to the workspace and into an exported manifest."
)

source, target, result, table = widgets.scanned_dataset()
run = mistake_widgets.run_picker_ui(target)
table = data_state.run_samples(target, table, run)
decisions = data_state.decisions(target)
issues, signal = mistake_widgets.label_signal_ui(target, result, run)


RUNNER = access.can("curation_decision")  # viewers see the findings, not the curation controls


def drop_button(row: pd.Series, key: str) -> None:
    if not RUNNER:
        return
    sid = int(row["sample_id"])
    dropped = decisions.get(sid) is not None and decisions[sid].action == "drop"
    if st.button("Undo drop" if dropped else "Drop", key=f"{key}_{sid}", width="stretch"):
        data_state.decide(
            target,
            sample_id=sid,
            path=str(row["path"]),
            action="keep" if dropped else "drop",
            old_label=str(row["label"]),
        )
        st.rerun()


def duplicates_tab() -> None:
    threshold_panel()
    groups = duplicate_groups(issues, result.index.table)
    if groups.empty:
        st.success("No duplicate groups found.", icon="✅")
        return
    n_groups = groups["group"].nunique()
    conflicts = groups.loc[groups["conflicting"], "group"].nunique()
    leaks = groups.loc[groups["leak"], "group"].nunique()
    st.markdown(
        f"**{n_groups}** groups of identical or near-identical files: **{conflicts}** "
        f"with conflicting labels, **{leaks}** leaking across splits (listed first)."
    )
    show = (
        st.segmented_control(
            "Show",
            ["All", "Conflicting labels", "Cross-split leaks"],
            default="All",
            key="dup_show",
        )
        or "All"
    )
    if show != "All":
        groups = groups[groups["conflicting" if show.startswith("Conf") else "leak"]]
    names = list(dict.fromkeys(groups["group"]))
    keep_one_of_every_group(groups)
    per_page = st.selectbox("Groups per page", [8, 24, 50], key="dup_per_page")
    n_pages = max(1, math.ceil(len(names) / per_page))
    page = data_widgets.pager_ui(len(names), key="dup_page", per_page=per_page)
    for name in names[(page - 1) * per_page : page * per_page]:
        duplicate_group(groups[groups["group"] == name])
    st.caption(f"Page {page} of {n_pages}.")


def threshold_panel() -> None:
    """The near-duplicate line: what each value would report on this scan (links, groups, the
    links a looser line adds and the loosest pair it lets in), and a rescan at another."""
    current = float(result.summary.near_threshold)
    title = f"Near-duplicate threshold: {current:g}" + (" (the default)" if current == 1 else "")
    with st.expander(title, icon="🎚️"):
        effect = data_state.threshold_effect(target)
        if effect is None:
            return
        st.caption(
            "In closeness units: 1 is the calibrated line, 0.5 reports only pairs half as far "
            "apart (fewer, surer), 1.5 pairs half again as far (more, less sure). A looser line "
            "buys recall with the precision of the links it adds: look at its loosest pair "
            "before you trust it. `recipe scan --near-threshold` sets it from the command line."
            + (
                ""
                if result.summary.edited_copies
                else " This scan did not look for edited copies (`--no-edited-copies`): recrops, "
                "turns and overlays are not linked."
            )
        )
        st.dataframe(
            effect.assign(
                used=effect["threshold"] == current,
                threshold=effect["threshold"].map("{:g}".format),
            )[EFFECT_COLUMNS],
            hide_index=True,
            column_config={
                "used": st.column_config.CheckboxColumn("this scan"),
                "links": st.column_config.NumberColumn("near links"),
                "new_links": st.column_config.NumberColumn("added by this step"),
                "flipped": st.column_config.NumberColumn(
                    "of a flipped copy", help="Links of a mirror image or an upside-down copy"
                ),
                "edited": st.column_config.NumberColumn(
                    "of an edited copy",
                    help="Links of a recrop zoomed back, a slightly turned copy, or a copy "
                    "under a caption, logo or watermark",
                ),
                "groups": st.column_config.NumberColumn("near groups"),
                "images": st.column_config.NumberColumn("images in them"),
                "closeness": st.column_config.NumberColumn("loosest pair", format="%.2f"),
            },
        )
        levels = effect["threshold"].tolist()
        choice = st.select_slider(
            "Look at the loosest pair a threshold admits",
            options=levels,
            value=current if current in levels else levels[0],
            format_func="{:g}".format,
            key="near_threshold_choice",
        )
        row = effect[effect["threshold"] == choice].iloc[0]
        if row["sample_id_a"] < 0:
            st.caption(f"At {choice:g} no near pair is admitted.")
        else:
            pair = result.index.table.set_index("sample_id").loc[
                [row["sample_id_a"], row["sample_id_b"]]
            ]
            st.markdown(
                f"The loosest pair at {choice:g} (closeness {row['closeness']:.2f}): same "
                "image, lightly edited? If not, this line is too loose."
            )
            pair_ui(pair.reset_index())
        rescan = access.can("start_scan") and choice != current
        if rescan and st.button(f"Rescan at threshold {choice:g}", key="near_threshold_rescan"):
            try:
                data_state.start_scan(target, near_threshold=float(choice))
            except RecipeError as error:
                st.error(widgets.md(error), icon="🚫")
            else:
                st.rerun()


def pair_ui(pair: pd.DataFrame) -> None:
    left, right, _ = st.columns([1, 1, 4])
    for cell, (_, member) in zip((left, right), pair.iterrows(), strict=True):
        with cell:
            widgets.image_grid(source, pair[pair["sample_id"] == member["sample_id"]],
                               columns=1,
                               captions=[f"{widgets.md(member['label'])}  \n"
                                         f"{widgets.md(member['path'])}"])  # fmt: skip


def keep_one_of_every_group(groups: pd.DataFrame) -> None:
    """One button: in every listed group keep the first member and drop the others."""
    if not RUNNER:
        return
    rest = groups[groups.duplicated("group", keep="first")]
    if st.button(f"Keep one of every group (drop {len(rest):,})", key="dup_keep_one_all"):
        decide_all(rest, "drop")


def duplicate_group(members: pd.DataFrame) -> None:
    first = members.iloc[0]
    with st.container(border=True):
        flags = []
        if first["conflicting"]:
            flags.append(f"⚠️ :red[conflicting labels: {first['n_labels']} classes]")
        if first["leak"]:
            flags.append(f"⚠️ :orange[leak across {first['n_splits']} splits]")
        st.markdown(
            f"**Group {widgets.md(first['group'])}** · {len(members)} files  " + "  ".join(flags)
        )
        keep_one_button(members)
        for start in range(0, len(members), GROUP_COLUMNS):
            chunk = members.iloc[start : start + GROUP_COLUMNS]
            for cell, (_, row) in zip(st.columns(GROUP_COLUMNS), chunk.iterrows(), strict=False):
                with cell:
                    widgets.image_grid(
                        source,
                        members.loc[[row.name]],
                        columns=1,
                        captions=[_member_caption(row, first)],
                    )
                    drop_button(row, "dup_drop")


def keep_one_button(members: pd.DataFrame) -> None:
    """Keep the first member of the group, drop the others (through the curation decisions)."""
    if not RUNNER or len(members) < 2:
        return
    group = str(members.iloc[0]["group"])
    if st.button("Keep one, drop the rest", key=f"dup_keep_one_{group}", icon="🧹"):
        decide_all(members.iloc[1:], "drop")


def _member_caption(row: pd.Series, first: pd.Series) -> str:
    label = widgets.md(row["label"])
    split = widgets.md(row["split"] or "-")
    if first["conflicting"]:
        label = f":red[**{label}**]"
    if first["leak"]:
        split = f":orange[**{split}**]"
    if IssueType.EXACT_DUPLICATE.value in row["issues"]:
        kind = "identical"
    else:  # how its closest other member is a copy of it: a mirror image, an edited copy...
        kind = str(row.get("copy_kind", "") or "near copy").split(" (")[0]
        partner = str(row.get("copy_of", ""))
        kind += f" of {widgets.md(partner.rsplit('/', 1)[-1])}" if partner else ""
    return f"{label} · {split}  \n{kind}  \n{widgets.md(row['path'])}"


def ranked_tab(kinds: tuple[str, ...], key: str, empty: str) -> None:
    spec = SampleFilter(issues=kinds)
    sort_by = table.score_column(kinds[0]) if len(kinds) == 1 else "max_score"
    if sort_by not in table.frame.columns:
        st.success(empty, icon="✅")
        return
    page = query(
        table,
        spec,
        sort_by=sort_by,
        descending=True,
        per_page=24,
        page=state.page_number(f"{key}_page"),
    )
    data_widgets.pager_ui(page.total, key=f"{key}_page", per_page=24)
    st.caption(f"{page.total:,} samples, most severe first.")
    extras = [f"score {s:.2f}" for s in page.rows[sort_by]]
    clicked = data_widgets.grid_ui(page.rows, source, decisions, key=f"{key}_grid", extras=extras)
    if clicked is not None:
        state.select_sample(clicked)


def label_tab() -> None:
    rows = issues[issues["issue"] == IssueType.LABEL_ISSUE.value].copy()
    st.caption(mistake_widgets.signal_note(rows, signal, run))
    overlap_note()
    if rows.empty:
        st.success("No likely label errors found.", icon="✅")
        return
    rows["suggested"] = label_suggestions(issues)
    rows = rows.sort_values("score", ascending=False, kind="stable")
    st.markdown(
        f"**{len(rows)}** samples whose label the rest of the data disagrees with, most "
        "confident first. Select rows, then accept the suggested label or drop them."
    )
    page = data_widgets.pager_ui(len(rows), key="labels_page", per_page=LABELS_PER_PAGE)
    rows = rows.iloc[(page - 1) * LABELS_PER_PAGE : page * LABELS_PER_PAGE]
    shown = rows.assign(
        image=[data_widgets.thumb_uri(source, p) for p in rows["path"]],
        decision=[data_widgets.decision_text(decisions.get(int(s))) for s in rows["sample_id"]],
    )[["image", "path", "label", "suggested", "score", "decision", "detail",
       *(["signal"] if "signal" in rows.columns else [])]]  # fmt: skip
    event = st.dataframe(
        shown.rename(columns={"label": "given label", "score": "confidence"}),
        hide_index=True,
        on_select="rerun",
        selection_mode="multi-row",
        row_height=data_widgets.ROW_HEIGHT,
        height=min(data_widgets.ROW_HEIGHT * len(rows) + 40, 800),
        key=f"label_table_{abs(hash(tuple(rows['sample_id']))) % 10**12}",  # per page content
        column_config={
            "image": st.column_config.ImageColumn(width="small"),
            "confidence": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0),
        },
    )
    picked = rows.iloc[event.selection.rows] if event is not None else rows.iloc[:0]
    if not RUNNER:
        return
    a, b = st.columns(2)
    if a.button(f"Accept suggestion for {len(picked)} selected", disabled=picked.empty):
        decide_all(picked[picked["suggested"] != ""], "relabel")
    if b.button(f"Drop {len(picked)} selected", disabled=picked.empty):
        decide_all(picked, "drop")


def overlap_note() -> None:
    """Classes the label model cannot tell apart, one line per class: no label issue is
    reported between them, so their absence here is not a clean bill."""
    rows = issues[issues["issue"] == IssueType.OVERLAPPING_CLASSES.value]
    if rows.empty:
        return
    per_class = rows.drop_duplicates("label").sort_values("label")
    # each class's own part of its detail; what they share is said once, above them
    lines = "\n".join(
        f"- **{widgets.md(r.label)}**: {widgets.md(str(r.detail).split(OVERLAP_SHARED)[0])}"
        for r in per_class.itertuples()
    )
    st.warning(
        f"{len(per_class)} classes overlap: the label model cannot tell them apart, so no "
        "label issue is reported between them. One class under two names, or classes its "
        "features do not separate (a pretrained embedding or a trained run's predictions "
        f"may).\n\n{lines}",
        icon="🔀",
    )


def decide_all(rows: pd.DataFrame, action: str) -> None:
    """Record `action` for every row (relabel: to its `suggested` label), then rerun."""
    for row in rows.itertuples():
        label = str(getattr(row, "suggested", "")) if action == "relabel" else ""
        data_state.decide(target, sample_id=int(row.sample_id), path=str(row.path),
                     action=action, label=label, old_label=str(row.label))  # fmt: skip
    st.rerun()


def corrupt_tab() -> None:
    rows = issues[issues["issue"] == IssueType.CORRUPT.value]
    if rows.empty:
        st.success("Every file decodes.", icon="✅")
        return
    errors = result.index.table.set_index("sample_id")["decode_error"]
    shown = rows.assign(
        error=rows["sample_id"].map(errors),
        decision=[data_widgets.decision_text(decisions.get(int(s))) for s in rows["sample_id"]],
    )
    st.markdown(f"**{len(rows)}** files do not decode; a data loader would crash or skip them.")
    st.dataframe(
        shown[["path", "label", "error", "decision"]],
        hide_index=True,
        width="stretch",
        key="corrupt_table",
    )
    todo = rows[~rows["sample_id"].isin(list(decisions))]
    label = f"Drop all {len(todo)} undecided corrupt files"
    if RUNNER and st.button(label, disabled=todo.empty, key="corrupt_drop_all"):
        decide_all(todo, "drop")


def export_tab(source: DatasetSource, decisions: dict[int, Decision]) -> None:
    history = decision_log(access.workspace(), target)
    n_drop = sum(d.action == "drop" for d in decisions.values())
    n_relabel = len(decisions) - n_drop
    st.markdown(
        f"**{n_drop}** samples marked to drop, **{n_relabel}** to relabel "
        f"({len(history)} decisions in the log). The dataset's files are never changed."
    )
    if decisions:
        st.dataframe(
            pd.DataFrame([d.__dict__ for d in decisions.values()])[
                ["path", "action", "old_label", "label", "time"]
            ],
            hide_index=True,
            width="stretch",
        )
    if not access.can("export_manifest"):
        st.info("Viewers can read the decisions; ask an operator for the runner role to export.")
        return
    fmt = st.radio("Manifest format", ["csv", "parquet"], horizontal=True, key="export_fmt")
    st.caption(
        "The export is a new dataset in the workspace, named after this one and the time: a "
        "manifest of the kept samples (relabels applied) that references the original files. "
        "Every page's dataset picker offers it, and `recipe train/check/scan` take its name."
    )
    if st.button("Export cleaned manifest", type="primary", key="export"):
        try:
            named, out = data_state.export_curated(source, decisions, fmt=fmt, history=history,
                                                   target=target)  # fmt: skip
        except RecipeError as error:
            st.error(widgets.md(error), icon="🚫")
            return
        st.success(
            f"Exported **{widgets.md(named.name)}**: {out.n_samples:,} samples "
            f"({out.n_dropped} dropped, {out.n_relabelled} relabelled).",
            icon="✅",
        )
        st.code(f"{out.manifest}\n{out.record}", language=None)
        st.button("Open the cleaned dataset", key="export_open", on_click=state.set_dataset,
                  args=(str(named.manifest),))  # fmt: skip
        st.download_button("Download manifest", out.manifest.read_bytes(), out.manifest.name)
        st.download_button("Download decision record", out.record.read_bytes(), out.record.name)


def counted(title: str, kinds: tuple[str, ...]) -> str:
    n = int(issues.loc[issues["issue"].isin(kinds), "sample_id"].nunique())
    return f"{title} ({n})"


tabs = st.tabs(
    [
        counted("Duplicates", (IssueType.EXACT_DUPLICATE.value, IssueType.NEAR_DUPLICATE.value)),
        counted("Outliers", (IssueType.OUTLIER.value,)),
        counted("Label issues", (IssueType.LABEL_ISSUE.value,)),
        counted("Corrupt", (IssueType.CORRUPT.value,)),
        counted("Image quality", QUALITY_ISSUES),
        f"Decisions & export ({len(decisions)})",
    ]
)
with tabs[0]:
    duplicates_tab()
with tabs[1]:
    ranked_tab((IssueType.OUTLIER.value,), "outliers", "No outliers found.")
with tabs[2]:
    label_tab()
with tabs[3]:
    corrupt_tab()
with tabs[4]:
    ranked_tab(QUALITY_ISSUES, "quality", "No image-quality problems found.")
with tabs[5]:
    export_tab(source, decisions)

selected = state.selected_sample()
if selected is not None:
    widgets.sample_detail(result, table, selected, mistake_widgets.history_panel(run))
