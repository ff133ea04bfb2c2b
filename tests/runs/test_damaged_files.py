"""Damaged run files, through the real CLI: metrics rows that are JSON but no row are skipped and
counted (and said so), and a run whose status.json is corrupt still lists, as `unknown`, with its
metrics and log readable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from recipe_core.cli import cli
from recipe_core.errors import RunError
from recipe_core.runs import RunReader, RunWriter, list_runs
from recipe_core.workspace import Workspace, open_workspace

runner = CliRunner()
NOT_ROWS = [  # valid JSON, or a line torn by a crash, that no metrics row can be
    b"[1, 2]", b"null", b"3", b'"x"', b"true", b'{"split": "train", "loss": 1.0}',
    b'{"step": "7", "split": "train"}', b'{"step": 7, "split": 3}',
    b'{"step": true, "split": "val"}', b'{"step": 7, "split": "train", "loss": "big"}',
    b'{"step": 8, "spl',
]  # fmt: skip


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return open_workspace(tmp_path / "ws")


def recorded(ws: Workspace, name: str = "damaged") -> RunWriter:
    """A run as a job leaves it: status, 10 train rows and a val row, a log."""
    writer = RunWriter.create(ws, name=name, config={"lr": 0.1})
    writer.start(device="cpu")
    writer.append_metrics([{"step": s, "split": "train", "loss": 2.0 - s / 10, "lr": 0.1}
                           for s in range(10)])  # fmt: skip
    writer.append_metrics([{"step": 10, "split": "val", "loss": 1.5, "accuracy": 0.5}])
    writer.finish("succeeded")
    (writer.run_dir / "log.txt").write_text("loading data\ntraining...\nstep 9 loss 1.1\n")
    return writer


def cli_json(*args: str) -> object:
    result = runner.invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_rows_that_are_not_metric_objects_are_skipped_counted_and_reported(ws: Workspace) -> None:
    writer = recorded(ws)
    with open(writer.run_dir / "metrics.jsonl", "ab") as handle:  # among and after good rows
        handle.write(b"\n".join(NOT_ROWS) + b"\n\n")
        handle.write(b'{"step": 11, "split": "train", "loss": 0.9, "lr": null}\n')
    shown = runner.invoke(cli, ["runs", "show", writer.run_id, "--workspace", str(ws.root)])
    assert shown.exit_code == 0, shown.output  # was a TypeError on `[1, 2]`
    assert f"skipped {len(NOT_ROWS)} unreadable metrics rows in metrics.jsonl" in shown.stdout
    assert "train: step 11" in shown.stdout and "val: step 10" in shown.stdout
    details = cli_json("runs", "show", writer.run_id, "--workspace", str(ws.root))
    assert isinstance(details, dict)
    assert details["skipped_rows"] == {
        "metrics.jsonl": len(NOT_ROWS),
        "dynamics.jsonl": 0,
        "insides.jsonl": 0,
    }
    assert details["metric_rows"] == 12
    clean = RunWriter.create(ws, name="clean", config={})
    clean_shown = runner.invoke(cli, ["runs", "show", clean.run_id, "--workspace", str(ws.root)])
    assert "skipped" not in clean_shown.stdout


def test_the_last_step_a_failed_run_reports_passes_over_rows_that_are_not_rows(
    ws: Workspace,
) -> None:
    writer = RunWriter.create(ws, name="dies", config={})
    writer.start(device="cpu")
    writer.append_metrics([{"step": 41, "split": "train", "loss": 1.0}])
    with open(writer.run_dir / "metrics.jsonl", "ab") as handle:
        handle.write(b'[1, 2]\n{"step": "99", "split": "x"}\n{"step": tru')
    assert writer.finish("failed", error="killed").step == 41


def test_dynamics_snapshots_of_another_shape_or_no_object_are_skipped(ws: Workspace) -> None:
    writer = recorded(ws)
    writer.append_dynamics([0, 5], np.full((2, 3, 2), 0.5))
    with open(writer.run_dir / "dynamics.jsonl", "ab") as handle:
        handle.write(b'[1]\n{"step": 6, "probs": [[0.5, 0.5]]}\n{"step": 7, "probs": [[1, "a"]]}\n')
        handle.write(b'{"step": 8, "probs": [[0.5], [0.5, 0.5], [1]]}\n')
    writer.append_dynamics([10], np.full((1, 3, 2), 0.25))
    reader = RunReader(writer.run_dir)
    steps, probs = reader.dynamics()
    assert steps.tolist() == [0, 5, 10] and probs.shape == (3, 3, 2)
    assert reader.skipped_rows()["dynamics.jsonl"] == 4


@pytest.mark.parametrize(("damage", "why"), [
    (lambda good: b"{not json", "Expecting property name"),
    (lambda good: good[: good.index(b'"state"') + 8], "Expecting value"),  # cut mid-write
    (lambda good: b"[1, 2]", "it holds an array, not a JSON object"),
    (lambda good: b"null", "it holds null, not a JSON object"),
    (lambda good: b'{"run_id": "x", "name": "y"}', "state"),  # a required field missing
    (lambda good: good.replace(b'"succeeded"', b'"exploded"'), "state 'exploded' is not one of"),
    (lambda good: good.replace(b'"step": 10', b'"step": "nine"'), "step is 'nine', not int"),
    (lambda good: b"\xff\xfe garbage", "Expecting value: line 1 column 1"),
])  # fmt: skip
def test_a_run_with_a_corrupt_status_still_lists_as_unknown_and_stays_readable(
    ws: Workspace, damage: object, why: str
) -> None:
    intact = recorded(ws, name="intact")
    writer = recorded(ws)
    status_file = writer.run_dir / "status.json"
    status_file.write_bytes(damage(status_file.read_bytes()))  # type: ignore[operator]
    listed = cli_json("runs", "list", "--workspace", str(ws.root))
    assert isinstance(listed, list)
    assert [(r["run_id"], r["state"]) for r in listed] == [
        (writer.run_id, "unknown"), (intact.run_id, "succeeded")]  # fmt: skip
    error = listed[0]["error"]
    assert error.startswith("status.json unreadable: ") and "restore status.json" in error
    table = runner.invoke(
        cli, ["runs", "list", "--workspace", str(ws.root)], env={"COLUMNS": "300"}
    )
    assert "unknown" in table.stdout and "status.json unreadable" in table.stdout
    shown = runner.invoke(cli, ["runs", "show", writer.run_id[:-2], "--workspace", str(ws.root)])
    assert shown.exit_code == 0, shown.output
    assert "state: unknown" in shown.stdout and "train: step 9" in shown.stdout
    assert why in " ".join(shown.stdout.split())
    logs = runner.invoke(cli, ["runs", "logs", writer.run_id, "--workspace", str(ws.root)])
    assert logs.exit_code == 0 and "step 9 loss 1.1" in logs.stdout
    assert [s.state for s in list_runs(ws)] == ["unknown", "succeeded"]  # the library's list too


def test_a_corrupt_status_is_still_refused_to_writers(ws: Workspace) -> None:
    """A writer must not rebuild a status it cannot read: the message names file and fix."""
    writer = recorded(ws)
    (writer.run_dir / "status.json").write_bytes(b"[]")
    with pytest.raises(RunError, match=r"status.json is malformed \(it holds an array, not a JSON"):
        writer.update_status(step=3)
