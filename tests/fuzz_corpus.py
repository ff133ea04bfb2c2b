"""A corpus of nasty dataset files and manifests, built on disk for the hardening tests.

`build_corpus(root)` writes an image folder `root/images` whose class folders hold a few good
images and every kind of file a shared data root can contain: truncated, damaged and
lying files of each format, decompression bombs, a sparse multi-GB file, a named pipe, a socket,
device and dangling symlinks, odd names, and folder symlink loops. `build_manifests(root)` writes
manifests that are broken in every way a hand-edited CSV or Parquet file can be. Each entry
says what Recipe must make of it, so the tests compare reports against a trusted answer.
"""

from __future__ import annotations

import io
import os
import socket
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

GOOD_PER_CLASS = 6
SPARSE_BYTES = 5 << 30  # a 5 GiB file that takes no disk space


@dataclass(frozen=True)
class Corpus:
    root: Path  # the image folder
    bad: dict[str, str]  # relative path -> what is wrong (must be reported as corrupt)
    odd: dict[str, str]  # relative path -> what is unusual (a valid image: must decode)
    loops: dict[str, str]  # relative path of a folder link -> why it must not be followed
    sockets: list[socket.socket]  # kept open while the corpus is in use

    @property
    def n_good(self) -> int:
        return 2 * GOOD_PER_CLASS

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


@dataclass(frozen=True)
class NastyManifest:
    path: Path
    what: str
    refused: bool  # True: opening it must fail with a DatasetError naming the fix
    corrupt_rows: int = 0  # when it opens: rows the scan must report as corrupt


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def image_bytes(fmt: str, *, size: tuple[int, int] = (24, 24), seed: int = 0, **save) -> bytes:
    pixels = _rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **save)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR (with a valid CRC) claims `width`x`height` over one tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 16)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def _flip(data: bytes, at: int) -> bytes:
    out = bytearray(data)
    out[at] ^= 0xFF
    return bytes(out)


def _png_bad_idat_data() -> bytes:
    data = image_bytes("PNG", seed=7)
    return _flip(data, data.find(b"IDAT") + 12)


def _png_bad_idat_crc() -> bytes:
    data = image_bytes("PNG", seed=8)
    idat = data.find(b"IDAT")
    length = int.from_bytes(data[idat - 4 : idat], "big")
    return _flip(data, idat + 4 + length)  # the CRC's first byte


def _png_bad_ihdr_crc() -> bytes:
    return _flip(image_bytes("PNG", seed=9), 8 + 4 + 4 + 13)


def _tiff_pages(n: int) -> bytes:
    frames = [
        Image.fromarray(_rng(i).integers(0, 255, (48, 48, 3), dtype=np.uint8)) for i in range(n)
    ]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="TIFF", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


def _gif_animation() -> bytes:
    frames = [Image.fromarray(_rng(i).integers(0, 255, (20, 20), dtype=np.uint8)) for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


def _bmp_bomb() -> bytes:
    header = image_bytes("BMP", size=(4, 4))
    return header[:18] + struct.pack("<ii", 60_000, 60_000) + header[26:]


def _ztxt_bomb() -> bytes:
    data = image_bytes("PNG", seed=11)
    bomb = png_chunk(b"zTXt", b"comment\0\0" + zlib.compress(b"A" * (64 << 20), 9))
    end = data.find(b"IEND") - 4
    return data[:end] + bomb + data[end:]


def _cut(data: bytes, fraction: float) -> bytes:
    return data[: max(1, int(len(data) * fraction))]


# name -> (bytes maker, what is wrong); every one must become a `corrupt` row.
BAD_FILES: dict[str, tuple[Callable[[], bytes], str]] = {
    "empty.png": (lambda: b"", "0 bytes"),
    "magic_only.png": (lambda: b"\x89PNG\r\n\x1a\n", "the PNG signature and nothing else"),
    "png_cut_half.png": (lambda: _cut(image_bytes("PNG", seed=1), 0.5), "PNG cut in half"),
    "png_no_iend.png": (lambda: image_bytes("PNG", seed=2)[:-12], "PNG without its IEND"),
    "png_cut_chunk_header.png": (lambda: image_bytes("PNG", seed=3)[:37], "cut inside a chunk"),
    "png_bad_idat_data.png": (_png_bad_idat_data, "a damaged byte of image data"),
    "png_bad_idat_crc.png": (_png_bad_idat_crc, "an IDAT CRC that does not match"),
    "png_bad_ihdr_crc.png": (_png_bad_ihdr_crc, "an IHDR CRC that does not match"),
    "png_bomb.png": (lambda: png_with_header(100_000, 100_000), "claims 10 gigapixels"),
    "png_zero_width.png": (lambda: png_with_header(0, 16), "claims a width of 0"),
    "png_ztxt_bomb.png": (_ztxt_bomb, "a 64 MiB compressed text chunk"),
    "jpeg_cut.jpg": (lambda: _cut(image_bytes("JPEG", seed=4), 0.6), "JPEG cut short"),
    "jpeg_soi_only.jpg": (lambda: b"\xff\xd8", "the JPEG start marker only"),
    "jpeg_garbage.jpg": (lambda: b"\xff\xd8" + _rng(5).bytes(2000), "SOI then noise"),
    "gif_no_trailer.gif": (lambda: image_bytes("GIF", seed=6)[:-1], "GIF without its trailer"),
    "gif_header_only.gif": (lambda: b"GIF89a", "the GIF signature only"),
    "gif_anim_cut.gif": (lambda: _cut(_gif_animation(), 0.7), "an animation cut mid-frame"),
    "webp_garbage.webp": (lambda: b"RIFF\x10\0\0\0WEBPVP8 " + b"\0" * 8, "a WebP of noise"),
    "webp_cut.webp": (lambda: b"RIFF\xff\xff\0\0WEBPVP8 " + b"\0" * 64, "RIFF size > file"),
    "bmp_cut.bmp": (lambda: _cut(image_bytes("BMP", seed=12), 0.5), "BMP cut in half"),
    "bmp_bomb.bmp": (_bmp_bomb, "BMP header claiming 60000x60000"),
    "tiff_pages_cut.tif": (lambda: _cut(_tiff_pages(3), 0.6), "3 pages, cut after page 1"),
    "tiff_single_cut.tif": (lambda: _cut(_tiff_pages(1), 0.5), "one page cut in half"),
    "tiff_bad_ifd.tif": (lambda: b"II*\0" + struct.pack("<I", 1 << 30), "IFD beyond the end"),
    "text.png": (lambda: b"hello, I am not a picture\n", "a text file"),
    "html.jpg": (lambda: b"<html><body>404 Not Found</body></html>", "an HTML error page"),
    "random.png": (lambda: _rng(13).bytes(4096), "random bytes"),
    "all_ff.png": (lambda: b"\xff" * 1024, "1 KiB of 0xFF"),
    "all_zero.jpeg": (lambda: b"\0" * 1024, "1 KiB of zeros"),
    "ppm_cut.ppm": (lambda: b"P6\n24 24\n255\n" + b"\x80" * 100, "PPM shorter than declared"),
    "pgm_zero_maxval.pgm": (lambda: b"P5\n4 4\n0\n" + b"\0" * 16, "PGM with maxval 0"),
    "psd_named.png": (lambda: b"8BPS\0\1" + b"\0" * 20, "a truncated PSD named .png"),
    "ico_header.bmp": (lambda: b"\0\0\1\0\1\0" + b"\0" * 10, "an ICO header named .bmp"),
    "zip_named.jpg": (lambda: b"PK\x03\x04" + b"\0" * 60, "a zip archive named .jpg"),
}

# name -> (bytes maker, what is unusual); valid images that must decode.
ODD_FILES: dict[str, tuple[Callable[[], bytes], str]] = {
    "jpeg_named.png": (lambda: image_bytes("JPEG", seed=20), "JPEG bytes, .png name"),
    "one_pixel.png": (lambda: image_bytes("PNG", size=(1, 1)), "1x1"),
    "ribbon.png": (lambda: image_bytes("PNG", size=(1, 900)), "1x900"),
    "tiff_three_pages.tif": (lambda: _tiff_pages(3), "a whole 3-page TIFF"),
    "animation.gif": (_gif_animation, "a whole 3-frame GIF"),
    "trailing_bytes.png": (lambda: image_bytes("PNG", seed=21) + b"extra", "data after IEND"),
    "=HYPERLINK(evil).png": (lambda: image_bytes("PNG", seed=22), "a name that is a formula"),
    "line\nbreak.png": (lambda: image_bytes("PNG", seed=23), "a newline in its name"),
    "x" * 200 + ".png": (lambda: image_bytes("PNG", seed=24), "a 204-character name"),
    "ünïcødé 图像.png": (lambda: image_bytes("PNG", seed=25), "a non-ASCII name"),
}


def build_corpus(root: Path) -> Corpus:
    """Write the corpus under `root/images` (classes good_a, good_b) and return what is there."""
    folder = root / "images"
    a, b = folder / "good_a", folder / "good_b"
    for label, cls in enumerate((a, b)):
        cls.mkdir(parents=True)
        for i in range(GOOD_PER_CLASS):
            pixels = np.full((24, 24, 3), 40 + 150 * label, dtype=np.uint8)
            pixels[i : i + 6, i : i + 6] = 255 - pixels[0, 0]  # distinct, clearly per class
            Image.fromarray(pixels).save(cls / f"{i}.png")
    bad: dict[str, str] = {}
    for name, (make, what) in BAD_FILES.items():
        (a / name).write_bytes(make())
        bad[f"good_a/{name}"] = what
    odd: dict[str, str] = {}
    for name, (make, what) in ODD_FILES.items():
        (b / name).write_bytes(make())
        odd[f"good_b/{name}"] = what
    (b / "undecodable_name_\udcff.png").write_bytes(image_bytes("PNG", seed=26))
    odd["good_b/undecodable_name_\\xff.png"] = "a name that is not UTF-8"
    bad.update(_special_files(a))
    sockets = [_socket(a / "socket.png")]
    bad["good_a/socket.png"] = "a Unix socket"
    return Corpus(folder, bad, odd, _loops(folder), sockets)


def _special_files(folder: Path) -> dict[str, str]:
    os.mkfifo(folder / "fifo.png")
    with open(folder / "sparse.png", "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n")
        handle.truncate(SPARSE_BYTES)
    (folder / "dev_zero.png").symlink_to("/dev/zero")
    (folder / "dev_null.jpg").symlink_to("/dev/null")
    (folder / "dangling.png").symlink_to(folder / "no-such-file.png")
    (folder / "self_link.png").symlink_to("self_link.png")
    (folder / "a_folder.png").mkdir()  # a folder with an image name and no images in it
    return {
        "good_a/fifo.png": "a named pipe (would block a reader forever)",
        "good_a/sparse.png": "a 5 GiB sparse file",
        "good_a/dev_zero.png": "a symlink to /dev/zero (endless)",
        "good_a/dev_null.jpg": "a symlink to /dev/null",
        "good_a/dangling.png": "a symlink to nothing",
        "good_a/self_link.png": "a symlink to itself",
    }


def _socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(os.fspath(path))
    return sock


def _loops(folder: Path) -> dict[str, str]:
    a, b = folder / "good_a", folder / "good_b"
    (a / "loop").symlink_to(".")
    (b / "up").symlink_to("..")
    (b / "twice_1").symlink_to(".")
    (b / "twice_2").symlink_to(".")
    (a / "nested").mkdir()
    (a / "nested" / "back").symlink_to("../..")
    (folder / "root_loop").symlink_to(".")
    return {
        "good_a/loop": "links to its own folder",
        "good_b/up": "links to the dataset root",
        "good_b/twice_1": "one of two links to its own folder",
        "good_b/twice_2": "one of two links to its own folder",
        "good_a/nested/back": "links two levels up",
        "root_loop": "a class folder that is the dataset root",
    }


def build_manifests(root: Path, corpus: Corpus) -> list[NastyManifest]:
    """Manifests next to the corpus's image folder (paths relative to `corpus.root`)."""
    folder = corpus.root
    good = [f"good_a/{i}.png" for i in range(3)] + [f"good_b/{i}.png" for i in range(3)]
    rows = "".join(f"{p},{p.split('/')[0]}\n" for p in good)

    def csv(name: str, text: str | bytes) -> Path:
        path = folder / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return path

    out = [
        NastyManifest(csv("m_escape.csv", "path,label\n../../etc/passwd,a\n" + rows),
                      "a path climbing out of the root", refused=True),
        NastyManifest(csv("m_absolute.csv", "path,label\n/etc/hostname,a\n" + rows),
                      "an absolute path outside the root", refused=True),
        NastyManifest(csv("m_no_label.csv", "path,klass\ngood_a/0.png,a\n"),
                      "no label column", refused=True),
        NastyManifest(csv("m_header_only.csv", "path,label\n"), "no rows", refused=True),
        NastyManifest(csv("m_zero_bytes.csv", b""), "0 bytes", refused=True),
        NastyManifest(csv("m_duplicates.csv", "path,label\n" + rows + rows),
                      "every row twice", refused=True),
        NastyManifest(csv("m_not_utf8.csv", b"path,label\n\xff\xfe\xfa,a\n"),
                      "bytes that are not UTF-8", refused=True),
        NastyManifest(csv("m_ragged.csv", "path,label\ngood_a/0.png,a,extra,more\n" + rows),
                      "a row with too many fields", refused=True),
        NastyManifest(csv("m_parquet_lie.parquet", "path,label\n" + rows),
                      "a CSV named .parquet", refused=True),
        NastyManifest(csv("m_nul.csv", b"path,label\ngood_a/0.png\0,a\n"),
                      "a NUL byte in a path", refused=False, corrupt_rows=1),
        NastyManifest(
            csv("m_bad_files.csv", "path,label\n"
                + "".join(f'"{p}",a\n' for p in ("good_a/fifo.png", "good_a/sparse.png",
                                                 "good_a/dev_zero.png", "good_a/a_folder.png",
                                                 "good_a/missing.png", "good_a/loop/0.png"))
                + rows),
            "rows naming a pipe, a sparse file, a device, a folder and a missing file",
            refused=False, corrupt_rows=5,
        ),
        NastyManifest(csv("m_bom_formula.csv",
                          "\ufeffpath,label\n" + rows.replace(",good_a", ",=cmd|' /C calc'!A0")),
                      "a BOM and formula labels", refused=False),
    ]  # fmt: skip
    return out
