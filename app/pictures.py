"""The one way the app draws a picture: thumbnails, sample images, captured batches, probes.

Locally `image` is `st.image` itself: Streamlit's media handler serves each picture from a
`/media/<hash>` URL the browser caches. On a team server (`recipe serve`) that handler answers
anyone who holds the URL, with no session and no sign-in, and URLs leak (logs, history,
shared links). So there every picture goes into the page itself as a `data:` URI: it reaches
the browser only over the signed-in session's WebSocket, and no URL exists to fetch it by.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
from PIL import Image

from app import access

Picture = str | Path | bytes | np.ndarray  # a file, encoded image bytes, or (H, W[, C]) uint8
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def image(picture: Picture | list[Picture], **options: Any) -> None:
    """`st.image(picture, **options)`; in team mode with every picture inlined (`data_uri`)."""
    if access.serve_config() is None:
        st.image(picture, **options)  # local: the browser caches the /media URL
    elif isinstance(picture, list):
        st.image([data_uri(p) for p in picture], **options)
    else:
        st.image(data_uri(picture), **options)


def data_uri(picture: Picture) -> str:
    """`picture` as a `data:image/png;base64,...` URI (a PNG file or PNG bytes are used as
    they are; anything else is encoded to PNG once)."""
    data = Path(picture).read_bytes() if isinstance(picture, (str, Path)) else picture
    if isinstance(data, np.ndarray):
        data = _png(Image.fromarray(data))
    elif not data.startswith(PNG_MAGIC):
        data = _png(Image.open(io.BytesIO(data)))
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()
