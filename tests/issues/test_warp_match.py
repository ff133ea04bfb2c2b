"""The affine-warp pair check (`recipe_core.scan.issues.warp_match`) on real photo crops
(scikit-learn's china.jpg): it recovers a known warp, calls recrops, small turns and marks
copies, and never distinct crops or warps beyond an edit's bounds. Trusted answers: the warps
and edits made here, and thumbnails made by the scan's own per-file code (`index_chunk`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

from recipe_core.scan import scan
from recipe_core.scan.index.features import index_chunk
from recipe_core.scan.issues import find_duplicates
from recipe_core.scan.issues import warp_match as wm
from recipe_core.scan.issues.duplicates import EDITED, warpable_rows
from tests.photos import sources

SIDE = 128


def _crop(x: int, y: int, side: int) -> Image.Image:
    photo = sources.photo("china")
    return photo.crop((x, y, x + side, y + side)).resize((SIDE, SIDE), Image.Resampling.BICUBIC)


def _thumbnails(tmp_path: Path, images: list[Image.Image]) -> np.ndarray:
    paths = []
    for i, im in enumerate(images):
        path = tmp_path / f"{i}.jpg"
        im.save(path, quality=90)
        paths.append(str(path))
    return index_chunk(paths).pixels


def _matrix(zoom: float = 1.0, turn_deg: float = 0.0, dx: float = 0.0) -> np.ndarray:
    t = np.deg2rad(turn_deg)
    m = np.eye(3, dtype=np.float32)
    m[:2, :2] = zoom * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    m[0, 2] = dx
    return m[None]


def test_align_recovers_a_known_warp() -> None:
    lum = np.asarray(_crop(150, 60, 200).convert("L").resize((32, 32)), dtype=np.float32)
    a = wm.smoothed(lum[None])
    truth = _matrix(zoom=0.95, turn_deg=4.0, dx=0.04)
    b, valid = wm.warp(a[:, None], np.linalg.inv(truth))  # b(x) = a(truth^-1 x)
    found = wm.align(a, b[:, 0])  # b sampled at found(u) matches a(u): found = truth
    assert valid.mean() > 0.8
    assert np.abs(found - truth).max() < 0.01


@pytest.mark.parametrize(
    "edit",
    [
        lambda im: im.crop((6, 6, SIDE - 6, SIDE - 6)).resize((SIDE, SIDE)),  # 10 % recrop
        lambda im: im.crop((3, 3, SIDE - 3, SIDE - 3)).resize((SIDE, SIDE)),  # 5 %
        lambda im: im.crop((0, 0, SIDE - 10, SIDE - 10)).resize((SIDE, SIDE)),  # off centre
        lambda im: im.rotate(2, Image.Resampling.BICUBIC),
        lambda im: im.rotate(-2, Image.Resampling.BICUBIC).crop((4, 4, SIDE - 4, SIDE - 4)),
    ],
    ids=["recrop_10pct", "recrop_5pct", "corner_recrop", "turned_2deg", "turned_and_recropped"],
)
def test_edited_copies_of_a_photo_are_within_the_line(tmp_path: Path, edit) -> None:
    originals = [_crop(150, 60, 200), _crop(330, 180, 120), _crop(40, 250, 150)]
    pixels = _thumbnails(tmp_path, originals + [edit(im) for im in originals])
    a, b = np.arange(3), np.arange(3, 6)
    dist = wm.warped_distance(pixels, a, b)
    assert (dist < wm.WARP_LINE).all(), dist
    assert np.array_equal(dist, wm.warped_distance(pixels, b, a))  # the lower of both ways


def test_distinct_crops_and_warps_beyond_an_edits_bounds_are_not_copies(tmp_path: Path) -> None:
    base = (150, 60, 200)
    others = [
        _crop(150 + 60, 60, 200),  # the same place moved by 30 % of the side
        _crop(150, 60 + 50, 200),
        _crop(175, 85, 150),  # zoomed in 1.33x: a 25 % crop is another picture
        _crop(330, 180, 120),  # elsewhere in the photo
    ]
    pixels = _thumbnails(tmp_path, [_crop(*base), *others])
    dist = wm.warped_distance(pixels, np.zeros(len(others), dtype=np.int64), np.arange(1, 5))
    assert (dist >= 2 * wm.WARP_LINE).all(), dist


def test_the_bounds_are_an_edits() -> None:
    inside = [_matrix(), _matrix(zoom=1.1), _matrix(zoom=1 / 1.1), _matrix(turn_deg=-8)]
    outside = [_matrix(zoom=1.2), _matrix(zoom=0.8), _matrix(turn_deg=12), _matrix(dx=0.15)]
    sheared = _matrix()
    sheared[0, 0, 0] = 1.12  # zoom along x only: a 12 % stretch
    nan = _matrix()
    nan[0, 0, 1] = np.nan
    assert wm.within_bounds(np.concatenate(inside)).all()
    assert not wm.within_bounds(np.concatenate([*outside, sheared, nan])).any()


def test_only_images_natively_large_enough_are_compared() -> None:
    table = pd.DataFrame({"width": [32, 48, 640, 640], "height": [32, 48, 480, 40]})
    assert warpable_rows(table).tolist() == [False, True, True, False]


def test_distinct_line_drawings_of_one_shape_are_not_edited_copies(tmp_path: Path) -> None:
    """Thick strokes of one template on a flat ground, each point jittered, at 64 px: a small
    warp aligns most of each pair, and their difference lies in a tenth of the pixels (a
    check that left out the worst-fitting tenth linked 1 in 10 of such pairs)."""
    rng = np.random.default_rng(3)
    template = rng.integers(8, 56, (4, 2))
    (tmp_path / "shape").mkdir()
    for i in range(150):
        im = Image.new("L", (64, 64), int(rng.integers(200, 256)))
        points = np.clip(template + rng.integers(-6, 7, template.shape), 2, 61)
        width = int(rng.integers(4, 9))
        ImageDraw.Draw(im).line(
            [tuple(map(int, p)) for p in points], fill=int(rng.integers(0, 80)), width=width
        )
        im.save(tmp_path / "shape" / f"{i:03d}.png")
    index = scan(tmp_path, workers=0, cache=False).index
    pairs = find_duplicates(index).pairs
    assert warpable_rows(index.table).all()
    assert not (pairs["flip"] == EDITED).any(), pairs[pairs["flip"] == EDITED]


def _overlaid(im: Image.Image, kind: str) -> Image.Image:
    marked = im.copy()
    draw = ImageDraw.Draw(marked)
    if kind == "caption":
        draw.text((6, SIDE - 14), "(c) somewhere 2019", fill=(255, 255, 255))
    elif kind == "logo":
        draw.rectangle((4, 4, 26, 22), fill=(20, 60, 230))
    else:  # a stamp away from the edges: overlays need not sit in a corner
        draw.ellipse((50, 56, 74, 80), fill=(250, 250, 0))
    return marked


@pytest.mark.parametrize("kind", ["caption", "logo", "stamp"])
def test_a_copy_under_an_overlay_is_an_edited_copy(tmp_path: Path, kind: str) -> None:
    """Text, a logo or a stamp laid over a photo: the fit over every pixel is far off, the fit
    outside the overlay's rectangle within the line, and the pair is compared unwarped too
    (`warped` False: the overlay check alone)."""
    originals = [_crop(150, 60, 200), _crop(330, 180, 120), _crop(40, 250, 150)]
    pixels = _thumbnails(tmp_path, originals + [_overlaid(im, kind) for im in originals])
    a, b = np.arange(3), np.arange(3, 6)
    x, y = wm.smoothed(pixels[a].astype(np.float32)), wm.smoothed(pixels[b].astype(np.float32))
    valid = np.ones(x.shape, dtype=bool)
    assert (wm.fit_distance(x[..., None], y[..., None], valid) > wm.WARP_LINE).all()
    for warped in (None, np.zeros(3, dtype=bool)):
        dist = wm.warped_distance(pixels, a, b, warped)
        assert (dist < wm.WARP_LINE).all(), (kind, dist)


def test_an_overlay_is_not_forgiven_where_it_would_hide_the_picture() -> None:
    """A rectangle over most of the detail (a small figure on a flat ground), or one that
    leaves most of the difference outside it, forgives nothing."""
    rng = np.random.default_rng(0)
    ground = np.full((2, 32, 32), 200.0, dtype=np.float32)
    figure, other = ground.copy(), ground.copy()
    figure[:, 4:10, 4:12] = rng.uniform(0, 80, (2, 6, 8))  # the whole picture, in a corner
    other[:, 4:10, 4:12] = rng.uniform(0, 80, (2, 6, 8))  # another figure there
    valid = np.ones(ground.shape, dtype=bool)
    assert np.isinf(wm.occluded_distance(figure, other, valid)).all()
    texture = rng.uniform(0, 255, (2, 32, 32)).astype(np.float32)
    spread = texture + rng.normal(0, 40, texture.shape).astype(np.float32)  # everywhere
    assert (wm.occluded_distance(texture, spread, valid) > wm.WARP_LINE).all()
    local = texture.copy()
    local[:, 26:31, 2:20] = 255.0  # a bright strip: forgiven
    assert (wm.occluded_distance(texture, local, valid) < wm.WARP_LINE).all()
