"""Safe image reading: headers, full decodes and thumbnails that never crash on bad files."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

# Pillow's own guard warns at ~89 MP and raises at twice that; we refuse earlier with our own
# message because a 20000x20000 image would take gigabytes to decode on a 2-core laptop.
MAX_PIXELS = 64_000_000


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
            with Image.open(path) as im:
                return ImageHeader(im.width, im.height, im.mode, im.format or "", "")
    except Exception as exc:
        return ImageHeader(0, 0, "", "", describe_error(exc))


def load_image(path: Path) -> Image.Image:
    """Fully decode an image, EXIF-rotated, refusing decompression bombs. Raises on bad files."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        im = Image.open(path)
        if im.width * im.height > MAX_PIXELS:
            raise ValueError(
                f"image is {im.width}x{im.height} pixels, above the {MAX_PIXELS:,}-pixel "
                "decompression-bomb guard"
            )
        im.load()
        return ImageOps.exif_transpose(im) or im


def load_thumbnail(path: Path, size: int) -> Image.Image | None:
    """An RGB thumbnail at most `size` px on its long side, or None when the file won't decode."""
    try:
        im = load_image(path)
    except Exception:
        return None
    im = to_rgb(im)
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
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]
