"""AppTest of Browse's reading aids (issue 17): issue cards that open Browse worst first,
clickable neighbours, previous/next in the sample detail, tags and saved views, on the real
sample data scanned once by the engine."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from recipe_core.data import open_dataset
from recipe_core.explore.query import ISSUE_SCORE
from recipe_core.jobs.scan_job import RESULT_DIR, job_dir
from recipe_core.scan import load_scan, scan, write_result
from recipe_core.scan.issues import QUALITY_ISSUES
from recipe_core.workspace import Workspace, open_workspace
from tests.app.helpers import MAIN, open_page
from tests.conftest import SAMPLE_DIGITS


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    ws = open_workspace(tmp_path_factory.mktemp("browse") / "ws")
    root = open_dataset(SAMPLE_DIGITS).root
    write_result(scan(root, workspace=ws, workers=0), job_dir(ws, root) / RESULT_DIR)
    return ws


@pytest.fixture
def app(scanned: Workspace, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    monkeypatch.setenv("RECIPE_WORKSPACE", str(scanned.root))
    monkeypatch.delenv("RECIPE_DATASET", raising=False)  # the default: sample_data/digits
    yield AppTest.from_file(MAIN, default_timeout=90).run()


def issues_of(ws: Workspace):  # type: ignore[no-untyped-def]
    root = open_dataset(SAMPLE_DIGITS).root
    return load_scan(job_dir(ws, root) / RESULT_DIR).issues


def test_quality_card_opens_browse_worst_quality_first(app: AppTest, scanned: Workspace) -> None:
    """The Image quality card counts seven issue types: Browse sorts by the worst of those,
    not by a sample's worst issue of any kind (a duplicate's 1.0 would jump the queue)."""
    at = open_page(app, "data_overview")
    at.button(key=f"card_{QUALITY_ISSUES[0]}").click().run()
    assert not at.exception
    assert at.selectbox(key="browse_sort_col").value == ISSUE_SCORE
    issues = issues_of(scanned)
    worst = issues[issues["issue"].isin(QUALITY_ISSUES)].groupby("sample_id")["score"].max()
    want = np.sort(worst.to_numpy())[::-1]
    shown = at.dataframe[0].value
    assert np.allclose(shown[ISSUE_SCORE].to_numpy(), want[: len(shown)])


def plotly_array(value: object) -> np.ndarray:
    """A plotly JSON array: a list, or {"dtype", "bdata": base64} for a numpy array."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value)


def shown_path(at: AppTest) -> str:
    return next(t.value for t in at.text if "\nlabel: " in t.value).split("\n")[0]


def test_previous_and_next_step_through_the_sorted_matches(app: AppTest) -> None:
    at = open_page(app, "browse")
    at.multiselect(key="flt_issues").set_value(["outlier"]).run()
    at.selectbox(key="browse_sort_col").set_value("score_outlier").run()
    order = at.dataframe[0].value["path"].tolist()
    assert len(order) >= 3
    first = _sid(at, order[0])
    at.button(key=f"browse_grid_{first}").click().run()
    assert shown_path(at) == order[0]
    assert at.button(key="detail_prev").disabled  # the first of the list
    at.button(key="detail_next").click().run()
    assert not at.exception
    assert shown_path(at) == order[1]
    at.button(key="detail_next").click().run()
    assert shown_path(at) == order[2]
    at.button(key="detail_prev").click().run()
    assert shown_path(at) == order[1]


def test_a_nearest_neighbour_opens_in_the_detail_view(app: AppTest) -> None:
    at = open_page(app, "browse")
    at.multiselect(key="flt_issues").set_value(["exact_duplicate"]).run()
    path = sorted(at.dataframe[0].value["path"])[0]
    at.button(key=f"browse_grid_{_sid(at, path)}").click().run()
    buttons = [b for b in at.button if str(b.key).startswith("neighbour_")]
    assert len(buttons) == 8
    nearest = int(str(buttons[0].key).removeprefix("neighbour_"))
    buttons[0].click().run()
    assert not at.exception
    source = open_dataset(SAMPLE_DIGITS).samples
    want = source.loc[source["sample_id"] == nearest, "path"].item()
    assert shown_path(at) == want != path


def _sid(at: AppTest, path: str) -> int:
    source = open_dataset(SAMPLE_DIGITS).samples
    return int(source.loc[source["path"] == path, "sample_id"].item())


def test_distributions_embedding_map_draws_every_decoded_sample(
    app: AppTest, scanned: Workspace
) -> None:
    """One point per decoded sample at its PCA position, one trace per class (or per worst
    issue), each point named by its file."""
    import json

    from recipe_core.explore.embedding_map import embedding_map

    at = open_page(app, "distributions")
    root = open_dataset(SAMPLE_DIGITS).root
    result = load_scan(job_dir(scanned, root) / RESULT_DIR)
    want = embedding_map(result.index.embeddings, valid=result.index.valid)
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    traces = next(c["data"] for c in charts if c["data"][0]["type"] == "scattergl")
    paths = result.index.table["path"].to_numpy()
    labels = result.index.table["label"].to_numpy()
    assert sum(len(t["text"]) for t in traces) == int(result.index.valid.sum())
    position = {str(p): i for i, p in enumerate(paths)}
    for t in traces:
        rows = [position[p] for p in t["text"]]
        assert set(labels[rows]) == {t["name"]}
        assert np.allclose(plotly_array(t["x"]), want.xy[rows, 0], atol=1e-4)
    at.segmented_control(key="map_colour").set_value("Issue").run()
    assert not at.exception
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    names = {t["name"] for c in charts for t in c["data"] if t["type"] == "scattergl"}
    assert {"outlier", "(no issue)"} <= names


def test_tag_a_sample_then_filter_browse_by_the_tag(app: AppTest, scanned: Workspace) -> None:
    from recipe_core.explore.tags import load_tags

    at = open_page(app, "browse")
    at.selectbox(key="browse_sort_col").set_value("score_outlier").run()
    order = at.dataframe[0].value["path"].tolist()
    first, second = _sid(at, order[0]), _sid(at, order[1])
    at.button(key=f"browse_grid_{first}").click().run()
    at.text_input(key=f"tag_new_{first}").input("review").run()
    at.button(key=f"tag_add_{first}").click().run()
    assert not at.exception
    at.button(key="detail_next").click().run()
    at.text_input(key=f"tag_new_{second}").input("review").run()
    at.button(key=f"tag_add_{second}").click().run()
    root = open_dataset(SAMPLE_DIGITS).root
    assert load_tags(scanned, root) == {first: ("review",), second: ("review",)}
    at.multiselect(key="flt_tags").set_value(["review"]).run()
    assert not at.exception
    assert set(at.dataframe[0].value["path"]) == {order[0], order[1]}
    assert any(
        c.value.startswith("**2** of 1,709") and "tagged “review”" in c.value for c in at.caption
    )
    at.button(key=f"browse_grid_{first}").click().run()
    at.button(key=f"tag_rm_{first}_0").click().run()
    assert load_tags(scanned, root) == {second: ("review",)}
    assert set(at.dataframe[0].value["path"]) == {order[1]}


def test_a_saved_view_brings_back_its_filter_and_sort(app: AppTest, scanned: Workspace) -> None:
    from recipe_core.explore.saved_views import load_views

    at = open_page(app, "browse")
    at.multiselect(key="flt_issues").set_value(["outlier"]).run()
    at.selectbox(key="browse_sort_col").set_value("score_outlier").run()
    at.toggle(key="browse_sort_desc").set_value(False).run()
    want = at.dataframe[0].value["path"].tolist()
    at.text_input(key="saved_view_name").input("outliers, mildest first").run()
    at.button(key="saved_view_save").click().run()
    assert not at.exception
    root = open_dataset(SAMPLE_DIGITS).root
    assert [v.name for v in load_views(scanned, root)] == ["outliers, mildest first"]

    next(b for b in at.button if b.label == "Clear filters").click().run()
    at.selectbox(key="browse_sort_col").set_value("path").run()
    assert len(at.dataframe[0].value) > len(want)
    at.selectbox(key="saved_view_pick").set_value("outliers, mildest first").run()
    at.button(key="saved_view_apply").click().run()
    assert not at.exception
    assert at.multiselect(key="flt_issues").value == ["outlier"]
    assert at.selectbox(key="browse_sort_col").value == "score_outlier"
    assert at.toggle(key="browse_sort_desc").value is False
    assert at.dataframe[0].value["path"].tolist() == want
