"""Generate `sample_data/digits/`: scikit-learn's digits with documented, planted problems.

Run `python sample_data/make_digits.py` (or `--out DIR`) to rebuild, from scratch and
byte-identically, these outputs in the output folder (default: this file's folder):

* `digits/{train,val}/<class>/<id>.png|.jpg`   the image folder
* `digits_planted.csv`                          the test oracle: one row per affected file
* `digits_lookalikes.csv`                       natural look-alike pairs that are NOT duplicates
* `README.md`                                   description + a planted-problem table

Determinism: one seeded numpy RNG, no network, no clock. PNGs are written by the tiny
encoder below (Python's `zlib`, no timestamps or other ancillary chunks), so the bytes do
not depend on the Pillow version. The few JPEGs are encoded by Pillow's libjpeg (fixed
quality, no EXIF), which is stable for a given Pillow build.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import shutil
import struct
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from sklearn.datasets import load_digits

SEED = 20240917
SIZE = 32
VAL_FRACTION = 0.2
RARE_CLASS = 7
RARE_CLASS_TRAIN = 12
MISLABEL_FRACTION = 0.05
NATURAL_DUP_RMS = 10.0  # rendered pairs closer than this (grey levels, RMS) count as duplicates
LOOKALIKE_RMS = 15.0  # natural pairs closer than this are listed as hard negatives
BACKGROUND = 255  # white paper, dark strokes

ISSUES = (
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
)
ORACLE_COLUMNS = ("path", "issue", "group", "given_label", "true_label", "note")
NEAR_KINDS = ("jpeg", "brightness", "shift1px", "noise")


# --------------------------------------------------------------------------- encoding


def png_bytes(arr: np.ndarray) -> bytes:
    """8-bit grayscale PNG (filter 0 on every row, zlib level 9, no ancillary chunks)."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    h, w = arr.shape
    raw = b"".join(b"\x00" + arr[r].tobytes() for r in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def jpeg_bytes(arr: np.ndarray, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(arr, dtype=np.uint8), "L").save(
        buf, format="JPEG", quality=quality, optimize=False, progressive=False, subsampling=0
    )
    return buf.getvalue()


# --------------------------------------------------------------------------- rendering


def digit_8x8(x: np.ndarray) -> Image.Image:
    """sklearn's 0..16 ink intensities -> 8x8 'L' image, dark ink on white paper."""
    ink = np.round(np.asarray(x, dtype=np.float64).reshape(8, 8) * 255.0 / 16.0)
    return Image.fromarray((BACKGROUND - ink).astype(np.uint8), "L")


def render(x: np.ndarray, size: tuple[int, int] = (SIZE, SIZE)) -> np.ndarray:
    """Bicubic upsampling (Pillow clips to 0..255) -> uint8 array of shape (h, w)."""
    return np.asarray(digit_8x8(x).resize(size, Image.Resampling.BICUBIC), dtype=np.uint8)


def shift1(arr: np.ndarray, direction: str) -> np.ndarray:
    """Shift by exactly one pixel, padding with the background."""
    out = np.full_like(arr, BACKGROUND)
    if direction == "right":
        out[:, 1:] = arr[:, :-1]
    elif direction == "left":
        out[:, :-1] = arr[:, 1:]
    elif direction == "down":
        out[1:, :] = arr[:-1, :]
    elif direction == "up":
        out[:-1, :] = arr[1:, :]
    else:
        raise ValueError(direction)
    return out


def draw_face(rng: np.random.Generator, k: int) -> np.ndarray:
    """A cartoon face, drawn at 4x and downsampled. `k` picks distinct features per face."""
    s = 4
    n = SIZE * s
    img = Image.new("L", (n, n), BACKGROUND)
    d = ImageDraw.Draw(img)
    cx = n / 2 + rng.integers(-8, 9)
    cy = n / 2 + rng.integers(-6, 7)
    rx = (34, 44, 40, 50, 38, 46, 36, 48)[k] + rng.integers(-3, 4)
    ry = (44, 50, 38, 52, 46, 42, 50, 40)[k] + rng.integers(-3, 4)
    fill = (255, 225, 200, 240, 215, 255, 190, 230)[k]
    line = 6 + (k % 3)
    ink = int(rng.integers(10, 60))
    d.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=fill, outline=ink, width=line)
    # eyes
    spacing = (12, 20, 16, 24, 14, 22, 18, 26)[k]
    eye_y = cy - ry * (0.25 + 0.05 * (k % 3))
    er = (5, 7, 6, 9, 4, 8, 6, 7)[k]
    for sx in (-1, 1):
        ex = cx + sx * spacing
        if k in (2, 5):  # open eyes: ring + pupil
            d.ellipse(
                [ex - er - 3, eye_y - er - 3, ex + er + 3, eye_y + er + 3], outline=ink, width=3
            )
            d.ellipse([ex - 3, eye_y - 3, ex + 3, eye_y + 3], fill=ink)
        elif k == 6:  # winking / closed eyes
            d.line([ex - er - 2, eye_y, ex + er + 2, eye_y], fill=ink, width=4)
        else:
            d.ellipse([ex - er, eye_y - er, ex + er, eye_y + er], fill=ink)
    # nose (some faces)
    if k in (1, 3, 4, 7):
        d.line([cx, eye_y + 8, cx - 4, cy + 6, cx + 2, cy + 8], fill=ink, width=3)
    # mouth
    my = cy + ry * 0.45
    mw = rx * (0.35 + 0.08 * (k % 4))
    mouth = k % 4
    if mouth == 0:  # smile
        d.arc([cx - mw, my - 14, cx + mw, my + 8], 20, 160, fill=ink, width=5)
    elif mouth == 1:  # frown
        d.arc([cx - mw, my - 2, cx + mw, my + 18], 200, 340, fill=ink, width=5)
    elif mouth == 2:  # open 'O'
        d.ellipse([cx - 8, my - 8, cx + 8, my + 8], outline=ink, width=4)
    else:  # straight
        d.line([cx - mw, my, cx + mw, my], fill=ink, width=5)
    # hair / ears
    if k in (0, 4):  # spiky hair
        for i in range(-3, 4):
            hx = cx + i * rx / 4
            d.line([hx, cy - ry + 4, hx + 4 * (i % 2) - 2, cy - ry - 14], fill=ink, width=4)
    elif k in (3, 6):  # bangs
        d.chord([cx - rx, cy - ry, cx + rx, cy - ry * 0.2], 180, 360, fill=ink)
    elif k == 7:  # ears
        for sx in (-1, 1):
            ex = cx + sx * (rx + 6)
            d.ellipse([ex - 8, cy - 12, ex + 8, cy + 12], outline=ink, width=4)
    return np.asarray(img.resize((SIZE, SIZE), Image.Resampling.LANCZOS), dtype=np.uint8)


def draw_letter_a() -> np.ndarray:
    s = 4
    n = SIZE * s
    img = Image.new("L", (n, n), BACKGROUND)
    d = ImageDraw.Draw(img)
    d.line([20, 112, 64, 14, 108, 112], fill=20, width=12, joint="curve")
    d.line([40, 76, 88, 76], fill=20, width=11)
    return np.asarray(img.resize((SIZE, SIZE), Image.Resampling.LANCZOS), dtype=np.uint8)


def draw_checkerboard() -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    return np.where(((yy // 4) + (xx // 4)) % 2 == 0, 0, 255).astype(np.uint8)


def rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


# --------------------------------------------------------------------------- plan


@dataclass
class Entry:
    split: str
    folder: str  # class folder name
    data: bytes
    ext: str = ".png"
    rows: list[dict[str, str]] = field(default_factory=list)  # oracle rows (path filled later)
    src: int = -1  # sklearn index when the file is that image's unmodified 32x32 render
    path: str = ""


def row(issue: str, group: str = "", true: object = "", note: str = "") -> dict[str, str]:
    assert issue in ISSUES, issue
    return {"issue": issue, "group": group, "true_label": str(true), "note": note}


def build(rng: np.random.Generator) -> tuple[list[Entry], dict[str, object]]:
    ds = load_digits()
    X = np.asarray(ds.data, dtype=np.uint8)
    y = np.asarray(ds.target, dtype=np.int64)
    rendered = np.stack([render(x) for x in X])
    flat = rendered.reshape(len(X), -1).astype(np.float64)

    # Natural duplicates: exact (identical rendered pixels) or nearly so -> drop the later one.
    sq = (flat**2).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * flat @ flat.T, 0)
    dist = np.sqrt(d2 / flat.shape[1])
    iu, ju = np.triu_indices(len(X), k=1)
    pair_d = dist[iu, ju]
    dropped: list[tuple[int, int, float]] = []
    drop = set()
    for i, j, dd in sorted(
        zip(
            iu[pair_d < NATURAL_DUP_RMS],
            ju[pair_d < NATURAL_DUP_RMS],
            pair_d[pair_d < NATURAL_DUP_RMS],
            strict=True,
        ),
        key=lambda t: (t[0], t[1]),
    ):
        if int(i) not in drop and int(j) not in drop:
            drop.add(int(j))
            dropped.append((int(i), int(j), float(dd)))
    keep = np.array([i for i in range(len(X)) if i not in drop])
    lookalike_src = [
        (int(i), int(j), float(dd))
        for i, j, dd in zip(iu, ju, pair_d, strict=True)
        if NATURAL_DUP_RMS <= dd < LOOKALIKE_RMS and int(i) not in drop and int(j) not in drop
    ]

    # Stratified split.
    train_idx: dict[int, list[int]] = {}
    val_idx: dict[int, list[int]] = {}
    for c in range(10):
        members = keep[y[keep] == c]
        members = members[rng.permutation(len(members))]
        n_val = round(VAL_FRACTION * len(members))
        val_idx[c] = [int(i) for i in members[:n_val]]
        train_idx[c] = [int(i) for i in members[n_val:]]
    rare_removed = len(train_idx[RARE_CLASS]) - RARE_CLASS_TRAIN
    train_idx[RARE_CLASS] = train_idx[RARE_CLASS][:RARE_CLASS_TRAIN]

    # Plant sources come from train images of every class but the rare one (whose folder
    # must stay at exactly RARE_CLASS_TRAIN clean images); nothing is planted into it either.
    pool = np.array(sorted(i for c, ids in train_idx.items() if c != RARE_CLASS for i in ids))
    pool = [int(i) for i in pool[rng.permutation(len(pool))]]
    pool_pos = 0

    def take() -> int:
        nonlocal pool_pos
        i = pool[pool_pos]
        pool_pos += 1
        return i

    other_classes = [c for c in range(10) if c != RARE_CLASS]

    def wrong_class(true: int) -> int:
        choices = [c for c in other_classes if c != true]
        return int(choices[int(rng.integers(len(choices)))])

    def random_folder() -> int:
        return int(other_classes[int(rng.integers(len(other_classes)))])

    entries: list[Entry] = []
    planted_src: set[int] = set()

    def digit_entry(i: int, split: str = "train") -> Entry:
        e = Entry(split, str(y[i]), png_bytes(rendered[i]), src=i)
        entries.append(e)
        planted_src.add(i)
        return e

    # Exact duplicates: 5 groups (the first gets two extra copies).
    for g in range(1, 6):
        i = take()
        orig = digit_entry(i)
        orig.rows.append(row("exact_duplicate", f"exact-{g}", y[i], "original"))
        for _ in range(2 if g == 1 else 1):
            e = Entry("train", str(y[i]), orig.data)
            e.rows.append(row("exact_duplicate", f"exact-{g}", y[i], "byte-identical copy"))
            entries.append(e)

    # Exact duplicates with a conflicting label: the copy sits in another class folder.
    for g in range(1, 3):
        i = take()
        orig = digit_entry(i)
        orig.rows.append(
            row("conflicting_labels", f"conflict-{g}", y[i], "original, correct folder")
        )
        wc = wrong_class(int(y[i]))
        e = Entry("train", str(wc), orig.data)
        e.rows.append(
            row(
                "conflicting_labels",
                f"conflict-{g}",
                y[i],
                "byte-identical copy in wrong class folder",
            )
        )
        entries.append(e)

    # Near duplicates (original stays in place, same class).
    directions = ("right", "down", "left", "up")
    for kind in NEAR_KINDS:
        for g in range(1, 5):
            i = take()
            orig = digit_entry(i)
            a = rendered[i]
            if kind == "jpeg":
                data, ext, note = jpeg_bytes(a, 85), ".jpg", "jpeg; JPEG re-encode, quality 85"
            elif kind == "brightness":
                delta = 13 if g % 2 else -13  # 5 % of the 0..255 range
                b = np.clip(a.astype(np.int16) + delta, 0, 255).astype(np.uint8)
                data, ext, note = (
                    png_bytes(b),
                    ".png",
                    f"brightness; {delta:+d} grey levels ({'+' if delta > 0 else '-'}5 %)",
                )
            elif kind == "shift1px":
                b = shift1(a, directions[g - 1])
                data, ext, note = (
                    png_bytes(b),
                    ".png",
                    f"shift1px; shifted 1 px {directions[g - 1]}, background padded",
                )
            else:
                noise = rng.normal(0.0, 4.0, size=a.shape)
                b = np.clip(np.round(a.astype(np.float64) + noise), 0, 255).astype(np.uint8)
                data, ext, note = png_bytes(b), ".png", "noise; Gaussian noise, std 4 grey levels"
            assert data != orig.data
            orig.rows.append(row("near_duplicate", f"near-{kind}-{g}", y[i], f"{kind}; original"))
            e = Entry("train", str(y[i]), data, ext)
            e.rows.append(row("near_duplicate", f"near-{kind}-{g}", y[i], note))
            entries.append(e)

    # Train/val leak: val copies of train images (6 byte-identical, 2 shifted by one pixel).
    for g in range(1, 9):
        i = take()
        orig = digit_entry(i)
        if g <= 6:
            data, note = orig.data, "exact; byte-identical val copy"
            kind = "exact"
        else:
            data, note = (
                png_bytes(shift1(rendered[i], directions[g % 4])),
                f"shift1px; val copy shifted 1 px {directions[g % 4]}",
            )
            kind = "shift1px"
        orig.rows.append(row("cross_split_duplicate", f"leak-{g}", y[i], f"{kind}; train original"))
        e = Entry("val", str(y[i]), data)
        e.rows.append(row("cross_split_duplicate", f"leak-{g}", y[i], note))
        entries.append(e)

    # Corrupt files. Digit-derived ones consume their source (the intact image is not kept).
    i = take()
    good = png_bytes(rendered[i])
    e = digit_entry(i)
    e.src, e.data = -1, good[:-24]
    e.rows.append(row("corrupt", "", y[i], f"PNG truncated: last 24 of {len(good)} bytes missing"))
    i = take()
    good = png_bytes(rendered[i])
    e = digit_entry(i)
    e.src, e.data = -1, good[: len(good) // 2]
    e.rows.append(
        row("corrupt", "", y[i], f"PNG truncated to half ({len(good) // 2} of {len(good)} bytes)")
    )
    i = take()
    good = jpeg_bytes(rendered[i], 90)
    e = digit_entry(i)
    e.src, e.data, e.ext = -1, good[: len(good) // 2], ".jpg"
    e.rows.append(
        row(
            "corrupt",
            "",
            y[i],
            f"JPEG truncated in the middle ({len(good) // 2} of {len(good)} bytes)",
        )
    )
    e = Entry("train", str(random_folder()), b"")
    e.rows.append(row("corrupt", "", "", "empty 0-byte .png"))
    entries.append(e)
    e = Entry("train", str(random_folder()), b"not an image\n")
    e.rows.append(row("corrupt", "", "", "text file with a .png extension"))
    entries.append(e)

    # Blank images: heavily under/over-exposed digits (visually all black / all white, but
    # each file is distinct, so they are not exact duplicates of each other).
    for top in (6, 10, 14):
        i = take()
        e = digit_entry(i)
        b = np.round(rendered[i].astype(np.float64) * top / 255.0).astype(np.uint8)
        e.src, e.data = -1, png_bytes(b)
        e.rows.append(
            row("dark", "", y[i], f"near-black: underexposed digit, pixel values 0..{int(b.max())}")
        )
    for low in (245, 249):
        i = take()
        e = digit_entry(i)
        b = np.round(low + rendered[i].astype(np.float64) * (255 - low) / 255.0).astype(np.uint8)
        e.src, e.data = -1, png_bytes(b)
        e.rows.append(
            row(
                "light",
                "",
                y[i],
                f"near-white: overexposed digit, pixel values {int(b.min())}..255 "
                "(also low information)",
            )
        )

    # Odd size / aspect ratio (rendered directly from the 8x8 source; no 32x32 twin kept).
    i = take()
    e = digit_entry(i)
    e.src, e.data = -1, png_bytes(render(X[i], (256, 256)))
    e.rows.append(row("odd_size", "", y[i], "256x256 (others are 32x32)"))
    i = take()
    e = digit_entry(i)
    e.src, e.data = -1, png_bytes(render(X[i], (64, 16)))
    e.rows.append(row("odd_aspect_ratio", "", y[i], "64x16 (width x height), digit stretched"))

    # Out-of-domain images in random class folders.
    faces = [draw_face(rng, k) for k in range(8)]
    for a, b in ((a, b) for ia, a in enumerate(faces) for b in faces[ia + 1 :]):
        assert rms(a, b) > 20, "faces must not be near-duplicates of each other"
    for k, f in enumerate(faces):
        e = Entry("train", str(random_folder()), png_bytes(f))
        e.rows.append(row("outlier", "", "", f"cartoon face #{k + 1}"))
        entries.append(e)
    e = Entry("train", str(random_folder()), png_bytes(draw_checkerboard()))
    e.rows.append(row("outlier", "", "", "checkerboard, 4 px squares"))
    entries.append(e)
    e = Entry("train", str(random_folder()), png_bytes(draw_letter_a()))
    e.rows.append(row("outlier", "", "", 'letter "A"'))
    entries.append(e)

    # Label issues: exactly MISLABEL_FRACTION of the clean train images move to a wrong folder.
    clean = pool[pool_pos:]
    n_clean = len(clean) + RARE_CLASS_TRAIN
    n_mis = round(MISLABEL_FRACTION * n_clean)
    mis = set(clean[:n_mis])
    for i in sorted(mis):
        wc = wrong_class(int(y[i]))
        e = Entry("train", str(wc), png_bytes(rendered[i]), src=i)
        e.rows.append(row("label_issue", "", y[i], f"true class {y[i]} filed under {wc}"))
        entries.append(e)
        planted_src.add(i)

    # Everything else is clean.
    for c in range(10):
        for i in train_idx[c]:
            if i not in planted_src:
                entries.append(Entry("train", str(c), png_bytes(rendered[i]), src=i))
        for i in val_idx[c]:
            entries.append(Entry("val", str(c), png_bytes(rendered[i]), src=i))

    info = {
        "n_source": len(X),
        "dropped": dropped,
        "lookalike_src": lookalike_src,
        "y": y,
        "rare_removed": rare_removed,
        "n_clean_before_mislabel": n_clean,
        "n_mislabeled": n_mis,
    }
    return entries, info


# --------------------------------------------------------------------------- output


def assign_paths(entries: list[Entry], rng: np.random.Generator) -> None:
    order = rng.permutation(len(entries))
    for new_id, k in enumerate(order):
        e = entries[int(k)]
        e.path = f"{e.split}/{e.folder}/{new_id:05d}{e.ext}"


def oracle_rows(
    entries: list[Entry], info: dict[str, object], counts: Counter
) -> list[dict[str, str]]:
    rows = []
    for e in entries:
        for r in e.rows:
            rows.append({"path": e.path, "given_label": e.folder, **r})
    others = [n for (s, c), n in counts.items() if s == "train" and c != str(RARE_CLASS)]
    rows.append(
        {
            "path": f"train/{RARE_CLASS}",
            "issue": "class_imbalance",
            "group": "",
            "given_label": str(RARE_CLASS),
            "true_label": str(RARE_CLASS),
            "note": f"class folder: {counts[('train', str(RARE_CLASS))]} train images; "
            f"other classes have {min(others)}..{max(others)}",
        }
    )

    def key(r: dict[str, str]) -> tuple:
        g = r["group"]
        gnum = int(g.rsplit("-", 1)[1]) if g else 0
        return (ISSUES.index(r["issue"]), g.rsplit("-", 1)[0] if g else "", gnum, r["path"])

    return sorted(rows, key=key)


def write_csv(path: Path, columns: tuple[str, ...], rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(columns), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in columns})


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


def readme_text(
    entries: list[Entry],
    info: dict[str, object],
    rows: list[dict[str, str]],
    counts: Counter,
    lookalikes: list[dict[str, str]],
) -> str:
    out = [README_HEAD]
    out.append("## Counts\n")
    n_train = sum(n for (s, _), n in counts.items() if s == "train")
    n_val = sum(n for (s, _), n in counts.items() if s == "val")
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
    dropped = info["dropped"]
    y = info["y"]
    out.append(
        f"Source: {info['n_source']} sklearn images. "
        + (
            "Natural near-identical pairs (rendered RMS difference below "
            f"{NATURAL_DUP_RMS:g} grey levels) were dropped so the oracle stays clean: "
            + ", ".join(
                f"sklearn index {j} (class {y[j]}, RMS {d:.1f} from index {i})"
                for i, j, d in dropped
            )
            + ". No pixel-identical natural duplicates exist. "
            if dropped
            else "No natural duplicates were found. "
        )
        + f"{info['rare_removed']} class-{RARE_CLASS} train images were removed entirely to "
        f"leave {RARE_CLASS_TRAIN}."
    )
    out.append("")
    out.append("## Planted problems\n")
    by_issue = Counter(r["issue"] for r in rows)
    groups = Counter(
        r["issue"] for r in {(r["issue"], r["group"]): r for r in rows if r["group"]}.values()
    )
    desc = {
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
    out.append("| issue | rows | groups | what |")
    out.append("|---|---|---|---|")
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
    out.append(f"### Every planted file ({len(rows)} rows, generated from `digits_planted.csv`)\n")
    out.append("| path | issue | group | given | true | note |")
    out.append("|---|---|---|---|---|---|")
    for r in rows:
        cells = [r[c] for c in ORACLE_COLUMNS]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out.append(
        f"### Natural look-alikes, not duplicates ({len(lookalikes)} pairs, "
        "`digits_lookalikes.csv`)\n"
    )
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
    return "\n".join(out)


def generate(out_dir: Path) -> None:
    rng = np.random.default_rng(SEED)
    entries, info = build(rng)
    assign_paths(entries, rng)

    root = out_dir / "digits"
    if root.exists():
        shutil.rmtree(root)
    for e in entries:
        p = root / e.path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(e.data)

    counts = Counter((e.split, e.folder) for e in entries)
    rows = oracle_rows(entries, info, counts)

    # Sanity: the only byte-identical files are the planted exact groups.
    by_hash: dict[str, list[str]] = {}
    for e in entries:
        by_hash.setdefault(hashlib.sha256(e.data).hexdigest(), []).append(e.path)
    exact_paths = {
        r["path"]
        for r in rows
        if r["issue"] in ("exact_duplicate", "conflicting_labels")
        or (r["issue"] == "cross_split_duplicate" and r["note"].startswith("exact"))
    }
    for paths in by_hash.values():
        if len(paths) > 1:
            assert set(paths) <= exact_paths, f"unplanned exact duplicates: {paths}"

    # Natural look-alike pairs, mapped to the files holding those images unmodified.
    src_path = {e.src: e.path for e in entries if e.src >= 0}
    lookalikes = []
    for i, j, d in info["lookalike_src"]:
        if i in src_path and j in src_path:
            a, b = sorted((src_path[i], src_path[j]))
            lookalikes.append({"path_a": a, "path_b": b, "rms": f"{d:.1f}"})
    lookalikes.sort(key=lambda r: (r["path_a"], r["path_b"]))

    write_csv(out_dir / "digits_planted.csv", ORACLE_COLUMNS, rows)
    write_csv(out_dir / "digits_lookalikes.csv", ("path_a", "path_b", "rms"), lookalikes)
    (out_dir / "README.md").write_text(
        readme_text(entries, info, rows, counts, lookalikes), encoding="utf-8"
    )


def main(argv: list[str] | None = None) -> None:
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
