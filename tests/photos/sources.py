"""Image sources for the planted photo set (tests/photos/planted.py): crops of the real RGB
photos that ship with scikit-learn (china.jpg, flower.jpg), one class per photo region, and the
foreign images planted as outliers or low-information files. Every function is deterministic
given its numpy Generator; nothing is downloaded."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import scipy
import sklearn.datasets
from PIL import Image, ImageDraw

SIZE = 56  # px: the side of every clean image
PHOTOS = Path(sklearn.datasets.__file__).parent / "images"
DOTS = Path(scipy.__file__).parent / "ndimage" / "tests" / "dots.png"  # a photo of no class
# class: (photo, region (left, top, right, bottom), crop side range in source px)
CLASSES: dict[str, tuple[str, tuple[int, int, int, int], tuple[int, int]]] = {
    "pagoda": ("china", (90, 40, 330, 400), (90, 170)),
    "lake": ("china", (330, 200, 560, 300), (60, 100)),
    "trees": ("china", (520, 150, 640, 427), (60, 110)),
    "dahlia": ("flower", (170, 80, 450, 340), (90, 170)),
    "bokeh": ("flower", (0, 0, 170, 427), (70, 150)),
    "bud": ("flower", (280, 330, 460, 427), (55, 90)),
}
SKY = ("china", (360, 0, 640, 110))  # nearly flat blue sky: the low-information crops


@dataclass(frozen=True)
class Crop:
    photo: str
    x: int
    y: int
    side: int
    flip: bool


@cache
def photo(name: str) -> Image.Image:
    with Image.open(PHOTOS / f"{name}.jpg") as im:
        return im.convert("RGB")


def render(c: Crop, size: int = SIZE, *, dx: int = 0, dy: int = 0) -> np.ndarray:
    """(size, size, 3) uint8: the crop resized to `size`, optionally shifted in source px."""
    box = (c.x + dx, c.y + dy, c.x + dx + c.side, c.y + dy + c.side)
    im = photo(c.photo).crop(box).resize((size, size), Image.Resampling.BICUBIC)
    if c.flip:
        im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.asarray(im, dtype=np.uint8)


MIN_CONTENT_RMS = 5.0  # grey levels: see class_crops


def class_crops(name: str, n: int, rng: np.random.Generator) -> list[Crop]:
    """Up to n crops of the class's region, pairwise far enough apart (position or scale; a
    mirrored crop of the same place is a copy) that no two are near duplicates of each other,
    and different in content: at 16 px with the mean removed, at least MIN_CONTENT_RMS grey
    levels RMS from every other.
    In a smooth region (the bokeh) a mirrored or shifted crop can look the same as another
    (measured: pairs 2.5-3.5 apart, images of std 12-17, that a viewer calls copies)."""
    src, (left, top, right, bottom), (lo, hi) = CLASSES[name]
    out: list[Crop] = []
    looks: list[np.ndarray] = []
    for _ in range(n * 60):
        side = int(rng.integers(lo, min(hi, right - left, bottom - top) + 1))
        x = int(rng.integers(left, right - side + 1))
        y = int(rng.integers(top, bottom - side + 1))
        c = Crop(src, x, y, side, bool(rng.integers(2)))
        if not all(_distinct(c, o) for o in out):
            continue
        look = _look(c)
        if all(np.sqrt(np.mean((look - other) ** 2)) >= MIN_CONTENT_RMS for other in looks):
            out.append(c)
            looks.append(look)
        if len(out) == n:
            break
    return out


def _look(c: Crop) -> np.ndarray:
    """The crop's mean-removed 16 px luminance: what a glance compares."""
    grey = Image.fromarray(render(c)).convert("L").resize((16, 16), Image.Resampling.BILINEAR)
    look = np.asarray(grey, dtype=np.float32)
    return look - look.mean()


RECROP_ZOOM = 1.25  # two crops of one place whose sides differ by less are one picture


def _distinct(a: Crop, b: Crop) -> bool:
    tol = 0.15 * min(a.side, b.side)  # ~5 px at 32 px: beyond the verifier's 2 px shifts
    same_place = abs(a.x - b.x) < tol and abs(a.y - b.y) < tol
    # a mirrored crop of the same place is the same picture flipped: a copy (scan.issues.flips);
    # one zoomed by 12 % is a recrop of it, to a viewer and to the scan (scan.issues.warp_match,
    # which calls zooms up to 1.12 edits): crops of one place differ by RECROP_ZOOM at least
    return not same_place or max(a.side, b.side) > RECROP_ZOOM * min(a.side, b.side)


def gain(rng: np.random.Generator) -> np.ndarray:
    """A mild per-channel colour gain (0.9-1.1), like white-balance differences."""
    return rng.uniform(0.9, 1.1, size=3)


def jitter(img: np.ndarray, gain: np.ndarray) -> np.ndarray:
    return np.clip(img.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def digit(index: int) -> np.ndarray:
    """A handwritten digit (sklearn's 8x8), dark ink on white, at SIZE px RGB."""
    d = sklearn.datasets.load_digits().images[index]
    grey = (255 - d * 255 / 16).astype(np.uint8)
    im = Image.fromarray(grey).resize((SIZE, SIZE), Image.Resampling.BILINEAR)
    return np.repeat(np.asarray(im)[:, :, None], 3, axis=2)


def noise(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=(SIZE, SIZE, 3), dtype=np.uint8)


def gradient(c0: tuple[int, int, int], c1: tuple[int, int, int], angle: float) -> np.ndarray:
    """A linear colour ramp from c0 to c1 along `angle` (radians)."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1)
    t = np.cos(angle) * xx + np.sin(angle) * yy
    t = (t - t.min()) / (t.max() - t.min())
    a, b = np.array(c0, np.float32), np.array(c1, np.float32)
    return (a + (b - a) * t[:, :, None]).astype(np.uint8)


def diagram() -> np.ndarray:
    """A line drawing (nodes and edges on white): an image of no photo class."""
    im = Image.new("RGB", (SIZE, SIZE), "white")
    draw = ImageDraw.Draw(im)
    nodes = [(10, 12), (44, 10), (28, 30), (12, 46), (46, 44)]
    for a, b in [(0, 1), (0, 2), (1, 2), (2, 3), (2, 4), (3, 4)]:
        draw.line([nodes[a], nodes[b]], fill=(0, 0, 0), width=2)
    for x, y in nodes:
        draw.ellipse([x - 5, y - 5, x + 5, y + 5], fill=(220, 40, 40), outline=(0, 0, 0))
    return np.asarray(im)


def foreign_cluster(n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """n distinct crops of scipy's dots.png (a photo of coloured dots; drawn dots if that test
    file is not installed): a small cluster of images of no class."""
    if DOTS.exists():
        with Image.open(DOTS) as im:
            source = im.convert("RGB")
    else:
        source = Image.new("RGB", (420, 300), (235, 225, 200))
        draw = ImageDraw.Draw(source)
        for x, y in rng.integers(0, 420, size=(80, 2)):
            draw.ellipse([x, y % 300, x + 14, y % 300 + 14], fill=(30, 60, 160))
    out = []
    for i in range(n):
        side = 110 + 30 * i
        x, y = 20 + 60 * i, 15 + 25 * i
        crop = source.crop((x, y, x + side, y + side)).resize((SIZE, SIZE))
        out.append(np.asarray(crop, dtype=np.uint8))
    return out


def sky(n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """n crops of the flat sky at well-separated places (different brightness)."""
    src, (left, top, right, bottom) = SKY
    out = []
    xs = np.linspace(left, right - 60, n).astype(int)
    for i, x in enumerate(xs):
        y = top + (i * 17) % (bottom - top - 60)
        im = photo(src).crop((int(x), y, int(x) + 60, y + 60)).resize((SIZE, SIZE))
        out.append(np.asarray(im, dtype=np.uint8))
    return out


def solid(colour: tuple[int, int, int]) -> np.ndarray:
    return np.full((SIZE, SIZE, 3), colour, dtype=np.uint8)
