"""Near-duplicate copies by edit family, on real photo crops at 128 px JPEG: which edits the scan
calls copies of their original, and which it does not (yet).

`make_edit_families(root)` writes `root/train/<class>/<n>.jpg` originals (pairwise distinct
crops, `sources.class_crops`) and, for each family, copies of two originals named
`<family>_<k>.<ext>` beside them; it returns one `Copy` per planted copy.

CAUGHT: families every copy of which the scan must group with its original (the test);
MISSED: families measured in benchmarks/near_dup_families.py that the scan finds only
sometimes: a 5 degree rotation (3 of 6 copies over 3 seeds), a hue rotation (1 of 6) and a
caption bar over the bottom eighth (5 of 6: not on a nearly flat lake, where the bar holds
more of the picture's detail than the rest). Mirror images and upside-down copies are found by
`recipe_core.scan.issues.flips`; recrops zoomed back, and copies under a watermark, a logo or
a date stamp, by `recipe_core.scan.issues.warp_match`.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

from tests.photos import sources as src

SIDE = 128
PER_CLASS = 8
COPIES = 2  # originals copied per family
MIN_STD = 8.0  # grey levels: originals flatter than this are not copied


def _recrop(margin: int) -> Callable[[Image.Image], Image.Image]:
    def edit(im: Image.Image) -> Image.Image:
        return im.crop((margin, margin, SIDE - margin, SIDE - margin)).resize((SIDE, SIDE))

    return edit


def _noise(im: Image.Image) -> Image.Image:
    rng = np.random.default_rng(7)
    noisy = np.asarray(im, dtype=np.float32) + rng.normal(0, 8, (SIDE, SIDE, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def _hue(im: Image.Image) -> Image.Image:
    hsv = np.asarray(im.convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + 20) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


def _watermark(im: Image.Image) -> Image.Image:
    marked = im.copy()
    ImageDraw.Draw(marked).text((4, SIDE - 14), "(c) example.com", fill=(255, 255, 255))
    return marked


def _corner_logo(im: Image.Image) -> Image.Image:
    """A small opaque badge in the top-right corner (a channel or agency logo)."""
    marked = im.copy()
    draw = ImageDraw.Draw(marked)
    draw.ellipse((SIDE - 26, 4, SIDE - 4, 26), fill=(230, 40, 40))
    draw.text((SIDE - 20, 9), "TV", fill=(255, 255, 255))
    return marked


def _caption_bar(im: Image.Image) -> Image.Image:
    """A dark band along the bottom with a line of white text (a captioned copy)."""
    marked = im.copy()
    draw = ImageDraw.Draw(marked)
    draw.rectangle((0, SIDE - 16, SIDE, SIDE), fill=(10, 10, 10))
    draw.text((6, SIDE - 14), "Summer 2019", fill=(255, 255, 255))
    return marked


def _timestamp(im: Image.Image) -> Image.Image:
    """A camera's orange date stamp in the bottom-right corner."""
    marked = im.copy()
    ImageDraw.Draw(marked).text((SIDE - 62, SIDE - 14), "'19 07 24", fill=(255, 150, 0))
    return marked


def _stored_rotated(im: Image.Image) -> bytes:
    """Pixels stored turned 90 degrees, with the EXIF orientation that turns them back."""
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    out = io.BytesIO()
    im.transpose(Image.Transpose.ROTATE_90).save(out, "JPEG", quality=90, exif=exif.tobytes())
    return out.getvalue()


def _encoded(im: Image.Image, fmt: str = "JPEG", **options: int) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **({"quality": 90} | options if fmt == "JPEG" else options))
    return out.getvalue()


Edit = Callable[[Image.Image], bytes]
CAUGHT: dict[str, tuple[str, Edit]] = {
    "jpeg_q40": (".jpg", lambda im: _encoded(im, quality=40)),
    "webp": (".webp", lambda im: _encoded(im, "WEBP", quality=80)),
    "half_size": (".jpg", lambda im: _encoded(im.resize((SIDE // 2, SIDE // 2)), quality=90)),
    "stretched": (".jpg", lambda im: _encoded(im.resize((SIDE * 5 // 4, SIDE)), quality=90)),
    "greyscale": (".jpg", lambda im: _encoded(im.convert("L"), quality=90)),
    "exif_rotated": (".jpg", _stored_rotated),
    "blur": (".jpg", lambda im: _encoded(im.filter(ImageFilter.GaussianBlur(1.5)), quality=90)),
    "noise": (".jpg", lambda im: _encoded(_noise(im), quality=90)),
    "contrast": (".jpg", lambda im: _encoded(ImageEnhance.Contrast(im).enhance(1.4), quality=90)),
    "png": (".png", lambda im: _encoded(im, "PNG")),
    "mirror": (".jpg", lambda im: _encoded(ImageOps.mirror(im), quality=90)),
    "upside_down": (".jpg", lambda im: _encoded(ImageOps.flip(im), quality=90)),
    "recrop_5pct": (".jpg", lambda im: _encoded(_recrop(3)(im), quality=90)),
    "recrop_10pct": (".jpg", lambda im: _encoded(_recrop(6)(im), quality=90)),
    "watermark": (".jpg", lambda im: _encoded(_watermark(im), quality=90)),
    "corner_logo": (".jpg", lambda im: _encoded(_corner_logo(im), quality=90)),
    "timestamp": (".jpg", lambda im: _encoded(_timestamp(im), quality=90)),
}
MISSED: dict[str, tuple[str, Edit]] = {
    "rotated_5deg": (".jpg", lambda im: _encoded(im.rotate(5, Image.Resampling.BICUBIC))),
    "hue_shift": (".jpg", lambda im: _encoded(_hue(im), quality=90)),
    "caption_bar": (".jpg", lambda im: _encoded(_caption_bar(im), quality=90)),
}


# Every family, in the order they took their originals (new ones go last).
ORDER = (
    "jpeg_q40", "webp", "half_size", "stretched", "greyscale", "exif_rotated", "blur", "noise",
    "contrast", "png", "mirror", "upside_down", "recrop_5pct", "recrop_10pct", "rotated_5deg",
    "hue_shift", "watermark", "corner_logo", "caption_bar", "timestamp",
)  # fmt: skip
assert set(ORDER) == {*CAUGHT, *MISSED}


@dataclass(frozen=True)
class Copy:
    family: str
    copy: str  # path relative to root
    original: str


def _originals(root: Path, rng: np.random.Generator) -> list[tuple[str, Image.Image]]:
    originals: list[tuple[str, Image.Image]] = []
    for name in src.CLASSES:
        (root / "train" / name).mkdir(parents=True, exist_ok=True)
        for n, crop in enumerate(src.class_crops(name, PER_CLASS, rng)):
            im = Image.fromarray(src.render(crop, SIDE))
            rel = f"train/{name}/{n:02d}.jpg"
            (root / rel).write_bytes(_encoded(im, quality=92))
            originals.append((rel, im))
    return originals


def _textured(originals: list[tuple[str, Image.Image]]) -> list[int]:
    """Copies are made of images with content: a flat crop (a bokeh blur, grey std < 8) is
    low-information, which by design gets no near links at all."""
    return [i for i, (_, im) in enumerate(originals) if np.std(im.convert("L")) >= MIN_STD]


def make_stacked_edits(
    root: Path, *, seed: int = 0, originals: int = 8, per: int = 4
) -> list[Copy]:
    """Write the originals and, for `originals` of them, copies by `per` different CAUGHT
    families each (`<family>_s<k>.<ext>`): several edits of one picture (its mirror image, a
    recrop, a captioned copy), each a copy of it and rarely of one another."""
    rng = np.random.default_rng(seed)
    made = _originals(root, rng)
    copies = []
    for k, i in enumerate(rng.permutation(_textured(made))[:originals]):
        rel, im = made[int(i)]
        for family in rng.choice(sorted(CAUGHT), per, replace=False):
            ext, edit = CAUGHT[str(family)]
            out = f"{rel.rsplit('/', 1)[0]}/{family}_s{k}{ext}"
            (root / out).write_bytes(edit(im))
            copies.append(Copy(str(family), out, rel))
    return copies


def make_edit_families(root: Path, *, seed: int = 0, missed: bool = False) -> list[Copy]:
    """Write the originals and the CAUGHT copies (and the MISSED ones with `missed`)."""
    rng = np.random.default_rng(seed)
    originals = _originals(root, rng)
    families = {**CAUGHT, **(MISSED if missed else {})}
    textured = _textured(originals)
    picks = rng.permutation(textured).tolist() * 4
    copies = []
    for family, (ext, edit) in families.items():
        # a family's originals follow from its place in ORDER alone: the same with or without
        # the missed families, and as they were when it moved from MISSED to CAUGHT
        at = ORDER.index(family) * COPIES
        for k in range(COPIES):
            rel, im = originals[picks[(at + k) % len(picks)]]
            out = f"{rel.rsplit('/', 1)[0]}/{family}_{k}{ext}"
            (root / out).write_bytes(edit(im))
            copies.append(Copy(family, out, rel))
    return copies
