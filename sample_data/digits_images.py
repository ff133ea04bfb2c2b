"""Pixels for `make_digits.py`: PNG/JPEG bytes, rendered digits and drawn out-of-domain images.

PNGs come from the tiny encoder here (Python's `zlib`, no timestamps or other ancillary
chunks), so their bytes do not depend on the Pillow version; JPEGs come from Pillow's libjpeg.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SIZE = 32
BACKGROUND = 255  # white paper, dark strokes
SUPERSAMPLE = 4  # drawn images are drawn at this multiple of SIZE, then downsampled


# --------------------------------------------------------------------------- encoding


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_bytes(arr: np.ndarray) -> bytes:
    """8-bit grayscale PNG (filter 0 on every row, zlib level 9, no ancillary chunks)."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    h, w = arr.shape
    raw = b"".join(b"\x00" + arr[r].tobytes() for r in range(h))
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
        + png_chunk(b"IDAT", zlib.compress(raw, 9))
        + png_chunk(b"IEND", b"")
    )


def jpeg_bytes(arr: np.ndarray, quality: int = 85) -> bytes:
    """Greyscale baseline JPEG at `quality` (no chroma subsampling, no EXIF)."""
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


def rms(a: np.ndarray, b: np.ndarray) -> float:
    """Root-mean-square pixel difference of two same-shaped images, in grey levels."""
    return float(np.sqrt(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


# --------------------------------------------------------------------------- drawing


def blank_canvas() -> tuple[Image.Image, ImageDraw.ImageDraw]:
    """A white supersampled canvas and a pen for it."""
    n = SIZE * SUPERSAMPLE
    img = Image.new("L", (n, n), BACKGROUND)
    return img, ImageDraw.Draw(img)


def downsample(img: Image.Image) -> np.ndarray:
    """Lanczos-downsample a supersampled canvas to a SIZE x SIZE uint8 array."""
    return np.asarray(img.resize((SIZE, SIZE), Image.Resampling.LANCZOS), dtype=np.uint8)


@dataclass(frozen=True)
class Face:
    """Where a face's head sits on the canvas, which face it is (`k`) and its ink level."""

    pen: ImageDraw.ImageDraw
    k: int
    cx: float
    cy: float
    rx: float
    ry: float
    ink: int

    @property
    def eye_y(self) -> float:
        """Height of the eyes (also where the nose starts)."""
        return self.cy - self.ry * (0.25 + 0.05 * (self.k % 3))


def draw_head(pen: ImageDraw.ImageDraw, rng: np.random.Generator, k: int) -> Face:
    """Draw face `k`'s head outline at a random position/size and return its geometry."""
    n = SIZE * SUPERSAMPLE
    cx = n / 2 + rng.integers(-8, 9)
    cy = n / 2 + rng.integers(-6, 7)
    rx = (34, 44, 40, 50, 38, 46, 36, 48)[k] + rng.integers(-3, 4)
    ry = (44, 50, 38, 52, 46, 42, 50, 40)[k] + rng.integers(-3, 4)
    fill = (255, 225, 200, 240, 215, 255, 190, 230)[k]
    line = 6 + (k % 3)
    ink = int(rng.integers(10, 60))
    pen.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=fill, outline=ink, width=line)
    return Face(pen, k, cx, cy, rx, ry, ink)


def draw_eye(f: Face, ex: float) -> None:
    """One eye centred at (ex, eye_y): open ring + pupil, closed line, or a filled dot."""
    d, ink, eye_y = f.pen, f.ink, f.eye_y
    er = (5, 7, 6, 9, 4, 8, 6, 7)[f.k]
    if f.k in (2, 5):  # open eyes: ring + pupil
        d.ellipse([ex - er - 3, eye_y - er - 3, ex + er + 3, eye_y + er + 3], outline=ink, width=3)
        d.ellipse([ex - 3, eye_y - 3, ex + 3, eye_y + 3], fill=ink)
    elif f.k == 6:  # winking / closed eyes
        d.line([ex - er - 2, eye_y, ex + er + 2, eye_y], fill=ink, width=4)
    else:
        d.ellipse([ex - er, eye_y - er, ex + er, eye_y + er], fill=ink)


def draw_eyes(f: Face) -> None:
    """Both eyes, spaced symmetrically about the head's centre."""
    spacing = (12, 20, 16, 24, 14, 22, 18, 26)[f.k]
    for sx in (-1, 1):
        draw_eye(f, f.cx + sx * spacing)


def draw_nose(f: Face) -> None:
    """A bent-line nose, on faces 1, 3, 4 and 7 only."""
    if f.k in (1, 3, 4, 7):
        cx, cy, ey = f.cx, f.cy, f.eye_y
        f.pen.line([cx, ey + 8, cx - 4, cy + 6, cx + 2, cy + 8], fill=f.ink, width=3)


def draw_mouth(f: Face) -> None:
    """A smile, frown, open 'O' or straight mouth, chosen by `k % 4`."""
    d, cx, ink = f.pen, f.cx, f.ink
    my = f.cy + f.ry * 0.45
    mw = f.rx * (0.35 + 0.08 * (f.k % 4))
    mouth = f.k % 4
    if mouth == 0:  # smile
        d.arc([cx - mw, my - 14, cx + mw, my + 8], 20, 160, fill=ink, width=5)
    elif mouth == 1:  # frown
        d.arc([cx - mw, my - 2, cx + mw, my + 18], 200, 340, fill=ink, width=5)
    elif mouth == 2:  # open 'O'
        d.ellipse([cx - 8, my - 8, cx + 8, my + 8], outline=ink, width=4)
    else:  # straight
        d.line([cx - mw, my, cx + mw, my], fill=ink, width=5)


def draw_hair_or_ears(f: Face) -> None:
    """Spiky hair (faces 0, 4), bangs (3, 6), ears (7), or nothing."""
    d, cx, cy, rx, ry, ink = f.pen, f.cx, f.cy, f.rx, f.ry, f.ink
    if f.k in (0, 4):  # spiky hair
        for i in range(-3, 4):
            hx = cx + i * rx / 4
            d.line([hx, cy - ry + 4, hx + 4 * (i % 2) - 2, cy - ry - 14], fill=ink, width=4)
    elif f.k in (3, 6):  # bangs
        d.chord([cx - rx, cy - ry, cx + rx, cy - ry * 0.2], 180, 360, fill=ink)
    elif f.k == 7:  # ears
        for sx in (-1, 1):
            ex = cx + sx * (rx + 6)
            d.ellipse([ex - 8, cy - 12, ex + 8, cy + 12], outline=ink, width=4)


def draw_face(rng: np.random.Generator, k: int) -> np.ndarray:
    """A cartoon face, drawn at 4x and downsampled. `k` picks distinct features per face."""
    img, pen = blank_canvas()
    face = draw_head(pen, rng, k)
    draw_eyes(face)
    draw_nose(face)
    draw_mouth(face)
    draw_hair_or_ears(face)
    return downsample(img)


def draw_letter_a() -> np.ndarray:
    """A bold capital letter "A", drawn at 4x and downsampled."""
    img, d = blank_canvas()
    d.line([20, 112, 64, 14, 108, 112], fill=20, width=12, joint="curve")
    d.line([40, 76, 88, 76], fill=20, width=11)
    return downsample(img)


def draw_checkerboard() -> np.ndarray:
    """A black/white checkerboard of 4 px squares."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    return np.where(((yy // 4) + (xx // 4)) % 2 == 0, 0, 255).astype(np.uint8)
