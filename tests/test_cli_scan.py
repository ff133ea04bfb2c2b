"""`recipe scan` as a user runs it: a real subprocess, real files, no patched internals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO_ROOT, SAMPLE_DIGITS, write_image_folder

CONTRACT_COLUMNS = ["path", "label", "issue", "score", "group", "detail"]


def recipe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recipe_core", *args],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=300,
    )  # fmt: skip


def test_scan_writes_outputs_and_prints_a_summary(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "ds", classes=2, per_class=4)
    (root / "train" / "class_1" / "empty.png").write_bytes(b"")
    out = tmp_path / "out"
    result = recipe("scan", str(root), "--out", str(out), "--workspace", str(tmp_path / "ws"))
    assert result.returncode == 0, result.stderr
    assert "Scanned 17 samples" in result.stdout and "corrupt" in result.stdout
    assert "━" not in result.stderr  # no progress bar when stderr is not a terminal
    issues = pd.read_csv(out / "issues.csv", keep_default_na=False)
    assert list(issues.columns) == CONTRACT_COLUMNS
    assert "train/class_1/empty.png" in set(issues.loc[issues["issue"] == "corrupt", "path"])
    assert len(pd.read_parquet(out / "index.parquet")) == 17

    again = recipe(
        "scan", str(root), "--json", "--workspace", str(tmp_path / "ws"), "--workers", "1"
    )
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["n_samples"] == 17 and summary["n_reused"] == 17
    assert summary["issue_counts"]["corrupt"] == 1


def test_bad_input_exits_2_without_traceback(tmp_path: Path) -> None:
    result = recipe("scan", str(tmp_path / "not-here"), "--workspace", str(tmp_path / "ws"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr
    assert "accepted layouts" in result.stderr


@pytest.mark.skipif(not SAMPLE_DIGITS.exists(), reason="sample_data/digits not generated")
def test_scan_of_the_sample_digits(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = recipe(
        "scan", str(SAMPLE_DIGITS), "--out", str(out), "--workspace", str(tmp_path / "ws")
    )
    assert result.returncode == 0, result.stderr
    issues = pd.read_csv(out / "issues.csv", keep_default_na=False)
    assert list(issues.columns) == CONTRACT_COLUMNS and len(issues) > 0
    assert issues["score"].between(0, 1).all()
    assert not issues["path"].str.startswith("/").any()  # relative to the dataset root


def test_the_edited_copy_checks_can_be_turned_off_from_the_command_line(tmp_path: Path) -> None:
    """`--no-edited-copies`: the JSON summary records it, no issue names an edited copy, and
    fewer of the recropped and overlaid copies are near duplicates (a few are near enough as
    they are, or a mirror image of another copy)."""
    from recipe_core.scan.issues.duplicates import EDITED
    from tests.photos.edit_families import make_stacked_edits

    root = tmp_path / "ds"
    copies = make_stacked_edits(root, seed=2, originals=2)
    edited = {c.copy for c in copies if c.family.startswith(("recrop", "watermark", "timestamp",
                                                              "corner_logo"))}  # fmt: skip
    runs = {}
    for flag in ("--edited-copies", "--no-edited-copies"):
        out = tmp_path / flag
        done = recipe("scan", str(root), "--json", "--no-cache", "--out", str(out), flag)
        assert done.returncode == 0, done.stderr
        issues = pd.read_csv(out / "issues.csv", keep_default_na=False)
        near = issues[issues["issue"] == "near_duplicate"]
        runs[flag] = (json.loads(done.stdout)["edited_copies"],
                      len(edited & set(near["path"])),
                      int(near["detail"].str.contains(EDITED, regex=False).sum()))  # fmt: skip
    assert runs["--edited-copies"][0] is True and runs["--no-edited-copies"][0] is False
    assert runs["--edited-copies"][1] == len(edited) > runs["--no-edited-copies"][1]
    assert runs["--edited-copies"][2] > 0 and runs["--no-edited-copies"][2] == 0
