"""Cleaned datasets in the app (issue 17): a team server offers and opens the exports whose
original files lie in its roots and refuses (and audits) the others; the picker draws into a
column, as the Runs page's start form needs."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from recipe_core.data import open_dataset
from recipe_core.explore.curation import export_dataset
from recipe_core.hosting import read_audit
from recipe_core.workspace import open_workspace
from tests.conftest import write_image_folder
from tests.hosting.test_security_app import app, configure


def open_named(_: str) -> None:
    """An AppTest script: list the named datasets, then open each export in the workspace."""
    import streamlit as st

    from app import access, data_state
    from recipe_core import RecipeError
    from recipe_core.data.named import list_datasets

    st.write("offered: " + ", ".join(d.name for d in data_state.named_datasets()))
    for d in list_datasets(access.workspace()):
        try:
            st.write(f"{d.name}: {len(data_state.dataset_source(str(d.manifest)))} samples")
        except RecipeError as error:
            st.write(f"{d.name}: {type(error).__name__}")


def test_a_team_server_opens_only_exports_of_data_inside_its_roots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inside = write_image_folder(tmp_path / "data" / "ds", classes=2, per_class=3, size=8)
    outside = write_image_folder(tmp_path / "secret" / "ds", classes=2, per_class=2, size=8)
    config = configure(tmp_path, "named")
    ws = open_workspace(config.parent / "ws")
    mine, _ = export_dataset(ws, open_dataset(inside), {})
    theirs, _ = export_dataset(ws, open_dataset(outside), {})
    app(config, monkeypatch)
    script = AppTest.from_function(open_named, args=("",), default_timeout=60).run()
    assert not script.exception, [e.value for e in script.exception]
    shown = [m.value for m in script.markdown]
    assert shown[0] == f"offered: {mine.name}"
    assert f"{mine.name}: 12 samples" in shown and f"{theirs.name}: DatasetError" in shown
    refused = [e for e in read_audit(config.parent / "ws" / "audit.jsonl")]
    assert [e.action for e in refused] == ["path_refused"]
    assert refused[0].target == str(outside.resolve())


def picker_in_a_column(_: str) -> None:
    """An AppTest script: the dataset picker drawn into the first of three columns."""
    import streamlit as st

    from app import widgets

    st.write(f"chosen: {widgets.dataset_path_ui(key='run_dataset', where=st.columns(3)[0])}")


def test_the_picker_draws_into_a_column_and_its_choice_is_returned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = write_image_folder(tmp_path / "digits", classes=2, per_class=3, size=8)
    ws = open_workspace(tmp_path / "ws")
    named, _ = export_dataset(ws, open_dataset(raw), {})
    monkeypatch.setenv("RECIPE_WORKSPACE", str(ws.root))
    monkeypatch.setenv("RECIPE_DATASET", str(raw))
    monkeypatch.delenv("RECIPE_CONFIG", raising=False)
    at = AppTest.from_function(picker_in_a_column, args=("",), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.markdown[-1].value == f"chosen: {raw}"
    at.selectbox(key="run_dataset_pick").set_value(str(named.manifest)).run()
    assert at.markdown[-1].value == f"chosen: {named.manifest}"
    assert at.text_input(key="run_dataset").value == str(named.manifest)
    assert at.columns[0].selectbox  # drawn inside the column
