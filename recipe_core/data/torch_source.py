"""Adapter for any map-style torch `Dataset` whose items are `(image, label)`.

The images are written once as PNG files into the workspace (`<workspace>/datasets/<name>/`,
with a `manifest.csv`), so the rest of Recipe stays path-based: the scan's process pool, its
per-file cache, the thumbnails in the app and `recipe scan <that manifest>` all work unchanged.
A file is rewritten only when its bytes change, so re-materialising the same dataset keeps
mtimes and the next scan reuses its cached rows.

An image may be a PIL image, a (C, H, W) or (H, W) tensor (uint8, or float in [0, 1]) or a
(H, W[, C]) numpy array; a label an int (mapped through `classes` when given), a 0-d tensor or a
string. Items whose `__getitem__` raises are listed in `DatasetSource.skipped`, not fatal.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from recipe_core.data.images import describe_error
from recipe_core.data.manifest import open_manifest
from recipe_core.data.source import DatasetSource
from recipe_core.errors import DatasetError
from recipe_core.workspace import Workspace, open_workspace

log = logging.getLogger(__name__)

PNG_MODES = frozenset({"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"})  # PNG can store these
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def from_torch_dataset(
    dataset: Any,
    *,
    classes: Sequence[str] | None = None,
    name: str | None = None,
    split: str = "",
    workspace: Workspace | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DatasetSource:
    """Materialise `dataset` as PNGs + manifest under the workspace and open it as a manifest.

    `classes[i]` names integer label i (default: the dataset's own `.classes` if it has one,
    else the number as text). `name` is the folder name (default: the dataset's class name).
    """
    total = _length(dataset)
    folder_name = _folder_name(dataset, name)
    root = (workspace or open_workspace()).subdir("datasets") / folder_name
    (root / "images").mkdir(parents=True, exist_ok=True)
    names = classes if classes is not None else getattr(dataset, "classes", None)
    rows, skipped = _write_items(dataset, root, names, split, progress)
    if not rows:
        raise DatasetError(
            f"None of the {total} items of {folder_name} could be read ({skipped[:3]}). Check "
            "that dataset[i] returns (image, label)."
        )
    manifest = root / "manifest.csv"
    pd.DataFrame(rows, columns=["path", "label", "split"]).to_csv(manifest, index=False)
    opened = open_manifest(manifest)
    return DatasetSource(opened.root, "torch", opened.samples, tuple(skipped))


def _write_items(
    dataset: Any,
    root: Path,
    names: Sequence[str] | None,
    split: str,
    progress: Callable[[int, int], None] | None,
) -> tuple[list[tuple[str, str, str]], list[str]]:
    """Manifest rows (path, label, split) of the items written, and the items that failed."""
    total = len(dataset)
    rows: list[tuple[str, str, str]] = []
    skipped: list[str] = []
    for i in range(total):
        try:
            image, label = _item(dataset, i)
            data = _png_bytes(_to_pil(image))
            text = _label_text(label, names)
        except DatasetError:
            raise
        except Exception as exc:  # a failing item is a skipped row, not a crash
            skipped.append(f"item {i}: {describe_error(exc)}")
            continue
        rel = f"images/{i:07d}.png"
        _write_if_changed(root / rel, data)
        rows.append((rel, text, split))
        if progress is not None and ((i + 1) % 256 == 0 or i + 1 == total):
            progress(i + 1, total)
    return rows, skipped


def _length(dataset: Any) -> int:
    try:
        total = len(dataset)
    except TypeError as exc:
        raise DatasetError(
            f"{type(dataset).__name__} has no len(): Recipe reads map-style datasets "
            "(dataset[i] -> (image, label)). Wrap an iterable dataset in a list first."
        ) from exc
    if total == 0:
        raise DatasetError(f"{type(dataset).__name__} is empty: there is nothing to scan.")
    return int(total)


def _folder_name(dataset: Any, name: str | None) -> str:
    chosen = name if name is not None else f"{type(dataset).__name__}-{len(dataset)}"
    if not NAME_PATTERN.match(chosen):
        raise DatasetError(
            f"Dataset name {chosen!r} is not a valid folder name. Use letters, digits, '.', "
            "'_' and '-' (at most 100 characters), e.g. name='cifar10-train'."
        )
    return chosen


def _item(dataset: Any, i: int) -> tuple[Any, Any]:
    item = dataset[i]
    if not isinstance(item, (tuple, list)) or len(item) < 2:
        raise DatasetError(
            f"dataset[{i}] returned {type(item).__name__}, not an (image, label) pair. "
            "Recipe reads datasets whose items are (image, label), like torchvision's."
        )
    return item[0], item[1]


def _to_pil(image: Any) -> Image.Image:
    if isinstance(image, Image.Image):
        return image if image.mode in PNG_MODES else image.convert("RGB")
    if hasattr(image, "detach"):  # a torch tensor: channels first
        array = image.detach().cpu().numpy()
        if array.ndim == 3:
            array = array.transpose(1, 2, 0)
    else:
        array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(f"image of shape {array.shape} is not (H, W), (H, W, 3|4) or (C, H, W)")
    return Image.fromarray(_to_uint8(array))


def _to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    x = array.astype(np.float64)
    if np.issubdtype(array.dtype, np.floating):
        low, high = float(np.nanmin(x)), float(np.nanmax(x))
        if low < 0 or high > 1:  # e.g. already normalised: show its range, scaled per image
            log.warning("image values span [%.3g, %.3g], not [0, 1]: rescaled per image", low, high)
            x = (x - low) / max(high - low, 1e-12)
        x = x * 255
    return np.clip(np.nan_to_num(x) + 0.5, 0, 255).astype(np.uint8)


def _label_text(label: Any, names: Sequence[str] | None) -> str:
    if hasattr(label, "item"):
        label = label.item()
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
        if names is not None and 0 <= int(label) < len(names):
            return str(names[int(label)])
        return str(int(label))
    return str(label)


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)  # speed over size: it is a cache
    return buffer.getvalue()


def _write_if_changed(path: Path, data: bytes) -> None:
    try:
        if path.read_bytes() == data:
            return
    except OSError:
        pass
    path.write_bytes(data)
