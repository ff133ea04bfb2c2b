"""Dataset adapters: the only code that reads raw dataset files."""

from __future__ import annotations

import os
from pathlib import Path

from recipe_core.data.image_folder import IMAGE_EXTENSIONS, is_image_folder, open_image_folder
from recipe_core.data.source import DatasetSource
from recipe_core.errors import DatasetError

__all__ = ["IMAGE_EXTENSIONS", "DatasetSource", "open_dataset"]

ACCEPTED_LAYOUTS = (
    "an image folder (root/<class>/*.png, optionally root/<split>/<class>/*.png)"
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
    if root.is_dir() and is_image_folder(root):
        return open_image_folder(root)
    raise DatasetError(
        f"{root} is not a dataset layout Recipe can read. Accepted layouts: {ACCEPTED_LAYOUTS}."
    )
