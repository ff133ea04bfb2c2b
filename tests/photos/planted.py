"""A planted RGB photo data set with an oracle: crops of real photos (tests/photos/sources.py)
in six classes, train/val splits, and documented problems of every kind the scan reports:

* outliers of several kinds: handwritten digits, pure noise, colour gradients, a line
  drawing, and a small foreign cluster (4 crops of another photo);
* label flips (a class crop filed under another class);
* near duplicates: JPEG re-encode, resized copy, 1 px shift, brightness change, a 3-member
  star (original + two edits), and copies across splits (leakage);
* exact (byte-identical) copies, one across splits;
* flat / low-information images: distinct solid colours and flat sky crops (never duplicates
  of each other), plus one true exact copy of a solid colour (which is a duplicate).

`make_planted_photos(root)` writes `root/photos/{train,val}/<class>/<id>.png|.jpg` and
`root/photos_planted.csv` (columns as sample_data/digits_planted.csv, so
tests/issues/oracle.py scores both) in well under 10 s, deterministic for a seed.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from tests.photos import sources as src

N_PER_CLASS = 80
VAL_SHARE = 0.2
N_FLIPS = 16
MIN_FLIP_STD = 8.0  # grey levels: flatter crops get no flipped label (see _flips)
ORACLE_COLUMNS = ["path", "issue", "group", "given_label", "true_label", "note"]
SOLIDS = [(200, 30, 30), (30, 60, 200), (128, 128, 128), (40, 160, 60)]


@dataclass
class _Entry:
    split: str
    folder: str
    image: np.ndarray
    ext: str = ".png"
    quality: int = 0  # JPEG quality for .jpg
    gain: np.ndarray | None = None  # colour jitter applied when encoding
    rows: list[dict[str, str]] = field(default_factory=list)
    path: str = ""

    def plant(self, issue: str, group: str = "", note: str = "", true: str = "") -> None:
        true = true or self.folder
        self.rows.append({"issue": issue, "group": group, "given_label": self.folder,
                          "true_label": true, "note": note})  # fmt: skip


@dataclass(frozen=True)
class PlantedPhotos:
    images: Path  # the image folder to scan
    truth: Path  # the oracle CSV
    oracle: pd.DataFrame = field(repr=False)  # its rows (str columns, ORACLE_COLUMNS)

    def paths(self, issue: str) -> list[str]:
        return sorted(self.oracle.loc[self.oracle["issue"] == issue, "path"].unique())

    @property
    def flat(self) -> list[str]:
        """Flat images that are distinct (not exact copies of another file)."""
        o = self.oracle
        flat = set(o.loc[o["issue"] == "low_information", "path"])
        return sorted(flat - set(o.loc[o["issue"] == "exact_duplicate", "path"]))


def make_planted_photos(root: Path, *, seed: int = 0) -> PlantedPhotos:
    """Write the planted photo set under `root` (replacing an earlier one); see module doc."""
    rng = np.random.default_rng(seed)
    entries, crops = _clean(rng)
    _plant_all(entries, crops, rng)
    images = root / "photos"
    if images.exists():
        shutil.rmtree(images)
    rows = []
    for new_id, k in enumerate(rng.permutation(len(entries))):
        e = entries[int(k)]
        e.path = f"{e.split}/{e.folder}/{new_id:05d}{e.ext}"
        (images / e.path).parent.mkdir(parents=True, exist_ok=True)
        (images / e.path).write_bytes(_encode(e))
        rows += [{"path": e.path, **r} for r in e.rows]
    oracle = pd.DataFrame(rows, columns=ORACLE_COLUMNS).sort_values(["issue", "group", "path"])
    truth = root / "photos_planted.csv"
    oracle.to_csv(truth, index=False)
    return PlantedPhotos(images, truth, oracle.reset_index(drop=True).astype(str))


def _encode(e: _Entry) -> bytes:
    buf = io.BytesIO()
    image = e.image if e.gain is None else src.jitter(e.image, e.gain)
    im = Image.fromarray(image)
    if e.ext == ".jpg":
        im.save(buf, format="JPEG", quality=e.quality)
    else:
        im.save(buf, format="PNG")
    return buf.getvalue()


def _clean(rng: np.random.Generator) -> tuple[list[_Entry], list[src.Crop | None]]:
    entries: list[_Entry] = []
    crops: list[src.Crop | None] = []
    for name in src.CLASSES:
        for i, c in enumerate(src.class_crops(name, N_PER_CLASS, rng)):
            split = "val" if i < VAL_SHARE * N_PER_CLASS else "train"
            entries.append(_Entry(split, name, src.render(c), gain=src.gain(rng)))
            crops.append(c)
    return entries, crops


def _plant_all(
    entries: list[_Entry], crops: list[src.Crop | None], rng: np.random.Generator
) -> None:
    train = [i for i, e in enumerate(entries) if e.split == "train"]
    picks = iter(rng.permutation(train).tolist())
    _flips(entries, picks, rng)
    _near(entries, crops, picks)
    _exact(entries, picks)
    _outliers(entries, rng)
    _flat(entries, rng)


def _flips(entries: list[_Entry], picks: Iterator[int], rng: np.random.Generator) -> None:
    """Flip N_FLIPS labels, of crops with content: a flat crop (grey std < MIN_FLIP_STD: a
    bokeh blur, a dark corner) holds no evidence of its class, for a viewer or a model (the
    scan reports it as low-information and keeps it out of the label model)."""
    names = list(src.CLASSES)
    flipped = 0
    while flipped < N_FLIPS:
        e = entries[next(picks)]
        if _grey_std(e.image) < MIN_FLIP_STD:
            continue
        flipped += 1
        true = e.folder
        e.folder = str(rng.choice([n for n in names if n != true]))
        e.plant("label_issue", note=f"a {true} crop filed under {e.folder}", true=true)


def _grey_std(image: np.ndarray) -> float:
    return float(np.asarray(Image.fromarray(image).convert("L"), dtype=np.float32).std())


def _copy(
    e: _Entry, image: np.ndarray, *, split: str = "", ext: str = ".png", quality: int = 0
) -> _Entry:
    return _Entry(split or e.split, e.folder, image, ext, quality, gain=e.gain)


def _edit(kind: str, e: _Entry, crop: src.Crop) -> tuple[np.ndarray, str, dict[str, Any]]:
    if kind == "jpeg":
        return e.image, "JPEG re-encode, quality 60", {"ext": ".jpg", "quality": 60}
    if kind == "resized":
        up = Image.fromarray(e.image).resize((72, 72), Image.Resampling.BICUBIC)
        return np.asarray(up), "resized to 72 px", {}
    if kind == "shift":  # resized to 64 px, content moved 2 px (1 px of the 32 px thumbnail)
        up = np.asarray(Image.fromarray(e.image).resize((64, 64), Image.Resampling.BICUBIC))
        img = np.pad(up, ((2, 0), (2, 0), (0, 0)), mode="edge")[:64, :64]
        return img, "shift: resized to 64 px, content moved 2 px right and down", {}
    bright = np.clip(e.image.astype(np.int16) + 20, 0, 255).astype(np.uint8)
    return bright, "brightness +20 grey levels", {}


def _near(entries: list[_Entry], crops: list[src.Crop | None], picks: Iterator[int]) -> None:
    plan = [(k, "train") for k in ("jpeg", "resized", "shift", "brightness") for _ in range(3)]
    plan += [("shift", "val"), ("jpeg", "val"), ("brightness", "val")]
    for n, (kind, split) in enumerate(plan, 1):
        _near_group(entries, crops, next(picks), [kind], split, f"near-{kind}-{n}")
    _near_group(entries, crops, next(picks), ["jpeg", "brightness"], "train", "near-star-1")


def _near_group(
    entries: list[_Entry],
    crops: list[src.Crop | None],
    i: int,
    kinds: list[str],
    split: str,
    group: str,
) -> None:
    e, crop = entries[i], crops[i]
    assert crop is not None
    leak = split != e.split
    issues = ["near_duplicate"] + (["cross_split_duplicate"] if leak else [])
    for issue in issues:
        e.plant(issue, group, "original")
    for kind in kinds:
        image, note, kw = _edit(kind, e, crop)
        c = _copy(e, image, split=split, **kw)
        for issue in issues:
            c.plant(issue, group, f"{kind}; {note}")
        entries.append(c)


def _exact(entries: list[_Entry], picks: Iterator[int]) -> None:
    for n, split in enumerate(["train", "train", "train", "val"], 1):
        e = entries[next(picks)]
        c = _copy(e, e.image.copy(), split=split)
        issues = ["exact_duplicate"] + (["cross_split_duplicate"] if split != e.split else [])
        for x, note in ((e, "original"), (c, "byte-identical copy")):
            for issue in issues:
                x.plant(issue, f"exact-{n}", note)
        entries.append(c)


def _outliers(entries: list[_Entry], rng: np.random.Generator) -> None:
    names = list(src.CLASSES)
    kinds: list[tuple[str, np.ndarray]] = [("digit", src.digit(3)), ("digit", src.digit(10))]
    kinds += [("noise", src.noise(rng)) for _ in range(2)]
    kinds += [("gradient", src.gradient((250, 200, 20), (20, 40, 120), 0.3)),
              ("gradient", src.gradient((255, 255, 255), (200, 20, 160), 2.0)),
              ("drawing", src.diagram())]  # fmt: skip
    kinds += [("foreign cluster", x) for x in src.foreign_cluster(4, rng)]
    for kind, image in kinds:
        e = _Entry("train", str(rng.choice(names)), image)
        e.plant("outlier", "foreign-1" if kind == "foreign cluster" else "", kind)
        entries.append(e)


def _flat(entries: list[_Entry], rng: np.random.Generator) -> None:
    images = [("solid colour", src.solid(c)) for c in SOLIDS]
    images += [("flat sky crop", x) for x in src.sky(4, rng)]
    for n, (kind, image) in enumerate(images):
        e = _Entry("train", "lake" if kind == "flat sky crop" else "pagoda", image)
        e.plant("low_information", note=kind)
        entries.append(e)
        if n == 0:  # one true copy: flat, and an exact duplicate
            c = _copy(e, image.copy())
            c.plant("low_information", note=kind)
            for x, note in ((e, "original"), (c, "byte-identical copy")):
                x.plant("exact_duplicate", "exact-flat", f"flat; {note}")
            entries.append(c)


def split_class(images: Path, out: Path, name: str, twin: str) -> set[str]:
    """A copy of `images` with every second file of class `name` (per split) moved to class
    `twin`: two classes of one kind. Returns the moved files' new paths."""
    shutil.copytree(images, out)
    moved = set()
    for split in ("train", "val"):
        (out / split / twin).mkdir()
        for p in sorted((out / split / name).iterdir())[::2]:
            p.rename(out / split / twin / p.name)
            moved.add(f"{split}/{twin}/{p.name}")
    return moved
