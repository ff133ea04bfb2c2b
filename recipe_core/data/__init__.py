"""Dataset adapters: the only code that reads raw dataset files.

`open_dataset(path)` detects the layout: an image folder, or a CSV/Parquet manifest file. A
torch `Dataset` is opened with `recipe_core.data.torch_source.from_torch_dataset` (kept out of
this module's imports so scan workers never import torch).
"""

from __future__ import annotations

import os
from pathlib import Path

from recipe_core.data.image_folder import IMAGE_EXTENSIONS, is_image_folder, open_image_folder
from recipe_core.data.manifest import MANIFEST_EXTENSIONS, is_manifest, open_manifest
from recipe_core.data.source import DatasetSource
from recipe_core.errors import DatasetError

__all__ = ["IMAGE_EXTENSIONS", "MANIFEST_EXTENSIONS", "DatasetSource", "open_dataset"]

ACCEPTED_LAYOUTS = (
    "an image folder (root/<class>/*.png, optionally root/<split>/<class>/*.png); "
    "a CSV or Parquet manifest file (.csv, .parquet, .pq) with columns path,label[,split], "
    "paths relative to the manifest's folder; or, from Python, any torch Dataset of "
    "(image, label) via recipe_core.data.torch_source.from_torch_dataset"
)


def open_dataset(path: str | os.PathLike[str]) -> DatasetSource:
    """Open a dataset by path, detecting its layout; raise `DatasetError` naming the fix."""
    root = Path(path).expanduser()
    if not root.exists():
        raise DatasetError(
            f"Dataset path {str(path)!r} does not exist. Pass a folder or manifest file "
            f"that exists; accepted layouts: {ACCEPTED_LAYOUTS}."
        )
    root = root.resolve()
    if is_manifest(root):
        return open_manifest(root)
    if root.is_dir() and is_image_folder(root):
        return open_image_folder(root)
    kind = "file" if root.is_file() else "folder"
    raise DatasetError(
        f"{root} is not a dataset layout Recipe can read (a {kind} that is neither). "
        f"Accepted layouts: {ACCEPTED_LAYOUTS}."
    )
