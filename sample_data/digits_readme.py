"""The `README.md` that `make_digits.py` writes next to `digits/`: description and tables."""

from __future__ import annotations

from collections import Counter

from digits_plan import (
    ISSUES,
    LOOKALIKE_RMS,
    MISLABEL_FRACTION,
    NATURAL_DUP_RMS,
    ORACLE_COLUMNS,
    RARE_CLASS,
    RARE_CLASS_TRAIN,
)

README_HEAD = """\
# Sample data: `digits/`

A small, real image-classification dataset with **documented, planted problems**, used as
the demo dataset and as a test fixture. Everything here is produced by
[`make_digits.py`](make_digits.py); do not edit the files by hand.

## What it is

The images are scikit-learn's bundled copy of the *UCI ML hand-written digits* data set
(`sklearn.datasets.load_digits()`: 1797 greyscale 8x8 images of the digits 0-9, ink values
0..16; E. Alpaydin and C. Kaynak, 1998). scikit-learn, which ships the data, is BSD-3-Clause
licensed; the UCI data set itself is published under CC BY 4.0.

Each 8x8 image is scaled to 0..255, inverted to **dark strokes on a white background**, and
upsampled with bicubic interpolation to a 32x32 8-bit greyscale PNG.

## Layout

```
digits/
  train/<class>/<id>.png      class folders "0".."9"
  val/<class>/<id>.png        stratified ~80/20 split
```

File ids (`00000`..) are random and unique across both splits; they reveal nothing about
what was planted (planted copies get fresh ids too). A handful of files are `.jpg`.

## Regenerate

```
python sample_data/make_digits.py            # rewrites sample_data/digits/ from scratch
python sample_data/make_digits.py --out DIR  # same, into DIR/
```

The output is byte-identical on every run (seeded RNG, no network, no timestamps; PNGs are
written by a small built-in encoder, JPEGs by Pillow's libjpeg).
`tests/test_sample_data.py` checks this.

## Files

* `digits_planted.csv` - **the test oracle**: one row per affected file
  (`path,issue,group,given_label,true_label,note`; `path` is relative to `digits/`). Members
  of a duplicate group (originals included) share a `group` id. `given_label` is the folder
  the file sits in, `true_label` the real digit (empty for out-of-domain and
  content-free files). For near duplicates and leaks, `note` starts with the kind
  (`jpeg`, `brightness`, `shift1px`, `noise`, or `exact`). The class-imbalance row has the
  class folder (`train/7`) as its path.
* `digits_lookalikes.csv` - hard negatives: pairs of *different* natural images that look
  very much alike. They are not planted and must **not** be flagged as duplicates.
"""


def split_total(counts: Counter, split: str) -> int:
    """Number of files in `split` ("train" or "val")."""
    return sum(n for (s, _), n in counts.items() if s == split)


def counts_section(counts: Counter) -> list[str]:
    """`## Counts`: files per split and class folder."""
    n_train, n_val = split_total(counts, "train"), split_total(counts, "val")
    out = ["## Counts\n"]
    out.append(
        f"{n_train + n_val} files: {n_train} in `train/`, {n_val} in `val/` "
        "(files per class folder, planted files included):\n"
    )
    out.append("| split | " + " | ".join(str(c) for c in range(10)) + " | total |")
    out.append("|---" * 12 + "|")
    for s, n in (("train", n_train), ("val", n_val)):
        out.append(
            f"| {s} | " + " | ".join(str(counts[(s, str(c))]) for c in range(10)) + f" | {n} |"
        )
    out.append("")
    return out


def dropped_text(info: dict[str, object]) -> str:
    """The sentences naming the natural near-duplicates dropped from the source."""
    dropped = info["dropped"]
    y = info["y"]
    if not dropped:
        return "No natural duplicates were found. "
    return (
        "Natural near-identical pairs (rendered RMS difference below "
        f"{NATURAL_DUP_RMS:g} grey levels) were dropped so the oracle stays clean: "
        + ", ".join(
            f"sklearn index {j} (class {y[j]}, RMS {d:.1f} from index {i})" for i, j, d in dropped
        )
        + ". No pixel-identical natural duplicates exist. "
    )


def source_section(info: dict[str, object]) -> list[str]:
    """The paragraph on what was taken from sklearn and what was removed."""
    return [
        f"Source: {info['n_source']} sklearn images. "
        + dropped_text(info)
        + f"{info['rare_removed']} class-{RARE_CLASS} train images were removed entirely to "
        f"leave {RARE_CLASS_TRAIN}.",
        "",
    ]


def issue_descriptions(info: dict[str, object]) -> dict[str, str]:
    """The "what" column of the planted-problem table, per issue."""
    return {
        "exact_duplicate": "byte-identical copies of train images in the same class folder "
        "(5 groups; `exact-1` has two extra copies)",
        "near_duplicate": "a train image plus a modified copy in the same class: 4 JPEG "
        "re-encodes (q85, `.jpg`), 4 brightness +-5 %, 4 shifted by 1 px, "
        "4 with Gaussian noise (std 4)",
        "conflicting_labels": "byte-identical copies filed under a different class than the "
        "original",
        "cross_split_duplicate": "train images with a copy in `val/` "
        "(6 byte-identical, 2 shifted 1 px)",
        "corrupt": "truncated PNGs (last 24 bytes missing; half), truncated JPEG, empty file, "
        "text file named .png",
        "outlier": "out-of-domain: 8 cartoon faces, a checkerboard, a letter A, "
        "in random class folders",
        "label_issue": f"exactly {MISLABEL_FRACTION:.0%} ({info['n_mislabeled']} of "
        f"{info['n_clean_before_mislabel']}) of the clean train images moved to a wrong "
        "class folder",
        "dark": "near-black images (underexposed digits, max value <= 14)",
        "light": "near-white images (overexposed digits, min value >= 245)",
        "odd_size": "a 256x256 digit",
        "odd_aspect_ratio": "a 64x16 (w x h) stretched digit",
        "class_imbalance": f"class {RARE_CLASS} has only {RARE_CLASS_TRAIN} train images "
        "(val keeps its normal share)",
    }


def issues_section(rows: list[dict[str, str]], info: dict[str, object]) -> list[str]:
    """`## Planted problems`: rows and groups per issue, and how plants were chosen."""
    by_issue = Counter(r["issue"] for r in rows)
    groups = Counter(
        r["issue"] for r in {(r["issue"], r["group"]): r for r in rows if r["group"]}.values()
    )
    desc = issue_descriptions(info)
    out = ["## Planted problems\n", "| issue | rows | groups | what |", "|---|---|---|---|"]
    for issue in ISSUES:
        out.append(f"| {issue} | {by_issue[issue]} | {groups[issue] or ''} | {desc[issue]} |")
    out.append("")
    out.append(
        "No class-7 files are planted or used as plant sources, so `train/7` holds exactly "
        f"{RARE_CLASS_TRAIN} clean images. Plant sources are disjoint: no image is, say, both a "
        "duplicate original and mislabeled. The dark/light images are distinct files, but being "
        "visually blank they look alike; the oracle lists them only as dark/light."
    )
    out.append("")
    return out


def planted_files_section(rows: list[dict[str, str]]) -> list[str]:
    """`### Every planted file`: the oracle CSV as a table."""
    out = [f"### Every planted file ({len(rows)} rows, generated from `digits_planted.csv`)\n"]
    out.append("| path | issue | group | given | true | note |")
    out.append("|---|---|---|---|---|---|")
    for r in rows:
        out.append("| " + " | ".join(r[c] for c in ORACLE_COLUMNS) + " |")
    out.append("")
    return out


def lookalikes_section(lookalikes: list[dict[str, str]]) -> list[str]:
    """`### Natural look-alikes`: the hard-negative pairs as a table."""
    out = [
        f"### Natural look-alikes, not duplicates ({len(lookalikes)} pairs, "
        "`digits_lookalikes.csv`)\n"
    ]
    out.append(
        "Pairs of different sklearn images whose rendered RMS difference is below "
        f"{LOOKALIKE_RMS:g} grey levels (for scale: the planted noise copies differ by about 4). "
        "A tool must not report them.\n"
    )
    out.append("| path_a | path_b | rms |")
    out.append("|---|---|---|")
    for r in lookalikes:
        out.append(f"| {r['path_a']} | {r['path_b']} | {r['rms']} |")
    out.append("")
    return out


def readme_text(
    info: dict[str, object],
    rows: list[dict[str, str]],
    counts: Counter,
    lookalikes: list[dict[str, str]],
) -> str:
    """The whole README: fixed head, then counts, source, problems and both tables."""
    out = [README_HEAD]
    out += counts_section(counts)
    out += source_section(info)
    out += issues_section(rows, info)
    out += planted_files_section(rows)
    out += lookalikes_section(lookalikes)
    return "\n".join(out)
