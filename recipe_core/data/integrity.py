"""Integrity checks on a dataset file's bytes, before and after Pillow decodes them.

Pillow decodes some damaged files "successfully": a PNG or JPEG missing only its last bytes
(the IEND chunk, the EOI marker) loads without error, a GIF without its trailer too, a PNG whose
image data was damaged decodes to wrong pixels (Pillow skips the CRC of IDAT chunks), and a
multi-page TIFF cut off after its first page opens as a whole one-page image. So each file must
end the way its format says, its PNG chunks must match their CRCs and its TIFF pages must all
decode; a file that fails is reported as truncated or corrupt instead of used as if it were whole.
"""

from __future__ import annotations

import io
import warnings
import zlib

from PIL import Image

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8"
GIF_MAGICS = (b"GIF87a", b"GIF89a")


def truncation_problem(data: bytes) -> str:
    """A message when `data` lacks the ending its format requires (or, for a PNG, a chunk fails
    its CRC), "" when it looks whole."""
    if not data:
        return "EmptyFile: the file has 0 bytes"
    if data.startswith(PNG_MAGIC):
        return png_problem(data)
    if data.startswith(JPEG_MAGIC):
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


def png_problem(data: bytes) -> str:
    """Walk a PNG's chunks: each must fit in the file and match its CRC (Pillow does not check
    the CRC of image data, so a flipped bit in an IDAT chunk decodes to wrong pixels), and the
    IEND chunk must end it. "" when the file is whole."""
    view = memoryview(data)
    pos = len(PNG_MAGIC)
    while pos + 12 <= len(data):
        length = int.from_bytes(view[pos : pos + 4], "big")
        kind = bytes(view[pos + 4 : pos + 8])
        end = pos + 12 + length
        if end > len(data):
            break
        if zlib.crc32(view[pos + 4 : end - 4]) != int.from_bytes(view[end - 4 : end], "big"):
            name = kind.decode("latin-1")
            return (
                f"CorruptChunk: the PNG's {name} chunk at byte {pos} fails its CRC check (its "
                "bytes were damaged after the file was written)"
            )
        if kind == b"IEND":
            return ""
        pos = end
    return "Truncated: PNG ends before its IEND chunk (the last bytes are missing)"


def pages_problem(data: bytes) -> str:
    """A message when a page after the first of a multi-page TIFF does not decode ("" when all
    do, or the file has one page): the first page decodes alone, so a file cut off after it
    would otherwise pass as whole."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        im = Image.open(io.BytesIO(data))
        page = 1
        try:
            for page in range(1, getattr(im, "n_frames", 1)):
                im.seek(page)
                im.load()
        except Exception as exc:
            return f"Truncated: TIFF page {page + 1} does not decode ({type(exc).__name__}: {exc})"
    return ""


def _riff_size(data: bytes) -> int:
    return int.from_bytes(data[4:8], "little") + 8
