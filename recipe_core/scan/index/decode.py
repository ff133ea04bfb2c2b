"""Read and fully decode one dataset file for the scan, turning every failure into a message.

Pillow decodes some damaged files "successfully": a PNG or JPEG missing only its last bytes
(the IEND chunk, the EOI marker) loads without error, and a GIF without its trailer too. So
before decoding we check that each file ends the way its format says it must; a file that fails
this check is reported as truncated instead of being scanned as if it were whole.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from recipe_core.data.images import MAX_PIXELS, describe_error, to_rgb

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8"
GIF_MAGICS = (b"GIF87a", b"GIF89a")
EXIF_ORIENTATION = 0x0112
UNIDENTIFIED = "UnidentifiedImageError: not an image Pillow can read (unknown format or bad header)"


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


def read_file(path: str) -> bytes:
    """The bytes of a regular file. Raises OSError (with a clear text) for anything else: a
    FIFO or device would block or never end, a folder is not an image."""
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise IsADirectoryError(f"not a regular file ({_file_kind(info.st_mode)})")
    with open(path, "rb") as handle:
        return handle.read()


def decode_file(path: str) -> DecodedFile:
    """Read, integrity-check and decode `path`; never raises for a bad file."""
    try:
        data = read_file(path)
    except OSError as exc:
        return _failed(b"", describe_error(exc))
    data_hash = hashlib.blake2b(data, digest_size=16).digest()
    problem = truncation_problem(data)
    if problem:
        return _failed(data_hash, problem)
    try:
        return _decode_bytes(data, data_hash)
    except UnidentifiedImageError:  # its message names a BytesIO address: useless to a user
        return _failed(data_hash, UNIDENTIFIED)
    except Exception as exc:  # any decoder failure is data, not a crash
        return _failed(data_hash, describe_error(exc))


def truncation_problem(data: bytes) -> str:
    """A message when `data` lacks the ending its format requires, "" when it looks whole."""
    if not data:
        return "EmptyFile: the file has 0 bytes"
    if data.startswith(PNG_MAGIC):
        end = data.rfind(b"IEND")
        # IEND is a zero-length chunk: 4 length bytes (0) before the type, a 4-byte CRC after.
        if end < 4 or data[end - 4 : end] != b"\0\0\0\0" or len(data) < end + 8:
            return "Truncated: PNG ends before its IEND chunk (the last bytes are missing)"
    elif data.startswith(JPEG_MAGIC):
        # The last scan (SOS, FFDA) must be followed by the end-of-image marker (FFD9); neither
        # byte pair can occur inside entropy-coded data, so this catches any cut-off tail.
        end = data.rfind(b"\xff\xd9")
        if end < 0 or end < data.rfind(b"\xff\xda"):
            return (
                "Truncated: JPEG ends before its end-of-image marker (the last bytes are missing)"
            )
    elif data[:6] in GIF_MAGICS:
        if not data.rstrip(b"\0").endswith(b";"):
            return "Truncated: GIF ends before its trailer byte (the last bytes are missing)"
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP" and _riff_size(data) > len(data):
        return "Truncated: WebP is shorter than its RIFF header says"
    return ""


def _decode_bytes(data: bytes, data_hash: bytes) -> DecodedFile:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        im = Image.open(io.BytesIO(data))
        if im.width * im.height > MAX_PIXELS:
            raise ValueError(
                f"image is {im.width}x{im.height} pixels, above the {MAX_PIXELS:,}-pixel "
                "decompression-bomb guard"
            )
        im.load()
        mode, fmt = im.mode, im.format or ""
        if im.getexif().get(EXIF_ORIENTATION, 1) != 1:  # the check is 10x cheaper than a no-op
            im = ImageOps.exif_transpose(im) or im
    pixel_hash = hashlib.blake2b(digest_size=16)
    pixel_hash.update(f"{im.mode} {im.width}x{im.height} ".encode())  # same bytes, other shape
    pixel_hash.update(im.tobytes())
    rgb = im if im.mode == "RGB" else to_rgb(im)
    return DecodedFile(data_hash, rgb, rgb.width, rgb.height, mode, fmt, pixel_hash.hexdigest(), "")


def _riff_size(data: bytes) -> int:
    return int.from_bytes(data[4:8], "little") + 8


def _failed(data_hash: bytes, error: str) -> DecodedFile:
    return DecodedFile(data_hash, None, 0, 0, "", "", "", error)


def _file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device or special file"
