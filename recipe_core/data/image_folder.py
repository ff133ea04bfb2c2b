"""Image-folder adapter: `root/<class>/*.png`, optionally under `root/<split>/<class>/`."""

from __future__ import annotations

import os
from pathlib import Path

from recipe_core.data.source import DatasetSource, make_samples
from recipe_core.errors import DatasetError

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)
SPLIT_NAMES = frozenset({"train", "val", "valid", "validation", "test", "dev", "holdout"})


def is_image_folder(root: Path) -> bool:
    """True when `root` has class sub-folders (or split folders of class sub-folders) of images."""
    return any(_class_dirs(root)) or any(any(_class_dirs(root / s)) for s in _split_dirs(root))


def open_image_folder(root: Path) -> DatasetSource:
    """Every image file under class folders; other files are listed in `skipped`."""
    splits = _split_dirs(root)
    groups = [(s, root / s) for s in splits] if splits else [("", root)]
    paths: list[str] = []
    labels: list[str] = []
    split_col: list[str] = []
    skipped: list[str] = []
    for split, split_root in groups:
        for class_dir in _class_dirs(split_root):
            for file in _walk_files(class_dir):
                rel = _relpath(file, root)
                if file.suffix.lower() in IMAGE_EXTENSIONS:
                    paths.append(rel)
                    labels.append(class_dir.name)
                    split_col.append(split)
                else:
                    skipped.append(rel)
    if not paths:
        raise DatasetError(
            f"No image files found under {root}. An image folder holds one sub-folder per class "
            f"(root/<class>/*.png), optionally inside split folders (root/train/<class>/...); "
            f"accepted extensions: {', '.join(sorted(IMAGE_EXTENSIONS))}."
        )
    return DatasetSource(
        root=root,
        layout="image_folder",
        samples=make_samples(paths, labels, split_col),
        skipped=tuple(sorted(skipped)),
    )


def _split_dirs(root: Path) -> list[str]:
    return sorted(
        e.name
        for e in _subdirs(root)
        if e.name.lower() in SPLIT_NAMES and any(_class_dirs(Path(e.path)))
    )


def _class_dirs(root: Path) -> list[Path]:
    """Sub-folders holding at least one image file (directly or nested)."""
    found = []
    for entry in _subdirs(root):
        if entry.name.lower() in SPLIT_NAMES and _has_subdirs(Path(entry.path)):
            continue
        if any(f.suffix.lower() in IMAGE_EXTENSIONS for f in _walk_files(Path(entry.path))):
            found.append(Path(entry.path))
    return found


def _subdirs(root: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(root) as it:
            dirs = [e for e in it if e.is_dir(follow_symlinks=True) and not e.name.startswith(".")]
    except OSError:
        return []
    return sorted(dirs, key=lambda e: e.name)


def _has_subdirs(root: Path) -> bool:
    return bool(_subdirs(root))


def _walk_files(root: Path) -> list[Path]:
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files.extend(Path(dirpath) / f for f in sorted(filenames) if not f.startswith("."))
    return files


def _relpath(file: Path, root: Path) -> str:
    return file.relative_to(root).as_posix()
