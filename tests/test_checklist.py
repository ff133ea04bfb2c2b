"""The home page's checklist: evidence appears as the recipe's steps are done, and only then."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from recipe_core import open_workspace, scan
from recipe_core.explore.checklist import recipe_checklist
from recipe_core.explore.curation import record_decision
from recipe_core.jobs import check_job as check_jobs
from recipe_core.jobs import scan_job as scan_jobs
from recipe_core.scan import write_result
from recipe_core.train import make_config, train
from tests.conftest import write_image_folder

FAST = {"image_size": 8, "device": "cpu", "model": "mlp", "eval_every": 0}


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _status(workspace_root: Path, dataset: Path) -> dict[str, bool]:
    items = recipe_checklist(open_workspace(workspace_root), dataset)
    return {item.key: item.done for item in items}


def test_checklist_follows_the_evidence(tmp_path: Path) -> None:
    dataset = write_image_folder(tmp_path / "ds", per_class=8, size=8)
    ws = open_workspace(tmp_path / "ws")
    assert not any(_status(ws.root, dataset).values())

    result = scan(dataset, workspace=ws, workers=1)
    write_result(result, scan_jobs.job_dir(ws, dataset) / scan_jobs.RESULT_DIR)
    row = result.index.table.iloc[0]
    record_decision(ws, dataset, sample_id=int(row["sample_id"]), path=row["path"], action="drop")
    status = _status(ws.root, dataset)
    assert status["scanned"] and status["issues_reviewed"]
    assert not status["checks_passed"] and not status["overfit_reached"]

    folder = check_jobs.new_check_job(dataset, "linear", workspace=ws, only=["labels_and_outputs"])
    check_jobs.run_job(folder)
    assert _status(ws.root, dataset)["checks_passed"]

    overfit = make_config(str(dataset), preset="overfit", steps=300, **FAST)
    train(overfit, workspace=ws)
    items = {i.key: i for i in recipe_checklist(ws, dataset)}
    assert items["overfit_reached"].done, items["overfit_reached"].evidence
    assert not items["baseline_run"].done


def test_other_datasets_evidence_does_not_count(tmp_path: Path) -> None:
    mine = write_image_folder(tmp_path / "mine", per_class=4, size=8)
    other = write_image_folder(tmp_path / "other", per_class=4, size=8, seed=1)
    ws = open_workspace(tmp_path / "ws")
    row = scan(other, workspace=ws, workers=1).index.table.iloc[0]
    record_decision(ws, other, sample_id=int(row["sample_id"]), path=row["path"], action="drop")
    assert not any(_status(ws.root, mine).values())
    assert _status(ws.root, other)["issues_reviewed"]


def test_checks_evidence_counts_every_status_and_skips_are_not_done() -> None:
    """Home said "18 run, none failed" of a report with two skipped checks: every status is
    counted, the unhappy ones named, and a skip (or a check cut short) is not a done step."""
    from recipe_core.explore.checklist import _checks_text

    def report(*statuses: str, cut: tuple[str, ...] = ()) -> dict[str, object]:
        results = [{"name": f"c{i}", "status": s} for i, s in enumerate(statuses)]
        return {"results": results, "cut_short": list(cut)}

    text, done = _checks_text(report("pass", "pass", "warn", "skip", "skip"), "mlp")
    assert text == "Latest checks (mlp) of 5: 2 passed; 1 warned (c2); 2 skipped (c3, c4)."
    assert not done
    assert _checks_text(report("pass", "warn"), "mlp") == (
        "Latest checks (mlp) of 2: 1 passed; 1 warned (c1).", True)  # fmt: skip
    text, done = _checks_text(report("pass", "warn", cut=("c1",)), "cnn")
    assert text.endswith("1 warned (c1); cut short by the time budget: c1.") and not done
    assert _checks_text(report("fail", "error"), "x")[1] is False


def test_a_report_saved_by_recipe_check_counts_for_its_dataset(tmp_path: Path) -> None:
    """`recipe check DATASET --save` used to save its report with an empty dataset, so Home
    said "No checks run yet" after it (seen in the README tour); it names the dataset now."""
    from typer.testing import CliRunner

    from recipe_core.cli import cli

    dataset = write_image_folder(tmp_path / "ds", per_class=8, size=8)
    other = write_image_folder(tmp_path / "other", per_class=8, size=8)
    ws = tmp_path / "ws"
    args = ["check", str(dataset), "--model", "linear", "--device", "cpu", "--image-size", "8",
            "--batch-size", "8", "--max-seconds", "20", "--save"]  # fmt: skip
    args += ["--workspace", str(ws)]
    out = CliRunner().invoke(cli, args)
    assert out.exit_code in (0, 1), out.output  # 1: a check failed, still saved
    evidence = {i.key: i for i in recipe_checklist(open_workspace(ws), dataset)}["checks_passed"]
    assert evidence.evidence.startswith("Latest checks (linear) of "), evidence.evidence
    elsewhere = {i.key: i for i in recipe_checklist(open_workspace(ws), other)}["checks_passed"]
    assert elsewhere.evidence == "No checks run yet."
