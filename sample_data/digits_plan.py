"""What `make_digits.py` puts in `digits/`: the cleaned sklearn split plus every planted problem.

`build()` runs the steps below in a fixed order. They share one seeded RNG, so the order of
the steps (and of the draws inside each) is part of the output: reordering them changes bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from digits_images import (
    draw_checkerboard,
    draw_face,
    draw_letter_a,
    jpeg_bytes,
    png_bytes,
    render,
    rms,
    shift1,
)
from sklearn.datasets import load_digits

SEED = 20240917
VAL_FRACTION = 0.2
RARE_CLASS = 7
RARE_CLASS_TRAIN = 12
MISLABEL_FRACTION = 0.05
NATURAL_DUP_RMS = 10.0  # rendered pairs closer than this (grey levels, RMS) count as duplicates
LOOKALIKE_RMS = 15.0  # natural pairs closer than this are listed as hard negatives

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
DIRECTIONS = ("right", "down", "left", "up")  # for 1 px shifts

Pair = tuple[int, int, float]  # (sklearn index i, sklearn index j > i, rendered RMS distance)


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
    """One oracle row (without path and given_label, which come from the entry)."""
    assert issue in ISSUES, issue
    return {"issue": issue, "group": group, "true_label": str(true), "note": note}


# --------------------------------------------------------------------------- source


@dataclass(frozen=True)
class Source:
    """sklearn's digits: 8x8 ink values, labels, and each image rendered at 32x32."""

    X: np.ndarray
    y: np.ndarray
    rendered: np.ndarray


def load_source() -> Source:
    """Load sklearn's digits and render every image."""
    ds = load_digits()
    X = np.asarray(ds.data, dtype=np.uint8)
    y = np.asarray(ds.target, dtype=np.int64)
    return Source(X, y, np.stack([render(x) for x in X]))


def pair_distances(rendered: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RMS distance (grey levels) of every rendered pair i < j: (i's, j's, distances)."""
    flat = rendered.reshape(len(rendered), -1).astype(np.float64)
    sq = (flat**2).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * flat @ flat.T, 0)
    dist = np.sqrt(d2 / flat.shape[1])
    iu, ju = np.triu_indices(len(rendered), k=1)
    return iu, ju, dist[iu, ju]


def natural_duplicates(iu: np.ndarray, ju: np.ndarray, pair_d: np.ndarray) -> list[Pair]:
    """Pairs closer than NATURAL_DUP_RMS, greedily in index order; the later image is dropped."""
    close = pair_d < NATURAL_DUP_RMS
    dropped: list[Pair] = []
    drop: set[int] = set()
    candidates = zip(iu[close], ju[close], pair_d[close], strict=True)
    for i, j, dd in sorted(candidates, key=lambda t: (t[0], t[1])):
        if int(i) not in drop and int(j) not in drop:
            drop.add(int(j))
            dropped.append((int(i), int(j), float(dd)))
    return dropped


def natural_lookalikes(
    iu: np.ndarray, ju: np.ndarray, pair_d: np.ndarray, drop: set[int]
) -> list[Pair]:
    """Kept pairs in [NATURAL_DUP_RMS, LOOKALIKE_RMS): different images that look alike."""
    return [
        (int(i), int(j), float(dd))
        for i, j, dd in zip(iu, ju, pair_d, strict=True)
        if NATURAL_DUP_RMS <= dd < LOOKALIKE_RMS and int(i) not in drop and int(j) not in drop
    ]


def stratified_split(
    keep: np.ndarray, y: np.ndarray, rng: np.random.Generator
) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """Per class, a random VAL_FRACTION of the kept images goes to val, the rest to train."""
    train_idx: dict[int, list[int]] = {}
    val_idx: dict[int, list[int]] = {}
    for c in range(10):
        members = keep[y[keep] == c]
        members = members[rng.permutation(len(members))]
        n_val = round(VAL_FRACTION * len(members))
        val_idx[c] = [int(i) for i in members[:n_val]]
        train_idx[c] = [int(i) for i in members[n_val:]]
    return train_idx, val_idx


def shrink_rare_class(train_idx: dict[int, list[int]]) -> int:
    """Cut the rare class's train share to RARE_CLASS_TRAIN; returns how many were removed."""
    rare_removed = len(train_idx[RARE_CLASS]) - RARE_CLASS_TRAIN
    train_idx[RARE_CLASS] = train_idx[RARE_CLASS][:RARE_CLASS_TRAIN]
    return rare_removed


def plant_pool(train_idx: dict[int, list[int]], rng: np.random.Generator) -> list[int]:
    """Shuffled train images of every class but the rare one: the sources of planted files."""
    pool = np.array(sorted(i for c, ids in train_idx.items() if c != RARE_CLASS for i in ids))
    return [int(i) for i in pool[rng.permutation(len(pool))]]


# --------------------------------------------------------------------------- planting


@dataclass
class Planter:
    """The entries planted so far, and the sources and RNG the next plant draws from.

    Plant sources come from train images of every class but the rare one (whose folder must
    stay at exactly RARE_CLASS_TRAIN clean images); nothing is planted into it either.
    """

    rng: np.random.Generator
    source: Source
    pool: list[int]
    pool_pos: int = 0
    entries: list[Entry] = field(default_factory=list)
    planted_src: set[int] = field(default_factory=set)

    @property
    def other_classes(self) -> list[int]:
        """Every class but the rare one."""
        return [c for c in range(10) if c != RARE_CLASS]

    def take(self) -> int:
        """The next unused plant source (an sklearn index)."""
        i = self.pool[self.pool_pos]
        self.pool_pos += 1
        return i

    def wrong_class(self, true: int) -> int:
        """A random class other than `true` and the rare class."""
        choices = [c for c in self.other_classes if c != true]
        return int(choices[int(self.rng.integers(len(choices)))])

    def random_folder(self) -> int:
        """A random class folder other than the rare one."""
        other = self.other_classes
        return int(other[int(self.rng.integers(len(other)))])

    def add(
        self, split: str, folder: object, data: bytes, r: dict[str, str], ext: str = ".png"
    ) -> None:
        """Add a planted file, not tracked as a source render, with its one oracle row."""
        self.entries.append(Entry(split, str(folder), data, ext, rows=[r]))

    def digit_entry(self, i: int, split: str = "train") -> Entry:
        """Add source `i`'s unmodified render to its own class folder."""
        e = Entry(split, str(self.source.y[i]), png_bytes(self.source.rendered[i]), src=i)
        self.entries.append(e)
        self.planted_src.add(i)
        return e

    def plant_derived(self, i: int, data: bytes, r: dict[str, str], ext: str = ".png") -> None:
        """Add a file made from source `i` in its class folder; the intact image is not kept."""
        e = self.digit_entry(i)
        e.src, e.data, e.ext = -1, data, ext
        e.rows.append(r)


def plant_exact_duplicates(p: Planter) -> None:
    """5 groups of byte-identical copies in the same folder (the first gets two extra copies)."""
    y = p.source.y
    for g in range(1, 6):
        i = p.take()
        orig = p.digit_entry(i)
        orig.rows.append(row("exact_duplicate", f"exact-{g}", y[i], "original"))
        for _ in range(2 if g == 1 else 1):
            copy = row("exact_duplicate", f"exact-{g}", y[i], "byte-identical copy")
            p.add("train", y[i], orig.data, copy)


def plant_conflicting_labels(p: Planter) -> None:
    """2 exact duplicates whose copy sits in another class folder."""
    y = p.source.y
    for g in range(1, 3):
        i = p.take()
        orig = p.digit_entry(i)
        group = f"conflict-{g}"
        orig.rows.append(row("conflicting_labels", group, y[i], "original, correct folder"))
        wc = p.wrong_class(int(y[i]))
        note = "byte-identical copy in wrong class folder"
        p.add("train", wc, orig.data, row("conflicting_labels", group, y[i], note))


def brightness_copy(a: np.ndarray, g: int) -> tuple[bytes, str, str]:
    """`a` brightened (odd g) or darkened (even g) by 5 % of the range."""
    delta = 13 if g % 2 else -13  # 5 % of the 0..255 range
    b = np.clip(a.astype(np.int16) + delta, 0, 255).astype(np.uint8)
    note = f"brightness; {delta:+d} grey levels ({'+' if delta > 0 else '-'}5 %)"
    return png_bytes(b), ".png", note


def noise_copy(a: np.ndarray, rng: np.random.Generator) -> tuple[bytes, str, str]:
    """`a` plus Gaussian noise (std 4 grey levels)."""
    noise = rng.normal(0.0, 4.0, size=a.shape)
    b = np.clip(np.round(a.astype(np.float64) + noise), 0, 255).astype(np.uint8)
    return png_bytes(b), ".png", "noise; Gaussian noise, std 4 grey levels"


def near_copy(a: np.ndarray, kind: str, g: int, rng: np.random.Generator) -> tuple[bytes, str, str]:
    """The `kind` modification of image `a` for group `g`: (bytes, extension, oracle note)."""
    if kind == "jpeg":
        return jpeg_bytes(a, 85), ".jpg", "jpeg; JPEG re-encode, quality 85"
    if kind == "brightness":
        return brightness_copy(a, g)
    if kind == "shift1px":
        direction = DIRECTIONS[g - 1]
        note = f"shift1px; shifted 1 px {direction}, background padded"
        return png_bytes(shift1(a, direction)), ".png", note
    return noise_copy(a, rng)


def plant_near_duplicates(p: Planter) -> None:
    """4 groups per NEAR_KINDS kind: an original plus a modified copy in the same class."""
    y = p.source.y
    for kind in NEAR_KINDS:
        for g in range(1, 5):
            i = p.take()
            orig = p.digit_entry(i)
            data, ext, note = near_copy(p.source.rendered[i], kind, g, p.rng)
            assert data != orig.data
            group = f"near-{kind}-{g}"
            orig.rows.append(row("near_duplicate", group, y[i], f"{kind}; original"))
            p.add("train", y[i], data, row("near_duplicate", group, y[i], note), ext)


def leak_copy(p: Planter, i: int, orig: Entry, g: int) -> tuple[bytes, str, str]:
    """Group `g`'s val copy of source `i`: (bytes, kind, oracle note)."""
    if g <= 6:
        return orig.data, "exact", "exact; byte-identical val copy"
    direction = DIRECTIONS[g % 4]
    data = png_bytes(shift1(p.source.rendered[i], direction))
    return data, "shift1px", f"shift1px; val copy shifted 1 px {direction}"


def plant_leaks(p: Planter) -> None:
    """Train/val leak: val copies of train images (6 byte-identical, 2 shifted by one pixel)."""
    y = p.source.y
    for g in range(1, 9):
        i = p.take()
        orig = p.digit_entry(i)
        data, kind, note = leak_copy(p, i, orig, g)
        group = f"leak-{g}"
        orig.rows.append(row("cross_split_duplicate", group, y[i], f"{kind}; train original"))
        p.add("val", y[i], data, row("cross_split_duplicate", group, y[i], note))


def plant_truncated_files(p: Planter) -> None:
    """Two truncated PNGs and a truncated JPEG, each consuming its source digit."""
    y, rendered = p.source.y, p.source.rendered
    i = p.take()
    good = png_bytes(rendered[i])
    note = f"PNG truncated: last 24 of {len(good)} bytes missing"
    p.plant_derived(i, good[:-24], row("corrupt", "", y[i], note))
    i = p.take()
    good = png_bytes(rendered[i])
    note = f"PNG truncated to half ({len(good) // 2} of {len(good)} bytes)"
    p.plant_derived(i, good[: len(good) // 2], row("corrupt", "", y[i], note))
    i = p.take()
    good = jpeg_bytes(rendered[i], 90)
    note = f"JPEG truncated in the middle ({len(good) // 2} of {len(good)} bytes)"
    p.plant_derived(i, good[: len(good) // 2], row("corrupt", "", y[i], note), ".jpg")


def plant_corrupt(p: Planter) -> None:
    """Truncated images, an empty file and a text file, all named as images."""
    plant_truncated_files(p)
    p.add("train", p.random_folder(), b"", row("corrupt", "", "", "empty 0-byte .png"))
    text = row("corrupt", "", "", "text file with a .png extension")
    p.add("train", p.random_folder(), b"not an image\n", text)


def plant_dark(p: Planter) -> None:
    """3 near-black images: heavily underexposed digits, each file distinct."""
    y, rendered = p.source.y, p.source.rendered
    for top in (6, 10, 14):
        i = p.take()
        b = np.round(rendered[i].astype(np.float64) * top / 255.0).astype(np.uint8)
        note = f"near-black: underexposed digit, pixel values 0..{int(b.max())}"
        p.plant_derived(i, png_bytes(b), row("dark", "", y[i], note))


def plant_light(p: Planter) -> None:
    """2 near-white images: heavily overexposed digits, each file distinct."""
    y, rendered = p.source.y, p.source.rendered
    for low in (245, 249):
        i = p.take()
        b = np.round(low + rendered[i].astype(np.float64) * (255 - low) / 255.0).astype(np.uint8)
        note = (
            f"near-white: overexposed digit, pixel values {int(b.min())}..255 "
            "(also low information)"
        )
        p.plant_derived(i, png_bytes(b), row("light", "", y[i], note))


def plant_odd_shapes(p: Planter) -> None:
    """Odd size / aspect ratio, rendered directly from the 8x8 source (no 32x32 twin kept)."""
    X, y = p.source.X, p.source.y
    i = p.take()
    big = row("odd_size", "", y[i], "256x256 (others are 32x32)")
    p.plant_derived(i, png_bytes(render(X[i], (256, 256))), big)
    i = p.take()
    note = "64x16 (width x height), digit stretched"
    p.plant_derived(i, png_bytes(render(X[i], (64, 16))), row("odd_aspect_ratio", "", y[i], note))


def check_faces_distinct(faces: list[np.ndarray]) -> None:
    """Fail unless every pair of faces differs clearly (RMS above 20 grey levels)."""
    for a, b in ((a, b) for ia, a in enumerate(faces) for b in faces[ia + 1 :]):
        assert rms(a, b) > 20, "faces must not be near-duplicates of each other"


def plant_outliers(p: Planter) -> None:
    """Out-of-domain images (8 faces, a checkerboard, a letter) in random class folders."""
    faces = [draw_face(p.rng, k) for k in range(8)]  # drawn before any folder is drawn
    check_faces_distinct(faces)
    for k, f in enumerate(faces):
        face = row("outlier", note=f"cartoon face #{k + 1}")
        p.add("train", p.random_folder(), png_bytes(f), face)
    board = row("outlier", note="checkerboard, 4 px squares")
    p.add("train", p.random_folder(), png_bytes(draw_checkerboard()), board)
    p.add("train", p.random_folder(), png_bytes(draw_letter_a()), row("outlier", note='letter "A"'))


def plant_label_issues(p: Planter) -> tuple[int, int]:
    """Move exactly MISLABEL_FRACTION of the clean train images to a wrong folder.

    Returns (clean train images before mislabelling, images mislabelled).
    """
    y = p.source.y
    clean = p.pool[p.pool_pos :]
    n_clean = len(clean) + RARE_CLASS_TRAIN
    n_mis = round(MISLABEL_FRACTION * n_clean)
    for i in sorted(set(clean[:n_mis])):
        wc = p.wrong_class(int(y[i]))
        e = Entry("train", str(wc), png_bytes(p.source.rendered[i]), src=i)
        e.rows.append(row("label_issue", "", y[i], f"true class {y[i]} filed under {wc}"))
        p.entries.append(e)
        p.planted_src.add(i)
    return n_clean, n_mis


def add_clean(p: Planter, train_idx: dict[int, list[int]], val_idx: dict[int, list[int]]) -> None:
    """Every split image not used as a plant source, unmodified in its own class folder."""
    rendered = p.source.rendered
    for c in range(10):
        for i in train_idx[c]:
            if i not in p.planted_src:
                p.entries.append(Entry("train", str(c), png_bytes(rendered[i]), src=i))
        for i in val_idx[c]:
            p.entries.append(Entry("val", str(c), png_bytes(rendered[i]), src=i))


def plant_all(p: Planter) -> tuple[int, int]:
    """Every planted problem, in RNG order; returns what `plant_label_issues` returns."""
    plant_exact_duplicates(p)
    plant_conflicting_labels(p)
    plant_near_duplicates(p)
    plant_leaks(p)
    plant_corrupt(p)
    plant_dark(p)  # dark and light images are visually blank, so they look alike, but
    plant_light(p)  # each file is distinct: none is an exact duplicate of another
    plant_odd_shapes(p)
    plant_outliers(p)
    return plant_label_issues(p)


def build(rng: np.random.Generator) -> tuple[list[Entry], dict[str, object]]:
    """All files of the dataset (paths not yet assigned) plus facts the README reports."""
    source = load_source()
    iu, ju, pair_d = pair_distances(source.rendered)
    dropped = natural_duplicates(iu, ju, pair_d)
    drop = {j for _, j, _ in dropped}
    keep = np.array([i for i in range(len(source.X)) if i not in drop])
    train_idx, val_idx = stratified_split(keep, source.y, rng)
    rare_removed = shrink_rare_class(train_idx)
    p = Planter(rng, source, plant_pool(train_idx, rng))
    n_clean, n_mis = plant_all(p)
    add_clean(p, train_idx, val_idx)
    info = {
        "n_source": len(source.X),
        "dropped": dropped,
        "lookalike_src": natural_lookalikes(iu, ju, pair_d, drop),
        "y": source.y,
        "rare_removed": rare_removed,
        "n_clean_before_mislabel": n_clean,
        "n_mislabeled": n_mis,
    }
    return p.entries, info
