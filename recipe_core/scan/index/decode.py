"""Read and fully decode one dataset file for the scan, turning every failure into a message
(the reading and the integrity checks are `recipe_core.data`'s, shared with every loader)."""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass

from PIL import Image

from recipe_core.data.files import read_regular
from recipe_core.data.images import decode_whole, describe_error, to_rgb, upright


@dataclass(frozen=True)
class DecodedFile:
    """One file after reading and decoding; `image` is None when `error` is set."""

    data_hash: bytes  # blake2b-128 of the file bytes (b"" when unreadable)
    image: Image.Image | None  # 8-bit RGB, EXIF-rotated, first frame of animations
    width: int  # decoded size after EXIF rotation, px; 0 when undecodable
    height: int
    mode: str  # PIL mode of the file before conversion to RGB
    format: str  # PIL format name
    pixel_hash: str  # hex blake2b of the decoded pixels + mode + size ("" when undecodable)
    error: str  # "" = decoded fully


def decode_file(path: str) -> DecodedFile:
    """Read, integrity-check and decode `path`; never raises for a bad file."""
    try:
        data = read_regular(path)
    except OSError as exc:
        return _failed(b"", describe_error(exc))
    data_hash = hashlib.blake2b(data, digest_size=16).digest()
    try:
        return _decode_bytes(data, data_hash)
    except Exception as exc:  # any decoder failure is data, not a crash
        return _failed(data_hash, describe_error(exc))


def _decode_bytes(data: bytes, data_hash: bytes) -> DecodedFile:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        im = decode_whole(data)
        mode, fmt = im.mode, im.format or ""
        im = upright(im)
    pixel_hash = hashlib.blake2b(digest_size=16)
    pixel_hash.update(f"{im.mode} {im.width}x{im.height} ".encode())  # same bytes, other shape
    pixel_hash.update(im.tobytes())
    rgb = im if im.mode == "RGB" else to_rgb(im)
    return DecodedFile(data_hash, rgb, rgb.width, rgb.height, mode, fmt, pixel_hash.hexdigest(), "")


def _failed(data_hash: bytes, error: str) -> DecodedFile:
    return DecodedFile(data_hash, None, 0, 0, "", "", "", error)
