"""Hostile dataset files and manifests: nothing hangs, nothing crashes, every bad file is
reported. Real named pipes, sockets, sparse files, device links and symlink loops (see
tests/fuzz_corpus.py); every reader runs in a child process the test can time out, because the
failure these tests guard against is a reader that blocks forever."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from recipe_core.cli import cli
from recipe_core.data import open_dataset
from recipe_core.data.files import MAX_FILE_BYTES, UnreadableFile, read_regular, walk_files
from recipe_core.explore.curation import export_manifest, load_decisions, record_decision
from recipe_core.workspace import Workspace
from tests.conftest import REPO_ROOT
from tests.fuzz_corpus import Corpus, build_corpus, build_manifests

BOUND_S = 240  # a reader that is not done by then is hung (each takes seconds)
NOT_REGULAR = ("fifo.png", "sparse.png", "dev_zero.png", "dev_null.jpg", "dangling.png",
               "self_link.png", "socket.png")  # fmt: skip


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    built = build_corpus(tmp_path_factory.mktemp("fuzz"))
    yield built
    built.close()


def bounded(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=REPO_ROOT, timeout=BOUND_S
    )


def test_every_reader_survives_the_corpus_and_reports_each_bad_file(
    corpus: Corpus, tmp_path: Path
) -> None:
    """The header pass, thumbnails and the training loader, as the dashboard and jobs use them."""
    done = bounded("tests/fuzz_probe.py", str(corpus.root), str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout)
    expected = {f"good_{c}/{i}.png" for c in "ab" for i in range(6)} | set(corpus.bad)
    assert set(seen["samples"]) == expected | set(corpus.odd), "symlink loops listed samples"
    assert set(seen["not_followed"]) == set(corpus.loops)
    assert all("symlink loop" in reason for reason in seen["not_followed"].values())
    assert set(seen["loader_skipped"]) == set(corpus.bad), "the loader took a bad file"
    assert seen["loaded"] == corpus.n_good + len(corpus.odd)
    assert {p for p, ok in seen["thumbnails"].items() if not ok} == set(corpus.bad)
    for name in NOT_REGULAR:
        assert seen["header_errors"][f"good_a/{name}"], f"the header pass read {name}"
    assert "named pipe" in seen["header_errors"]["good_a/fifo.png"]
    assert "socket" in seen["header_errors"]["good_a/socket.png"]
    assert "device" in seen["header_errors"]["good_a/dev_zero.png"]
    print(
        f"FUZZ readers: {len(corpus.bad)} bad files, {len(corpus.odd)} odd but valid, "
        f"{len(corpus.loops)} folder loops: 0 hangs, 0 crashes, all bad ones reported"
    )


def test_recipe_scan_reports_every_bad_file_as_corrupt(corpus: Corpus, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = bounded("-m", "recipe_core", "scan", str(corpus.root), "--out", str(out),
                   "--workspace", str(tmp_path / "ws"))  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    issues = pd.read_csv(out / "issues.csv", keep_default_na=False)
    corrupt = issues[issues["issue"] == "corrupt"].set_index("path")["detail"]
    assert set(corrupt.index) == set(corpus.bad)
    assert "named pipe" in corrupt["good_a/fifo.png"]
    assert "5.0 GiB" in corrupt["good_a/sparse.png"] and "512.0 MiB" in corrupt["good_a/sparse.png"]
    assert "CRC" in corrupt["good_a/png_bad_idat_data.png"]
    assert "CRC" in corrupt["good_a/png_bad_idat_crc.png"]
    assert "TIFF page 2" in corrupt["good_a/tiff_pages_cut.tif"]
    for link in corpus.loops:
        assert f"Did not enter {link}: symlink loop" in " ".join(done.stdout.split())


def test_a_training_job_on_the_corpus_trains_on_the_good_files(
    corpus: Corpus, tmp_path: Path
) -> None:
    done = bounded("-m", "recipe_core", "train", str(corpus.root), "--model", "linear",
                   "--steps", "3", "--device", "cpu", "--json",
                   "--workspace", str(tmp_path / "ws"))  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    run = tmp_path / "ws" / "runs" / summary["run_id"]
    skipped = pd.read_csv(run / "skipped.csv", keep_default_na=False)
    assert set(skipped["path"]) == set(corpus.bad)


def test_nasty_manifests_are_refused_with_the_fix_or_scanned_with_corrupt_rows(
    corpus: Corpus, tmp_path: Path
) -> None:
    """Through `recipe scan`'s own command (in-process: 12 interpreter starts would cost 20 s;
    the readers' hang bound is the child-process test above)."""
    manifests = build_manifests(tmp_path, corpus)
    assert len(manifests) >= 10
    for manifest in manifests:
        out = tmp_path / manifest.path.stem
        args = ["scan", str(manifest.path), "--out", str(out), "--workspace", str(tmp_path / "ws")]
        done = CliRunner().invoke(cli, [*args, "--workers", "1"])
        assert done.exception is None or isinstance(done.exception, SystemExit), (
            f"{manifest.what}: {done.exception!r}"
        )
        if manifest.refused:
            assert done.exit_code == 2, f"{manifest.what} was not refused: {done.output}"
            assert "anifest" in done.output, done.output
            continue
        assert done.exit_code == 0, f"{manifest.what}: {done.output}"
        issues = pd.read_csv(out / "issues.csv", keep_default_na=False)
        assert (issues["issue"] == "corrupt").sum() == manifest.corrupt_rows, manifest.what
    print(f"FUZZ manifests: {len(manifests)} nasty manifests, "
          f"{sum(m.refused for m in manifests)} refused with the fix, 0 crashes")  # fmt: skip


def test_a_named_pipe_is_refused_without_blocking(tmp_path: Path) -> None:
    pipe = tmp_path / "x.png"
    os.mkfifo(pipe)
    with pytest.raises(UnreadableFile, match="named pipe"):
        read_regular(pipe)  # no writer ever opens it: a blocking open would never return


def test_the_size_cap_is_checked_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    with open(big, "wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(UnreadableFile, match=r"512\.0 MiB cap"):
        read_regular(big)
    small = tmp_path / "small.png"
    small.write_bytes(b"12345")
    with pytest.raises(UnreadableFile, match="5 bytes, above the 4 bytes cap"):
        read_regular(small, max_bytes=4)


def test_a_walk_enters_each_folder_once(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.png").write_bytes(b"x")
    (tmp_path / "a" / "b" / "loop").symlink_to("..")
    (tmp_path / "a" / "z_again").symlink_to("b")  # the same folder through a second name
    skipped: list = []
    files = list(walk_files(tmp_path / "a", skipped))
    assert [Path(f).name for f in files] == ["x.png"]
    reasons = {Path(e.path).name: e.reason for e in skipped}
    assert "symlink loop" in reasons["loop"] and "already listed" in reasons["z_again"]


def test_two_loops_in_a_class_folder_leave_its_images_as_they_are(tmp_path: Path) -> None:
    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
        for i in range(3):
            Image.new("RGB", (8, 8), (i * 60, 0, 0)).save(tmp_path / label / f"{i}.png")
    (tmp_path / "cat" / "loop").symlink_to(".")
    (tmp_path / "cat" / "loop2").symlink_to(".")
    source = open_dataset(tmp_path)
    assert len(source) == 6  # not 126, not a listing without end
    assert [e.path for e in source.not_followed] == ["cat/loop", "cat/loop2"]


def test_exported_csvs_cannot_run_formulas_and_still_round_trip(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (8, 8), (i * 90, 40, 0)).save(root / label / f"{i}.png")
    Image.new("RGB", (8, 8)).save(root / "cat" / "=HYPERLINK(x).png")
    source = open_dataset(root)
    ws = Workspace(tmp_path / "ws")
    rows = source.samples.set_index("path")
    target = "cat/=HYPERLINK(x).png"
    record_decision(ws, root, sample_id=int(rows.loc[target, "sample_id"]), path=target,
                    action="relabel", label="=1+1", old_label="cat", note="@SUM(A1)")  # fmt: skip
    result = export_manifest(source, load_decisions(ws, root), root, name="clean")
    manifest = pd.read_csv(result.manifest, dtype=str, keep_default_na=False)
    row = manifest[manifest["path"] == target].iloc[0]
    assert row["label"] == "'=1+1"  # a spreadsheet shows it, never runs it
    record = pd.read_csv(result.record, dtype=str, keep_default_na=False).iloc[0]
    assert record["note"] == "'@SUM(A1)" and record["path"] == target  # paths stay verbatim
    reopened = open_dataset(result.manifest)
    assert reopened.samples.set_index("path").loc[target, "label"] == "=1+1"
    assert reopened.abspath(target).is_file()
