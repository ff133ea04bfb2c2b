"""`recipe check` as a user runs it: real image folders, real exit codes (0 ok, 1 a check
failed, 2 bad input)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from recipe_core.cli import cli
from tests.conftest import SAMPLE_DIGITS

runner = CliRunner()


def identical_images(root: Path) -> Path:
    """Three classes of the very same picture: nothing for a model to learn from."""
    ramp = np.tile(np.arange(16, dtype=np.uint8) * 10, (16, 1))
    for c in range(3):
        (root / f"class_{c}").mkdir(parents=True)
        for i in range(8):
            Image.fromarray(ramp, mode="L").save(root / f"class_{c}" / f"{i}.png")
    return root


@pytest.mark.skipif(not SAMPLE_DIGITS.exists(), reason="sample_data/digits not generated")
def test_sample_digits_pass_and_report_json() -> None:
    result = runner.invoke(cli, ["check", str(SAMPLE_DIGITS), "--model", "linear", "--json"])
    assert result.exit_code == 0, result.stdout
    report = json.loads(result.stdout)
    statuses = {r["name"]: r["status"] for r in report["results"]}
    assert statuses["overfit_one_batch"] == "pass" and statuses["labels_and_outputs"] == "pass"
    assert report["counts"]["fail"] == 0 and report["device"] == "cpu"


def test_failed_check_exits_1_with_a_readable_table(tmp_path: Path) -> None:
    folder = identical_images(tmp_path / "same")
    result = runner.invoke(cli, ["check", str(folder), "--model", "linear", "--batch-size", "8"])
    assert result.exit_code == 1, result.stdout
    assert "batch_stats" in result.stdout and "fail" in result.stdout and "fix:" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [(["/no/such/dataset"], "does not exist"),
     (["{folder}", "--model", "transformer"], "Built-in models: linear, mlp"),
     (["{folder}", "--device", "tpu"], "Invalid device 'tpu'")],
)  # fmt: skip
def test_bad_input_exits_2(tmp_path: Path, args: list[str], message: str) -> None:
    folder = identical_images(tmp_path / "same")
    result = runner.invoke(cli, ["check", *(a.format(folder=folder) for a in args)])
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
