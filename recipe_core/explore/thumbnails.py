"""On-demand thumbnails cached on disk in the workspace, so browsing a large dataset never
decodes a full image twice."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from recipe_core.data.images import load_thumbnail

THUMB_SIZE = 96  # px, long side: big enough to see a digit's strokes, small enough for 1M files


def thumbnail_file(
    cache_dir: Path, image: Path, *, size: int = THUMB_SIZE, upscale: bool = True
) -> Path | None:
    """The cached PNG thumbnail of `image`, made on first request; None when it won't decode.
    `upscale`: small images are enlarged pixel for pixel (see load_thumbnail), so a 32 px digit
    in a 96 px grid cell is its pixels, not the browser's blur of a 32 px file.

    The cache key includes the file's size and mtime, so an edited file gets a fresh thumbnail.
    """
    try:
        st = image.stat()
    except OSError:
        return None
    key = f"{image.resolve()}|{st.st_size}|{st.st_mtime_ns}|{size}" + ("|up" if upscale else "")
    digest = hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=12).hexdigest()
    target = cache_dir / digest[:2] / f"{digest}.png"
    if target.exists():
        return target
    thumb = load_thumbnail(image, size, upscale=upscale)
    if thumb is None:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    thumb.save(tmp, format="PNG")
    os.replace(tmp, target)  # atomic: a concurrent reader never sees half a PNG
    return target
