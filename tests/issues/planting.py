"""Write an image-folder dataset with planted problems and an oracle of what was planted.

Deliberately different from sample_data/make_digits.py (other edit strengths, 2 px shifts,
pixel-identical copies in another format, an outlier *cluster*), so tests that pass here are
not tuned to the sample data. Used for the grey sklearn digits and for synthetic RGB shapes.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageFilter


@dataclass
class Planter:
    root: Path
    rng: np.random.Generator
    rows: list[dict[str, str]] = field(default_factory=list)
    counter: int = 0

    def path(self, split: str, label: str, ext: str = "png") -> str:
        self.counter += 1
        return f"{split}/{label}/{self.counter:05d}.{ext}"

    def write(self, rel: str, data: bytes) -> str:
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return rel

    def note(self, rel: str, issue: str, group: str = "", true: str = "", note: str = "") -> None:
        self.rows.append({"path": rel, "issue": issue, "group": group, "true_label": true,
                          "given_label": rel.split("/")[1], "note": note or group})  # fmt: skip


def encode(arr: np.ndarray, fmt: str = "PNG", **kw: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt, **kw)
    return buf.getvalue()


def shifted(arr: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Translate, padding with the image's own border colour (like a re-crop)."""
    pad = [(abs(dy), abs(dy)), (abs(dx), abs(dx))] + [(0, 0)] * (arr.ndim - 2)
    big = np.pad(arr, pad, mode="edge")
    h, w = arr.shape[:2]
    return big[abs(dy) - dy : abs(dy) - dy + h, abs(dx) - dx : abs(dx) - dx + w]


def scale_to(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(arr).resize(size, Image.Resampling.BICUBIC))


NEAR_EDITS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "jpeg": lambda a, r: np.asarray(Image.open(io.BytesIO(encode(a, "JPEG", quality=75)))),
    "brighter5": lambda a, r: np.clip(a.astype(np.float64) * 1.05, 0, 255).astype(np.uint8),
    "darker5": lambda a, r: (a.astype(np.float64) * 0.95).astype(np.uint8),
    "contrast": lambda a, r: np.clip((a.astype(np.float64) - 128) * 0.9 + 128, 0, 255).astype(
        np.uint8
    ),
    "shift1": lambda a, r: shifted(a, 0, 1),
    "shift2": lambda a, r: shifted(a, -2, 1),
    "noise": lambda a, r: np.clip(a + r.normal(0, 4, a.shape), 0, 255).astype(np.uint8),
}


def write_planted(
    root: Path,
    images: list[np.ndarray],
    labels: list[str],
    outliers: list[np.ndarray],
    *,
    seed: int = 0,
    flip_fraction: float = 0.05,
    blurry: bool = True,
) -> pd.DataFrame:
    """Write the dataset under `root`; return the oracle (path, issue, group, true/given)."""
    rng = np.random.default_rng(seed)
    p = Planter(root, rng)
    classes = sorted(set(labels))
    order = rng.permutation(len(images))
    val = set(order[: len(order) // 5].tolist())
    pool = [int(i) for i in order if i not in val]  # train sources, consumed as planted
    for i in val:
        p.write(p.path("val", labels[i]), encode(images[i]))

    def take() -> int:
        return pool.pop()

    for g in range(3):  # byte-identical copies
        i = take()
        for rel in (p.path("train", labels[i]), p.path("train", labels[i])):
            p.note(p.write(rel, encode(images[i])), "exact_duplicate", f"exact-{g}", labels[i])
    i = take()  # same pixels, other format: exact by decoded pixels
    for rel, fmt in (
        (p.path("train", labels[i]), "PNG"),
        (p.path("train", labels[i], "bmp"), "BMP"),
    ):
        p.note(p.write(rel, encode(images[i], fmt)), "exact_duplicate", "exact-bmp", labels[i])
    for name, edit in NEAR_EDITS.items():
        i = take()
        ext = "jpg" if name == "jpeg" else "png"
        copy = edit(images[i], rng)
        data = encode(images[i], "JPEG", quality=75) if name == "jpeg" else encode(copy)
        p.note(
            p.write(p.path("train", labels[i]), encode(images[i])),
            "near_duplicate",
            name,
            labels[i],
        )
        p.note(p.write(p.path("train", labels[i], ext), data), "near_duplicate", name, labels[i])
    i = take()  # conflicting labels: an identical copy filed under another class
    other = classes[(classes.index(labels[i]) + 1) % len(classes)]
    for folder in (labels[i], other):
        rel = p.write(p.path("train", folder), encode(images[i]))
        p.note(rel, "conflicting_labels", "conflict", labels[i], "exact copy")
    leaks = (("exact", lambda a: a), ("shift 1 px", lambda a: shifted(a, 1, 0)))
    for g, (how, edit) in enumerate(leaks):  # train/val leaks
        i = take()
        for split, img in (("train", images[i]), ("val", edit(images[i]))):
            rel = p.write(p.path(split, labels[i]), encode(img))
            p.note(rel, "cross_split_duplicate", f"leak-{g}", labels[i], how)
    _plant_singles(p, images, labels, take, blurry)
    for k, img in enumerate(outliers):
        lab = classes[k % len(classes)]
        p.note(p.write(p.path("train", lab), encode(img)), "outlier")
    n_flip = round(flip_fraction * len(pool))
    for _ in range(n_flip):
        i = take()
        wrong = rng.choice([c for c in classes if c != labels[i]])
        p.note(
            p.write(p.path("train", str(wrong)), encode(images[i])), "label_issue", "", labels[i]
        )
    for i in pool:
        p.write(p.path("train", labels[i]), encode(images[i]))
    return pd.DataFrame(p.rows)


def _plant_singles(
    p: Planter, images: list[np.ndarray], labels: list[str], take: Callable[[], int], blurry: bool
) -> None:
    corrupt = {"empty": b"", "text": b"not an image at all\n"}
    i = take()
    corrupt["truncated"] = encode(images[i])[:-30]
    for data in corrupt.values():
        p.note(p.write(p.path("train", labels[i]), data), "corrupt", "", labels[i])
    for issue, edit in (
        ("dark", lambda a: (a.astype(np.float64) * 0.05).astype(np.uint8)),
        ("light", lambda a: (255 - (255 - a.astype(np.float64)) * 0.05).astype(np.uint8)),
        ("odd_size", lambda a: scale_to(a, (a.shape[1] * 5, a.shape[0] * 5))),
        ("odd_aspect_ratio", lambda a: scale_to(a, (a.shape[1] * 3, a.shape[0]))),
    ):
        i = take()
        p.note(p.write(p.path("train", labels[i]), encode(edit(images[i]))), issue, "", labels[i])
    i = take()
    flat = np.full_like(images[i], 120)
    p.note(p.write(p.path("train", labels[i]), encode(flat)), "low_information", "", labels[i])
    if blurry:
        i = take()
        soft = np.asarray(Image.fromarray(images[i]).filter(ImageFilter.GaussianBlur(2.5)))
        p.note(p.write(p.path("train", labels[i]), encode(soft)), "blurry", "", labels[i])
