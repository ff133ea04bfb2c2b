"""Which files a user's batches came from, so "what the net sees" can mark the samples a scan
flagged in *their* pipeline, not only in Recipe's own loader.

A DataLoader asks its batch sampler for each batch's dataset indices; `recording_indices`
puts a recorder in front of that sampler for one iteration (nothing else about the loader
changes: same sampler, same generator, same collate, same workers), and `sample_file` turns
an index into the file behind it for the dataset families that say so:

- a `sample_path(index)` method (the protocol for a Dataset of your own);
- torchvision's ImageFolder / DatasetFolder (`.samples`, `.imgs`) and lists of paths
  (`.files`, `.paths`, `.image_paths`, ...), relative ones resolved against `.root`;
- a pandas frame attribute (`.df`, `.frame`, `.annotations`, ...) with a path column;
- `Subset` and `ConcatDataset` of any of these, nested.

    with recording_indices(loader) as recorder:
        for k, batch in enumerate(loader): ...
    files = [sample_file(loader.dataset, i) for i in recorder.batches[k]]

Anything else (an IterableDataset, a loader that yields out of order, a dataset with no path
attribute) gives None: the page then says why it cannot mark samples, it never guesses.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from torch.utils.data import ConcatDataset, DataLoader, IterableDataset, Subset

from recipe_core.data.pipeline import user_call

PATH_LISTS = ("samples", "imgs", "files", "paths", "file_paths", "filepaths", "image_paths",
              "img_paths", "filenames", "image_files", "images")  # fmt: skip
FRAME_ATTRS = ("df", "frame", "data", "table", "manifest", "annotations", "metadata")
PATH_COLUMNS = ("path", "filepath", "file_path", "file", "filename", "image_path", "img_path",
                "image", "img")  # fmt: skip
ROOT_ATTRS = ("root", "root_dir", "img_dir", "image_dir", "data_dir", "directory")
NESTING = 8  # Subset / ConcatDataset levels followed


class IndexRecorder:
    """A batch sampler that notes each batch of indices it hands out, in order."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.batches: list[list[int] | None] = []

    def __iter__(self) -> Iterator[Any]:
        for batch in self.inner:
            self.batches.append(_ints(batch))
            yield batch

    def __len__(self) -> int:
        return len(self.inner)

    def __getattr__(self, name: str) -> Any:  # batch_size, drop_last, sampler, ...
        return getattr(self.inner, name)


def _ints(batch: Any) -> list[int] | None:
    try:
        return [int(i) for i in batch]
    except (TypeError, ValueError):  # keys that are not positions (a dict-backed dataset)
        return None


def order_problem(loader: Any) -> str | None:
    """Why the batches of `loader` cannot be traced to dataset indices, or None if they can."""
    if not isinstance(loader, DataLoader):
        return f"the train_loader is a {type(loader).__name__}, not a torch DataLoader"
    if isinstance(loader.dataset, IterableDataset):
        return "its dataset is an IterableDataset, which has no indices"
    if loader.batch_sampler is None:
        return "it has batch_size=None (no batch sampler)"
    if not getattr(loader, "in_order", True):
        return "it has in_order=False, so batches may arrive out of sampler order"
    return None


@contextmanager
def recording_indices(loader: Any) -> Iterator[IndexRecorder | None]:
    """Within the block, iterating `loader` notes each batch's indices (None where
    `order_problem` says it cannot). The loader is put back as it was on the way out."""
    if order_problem(loader) is not None:
        yield None
        return
    recorder = IndexRecorder(loader.batch_sampler)
    # DataLoader forbids setting batch_sampler after __init__ (a guard for users); the
    # iterator reads it through _index_sampler when it starts, so swapping it is enough
    object.__setattr__(loader, "batch_sampler", recorder)
    try:
        yield recorder
    finally:
        object.__setattr__(loader, "batch_sampler", recorder.inner)


def sample_file(dataset: Any, index: int, depth: int = 0) -> Path | None:
    """The file behind `dataset[index]`, absolute, or None where the dataset does not say."""
    if depth > NESTING or index < 0:
        return None
    hook = getattr(dataset, "sample_path", None)
    if callable(hook):
        return _as_file(user_call(f"dataset.sample_path({index})", hook, index), dataset)
    if isinstance(dataset, Subset):
        if index >= len(dataset.indices):
            return None
        return sample_file(dataset.dataset, int(dataset.indices[index]), depth + 1)
    if isinstance(dataset, ConcatDataset):
        part = bisect.bisect_right(dataset.cumulative_sizes, index)
        if part >= len(dataset.datasets):
            return None
        offset = index - (dataset.cumulative_sizes[part - 1] if part else 0)
        return sample_file(dataset.datasets[part], offset, depth + 1)
    for name in PATH_LISTS:
        entries = getattr(dataset, name, None)
        if isinstance(entries, Sequence) and not isinstance(entries, str) and index < len(entries):
            entry = entries[index]
            if isinstance(entry, (tuple, list)) and entry:  # (path, class) pairs
                entry = entry[0]
            if isinstance(entry, (str, os.PathLike)):
                return _as_file(entry, dataset)
    for name in FRAME_ATTRS:
        frame = getattr(dataset, name, None)
        columns = getattr(frame, "columns", None)
        if columns is None or not hasattr(frame, "iloc") or index >= len(frame):  # type: ignore[arg-type]
            continue
        for column in PATH_COLUMNS:
            if column in columns:
                value = frame[column].iloc[index]  # type: ignore[index]
                if isinstance(value, (str, os.PathLike)):
                    return _as_file(value, dataset)
    return None


def _as_file(value: Any, dataset: Any) -> Path | None:
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        return None
    path = Path(value).expanduser()
    if not path.is_absolute():
        roots = [getattr(dataset, a, None) for a in ROOT_ATTRS]
        root = next((r for r in roots if isinstance(r, (str, os.PathLike))), None)
        path = Path(root).expanduser() / path if root is not None else path
    path = path.resolve()  # the scan keys files by their real path under its resolved root
    return path if path.is_file() else None


def batch_files(dataset: Any, indices: Sequence[int] | None) -> list[str | None] | None:
    """The files of one batch (None per sample the dataset cannot name); None if no index is
    known or the dataset names no file at all."""
    if indices is None:
        return None
    files = [sample_file(dataset, i) for i in indices]
    if all(f is None for f in files):
        return None
    return [None if f is None else str(f) for f in files]
