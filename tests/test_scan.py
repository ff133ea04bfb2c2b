"""`scan` and `write_scan`: the orchestration over index + issue detectors, and its output files
(the DESIGN.md contract that users' scripts read)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from recipe_core.data import open_dataset
from recipe_core.errors import ConfigError, DatasetError
from recipe_core.scan import ISSUES_CSV_COLUMNS, scan, write_scan
from recipe_core.scan.issues import ISSUE_TYPES
from tests.conftest import REPO_ROOT, write_image_folder


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = write_image_folder(tmp_path / "ds", classes=2, per_class=6, size=32)
    (root / "train" / "class_0" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnope")
    (root / "train" / "class_0" / "README.md").write_text("not a sample")
    return root


def test_scan_returns_index_issues_summary_and_timings(tmp_path: Path, dataset: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    result = scan(
        dataset, workspace=tmp_path / "ws", workers=0, progress=lambda *a: calls.append(a)
    )
    s = result.summary
    assert s.n_samples == len(result.index) == 25 and s.n_classes == 2
    assert (s.n_decoded, s.n_reused, s.n_undecodable, s.n_skipped) == (25, 0, 1, 1)
    assert result.skipped == ("train/class_0/README.md",)
    corrupt = result.issues[result.issues["issue"] == "corrupt"]
    assert corrupt["path"].tolist() == ["train/class_0/broken.png"]
    assert s.issue_counts.get("corrupt") == 1 and s.n_flagged >= 1
    assert set(result.issues["issue"]) <= set(ISSUE_TYPES)
    assert result.issues["score"].between(0, 1).all()
    assert ("index", 25, 25) in calls and "issues" in {stage for stage, _, _ in calls}
    assert set(result.timings) == {"open", "index", "issues"}
    assert s.fingerprint == result.index.fingerprint != ""


def test_second_scan_reuses_the_cache(tmp_path: Path, dataset: Path) -> None:
    first = scan(dataset, workspace=tmp_path / "ws", workers=0)
    second = scan(open_dataset(dataset), workspace=tmp_path / "ws", workers=0)
    assert second.summary.n_decoded == 0 and second.summary.n_reused == 25
    pd.testing.assert_frame_equal(first.issues, second.issues)
    uncached = scan(dataset, workspace=tmp_path / "ws", workers=0, cache=False)
    assert uncached.summary.n_decoded == 25


def test_write_scan_follows_the_contract(tmp_path: Path, dataset: Path) -> None:
    result = scan(dataset, workspace=tmp_path / "ws", workers=0, out=tmp_path / "out")
    issues = pd.read_csv(tmp_path / "out" / "issues.csv", keep_default_na=False)
    assert tuple(issues.columns) == ISSUES_CSV_COLUMNS == (
        "path", "label", "issue", "score", "group", "detail",
    )  # fmt: skip
    assert len(issues) == len(result.issues)
    assert "train/class_0/broken.png" in set(issues["path"])
    index = pd.read_parquet(tmp_path / "out" / "index.parquet")
    assert len(index) == 25 and index["path"].tolist() == result.index.table["path"].tolist()
    assert "write" in result.timings


def test_write_scan_to_an_unwritable_place_is_a_clear_error(tmp_path: Path, dataset: Path) -> None:
    result = scan(dataset, workspace=tmp_path / "ws", workers=0)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="Cannot write the scan"):
        write_scan(result, blocker / "out")


def test_scan_of_a_missing_path_is_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        scan(tmp_path / "nope", workspace=tmp_path / "ws")


def test_scan_finds_planted_exact_duplicates(tmp_path: Path, dataset: Path) -> None:
    """An end-to-end control: copying a file must surface as a duplicate issue."""
    source = dataset / "train" / "class_0" / "000.png"
    Image.open(source).save(dataset / "val" / "class_1" / "copy.png")
    result = scan(dataset, workspace=tmp_path / "ws", workers=0)
    flagged = result.issues[
        result.issues["path"].isin(["train/class_0/000.png", "val/class_1/copy.png"])
    ]
    assert len(flagged) >= 2, result.issues


def test_a_cpu_scan_imports_no_torch_and_no_sklearn(tmp_path: Path, dataset: Path) -> None:
    """torch costs seconds and ~500 MB to import, cleanlab + sklearn another second: the CPU
    scan (near-duplicate pixel checks included, so a brightened copy is planted) needs none."""
    source = dataset / "train" / "class_1" / "00.png"
    source = source if source.exists() else next((dataset / "train" / "class_1").glob("*.png"))
    with Image.open(source) as im:
        Image.eval(im, lambda v: min(255, v + 6)).save(dataset / "train" / "class_1" / "copy.png")
    code = (
        "import sys; from recipe_core.scan import scan; "
        f"r = scan({str(dataset)!r}, cache=False, workers=1); "
        "heavy = ('torch', 'torchvision', 'sklearn', 'cleanlab'); "
        "print(sorted(set(r.issues['issue'])), [m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO_ROOT, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr
    issues, heavy = out.stdout.strip().rsplit("] [", 1)
    assert "near_duplicate" in issues, issues  # the pixel check ran
    assert heavy == "]", heavy
