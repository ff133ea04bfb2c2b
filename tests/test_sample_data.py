"""The committed `sample_data/digits/` dataset and its planted-problem oracle stay honest.

The oracle (`sample_data/digits_planted.csv`) is what detector tests score against, so these
tests check that it describes the files as they really are, and that the generator still
reproduces the committed bytes.
"""

from __future__ import annotations

import csv
import hashlib
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE = REPO_ROOT / "sample_data"
DIGITS = SAMPLE / "digits"
ORACLE = SAMPLE / "digits_planted.csv"
LOOKALIKES = SAMPLE / "digits_lookalikes.csv"
README = SAMPLE / "README.md"
GENERATOR = SAMPLE / "make_digits.py"
GENERATED = ("digits_planted.csv", "digits_lookalikes.csv", "README.md")

COLUMNS = ["path", "issue", "group", "given_label", "true_label", "note"]
ISSUES = {
    "exact_duplicate",
    "near_duplicate",
    "conflicting_labels",
    "cross_split_duplicate",
    "corrupt",
    "outlier",
    "label_issue",
    "dark",
    "light",
    "odd_size",
    "odd_aspect_ratio",
    "class_imbalance",
}
IMAGE_SUFFIXES = {".png", ".jpg"}


def _rows() -> list[dict[str, str]]:
    with open(ORACLE, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == COLUMNS
        return list(reader)


def _is_class_row(row: dict[str, str]) -> bool:
    return row["issue"] == "class_imbalance"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree_hashes(root: Path) -> dict[str, str]:
    files = {
        p.relative_to(root).as_posix(): _sha(p) for p in (root / "digits").rglob("*") if p.is_file()
    }
    files.update({name: _sha(root / name) for name in GENERATED})
    return files


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L"), dtype=np.int16)


def _groups(rows: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    groups: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        if r["group"]:
            groups[r["group"]].append(r)
    return groups


def _is_original(row: dict[str, str]) -> bool:
    return "original" in row["note"]


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    return _rows()


# (a) the oracle parses and points at real files ------------------------------------------


def test_oracle_parses_and_paths_exist(rows: list[dict[str, str]]) -> None:
    assert len(rows) > 100
    for r in rows:
        assert r["issue"] in ISSUES, r
        p = DIGITS / r["path"]
        if _is_class_row(r):
            assert p.is_dir(), r
        else:
            assert p.is_file(), r
            split, label, _name = r["path"].split("/")
            assert split in {"train", "val"}
            assert label == r["given_label"], r
    assert {r["issue"] for r in rows} == ISSUES, "every issue kind is planted"
    pairs = [(r["path"], r["issue"]) for r in rows if not _is_class_row(r)]
    # A file may carry several issues, but never the same one twice.
    assert len(set(pairs)) == len(pairs)


def test_planted_counts(rows: list[dict[str, str]]) -> None:
    count = Counter(r["issue"] for r in rows)
    groups = _groups(rows)
    assert count["exact_duplicate"] == 11 and sum(g.startswith("exact-") for g in groups) == 5
    assert count["conflicting_labels"] == 4 and sum(g.startswith("conflict-") for g in groups) == 2
    assert count["near_duplicate"] == 32
    notes = Counter(r["note"].split(";")[0] for r in rows if r["issue"] == "near_duplicate")
    assert notes == {"jpeg": 8, "brightness": 8, "shift1px": 8, "noise": 8}
    assert count["cross_split_duplicate"] == 16
    assert (count["corrupt"], count["outlier"], count["dark"], count["light"]) == (5, 10, 3, 2)
    assert (count["odd_size"], count["odd_aspect_ratio"], count["class_imbalance"]) == (1, 1, 1)
    faces = [r for r in rows if r["issue"] == "outlier" and "face" in r["note"]]
    assert len(faces) == 8


def test_label_issues_are_five_percent_and_wrong(rows: list[dict[str, str]]) -> None:
    mislabeled = [r for r in rows if r["issue"] == "label_issue"]
    planted = {r["path"] for r in rows if not _is_class_row(r)}
    train_files = [p for p in DIGITS.glob("train/*/*") if p.is_file()]
    clean_train = [p for p in train_files if p.relative_to(DIGITS).as_posix() not in planted]
    n_pool = len(clean_train) + len(mislabeled)
    assert len(mislabeled) == round(0.05 * n_pool)
    for r in mislabeled:
        assert r["given_label"] != r["true_label"] and r["true_label"] in "0123456789", r
        assert r["path"].startswith("train/")


# (b) the generator reproduces the committed bytes ----------------------------------------


def test_regeneration_is_byte_identical(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    committed, fresh = _tree_hashes(SAMPLE), _tree_hashes(tmp_path)
    assert set(fresh) == set(committed), set(fresh) ^ set(committed)
    changed = sorted(p for p in fresh if fresh[p] != committed[p])
    assert not changed, (
        f"regenerated files differ (rerun sample_data/make_digits.py?): {changed[:10]}"
    )


# (c) the README documents every planted file ---------------------------------------------


def test_readme_lists_every_oracle_row(rows: list[dict[str, str]]) -> None:
    text = README.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert "## Planted problems" in text and "digits_planted.csv" in text
    for r in rows:
        prefix = f"| {r['path']} | {r['issue']} | {r['group']} |"
        assert any(line.startswith(prefix) for line in lines), f"README lacks {prefix}"


# (d) duplicates are what the oracle says ------------------------------------------------


def test_exact_groups_are_byte_identical(rows: list[dict[str, str]]) -> None:
    exact_groups = {
        g: members
        for g, members in _groups(rows).items()
        if members[0]["issue"] in {"exact_duplicate", "conflicting_labels"}
        or (
            members[0]["issue"] == "cross_split_duplicate"
            and all(m["note"].startswith("exact") for m in members)
        )
    }
    assert len(exact_groups) == 5 + 2 + 6
    for g, members in exact_groups.items():
        assert len(members) >= 2, g
        assert sum(_is_original(m) for m in members) == 1, g
        assert len({_sha(DIGITS / m["path"]) for m in members}) == 1, f"{g} not byte-identical"
        if g.startswith("conflict-"):
            assert len({m["given_label"] for m in members}) == 2, g
        elif g.startswith("leak-"):
            assert {m["path"].split("/")[0] for m in members} == {"train", "val"}, g
        else:
            assert len({m["given_label"] for m in members}) == 1, g


def test_near_duplicates_differ_but_stay_close(rows: list[dict[str, str]]) -> None:
    near_groups = {
        g: members
        for g, members in _groups(rows).items()
        if members[0]["issue"] == "near_duplicate"
        or (
            members[0]["issue"] == "cross_split_duplicate"
            and all(m["note"].startswith("shift1px") for m in members)
        )
    }
    assert len(near_groups) == 16 + 2
    for g, members in near_groups.items():
        assert len(members) == 2, g
        orig = next(m for m in members if _is_original(m))
        copy = next(m for m in members if not _is_original(m))
        assert orig["true_label"] == copy["true_label"] == copy["given_label"], g
        assert _sha(DIGITS / orig["path"]) != _sha(DIGITS / copy["path"]), f"{g} is byte-identical"
        a, b = _pixels(DIGITS / orig["path"]), _pixels(DIGITS / copy["path"])
        assert a.shape == b.shape == (32, 32), g
        kind = copy["note"].split(";")[0]
        if kind == "shift1px":
            assert any(
                np.array_equal(a[r0:r1, c0:c1], b[r0 + dr : r1 + dr, c0 + dc : c1 + dc])
                for dr, dc in ((0, 1), (0, -1), (1, 0), (-1, 0))
                for r0, r1, c0, c1 in [(max(0, -dr), 32 - max(0, dr), max(0, -dc), 32 - max(0, dc))]
            ), f"{g} is not a 1-pixel shift"
        else:
            diff = np.abs(a - b)
            assert 0 < diff.mean() <= 14 and diff.max() <= 40, (g, diff.mean(), diff.max())


def test_no_unplanted_exact_duplicates(rows: list[dict[str, str]]) -> None:
    by_hash: dict[str, list[str]] = defaultdict(list)
    for p in DIGITS.rglob("*"):
        if p.is_file():
            by_hash[_sha(p)].append(p.relative_to(DIGITS).as_posix())
    grouped = {r["path"]: r["group"] for r in rows if r["group"]}
    for paths in by_hash.values():
        if len(paths) > 1:
            assert all(p in grouped for p in paths), f"unplanted duplicates: {paths}"
            assert len({grouped[p] for p in paths}) == 1, paths


def test_lookalikes_are_distinct_clean_files(rows: list[dict[str, str]]) -> None:
    with open(LOOKALIKES, newline="", encoding="utf-8") as f:
        pairs = list(csv.DictReader(f))
    grouped = {r["path"] for r in rows if r["group"]}
    for pr in pairs:
        a, b = DIGITS / pr["path_a"], DIGITS / pr["path_b"]
        assert _sha(a) != _sha(b)
        assert pr["path_a"] not in grouped and pr["path_b"] not in grouped


# (e) corrupt files really are corrupt; everything else decodes --------------------------


def test_corrupt_files_fail_to_load(
    rows: list[dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", False)
    corrupt = [r for r in rows if r["issue"] == "corrupt"]
    assert len(corrupt) == 5
    for r in corrupt:
        with (
            pytest.raises((OSError, SyntaxError, ValueError)),
            Image.open(DIGITS / r["path"]) as im,
        ):
            im.load()
    sizes = sorted((DIGITS / r["path"]).stat().st_size for r in corrupt)
    assert sizes[0] == 0


def test_other_files_decode_with_expected_geometry(
    rows: list[dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", False)
    by_path: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        by_path[r["path"]].add(r["issue"])
    files = [p for p in DIGITS.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} <= IMAGE_SUFFIXES
    for p in files:
        issues = by_path.get(p.relative_to(DIGITS).as_posix(), set())
        if "corrupt" in issues:
            continue
        with Image.open(p) as im:
            im.load()
            size, mode = im.size, im.mode
        assert mode == "L", p
        expected = (
            (256, 256)
            if "odd_size" in issues
            else (64, 16)
            if "odd_aspect_ratio" in issues
            else (32, 32)
        )
        assert size == expected, (p, size)
        if issues & {"dark", "light"}:
            px = _pixels(p)
            assert (px.max() <= 20) if "dark" in issues else (px.min() >= 235), p


# (f) the rare class ----------------------------------------------------------------------


def test_class_7_is_rare_in_train_only(rows: list[dict[str, str]]) -> None:
    train7 = [p for p in (DIGITS / "train" / "7").iterdir() if p.is_file()]
    assert len(train7) == 12
    planted = {r["path"] for r in rows if not _is_class_row(r)}
    assert not any(p.relative_to(DIGITS).as_posix() in planted for p in train7)
    others = [len(list((DIGITS / "train" / str(c)).iterdir())) for c in range(10) if c != 7]
    assert min(others) > 100
    assert len(list((DIGITS / "val" / "7").iterdir())) > 30
    (row,) = [r for r in rows if _is_class_row(r)]
    assert row["path"] == "train/7" and row["given_label"] == "7"


def test_split_is_about_80_20() -> None:
    n_train = sum(1 for p in DIGITS.glob("train/*/*") if p.is_file())
    n_val = sum(1 for p in DIGITS.glob("val/*/*") if p.is_file())
    assert sorted(p.name for p in (DIGITS / "train").iterdir()) == [str(c) for c in range(10)]
    assert sorted(p.name for p in (DIGITS / "val").iterdir()) == [str(c) for c in range(10)]
    # Class 7 was cut from train, so compare on the other nine classes.
    t9 = n_train - 12
    v9 = n_val - len(list((DIGITS / "val" / "7").iterdir()))
    assert 0.17 < v9 / (t9 + v9) < 0.23
