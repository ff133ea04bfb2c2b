"""AppTest of the Runs page over damaged run folders: metrics rows that are no rows are left out
with a warning that counts them, and a run whose status.json is corrupt is listed as unknown
(with why) and still shows its curves."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from recipe_core.runs import RunWriter
from recipe_core.workspace import open_workspace
from tests.app.helpers import MAIN, open_page
from tests.conftest import write_image_folder

NOT_ROWS = b'[1, 2]\nnull\n{"step": "3", "split": "train"}\n'


def _recorded(ws_root: Path, name: str) -> RunWriter:
    writer = RunWriter.create(open_workspace(ws_root), name=name, config={"steps": 10})
    writer.start(device="cpu")
    writer.append_metrics([{"step": s, "split": "train", "loss": 2.0 - s / 10, "accuracy": 0.5}
                           for s in range(10)])  # fmt: skip
    writer.finish("succeeded")
    return writer


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[AppTest, str, str]:
    ws = tmp_path / "ws"
    damaged = _recorded(ws, "damaged-rows")
    with open(damaged.run_dir / "metrics.jsonl", "ab") as handle:
        handle.write(NOT_ROWS)
    corrupt = _recorded(ws, "corrupt-status")  # the newest: shown first
    (corrupt.run_dir / "status.json").write_bytes(b'{"run_id": "cut off')
    monkeypatch.setenv("RECIPE_WORKSPACE", str(ws))
    monkeypatch.setenv("RECIPE_DATASET", str(write_image_folder(tmp_path / "ds", size=8)))
    return AppTest.from_file(MAIN, default_timeout=90).run(), damaged.run_id, corrupt.run_id


def test_damaged_runs_are_listed_and_shown_with_warnings(app: tuple[AppTest, str, str]) -> None:
    at, damaged, corrupt = app
    at = open_page(at, "runs")
    table = at.dataframe[0].value
    assert table["run id"].tolist() == [corrupt, damaged]
    assert table["state"].tolist() == ["❓ unknown", "✅ succeeded"]
    warnings = [w.value.replace("\\", "") for w in at.warning]  # md() escapes the reason
    assert any(w.startswith("**state unknown**: status.json unreadable: ") for w in warnings)
    assert any(c.startswith("step 10 of 10 · 10 training steps") for c in
               [c.value for c in at.caption])  # its curves, from the intact metrics  # fmt: skip
    at.selectbox(key="runs_pick").set_value(damaged).run()
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert any("Skipped unreadable rows (3 in metrics.jsonl)" in w for w in warnings), warnings
