"""Safe image reading: headers, full decodes and thumbnails that never crash on bad files."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from recipe_core.data.files import open_regular, read_regular
from recipe_core.data.integrity import pages_problem, truncation_problem

# Pillow's own guard warns at ~89 MP and raises at twice that; we refuse earlier with our own
# message because a 20000x20000 image would take gigabytes to decode on a 2-core laptop.
MAX_PIXELS = 64_000_000
EXIF_ORIENTATION = 0x0112
UNIDENTIFIED = "UnidentifiedImageError: not an image Pillow can read (unknown format or bad header)"


class CorruptImage(ValueError):
    """A file whose bytes fail an integrity check or do not decode; the text says which."""


@dataclass(frozen=True)
class ImageHeader:
    width: int  # pixels; 0 when the header is unreadable
    height: int
    mode: str  # PIL mode ("L", "RGB", "I;16", ...); "" when unreadable
    format: str  # PIL format name ("PNG", "JPEG", ...); "" when unreadable
    error: str  # "" when the header parsed


def read_header(path: Path) -> ImageHeader:
    """Width, height, mode and format from the file header only (no pixel decode)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with open_regular(path) as handle, Image.open(handle) as im:
                return ImageHeader(im.width, im.height, im.mode, im.format or "", "")
    except Exception as exc:
        return ImageHeader(0, 0, "", "", describe_error(exc))


def load_image(path: Path) -> Image.Image:
    """Fully decode an image, EXIF-rotated, refusing decompression bombs. Raises on bad files."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return upright(decode_whole(read_regular(path)))


def upright(im: Image.Image) -> Image.Image:
    """`im` turned as its EXIF orientation says; `im` itself when it needs no turn (the check is
    10x cheaper than exif_transpose, which copies every pixel even then)."""
    if im.getexif().get(EXIF_ORIENTATION, 1) != 1:
        return ImageOps.exif_transpose(im) or im
    return im


def decode_whole(data: bytes) -> Image.Image:
    """An image fully decoded from a file's bytes, after the integrity checks every reader
    shares (truncation, PNG CRCs, every TIFF page). Raises CorruptImage naming the problem,
    ValueError for a decompression bomb, other exceptions for other decoder failures."""
    problem = truncation_problem(data)
    if problem:
        raise CorruptImage(problem)
    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:  # its message names a BytesIO address: useless
        raise CorruptImage(UNIDENTIFIED) from exc
    refuse_bomb(im)
    im.load()
    problem = pages_problem(data) if im.format == "TIFF" else ""
    if problem:
        raise CorruptImage(problem)
    return im


def refuse_bomb(im: Image.Image) -> None:
    """Raise before decoding an image too large to decode safely."""
    if im.width * im.height > MAX_PIXELS:
        raise ValueError(
            f"image is {im.width}x{im.height} pixels, above the {MAX_PIXELS:,}-pixel "
            "decompression-bomb guard"
        )


def load_thumbnail(path: Path, size: int, *, upscale: bool = False) -> Image.Image | None:
    """An RGB thumbnail at most `size` px on its long side, or None when the file won't decode.
    `upscale`: a smaller image is enlarged by the largest whole factor that fits, each pixel a
    sharp square (a 32 px digit shown large is its pixels, not a browser's blur of them)."""
    try:
        im = load_image(path)
    except Exception:
        return None
    im = to_rgb(im)
    factor = size // max(im.size) if upscale and max(im.size) > 0 else 0
    if factor >= 2:
        return im.resize((im.width * factor, im.height * factor), Image.Resampling.NEAREST)
    im.thumbnail(
        (size, size), Image.Resampling.NEAREST if max(im.size) < size else Image.Resampling.BILINEAR
    )
    return im


def to_rgb(im: Image.Image) -> Image.Image:
    """Any mode to 8-bit RGB: 16-bit is rescaled, transparency is flattened on white."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        im = im.point(lambda v: v / 256).convert("L")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")


def describe_error(exc: BaseException) -> str:
    """A one-line, user-facing description of why a file did not decode."""
    if isinstance(exc, CorruptImage):  # its text already names the kind of damage
        return str(exc)[:300]
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]
