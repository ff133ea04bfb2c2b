"""Reusable renderers: dataset path box, charts, image grid, the scan panel and the sample
detail drawer. Input widgets' functions end in `_ui` and return what the user chose.

User strings (file names, labels) are data, never markup: Streamlit renders captions, alerts
and labels as Markdown, so they pass through `md`; plotly renders HTML tags in labels, so
they pass through `plot_text`.
"""

from __future__ import annotations

import contextlib
import html
import string
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from app import access, data_state, pictures, state
from recipe_core import DatasetSource, RecipeError
from recipe_core.data.named import NamedDataset
from recipe_core.explore.query import SampleTable
from recipe_core.explore.thumbnails import thumbnail_file
from recipe_core.explore.views import nearest_samples
from recipe_core.jobs.scan_job import scan_fraction
from recipe_core.jobs.state import JobProgress
from recipe_core.scan import ScanResult

PUNCTUATION = frozenset(string.punctuation)  # Markdown/HTML syntax characters, escaped by `md`
STAGES = {"start": "Starting the scan process", "index": "Decoding images",
          "issues": "Finding issues", "write": "Saving the result"}  # fmt: skip


def dataset_path_ui(
    *, key: str = "dataset_input", where: DeltaGenerator | None = None, suffix: str = ""
) -> str:
    """The dataset picker: the workspace's cleaned datasets next to the raw ones (shown once
    an export exists), and a path box prefilled with the current dataset for any other folder
    or manifest; returns the chosen path. `where`: a column to draw into (default: the page);
    `suffix` ends both labels (two pickers on one page must not share a label)."""
    typed = state.typed_dataset(key)
    if typed and typed != state.current_dataset():
        state.set_dataset(typed)  # before the picker is drawn, so it shows the typed one
    current = state.current_dataset()
    named = data_state.named_datasets()
    with where if where is not None else contextlib.nullcontext():
        if named:
            choices = dataset_choices(current, named)
            pick = f"{key}_pick"
            state.point_dataset_pick(pick, list(choices))
            st.selectbox(f"Dataset{suffix}", list(choices), key=pick,
                         format_func=choices.__getitem__,
                         on_change=state.pick_dataset, args=(pick, key),
                         help="A cleaned dataset is an export from the Issues page: a manifest "
                         "of the kept samples that references the original files.")  # fmt: skip
        chosen = st.text_input(
            f"Dataset path{suffix}",
            value=current,
            key=key,
            help="An image folder (one sub-folder per class, optionally inside "
            "train/val/test), or a CSV/Parquet manifest with columns path,label[,split].",
        ).strip()
        record = data_state.dataset_record(current)
        if record is not None:
            st.caption(
                f"Cleaned dataset **{md(record.name)}**: {record.rows:,} samples "
                f"({record.dropped:,} dropped, {record.relabelled:,} relabelled) of "
                f"{md(record.source)}; the manifest references the original files."
            )
    return chosen or current


def dataset_choices(current: str, named: Sequence[NamedDataset]) -> dict[str, str]:
    """{path: label} for the dataset picker: the current dataset, each cleaned dataset's
    source, then the cleaned datasets (newest first); one entry per resolved path."""
    choices: dict[str, str] = {}
    seen: set[Path] = set()

    def add(path: str, label: str) -> None:
        resolved = _resolved(path)
        if resolved not in seen:
            seen.add(resolved)
            choices[path] = label

    by_manifest = {d.manifest: d for d in named}
    mine = by_manifest.get(_resolved(current))
    add(current, mine.name if mine is not None else f"{Path(current).name or current} — {current}")
    for d in named:
        add(str(d.source), f"{d.source.name or d.source} — {d.source}")
    for d in named:
        add(str(d.manifest), f"{d.name} — {d.rows:,} samples")
    return choices


def _resolved(path: str) -> Path:
    try:
        return Path(path).expanduser().resolve()
    except (OSError, RuntimeError):  # a name too long, a loop of links: compared as typed
        return Path(path)


def class_counts_chart(counts: pd.DataFrame) -> None:
    """Bar chart of samples per class, one bar colour per split."""
    frame = counts.assign(split=counts["split"].replace("", "(no split)"))
    # plotly renders a subset of HTML in labels: show class and split names literally
    frame = frame.assign(label=frame["label"].map(plot_text), split=frame["split"].map(plot_text))
    fig = px.bar(
        frame, x="label", y="count", color="split", barmode="group",
        labels={"label": "class", "count": "samples"},
        category_orders={"label": sorted(frame["label"].unique(), key=natural_key)},
    )  # fmt: skip
    fig.update_xaxes(type="category")  # one tick per class, even for numeric class names
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 30, "b": 10})
    st.plotly_chart(fig, width="stretch")


def image_grid(
    source: DatasetSource,
    rows: pd.DataFrame,
    *,
    columns: int = 8,
    captions: Sequence[str] | None = None,
) -> None:
    """Thumbnails of `rows` (sample table rows) with captions; unreadable files say so."""
    cache = access.workspace().thumbnails
    texts = list(captions) if captions is not None else [_caption(r) for r in rows.itertuples()]
    paths = rows["path"].tolist()
    for start in range(0, len(paths), columns):
        cells = st.columns(columns)
        for cell, path, text in zip(
            cells, paths[start : start + columns], texts[start:], strict=False
        ):
            thumb = thumbnail_file(cache, source.abspath(path))
            with cell:
                if thumb is None:
                    st.warning("unreadable", icon="⚠️")
                    st.caption(text)
                else:
                    pictures.image(thumb, caption=text, width="stretch")


def _caption(row: object) -> str:
    label = md(getattr(row, "label", ""))
    split = md(getattr(row, "split", ""))
    return f"{label} · {split}" if split else label


def md(text: object) -> str:
    """`text` shown literally where Streamlit renders Markdown (captions, alerts, labels)."""
    return "".join(f"\\{c}" if c in PUNCTUATION else c for c in str(text).replace("\n", " "))


def plot_text(text: object) -> str:
    """`text` shown literally in a plotly label (plotly renders a subset of HTML)."""
    return html.escape(str(text), quote=False)


def natural_key(value: str) -> tuple[int, int | str]:
    return (0, int(value)) if value.isdigit() else (1, value)


# --- scanning ---------------------------------------------------------------------------------


def scan_panel(root: Path, *, key: str = "scan") -> ScanResult | None:
    """The scan's status with a Scan / Rescan button; live progress while a scan runs."""
    job = data_state.scan_state(root)
    result = data_state.scan_result(root)
    if job.state == "running":
        _scan_progress(root)
        return result
    if job.state == "failed":
        st.error(f"The last scan failed: {md(job.message)}", icon="🚫")
    if result is None:
        st.info(
            "This dataset has not been scanned yet. A scan decodes every image once and "
            "finds duplicates, leaks, corrupt files, outliers and likely label errors.",
            icon="🔬",
        )
    label = "Scan dataset" if result is None else "Rescan"
    left, right = st.columns([1, 4], vertical_alignment="center")
    if not access.can("start_scan"):
        left.caption("Viewers cannot start scans.")
    elif left.button(label, key=f"{key}_start", type="primary" if result is None else "secondary"):
        try:
            data_state.start_scan(root)
        except RecipeError as error:
            st.error(md(error), icon="🚫")
        else:
            # The bar in this run, not after a second run of the whole page (the job wrote
            # "running" before start_scan returned): benchmarks/page_load.py times the click.
            _scan_progress(root)
            return result
    if result is not None:
        s = result.summary
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(data_state.scan_written(root)))
        right.caption(
            f"Scanned {when}: {s.n_samples:,} samples, {s.n_flagged:,} flagged, "
            f"{s.n_undecodable:,} undecodable (embedding {md(s.embedding)})."
        )
    return result


@st.fragment(run_every=0.7)
def _scan_progress(root: Path) -> None:
    """Polls the background scan's progress; reruns the whole page when it is over. Runners
    may cancel it (the previous result, if any, stays)."""
    job = data_state.scan_state(root)
    if job.state != "running":
        st.rerun(scope="app")
    bar, stop = st.columns([5, 1], vertical_alignment="center")
    bar.progress(scan_fraction(job), text=_progress_text(job))
    if access.can("start_scan") and stop.button("Cancel scan", key="scan_cancel"):
        data_state.cancel_scan(root)
        st.rerun(scope="app")


def _progress_text(job: JobProgress) -> str:
    text = STAGES.get(job.stage, job.stage.capitalize())
    return f"{text}… {job.done:,} / {job.total:,}" if job.total else f"{text}…"


def scanned_dataset() -> tuple[DatasetSource, Path, ScanResult, SampleTable]:
    """The current dataset and its scan, for the pages that need one; on a bad dataset path an
    error with a way back, and without a scan the scan panel, then `st.stop()`."""
    try:
        source = data_state.dataset_source(state.current_dataset())
        target = state.current_target()
    except RecipeError as error:
        st.error(md(error), icon="🚫")
        st.page_link("views/data_overview.py", label="Choose a dataset on the Data overview")
        st.stop()
    st.caption(f"Dataset: {md(target)}")
    result, table = require_scan(target, source)
    return source, target, result, table


def require_scan(target: Path, source: DatasetSource) -> tuple[ScanResult, SampleTable]:
    """The scan of dataset `target`, or a scan panel and `st.stop()` when there is none yet."""
    result = data_state.scan_result(target)
    table = data_state.samples(target)
    if result is None or table is None or data_state.scan_state(target).state == "running":
        scan_panel(target)
        st.stop()
    if not data_state.scan_is_current(target, source):
        st.warning("Files were added or removed since this scan; rescan to see them.", icon="⚠️")
    return result, table


# --- the sample detail panel ------------------------------------------------------------------

N_NEIGHBOURS = 8


def sample_detail(
    result: ScanResult,
    table: SampleTable,
    sample_id: int,
    beside: Callable[[int], None] | None = None,
) -> None:
    """Open the detail drawer of one sample (it stays open while the sample is selected);
    `beside(sample_id)` renders more under its issues (a run's prediction history)."""
    hits = np.flatnonzero(table.frame["sample_id"].to_numpy() == sample_id)
    if len(hits) == 0:  # e.g. a rescan removed it
        state.select_sample(None)
        return
    _detail_drawer(result, table, int(hits[0]), beside)


def _close_detail() -> None:
    state.select_sample(None)


@st.dialog("Sample details", width="large", position="right", on_dismiss=_close_detail)
def _detail_drawer(
    result: ScanResult, table: SampleTable, pos: int, beside: Callable[[int], None] | None
) -> None:
    """Everything about one sample: image, issue rows, curation, neighbours, statistics."""
    frame = table.frame
    row = frame.iloc[pos]
    source = result.index.source
    left, right = st.columns([1, 2])
    with left:
        _large_image(source, str(row["path"]), str(row["decode_error"]))
    with right:
        st.text(f"{row['path']}\nlabel: {row['label']}    split: {row['split'] or '-'}")
        _issue_rows(result.issues, int(row["sample_id"]))
        if beside is not None:
            beside(int(row["sample_id"]))
    curation_ui(source, row)
    st.markdown("**Nearest neighbours** (embedding distance: 0 = identical)")
    _neighbours(result, frame, pos)
    with st.expander("All statistics"):
        stats = pd.DataFrame({"statistic": frame.columns, "value": [str(v) for v in row]})
        st.dataframe(stats, hide_index=True, width="stretch")


def _large_image(source: DatasetSource, path: str, error: str) -> None:
    big = thumbnail_file(access.workspace().thumbnails, source.abspath(path), size=512,
                         upscale=True)  # fmt: skip  # a 32 px file: its pixels, not a blur
    if big is None:
        st.error("This file does not decode.", icon="🚫")
        st.code(error or "unreadable", language=None, wrap_lines=True)
    else:
        pictures.image(big, width="content")  # its own size: never re-scaled by the browser


def _issue_rows(issues: pd.DataFrame, sample_id: int) -> None:
    mine = issues[issues["sample_id"] == sample_id]
    if mine.empty:
        st.success("No issue flagged for this sample.", icon="✅")
        return
    lines = [
        f"- **{md(r.issue)}** (score {r.score:.2f}"
        + (f", group {md(r.group)}" if r.group else "")
        + f"): {md(r.detail)}"
        for r in mine.itertuples()
    ]
    st.markdown("**Why it was flagged**\n\n" + "\n".join(lines))


def curation_ui(source: DatasetSource, row: pd.Series) -> None:
    """Drop / relabel / undo buttons for one sample; decisions go to the workspace log."""
    root, sid, path, label = (
        state.current_target(),
        int(row["sample_id"]),
        str(row["path"]),
        str(row["label"]),
    )
    decision = data_state.decisions(root).get(sid)
    if decision is not None:
        text = "drop" if decision.action == "drop" else f"relabel as {decision.label}"
        st.info(f"Curation: {md(text)} (the file itself is untouched).", icon="✂️")
    if not access.can("curation_decision"):
        return
    a, b, c = st.columns([1, 2, 1], vertical_alignment="bottom")
    if a.button(
        "Drop",
        key=f"drop_{sid}",
        disabled=decision is not None and decision.action == "drop",
        width="stretch",
    ):
        data_state.decide(root, sample_id=sid, path=path, action="drop", old_label=label)
        st.rerun()
    others = [x for x in source.classes if x != label]
    new = b.selectbox(
        "Relabel as", others, key=f"relabel_to_{sid}", index=None, placeholder="choose a class"
    )
    if c.button("Relabel", key=f"relabel_{sid}", disabled=new is None, width="stretch"):
        data_state.decide(
            root, sample_id=sid, path=path, action="relabel", label=str(new), old_label=label
        )
        st.rerun()
    if decision is not None and st.button("Undo decision", key=f"undo_{sid}"):
        data_state.decide(root, sample_id=sid, path=path, action="keep", old_label=label)
        st.rerun()


def _neighbours(result: ScanResult, frame: pd.DataFrame, pos: int) -> None:
    valid = result.index.valid
    if not valid[pos]:
        st.caption("An undecodable file has no embedding, so no neighbours.")
        return
    rows, dist = nearest_samples(result.index.embeddings, pos, N_NEIGHBOURS, valid=valid)
    shown = frame.iloc[rows]
    labels = shown["label"].tolist()
    captions = [f"d = {d:.3f} · {md(lab)}" for d, lab in zip(dist, labels, strict=True)]
    image_grid(result.index.source, shown, columns=N_NEIGHBOURS, captions=captions)
