"""AppTest of the data pages on the real sample data, scanned once by the engine into a
workspace (AppTest cannot wait on the app's background scan process; the e2e test does that).

Trusted answers come from the dataset listing and `sample_data/digits_planted.csv`, the
oracle of the planted problems.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from recipe_core.data import open_dataset
from recipe_core.data.named import list_datasets
from recipe_core.explore.curation import load_decisions
from recipe_core.explore.query import ISSUE_SCORE, query, sample_table
from recipe_core.explore.views import histogram
from recipe_core.jobs.scan_job import RESULT_DIR, job_dir
from recipe_core.scan import scan, write_result
from recipe_core.workspace import Workspace, open_workspace
from tests.app.helpers import MAIN, image_captions, open_page
from tests.conftest import REPO_ROOT, SAMPLE_DIGITS, write_image_folder

PLANTED = pd.read_csv(REPO_ROOT / "sample_data" / "digits_planted.csv", keep_default_na=False)


def planted(issue: str) -> set[str]:
    return set(PLANTED.loc[PLANTED["issue"] == issue, "path"])


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A workspace holding the app-format scan of sample_data/digits."""
    ws = open_workspace(tmp_path_factory.mktemp("pages") / "ws")
    root = open_dataset(SAMPLE_DIGITS).root
    write_result(scan(root, workspace=ws, workers=0), job_dir(ws, root) / RESULT_DIR)
    return ws


@pytest.fixture
def app(scanned: Workspace, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    monkeypatch.setenv("RECIPE_WORKSPACE", str(scanned.root))
    monkeypatch.delenv("RECIPE_DATASET", raising=False)  # the default: sample_data/digits
    yield AppTest.from_file(MAIN, default_timeout=90).run()


def table_paths(at: AppTest, index: int = 0) -> list[str]:
    return at.dataframe[index].value["path"].tolist()


def test_overview_cards_count_issues_and_link_to_the_filtered_browse(app: AppTest) -> None:
    at = open_page(app, "data_overview")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Samples"] == "1,709"
    assert metrics["Corrupt files"] == str(len(planted("corrupt")))
    assert metrics["Outliers"] == str(len(planted("outlier")))
    assert int(metrics["Conflicting labels"]) == len(planted("conflicting_labels"))
    assert int(metrics["Train/val leaks"]) == len(planted("cross_split_duplicate"))
    assert metrics["Class imbalance"] == "1 class"  # classes, not the samples in them
    # once scanned, one count of unreadable files: the scan's full decode, as its card says
    assert metrics["Unreadable files"] == metrics["Corrupt files"] == str(len(planted("corrupt")))
    at.button(key="card_corrupt").click().run()
    assert not at.exception
    assert at.title[0].value.endswith("Browse samples")
    assert any(c.value.startswith("**5** of 1,709 samples match") for c in at.caption)
    assert set(table_paths(at)) == planted("corrupt")
    # the card opens Browse sorted by how sure the scan is of its issue, not in path order
    assert at.selectbox(key="browse_sort_col").value == ISSUE_SCORE
    shown = at.dataframe[0].value
    scores = shown[ISSUE_SCORE].tolist()
    assert scores == sorted(scores, reverse=True)
    assert np.allclose(scores, shown["score_corrupt"])  # the card's issue, not any issue


def test_browse_filters_reduce_rows_to_the_expected_set(app: AppTest) -> None:
    at = open_page(app, "browse")
    assert any(c.value.startswith("**1,709** of 1,709") for c in at.caption)
    at.multiselect(key="flt_labels").set_value(["7"]).run()
    at.multiselect(key="flt_splits").set_value(["train"]).run()
    source = open_dataset(SAMPLE_DIGITS).samples
    want = source[(source["label"] == "7") & (source["split"] == "train")]["path"]
    assert len(want) == 12
    assert set(table_paths(at)) == set(want)
    assert any(c.value.startswith("**12** of 1,709") for c in at.caption)
    at.text_input(key="flt_path").set_value("TRAIN/7/0016").run()  # case-insensitive
    assert set(table_paths(at)) == {p for p in want if p.startswith("train/7/0016")}


def test_sorting_by_outlier_score_puts_the_planted_outliers_first(app: AppTest) -> None:
    at = open_page(app, "browse")
    at.selectbox(key="browse_sort_col").set_value("score_outlier").run()
    assert at.toggle(key="browse_sort_desc").value is True
    shown = at.dataframe[0].value
    assert shown.columns[7] == "score_outlier"  # the sort column comes right after the basics
    n = len(planted("outlier"))
    assert set(shown["path"][:n]) == planted("outlier")
    assert shown["score_outlier"][:n].is_monotonic_decreasing
    assert shown["score_outlier"][n:].isna().all()  # unflagged samples have no outlier score
    at.toggle(key="browse_sort_desc").set_value(False).run()
    assert table_paths(at)[:n] == shown["path"][:n].tolist()[::-1]


def test_detail_panel_shows_issue_rows_and_neighbours_and_curates(
    app: AppTest, scanned: Workspace
) -> None:
    at = open_page(app, "browse")
    at.multiselect(key="flt_issues").set_value(["conflicting_labels"]).run()
    rows = at.dataframe[0].value
    path = sorted(rows["path"])[0]
    sid = _sample_id(path)
    at.button(key=f"browse_grid_{sid}").click().run()
    texts = [t.value for t in at.text]
    assert any(t.startswith(f"{path}\nlabel: ") for t in texts)
    why = next(m.value for m in at.markdown if m.value.startswith("**Why it was flagged**"))
    assert "**conflicting\\_labels** (score 1.00, group dup" in why
    neighbours = [c for c in image_captions(at) if c.startswith("d = ")]
    assert len(neighbours) == 8 and neighbours[0].startswith("d = 0.000")  # its exact copy
    at.button(key=f"drop_{sid}").click().run()
    assert not at.exception
    root = open_dataset(SAMPLE_DIGITS).root
    assert load_decisions(scanned, root)[sid].action == "drop"
    at.button(key=f"undo_{sid}").click().run()
    assert sid not in load_decisions(scanned, root)


def test_distributions_histogram_and_filtered_grid(app: AppTest) -> None:
    at = open_page(app, "distributions")
    assert len(at.get("plotly_chart")) == 3  # the histogram, the embedding map, class balance
    assert "1,709 samples (no filter)." in [c.value for c in at.caption]
    at.multiselect(key="flt_issues").set_value(["dark"]).run()
    assert any(c.value.startswith(f"**{len(planted('dark'))}** samples") for c in at.caption)
    captions = [c for c in image_captions(at) if "dark" in c and "⚠️" in c]
    assert len(captions) == len(planted("dark"))
    at.segmented_control(key="dist_kind").set_value("Box plot").run()
    assert not at.exception and len(at.get("plotly_chart")) == 3
    import json

    boxes = [t for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]]
    assert [t["type"] for t in boxes] == ["box"] * len(boxes) and len(boxes) >= 2
    assert [t["x"] for t in boxes] == [
        [t["name"]] for t in boxes
    ]  # one box per class, not all at 0


def test_issue_views_show_groups_corrupt_files_and_label_suggestions(app: AppTest) -> None:
    at = open_page(app, "issues")
    markdown = [m.value for m in at.markdown]
    assert any("groups of identical or near-identical files" in m for m in markdown)
    conflict = PLANTED[PLANTED["group"] == "conflict-1"]["path"].tolist()
    group_captions = image_captions(at)
    holders = [c for c in group_captions if any(_md_path(p) in c for p in conflict)]
    assert len(holders) == 2  # both copies, shown in the first (conflicting) groups
    at.segmented_control(key="dup_show").set_value("Cross-split leaks").run()
    leaks = {
        p for c in image_captions(at) for p in planted("cross_split_duplicate") if _md_path(p) in c
    }
    assert leaks == planted("cross_split_duplicate")
    corrupt = next(df.value for df in at.dataframe if "error" in df.value.columns)
    assert set(corrupt["path"]) == planted("corrupt")
    assert (corrupt["error"] != "").all()
    labels = next(df.value for df in at.dataframe if "suggested" in df.value.columns)
    oracle = PLANTED[PLANTED["issue"] == "label_issue"].set_index("path")["true_label"]
    hits = labels[labels["path"].isin(oracle.index)]
    assert len(labels) == 50  # the first page, most confident first
    assert len(hits) >= 0.9 * len(labels)  # almost all of them are planted label errors
    agree = (hits["suggested"] == hits["path"].map(oracle)).mean()
    assert agree >= 0.8  # the suggested label is the true one for most planted errors


def test_export_applies_decisions_and_leaves_files_untouched(
    app: AppTest, scanned: Workspace
) -> None:
    """The export is a named dataset: every page's picker offers it next to the raw folder,
    and a page picking it reads the kept rows only (issue 17)."""
    before = _hashes(SAMPLE_DIGITS)
    at = open_page(app, "issues")
    at.button(key="corrupt_drop_all").click().run()
    at.button(key="export").click().run()
    assert not at.exception
    code = next(c.value for c in at.code if "manifest" in c.value)
    manifest = pd.read_csv(code.splitlines()[0], keep_default_na=False)
    assert set(manifest["path"]).isdisjoint(planted("corrupt"))
    kept = 1709 - len(planted("corrupt"))
    assert len(manifest) == kept
    assert _hashes(SAMPLE_DIGITS) == before
    try:
        (named,) = list_datasets(scanned)
        assert Path(code.splitlines()[0]).resolve() == named.manifest
        at.button(key="export_open").click().run()  # "Open the cleaned dataset"
        assert not at.exception, [e.value for e in at.exception]
        for page in ("checks", "data_overview"):
            open_page(at, page)
            picker = next(s for s in at.selectbox if s.label == "Dataset")
            assert picker.value == str(named.manifest) and len(picker.options) == 2
        assert {m.label: m.value for m in at.metric}["Samples"] == f"{kept:,}"
        assert at.text_input(key="dataset_input").value == str(named.manifest)
        assert any(c.value.startswith("Cleaned dataset **digits") for c in at.caption)
        open_page(at, "home")
        assert any("(cleaned)" in c.value and "(raw)" in c.value for c in at.caption)
    finally:
        root = open_dataset(SAMPLE_DIGITS).root
        for sid in list(load_decisions(scanned, root)):  # leave the module's workspace clean
            from recipe_core.explore.curation import record_decision

            record_decision(scanned, root, sample_id=sid, path="", action="keep")
        shutil.rmtree(scanned.datasets, ignore_errors=True)


def test_local_mode_opens_an_existing_folder_outside_the_roots(
    app: AppTest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The local app needs no restart with --data-root for a folder the user types; a path
    that does not exist is still refused (serve mode refuses both: tests/hosting)."""
    elsewhere = write_image_folder(tmp_path_factory.mktemp("elsewhere") / "ds")
    at = open_page(app, "data_overview")
    at.text_input(key="dataset_input").set_value(str(elsewhere)).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert {m.label: m.value for m in at.metric}["Samples"] == "24"
    at.text_input(key="dataset_input").set_value(str(elsewhere.parent / "missing")).run()
    assert len(at.error) == 1 and "outside the folders this dashboard may open" in at.error[0].value
    assert not at.metric


def test_html_in_labels_and_file_names_is_escaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_image_folder(tmp_path / "xss", classes=2, per_class=6)
    (root / "train" / "class_0").rename(root / "train" / "<b>bold")
    Image.new("L", (16, 16), 128).save(root / "train" / "class_1" / "<script>alert(1)<.png")
    ws = open_workspace(tmp_path / "ws")
    source = open_dataset(root)
    write_result(scan(source, workspace=ws, workers=0), job_dir(ws, source.root) / RESULT_DIR)
    monkeypatch.setenv("RECIPE_WORKSPACE", str(ws.root))
    monkeypatch.setenv("RECIPE_DATASET", str(root))
    at = AppTest.from_file(MAIN, default_timeout=90).run()
    for view in ("data_overview", "browse", "issues"):
        at = open_page(at, view)
        rendered = [e.value for e in (*at.caption, *at.markdown, *at.error, *at.info)]
        rendered += image_captions(at)
        assert not [t for t in rendered if "<b>" in t or "<script>" in t], view
    at = open_page(at, "browse")
    assert "<b>bold" in set(at.dataframe[0].value["label"])  # tables show the raw text


def _sample_id(path: str) -> int:
    samples = open_dataset(SAMPLE_DIGITS).samples
    return int(samples.loc[samples["path"] == path, "sample_id"].iloc[0])


def _md_path(path: str) -> str:
    from app.widgets import md

    return md(path)


def _hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_a_clicked_bar_selects_exactly_its_samples() -> None:
    """The histogram selection -> filter mapping, against the bar counts themselves."""
    from app.data_widgets import histogram_selection, histogram_trace_order

    rng = np.random.default_rng(0)
    n = 3000
    labels = rng.choice(["10", "2", "b", "a"], n)
    frame = pd.DataFrame({"sample_id": np.arange(n), "path": [f"{i}.png" for i in range(n)],
                          "label": labels, "split": rng.choice(["train", "val"], n),
                          "brightness": rng.random(n).round(2)})  # fmt: skip
    table = sample_table(frame, pd.DataFrame(columns=["sample_id", "issue", "score"]))
    h = histogram(table, "brightness", np.ones(n, dtype=bool), bins=10)
    order = histogram_trace_order(h)
    assert [h.groups[i] for i in order] == ["2", "10", "a", "b"]  # natural order in the legend
    centers = (h.edges[:-1] + h.edges[1:]) / 2
    for group in ("2", "b"):
        for b in (0, 4, 9):  # the last bin is closed on the right
            point = {"x": centers[b], "curve_number": order.index(h.groups.index(group))}
            spec = histogram_selection({"points": [point], "box": []}, h, by_class=True)
            assert spec is not None and spec.labels == (group,)
            assert query(table, spec).total == h.counts[h.groups.index(group), b]
    box = histogram_selection({"points": [], "box": [{"x": [0.5, 0.2]}]}, h, by_class=True)
    assert box is not None
    want = int(((frame["brightness"] >= 0.2) & (frame["brightness"] <= 0.5)).sum())
    assert query(table, box).total == want
    assert histogram_selection({"points": [], "box": []}, h, by_class=True) is None


def test_one_far_outlier_does_not_squeeze_the_histogram_and_its_bar_selects_it() -> None:
    """A single value 1000x the rest put every other sample in one bar of 40: the bins now
    span Tukey's far-out fences, the outlier is counted in the last bar, and selecting that
    bar keeps it (an open upper bound), exactly as many samples as the bar shows."""
    from app.data_widgets import histogram_selection, histogram_trace_order

    rng = np.random.default_rng(3)
    n = 1000
    values = rng.random(n)
    values[17] = 1000.0
    frame = pd.DataFrame({"sample_id": np.arange(n), "path": [f"{i}.png" for i in range(n)],
                          "label": "x", "split": "train", "brightness": values})  # fmt: skip
    table = sample_table(frame, pd.DataFrame(columns=["sample_id", "issue", "score"]))
    h = histogram(table, "brightness", np.ones(n, dtype=bool), bins=40)
    assert (h.n_below, h.n_above) == (0, 1) and h.edges[-1] < 5
    assert h.counts.sum() == n and h.counts.max() < n / 10  # the bulk spread over the bars
    order = histogram_trace_order(h)
    last = {"x": (h.edges[-2] + h.edges[-1]) / 2, "curve_number": order.index(0)}
    spec = histogram_selection({"points": [last], "box": []}, h, by_class=True)
    assert spec is not None
    shown = query(table, spec)
    assert shown.total == h.counts[0, -1] and 17 in set(shown.rows["sample_id"])


def test_keep_one_drops_every_other_member_of_a_duplicate_group(
    app: AppTest, scanned: Workspace
) -> None:
    at = open_page(app, "issues")
    button = next(
        b
        for b in at.button
        if str(b.key).startswith("dup_keep_one_") and b.key != "dup_keep_one_all"
    )
    header = next(m.value for m in at.markdown if m.value.startswith("**Group "))  # its group
    n_files = int(header.split("· ")[1].split(" files")[0])
    button.click().run()
    assert not at.exception
    root = open_dataset(SAMPLE_DIGITS).root
    dropped = [d for d in load_decisions(scanned, root).values() if d.action == "drop"]
    assert n_files >= 2 and len(dropped) == n_files - 1
    from recipe_core.explore.curation import record_decision

    for d in dropped:  # leave the module's workspace clean
        record_decision(scanned, root, sample_id=d.sample_id, path="", action="keep")


def test_keep_one_of_every_group_and_a_bigger_page(app: AppTest, scanned: Workspace) -> None:
    at = open_page(app, "issues")
    at.selectbox(key="dup_per_page").set_value(50).run()
    headers = [m.value for m in at.markdown if m.value.startswith("**Group ")]
    sizes = [int(h.split("· ")[1].split(" files")[0]) for h in headers]
    assert len(headers) > 8  # more than one old page of groups is reachable
    at.button(key="dup_keep_one_all").click().run()
    assert not at.exception
    root = open_dataset(SAMPLE_DIGITS).root
    dropped = [d for d in load_decisions(scanned, root).values() if d.action == "drop"]
    assert len(headers) < 50 and len(dropped) == sum(sizes) - len(sizes)
    from recipe_core.explore.curation import record_decision

    for d in dropped:  # leave the module's workspace clean
        record_decision(scanned, root, sample_id=d.sample_id, path="", action="keep")


def test_the_threshold_panel_shows_each_lines_effect_and_rescans_at_another(
    scanned: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Issues page's near-duplicate threshold: a table of what each value reports, the
    loosest pair a value lets in, and a rescan at it (a real scan job, in a copy of the
    module's workspace so the other tests keep their scan)."""
    import time

    from recipe_core.jobs.scan_job import read_state
    from recipe_core.scan import load_scan
    from recipe_core.scan.issues.duplicates import threshold_effect

    ws = open_workspace(shutil.copytree(scanned.root, tmp_path / "ws"))
    monkeypatch.setenv("RECIPE_WORKSPACE", str(ws.root))
    monkeypatch.delenv("RECIPE_DATASET", raising=False)
    at = open_page(AppTest.from_file(MAIN, default_timeout=90).run(), "issues")
    assert any(e.label.startswith("Near-duplicate threshold: 1 (the default)") for e in at.expander)
    effect = next(df.value for df in at.dataframe if "new_links" in df.value.columns)
    root = open_dataset(SAMPLE_DIGITS).root
    folder = job_dir(ws, root) / RESULT_DIR
    want = threshold_effect(load_scan(folder).index)  # the engine's answer, computed here
    assert effect["links"].tolist() == want["links"].tolist()
    assert effect["flipped"].tolist() == want["flipped"].tolist()
    assert effect["edited"].tolist() == want["edited"].tolist()
    assert effect["used"].tolist() == (want["threshold"] == 1.0).tolist()
    assert (
        effect["links"].is_monotonic_increasing
        and effect["links"].iloc[-1] > effect["links"].iloc[0]
    )
    assert not any(b.key == "near_threshold_rescan" for b in at.button)  # same line: no rescan
    at.select_slider(key="near_threshold_choice").set_value(1.5).run()
    assert not at.exception
    loosest = want[want["threshold"] == 1.5].iloc[0]
    assert any(f"closeness {loosest['closeness']:.2f}" in m.value for m in at.markdown)
    table = load_scan(folder).index.table.set_index("sample_id")
    pair = table.loc[[loosest["sample_id_a"], loosest["sample_id_b"]], "path"]
    captions = image_captions(at)
    assert all(any(_md_path(p) in c for c in captions) for p in pair)  # both pictures shown
    at.button(key="near_threshold_rescan").click().run()
    assert not at.exception
    deadline = time.monotonic() + 240
    while read_state(job_dir(ws, root)).state == "running" and time.monotonic() < deadline:
        time.sleep(1)
    assert read_state(job_dir(ws, root)).state == "succeeded", read_state(job_dir(ws, root))
    assert load_scan(folder).summary.near_threshold == 1.5
    at.run()  # the new scan is the page's: its threshold is the title, and a plain Rescan keeps it
    assert any(e.label.startswith("Near-duplicate threshold: 1.5") for e in at.expander)


def test_overlapping_classes_have_a_card_and_a_warning_beside_the_label_issues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The planted photo set with one class split in two at random: the overview counts the
    two classes, and the label tab says they overlap and why no label issue names them."""
    from tests.photos.planted import make_planted_photos, split_class

    photos = make_planted_photos(tmp_path / "photos", seed=0)
    root = tmp_path / "split"
    split_class(photos.images, root, "pagoda", "pagoda2")
    ws = open_workspace(tmp_path / "ws")
    source = open_dataset(root)
    write_result(scan(source, workspace=ws, workers=0), job_dir(ws, source.root) / RESULT_DIR)
    monkeypatch.setenv("RECIPE_WORKSPACE", str(ws.root))
    monkeypatch.setenv("RECIPE_DATASET", str(root))
    at = open_page(AppTest.from_file(MAIN, default_timeout=90).run(), "data_overview")
    assert {m.label: m.value for m in at.metric}["Overlapping classes"] == "2 classes"
    at = open_page(at, "issues")
    warnings = [w.value for w in at.warning if "classes overlap" in w.value]
    assert len(warnings) == 1
    assert "**pagoda**" in warnings[0] and "**pagoda2**" in warnings[0]
    labels = next(df.value for df in at.dataframe if "suggested" in df.value.columns)
    assert not (labels["given label"].isin(["pagoda", "pagoda2"])
                & labels["suggested"].isin(["pagoda", "pagoda2"])).any()  # fmt: skip


def test_overview_has_no_overlap_on_the_digits(app: AppTest) -> None:
    at = open_page(app, "data_overview")
    assert {m.label: m.value for m in at.metric}["Overlapping classes"] == "0 classes"
