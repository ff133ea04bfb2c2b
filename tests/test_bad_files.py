"""Every kind of bad or unusual file a real dataset holds: the scan never crashes, damaged files
become rows with a decode_error (truncations included, even of only the last bytes) and
unusual-but-valid files decode to the right pixels."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from recipe_core.data.integrity import truncation_problem
from recipe_core.data.source import make_samples
from recipe_core.scan import scan
from recipe_core.scan.index.decode import decode_file
from recipe_core.scan.index.features import index_chunk


def png_bytes(image: Image.Image, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **params)
    return buffer.getvalue()


def jpeg_bytes(image: Image.Image, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **params)
    return buffer.getvalue()


def digit_like(size: int = 32, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    pixels = np.full((size, size), 255, dtype=np.uint8)
    pixels[4:-4, size // 2 - 2 : size // 2 + 2] = rng.integers(0, 60)
    return Image.fromarray(pixels, mode="L")


def photo_like(size: int = 48, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), mode="RGB")


def chunk(rec: Path, data: bytes) -> dict[str, object]:
    """Index one file holding `data`; the row as a dict."""
    rec.write_bytes(data)
    features = index_chunk([str(rec)])
    return {name: values[0] for name, values in features.columns.items()}


def png_header_only(width: int, height: int) -> bytes:
    """A well-formed PNG claiming `width` x `height` grey pixels, with a tiny IDAT: what a
    decompression bomb looks like before decoding."""

    def part(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + part(b"IHDR", ihdr)
        + part(b"IDAT", zlib.compress(b"\0"))
        + part(b"IEND", b"")
    )


# --- damaged files: a row with decode_error --------------------------------------------------


@pytest.mark.parametrize("cut", [1, 4, 12, 24, 100])
def test_png_missing_only_its_last_bytes_is_flagged(tmp_path: Path, cut: int) -> None:
    data = png_bytes(photo_like())
    row = chunk(tmp_path / "t.png", data[:-cut])
    assert "Truncated" in str(row["decode_error"]), row["decode_error"]


def test_truncated_png_that_pillow_would_decode_is_still_flagged(tmp_path: Path) -> None:
    """The planted bug this guards against: Pillow loads a PNG without its IEND chunk."""
    data = png_bytes(digit_like())[:-12]
    with Image.open(io.BytesIO(data)) as im:
        im.load()  # Pillow alone says "fine"
    assert chunk(tmp_path / "t.png", data)["decode_error"] != ""


@pytest.mark.parametrize("cut", [2, 50])
def test_truncated_jpeg_is_flagged(tmp_path: Path, cut: int) -> None:
    data = jpeg_bytes(photo_like())
    assert "Truncated" in str(chunk(tmp_path / "t.jpg", data[:-cut])["decode_error"])


def test_jpeg_with_exif_thumbnail_truncated_is_flagged(tmp_path: Path) -> None:
    """An EXIF thumbnail holds its own end-of-image marker near the start of the file."""
    thumb = jpeg_bytes(photo_like(16))
    exif = Image.Exif()
    exif[0x0112] = 1
    data = jpeg_bytes(photo_like(64), exif=exif.tobytes() + thumb)
    assert chunk(tmp_path / "ok.jpg", data)["decode_error"] == ""
    assert chunk(tmp_path / "t.jpg", data[:-2])["decode_error"] != ""


def test_truncated_gif_is_flagged(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    digit_like().save(buffer, format="GIF")
    assert chunk(tmp_path / "t.gif", buffer.getvalue()[:-1])["decode_error"] != ""


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("empty.png", b"", "EmptyFile"),
        ("text.png", b"hello, I am not an image\n", "UnidentifiedImageError"),
        ("garbage.jpg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\xff\xd9", "Error"),
    ],
)
def test_non_images_are_flagged(tmp_path: Path, name: str, data: bytes, expected: str) -> None:
    row = chunk(tmp_path / name, data)
    assert expected in str(row["decode_error"])
    assert row["width"] == 0 and row["brightness"] == 0


def test_decompression_bomb_is_refused_without_decoding(tmp_path: Path) -> None:
    row = chunk(tmp_path / "bomb.png", png_header_only(20000, 20000))
    assert "decompression" in str(row["decode_error"]).lower()


def test_dangling_symlink_folder_and_fifo_are_rows_not_crashes(tmp_path: Path) -> None:
    (tmp_path / "dangling.png").symlink_to(tmp_path / "nowhere.png")
    (tmp_path / "folder.png").mkdir()
    os.mkfifo(tmp_path / "pipe.png")  # opening it for reading would block forever
    decoded = [decode_file(str(tmp_path / n)) for n in ("dangling.png", "folder.png", "pipe.png")]
    assert "FileNotFoundError" in decoded[0].error
    assert "folder" in decoded[1].error
    assert "named pipe" in decoded[2].error


def test_unreadable_file_becomes_a_row(tmp_path: Path) -> None:
    """PermissionError, as a non-root user sees it: run the decode as 'nobody' when we are root."""
    target = tmp_path / "secret.png"
    target.write_bytes(png_bytes(digit_like()))
    target.chmod(0)
    if os.geteuid() != 0:
        assert "PermissionError" in decode_file(str(target)).error
        return
    tmp_path.chmod(0o755)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop to nobody, report the decode error through the pipe
        try:
            os.setgid(65534)
            os.setuid(65534)
            os.write(write, decode_file(str(target)).error.encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert "PermissionError" in os.read(read, 1000).decode()


# --- unusual but valid files: decoded correctly ----------------------------------------------


def test_16_bit_png_is_rescaled_to_8_bit(tmp_path: Path) -> None:
    pixels = np.full((16, 16), 65535 // 2, dtype=np.uint16)
    row = chunk(tmp_path / "deep.png", png_bytes(Image.fromarray(pixels)))
    assert row["decode_error"] == "" and str(row["mode"]).startswith("I")
    assert row["brightness"] == pytest.approx(0.5, abs=0.01)


def test_cmyk_jpeg_decodes_to_rgb(tmp_path: Path) -> None:
    cmyk = Image.new("CMYK", (24, 24), (0, 255, 255, 0))  # pure red in CMYK
    row = chunk(tmp_path / "cmyk.jpg", jpeg_bytes(cmyk, quality=95))
    assert row["decode_error"] == "" and row["mode"] == "CMYK" and row["channels"] == 4
    assert row["mean_r"] > 0.9 and row["mean_g"] < 0.1


def test_palette_transparency_is_flattened_on_white(tmp_path: Path) -> None:
    im = Image.new("P", (10, 10), 0)
    im.putpalette([0, 0, 0] * 256)
    row = chunk(tmp_path / "clear.png", png_bytes(im, transparency=0))
    assert row["decode_error"] == "" and row["brightness"] == pytest.approx(1.0)


def test_exif_rotated_jpeg_is_indexed_upright(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    row = chunk(tmp_path / "rot.jpg", jpeg_bytes(photo_like(40).crop((0, 0, 40, 20)), exif=exif))
    assert (row["width"], row["height"]) == (20, 40)
    assert row["aspect_ratio"] == pytest.approx(0.5)


def test_animated_gif_uses_its_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("L", (8, 8), v) for v in (0, 255, 128)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=50)
    row = chunk(tmp_path / "anim.gif", buffer.getvalue())
    assert row["decode_error"] == "" and row["brightness"] == pytest.approx(0.0, abs=0.01)


def test_one_pixel_image(tmp_path: Path) -> None:
    row = chunk(tmp_path / "dot.png", png_bytes(Image.new("RGB", (1, 1), (255, 0, 0))))
    assert row["decode_error"] == "" and row["width"] == 1 and row["blur"] == 0.0
    assert row["mean_r"] == pytest.approx(1.0) and np.isfinite(row["entropy"])


def test_non_utf8_file_name_is_scanned_and_written(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    for folder, value in ((b"a", 10), (b"b", 200)):
        os.makedirs(os.path.join(os.fsencode(root), folder))
        for name in (b"caf\xe9.png", b"ok.png"):
            path = os.path.join(os.fsencode(root), folder, name)
            Image.new("L", (8, 8), value).save(os.fsdecode(path))
    result = scan(root, workspace=tmp_path / "ws", workers=0, out=tmp_path / "out")
    table = result.index.table
    assert (table["decode_error"] == "").all(), table["decode_error"].tolist()
    assert "a/caf\\xe9.png" in set(table["path"])
    again = scan(root, workspace=tmp_path / "ws", workers=0)  # through the Parquet cache
    assert again.index.reused == 4
    assert (tmp_path / "out" / "index.parquet").exists()


def test_make_samples_accepts_surrogate_names() -> None:
    samples = make_samples(["caf\udce9.png"], ["x"], [""])
    assert samples["path"].tolist() == ["caf\\xe9.png"]


def test_scan_of_a_folder_of_bad_files_completes(tmp_path: Path) -> None:
    folder = tmp_path / "ds" / "cls"
    folder.mkdir(parents=True)
    good = png_bytes(digit_like())
    (folder / "good.png").write_bytes(good)
    (folder / "cut.png").write_bytes(good[:-5])
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "bomb.png").write_bytes(png_header_only(20000, 20000))
    (folder / "link.png").symlink_to(folder / "missing.png")
    (folder / "notes.txt").write_text("not an image")
    result = scan(tmp_path / "ds", workspace=tmp_path / "ws", workers=0)
    errors = dict(zip(result.index.table["path"], result.index.table["decode_error"], strict=True))
    assert errors["cls/good.png"] == ""
    assert all(errors[f"cls/{n}"] for n in ("cut.png", "empty.jpg", "bomb.png", "link.png"))
    assert result.skipped == ("cls/notes.txt",)
    assert result.summary.n_undecodable == 4 and result.summary.n_skipped == 1


# --- properties -------------------------------------------------------------------------------

PNG = png_bytes(digit_like(seed=3))
JPEG = jpeg_bytes(photo_like(seed=3))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.sampled_from([PNG, JPEG]), keep=st.floats(0.0, 0.999))
def test_any_truncation_is_detected(tmp_path: Path, data: bytes, keep: float) -> None:
    cut = data[: int(len(data) * keep)]
    assert chunk(tmp_path / "x.img", cut)["decode_error"] != ""
    if len(cut) > 16:  # past the signature, our own check (not Pillow) must catch it
        assert truncation_problem(cut) != ""


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.sampled_from([PNG, JPEG]), flips=st.lists(st.integers(0, 10**6), max_size=8))
def test_random_corruption_never_crashes(tmp_path: Path, data: bytes, flips: list[int]) -> None:
    damaged = bytearray(data)
    for position in flips:
        damaged[position % len(damaged)] ^= 0xFF
    row = chunk(tmp_path / "x.img", bytes(damaged))
    assert isinstance(row["decode_error"], str)
    if row["decode_error"] == "":
        assert 0.0 <= float(row["brightness"]) <= 1.0  # type: ignore[arg-type]
