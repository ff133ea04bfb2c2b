"""Generate `sample_data/digits/`: scikit-learn's digits with documented, planted problems.

Run `python sample_data/make_digits.py` (or `--out DIR`) to rebuild, from scratch and
byte-identically, these outputs in the output folder (default: this file's folder):

* `digits/{train,val}/<class>/<id>.png|.jpg`   the image folder
* `digits_planted.csv`                          the test oracle: one row per affected file
* `digits_lookalikes.csv`                       natural look-alike pairs that are NOT duplicates
* `README.md`                                   description + a planted-problem table

Determinism: one seeded numpy RNG, no network, no clock. PNGs are written by the tiny
encoder in `digits_images.py` (Python's `zlib`, no timestamps or other ancillary chunks), so
the bytes do not depend on the Pillow version. The few JPEGs are encoded by Pillow's libjpeg
(fixed quality, no EXIF), which is stable for a given Pillow build.

This file is the entry point and writes the outputs; its sibling modules (imported from this
folder, so run it as a script) hold the rest: `digits_images.py` (encoding, rendering,
drawing), `digits_plan.py` (the split and every planted problem) and `digits_readme.py`.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
from digits_plan import ISSUES, ORACLE_COLUMNS, RARE_CLASS, SEED, Entry, build
from digits_readme import readme_text

LOOKALIKE_COLUMNS = ("path_a", "path_b", "rms")


def assign_paths(entries: list[Entry], rng: np.random.Generator) -> None:
    """Give every entry a random, unique id and its `split/class/id.ext` path."""
    order = rng.permutation(len(entries))
    for new_id, k in enumerate(order):
        e = entries[int(k)]
        e.path = f"{e.split}/{e.folder}/{new_id:05d}{e.ext}"


def write_images(entries: list[Entry], root: Path) -> None:
    """Replace the image folder `root` with the entries' files."""
    if root.exists():
        shutil.rmtree(root)
    for e in entries:
        p = root / e.path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(e.data)


def class_imbalance_row(counts: Counter) -> dict[str, str]:
    """The oracle row for the rare class's train folder."""
    others = [n for (s, c), n in counts.items() if s == "train" and c != str(RARE_CLASS)]
    return {
        "path": f"train/{RARE_CLASS}",
        "issue": "class_imbalance",
        "group": "",
        "given_label": str(RARE_CLASS),
        "true_label": str(RARE_CLASS),
        "note": f"class folder: {counts[('train', str(RARE_CLASS))]} train images; "
        f"other classes have {min(others)}..{max(others)}",
    }


def oracle_key(r: dict[str, str]) -> tuple:
    """Sort oracle rows by issue (in ISSUES order), group name, group number, then path."""
    g = r["group"]
    gnum = int(g.rsplit("-", 1)[1]) if g else 0
    return (ISSUES.index(r["issue"]), g.rsplit("-", 1)[0] if g else "", gnum, r["path"])


def oracle_rows(entries: list[Entry], counts: Counter) -> list[dict[str, str]]:
    """Every entry's oracle rows, with path and given label filled in, plus the class row."""
    rows = [{"path": e.path, "given_label": e.folder, **r} for e in entries for r in e.rows]
    rows.append(class_imbalance_row(counts))
    return sorted(rows, key=oracle_key)


def exact_planted_paths(rows: list[dict[str, str]]) -> set[str]:
    """Paths the oracle says are byte-identical to another file."""
    return {
        r["path"]
        for r in rows
        if r["issue"] in ("exact_duplicate", "conflicting_labels")
        or (r["issue"] == "cross_split_duplicate" and r["note"].startswith("exact"))
    }


def check_only_planted_exact(entries: list[Entry], rows: list[dict[str, str]]) -> None:
    """Sanity: the only byte-identical files are the planted exact groups."""
    by_hash: dict[str, list[str]] = {}
    for e in entries:
        by_hash.setdefault(hashlib.sha256(e.data).hexdigest(), []).append(e.path)
    exact_paths = exact_planted_paths(rows)
    for paths in by_hash.values():
        if len(paths) > 1:
            assert set(paths) <= exact_paths, f"unplanned exact duplicates: {paths}"


def lookalike_rows(entries: list[Entry], pairs: list[tuple[int, int, float]]) -> list[dict]:
    """Natural look-alike pairs, mapped to the files holding those images unmodified."""
    src_path = {e.src: e.path for e in entries if e.src >= 0}
    lookalikes = []
    for i, j, d in pairs:
        if i in src_path and j in src_path:
            a, b = sorted((src_path[i], src_path[j]))
            lookalikes.append({"path_a": a, "path_b": b, "rms": f"{d:.1f}"})
    lookalikes.sort(key=lambda r: (r["path_a"], r["path_b"]))
    return lookalikes


def write_csv(path: Path, columns: tuple[str, ...], rows: list[dict[str, str]]) -> None:
    """Write `rows` as a UTF-8 CSV with `columns` (missing values empty, `\\n` line ends)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(columns), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in columns})


def generate(out_dir: Path) -> None:
    """Build the dataset and write digits/, both CSVs and README.md into `out_dir`."""
    rng = np.random.default_rng(SEED)
    entries, info = build(rng)
    assign_paths(entries, rng)
    write_images(entries, out_dir / "digits")
    counts = Counter((e.split, e.folder) for e in entries)
    rows = oracle_rows(entries, counts)
    check_only_planted_exact(entries, rows)
    lookalikes = lookalike_rows(entries, info["lookalike_src"])
    write_csv(out_dir / "digits_planted.csv", ORACLE_COLUMNS, rows)
    write_csv(out_dir / "digits_lookalikes.csv", LOOKALIKE_COLUMNS, lookalikes)
    readme = readme_text(info, rows, counts, lookalikes)
    (out_dir / "README.md").write_text(readme, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    """Parse `--out` and generate there (default: this file's folder)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="folder that receives digits/, the CSVs and README.md (default: sample_data/)",
    )
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    generate(args.out)
    print(f"wrote {args.out / 'digits'}")


if __name__ == "__main__":
    main()
